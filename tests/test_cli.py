"""The command line: one-line errors, non-zero exits, settings, and jobs' argument handling."""

import subprocess
import sys
from pathlib import Path

import pytest

from mobility import cli
from tests.conftest import PROJECT_ROOT


def run(*args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(PROJECT_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "mobility", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_report_in_an_unknown_language_is_a_usage_error(tmp_path: Path):
    result = run("--profile", "test", "--set", f"lake.root={tmp_path}", "report", "--lang", "de")
    assert result.returncode == 2
    assert "'de' is not one of fr, en" in result.stderr


def test_recommend_without_a_champion_fails_before_any_work_with_one_line(tmp_path: Path):
    result = run(
        "--profile", "test", "--set", f"lake.root={tmp_path / 'lake'}",
        "--set", f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
        "--set", f"mlflow.artifact_root={tmp_path / 'artifacts'}",
        "recommend", "--date", "2022-06-15",
    )  # fmt: skip
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("mobility: no champion of model 'mobility-recommender'"), result.stderr[-2000:]
    assert not (tmp_path / "lake").exists()


def test_a_bad_setting_fails_at_start_with_one_line_naming_the_key():
    result = run("--set", "privacy.min_cell=zero", "reference")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()
    assert len(last) == 1 and "privacy.min_cell" in last[0] and "--set privacy.min_cell" in last[0]


def test_settings_prints_a_resolved_value():
    result = run("--profile", "test", "--set", "lake.root=/data/lake", "settings", "lake.root")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "/data/lake"


def test_unknown_command_is_a_usage_error():
    assert run("fly").returncode == 2


def test_jobs_take_global_options_anywhere_and_read_the_conf_beside_jobs(monkeypatch: pytest.MonkeyPatch):
    seen = []
    monkeypatch.setattr(cli, "main", lambda argv: seen.append(argv))
    monkeypatch.setattr(sys, "argv", [str(PROJECT_ROOT / "jobs" / "ingest.py")])
    cli.run_job("ingest", ["--input", "d", "--profile", "cluster", "--set=lake.root=/x", "--set", "a.b=c"])
    conf = ["--conf-dir", str(PROJECT_ROOT / "conf")]
    globals_ = ["--profile", "cluster", "--set=lake.root=/x", "--set", "a.b=c"]
    assert seen == [[*conf, *globals_, "ingest", "--input", "d"]]
    cli.run_job("flows", ["--conf-dir", "/etc/mobility"])
    assert seen[-1] == ["--conf-dir", "/etc/mobility", "flows"]


def test_conf_dir_option_reads_settings_from_another_folder(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    for path in (PROJECT_ROOT / "conf").glob("*.yaml"):
        (conf / path.name).write_text(path.read_text())
    local = (PROJECT_ROOT / "conf" / "local.yaml").read_text()
    (conf / "local.yaml").write_text(local.replace("privacy:\n", "privacy:\n  min_cell: 11\n"))
    result = run("--conf-dir", str(conf), "settings", "privacy.min_cell")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "11"

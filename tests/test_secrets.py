"""The pseudonym key stays secret: required by the ``cluster`` profile, never printed, never logged, never
in the lake, never in MLflow (params, tags, artifacts).

Jobs run as a scheduler runs them (``mobility`` processes with ``MOBILITY_PSEUDO_KEY`` in their
environment), and everything they leave is searched byte by byte: their output and every file of the
lake; the session's MLflow store, where the models were trained, is searched for the key it ran with.
The key is searched with what derives from it (the HMAC pads, which are literals of ingestion's query
plans, in hexadecimal either case). Marked ``fault`` with the other hardening tests.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import subprocess
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from mobility.config import Settings
from mobility.ingest.pseudonyms import _pads
from mobility.lake import Lake
from tests.processes import BIN, job_env

pytestmark = [pytest.mark.fault, pytest.mark.slow, pytest.mark.timeout(900)]

KEY = "key-" + secrets.token_hex(16)  # a new one each run: found anywhere, it can only have leaked
IDS = ("100000001", "100000002", "100000003")
JOB_TIMEOUT_S = 600
SERVER = "http://127.0.0.1:9"  # the cluster profile's tracking server: named, never reached by these jobs
# The cluster profile's settings, on this machine: a small local Spark.
LOCAL_SPARK = ("--set", "spark.master=local[2]", "--set", "spark.driver_memory=2g",
               "--set", "spark.shuffle_partitions=2", "--set", "spark.ui_enabled=false")  # fmt: skip


def _needles(key: str) -> list[bytes]:
    inner, outer = _pads(key.encode("utf-8"))
    return [key.encode("utf-8"), *(p.hex().encode() for p in (inner, outer)),
            *(p.hex().upper().encode() for p in (inner, outer))]  # fmt: skip


def _leaks(data: bytes, key: str = KEY) -> list[bytes]:
    return [needle for needle in _needles(key) if needle in data]


def _files_leaking(folder: Path, key: str = KEY) -> dict[str, list[bytes]]:
    """Every file under ``folder`` (links not followed: the shared ref zone is not this run's) that holds
    the key or a pad."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            if not path.is_symlink() and (leaks := _leaks(path.read_bytes(), key)):
                found[str(path.relative_to(folder))] = leaks
    return found


def _job(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """``mobility`` with the key in its environment and no other MOBILITY_* setting, output captured."""
    return subprocess.run([str(BIN / "mobility"), *args], capture_output=True, cwd=cwd,
                          env=job_env(MOBILITY_PSEUDO_KEY=KEY, MOBILITY_MLFLOW__TRACKING_URI=SERVER),
                          timeout=JOB_TIMEOUT_S, check=False)  # fmt: skip


def _hmac(idx: str) -> str:
    return hmac.new(KEY.encode(), idx.encode(), hashlib.sha256).hexdigest()


def test_settings_never_print_the_key(tmp_path: Path):
    printed = {}
    for args in (("settings",), ("settings", "privacy.pseudo_key")):
        done = _job("--profile", "cluster", *args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr.decode()
        assert _leaks(done.stdout + done.stderr) == [], args
        printed[args] = done.stdout
    assert printed[("settings", "privacy.pseudo_key")].strip() == b"**********"


def test_an_ingest_with_the_cluster_profile_uses_the_key_and_leaves_it_nowhere(
    lake_with_ref: Lake, settings: Settings, tmp_path: Path
):
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "de.csv").write_text(
        "IDX;DATINS;DATANN;MOTINS;MOTANN;CATREGR;DEPCOM;ROME\n"
        + "".join(f"{idx};2022-01-10;;11;;1;75056;A1101\n" for idx in IDS)
        + f"{IDS[0]};not-a-date;;11;;1;75056;A1101\n",  # quarantined with its raw line
        encoding="utf-8",
    )
    root = Path(lake_with_ref.root)
    done = _job("--profile", "cluster", *LOCAL_SPARK, "--set", f"lake.root={root}",
                "--set", f"reference.dir={settings.reference.dir}", "--set", "quality.max_reject_rate=0.5",
                "ingest", "--input", str(batch), cwd=tmp_path)  # fmt: skip

    assert done.returncode == 0, done.stderr.decode()[-3000:]
    ids = {r["seeker_id"] for r in lake_with_ref.read("silver.seekers").collect()}
    assert ids == {_hmac(idx) for idx in IDS}  # the key was the one given
    quarantined = lake_with_ref.read("silver.quarantine").where(F.col("reason") == "bad_date").first()
    assert quarantined["raw"].startswith(_hmac(IDS[0]) + ";")
    assert _leaks(done.stdout + done.stderr) == []
    assert _files_leaking(root) == {}


def test_no_run_or_model_of_an_mlflow_store_holds_the_key(tracked_lake):
    """The session's store, where the four models were trained, logged and registered: its database (params,
    tags, metrics) and every artifact, searched for the key the training ran with (the test profile's)."""
    tracked = tracked_lake.settings
    key = tracked.privacy.key()[0].decode("utf-8")
    database = Path(tracked.mlflow.tracking_uri.removeprefix("sqlite:///"))
    assert database.stat().st_size > 0 and any(tracked.mlflow.artifact_root.rglob("MLmodel"))
    assert _leaks(database.read_bytes(), key) == []
    assert _files_leaking(tracked.mlflow.artifact_root, key) == {}

"""``make submit`` writes the spark-submit command that the cluster test runs for real
(``standalone.submit_command``): that test proves the command on a cluster, this one that the Makefile,
which the README gives users, still writes it."""

from __future__ import annotations

import shlex
import subprocess
from types import SimpleNamespace

from tests.cluster.standalone import submit_command
from tests.conftest import PROJECT_ROOT

JARS = "$(cat dist/jars.txt)"  # make -n prints the shell's substitution as it is


def _options_and_job(tokens: list[str]) -> tuple[dict[str, str], list[str]]:
    """spark-submit's own options (before the job's .py) and the job with its arguments."""
    start = next(i for i, t in enumerate(tokens) if t.endswith("spark-submit")) + 1
    script = next(i for i, t in enumerate(tokens) if t.endswith(".py") and i > start)
    options = tokens[start:script]
    assert len(options) % 2 == 0, options
    return dict(zip(options[::2], options[1::2], strict=True)), tokens[script:]


def _make_submit(**variables: str) -> list[str]:
    done = subprocess.run(
        ["make", "-n", "submit", *(f"{name}={value}" for name, value in variables.items())],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = done.stdout.replace("\\\n", " ")
    (line,) = [line for line in printed.splitlines() if "spark-submit" in line]
    return shlex.split(line.replace(JARS, "JARS"))


def test_make_submit_writes_the_command_the_cluster_test_runs():
    master, sets, args = "spark://master-host:7077", ["lake.root=/shared/lake"], ["--input", "/shared/in"]
    made = _make_submit(STEP="pipeline", MASTER=master, SET=" ".join(sets), ARGS=" ".join(args))
    tested = submit_command(SimpleNamespace(url=master), PROJECT_ROOT / "dist" / "mobility.zip",
                            PROJECT_ROOT / "jars" / "lib", "pipeline",
                            *(a for s in sets for a in ("--set", s)), *args, memory="2g")  # fmt: skip

    made_options, made_job = _options_and_job(made)
    tested_options, tested_job = _options_and_job(tested)
    assert made_options.keys() == tested_options.keys()
    for name in ("--master", "--driver-memory", "--executor-memory"):
        assert made_options[name] == tested_options[name], name
    assert made_options["--jars"] == "JARS" and made_options["--py-files"] == "dist/mobility.zip"
    assert made_job[0] == "jobs/pipeline.py" and tested_job[0].endswith("/jobs/pipeline.py")
    assert made_job[1:] == tested_job[1:] == ["--profile", "cluster", "--set", *sets, *args]


def test_make_submit_passes_the_executors_resources_as_given():
    made = _make_submit(STEP="flows", RESOURCES="--executor-memory 8g --total-executor-cores 16")
    options, job = _options_and_job(made)
    assert options["--executor-memory"] == "8g" and options["--total-executor-cores"] == "16"
    assert "--driver-memory" not in options
    assert job[:3] == ["jobs/flows.py", "--profile", "cluster"]

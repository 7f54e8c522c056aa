"""The reference step, shipped as ``make dist`` ships it, on a real Spark standalone cluster.

Local mode hides what a cluster needs: there the driver and the executors share one JVM and the checkout.
Here a master and one worker run on 127.0.0.1, ``jobs/reference.py`` goes through spark-submit with the
wheel as ``--py-files``, the Delta jars as ``--jars`` and the settings as ``--profile cluster --set ...``,
and the Delta tables it writes are read back. It takes minutes, hence the ``cluster`` and ``slow`` marks.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mobility.config import ENV_PREFIX, Settings
from mobility.lake import Lake
from mobility.spark import delta_jars
from tests.conftest import PROJECT_ROOT

BIN = Path(sys.executable).parent  # the venv's bin: spark-class and spark-submit come with pyspark
HOST = "127.0.0.1"
START_TIMEOUT_S = 120
SUBMIT_TIMEOUT_S = 600
STOP_TIMEOUT_S = 30
MASTER_READY = re.compile(r"I have been elected leader")
WORKER_READY = re.compile(r"Successfully registered with master spark://")

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(SUBMIT_TIMEOUT_S + 300)]


@dataclass(frozen=True)
class Cluster:
    url: str
    work_dir: Path


def _free_ports(count: int) -> list[int]:
    """Ports the OS reports free; all sockets are held until the last is bound, so they differ."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else f"({path} was not written)"
    return "\n".join(text.splitlines()[-lines:])


def _outputs(stdout: Path, stderr: Path) -> str:
    return f"stdout:\n{_tail(stdout)}\nstderr:\n{_tail(stderr, 80)}"


def _child_env() -> dict[str, str]:
    """The caller's environment without MOBILITY_* (the command line alone sets the job's settings, but for
    the pseudonym key), with this interpreter on both sides and every Spark process on the loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable, SPARK_LOCAL_IP=HOST)
    env["MOBILITY_PSEUDO_KEY"] = "cluster-test-key"  # the cluster profile refuses to start without one
    return env


def _start(command: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` in a process group of its own (the JVM and whatever it forks), output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=_child_env(), start_new_session=True
        )


def _wait_for(process: subprocess.Popen[bytes], log: Path, ready: re.Pattern[str], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready.search(log.read_text(errors="replace")):
        if process.poll() is not None:
            pytest.fail(f"{what} exited with status {process.returncode} before ready; {log}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: no {ready.pattern!r} after {START_TIMEOUT_S} s; {log}:\n{_tail(log)}")
        time.sleep(0.5)


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of the group: an orphaned executor keeps the group after its JVM died."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while being read
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def _stop(process: subprocess.Popen[bytes]) -> list[int]:
    """Stop the whole process group (SIGTERM, then SIGKILL); return what survives (nothing, normally)."""
    pgid = process.pid  # start_new_session: the child leads its own group
    for sig, grace in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, STOP_TIMEOUT_S)):
        with contextlib.suppress(ProcessLookupError):  # the group is already gone
            os.killpg(pgid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if process.poll() is not None and not _group_members(pgid):
                return []
            time.sleep(0.2)
    return [process.pid] if process.poll() is None else _group_members(pgid)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A master and one worker (2 cores, 2 GB) on free ports of 127.0.0.1, stopped whatever happens."""
    master_port, master_ui, worker_port, worker_ui = _free_ports(4)
    url = f"spark://{HOST}:{master_port}"
    folder = tmp_path / "cluster"
    work_dir = folder / "work"
    work_dir.mkdir(parents=True)
    master_log, worker_log = folder / "master.log", folder / "worker.log"
    spark_class = str(BIN / "spark-class")
    started: list[subprocess.Popen[bytes]] = []
    try:
        started.append(
            _start(
                [spark_class, "org.apache.spark.deploy.master.Master", "--host", HOST,
                 "--port", str(master_port), "--webui-port", str(master_ui)],
                master_log,
            )
        )  # fmt: skip
        _wait_for(started[-1], master_log, MASTER_READY, f"master {url}")
        started.append(
            _start(
                [spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", HOST,
                 "--port", str(worker_port), "--webui-port", str(worker_ui),
                 "--cores", "2", "--memory", "2g", "--work-dir", str(work_dir)],
                worker_log,
            )
        )  # fmt: skip
        _wait_for(started[-1], worker_log, WORKER_READY, f"worker of {url}")
        yield Cluster(url, work_dir)
    finally:
        # The worker first (the master outlives its workers), and both even if one will not die.
        survivors = [pid for process in reversed(started) for pid in _stop(process)]
        assert not survivors, f"Spark processes survived SIGKILL: {survivors}"


def _package(out: Path) -> Path:
    """The wheel, built as ``make dist`` builds it, copied to a .zip for ``--py-files``."""
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(PROJECT_ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"wheel build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    (wheel,) = out.glob("mobility-*.whl")
    return Path(shutil.copy(wheel, out / "mobility.zip"))


def _submit(command: Sequence[str], out: Path, err: Path) -> int:
    """Run spark-submit in a group of its own (it forks the Python driver); kill the group on timeout.

    From a folder that is not the project: the driver imports ``mobility`` from the zip, and the job
    still finds its settings (``conf/`` beside ``jobs/``).
    """
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            command, stdout=stdout, stderr=stderr, cwd=out.parent, env=_child_env(), start_new_session=True
        )
        try:
            return process.wait(timeout=SUBMIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _stop(process)
            pytest.fail(f"spark-submit still running after {SUBMIT_TIMEOUT_S} s\n{_outputs(out, err)}")


def _count_by(df: DataFrame, column: str) -> dict[str, int]:
    return {row[column]: row["n"] for row in df.groupBy(column).agg(F.count("*").alias("n")).collect()}


def test_reference_job_runs_on_a_standalone_cluster(
    cluster: Cluster, spark: SparkSession, settings: Settings, tmp_path: Path
) -> None:
    py_files = _package(tmp_path / "dist")
    lake_root = tmp_path / "lake"
    stdout, stderr = tmp_path / "submit.out", tmp_path / "submit.err"
    command = [
        str(BIN / "spark-submit"),
        "--master", cluster.url,
        "--jars", ",".join(str(jar) for jar in delta_jars(settings.spark.jars_dir)),
        "--py-files", str(py_files),
        "--driver-memory", "1g",
        "--executor-memory", "1g",
        str(PROJECT_ROOT / "jobs" / "reference.py"),
        "--profile", "cluster",
        "--set", f"lake.root={lake_root}",
        "--set", f"reference.dir={settings.reference.dir}",
    ]  # fmt: skip

    status = _submit(command, stdout, stderr)

    assert status == 0, f"spark-submit exited {status}\n{_outputs(stdout, stderr)}"
    apps = sorted(cluster.work_dir.glob("app-*"))
    assert apps, f"no executor ran on the worker: {cluster.work_dir} has no app-* folder"
    printed = stdout.read_text()
    assert re.search(r"rome v3 fiches\s+531\b", printed), f"no summary in the job's stdout:\n{printed}"

    lake = Lake(spark, lake_root)
    assert _count_by(lake.read("ref.rome"), "version") == {"v3": 531, "v4": 1584}
    assert _count_by(lake.read("ref.rome_mobility"), "version") == {"v3": 4218, "v4": 14912}
    assert lake.read("ref.region").count() == 18
    assert lake.read("ref.departement").count() == 101
    assert _count_by(lake.read("ref.rome_tree"), "level") == {"grand_domaine": 14, "domaine": 110}
    assert lake.version("ref.rome") == 0

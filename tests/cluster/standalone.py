"""A Spark standalone cluster started for real on 127.0.0.1 (pyspark's ``spark-class``: a master and its
workers, each in a process group of its own), and jobs submitted to it as ``make submit`` does: the wheel
as ``--py-files``, the Delta jars as ``--jars``, the settings as ``--profile cluster --set ...``."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from mobility.spark import delta_jars
from tests.conftest import PROJECT_ROOT
from tests.processes import BIN, HOST, free_ports, job_env, start, stop, tail

START_TIMEOUT_S = 120
MASTER_READY = re.compile(r"I have been elected leader")
WORKER_READY = re.compile(r"Successfully registered with master spark://")


@dataclass(frozen=True)
class Worker:
    process: subprocess.Popen[bytes]
    work_dir: Path  # where its executors run: app-*/<executor id>/
    log: Path


@dataclass(frozen=True)
class Cluster:
    url: str
    ui: str  # the master's web UI (its /json/ tells the workers' states)
    workers: tuple[Worker, ...]

    @property
    def work_dir(self) -> Path:
        return self.workers[0].work_dir


def child_env(pseudo_key: str) -> dict[str, str]:
    """The caller's environment without MOBILITY_* (the command line alone sets the job's settings, but for
    the pseudonym key), with this interpreter on both sides and every Spark process on the loopback."""
    return job_env(
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        SPARK_LOCAL_IP=HOST,
        MOBILITY_PSEUDO_KEY=pseudo_key,
    )  # the cluster profile refuses to start without a key


def _wait_for(process: subprocess.Popen[bytes], log: Path, ready: re.Pattern[str], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready.search(log.read_text(errors="replace")):
        if process.poll() is not None:
            pytest.fail(f"{what} exited with status {process.returncode} before ready; {log}:\n{tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: no {ready.pattern!r} after {START_TIMEOUT_S} s; {log}:\n{tail(log)}")
        time.sleep(0.5)


@contextlib.contextmanager
def standalone_cluster(folder: Path, workers: Sequence[tuple[int, str]]) -> Iterator[Cluster]:
    """A master and one worker per (cores, memory) on free ports of 127.0.0.1, stopped whatever happens."""
    master_port, master_ui, *ports = free_ports(2 + 2 * len(workers))
    url = f"spark://{HOST}:{master_port}"
    folder.mkdir(parents=True, exist_ok=True)
    spark_class = str(BIN / "spark-class")
    env = child_env("unused")
    started: list[subprocess.Popen[bytes]] = []
    try:
        master_log = folder / "master.log"
        started.append(
            start([spark_class, "org.apache.spark.deploy.master.Master", "--host", HOST,
                   "--port", str(master_port), "--webui-port", str(master_ui)], master_log, env)
        )  # fmt: skip
        _wait_for(started[-1], master_log, MASTER_READY, f"master {url}")
        running = []
        for i, (cores, memory) in enumerate(workers):
            work_dir, log = folder / f"worker-{i}", folder / f"worker-{i}.log"
            work_dir.mkdir()
            port, ui = ports[2 * i], ports[2 * i + 1]
            started.append(
                start([spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", HOST,
                       "--port", str(port), "--webui-port", str(ui), "--cores", str(cores),
                       "--memory", memory, "--work-dir", str(work_dir)], log, env)
            )  # fmt: skip
            _wait_for(started[-1], log, WORKER_READY, f"worker {i} of {url}")
            running.append(Worker(started[-1], work_dir, log))
        yield Cluster(url, f"http://{HOST}:{master_ui}", tuple(running))
    finally:
        # The workers first (the master outlives its workers), and all even if one will not die.
        survivors = [pid for process in reversed(started) for pid in stop(process)]
        assert not survivors, f"Spark processes survived SIGKILL: {survivors}"


def package(out: Path) -> Path:
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


def submit_command(
    cluster: Cluster, py_files: Path, jars_dir: Path, job: str, *args: str, memory: str = "1g"
) -> list[str]:
    """``spark-submit`` of ``jobs/<job>.py`` with the cluster profile, as ``make submit`` writes it."""
    return [
        str(BIN / "spark-submit"),
        "--master", cluster.url,
        "--jars", ",".join(str(jar) for jar in delta_jars(jars_dir)),
        "--py-files", str(py_files),
        "--driver-memory", memory,
        "--executor-memory", memory,
        str(PROJECT_ROOT / "jobs" / f"{job}.py"),
        "--profile", "cluster",
        *args,
    ]  # fmt: skip


def outputs(stdout: Path, stderr: Path) -> str:
    return f"stdout:\n{tail(stdout)}\nstderr:\n{tail(stderr, 80)}"


def submit(command: Sequence[str], out: Path, err: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start spark-submit in a group of its own (it forks the Python driver), from a folder that is not
    the project: the driver imports ``mobility`` from the zip, and the job still finds its settings
    (``conf/`` beside ``jobs/``)."""
    return start(command, out, env, cwd=out.parent, err=err)


def finished(process: subprocess.Popen[bytes], out: Path, err: Path, timeout_s: float) -> int:
    """The exit status of a submitted job; the whole group killed and the test failed on timeout."""
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop(process)
        pytest.fail(f"spark-submit still running after {timeout_s} s\n{outputs(out, err)}")

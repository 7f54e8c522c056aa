"""What the harness measures around a step: peak memory of the driver (JVM and Python, from /proc, reset
before each step) and of every process of the run, and Spark's own figures of the stages the step ran
(shuffle, spill, failed tasks), read from the driver's status API."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import SparkSession

STAGE_FIGURES = {
    "shuffle_read_bytes": "shuffleReadBytes",
    "shuffle_write_bytes": "shuffleWriteBytes",
    "memory_spilled_bytes": "memoryBytesSpilled",
    "disk_spilled_bytes": "diskBytesSpilled",
    "input_bytes": "inputBytes",
    "output_bytes": "outputBytes",
    "failed_tasks": "numFailedTasks",
    "tasks": "numCompleteTasks",
}


def _status(pid: int) -> dict[str, int]:
    """The memory lines of /proc/<pid>/status in bytes (VmHWM, VmRSS); empty once the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _pss(pid: int) -> int:
    """The process's proportional set size in bytes (a page shared by n processes counts 1/n in each), so
    that a sum over processes counts each page once; 0 once the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) * 1024 for line in lines if line.startswith("Pss:")), 0)


def reset_peak(pid: int) -> None:
    """Start a new peak (VmHWM) for the process: writing 5 to clear_refs resets it (Linux >= 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (the JVM's Python workers, their daemons)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def jvm_pid(spark: SparkSession) -> int:
    return int(spark.sparkContext._jvm.ProcessHandle.current().pid())


@dataclass
class Memory:
    """Peak memory of the driver's JVM and Python (each process's own peak, reset at start) and of all the
    run's processes together (the JVM, this Python, the JVM's Python workers: their summed proportional set
    sizes, sampled every ``interval`` seconds; summed resident sizes counted shared pages once per process,
    26.8 GiB on this 24 GiB machine at L)."""

    jvm: int
    interval: float = 0.25
    total_peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Memory:
        for pid in (self.jvm, os.getpid()):
            reset_peak(pid)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            pids = {self.jvm, os.getpid(), *_children(self.jvm), *_children(os.getpid())}
            self.total_peak = max(self.total_peak, sum(_pss(p) for p in pids))
            self._stop.wait(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def figures(self) -> dict[str, int]:
        jvm = _status(self.jvm).get("VmHWM", 0)
        python = _status(os.getpid()).get("VmHWM", 0)
        # A sample can miss a short peak of one process: the total is at least each one's own peak.
        return {
            "driver_jvm_peak_bytes": jvm,
            "driver_python_peak_bytes": python,
            "processes_peak_bytes": max(self.total_peak, jvm, python),
        }


class Stages:
    """Spark's figures of the stages run since the last ``mark``, summed, from the driver's status API
    (``/api/v1/applications/<id>/stages``); needs the UI server (``spark.ui.enabled``)."""

    def __init__(self, spark: SparkSession) -> None:
        sc = spark.sparkContext
        if not sc.uiWebUrl:
            raise RuntimeError("the benchmark reads Spark's status API: start Spark with spark.ui.enabled")
        self.url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/stages"
        self.seen = -1

    def _stages(self) -> list[dict]:
        with urllib.request.urlopen(self.url, timeout=60) as response:
            return json.load(response)

    def _settled(self) -> list[dict]:
        """The stage list once the listener bus has caught up: nothing active, the same list twice."""
        before = None
        for _ in range(60):
            stages = self._stages()
            key = sorted((s["stageId"], s["attemptId"], s["status"]) for s in stages)
            if key == before and not any(s["status"] == "ACTIVE" for s in stages):
                return stages
            before = key
            time.sleep(0.5)
        return stages

    def mark(self) -> None:
        self.seen = max((s["stageId"] for s in self._settled()), default=-1)

    def figures(self) -> dict[str, int]:
        """Figures of the stages after the mark (every attempt), then a new mark."""
        stages = [s for s in self._settled() if s["stageId"] > self.seen]
        out = {name: sum(int(s.get(key, 0)) for s in stages) for name, key in STAGE_FIGURES.items()}
        out["stages"] = len({s["stageId"] for s in stages if s["status"] != "SKIPPED"})
        out["failed_stages"] = sum(s["status"] == "FAILED" for s in stages)
        self.seen = max((s["stageId"] for s in stages), default=self.seen)
        return out

"""Processes the tests start for real (Spark masters and workers, servers, jobs killed while they write):
free ports of the loopback, a process group of their own, and a stop that leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from mobility.config import ENV_PREFIX

HOST = "127.0.0.1"
BIN = Path(sys.executable).parent  # the venv's bin: mobility, and spark-class and spark-submit of pyspark
STOP_TIMEOUT_S = 30


def job_env(**extra: str) -> dict[str, str]:
    """The caller's environment without its MOBILITY_* settings (the job's command line alone sets them),
    plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}, **extra}


def free_ports(count: int = 1) -> list[int]:
    """Ports the OS reports free; all sockets are held until the last is bound, so they differ."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else f"({path} was not written)"
    return "\n".join(text.splitlines()[-lines:])


def start(
    command: Sequence[str],
    log: Path,
    env: Mapping[str, str],
    cwd: Path | None = None,
    append: bool = False,
    err: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a process group of its own (a JVM and whatever it forks), output to ``log``
    (standard error too, unless ``err`` names its own file)."""
    mode = "ab" if append else "wb"
    with log.open(mode) as out, err.open(mode) if err else contextlib.nullcontext() as error:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=error or subprocess.STDOUT, env=dict(env),
            cwd=cwd, start_new_session=True,
        )  # fmt: skip


def group_members(pgid: int) -> list[int]:
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


def stop(process: subprocess.Popen[bytes], grace_s: float = STOP_TIMEOUT_S) -> list[int]:
    """Stop the whole process group (SIGTERM, then SIGKILL); return what survives (nothing, normally)."""
    pgid = process.pid  # start_new_session: the child leads its own group
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):  # the group is already gone
            os.killpg(pgid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if process.poll() is not None and not group_members(pgid):
                return []
            time.sleep(0.2)
    return [process.pid] if process.poll() is None else group_members(pgid)


def pause(process: subprocess.Popen[bytes]) -> None:
    """Freeze the whole group (SIGSTOP), as a long GC pause or a descheduled node would."""
    os.killpg(process.pid, signal.SIGSTOP)


def resume(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGCONT)


def kill(process: subprocess.Popen[bytes]) -> None:
    """``kill -9`` of the whole group at once, as the OOM killer or a lost node would; wait until gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(STOP_TIMEOUT_S)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)

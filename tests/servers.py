"""Servers a team deployment runs, started by the tests for real on 127.0.0.1: PostgreSQL (Debian's
package, a data folder of its own) and ``mlflow server`` with PostgreSQL as its backend store and a shared
folder for its artifacts. Both can be stopped and started again on the same port and data, which is how
the tests take the tracking server down in the middle of a training."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import BIN, HOST, STOP_TIMEOUT_S, free_ports, start, stop, tail

START_TIMEOUT_S = 120


class ServerError(RuntimeError):
    """A server the tests need did not start; the message holds its log's tail."""


def postgres_bin() -> Path:
    """The folder of Debian's PostgreSQL server programs (the newest installed version)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise ServerError(
            "PostgreSQL's server is not installed: apt-get install postgresql (Debian's package)"
        )
    return found[-1].parent


@dataclass
class Postgres:
    """A PostgreSQL server of the tests' own: trust authentication on the loopback, one database."""

    folder: Path
    port: int = field(default_factory=lambda: free_ports()[0])
    database: str = "mlflow"
    user: str = "mlflow"
    process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"postgresql://{self.user}@{HOST}:{self.port}/{self.database}"

    @property
    def _os_user(self) -> str | None:
        """PostgreSQL refuses to run as root: as root, the server runs as Debian's ``postgres`` user."""
        return "postgres" if os.geteuid() == 0 else None

    def _run(self, *command: str) -> None:
        result = subprocess.run(command, capture_output=True, text=True, user=self._os_user, check=False)
        if result.returncode != 0:
            raise ServerError(
                f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            )

    def start(self) -> Postgres:
        pg = postgres_bin()
        data = self.folder / "data"
        if not data.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            if self._os_user:
                entry = pwd.getpwnam(self._os_user)
                os.chown(self.folder, entry.pw_uid, entry.pw_gid)
            self._run(str(pg / "initdb"), "-D", str(data), "-U", self.user, "--auth=trust", "-E", "UTF8")
        log = self.folder / "postgres.log"
        command = [str(pg / "postgres"), "-D", str(data), "-h", HOST, "-p", str(self.port),
                   "-k", str(self.folder)]  # fmt: skip
        with log.open("ab") as out:  # appended across restarts
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, user=self._os_user,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while subprocess.run([str(pg / "pg_isready"), "-h", HOST, "-p", str(self.port)],
                             capture_output=True, check=False).returncode != 0:  # fmt: skip
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise ServerError(f"PostgreSQL did not start on port {self.port}:\n{tail(log)}")
            time.sleep(0.3)
        exists = subprocess.run(
            [str(pg / "psql"), "-h", HOST, "-p", str(self.port), "-U", self.user, "-d", "postgres",
             "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
        if exists != "1":
            self._run(str(pg / "createdb"), "-h", HOST, "-p", str(self.port), "-U", self.user, self.database)
        return self

    def stop(self) -> None:
        """Fast shutdown (SIGINT: sessions rolled back), then the group's SIGTERM and SIGKILL if need be."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.process.pid, signal.SIGINT)
                self.process.wait(STOP_TIMEOUT_S)
            survivors = stop(self.process)
            self.process = None
            if survivors:
                raise ServerError(f"PostgreSQL processes survived SIGKILL: {survivors}")


@contextlib.contextmanager
def postgres_server():
    """A PostgreSQL server in a folder its OS user can reach (pytest's own temporary folders are private
    to root), removed with its data afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="mobility-pg-"))
    server = Postgres(folder)
    try:
        yield server.start()
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


@dataclass
class MlflowServer:
    """``mlflow server`` on a fixed free port: ``backend`` store, artifacts proxied to ``artifacts``."""

    backend: str
    artifacts: Path
    log: Path
    port: int = field(default_factory=lambda: free_ports()[0])
    process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> MlflowServer:
        command = [
            str(BIN / "mlflow"), "server",
            "--backend-store-uri", self.backend,
            "--artifacts-destination", str(self.artifacts), "--serve-artifacts",
            "--host", HOST, "--port", str(self.port), "--workers", "1",
        ]  # fmt: skip
        # No job runner (GenAI scorers, periodic tasks): two processes less on a shared two-core machine.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        env.pop("MLFLOW_TRACKING_URI", None)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.process = start(command, self.log, env, cwd=self.log.parent, append=True)  # across restarts
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise ServerError(f"mlflow server did not answer at {self.uri}/health:\n{tail(self.log)}")
            time.sleep(0.5)
        return self

    def healthy(self) -> bool:
        with (
            contextlib.suppress(urllib.error.URLError, OSError),  # not listening (yet, or any more)
            urllib.request.urlopen(f"{self.uri}/health", timeout=5) as response,
        ):
            return response.status == 200
        return False

    def stop(self) -> None:
        if self.process is not None:
            survivors = stop(self.process)
            self.process = None
            if survivors:
                raise ServerError(f"mlflow server processes survived SIGKILL: {survivors}")

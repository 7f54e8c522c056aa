"""The whole pipeline on a Spark standalone cluster of two workers, as a team runs it: ``jobs/pipeline.py``
through spark-submit with the ``cluster`` profile, the lake and the MLflow artifacts in shared folders,
runs and models tracked by an ``mlflow server`` whose store is PostgreSQL. In the middle of the flows step
one worker is killed (``kill -9`` of its JVM and executor): the step finishes on the other.

The local run on the same data is the session's ``ref_lake`` and ``generated_lake`` (the same reference
files, generator settings and pseudonym key): every ref and gold table must have its row count and the sum
of each numeric column.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from mlflow import MlflowClient
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import NumericType

from mobility import gold, synth
from mobility.config import Settings
from mobility.lake import Lake
from mobility.tracking import CHAMPION
from tests.cluster import standalone
from tests.cluster.standalone import Cluster, Worker
from tests.conftest import GENERATED
from tests.processes import kill
from tests.servers import MlflowServer, postgres_server

PIPELINE_TIMEOUT_S = 2400
WORK_BEFORE_KILL_S = 10  # into the flows step: both executors are running its tasks
LOST_EXECUTOR = re.compile(r"[Ll]ost executor|ExecutorLostFailure|[Ww]orker lost")

pytestmark = [pytest.mark.cluster, pytest.mark.fault, pytest.mark.slow,
              pytest.mark.timeout(PIPELINE_TIMEOUT_S + 600)]  # fmt: skip


@dataclass(frozen=True)
class ClusterRun:
    status: int
    stdout: Path
    stderr: Path
    lake: Path
    artifacts: Path
    report: Path
    seconds: float
    cluster: Cluster
    killed: Worker
    runs: list[dict]
    aliases: dict[str, str]
    stored_runs: int  # rows of PostgreSQL's runs table

    def outputs(self) -> str:
        return standalone.outputs(self.stdout, self.stderr)


def _kill_in_the_middle_of(step: str, job, logs: tuple[Path, Path], worker: Worker) -> None:
    """Wait for ``step`` to start in the driver's output, let it work, then ``kill -9`` the worker."""

    def printed() -> str:
        return "".join(log.read_text(errors="replace") for log in logs)

    deadline = time.monotonic() + PIPELINE_TIMEOUT_S
    while f"{step}: started" not in printed():
        if job.poll() is not None:
            pytest.fail(f"the pipeline ended ({job.returncode}) before {step}:\n{standalone.outputs(*logs)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{step} did not start within {PIPELINE_TIMEOUT_S} s:\n{standalone.outputs(*logs)}")
        time.sleep(0.5)
    time.sleep(WORK_BEFORE_KILL_S)
    assert f"{step}: done" not in printed(), f"{step} ended before the kill"
    assert list(worker.work_dir.glob("app-*/*")), "no executor on the worker to kill"
    kill(worker.process)


@pytest.fixture(scope="module")
def source(ref_lake: Lake, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The input files of the session's generated lake, written again."""
    out = tmp_path_factory.mktemp("input")
    synth.generate(ref_lake.spark, ref_lake, settings, out=out, **GENERATED)
    return out


@pytest.fixture(scope="module")
def run(source: Path, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterRun]:
    folder = tmp_path_factory.mktemp("cluster-run")
    shared = folder / "shared"  # what every node reads and writes: NFS or an object store in a deployment
    py_files = standalone.package(folder / "dist")
    key = settings.privacy.dev_key.get_secret_value()  # the local run's: the same pseudonyms
    with (
        postgres_server() as postgres,
        standalone.standalone_cluster(folder / "cluster", [(1, "1536m"), (1, "1536m")]) as cluster,
    ):
        tracking = MlflowServer(postgres.uri, shared / "mlartifacts", folder / "mlflow.log").start()
        try:
            command = standalone.submit_command(
                cluster, py_files, settings.spark.jars_dir, "pipeline", "--input", str(source),
                "--set", f"lake.root={shared / 'lake'}", "--set", f"reference.dir={settings.reference.dir}",
                "--set", f"mlflow.tracking_uri={tracking.uri}", "--set", f"report.out={shared / 'report'}",
                "--set", "spark.shuffle_partitions=4",
                "--set", "train.valid_months=3", "--set", "train.test_months=3",
            )  # fmt: skip
            out, err = folder / "submit.out", folder / "submit.err"
            started = time.monotonic()
            job = standalone.submit(command, out, err, standalone.child_env(key))
            _kill_in_the_middle_of("flows", job, (out, err), cluster.workers[1])
            status = standalone.finished(job, out, err, PIPELINE_TIMEOUT_S)
            seconds = time.monotonic() - started
            client = MlflowClient(tracking.uri)
            experiment = client.get_experiment_by_name(settings.mlflow.experiment)
            runs = [
                {"model": r.data.params.get("model"), "artifact_uri": r.info.artifact_uri}
                for r in client.search_runs([experiment.experiment_id])
            ] if experiment else []  # fmt: skip
            name = settings.train.model_name
            aliases = dict(client.get_registered_model(name).aliases) if runs else {}
            with psycopg.connect(postgres.uri) as connection, connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM runs")
                stored_runs = cursor.fetchone()[0]
        finally:
            tracking.stop()
    yield ClusterRun(status, out, err, shared / "lake", shared / "mlartifacts", shared / "report", seconds,
                     cluster, cluster.workers[1], runs, aliases, stored_runs)  # fmt: skip


def test_the_whole_pipeline_runs_on_the_cluster_through_a_killed_worker(run: ClusterRun):
    assert run.status == 0, f"spark-submit exited {run.status}\n{run.outputs()}"
    assert "pipeline: done" in run.stdout.read_text(), run.outputs()
    for worker in run.cluster.workers:  # executors ran on both workers
        assert list(worker.work_dir.glob("app-*/*")), f"no executor ran in {worker.work_dir}"
    assert run.killed.process.returncode == -9
    assert LOST_EXECUTOR.search(run.stderr.read_text(errors="replace")), "the driver never lost the executor"
    print(f"\ncluster pipeline (2 workers of 1 core, one killed during flows): {run.seconds:.0f} s")


def _figures(lake: Lake, table: str) -> dict[str, object]:
    """Rows and the sum of each numeric column."""
    df = lake.read(table)
    numeric = [f.name for f in df.schema.fields if isinstance(f.dataType, NumericType)]
    return df.agg(F.count(F.lit(1)).alias("rows"), *(F.sum(c).alias(c) for c in numeric)).first().asDict()


def test_reference_tables_built_on_the_cluster_equal_those_of_the_local_run(
    run: ClusterRun, ref_lake: Lake, spark: SparkSession
):
    assert run.status == 0, run.outputs()
    assert re.search(r"rome v3 fiches\s+531\b", run.stdout.read_text()), "no reference summary in stdout"
    on_cluster = Lake(spark, run.lake)
    tables = ref_lake.tables("ref")
    assert len(tables) >= 8 and on_cluster.tables("ref") == tables
    for table in tables:
        assert _figures(on_cluster, table) == pytest.approx(_figures(ref_lake, table), rel=1e-9), table


def test_gold_tables_built_on_the_cluster_equal_those_of_the_local_run(
    run: ClusterRun, generated_lake: Lake, spark: SparkSession
):
    assert run.status == 0, run.outputs()
    on_cluster = Lake(spark, run.lake)
    for table in (f"gold.{name}" for name in gold.TABLES):
        local = _figures(generated_lake, table)
        assert local["rows"] > 0, table
        assert _figures(on_cluster, table) == pytest.approx(local, rel=1e-9), table
    assert on_cluster.read("gold.recommendations").count() > 0
    assert on_cluster.exists("gold.paths")  # empty here: no path of 3,000 seekers reaches a tense place
    assert (run.report / "rapport.html").is_file()


def test_the_cluster_tracks_runs_and_models_to_the_shared_server(run: ClusterRun, settings: Settings):
    assert run.status == 0, run.outputs()
    assert sorted(r["model"] for r in run.runs) == sorted(("stay", "popular", "markov", "ranker"))
    assert run.stored_runs == len(run.runs)  # the server's store is the PostgreSQL database
    assert CHAMPION in run.aliases
    assert all(r["artifact_uri"].startswith("mlflow-artifacts:") for r in run.runs)
    assert len(list(run.artifacts.rglob("MLmodel"))) >= len(run.runs)  # every model, in the shared folder

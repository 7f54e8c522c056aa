"""The reference step, shipped as ``make dist`` ships it, on a real Spark standalone cluster.

Local mode hides what a cluster needs: there the driver and the executors share one JVM and the checkout.
Here a master and one worker run on 127.0.0.1, ``jobs/reference.py`` goes through spark-submit with the
wheel as ``--py-files``, the Delta jars as ``--jars`` and the settings as ``--profile cluster --set ...``,
and the Delta tables it writes are read back. It takes minutes, hence the ``cluster`` and ``slow`` marks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mobility.config import Settings
from mobility.lake import Lake
from tests.cluster.standalone import (
    Cluster,
    child_env,
    finished,
    outputs,
    package,
    standalone_cluster,
    submit,
    submit_command,
)

SUBMIT_TIMEOUT_S = 600

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(SUBMIT_TIMEOUT_S + 300)]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A master and one worker (2 cores, 2 GB) on free ports of 127.0.0.1."""
    with standalone_cluster(tmp_path / "cluster", [(2, "2g")]) as running:
        yield running


def _count_by(df: DataFrame, column: str) -> dict[str, int]:
    return {row[column]: row["n"] for row in df.groupBy(column).agg(F.count("*").alias("n")).collect()}


def test_reference_job_runs_on_a_standalone_cluster(
    cluster: Cluster, spark: SparkSession, settings: Settings, tmp_path: Path
) -> None:
    py_files = package(tmp_path / "dist")
    lake_root = tmp_path / "lake"
    stdout, stderr = tmp_path / "submit.out", tmp_path / "submit.err"
    command = submit_command(
        cluster, py_files, settings.spark.jars_dir, "reference",
        "--set", f"lake.root={lake_root}", "--set", f"reference.dir={settings.reference.dir}",
    )  # fmt: skip

    job = submit(command, stdout, stderr, child_env("cluster-test-key"))
    status = finished(job, stdout, stderr, SUBMIT_TIMEOUT_S)

    assert status == 0, f"spark-submit exited {status}\n{outputs(stdout, stderr)}"
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

"""The SparkSession factory: Delta Lake wired in from local jars, settings sized for the machine.

Two ways a session starts. From plain Python (CLI, notebooks, tests) this module launches the JVM, so it
sets the master, the driver memory and ``spark.jars`` itself: driver memory only counts before the JVM
exists. Under ``spark-submit`` the JVM is already up and those come from its command line (``--master``,
``--jars``, ``--driver-memory``); only session-level settings are applied then.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from mobility.config import Settings
from mobility.errors import MobilityError

log = logging.getLogger(__name__)


class JarsMissingError(MobilityError):
    """The Delta jars were never fetched: ``make setup`` fetches them."""


def delta_jars(jars_dir: Path) -> list[Path]:
    """The jar files of ``jars_dir``; fail with the remedy when Delta's jar is absent."""
    jars = sorted(Path(jars_dir).glob("*.jar"))
    if not any(jar.name.startswith("delta-spark_") for jar in jars):
        raise JarsMissingError(
            f"no Delta jars in {jars_dir}: run `make setup` (or `make jars`) to fetch them with Maven"
        )
    return jars


def under_spark_submit() -> bool:
    """True when spark-submit launched this Python process (the JVM gateway already exists)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def session_conf(settings: Settings) -> dict[str, str]:
    """Settings applied to every session, whoever started the JVM."""
    spark = settings.spark
    conf = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(spark.shuffle_partitions),
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.warehouse.dir": str(settings.lake.root / "_warehouse"),
        # No extra shuffle before each Delta write: the tables here are written whole by few tasks.
        "spark.databricks.delta.optimizeWrite.enabled": "false",
    }
    conf.update(spark.conf)
    return conf


def launch_conf(settings: Settings) -> dict[str, str]:
    """Settings that only count when this process launches the JVM."""
    spark = settings.spark
    return {
        "spark.master": spark.master,
        "spark.driver.memory": spark.driver_memory,
        "spark.jars": ",".join(str(jar) for jar in delta_jars(spark.jars_dir)),
        "spark.ui.enabled": str(spark.ui_enabled).lower(),
    }


def get_spark(settings: Settings) -> SparkSession:
    """The process's SparkSession with Delta enabled, created on first call."""
    conf = session_conf(settings)
    if not under_spark_submit():
        conf.update(launch_conf(settings))
        if settings.spark.master.startswith("local"):
            # Python workers run this interpreter (the venv with mlflow and scikit-learn), not the first
            # python3 on the PATH; PySpark reads the variable when the context starts.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(settings.spark.app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(settings.spark.log_level)
    log.info("spark %s, master %s", session.version, session.sparkContext.master)
    return session

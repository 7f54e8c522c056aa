"""The lakehouse: where each table lives under ``lake.root`` and the ways a step writes one.

A table is named ``zone.name`` (``ref.rome``, ``silver.spells``, ``gold.flows``) and stored as a Delta table
at ``<lake.root>/<zone>/<name>``. Tables are addressed by path rather than through a metastore, so that the
same lake is read identically by a local run, a cluster and a notebook. Every write returns the Delta
version it produced; steps log it and MLflow runs record it, which makes any result reproducible by time
travel.

Writers are optimistic (Delta's protocol): two jobs writing one table at once (two ingests of different
batches) both prepare their files, and the second to commit finds a conflict. Every write here is a
whole operation that can simply be done again on the newer table (merges on natural keys, overwrites,
appends of run logs), so a conflicting commit is retried up to ``lake.commit_attempts`` times, after a
short random pause, before it fails with the table named.

Spark writes the tables it computes. A small table a step builds on the driver (the published views) is
written from Arrow by delta-rs, the same Delta protocol without Spark's fixed cost per commit: the jobs that
rebuild the table's state before and after it, about a second whatever the size.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import deltalake
import pyarrow as pa
from delta.exceptions import (
    ConcurrentAppendException,
    ConcurrentDeleteDeleteException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    DeltaConcurrentModificationException,
    MetadataChangedException,
    ProtocolChangedException,
)
from delta.tables import DeltaTable
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from mobility.errors import MobilityError

log = logging.getLogger(__name__)
T = TypeVar("T")

ZONES = ("bronze", "silver", "ref", "gold")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Delta's commit conflicts: another writer committed first. (Two writers creating one table at once get
# ProtocolChangedException.)
CONFLICTS = (
    DeltaConcurrentModificationException, ConcurrentWriteException, MetadataChangedException,
    ProtocolChangedException, ConcurrentAppendException, ConcurrentDeleteReadException,
    ConcurrentDeleteDeleteException, ConcurrentTransactionException, deltalake.exceptions.CommitFailedError,
)  # fmt: skip
_RETRY_PAUSE_S = 1.0  # times the attempt, with jitter: writers that collided do not collide again
# Delta's own counts of what a commit did, logged with it (nothing is read back to count it).
_LOGGED_METRICS = (
    "numOutputRows", "numTargetRowsInserted", "numTargetRowsUpdated", "numTargetRowsDeleted",
    "numDeletionVectorsAdded", "numTargetFilesAdded", "numTargetFilesRemoved", "numFiles",
    "num_added_rows", "num_added_files",  # delta-rs' names
)  # fmt: skip


class LakeError(MobilityError):
    """A table name outside the catalogue, or a table read before any step wrote it."""


@dataclass(frozen=True)
class Lake:
    spark: SparkSession
    root: Path
    commit_attempts: int = 1  # lake.commit_attempts: how often a write that meets a conflict is tried

    def path(self, table: str) -> str:
        """Storage path of ``zone.name``; refuses names outside the zones."""
        zone, _, name = table.partition(".")
        if zone not in ZONES or not _NAME.match(name):
            raise LakeError(f"table {table!r}: expected zone.name with zone in {', '.join(ZONES)}")
        return str(Path(self.root) / zone / name)

    def exists(self, table: str) -> bool:
        return DeltaTable.isDeltaTable(self.spark, self.path(table))

    def tables(self, zone: str | None = None) -> list[str]:
        """The tables present in the lake (optionally in one zone), sorted."""
        found = []
        for zone_dir in sorted(Path(self.root).glob("*")):
            if zone_dir.name in ZONES and (zone is None or zone_dir.name == zone):
                found += [
                    f"{zone_dir.name}.{d.name}"
                    for d in sorted(zone_dir.iterdir())
                    if (d / "_delta_log").is_dir()
                ]
        return found

    def read(self, table: str, version: int | None = None) -> DataFrame:
        """The table, at ``version`` when given (Delta time travel)."""
        if not self.exists(table):
            raise LakeError(
                f"table {table} does not exist at {self.path(table)}: run the step that writes it"
            )
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(self.path(table))

    def read_arrow(self, table: str, version: int) -> pa.Table:
        """The table at ``version`` as one Arrow table on the driver, read from its files without Spark
        (delta-rs): for the small tables a step reads whole, where a Spark read costs a job that rebuilds
        the snapshot and a plan, about a second each. What delta-rs cannot read (a missing version, deletion
        vectors today) is refused, never read in part."""
        try:
            return deltalake.DeltaTable(self.path(table), version=version).to_pyarrow_table()
        except deltalake.exceptions.DeltaError as e:
            raise LakeError(
                f"{table} version {version} at {self.path(table)} cannot be read as Arrow: {e}"
            ) from e

    def version(self, table: str) -> int:
        """The latest Delta version of the table (a LakeError when it was never written)."""
        return self.last_commit(table)[0]

    def last_commit(self, table: str) -> tuple[int, dict]:
        """The latest version and its ``commitInfo``, read from the last commit file of the Delta log: a
        file read, where ``DeltaTable.history`` starts Spark jobs after every write."""
        log_dir = Path(self.path(table)) / "_delta_log"
        versions = [int(p.name[:-5]) for p in log_dir.glob("*.json") if p.name[:-5].isdigit()]
        if not versions:
            raise LakeError(
                f"table {table} does not exist at {self.path(table)}: run the step that writes it"
            )
        version = max(versions)
        return version, self.commit_info(table, version)

    def commit_info(self, table: str, version: int) -> dict:
        """The ``commitInfo`` of one version (its operation and ``operationMetrics``), read from its commit
        file; empty when the file has none."""
        path = Path(self.path(table)) / "_delta_log" / f"{version:020d}.json"
        with open(path, encoding="utf-8") as commit:
            actions = (json.loads(line) for line in commit if line.strip())
            return next((a["commitInfo"] for a in actions if "commitInfo" in a), {})

    def rows_written(self, table: str, version: int) -> int:
        """Rows the write that made ``version`` wrote (its ``numOutputRows``): the table's rows after a
        whole overwrite, known without reading the table back."""
        metrics = self.commit_info(table, version).get("operationMetrics") or {}
        if "numOutputRows" not in metrics:
            raise LakeError(f"{table} version {version}: its commit records no numOutputRows")
        return int(metrics["numOutputRows"])

    def overwrite(
        self,
        df: DataFrame,
        table: str,
        partition_by: Sequence[str] = (),
        properties: dict[str, str] | None = None,
    ) -> int:
        """Replace the whole table (schema included); rerunning on the same input gives the same rows. The
        Delta table ``properties`` given (``delta.dataSkippingStatsColumns``...) are set first on a table
        that exists without them (a write's options only apply when it creates the table)."""

        def write() -> None:
            writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
            if properties and self.exists(table):
                self.set_properties(table, properties)
            elif properties:
                writer = writer.options(**properties)
            if partition_by:
                writer = writer.partitionBy(*partition_by)
            writer.save(self.path(table))

        return self._committed(table, "overwrite", write)

    def overwrite_arrow(
        self,
        data: pa.Table,
        table: str,
        partition_by: Sequence[str] = (),
        properties: dict[str, str] | None = None,
    ) -> int:
        """Replace the whole table (schema included) by an Arrow table from the driver, written by delta-rs:
        for the small tables a step builds on the driver, which Spark would write at a second or two each
        (a write job, then the jobs rebuilding the table's state after the commit). ``partition_by`` and
        the Delta table ``properties`` as ``overwrite``'s (delta-rs applies a write's properties only when it
        creates the table: those that differ on a table that exists are set first)."""
        return self._committed(
            table,
            "overwrite",
            lambda: self._write_arrow(data, table, "overwrite", partition_by, properties),
        )

    def append_arrow(self, data: pa.Table, table: str) -> int:
        """Add the rows of an Arrow table from the driver (run logs), written by delta-rs."""
        return self._committed(table, "append", lambda: self._write_arrow(data, table, "append"))

    def _write_arrow(
        self,
        data: pa.Table,
        table: str,
        mode: str,
        partition_by: Sequence[str] = (),
        properties: dict[str, str] | None = None,
    ) -> None:
        schema_mode = "overwrite" if mode == "overwrite" else "merge"
        if properties and self.exists(table):
            current = deltalake.DeltaTable(self.path(table))
            changed = {k: v for k, v in properties.items() if current.metadata().configuration.get(k) != v}
            if changed:
                current.alter.set_table_properties(changed)
                log.info("table %s: properties set: %s", table, changed)
        deltalake.write_deltalake(
            self.path(table),
            data,
            mode=mode,
            schema_mode=schema_mode,
            partition_by=list(partition_by) or None,
            configuration=properties,
        )

    def set_properties(self, table: str, properties: dict[str, str]) -> None:
        """Set the Delta table ``properties`` that differ (a commit only when one does)."""
        current = DeltaTable.forPath(self.spark, self.path(table)).detail().first()["properties"]  # one row
        changed = {k: v for k, v in properties.items() if current.get(k) != v}
        if changed:
            pairs = ", ".join(f"'{k}' = '{v}'" for k, v in sorted(changed.items()))
            self.spark.sql(f"ALTER TABLE delta.`{self.path(table)}` SET TBLPROPERTIES ({pairs})")
            log.info("table %s: properties set: %s", table, changed)

    def overwrite_partitions(self, df: DataFrame, table: str, partition_by: Sequence[str]) -> int:
        """Replace only the partitions present in ``df`` (dynamic partition overwrite); others stay."""
        if not partition_by:
            raise LakeError(f"overwrite_partitions of {table} needs partition columns")

        def write() -> None:
            writer = df.write.format("delta").partitionBy(*partition_by)
            if self.exists(table):
                writer = writer.mode("overwrite").option("partitionOverwriteMode", "dynamic")
            writer.save(self.path(table))

        return self._committed(table, "overwrite_partitions", write)

    def replace_where(
        self, df: DataFrame, table: str, condition: str, partition_by: Sequence[str] = ()
    ) -> int:
        """Replace the rows matching the SQL ``condition`` by ``df`` (whose rows must all match it),
        atomically; partitions the condition does not match stay as they are, and a matched one left empty
        by ``df`` is emptied, which a dynamic partition overwrite would not do. Creates the table on first
        write."""

        def write() -> None:
            if not self.exists(table):
                writer = df.write.format("delta").mode("overwrite")
            else:
                writer = df.write.format("delta").mode("overwrite").option("replaceWhere", condition)
            if partition_by:
                writer = writer.partitionBy(*partition_by)
            writer.save(self.path(table))

        return self._committed(table, "replace_where", write)

    def merge(
        self,
        df: DataFrame,
        table: str,
        keys: Sequence[str],
        update_when: str | Column | None = None,
        partition_by: Sequence[str] = (),
        insert_only: bool = False,
        properties: dict[str, str] | None = None,
        update_set: dict[str, Column] | None = None,
    ) -> int:
        """Upsert ``df`` on natural ``keys``: new keys are inserted, matched rows updated when
        ``update_when`` (a SQL condition or a Column over ``t.`` target and ``s.`` source) holds, or always
        if None, or never with ``insert_only``; updated to the source row, or to ``update_set`` (column ->
        expression over ``t.`` and ``s.``) when given. Creates the table on first write, with the Delta
        table ``properties`` given (deletion vectors, statistics columns)."""
        if not keys:
            raise LakeError(f"merge into {table} needs key columns")
        condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)

        def write() -> None:
            if self._first_write(df, table, partition_by, properties):
                return
            target = DeltaTable.forPath(self.spark, self.path(table)).alias("t")
            merge = target.merge(df.alias("s"), condition)
            if update_set is not None:
                merge = merge.whenMatchedUpdate(condition=update_when, set=update_set)
            elif not insert_only:
                merge = merge.whenMatchedUpdateAll(condition=update_when)
            merge.whenNotMatchedInsertAll().execute()

        return self._committed(table, "merge", write)

    def replace_groups(self, df: DataFrame, table: str, groups: DataFrame, key: Sequence[str]) -> int:
        """Replace the rows of the groups listed in ``groups`` (a frame of the group columns, distinct) by
        the rows of ``df`` (all in these groups, columns of the table), in one commit: the groups' rows that
        ``df`` lacks (by ``key``, unique in the table) are deleted, those it changes updated, its new ones
        inserted; equal rows and other groups' rows are not touched. On a table with deletion vectors, the
        files keep their untouched rows instead of being rewritten."""
        condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in key)
        values = {f"`{c}`": F.col(f"s.`{c}`") for c in df.columns}
        changed = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in df.columns if c not in key) or "false"

        def write() -> None:
            # The rows to delete read from the table as it is now (again on a retry after a conflict).
            old = self.read(table).join(groups, list(groups.columns), "left_semi").select(*key)
            gone = old.join(df.select(*key), list(key), "left_anti").withColumn("_gone", F.lit(True))
            source = df.withColumn("_gone", F.lit(False)).unionByName(gone, allowMissingColumns=True)
            (
                DeltaTable.forPath(self.spark, self.path(table))
                .alias("t")
                .merge(source.alias("s"), condition)
                .whenMatchedDelete(condition="s._gone")
                .whenMatchedUpdate(condition=changed, set=values)
                .whenNotMatchedInsert(condition="NOT s._gone", values=values)
                .execute()
            )

        return self._committed(table, "replace_groups", write)

    def create(
        self,
        table: str,
        schema: StructType,
        partition_by: Sequence[str] = (),
        properties: dict[str, str] | None = None,
    ) -> int:
        """Create an empty table of ``schema`` with Delta ``properties``, unless it exists; its version."""
        return self._committed(table, "create", lambda: self._create(table, schema, partition_by, properties))

    def _create(
        self, table: str, schema: StructType, partition_by: Sequence[str], properties: dict[str, str] | None
    ) -> None:
        # Not Delta's CREATE TABLE IF NOT EXISTS: it refuses a location holding files without a commit, which
        # is what a writer creating the same table at this moment leaves there (two ingests at once), or one
        # killed during its first write.
        self._first_write(self.spark.createDataFrame([], schema), table, partition_by, properties)

    def _first_write(
        self, df: DataFrame, table: str, partition_by: Sequence[str], properties: dict[str, str] | None
    ) -> bool:
        """Create ``table`` with the rows of ``df`` unless it exists; whether this call created it.

        The mode refuses a table another writer created since the check: an "append" would add these rows
        beside that writer's (the same keys twice), an "overwrite" would erase them. Both creating version 0
        at once is a commit conflict (retried by ``_committed``), and the retry finds the table. The
        properties are options prefixed "delta."."""
        if self.exists(table):
            return False
        writer = df.write.format("delta").mode("errorifexists").options(**(properties or {}))
        try:
            (writer.partitionBy(*partition_by) if partition_by else writer).save(self.path(table))
        except AnalysisException:
            if not self.exists(table):
                raise
            return False
        return True

    def append(self, df: DataFrame, table: str) -> int:
        """Add rows (run logs, whose history is the point)."""
        return self._committed(
            table,
            "append",
            lambda: (
                df.write.format("delta").mode("append").option("mergeSchema", "true").save(self.path(table))
            ),
        )

    def _committed(self, table: str, operation: str, write: Callable[[], None]) -> int:
        """Run ``write``, again on the newer table while it meets a commit conflict; the version made."""
        for attempt in range(1, self.commit_attempts + 1):
            try:
                write()
                break
            except CONFLICTS as error:
                reason = str(error).splitlines()[0][:300]
                if attempt == self.commit_attempts:
                    raise LakeError(
                        f"{operation} {table}: another job committed first, {attempt} time(s) "
                        f"(lake.commit_attempts {self.commit_attempts}); nothing of this write was kept, "
                        f"run it again: {reason}"
                    ) from error
                pause = _RETRY_PAUSE_S * attempt * (1 + random.random())
                log.warning("%s %s: another job committed first (%s); trying again in %.1f s (%d of %d)",
                            operation, table, reason, pause, attempt + 1, self.commit_attempts)  # fmt: skip
                time.sleep(pause)
        version, info = self.last_commit(table)
        metrics = {k: v for k, v in (info.get("operationMetrics") or {}).items() if k in _LOGGED_METRICS}
        log.info("%s %s -> version %d %s", operation, table, version, metrics or "")
        return version


def concurrently(tasks: dict[str, Callable[[], T]], workers: int) -> dict[str, T]:
    """Each task's result by name, ``workers`` tasks at a time (Spark runs the jobs of several threads of one
    session at once: small writes are mostly Delta's fixed costs, which overlap); every task runs to its
    end even when another fails, then the first failure is raised."""
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="lake") as pool:
        futures = {name: pool.submit(task) for name, task in tasks.items()}
    return {name: future.result() for name, future in futures.items()}

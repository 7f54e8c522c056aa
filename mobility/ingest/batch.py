"""The batch: input files -> ``bronze.records`` (as read) -> ``silver.*`` (typed, validated, conformed).

One run is one batch (``batch_id``). Every record read ends either in its silver table or in
``silver.quarantine`` with a reason code (``formats.REASONS``), its raw text, file and line; the per-file
reconciliation (read = valid + quarantined) is stored in ``silver.ingestion_log``.

One pass per record: each kind's files are read once (``readers``: IDX pseudonymised as the lines are
split), conformed row by row on narrow typed columns (``conform``), and that result, raw text included, is
staged once as Parquet, since bronze, silver, the quarantine and the counts all read it. Duplicates are
found on keys (``checks.duplicate_flags``), the checks across tables on ids (``conform``); both read the
staged rows' narrow columns and give small sets of flags.

Few commits: one bronze write (every kind's records, in one table partitioned by kind), one silver write
per kind present, one quarantine write for the whole batch (every kind's rejects and the unreadable files;
none when nothing was rejected), the seekers and the log. A kind absent from the batch
still has its silver table (created empty), so that later steps find every table. Silver tables use
deletion vectors, so that a monthly MERGE marks the rows it replaces instead of rewriting their files;
bronze and the quarantine keep no statistics of their raw text, silver only of its keys and batch
(``delta.dataSkippingStatsColumns``).

Writes are idempotent: silver tables are MERGEd on natural keys and a row changes only when its content
does (offers: when ``dateActualisation`` is newer), bronze and quarantine insert what they do not hold yet.
Ingesting the same files twice changes no row.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from mobility.config import Settings
from mobility.errors import MobilityError
from mobility.ingest import formats
from mobility.ingest.checks import (
    QUARANTINE_KEYS,
    apply_flags,
    first_flags,
    is_valid,
    quarantine_rows,
    raw_hash,
)
from mobility.ingest.conform import (
    CHANGE_COLUMNS,
    HIRE_COLUMNS,
    OFFER_COLUMNS,
    SEEKER_COLUMNS,
    SPELL_COLUMNS,
    TABLES,
    conform_changes,
    conform_hires,
    conform_offers,
    conform_spells,
    duplicates,
    offers_after_hires,
    positions_of,
    row_hash,
    unknown_seekers,
)
from mobility.ingest.readers import SourceFile, csv_lines, csv_records, discover, offer_records, split_offsets
from mobility.ingest.references import References, load_references
from mobility.lake import Lake, concurrently

log = logging.getLogger(__name__)

COLUMNS = {"spells": SPELL_COLUMNS, "sought_changes": CHANGE_COLUMNS, "hires": HIRE_COLUMNS,
           "offers": OFFER_COLUMNS}  # fmt: skip
CONFORMERS: dict[str, Callable[[DataFrame, References], DataFrame]] = {
    "spells": conform_spells, "sought_changes": conform_changes, "hires": conform_hires,
    "offers": conform_offers,
}  # fmt: skip
# Delta table properties, set when a table is created. Raw text is never a data-skipping statistic.
# Silver keeps statistics (data skipping) only of what reads filter on: its natural key and the batch (gold's
# refresh reads the rows of new batches). Statistics of every column cost a quarter of the silver writes at M.
SILVER_STATS = ("_batch_id", "_ingested_at")
BRONZE_PROPERTIES = {"delta.dataSkippingStatsColumns": "source_file,line,_batch_id,_ingested_at"}
# One bronze table for every kind of file (partitioned by it): one commit a batch, not one per kind.
BRONZE_KEYS = ["kind", "source_file", "line", "raw_hash"]
QUARANTINE_PROPERTIES = {
    "delta.dataSkippingStatsColumns": "table,reason,source_file,line,batch_id,ingested_at"
}


class RejectRateError(MobilityError):
    """More records were rejected than ``quality.max_reject_rate`` allows (everything was written)."""


@dataclass
class IngestReport:
    batch_id: str
    input_dir: Path
    counts: list[dict] = field(default_factory=list)  # per (table, file): read, valid, quarantined
    reasons: dict[str, int] = field(default_factory=dict)  # quarantined records per reason
    ignored: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def read(self) -> int:
        return sum(c["read"] for c in self.counts)

    @property
    def quarantined(self) -> int:
        return sum(c["quarantined"] for c in self.counts)

    @property
    def reject_rate(self) -> float:
        return self.quarantined / self.read if self.read else 0.0


# ------------------------------------------------------------------------------------------ the rows


def bronze_rows(records: DataFrame, kind: str, batch_id: str, at: Column) -> DataFrame:
    """Records as read: their kind of file, file, line and raw text (IDX already pseudonymised)."""
    return records.select(
        F.lit(kind).alias("kind"), "source_file", "line", "raw", raw_hash().alias("raw_hash"),
        F.lit(batch_id).alias("_batch_id"), at.alias("_ingested_at"),
    )  # fmt: skip


def silver_rows(df: DataFrame, columns: Sequence[str], batch_id: str, at: Column) -> DataFrame:
    """The valid records of ``df`` with their lineage and a hash of their content."""
    return df.where(is_valid()).select(
        *columns,
        row_hash(columns).alias("_row_hash"),
        F.col("source_file").alias("_source_file"),
        F.col("line").alias("_line"),
        F.lit(batch_id).alias("_batch_id"),
        at.alias("_ingested_at"),
    )


def silver_properties(rows: DataFrame, keys: Sequence[str]) -> dict[str, str]:
    """Delta properties of a silver table created for ``rows``: deletion vectors (a monthly MERGE marks the
    rows it replaces instead of rewriting their files) and statistics of ``keys`` and the batch only. Set at
    creation: a table created before keeps the properties it had."""
    stats = [*keys, *(c for c in SILVER_STATS if c in rows.columns)]
    return {"delta.enableDeletionVectors": "true", "delta.dataSkippingStatsColumns": ",".join(stats)}


ATTRIBUTES = ("birth_year", "sex", "education")  # a seeker's, from its latest spell


def seekers_of(spells: DataFrame) -> DataFrame:
    """One row per job seeker, with the attributes of the latest spell."""
    latest = F.max_by(F.struct(*ATTRIBUTES), F.col("registration_date"))
    agg = spells.groupBy("seeker_id").agg(
        latest.alias("_latest"),
        F.min("registration_date").alias("first_registration"),
        F.max("registration_date").alias("last_registration"),
    )
    df = agg.select(
        "seeker_id", "_latest.birth_year", "_latest.sex", "_latest.education",
        "first_registration", "last_registration",
    )  # fmt: skip
    return df.withColumn("_row_hash", row_hash(SEEKER_COLUMNS))


def seeker_update() -> tuple[dict[str, Column], Column]:
    """How a seeker of this batch's spells (``s``, from ``seekers_of``) updates the seeker's row (``t``): the
    attributes of whichever latest spell is later (the batch's on a tie: it corrects that spell), the
    earliest first and latest last registration. Spells are never removed, so this equals ``seekers_of`` of
    all the seeker's spells without reading them: a monthly batch costs the same in a lake of any size. (An
    erasure that removes some of a seeker's spells, not all, must compute that seeker again from the rest.)
    Returns the new values and the condition that they differ from the row's."""
    newer = F.col("s.last_registration") >= F.col("t.last_registration")
    values = {
        "seeker_id": F.col("t.seeker_id"),
        **{c: F.when(newer, F.col(f"s.{c}")).otherwise(F.col(f"t.{c}")) for c in ATTRIBUTES},
        "first_registration": F.least("t.first_registration", "s.first_registration"),
        "last_registration": F.greatest("t.last_registration", "s.last_registration"),
    }
    hashed = row_hash([values[c].alias(c) for c in SEEKER_COLUMNS])
    return {**values, "_row_hash": hashed}, hashed != F.col("t._row_hash")


def unreadable_rows(
    spark: SparkSession, unreadable: Sequence[SourceFile], batch_id: str, at: Column
) -> DataFrame:
    """A file that cannot be read at all (empty, corrupt gzip, binary) is one quarantined record saying why,
    so the batch says it came; its bytes are not kept."""
    rows = [(_table_of(f), f.name, f.defect) for f in unreadable]
    return spark.createDataFrame(rows, "table string, source_file string, message string").select(
        "table",
        F.lit("malformed").alias("reason"),
        "message",
        F.lit("").alias("raw"),
        F.sha2(F.lit(""), 256).alias("raw_hash"),
        "source_file",
        F.lit(0).cast("long").alias("line"),
        F.lit(batch_id).alias("batch_id"),
        at.alias("ingested_at"),
    )


def _empty_records(spark: SparkSession, table: str) -> DataFrame:
    """No record, in the shape a reader gives the conformer of ``table``."""
    kind = TABLES[table][0]
    if kind == "offers":
        return spark.createDataFrame([], "source_file string, line long, raw string, page_error string")
    layout = formats.CSV_LAYOUTS[kind]
    columns = ", ".join(f"`{c}` string" for c in layout.columns)
    return spark.createDataFrame(
        [], f"source_file string, line long, raw string, {columns}, n_fields int, n_columns int, "
        "missing_columns string, read_error string",
    )  # fmt: skip


def _input_kind(source: SourceFile) -> str:
    return "offers" if source.kind.startswith("offers") else source.kind


def _table_of(source: SourceFile) -> str:
    """The silver table a file's records go to."""
    return next(table for table, (kind, _) in TABLES.items() if kind == _input_kind(source))


def _union(frames: Sequence[DataFrame], allow_missing: bool = False) -> DataFrame:
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame, allowMissingColumns=allow_missing)
    return out


# --------------------------------------------------------------------------------------------- batch


def new_batch_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _conformed(lake: Lake, table: str, sources: Sequence[SourceFile], staging: Path, key: bytes,
               max_chars: int | None, refs: References) -> DataFrame:  # fmt: skip
    """``table``'s records of this batch, conformed row by row (still unnumbered for CSV)."""
    if TABLES[table][0] == "offers":
        records = offer_records(lake.spark, sources, staging, max_chars)
    else:
        records = csv_records(lake.spark, sources, staging, key, max_chars)
    return CONFORMERS[table](records, refs)


def _staged(lake: Lake, df: DataFrame, path: Path) -> DataFrame:
    """``df`` written once as Parquet at ``path`` and read back: later queries plan a plain scan."""
    df.write.mode("overwrite").parquet(str(path))
    return lake.spark.read.parquet(str(path))


def _committed(lake: Lake, table: str) -> DataFrame | None:
    """``table`` as committed by the batches before, None when it does not exist yet."""
    return lake.read(table) if lake.exists(table) else None


def _known_seekers(lake: Lake, spells: DataFrame | None, seekers: DataFrame | None) -> DataFrame:
    """Seekers with a spell: this batch's valid spells and ``silver.seekers``."""
    known = [spells.where(is_valid()).select("seeker_id")] if spells is not None else []
    if seekers is not None:
        known.append(seekers.select("seeker_id"))
    return _union(known) if known else lake.spark.createDataFrame([], "seeker_id string")


def _known_offers(offers: DataFrame | None, committed: DataFrame | None) -> DataFrame | None:
    """When each offer known (this batch's valid ones and ``silver.offers``) was first created."""
    parts = [offers.where(is_valid()).select("offer_id", "created_at")] if offers is not None else []
    if committed is not None:
        parts.append(committed.select("offer_id", "created_at"))
    if not parts:
        return None
    return _union(parts).groupBy("offer_id").agg(F.min("created_at").alias("created_at"))


def _read_batch(lake: Lake, settings: Settings, by_kind: dict[str, list[SourceFile]], staging: Path,
                refs: References) -> dict[str, DataFrame]:  # fmt: skip
    """Every table's records of the batch: read once, conformed row by row and staged (written once as
    Parquet, raw text included); then the checks across records (duplicates, unknown seekers, offers created
    after their hire) read the staged rows' narrow columns and stage their flags, which every write joins
    back (broadcast), numbered from one small job. The flags of every table are reduced to one per record and
    staged together: one small write, and each reader of the records joins them without an aggregation.

    Staging rather than caching: each later query plans a plain scan (a cached frame keeps its whole plan,
    which every later query analyses and matches again, seconds a write on a monthly batch), the checks read
    a few columns instead of recomputing the reading and the pseudonyms, nothing is evicted and read back,
    and a lost executor costs no recomputation."""
    key, is_dev_key = settings.privacy.key()
    if is_dev_key:
        log.warning(
            "ingest: pseudonyms use the development key of the profile; set MOBILITY_PSEUDO_KEY for real data"
        )
    max_chars = settings.quality.max_line_chars

    def stage(table: str) -> DataFrame:
        began = time.monotonic()
        conformed = _conformed(lake, table, by_kind[TABLES[table][0]], staging, key, max_chars, refs)
        staged = _staged(lake, conformed, staging / "rows" / table)
        log.info("ingest: %s read, conformed and staged in %.1f s", table, time.monotonic() - began)
        return staged

    present = [table for table, (kind, _) in TABLES.items() if kind in by_kind]
    committed = ("silver.seekers", "silver.offers")  # read by the checks: their snapshots load meanwhile
    done = concurrently(
        {**{table: partial(stage, table) for table in present},
         **{table: partial(_committed, lake, table) for table in committed}},
        settings.lake.parallel_writes,
    )  # fmt: skip
    rows = {table: done[table] for table in present}
    began = time.monotonic()
    known_seekers = _known_seekers(lake, rows.get("spells"), done["silver.seekers"])
    known_offers = _known_offers(rows.get("offers"), done["silver.offers"])
    flags = []
    for table, df in rows.items():
        found = [duplicates(table, df)]
        if table in ("sought_changes", "hires"):
            found.append(unknown_seekers(df, known_seekers))
        if table == "hires" and known_offers is not None:
            found.append(offers_after_hires(df, known_offers))
        flags.append(first_flags(found, positions_of(df)).withColumn("_table", F.lit(table)))
    final: dict[str, DataFrame] = {}
    if rows:
        staged = _staged(lake, _union(flags, allow_missing=True), staging / "flags")
        for table, df in rows.items():
            final[table] = apply_flags(df, staged.where(F.col("_table") == table), positions_of(df))
    unnumbered = [
        df.select("source_file", "_block", "_mid") for df in final.values() if "_block" in df.columns
    ]
    offsets = split_offsets(_union(unnumbered)) if unnumbered else None
    log.info("ingest: duplicates and checks across tables in %.1f s", time.monotonic() - began)
    return {table: csv_lines(df, offsets) if "_block" in df.columns else df for table, df in final.items()}


def _count(report: IngestReport, conformed: dict[str, DataFrame]) -> None:
    """Records read, valid and quarantined per file, and rejects per reason: one job for every table."""
    per = _union(
        [df.select(F.lit(table).alias("table"), "source_file", "_reason") for table, df in conformed.items()]
    )
    rows = per.groupBy("table", "source_file", "_reason").count().collect()  # bounded: files x reasons
    files: dict[tuple[str, str], dict] = {}
    for row in sorted(rows, key=lambda r: (r["table"], r["source_file"], r["_reason"] or "")):
        entry = files.setdefault(
            (row["table"], row["source_file"]),
            {
                "table": row["table"],
                "source_file": row["source_file"],
                "read": 0,
                "valid": 0,
                "quarantined": 0,
            },
        )
        entry["read"] += row["count"]
        if row["_reason"] is None:
            entry["valid"] += row["count"]
        else:
            entry["quarantined"] += row["count"]
            report.reasons[row["_reason"]] = report.reasons.get(row["_reason"], 0) + row["count"]
    report.counts += [files[k] for k in sorted(files)]


def ingest(lake: Lake, settings: Settings, input_dir: Path, batch_id: str | None = None) -> IngestReport:
    """Ingest every file of a known kind in ``input_dir`` as one batch."""
    start = time.monotonic()
    batch_id = batch_id or new_batch_id()
    files, ignored = discover(input_dir)
    if not files:
        raise MobilityError(f"{input_dir}: no input files (de*.csv, rome*.csv, hires*.csv, offers*.json[l])")
    for name in ignored:
        log.info("ingest: ignored %s (not an input kind)", name)
    spark = lake.spark
    at = F.lit(datetime.now(UTC)).cast("timestamp")
    by_kind: dict[str, list[SourceFile]] = {}
    unreadable: list[SourceFile] = []
    for source in files:
        if source.defect:
            unreadable.append(source)
            log.warning("ingest: %s: %s; quarantined as one malformed record", source.name, source.defect)
            continue
        by_kind.setdefault(_input_kind(source), []).append(source)
        if source.encoding != "UTF-8":
            log.info("ingest: %s is %s, read as such", source.name, source.encoding)
    for kind, sources in by_kind.items():
        size = sum(f.path.stat().st_size for f in sources) / 2**20
        log.info("ingest: reading %d %s file(s), %.1f MB, from %s", len(sources), kind, size, input_dir)

    refs = load_references(lake, settings.reference.rome_v4_from)
    staging = Path(lake.root) / "_staging" / batch_id
    report = IngestReport(batch_id, input_dir, ignored=ignored)
    try:
        records = _read_batch(lake, settings, by_kind, staging, refs)
        _count(report, records)
        rejected = report.quarantined > 0
        _write(lake, records, unreadable, rejected, refs, batch_id, at, settings.lake.parallel_writes)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # the staged rows, transcoded copies of latin-1 files
    for source in unreadable:
        report.counts.append({"table": _table_of(source), "source_file": source.name, "read": 1, "valid": 0,
                              "quarantined": 1})  # fmt: skip
        report.reasons["malformed"] = report.reasons.get("malformed", 0) + 1

    report.seconds = time.monotonic() - start
    log_rows = [
        (batch_id, c["table"], c["source_file"], c["read"], c["valid"], c["quarantined"])
        for c in report.counts
    ]
    log_df = spark.createDataFrame(
        log_rows, "batch_id string, table string, source_file string, read long, valid long, quarantined long"
    ).withColumn("ingested_at", at)
    lake.append(log_df, "silver.ingestion_log")
    log.info("ingest: batch %s: %s records read, %s quarantined, in %.1f s", batch_id, f"{report.read:,}",
             f"{report.quarantined:,}", time.monotonic() - start)  # fmt: skip
    return report


def _write(
    lake: Lake, conformed: dict[str, DataFrame], unreadable: Sequence[SourceFile], rejected: bool,
    refs: References, batch_id: str, at: Column, workers: int,
) -> None:  # fmt: skip
    """One bronze write, silver of each kind present, every silver table in place, one quarantine write
    (none when nothing was rejected), and the seekers: every one at a first load, then updated from this
    batch's spells alone (``seeker_update``). The tables are written ``workers`` at a time: a small batch's
    writes are mostly Delta's fixed costs (planning, the log, the commit), which overlap."""
    spark = lake.spark
    writes: dict[str, Callable[[], object]] = {}
    if conformed:
        bronze = _union([bronze_rows(df, TABLES[table][0], batch_id, at) for table, df in conformed.items()])
        writes["bronze.records"] = partial(
            lake.merge, bronze, "bronze.records", BRONZE_KEYS, insert_only=True, partition_by=["kind"],
            properties=BRONZE_PROPERTIES,
        )  # fmt: skip
    for table, df in conformed.items():
        keys = TABLES[table][1]
        update_when = "s.updated_at > t.updated_at" if table == "offers" else "s._row_hash <> t._row_hash"
        rows = silver_rows(df, COLUMNS[table], batch_id, at)
        writes[f"silver.{table}"] = partial(
            lake.merge, rows, f"silver.{table}", keys, update_when=update_when,
            properties=silver_properties(rows, keys),
        )  # fmt: skip
    for table, (_, keys) in TABLES.items():
        if table not in conformed and not lake.exists(f"silver.{table}"):
            nothing = CONFORMERS[table](_empty_records(spark, table), refs)
            empty = silver_rows(nothing, COLUMNS[table], batch_id, at)
            writes[f"silver.{table}"] = partial(lake.create, f"silver.{table}", empty.schema,
                                                properties=silver_properties(empty, keys))  # fmt: skip
    rejects = [quarantine_rows(df, table, batch_id, at) for table, df in conformed.items()]
    if unreadable:
        rejects.append(unreadable_rows(spark, unreadable, batch_id, at))
    if rejected or unreadable:
        writes["silver.quarantine"] = partial(
            lake.merge, _union(rejects), "silver.quarantine", QUARANTINE_KEYS, insert_only=True,
            properties=QUARANTINE_PROPERTIES,
        )  # fmt: skip
    elif rejects and not lake.exists("silver.quarantine"):
        writes["silver.quarantine"] = partial(lake.create, "silver.quarantine", rejects[0].schema,
                                              properties=QUARANTINE_PROPERTIES)  # fmt: skip
    first_load = not lake.exists("silver.seekers")
    if "spells" in conformed and not first_load:
        seekers = seekers_of(conformed["spells"].where(is_valid()))
        values, changed = seeker_update()
        writes["silver.seekers"] = partial(lake.merge, seekers, "silver.seekers", ["seeker_id"],
                                           update_when=changed, update_set=values)  # fmt: skip
    concurrently(writes, workers)
    if first_load:  # the first load (or a lake older than the table): every seeker, once silver.spells is in
        seekers = seekers_of(lake.read("silver.spells"))
        properties = silver_properties(seekers, ["seeker_id"])
        lake.merge(seekers, "silver.seekers", ["seeker_id"], properties=properties)


def enforce_reject_rate(report: IngestReport, max_rate: float) -> None:
    """Raise once everything is written when the batch rejected more than ``max_rate`` of its records."""
    if report.reject_rate > max_rate:
        raise RejectRateError(
            f"batch {report.batch_id}: {report.quarantined:,} of {report.read:,} records rejected "
            f"({report.reject_rate:.1%} > quality.max_reject_rate {max_rate:.1%}); see silver.quarantine"
        )

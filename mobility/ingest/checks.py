"""Validation as data: ordered checks, the first failure of a record is its quarantine reason.

Checks are native Spark expressions evaluated in one pass; a record that fails is never dropped, it is
marked (``_reason``, ``_message``) and ends in ``silver.quarantine`` with its raw text, file and line, so
that for every file the records read equal the valid plus the quarantined ones.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from mobility.ingest.formats import REASONS

QUARANTINE_KEYS = ("table", "source_file", "line", "raw_hash")


@dataclass(frozen=True)
class Check:
    """A rule: when ``failed`` holds, the record is rejected for ``reason`` with ``message``."""

    reason: str
    failed: Column
    message: Column

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown quarantine reason {self.reason!r}")


def classify(df: DataFrame, checks: Sequence[Check]) -> DataFrame:
    """Set ``_reason``/``_message`` to the first failing check, keeping a reason an earlier stage set.

    Each check's condition appears once in the plan: the index of the first failing check is computed,
    then the reason and the message are picked by it (a nested chain per column would copy every
    condition twice, and big expressions cost planning and code generation time)."""
    first = F.coalesce(
        *(F.when(check.failed, F.lit(i)) for i, check in enumerate(checks)), F.lit(None).cast("int")
    )
    df = df.withColumn("_check", first)
    reason = message = F.lit(None).cast("string")
    for i, check in reversed(list(enumerate(checks))):
        reason = F.when(F.col("_check") == i, F.lit(check.reason)).otherwise(reason)
        message = F.when(F.col("_check") == i, check.message).otherwise(message)
    if "_reason" in df.columns:
        keep = F.col("_reason").isNotNull()
        reason = F.when(keep, F.col("_reason")).otherwise(reason)
        message = F.when(keep, F.col("_message")).otherwise(message)
    return df.withColumns({"_reason": reason, "_message": message}).drop("_check")


# The flags of checks across records, by precedence: a record failing several gets the first.
FLAG_ORDER = ("duplicate", "unknown_seeker", "offer_after_hire")


def flag(rows: DataFrame, positions: Sequence[str], reason: str, message: Column) -> DataFrame:
    """``rows`` (a few columns of the failing records) as flags: their positions, ``reason``, ``message``."""
    if reason not in FLAG_ORDER:
        raise ValueError(f"{reason!r} is not a check across records")
    return rows.select(*positions, F.lit(reason).alias("_flag"), message.alias("_flag_message"))


def duplicate_flags(
    df: DataFrame, keys: Sequence[str], order: Sequence[tuple[str, bool]], what: str, positions: Sequence[str]
) -> DataFrame:
    """The valid records of ``df`` that repeat a natural key, but for the first by ``order`` (column names,
    each with True for newest first), as flags.

    Found on keys, not on rows: valid records are counted per 64-bit hash of their key (a shuffle of eight
    bytes a record rather than of a 64-character pseudonym and a date), and only the narrow rows of hashes
    seen more than once go through the ordering window, which compares the keys themselves (two keys of one
    hash stay apart there). A record with a null in its key repeats no key (as with ``=``); ``df`` is read
    for its key, order and position columns only."""
    known = reduce(operator.and_, (F.col(k).isNotNull() for k in keys), F.col("_reason").isNull())
    valid = df.where(known).withColumn("_key_hash", F.xxhash64(*keys))
    repeated = valid.groupBy("_key_hash").count().where(F.col("count") > 1).drop("count")
    needed = list(dict.fromkeys([*keys, *positions, *(name for name, _ in order), "_key_hash"]))
    candidates = valid.select(*needed).join(F.broadcast(repeated), "_key_hash", "left_semi")
    sort = [F.col(name).desc_nulls_last() if newest else F.col(name) for name, newest in order]
    numbered = candidates.withColumn("_nth", F.row_number().over(Window.partitionBy(*keys).orderBy(*sort)))
    later = numbered.where(F.col("_nth") > 1)
    return flag(later, positions, "duplicate", F.lit(f"another record has the same {what} in this batch"))


def first_flags(flags: Sequence[DataFrame], positions: Sequence[str]) -> DataFrame:
    """One flag per flagged record: the first by ``FLAG_ORDER`` when the checks gave it several. Reduced once,
    before the flags are staged, so that every reader of the records joins them without an aggregation."""
    union = flags[0]
    for more in flags[1:]:
        union = union.unionByName(more)
    rank = F.array_position(F.array(*(F.lit(r) for r in FLAG_ORDER)), F.col("_flag"))
    return (
        union.groupBy(*positions)
        .agg(F.min_by(F.struct("_flag", "_flag_message"), rank).alias("_f"))
        .select(*positions, "_f._flag", "_f._flag_message")
    )


def apply_flags(df: DataFrame, flags: DataFrame, positions: Sequence[str]) -> DataFrame:
    """``df`` with each flagged valid record rejected for its flag (``first_flags``: one per record); a
    reason set before stays. ``flags`` are few: they are broadcast."""
    joined = df.join(F.broadcast(flags.select(*positions, "_flag", "_flag_message")), list(positions), "left")
    keep = F.col("_reason").isNotNull()
    return joined.withColumns(
        {
            "_reason": F.when(keep, F.col("_reason")).otherwise(F.col("_flag")),
            "_message": F.when(keep, F.col("_message")).otherwise(F.col("_flag_message")),
        }
    ).select(*df.columns)


def raw_hash() -> Column:
    """Hash of a record's raw text: with its file and line, what identifies a record across reruns."""
    return F.sha2(F.coalesce(F.col("raw"), F.lit("")), 256)


def is_valid() -> Column:
    return F.col("_reason").isNull()


def quarantine_rows(df: DataFrame, table: str, batch_id: str, ingested_at: Column) -> DataFrame:
    """The rejected records of ``df`` in the layout of ``silver.quarantine``."""
    return df.where(~is_valid()).select(
        F.lit(table).alias("table"),
        F.col("_reason").alias("reason"),
        F.col("_message").alias("message"),
        F.col("raw"),
        raw_hash().alias("raw_hash"),
        F.col("source_file"),
        F.col("line"),
        F.lit(batch_id).alias("batch_id"),
        ingested_at.alias("ingested_at"),
    )


def is_empty(column: str) -> Column:
    return F.col(column).isNull() | (F.trim(F.col(column)) == "")


def missing_fields(columns: Sequence[str]) -> Check:
    """The first mandatory column that is empty."""
    failed = F.lit(False)
    message = F.lit(None).cast("string")
    for name in reversed(columns):
        failed = failed | is_empty(name)
        message = F.when(is_empty(name), F.lit(f"{name} is empty")).otherwise(message)
    return Check("missing_field", failed, message)

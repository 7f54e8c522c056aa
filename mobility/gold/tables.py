"""What the gold tables of the ``flows`` step are, how they are partitioned, and the state of their last
build (``gold.flows_state``): shared by the full build and the refresh."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from mobility.config import FlowsSettings
from mobility.lake import Lake

SILVER = ("spells", "sought_changes", "hires", "offers")
REFS = ("rome_mobility", "commune", "departement")
STATE = "gold.flows_state"
MONTHLY = ("market_facts", "market", "market_departement", "market_national")
PER_PERIOD = ("flows", "flows_region", "flows_occupation", "flows_grand_domaine", "region_balance")
FACT_KEYS = ("rome", "code_region", "code_departement", "month")
# Every table the step writes, in writing order.
TABLES = ("segments", "transitions", *MONTHLY, *PER_PERIOD, "occupation_mobility", "unusual_pairs")
# gold.segments (a seeker's rows are replaced together by a refresh): what identifies a row.
SEGMENT_KEY = ("seeker_id", "registration_date", "seg_index")

# gold table -> (partition column, how to derive it when the frame lacks it)
PARTITIONS: dict[str, tuple[str, Callable[[], Column] | None]] = {
    "transitions": ("move_month", lambda: F.trunc(F.col("move_date"), "month")),
    **{name: ("month", None) for name in MONTHLY},
    **{name: ("period_start", None) for name in PER_PERIOD},
}


# gold table -> the columns its files keep statistics of (min, max, nulls) for data skipping: the keys a
# reader filters on. Delta's default, the first 32 columns (long texts and measures included), made the
# largest gold writes at M 10% (overwrite) to 40% (creation) slower (bench/README).
STATS_COLUMNS: dict[str, tuple[str, ...]] = {
    "segments": ("seg_start", "stock_until", "category"),
    "transitions": ("move_date", "kind", "from_rome", "to_rome"),
    "market_facts": ("rome", "code_region", "code_departement"),
    "market": ("rome", "code_region"),
    "market_departement": ("rome", "code_departement"),
    "market_national": ("rome",),
    "flows": ("from_rome", "from_region", "to_rome", "to_region"),
    "flows_region": ("from_region", "to_region"),
    "flows_occupation": ("from_rome", "to_rome"),
    "flows_grand_domaine": ("from_grand_domaine", "to_grand_domaine"),
    "region_balance": ("region",),
    "occupation_mobility": ("from_rome",),
    "unusual_pairs": ("from_rome", "to_rome"),
}


# The tables a full build writes from the driver (``Lake.overwrite_arrow``): bounded by occupations, places
# and periods, not by seekers (flows_occupation, the largest, holds about 0.1M rows at M), where a Spark write
# costs a second or two of jobs around the commit whatever the size. A refresh replaces the periods of the
# per-period ones with Spark and rewrites the summaries over every period from the driver.
DRIVER_TABLES = (
    "market_national", "flows_region", "flows_occupation", "flows_grand_domaine", "region_balance",
    "occupation_mobility", "unusual_pairs",
)  # fmt: skip


# gold.segments: a refresh replaces the rows of seekers spread over every file; deletion vectors mark the old
# rows deleted where a rewrite would copy every file.
DELETION_VECTORS = ("segments",)


def properties(name: str) -> dict[str, str]:
    """The Delta table properties of ``gold.<name>``."""
    props = {"delta.dataSkippingStatsColumns": ",".join(STATS_COLUMNS[name])}
    if name in DELETION_VECTORS:
        props["delta.enableDeletionVectors"] = "true"
    return props


@dataclass(frozen=True)
class State:
    """What the gold tables were built from: the settings, and the Delta versions of their inputs."""

    settings: str
    ingestion_log: int
    silver: dict[str, int]
    refs: dict[str, int]

    @classmethod
    def current(cls, lake: Lake, options: FlowsSettings) -> State:
        return cls(
            settings=json.dumps(options.model_dump(mode="json"), sort_keys=True),
            ingestion_log=lake.version("silver.ingestion_log"),
            silver={name: lake.version(f"silver.{name}") for name in SILVER},
            refs={name: lake.version(f"ref.{name}") for name in REFS},
        )

    def row(self, mode: str) -> tuple:
        return (mode, self.settings, self.ingestion_log, json.dumps(self.silver), json.dumps(self.refs))


def last_state(lake: Lake) -> State | None:
    if not lake.exists(STATE):
        return None
    last = lake.read(STATE).orderBy(F.col("built_at").desc()).first()  # one row per build
    if last is None:
        return None
    return State(
        last["settings"], last["ingestion_log"], json.loads(last["silver"]), json.loads(last["refs"])
    )


def save_state(lake: Lake, state: State, mode: str) -> None:
    df = lake.spark.createDataFrame(
        [state.row(mode)], "mode string, settings string, ingestion_log long, silver string, refs string"
    ).withColumn("built_at", F.current_timestamp())
    lake.append(df, STATE)


def partitioned(name: str, df: DataFrame) -> DataFrame:
    """The frame with its table's partition column (derived when missing)."""
    column, derive = PARTITIONS.get(name, (None, None))
    if derive is not None and column not in df.columns:
        df = df.withColumn(column, derive())
    return df


def partition_by(name: str) -> tuple[str, ...]:
    return (PARTITIONS[name][0],) if name in PARTITIONS else ()


def overwrite_from_driver(lake: Lake, name: str, df: DataFrame) -> int:
    """Replace ``gold.<name>``, one of ``DRIVER_TABLES``, by its rows brought to the driver and written by
    delta-rs (partitions and properties as a Spark overwrite's); return the rows written."""
    if name not in DRIVER_TABLES:
        raise ValueError(f"gold.{name} is not bounded by occupations, places and periods: use Spark")
    data = partitioned(name, df).toArrow()  # bounded: DRIVER_TABLES
    lake.overwrite_arrow(data, f"gold.{name}", partition_by(name), properties(name))
    return data.num_rows


def replace(lake: Lake, name: str, df: DataFrame, condition: str) -> None:
    """Replace the rows of ``gold.<name>`` matching ``condition``, one file per partition."""
    lake.replace_where(one_file_per_partition(name, df), f"gold.{name}", condition, partition_by(name))


def one_file_per_partition(name: str, df: DataFrame) -> DataFrame:
    """Each task writes a file per partition value it holds: gather each value in one task first (a month
    of the largest table, transitions, is a few hundred thousand rows at France's scale)."""
    return df.repartition(*(F.col(c) for c in partition_by(name))) if name in PARTITIONS else df


def sql_dates(dates: Iterable[date]) -> str:
    return ", ".join(f"DATE'{d.isoformat()}'" for d in sorted(set(dates)))


def distinct_dates(df: DataFrame, column: str) -> list[date]:
    """The distinct values of a month or period column: one per month of the calendar at most."""
    # bounded: one value per month or period of the calendar
    return [row[0] for row in df.select(column).distinct().collect() if row[0] is not None]

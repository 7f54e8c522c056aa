"""Writing the gold tables of the ``flows`` step: a full build, or a refresh that recomputes only what new
ingestion batches touched and gives the same tables as a full build.

Why a refresh can be exact
    Transitions are per job seeker: a seeker's transitions depend on their own spells, sought changes and
    hires, and on the offers their hires name. The market's monthly facts are sums of per-record facts
    (``mobility.market.market_facts``), so a batch changes them by the facts of its records' new versions
    minus those of their previous versions (read by Delta time travel at the silver versions the gold
    tables were built from). A market month depends on the facts up to it (stock) and over its rolling
    window; a flows period on the transitions of the period and on the market of its months and of the month
    before it.

What a refresh does
    1. New batches: the rows ``silver.ingestion_log`` gained since the build. Touched seekers: those with a
       spell, sought change or hire written by these batches, plus those whose hires name an offer they
       wrote. Touched offers: those they wrote.
    2. ``gold.transitions`` (partitioned by ``move_month``): the touched seekers' transitions are rebuilt;
       the months where old and new differ are replaced (their untouched seekers' rows kept as they were).
    3. ``gold.market_facts`` (by ``month``): the facts delta is added to the months it touches. The three
       market tables are recomputed from the first touched month on (their calendar starts ``rolling_months``
       earlier, so every recomputed window is whole).
    4. ``gold.flows`` and the per-period tables (by ``period_start``): the periods holding a changed
       transition month, and every period from the first touched market month's on.
    5. ``occupation_mobility`` and ``unusual_pairs`` (over every period) are small aggregates of the tables
       above: rebuilt whole (as are the published views, by the publish step after it).
    A refresh falls back to a full build when the state of the last build is missing, when the flows
    settings or the reference tables changed since, or when silver changed in a way no batch explains.

Every write is a Delta overwrite of the partitions concerned (``replaceWhere``), atomic per table; the state
row (``gold.flows_state``) is appended last, so a refresh interrupted half-way is redone from the same state.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import reduce

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from mobility.config import FlowsSettings
from mobility.flows import build_gold, flows_tables, market_tables, period_start, summary_tables
from mobility.lake import Lake
from mobility.market import MEASURES, market_facts, nonzero_fact
from mobility.transitions import TRANSITION_COLUMNS, RefTables, build_transitions

log = logging.getLogger(__name__)

SILVER = ("spells", "sought_changes", "hires", "offers")
REFS = ("rome_mobility", "commune", "departement")
STATE = "gold.flows_state"
MONTHLY = ("market_facts", "market", "market_departement", "market_national")
PER_PERIOD = ("flows", "flows_region", "flows_occupation", "flows_grand_domaine", "region_balance")
FACT_KEYS = ("rome", "code_region", "code_departement", "month")

# gold table -> (partition column, how to derive it when the frame lacks it)
PARTITIONS: dict[str, tuple[str, Callable[[], Column] | None]] = {
    "transitions": ("move_month", lambda: F.trunc(F.col("move_date"), "month")),
    **{name: ("month", None) for name in MONTHLY},
    **{name: ("period_start", None) for name in PER_PERIOD},
}


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


def _save_state(lake: Lake, state: State, mode: str) -> None:
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


def _replace(lake: Lake, name: str, df: DataFrame, condition: str) -> None:
    """Replace the rows of ``gold.<name>`` matching ``condition``, one file per partition."""
    lake.replace_where(_one_file_per_partition(name, df), f"gold.{name}", condition, partition_by(name))


def _one_file_per_partition(name: str, df: DataFrame) -> DataFrame:
    """Each task writes a file per partition value it holds: gather each value in one task first (a month
    of the largest table, transitions, is a few hundred thousand rows at France's scale)."""
    return df.repartition(*(F.col(c) for c in partition_by(name))) if name in PARTITIONS else df


def _sql_dates(dates: Iterable[date]) -> str:
    return ", ".join(f"DATE'{d.isoformat()}'" for d in sorted(set(dates)))


def _distinct_dates(df: DataFrame, column: str) -> list[date]:
    """The distinct values of a month or period column: one per month of the calendar at most."""
    # bounded: one value per month or period of the calendar
    return [row[0] for row in df.select(column).distinct().collect() if row[0] is not None]


# ----------------------------------------------------------------------------------------- full build


def write_full(lake: Lake, options: FlowsSettings) -> dict[str, int]:
    """Build every gold table of the step from silver and replace them; return rows per table and the
    transitions' quality figures."""
    state = State.current(lake, options)
    gold = build_gold(lake, **options.model_dump(), persist=True)
    quality = gold.pop("transitions_quality").first().asDict()  # one row of figures
    counts: dict[str, int] = {}
    try:
        for name, df in gold.items():
            table = _one_file_per_partition(name, partitioned(name, df))
            lake.overwrite(table, f"gold.{name}", partition_by(name))
            counts[f"gold.{name} rows"] = lake.read(f"gold.{name}").count()
    finally:
        lake.spark.catalog.clearCache()
    _save_state(lake, state, "full")
    for key, value in quality.items():
        log.info("flows: %s = %s", key, value)
        counts[key] = value
    return counts


# -------------------------------------------------------------------------------------------- refresh


def new_batches(lake: Lake, since: State) -> list[str]:
    """Batches ingested after the build of ``since``: the rows the append-only ingestion log gained."""
    now = lake.read("silver.ingestion_log").select("batch_id")
    before = lake.read("silver.ingestion_log", since.ingestion_log).select("batch_id")
    return sorted(row[0] for row in now.exceptAll(before).distinct().collect())  # bounded: one row per batch


def touched_seekers(silver: dict[str, DataFrame], touched_offers: DataFrame, batches: list[str]) -> DataFrame:
    """Seekers whose transitions or market facts a batch may change (``seeker_id``, distinct)."""
    written = [
        silver[name].where(F.col("_batch_id").isin(batches)).select("seeker_id")
        for name in ("spells", "sought_changes", "hires")
    ]
    naming = silver["hires"].join(touched_offers, "offer_id", "left_semi").select("seeker_id")
    return reduce(DataFrame.unionByName, [*written, naming]).distinct()


def facts_delta(new: DataFrame, old: DataFrame) -> DataFrame:
    """``new - old`` per (occupation, place, month), non-zero rows only."""
    negated = old.select(*FACT_KEYS, *((-F.col(c)).alias(c) for c in MEASURES))
    return _summed(new.unionByName(negated))


def _summed(facts: DataFrame) -> DataFrame:
    return facts.groupBy(*FACT_KEYS).agg(*(F.sum(c).alias(c) for c in MEASURES)).where(nonzero_fact())


def changed_months(new: DataFrame, old: DataFrame, column: str) -> DataFrame:
    """The values of ``column`` of the rows in one frame and not the other (as multisets)."""
    return new.exceptAll(old).unionByName(old.exceptAll(new)).select(column).distinct()


def refresh(lake: Lake, options: FlowsSettings) -> dict[str, int] | None:
    """Bring the gold tables up to date with the batches ingested since their build; None when only a full
    build can (see the module docstring)."""
    since = last_state(lake)
    state = State.current(lake, options)
    if since is None or since.settings != state.settings or since.refs != state.refs:
        return None
    if not all(lake.exists(f"gold.{name}") for name in ("transitions", *MONTHLY, *PER_PERIOD)):
        return None
    batches = new_batches(lake, since)
    if not batches:
        if since.silver != state.silver:
            return None
        log.info("flows: no batch since the last build; gold is up to date")
        _save_state(lake, state, "unchanged")
        return {"batches": 0}
    started = time.monotonic()
    log.info("flows: refreshing for %d new batch(es): %s", len(batches), ", ".join(batches))

    silver = {name: lake.read(f"silver.{name}") for name in SILVER}
    try:
        before = {name: lake.read(f"silver.{name}", since.silver[name]) for name in SILVER}
    except Exception as error:  # versions vacuumed away: only a full build can go on
        log.warning("flows: silver as of the last build is no longer readable (%s); full build", error)
        return None
    offer_ids = silver["offers"].where(F.col("_batch_id").isin(batches)).select("offer_id")
    seekers = touched_seekers(silver, offer_ids, batches).persist(StorageLevel.MEMORY_AND_DISK)
    n_seekers = seekers.count()

    def of_seekers(df: DataFrame) -> DataFrame:
        return df.join(seekers, "seeker_id", "left_semi")

    counts: dict[str, int] = {"batches": len(batches), "touched seekers": n_seekers}
    try:
        # 2. transitions of the touched seekers, months where they changed
        built = build_transitions(
            of_seekers(silver["spells"]),
            of_seekers(silver["sought_changes"]),
            of_seekers(silver["hires"]),
            silver["offers"],
            RefTables.from_lake(lake),
            level=options.level,
            grace_days=options.grace_days,
            geo_level=options.geo_level,
            v4_proche_max_rank=options.v4_proche_max_rank,
        )
        new_tr = partitioned("transitions", built.transitions).persist(StorageLevel.MEMORY_AND_DISK)
        columns = [*TRANSITION_COLUMNS, "move_month"]
        old_tr = of_seekers(lake.read("gold.transitions")).select(*columns)
        months = _distinct_dates(changed_months(new_tr.select(*columns), old_tr, "move_month"), "move_month")
        if months:
            in_months = F.col("move_month").isin(months)
            kept = lake.read("gold.transitions").where(in_months).join(seekers, "seeker_id", "left_anti")
            rows = kept.select(*columns).unionByName(new_tr.where(in_months).select(*columns))
            _replace(lake, "transitions", rows, f"move_month IN ({_sql_dates(months)})")
        counts["transition months replaced"] = len(months)

        # 3. market facts delta, market tables from the first touched month on
        def facts(tables: dict[str, DataFrame]) -> DataFrame:
            return market_facts(
                of_seekers(tables["spells"]),
                of_seekers(tables["sought_changes"]),
                of_seekers(tables["hires"]),
                tables["offers"].join(offer_ids, "offer_id", "left_semi"),
                level=options.level,
                stock_categories=options.stock_categories,
            )

        delta = facts_delta(facts(silver), facts(before)).persist(StorageLevel.MEMORY_AND_DISK)
        fact_months = _distinct_dates(delta, "month")
        first_touched = min(fact_months) if fact_months else None
        if fact_months:
            current = lake.read("gold.market_facts").where(F.col("month").isin(fact_months))
            updated = _summed(current.select(*FACT_KEYS, *MEASURES).unionByName(delta))
            _replace(lake, "market_facts", updated, f"month IN ({_sql_dates(fact_months)})")
            all_facts = lake.read("gold.market_facts")
            first_fact = all_facts.agg(F.min("month")).first()[0]
            calendar = max(add_months(first_touched, -(options.rolling_months - 1)), first_fact)
            since_first = f"month >= DATE'{first_touched.isoformat()}'"
            tables = market_tables(all_facts, rolling_months=options.rolling_months, first_month=calendar)
            for name, df in tables.items():
                _replace(lake, name, df.where(F.col("month") >= F.lit(first_touched)), since_first)
        counts["fact months changed"] = len(fact_months)

        # 4. per-period tables of the touched periods
        parts = []
        if months:
            periods = {period_start_date(m, options.period) for m in months}
            parts.append(f"period_start IN ({_sql_dates(periods)})")
        if first_touched:
            parts.append(
                f"period_start >= DATE'{period_start_date(first_touched, options.period).isoformat()}'"
            )
        condition = " OR ".join(parts)
        if condition:
            transitions = lake.read("gold.transitions").withColumn(
                "period_start", period_start(F.col("move_date"), options.period)
            )
            chosen = transitions.where(condition).drop("period_start")
            for name, df in flows_tables(
                chosen, lake.read("gold.market"), period=options.period, persist=True
            ).items():
                _replace(lake, name, df.where(condition), condition)
        log.info("flows: periods recomputed: %s", condition or "none")

        # 5. indicators over every period
        summaries = summary_tables(
            lake.read("gold.flows"),
            top_destinations=options.top_destinations,
            min_pair_moves=options.min_pair_moves,
            min_pair_ratio=options.min_pair_ratio,
        )
        for name, df in summaries.items():
            lake.overwrite(df, f"gold.{name}")
    finally:
        lake.spark.catalog.clearCache()
    _save_state(lake, state, "refresh")
    log.info("flows: refreshed %d touched seekers, %d transition months, %d fact months in %.1f s",
             n_seekers, len(months), len(fact_months), time.monotonic() - started)  # fmt: skip
    return counts


def add_months(day: date, months: int) -> date:
    """The first day of the month ``months`` after ``day``'s (of a handful of calendar dates, not data)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_start_date(day: date, period: str) -> date:
    """``mobility.flows.period_start`` of one calendar date."""
    first_month = {"month": day.month, "quarter": 3 * ((day.month - 1) // 3) + 1, "year": 1}[period]
    return date(day.year, first_month, 1)


def write(lake: Lake, options: FlowsSettings, *, full: bool = False) -> dict[str, int]:
    """The flows step's writes: a refresh when the last build allows it (and ``full`` is not asked), else
    a full build."""
    if not full:
        counts = refresh(lake, options)
        if counts is not None:
            return {"mode: refresh": 1, **counts}
        log.info("flows: full build (no usable state of a previous build)")
    return {"mode: full": 1, **write_full(lake, options)}

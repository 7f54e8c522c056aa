"""The refresh of the gold tables: recompute only what new ingestion batches touched, and get the same tables
as a full build.

Why a refresh can be exact
    Transitions are per job seeker: a seeker's transitions depend on their own spells, sought changes and
    hires, and on the offers their hires name. The market's monthly facts are sums of per-record facts
    (``mobility.gold.market.market_facts``), so a batch changes them by the facts of its records' new versions
    minus those of their previous versions (read by Delta time travel at the silver versions the gold
    tables were built from). A market month depends on the facts up to it (stock) and over its rolling
    window; a flows period on the transitions of the period and on the market of its months and of the month
    before it.

What a refresh does
    1. New batches: the rows ``silver.ingestion_log`` gained since the build. Touched seekers: those with a
       spell, sought change or hire written by these batches, plus those whose hires name an offer they
       wrote. Touched offers: those they wrote.
    2. ``gold.segments``: the touched seekers' rows are replaced by their segments rebuilt (one merge).
       ``gold.transitions`` (partitioned by ``move_month``): the touched seekers' transitions are rebuilt
       from these segments; the months where old and new differ are replaced (their untouched seekers' rows
       kept as they were).
    3. ``gold.market_facts`` (by ``month``): the facts delta is added to the months it touches. The three
       market tables are recomputed from the first touched month on (their calendar starts ``rolling_months``
       earlier, so every recomputed window is whole).
    4. ``gold.flows`` and the per-period tables (by ``period_start``): the periods holding a changed
       transition month, and every period from the first touched market month's on.
    5. ``occupation_mobility`` and ``unusual_pairs`` (over every period) are small aggregates of the tables
       above: rebuilt whole, from the driver (as are the published views, by the publish step after it).
    A refresh falls back to a full build when the state of the last build is missing, when the flows
    settings or the reference tables changed since, or when silver changed in a way no batch explains.

Every write is a Delta overwrite of the partitions concerned (``replaceWhere``), atomic per table; the state
row (``gold.flows_state``) is appended last, so a refresh interrupted half-way is redone from the same state.
"""

from __future__ import annotations

import logging
import time
from functools import reduce

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mobility.calendar import add_months, period_start_date
from mobility.config import FlowsSettings
from mobility.gold.flows import flows_tables, market_tables, period_start, summary_tables
from mobility.gold.market import MEASURES, market_facts, nonzero_fact
from mobility.gold.tables import (
    FACT_KEYS,
    SEGMENT_KEY,
    SILVER,
    TABLES,
    State,
    distinct_dates,
    last_state,
    overwrite_from_driver,
    partitioned,
    replace,
    save_state,
    sql_dates,
)
from mobility.gold.transitions import TRANSITION_COLUMNS, RefTables, build_transitions, seeker_pass
from mobility.lake import Lake

log = logging.getLogger(__name__)


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
    if not all(lake.exists(f"gold.{name}") for name in TABLES):
        return None
    batches = new_batches(lake, since)
    if not batches:
        if since.silver != state.silver:
            return None
        log.info("flows: no batch since the last build; gold is up to date")
        save_state(lake, state, "unchanged")
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
        # 2. segments and transitions of the touched seekers, months where the transitions changed
        passed = seeker_pass(
            of_seekers(silver["spells"]),
            of_seekers(silver["sought_changes"]),
            of_seekers(silver["hires"]),
            level=options.level,
            grace_days=options.grace_days,
            persist=True,
        )
        segments = passed.segments
        lake.replace_groups(segments, "gold.segments", seekers, SEGMENT_KEY)
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
            passed=passed,
        )
        new_tr = partitioned("transitions", built.transitions).persist(StorageLevel.MEMORY_AND_DISK)
        columns = [*TRANSITION_COLUMNS, "move_month"]
        old_tr = of_seekers(lake.read("gold.transitions")).select(*columns)
        months = distinct_dates(changed_months(new_tr.select(*columns), old_tr, "move_month"), "move_month")
        if months:
            in_months = F.col("move_month").isin(months)
            kept = lake.read("gold.transitions").where(in_months).join(seekers, "seeker_id", "left_anti")
            rows = kept.select(*columns).unionByName(new_tr.where(in_months).select(*columns))
            replace(lake, "transitions", rows, f"move_month IN ({sql_dates(months)})")
        counts["transition months replaced"] = len(months)

        # 3. market facts delta, market tables from the first touched month on
        def facts(tables: dict[str, DataFrame], segments: DataFrame | None = None) -> DataFrame:
            return market_facts(
                of_seekers(tables["spells"]),
                of_seekers(tables["sought_changes"]),
                of_seekers(tables["hires"]),
                tables["offers"].join(offer_ids, "offer_id", "left_semi"),
                level=options.level,
                stock_categories=options.stock_categories,
                segments=segments,
            )

        delta = facts_delta(facts(silver, segments), facts(before)).persist(StorageLevel.MEMORY_AND_DISK)
        fact_months = distinct_dates(delta, "month")
        first_touched = min(fact_months) if fact_months else None
        if fact_months:
            current = lake.read("gold.market_facts").where(F.col("month").isin(fact_months))
            updated = _summed(current.select(*FACT_KEYS, *MEASURES).unionByName(delta))
            replace(lake, "market_facts", updated, f"month IN ({sql_dates(fact_months)})")
            all_facts = lake.read("gold.market_facts")
            first_fact = all_facts.agg(F.min("month")).first()[0]
            calendar = max(add_months(first_touched, -(options.rolling_months - 1)), first_fact)
            since_first = f"month >= DATE'{first_touched.isoformat()}'"
            tables = market_tables(all_facts, rolling_months=options.rolling_months, first_month=calendar)
            for name, df in tables.items():
                replace(lake, name, df.where(F.col("month") >= F.lit(first_touched)), since_first)
        counts["fact months changed"] = len(fact_months)

        # 4. per-period tables of the touched periods
        parts = []
        if months:
            periods = {period_start_date(m, options.period) for m in months}
            parts.append(f"period_start IN ({sql_dates(periods)})")
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
                replace(lake, name, df.where(condition), condition)
        log.info("flows: periods recomputed: %s", condition or "none")

        # 5. indicators over every period
        summaries = summary_tables(
            lake.read("gold.flows"),
            top_destinations=options.top_destinations,
            min_pair_moves=options.min_pair_moves,
            min_pair_ratio=options.min_pair_ratio,
        )
        for name, df in summaries.items():
            counts[f"gold.{name} rows"] = overwrite_from_driver(lake, name, df)
    finally:
        lake.spark.catalog.clearCache()
    save_state(lake, state, "refresh")
    log.info("flows: refreshed %d touched seekers, %d transition months, %d fact months in %.1f s",
             n_seekers, len(months), len(fact_months), time.monotonic() - started)  # fmt: skip
    return counts

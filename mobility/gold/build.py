"""A full build of the gold tables: ``read_sources`` (silver and ref tables) -> ``build`` (pure: frames in,
frames out, testable without a lake) -> the writes of ``mobility.gold.step``."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame

from mobility.config import FlowsSettings
from mobility.gold.flows import check_period, flows_tables, market_tables, summary_tables
from mobility.gold.market import market_facts
from mobility.gold.transitions import RefTables, build_transitions, seeker_pass
from mobility.lake import Lake


@dataclass(frozen=True)
class Sources:
    """What the gold tables are built from."""

    spells: DataFrame
    changes: DataFrame
    hires: DataFrame
    offers: DataFrame
    refs: RefTables


def read_sources(lake: Lake) -> Sources:
    """``silver.spells``, ``silver.sought_changes``, ``silver.hires``, ``silver.offers`` and the ref tables
    the transitions read, as of now."""
    return Sources(
        lake.read("silver.spells"),
        lake.read("silver.sought_changes"),
        lake.read("silver.hires"),
        lake.read("silver.offers"),
        RefTables.from_lake(lake),
    )


def build_states(sources: Sources, options: FlowsSettings, *, persist: bool = False) -> dict[str, DataFrame]:
    """The gold tables read from silver: ``segments`` (the spells' occupation segments, which ``recommend``
    reads for the stock of a day), ``transitions``, ``market_facts`` (the monthly facts behind the market
    tables), ``market`` (region), ``market_departement``, ``market_national``; and ``transitions_quality``, a
    one-row frame of quality figures (``mobility.gold.transitions``) for the caller to log (and store if it
    likes).

    The frames are lazy. With ``persist``, the ordered pass per seeker (its segments read by the transitions
    and the market alike), the matched hires, ``market_facts`` and ``market`` are persisted (memory and disk),
    so that writing these computes each once; the caller releases them (``spark.catalog.clearCache()`` at the
    end of the step).
    """
    check_period(options.period)
    level = options.level
    # One ordered pass per seeker gives the segments, which the market reads too, and the hires' origins.
    passed = seeker_pass(
        sources.spells,
        sources.changes,
        sources.hires,
        level=level,
        grace_days=options.grace_days,
        persist=persist,
    )
    segments = passed.segments
    built = build_transitions(
        sources.spells,
        sources.changes,
        sources.hires,
        sources.offers,
        sources.refs,
        level=level,
        grace_days=options.grace_days,
        geo_level=options.geo_level,
        v4_proche_max_rank=options.v4_proche_max_rank,
        passed=passed,
        persist=persist,
    )
    facts = market_facts(
        sources.spells,
        sources.changes,
        sources.hires,
        sources.offers,
        level=level,
        stock_categories=options.stock_categories,
        segments=segments,
    )
    if persist:
        facts = facts.persist(StorageLevel.MEMORY_AND_DISK)
    markets = market_tables(facts, rolling_months=options.rolling_months)
    if persist:
        markets["market"] = markets["market"].persist(StorageLevel.MEMORY_AND_DISK)
    return {
        "segments": segments,
        "transitions": built.transitions,
        "transitions_quality": built.quality,
        "market_facts": facts,
        **markets,
    }


def build_flows(
    transitions: DataFrame, market: DataFrame, options: FlowsSettings, *, persist: bool = False
) -> dict[str, DataFrame]:
    """The gold tables read from the transitions and the regional market: ``flows``, ``flows_region``,
    ``flows_occupation``, ``flows_grand_domaine``, ``region_balance``, ``occupation_mobility``,
    ``unusual_pairs``. ``transitions`` is best the table as written (the flows read it twice); with
    ``persist``, the move counts and ``flows`` are kept for the views that read them."""
    per_period = flows_tables(transitions, market, period=options.period, persist=persist)
    return {
        **per_period,
        **summary_tables(
            per_period["flows"],
            top_destinations=options.top_destinations,
            min_pair_moves=options.min_pair_moves,
            min_pair_ratio=options.min_pair_ratio,
        ),
    }


def build(sources: Sources, options: FlowsSettings, *, persist: bool = False) -> dict[str, DataFrame]:
    """Every gold table of the ``flows`` step, lazy: ``build_states`` and ``build_flows`` over its frames (the
    step writes the transitions first and gives ``build_flows`` the written table)."""
    states = build_states(sources, options, persist=persist)
    return {**states, **build_flows(states["transitions"], states["market"], options, persist=persist)}

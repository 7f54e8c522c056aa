"""``gold.flows``: moves between (occupation, region) states per period, its coarser views and indicators.

Definitions
-----------
Period
    ``period`` (a setting, ``quarter`` by default; ``month`` or ``year``) of the move date. Rows carry
    ``period`` as a label (``2022-Q1``, ``2022-03``, ``2022``) and ``period_start``, its first day.
``gold.flows``: one row per (``from_rome``, ``from_region``, ``to_rome``, ``to_region``, ``period``)
    with at least one move; occupations at the level of the transitions (``rome_v3`` by default).
    ``moves``: transitions of both kinds, split into ``hires`` and ``reorientations``. ``seekers_at_origin``:
    job seekers in stock in the origin occupation and region at the start of the period, i.e. the market
    stock at the end of the month before it (``mobility.gold.market``; 0 when the market has no row then).
    ``rate``: ``moves / seekers_at_origin`` (null when no seeker; it can exceed 1, as seekers registered
    during the period also move). ``median_days_to_move``: the lower median of ``days_to_move`` (the least
    value reached by half of the moves with a delay), exact. ``share_via_offers``: share of the hires made
    through an offer of ``silver.offers`` (reorientations never are; null when the row has no hire).
    ``dest_offers``, ``dest_positions``: offers published (and their positions) in the destination
    occupation and region during the period (regional market: offers placed nationally or abroad are not
    counted). ``dest_tension``: those offers per
    month-end seeker of the destination over the period's months (offers of the period / sum of the month-end
    stocks; null when no seeker), the mean monthly tension of the period.
Coarser views (``region_flows``, ``occupation_flows``, ``grand_domaine_flows``)
    The same aggregation of the same transitions on coarser keys: region -> region, occupation ->
    occupation, grand domaine (first letter of the code) -> grand domaine. The transitions are counted once
    (``move_counts``: per fine pair, period and delay in days) and every coarser view rolls those counts up:
    the additive columns add, and the counts per delay form a histogram whose median is exact at every level
    (an approximate median would not roll up). The fine view takes its median from each pair's sorted delays
    (``fine_counts``: a fine pair holds a few moves, and its histogram would be as long as its moves). The
    stock at origin is that of the coarse origin (e.g. the whole region), the destination market that of the
    coarse destination.
Indicators (additive: they read any flows table holding the columns they need)
    ``region_balance``: per region (and period), ``inflow`` (moves into the region from another region),
    ``outflow`` (moves out of it to another region), ``net = inflow - outflow``, ``internal`` (moves
    staying in the region, reorientations included). ``occupation_mobility``: per origin occupation,
    ``movers`` (moves from it), ``changers`` (to another occupation), ``share_changing``, and
    ``top_destinations``, the ``top`` other occupations by moves (ties by code) with their ``moves`` and
    ``share`` of the movers. ``unusual_pairs``: pairs of different occupations moving far more than their
    sizes predict: among moves that change occupation, ``expected = out(from) * in(to) / total`` where
    out/in are the pair's occupation totals; kept when ``moves >= min_moves`` and
    ``ratio = moves / expected >= min_ratio``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from mobility.gold.market import ROLLING_MONTHS, market_table

PERIODS = ("month", "quarter", "year")
FLOW_KEYS = ("rome", "region")
TOP_DESTINATIONS = 5
MIN_PAIR_MOVES = 5
MIN_PAIR_RATIO = 2.0
# gold table -> the geography of its market rows
MARKET_TABLES = {"market": "region", "market_departement": "departement", "market_national": "national"}

# dimension -> (its column on a transition side "from"/"to", its column in a regional market row); functions,
# as columns can only be made once a session exists.
DIMENSIONS: dict[str, tuple[Callable[[str], Column], Callable[[], Column]]] = {
    "rome": (lambda side: F.col(f"{side}_rome"), lambda: F.col("rome")),
    "region": (lambda side: F.col(f"{side}_region"), lambda: F.col("code_region")),
    "grand_domaine": (
        lambda side: F.substring(F.col(f"{side}_rome"), 1, 1),
        lambda: F.substring(F.col("rome"), 1, 1),
    ),
}


def check_period(period: str) -> str:
    if period not in PERIODS:
        raise ValueError(f"period {period!r}: expected one of {', '.join(PERIODS)}")
    return period


def period_start(column: Column, period: str) -> Column:
    """The first day of the ``period`` holding the date ``column``."""
    return F.trunc(column, check_period(period))


def period_label(start: Column, period: str) -> Column:
    """``2022-Q1``, ``2022-03`` or ``2022`` for the period starting on ``start``."""
    check_period(period)
    if period == "quarter":
        return F.format_string("%d-Q%d", F.year(start), F.quarter(start))
    if period == "month":
        return F.date_format(start, "yyyy-MM")
    return F.year(start).cast("string")


def _move_aggregates() -> list[Column]:
    is_hire = F.col("kind") == "hire"
    return [
        F.count(F.lit(1)).alias("moves"),
        F.count(F.when(is_hire, 1)).alias("hires"),
        F.count(F.when(F.col("kind") == "reorientation", 1)).alias("reorientations"),
        F.count(F.when(is_hire & F.col("via_offer"), 1)).alias("_via_offer"),
    ]


def move_counts(transitions: DataFrame, *, period: str = "quarter") -> DataFrame:
    """The transitions counted once, per fine pair (``from_rome``, ``from_region``, ``to_rome``,
    ``to_region``), ``period_start`` and ``days_to_move``: ``moves``, ``hires``, ``reorientations``,
    ``_via_offer``. The coarser views roll these up."""
    fine = [*(f"from_{d}" for d in FLOW_KEYS), *(f"to_{d}" for d in FLOW_KEYS)]
    return transitions.groupBy(
        *fine, period_start(F.col("move_date"), period).alias("period_start"), "days_to_move"
    ).agg(*_move_aggregates())


def fine_counts(transitions: DataFrame, *, period: str = "quarter") -> DataFrame:
    """``rolled_up(move_counts(...))`` at the fine grain, in one aggregation: a fine pair and period holds a
    few moves (their counts per delay hardly compress), so its exact lower median is read from its sorted
    delays rather than from a histogram sorted in a window."""
    fine = [*(f"from_{d}" for d in FLOW_KEYS), *(f"to_{d}" for d in FLOW_KEYS)]
    delays = F.sort_array(F.collect_list("days_to_move"))  # nulls left out
    return (
        transitions.groupBy(*fine, period_start(F.col("move_date"), period).alias("period_start"))
        .agg(*_move_aggregates(), delays.alias("_delays"))
        .select(
            *fine,
            "period_start",
            *(F.col(c).cast("long").alias(c) for c in _COUNTS),
            F.when(
                F.size("_delays") > 0, F.element_at("_delays", F.ceil(F.size("_delays") / 2).cast("int"))
            ).alias("median_days_to_move"),
        )
    )


_COUNTS = ("moves", "hires", "reorientations", "_via_offer")


def rolled_up(counts: DataFrame, keys: Sequence[str]) -> DataFrame:
    """``move_counts`` summed per ``keys`` (columns of the counts), with the exact lower median of the delay:
    the least ``days_to_move`` at which the running count of moves with a delay reaches half of them."""
    names = list(keys)
    per_day = counts.groupBy(*keys, "days_to_move").agg(*(F.sum(c).alias(c) for c in _COUNTS))
    dated = F.when(F.col("days_to_move").isNotNull(), F.col("moves")).otherwise(0)
    ordered = Window.partitionBy(*names).orderBy("days_to_move")
    running = F.sum(dated).over(ordered.rowsBetween(Window.unboundedPreceding, Window.currentRow))
    whole = F.sum(dated).over(ordered.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing))
    reached = F.col("days_to_move").isNotNull() & (2 * F.col("_running") >= F.col("_dated"))
    return (
        per_day.withColumns({"_running": running, "_dated": whole})
        .groupBy(*names)
        .agg(
            *(F.sum(c).cast("long").alias(c) for c in _COUNTS),
            F.min(F.when(reached, F.col("days_to_move"))).alias("median_days_to_move"),
        )
    )


def flows(
    transitions: DataFrame,
    market_region: DataFrame,
    *,
    period: str = "quarter",
    by: Sequence[str] = FLOW_KEYS,
    counts: DataFrame | None = None,
) -> DataFrame:
    """``gold.flows`` (``by`` = rome, region) or a coarser view (``by`` a subset of ``DIMENSIONS``).

    ``transitions``: ``gold.transitions``; ``market_region``: the regional ``gold.market`` at the same
    occupation level. Columns: ``from_<d>`` for d in ``by``, ``to_<d>``, ``period``, ``period_start``,
    ``moves``, ``hires``, ``reorientations``, ``seekers_at_origin``, ``rate``, ``median_days_to_move``,
    ``share_via_offers``, ``dest_offers``, ``dest_positions``, ``dest_tension``. ``counts``: the
    transitions' ``move_counts`` for this period, when the caller has them (the coarser views read them;
    the fine view counts the transitions itself, ``fine_counts``).
    """
    check_period(period)
    unknown = [d for d in by if d not in DIMENSIONS]
    if not by or unknown:
        raise ValueError(f"by {list(by)!r}: expected dimensions among {', '.join(DIMENSIONS)}")
    origin_keys = [f"from_{d}" for d in by]
    destination_keys = [f"to_{d}" for d in by]
    if tuple(by) == FLOW_KEYS:
        counted = fine_counts(transitions, period=period)
    else:
        if counts is None:
            counts = move_counts(transitions, period=period)
        view = counts.select(
            *(DIMENSIONS[d][0]("from").alias(f"from_{d}") for d in by),
            *(DIMENSIONS[d][0]("to").alias(f"to_{d}") for d in by),
            "period_start",
            "days_to_move",
            *_COUNTS,
        )
        counted = rolled_up(view, [*origin_keys, *destination_keys, "period_start"])

    area = market_region.select(
        *(DIMENSIONS[d][1]().alias(d) for d in by), "month", "seekers_stock", "offers_published", "positions"
    )
    # Stock at the start of a period = stock at the end of the month before it.
    next_month = F.add_months(F.col("month"), 1)
    at_origin = (
        area.where(period_start(next_month, period) == next_month)
        .groupBy(*(F.col(d).alias(f"from_{d}") for d in by), next_month.alias("period_start"))
        .agg(F.sum("seekers_stock").alias("seekers_at_origin"))
    )
    at_destination = area.groupBy(
        *(F.col(d).alias(f"to_{d}") for d in by), period_start(F.col("month"), period).alias("period_start")
    ).agg(
        F.sum("offers_published").alias("dest_offers"),
        F.sum("positions").alias("dest_positions"),
        F.sum("seekers_stock").alias("_dest_stock"),
    )
    # The market sides are bounded by occupations x places x periods, the moves by the data: broadcast, so
    # that the moves are not shuffled twice more.
    joined = counted.join(F.broadcast(at_origin), [*origin_keys, "period_start"], "left").join(
        F.broadcast(at_destination), [*destination_keys, "period_start"], "left"
    )
    stock = F.coalesce(F.col("seekers_at_origin"), F.lit(0))
    return joined.select(
        *origin_keys,
        *destination_keys,
        period_label(F.col("period_start"), period).alias("period"),
        "period_start",
        "moves",
        "hires",
        "reorientations",
        stock.alias("seekers_at_origin"),
        F.when(stock > 0, F.col("moves") / stock).alias("rate"),
        "median_days_to_move",
        F.when(F.col("hires") > 0, F.col("_via_offer") / F.col("hires")).alias("share_via_offers"),
        F.coalesce(F.col("dest_offers"), F.lit(0)).alias("dest_offers"),
        F.coalesce(F.col("dest_positions"), F.lit(0)).alias("dest_positions"),
        F.when(F.col("_dest_stock") > 0, F.col("dest_offers") / F.col("_dest_stock")).alias("dest_tension"),
    )


def region_flows(transitions: DataFrame, market_region: DataFrame, *, period: str = "quarter") -> DataFrame:
    """Region -> region flows (``from_region``, ``to_region``, ``period``)."""
    return flows(transitions, market_region, period=period, by=("region",))


def occupation_flows(
    transitions: DataFrame, market_region: DataFrame, *, period: str = "quarter"
) -> DataFrame:
    """Occupation -> occupation flows (``from_rome``, ``to_rome``, ``period``), France as a whole."""
    return flows(transitions, market_region, period=period, by=("rome",))


def grand_domaine_flows(
    transitions: DataFrame, market_region: DataFrame, *, period: str = "quarter"
) -> DataFrame:
    """Grand domaine -> grand domaine flows (``from_grand_domaine``, ``to_grand_domaine``, ``period``)."""
    return flows(transitions, market_region, period=period, by=("grand_domaine",))


# ------------------------------------------------------------------------------------------ indicators


def _period_keys(by_period: bool) -> list[str]:
    return ["period", "period_start"] if by_period else []


def region_balance(flows_df: DataFrame, *, by_period: bool = True) -> DataFrame:
    """Per region (and period): ``inflow``, ``outflow``, ``net``, ``internal`` (see the module docstring).

    ``flows_df``: any flows table with ``from_region``, ``to_region``, ``moves`` (and the period columns).
    """
    periods = _period_keys(by_period)
    crossing = ~F.col("from_region").eqNullSafe(F.col("to_region"))
    out = flows_df.groupBy(F.col("from_region").alias("region"), *periods).agg(
        F.sum(F.when(crossing, F.col("moves")).otherwise(0)).alias("outflow"),
        F.sum(F.when(~crossing, F.col("moves")).otherwise(0)).alias("internal"),
    )
    into = flows_df.groupBy(F.col("to_region").alias("region"), *periods).agg(
        F.sum(F.when(crossing, F.col("moves")).otherwise(0)).alias("inflow")
    )
    both = out.join(into, ["region", *periods], "full_outer").fillna(
        0, subset=["inflow", "outflow", "internal"]
    )
    return both.select(
        "region",
        *periods,
        F.col("inflow").cast("long").alias("inflow"),
        F.col("outflow").cast("long").alias("outflow"),
        (F.col("inflow") - F.col("outflow")).cast("long").alias("net"),
        F.col("internal").cast("long").alias("internal"),
    )


def occupation_mobility(
    flows_df: DataFrame, *, top: int = TOP_DESTINATIONS, by_period: bool = False
) -> DataFrame:
    """Per origin occupation (and period): ``movers``, ``changers``, ``share_changing`` and
    ``top_destinations`` (array of struct ``to_rome, moves, share``, closest first).

    ``flows_df``: any flows table with ``from_rome``, ``to_rome``, ``moves`` (and the period columns).
    """
    periods = _period_keys(by_period)
    pairs = flows_df.groupBy("from_rome", *periods, "to_rome").agg(F.sum("moves").alias("moves"))
    changing = F.col("to_rome") != F.col("from_rome")
    totals = pairs.groupBy("from_rome", *periods).agg(
        F.sum("moves").alias("movers"), F.sum(F.when(changing, F.col("moves")).otherwise(0)).alias("changers")
    )
    ranked = Window.partitionBy("from_rome", *periods).orderBy(F.col("moves").desc(), F.col("to_rome"))
    tops = (
        pairs.where(changing)
        .withColumn("_rank", F.row_number().over(ranked))
        .where(F.col("_rank") <= top)
        .groupBy("from_rome", *periods)
        .agg(F.sort_array(F.collect_list(F.struct("_rank", "to_rome", "moves"))).alias("_top"))
    )
    joined = totals.join(tops, ["from_rome", *periods], "left")
    destinations = F.transform(
        F.coalesce(F.col("_top"), F.array().cast("array<struct<_rank:int,to_rome:string,moves:bigint>>")),
        lambda d: F.struct(
            d["to_rome"].alias("to_rome"),
            d["moves"].alias("moves"),
            (d["moves"] / F.col("movers")).alias("share"),
        ),
    )
    return joined.select(
        "from_rome",
        *periods,
        F.col("movers").cast("long").alias("movers"),
        F.col("changers").cast("long").alias("changers"),
        (F.col("changers") / F.col("movers")).alias("share_changing"),
        destinations.alias("top_destinations"),
    )


def unusual_pairs(
    flows_df: DataFrame,
    *,
    min_moves: int = MIN_PAIR_MOVES,
    min_ratio: float = MIN_PAIR_RATIO,
    by_period: bool = False,
) -> DataFrame:
    """Occupation pairs moving far more than their sizes predict: ``from_rome, to_rome`` (and period),
    ``moves``, ``out_from``, ``in_to``, ``total``, ``expected``, ``ratio`` (see the module docstring)."""
    periods = _period_keys(by_period)
    pairs = (
        flows_df.where(F.col("to_rome") != F.col("from_rome"))
        .groupBy(*periods, "from_rome", "to_rome")
        .agg(F.sum("moves").alias("moves"))
    )
    # One partition per period (or one in all): rows are occupation pairs, a few hundred thousand at most.
    whole = Window.partitionBy(*periods) if periods else Window.partitionBy(F.lit(0))
    with_sizes = pairs.withColumns(
        {
            "out_from": F.sum("moves").over(Window.partitionBy(*periods, "from_rome")),
            "in_to": F.sum("moves").over(Window.partitionBy(*periods, "to_rome")),
            "total": F.sum("moves").over(whole),
        }
    )
    expected = F.col("out_from") * F.col("in_to") / F.col("total")
    return (
        with_sizes.withColumn("expected", expected)
        .withColumn("ratio", F.col("moves") / F.col("expected"))
        .where((F.col("moves") >= min_moves) & (F.col("ratio") >= min_ratio))
        .select(
            "from_rome",
            "to_rome",
            *periods,
            F.col("moves").cast("long").alias("moves"),
            F.col("out_from").cast("long").alias("out_from"),
            F.col("in_to").cast("long").alias("in_to"),
            F.col("total").cast("long").alias("total"),
            "expected",
            "ratio",
        )
    )


# --------------------------------------------------------------------------------------------- gold


def market_tables(
    facts: DataFrame, *, rolling_months: int = ROLLING_MONTHS, first_month: date | None = None
) -> dict[str, DataFrame]:
    """``market`` (region), ``market_departement`` and ``market_national`` from the monthly facts
    (``mobility.gold.market.market_facts``); ``first_month``: start of their calendar (default: the
    facts')."""
    return {
        name: market_table(facts, geo=geo, rolling_months=rolling_months, first_month=first_month)
        for name, geo in MARKET_TABLES.items()
    }


def flows_tables(
    transitions: DataFrame, market_region: DataFrame, *, period: str = "quarter", persist: bool = False
) -> dict[str, DataFrame]:
    """The per-period tables: ``flows``, its coarser views and ``region_balance``. Each period depends only
    on the transitions of the period and the market of its months and the month before, which is what lets
    a refresh recompute only the periods a batch touched. The transitions are counted once for the three
    coarser views; with ``persist`` those counts and ``flows`` (read by ``region_balance`` and the
    indicators) are kept in memory and on disk, for the caller to release."""
    counts = move_counts(transitions, period=period)
    if persist:
        counts = counts.persist(StorageLevel.MEMORY_AND_DISK)
    views = {
        "flows": FLOW_KEYS,
        "flows_region": ("region",),
        "flows_occupation": ("rome",),
        "flows_grand_domaine": ("grand_domaine",),
    }
    out = {
        name: flows(transitions, market_region, period=period, by=by, counts=counts)
        for name, by in views.items()
    }
    if persist:  # read by region_balance and the indicators
        out["flows"] = out["flows"].persist(StorageLevel.MEMORY_AND_DISK)
    return {**out, "region_balance": region_balance(out["flows"])}


def summary_tables(
    flows_df: DataFrame,
    *,
    top_destinations: int = TOP_DESTINATIONS,
    min_pair_moves: int = MIN_PAIR_MOVES,
    min_pair_ratio: float = MIN_PAIR_RATIO,
) -> dict[str, DataFrame]:
    """The indicators over every period: ``occupation_mobility`` and ``unusual_pairs``."""
    return {
        "occupation_mobility": occupation_mobility(flows_df, top=top_destinations),
        "unusual_pairs": unusual_pairs(flows_df, min_moves=min_pair_moves, min_ratio=min_pair_ratio),
    }

"""``gold.market``: the labour market of each occupation, place and month, from silver tables.

One row per (``rome``, area, ``month``), the area a region (``geo="region"``: ``code_region``, the table
``gold.market``), a département (``geo="departement"``: ``code_departement``, ``gold.market_departement``)
or France as a whole (``geo="national"``: no area column, ``gold.market_national``). ``rome`` is the
occupation at ``level`` (``rome_v3`` by default, see ``mobility.gold.transitions``); ``month`` the first
day of the month.

Definitions
-----------
``seekers_stock``
    Job seekers registered at the end of the month (on its last day) in a stock category (1-3, i.e. A, B, C;
    ``stock_categories``), counted in the occupation they seek on that day (``mobility.gold.transitions``
    segments: a change of the occupation sought moves the seeker) and the place of their spell. A spell
    counts from its registration date until the day before its end date (DATANN, the day of
    deregistration); a later spell of the same seeker ends an earlier one, so a seeker counts once.
``registrations``
    Spells registered in the month (every category), in the occupation of the registration.
``exits_to_work``
    Spells ended in the month with end reason ``01`` (back to work), in the occupation sought at the end.
``offers_published``, ``positions``
    Offers created in the month (``created_at``, UTC), and their positions, in the offer's occupation and
    place. An offer counts where it is placed: in a region row when placed at commune, postal-code,
    département or region level, in a département row only when placed at commune, postal-code or
    département level (a region-level offer counts for its region only). Offers placed nationally, in an
    overseas collectivity or abroad (``mobility.ingest.references``) count in no regional or départemental
    row; the national rows hold every offer.
``hires``
    Hires of the month (``silver.hires``, matched to a spell or not) in the hire's occupation and workplace.
``tension``
    ``offers_published / seekers_stock``: offers published in the month per job seeker in stock at its end;
    null when no seeker is in stock.
Rolling values (window of ``rolling_months``, 12 by default, ending with the month)
    ``registrations_rolling``, ``exits_to_work_rolling``, ``offers_published_rolling``,
    ``positions_rolling``, ``hires_rolling``: sums over the window; ``seekers_stock_avg_rolling``: the mean
    month-end stock; ``tension_rolling``: offers of the window per month-end seeker of the window
    (``offers_published_rolling / sum of seekers_stock``, i.e. the mean monthly tension weighted by stock;
    null when no seeker); ``rolling_months``: the months of the calendar the window covers (fewer than the
    setting in the first months, whose rolling values are partial).

Calendar: every month from the first to the last month holding a fact of the table (a registration, an
entry into or exit from the stock, an exit to work, a hire, an offer), or ``first_month``..``last_month``
when given (stock registered before the calendar is carried into its first month, other facts outside it
are dropped). A row exists when any value of the month or of its window is non-zero. Records without an
occupation, or without an area at the chosen geography, are left out.

Two steps: ``market_facts`` (the expensive one: the spells' occupation segments, hires and offers reduced
to monthly facts per occupation, region and département) and ``market_table`` (one geography from those
facts), so that the three tables share one computation of the facts; ``market`` chains them. Native Spark
only, one shuffle per table (by occupation and area, kept by the month sums and both windows): stocks are
running sums of entries (+1) and exits (-1) over the months holding a fact, each stretched to the month
before the next one (a grid of every area times the calendar, joined to the facts, cost a shuffle per step);
rolling values are running sums over a month index, less their value ``rolling_months`` months before.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from mobility.gold.transitions import check_level, occupation_segments
from mobility.ingest.formats import MOTANN_BACK_TO_WORK

GEOS = {"region": ("code_region",), "departement": ("code_departement",), "national": ()}
STOCK_CATEGORIES = (1, 2, 3)
ROLLING_MONTHS = 12
REGION_PLACES = ("commune", "postal_code", "departement", "region")
DEPARTEMENT_PLACES = ("commune", "postal_code", "departement")

_FLOWS = ("registrations", "exits_to_work", "offers_published", "positions", "hires")
MEASURES = ("stock_delta", *_FLOWS)


def check_geo(geo: str) -> tuple[str, ...]:
    if geo not in GEOS:
        raise ValueError(f"geo {geo!r}: expected one of {', '.join(GEOS)}")
    return GEOS[geo]


def _month(column: Column) -> Column:
    return F.trunc(column, "month")


def _month_index(column: Column) -> Column:
    return F.year(column) * 12 + F.month(column)


def _fact(month: Column, **values: int | Column) -> Column:
    """One fact of a month: a struct of ``month``, ``stock_delta`` and the monthly flows (0 unless given)."""
    fields = [month.alias("month")]
    for name in MEASURES:
        value = values.get(name, 0)
        fields.append((value if isinstance(value, Column) else F.lit(value)).cast("long").alias(name))
    return F.struct(*fields)


def market_facts(
    spells: DataFrame,
    sought_changes: DataFrame,
    hires: DataFrame,
    offers: DataFrame,
    *,
    level: str = "rome_v3",
    stock_categories: Sequence[int] = STOCK_CATEGORIES,
    segments: DataFrame | None = None,
) -> DataFrame:
    """The monthly facts every market table aggregates: one row per (``rome``, ``code_region``,
    ``code_departement``, ``month``) with ``stock_delta`` (entries into the stock minus exits from it) and
    the monthly flows. An offer's ``code_region`` (``code_departement``) is null unless it counts in region
    (département) rows. The expensive part of the market (the spells' occupation segments); compute it once
    and give it to ``market_table`` for each geography. ``segments``: the spells' ``occupation_segments`` at
    ``level`` when the caller has them already (transitions read them too)."""
    check_level(level)
    keys = ["rome", "code_region", "code_departement"]

    def facts_of(
        df: DataFrame, occupation: str, region: Column, departement: Column, *facts: Column
    ) -> DataFrame:
        """Rows of (keys, fact fields) from the facts (null: none) each row of ``df`` holds."""
        exploded = df.select(
            F.col(occupation).alias("rome"),
            region.alias("code_region"),
            departement.alias("code_departement"),
            F.explode(F.array(*facts)).alias("_fact"),
        )
        return exploded.where(F.col("_fact").isNotNull()).select(*keys, "_fact.*")

    # One pass over the segments of spells: stock entries and exits, registrations, exits to work.
    if segments is None:
        segments = occupation_segments(spells, sought_changes, level=level)
    stocked = F.col("category").isin(*stock_categories) & (
        F.col("stock_until").isNull() | (F.col("stock_until") > F.col("seg_start"))
    )
    back_to_work = (
        F.col("seg_next").isNull()
        & (F.col("end_reason") == MOTANN_BACK_TO_WORK)
        & F.col("end_date").isNotNull()
    )
    region, departement = F.col("code_region"), F.col("code_departement")
    spell_facts = facts_of(
        segments,
        "occupation",
        region,
        departement,
        F.when(stocked, _fact(_month(F.col("seg_start")), stock_delta=1)),
        F.when(
            stocked & F.col("stock_until").isNotNull(), _fact(_month(F.col("stock_until")), stock_delta=-1)
        ),
        F.when(F.col("seg_index") == 1, _fact(_month(F.col("registration_date")), registrations=1)),
        F.when(back_to_work, _fact(_month(F.col("end_date")), exits_to_work=1)),
    )
    hire_facts = facts_of(hires, level, region, departement, _fact(_month(F.col("hire_date")), hires=1))
    offer_facts = facts_of(
        offers,
        level,
        F.when(F.col("place_level").isin(*REGION_PLACES), region),
        F.when(F.col("place_level").isin(*DEPARTEMENT_PLACES), departement),
        _fact(
            _month(F.to_date("created_at")),
            offers_published=1,
            positions=F.coalesce(F.col("positions"), F.lit(1)),
        ),
    )
    return (
        spell_facts.unionByName(hire_facts)
        .unionByName(offer_facts)
        .where(F.col("month").isNotNull() & F.col("rome").isNotNull())
        .groupBy(*keys, "month")
        .agg(*(F.sum(c).alias(c) for c in MEASURES))
        .where(nonzero_fact())
    )


def nonzero_fact() -> Column:
    """A fact row that counts: an entry and an exit of one month cancel out, and a fact of nothing must not
    stretch the calendar (nor differ between a full build and a refresh that sums deltas)."""
    return F.greatest(*(F.abs(F.col(c)) for c in MEASURES)) > 0


def market_table(
    facts: DataFrame,
    *,
    geo: str = "region",
    rolling_months: int = ROLLING_MONTHS,
    first_month: date | None = None,
    last_month: date | None = None,
) -> DataFrame:
    """The market table of ``geo`` from ``market_facts`` (see the module docstring for every column).

    ``geo``: ``region`` (default), ``departement`` or ``national``. ``rolling_months``: window of the rolling
    values (12). ``first_month``/``last_month``: the calendar (default: the months of the facts).
    """
    area = check_geo(geo)
    if rolling_months < 1:
        raise ValueError(f"rolling_months {rolling_months}: expected at least 1")
    keys = ["rome", *area]
    known = F.lit(True)
    for key in area:
        known &= F.col(key).isNotNull()
    monthly = facts.where(known).select(*keys, "month", *MEASURES)

    # The calendar, as a one-row frame (no collect): data bounds unless given.
    bounds = monthly.agg(F.min("month").alias("_first"), F.max("month").alias("_last"))
    if first_month is not None:
        bounds = bounds.withColumn("_first", F.trunc(F.lit(first_month), "month"))
    if last_month is not None:
        bounds = bounds.withColumn("_last", F.trunc(F.lit(last_month), "month"))

    # Facts before the calendar only carry their stock into its first month; facts after it are dropped.
    # One shuffle: by area, which the month sums and both windows below keep.
    before = F.col("month") < F.col("_first")
    clamped = (
        monthly.crossJoin(F.broadcast(bounds))
        .where(F.col("month") <= F.col("_last"))
        .select(
            *keys,
            F.greatest(F.col("month"), F.col("_first")).alias("month"),
            "stock_delta",
            *(F.when(before, F.lit(0)).otherwise(F.col(name)).alias(name) for name in _FLOWS),
        )
        .repartition(*keys)
        .groupBy(*keys, "month")
        .agg(*(F.sum(c).alias(c) for c in MEASURES))
    )
    # The months without a fact: each fact month stretched to the month before the next (the calendar's last
    # for the last), carrying its stock, with no flow. The months before an area's first fact would hold
    # only zeros: they are not made (they count in ``rolling_months`` all the same).
    by_month = Window.partitionBy(*keys).orderBy("month")
    running = by_month.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    stretched = clamped.crossJoin(F.broadcast(bounds)).select(
        *keys,
        "month",
        F.sum("stock_delta").over(running).alias("seekers_stock"),
        *_FLOWS,
        F.coalesce(F.add_months(F.lead("month").over(by_month), -1), F.col("_last")).alias("_until"),
        _month_index(F.col("_first")).alias("_first_index"),
    )
    dense = stretched.select(
        *keys,
        F.explode(F.sequence("month", "_until", F.expr("INTERVAL 1 MONTH"))).alias("_month"),
        "month",
        "seekers_stock",
        *_FLOWS,
        "_first_index",
    ).select(
        *keys,
        F.col("_month").alias("month"),
        "seekers_stock",
        *(
            F.when(F.col("_month") == F.col("month"), F.col(name)).otherwise(F.lit(0)).alias(name)
            for name in _FLOWS
        ),
        _month_index(F.col("_month")).alias("_index"),
        "_first_index",
    )

    # Rolling sums as running sums less the running sum of ``rolling_months`` rows before (one row per month
    # from an area's first fact on): Spark evaluates a sliding frame again over every row it holds each time
    # its lower bound moves, a running frame once per row.
    by_index = Window.partitionBy(*keys).orderBy("_index")
    upto = by_index.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    summed = (*_FLOWS, "seekers_stock")
    running = dense.select("*", *(F.sum(c).over(upto).alias(f"_run_{c}") for c in summed))

    def rolling(name: str) -> Column:
        run = f"_run_{name}"
        return F.col(run) - F.coalesce(F.lag(run, rolling_months).over(by_index), F.lit(0))

    months = F.least(F.lit(rolling_months), F.col("_index") - F.col("_first_index") + 1)
    stock_sum = rolling("seekers_stock")
    out = running.select(
        *keys,
        "month",
        "seekers_stock",
        *_FLOWS,
        F.when(F.col("seekers_stock") > 0, F.col("offers_published") / F.col("seekers_stock")).alias(
            "tension"
        ),
        *(rolling(name).alias(f"{name}_rolling") for name in _FLOWS),
        (stock_sum / months).alias("seekers_stock_avg_rolling"),
        F.when(stock_sum > 0, rolling("offers_published") / stock_sum).alias("tension_rolling"),
        months.cast("int").alias("rolling_months"),
    )
    anything = F.col("seekers_stock") != 0
    for name in _FLOWS:
        anything = anything | (F.col(f"{name}_rolling") != 0)
    anything = anything | (F.col("seekers_stock_avg_rolling") != 0)
    return out.where(anything)


def market(
    spells: DataFrame,
    sought_changes: DataFrame,
    hires: DataFrame,
    offers: DataFrame,
    *,
    geo: str = "region",
    level: str = "rome_v3",
    rolling_months: int = ROLLING_MONTHS,
    stock_categories: Sequence[int] = STOCK_CATEGORIES,
    first_month: date | None = None,
    last_month: date | None = None,
) -> DataFrame:
    """The market table of ``geo`` straight from silver tables: ``market_table(market_facts(...))``.

    ``level``: occupation level, ``rome_v3`` (default) or ``rome``. ``stock_categories``: the registration
    categories counted in the stock (1, 2, 3). The other arguments are ``market_table``'s.
    """
    check_geo(geo)
    facts = market_facts(
        spells, sought_changes, hires, offers, level=level, stock_categories=stock_categories
    )
    return market_table(
        facts, geo=geo, rolling_months=rolling_months, first_month=first_month, last_month=last_month
    )

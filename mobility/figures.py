"""What the report and the notebooks show: small tables computed from the published views.

Every function reads ``gold.published_*`` views (never the gold tables) and reference tables (the
data-quality summaries: the ingestion log and the quarantine, counting records only), and returns a
DataFrame whose size is bounded by the referentials (regions, grands domaines, occupations, months), never
by the number of seekers, so that callers may bring it to the driver.

A total here is the sum of the *published* cells: a suppressed cell (null) counts for nothing, so the sums
are lower bounds of the true figures, and the sum of visible cells is itself at least ``min_cell`` when not
zero (each visible count is). The share of a line that was suppressed is reported beside the figures
where it matters (``cells_suppressed``).
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def _sum(col: str) -> Column:
    """Sum of the visible cells, 0 when all are suppressed."""
    return F.coalesce(F.sum(col), F.lit(0)).cast("long").alias(col)


def _ratio(num: Column, den: Column) -> Column:
    return F.when(den > 0, num / den)


def occupation_labels(rome: DataFrame) -> DataFrame:
    """``rome``, ``label``: the ROME v3 fiche labels (the level the gold tables compare occupations at)."""
    return rome.where(F.col("version") == "v3").select(F.col("code_rome").alias("rome"), "label")


def grand_domaine_labels(rome_tree: DataFrame) -> DataFrame:
    """``grand_domaine``, ``label``: the 14 grands domaines of the ROME tree."""
    return rome_tree.where(F.col("level") == "grand_domaine").select(
        F.col("code").alias("grand_domaine"), "label"
    )


def _named(df: DataFrame, region: DataFrame, key: str, prefix: str) -> DataFrame:
    names = region.select(
        F.col("code_region").alias(key),
        F.col("name").alias(f"{prefix}name"),
        F.col("lat").alias(f"{prefix}lat"),
        F.col("lng").alias(f"{prefix}lng"),
    )
    return df.join(F.broadcast(names), key, "left")


def _labelled(df: DataFrame, labels: DataFrame, key: str, out: str) -> DataFrame:
    named = labels.select(F.col(labels.columns[0]).alias(key), F.col("label").alias(out))
    return df.join(F.broadcast(named), key, "left")


def key_figures(
    flows_region: DataFrame, occupation_mobility: DataFrame, market_national: DataFrame
) -> DataFrame:
    """One row of headline figures (counts are sums of published cells, hence lower bounds).

    ``moves``, ``hires``, ``reorientations`` over every period; ``share_changing_region`` and
    ``share_changing_occupation`` among the published moves; ``median_days_to_move`` the moves-weighted mean
    of the published medians; the stock, offers and tension of the last published month.
    """
    shown = flows_region.where(F.col("moves").isNotNull())
    moves = shown.agg(
        _sum("moves"),
        F.coalesce(F.sum(F.when(F.col("hires").isNotNull(), F.col("hires"))), F.lit(0)).alias("hires"),
        F.coalesce(F.sum("reorientations"), F.lit(0)).alias("reorientations"),
        _ratio(
            F.coalesce(F.sum(F.when(F.col("from_region") != F.col("to_region"), F.col("moves"))), F.lit(0)),
            F.sum(F.when(F.col("from_region").isNotNull() & F.col("to_region").isNotNull(), F.col("moves"))),
        ).alias("share_changing_region"),
        _ratio(
            F.sum(F.col("median_days_to_move") * F.col("moves")),
            F.sum(F.when(F.col("median_days_to_move").isNotNull(), F.col("moves"))),
        ).alias("median_days_to_move"),
        F.count(F.lit(1)).alias("cells_published"),
        F.min("period").alias("first_period"),
        F.max("period").alias("last_period"),
    ).crossJoin(flows_region.agg(F.count_if(F.col("moves").isNull()).alias("cells_suppressed")))
    changers = occupation_mobility.where(F.col("movers").isNotNull()).agg(
        _ratio(F.sum("changers"), F.sum("movers")).alias("share_changing_occupation")
    )
    last = market_national.agg(F.max("month").alias("month"))
    stock = (
        market_national.join(last, "month")
        .where(F.col("seekers_stock").isNotNull())
        .agg(
            F.first("month").alias("last_month"),
            _sum("seekers_stock"),
            _sum("offers_published"),
        )
        .withColumn("tension", _ratio(F.col("offers_published"), F.col("seekers_stock")))
    )
    return moves.crossJoin(changers).crossJoin(stock)


def region_flows(flows_region: DataFrame, region: DataFrame) -> DataFrame:
    """Per (from region, to region): published moves over all periods, with the regions' names and
    centroids (``from_name``, ``from_lat``...). At most regions x regions rows."""
    pairs = (
        flows_region.where(F.col("from_region").isNotNull() & F.col("to_region").isNotNull())
        .groupBy("from_region", "to_region")
        .agg(_sum("moves"), F.count_if(F.col("moves").isNull()).alias("cells_suppressed"))
    )
    return _named(_named(pairs, region, "from_region", "from_"), region, "to_region", "to_")


def region_balance(balance: DataFrame, region: DataFrame) -> DataFrame:
    """Per region: published inflow, outflow, net and internal moves over all periods (inflow and outflow
    are published or withheld together), with name and centroid."""
    shown = balance.where(F.col("inflow").isNotNull() & F.col("region").isNotNull())
    per_region = shown.groupBy("region").agg(_sum("inflow"), _sum("outflow"), _sum("net"), _sum("internal"))
    named = region.select(
        F.col("code_region").alias("region"), "name", "lat", "lng", F.col("area_km2").alias("area_km2")
    )
    return per_region.join(F.broadcast(named), "region", "left")


def grand_domaine_flows(
    flows_grand_domaine: DataFrame, rome_tree: DataFrame, *, changing_only: bool = False
) -> DataFrame:
    """Per (from grand domaine, to grand domaine): published moves over all periods, with labels (only
    between two different grands domaines with ``changing_only``)."""
    shown = flows_grand_domaine.where(F.col("moves").isNotNull())
    if changing_only:
        shown = shown.where(F.col("from_grand_domaine") != F.col("to_grand_domaine"))
    pairs = shown.groupBy("from_grand_domaine", "to_grand_domaine").agg(_sum("moves"))
    labels = grand_domaine_labels(rome_tree)
    return _labelled(
        _labelled(pairs, labels, "from_grand_domaine", "from_label"), labels, "to_grand_domaine", "to_label"
    )


def occupation_passes(
    occupation_mobility: DataFrame, rome: DataFrame, rome_mobility: DataFrame, top: int
) -> DataFrame:
    """The ``top`` most frequent moves from one occupation to another (the mobility "passes"), over every
    period, from the published top destinations: moves, share of the origin's movers, labels, and the
    official ROME v3 link between them (``proche``, ``evolution`` or null). Only each origin's first
    ``flows.top_destinations`` are published, so a pair beyond them is not ranked (the published pair totals
    are cut there for privacy)."""
    pairs = (
        occupation_mobility.select("from_rome", F.explode("top_destinations").alias("d"))
        .select("from_rome", "d.to_rome", "d.moves", "d.share")
        .where((F.col("to_rome") != F.col("from_rome")) & F.col("moves").isNotNull())
        .orderBy(F.desc("moves"), "from_rome", "to_rome")
        .limit(top)
    )
    links = (
        rome_mobility.where(F.col("version") == "v3")
        .groupBy(F.col("code_rome").alias("from_rome"), F.col("code_rome_cible").alias("to_rome"))
        .agg(F.min("link_type").alias("rome_link"))  # 'evolution' < 'proche': either kind, one row
    )
    labels = occupation_labels(rome)
    out = pairs.join(F.broadcast(links), ["from_rome", "to_rome"], "left")
    out = _labelled(_labelled(out, labels, "from_rome", "from_label"), labels, "to_rome", "to_label")
    return out.orderBy(F.desc("moves"), "from_rome", "to_rome")


def occupation_balance(flows_occupation: DataFrame, rome: DataFrame) -> DataFrame:
    """Per occupation: published moves leaving it for another occupation, arriving from another, and the
    net; at most one row per ROME fiche."""
    changing = flows_occupation.where((F.col("from_rome") != F.col("to_rome")) & F.col("moves").isNotNull())
    leaving = changing.groupBy(F.col("from_rome").alias("rome")).agg(F.sum("moves").alias("leaving"))
    arriving = changing.groupBy(F.col("to_rome").alias("rome")).agg(F.sum("moves").alias("arriving"))
    both = leaving.join(arriving, "rome", "full").select(
        "rome",
        F.coalesce("leaving", F.lit(0)).cast("long").alias("leaving"),
        F.coalesce("arriving", F.lit(0)).cast("long").alias("arriving"),
    )
    both = both.withColumn("net", F.col("arriving") - F.col("leaving"))
    return _labelled(both, occupation_labels(rome), "rome", "label")


def time_to_move(flows_grand_domaine: DataFrame, rome_tree: DataFrame) -> DataFrame:
    """Per origin grand domaine: the moves-weighted mean of the published median days from registration to
    the move, and the moves it rests on."""
    shown = flows_grand_domaine.where(F.col("median_days_to_move").isNotNull() & F.col("moves").isNotNull())
    per = shown.groupBy(F.col("from_grand_domaine").alias("grand_domaine")).agg(
        (F.sum(F.col("median_days_to_move") * F.col("moves")) / F.sum("moves")).alias("median_days"),
        _sum("moves"),
    )
    return _labelled(per, grand_domaine_labels(rome_tree), "grand_domaine", "label")


def via_offers(flows_grand_domaine: DataFrame) -> DataFrame:
    """Per period: the share of published hires made through a published job offer (hires-weighted)."""
    shown = flows_grand_domaine.where(F.col("hires").isNotNull() & F.col("share_via_offers").isNotNull())
    return (
        shown.groupBy("period", "period_start")
        .agg(
            _sum("hires"),
            _ratio(F.sum(F.col("share_via_offers") * F.col("hires")), F.sum("hires")).alias(
                "share_via_offers"
            ),
        )
        .orderBy("period_start")
    )


def flows_start(flows_region: DataFrame) -> DataFrame:
    """One row: the first day of the first period with moves. The market starts earlier (the stock of
    seekers registered before the data's first month), but only partly: figures start here."""
    return flows_region.agg(F.min("period_start").alias("start"))


def _since(df: DataFrame, start: date | None) -> DataFrame:
    return df if start is None else df.where(F.col("month") >= F.lit(start))


def market_overview(market_national: DataFrame, start: date | None = None) -> DataFrame:
    """Per month from ``start``: published seekers in stock, registrations, exits to work, offers and
    positions, and the tension over the occupations whose stock is published."""
    stock = F.col("seekers_stock").isNotNull()
    return (
        _since(market_national, start)
        .groupBy("month")
        .agg(
            _sum("seekers_stock"),
            _sum("registrations"),
            _sum("exits_to_work"),
            _sum("offers_published"),
            _sum("positions"),
            F.sum(F.when(stock, F.col("offers_published"))).alias("offers_with_stock"),
        )
        .withColumn("tension", _ratio(F.col("offers_with_stock"), F.col("seekers_stock")))
        .drop("offers_with_stock")
        .orderBy("month")
    )


def tense_occupations(
    market_national: DataFrame, rome: DataFrame, *, months: int, top: int, min_stock: int
) -> DataFrame:
    """The ``top`` occupations with the highest tension over the last ``months`` published months (offers
    published per seeker in stock, on the months whose stock is published), among those with a mean stock of
    at least ``min_stock``; with their label and monthly series (``series``: month, tension)."""
    last = market_national.agg(F.max("month").alias("last"))
    recent = market_national.crossJoin(last).where(
        (F.col("month") > F.add_months("last", -months)) & F.col("seekers_stock").isNotNull()
    )
    monthly = _ratio(F.col("offers_published"), F.col("seekers_stock"))
    ranked = (
        recent.groupBy("rome")
        .agg(
            _ratio(F.sum("offers_published"), F.sum("seekers_stock")).alias("tension"),
            F.avg("seekers_stock").alias("mean_stock"),
            F.sort_array(F.collect_list(F.struct("month", monthly.alias("tension")))).alias("series"),
        )
        .where(F.col("mean_stock") >= min_stock)
        .orderBy(F.desc("tension"), "rome")
        .limit(top)
    )
    return _labelled(ranked, occupation_labels(rome), "rome", "label").orderBy(F.desc("tension"), "rome")


def tension_by_region(market: DataFrame, region: DataFrame, start: date | None = None) -> DataFrame:
    """Per (region, month from ``start``): offers published per seeker in stock, over the occupations whose
    stock is published; at most regions x months rows."""
    shown = _since(market, start).where(F.col("seekers_stock").isNotNull() & F.col("code_region").isNotNull())
    per = shown.groupBy(F.col("code_region").alias("region"), "month").agg(
        _ratio(F.sum("offers_published"), F.sum("seekers_stock")).alias("tension")
    )
    return per.join(
        F.broadcast(region.select(F.col("code_region").alias("region"), "name")), "region", "left"
    )


def last_batches(ingestion_log: DataFrame, n: int) -> DataFrame:
    """``batch_id``, ``started``: the last ``n`` batches ingested."""
    return (
        ingestion_log.groupBy("batch_id")
        .agg(F.min("ingested_at").alias("started"))
        .orderBy(F.desc("started"))
        .limit(n)
    )


def ingestion_summary(ingestion_log: DataFrame, batches: DataFrame) -> DataFrame:
    """Per batch of ``batches`` and input table: records read, valid and quarantined, and the files read
    (a batch re-ingesting the same files reads them again: batches are not summed)."""
    per = (
        ingestion_log.join(batches, "batch_id")
        .groupBy("batch_id", "started", "table")
        .agg(
            F.min("ingested_at").alias("ingested_at"),
            _sum("read"),
            _sum("valid"),
            _sum("quarantined"),
            F.count_distinct("source_file").alias("files"),
        )
    )
    return per.orderBy(F.desc("started"), "table").drop("started")


def quarantine_reasons(quarantine: DataFrame, batches: DataFrame | None = None) -> DataFrame:
    """Per (table, reason): records quarantined (in ``batches`` when given) and the files they came from
    (never a message or the raw record: they may hold personal data)."""
    if batches is not None:
        quarantine = quarantine.join(batches.select("batch_id"), "batch_id", "left_semi")
    return (
        quarantine.groupBy("table", "reason")
        .agg(F.count(F.lit(1)).alias("records"), F.count_distinct("source_file").alias("files"))
        .orderBy(F.desc("records"), "table", "reason")
    )

"""``mobility recommend``: the champion's destinations for every job seeker active on a date, with the
reasons a counsellor can tell them.

Active on ``day``
    In the stock that day: a row of ``gold.segments`` (``mobility.gold.transitions.occupation_segments``,
    built by ``flows``: a spell, cut where the occupation sought changes; a later spell ends an earlier one)
    with ``seg_start <= day`` and no ``stock_until`` on or before it, in a category of
    ``flows.stock_categories`` (1-3: seeking now).
Origin state (``mobility.recommend.examples``)
    The occupation sought that day (at ``flows.level``), the spell's département and region, months since
    its registration (``train.search_bands``), age reached in the year (``train.age_bands``), education (the
    spell's), and the month of ``day``. Equal states are scored once (``state_id``) and joined back to their
    seekers, so the cost grows with the number of distinct states, not of seekers.
Reasons of a line
    ``historical_moves``: hires of ``gold.transitions`` from the origin (occupation, region) to the
    destination, before ``day``; ``dest_offers`` and ``dest_tension``: ``gold.market`` of the destination in
    the month before ``day`` (its last month when ``day`` is past it, as the ranker reads it);
    ``rome_link`` (``mobility.gold.transitions``: same, proche, evolution, same_domaine, same_grand_domaine,
    other); ``distance_km`` from the origin département's centroid to the destination region's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mobility.calendar import add_months
from mobility.geo import haversine_km
from mobility.gold.transitions import with_rome_link
from mobility.recommend.examples import DAYS_PER_MONTH, STATE, band, with_state_id
from mobility.recommend.pyfunc import score_states

RECOMMENDATION_COLUMNS = (
    "run_date",
    "seeker_id",
    "rank",
    "to_rome",
    "to_region",
    "score",
    *STATE,
    "state_id",
    "historical_moves",
    "dest_offers",
    "dest_tension",
    "rome_link",
    "distance_km",
    "model_name",
    "model_version",
)


def active_states(
    segments: DataFrame,
    seekers: DataFrame,
    day: date,
    *,
    stock_categories: Sequence[int],
    age_bands: Sequence[int],
    search_bands: Sequence[int],
) -> DataFrame:
    """One row per seeker active on ``day``: ``seeker_id``, the origin state and its ``state_id``.
    ``segments``: the spells' occupation segments at the level of the transitions (``gold.segments``)."""
    on = F.lit(day)
    segments = segments.where(
        (F.col("seg_start") <= on)
        & (F.col("stock_until").isNull() | (F.col("stock_until") > on))
        & F.col("category").isin(list(stock_categories))
    )
    months = F.floor(F.datediff(on, F.col("registration_date")) / F.lit(DAYS_PER_MONTH))
    # education: the spell's (a segment's), not the latest spell's
    states = segments.join(seekers.select("seeker_id", "birth_year"), "seeker_id", "left").select(
        "seeker_id",
        F.col("occupation").alias("from_rome"),
        F.col("code_departement").alias("from_dept"),
        F.col("code_region").alias("from_region"),
        band(months, search_bands).alias("search_band"),
        band(F.lit(day.year) - F.col("birth_year"), age_bands).alias("age_band"),
        "education",
        F.lit(day.strftime("%Y-%m")).alias("month"),
    )
    return with_state_id(states)


def score_seekers(active: DataFrame, model_uri: str, *, top_k: int, tracking_uri: str) -> DataFrame:
    """Each active seeker's ``top_k`` destinations: the distinct states scored once, joined back."""
    states = active.select("state_id", *STATE).dropDuplicates(["state_id"])
    scored = score_states(states, model_uri, top_k=top_k, tracking_uri=tracking_uri).drop("level")
    return active.join(scored, "state_id")


def with_reasons(
    recommendations: DataFrame,
    day: date,
    *,
    transitions: DataFrame,
    market: DataFrame,
    rome_mobility: DataFrame,
    departement: DataFrame,
    region: DataFrame,
    v4_proche_max_rank: int,
) -> DataFrame:
    """The lines with their reasons (see the module docstring)."""
    pair = ("from_rome", "from_region", "to_rome", "to_region")
    moves = (
        transitions.where((F.col("kind") == "hire") & (F.col("move_date") < F.lit(day)))
        .groupBy(*pair)
        .agg(F.count(F.lit(1)).alias("historical_moves"))
    )
    last = market.agg(F.max("month")).first()[0]  # one value
    before = min(add_months(day, -1), last) if last is not None else add_months(day, -1)
    dest_market = market.where(F.col("month") == F.lit(before)).select(
        F.col("rome").alias("to_rome"),
        F.col("code_region").alias("to_region"),
        F.col("offers_published").alias("dest_offers"),
        F.col("tension").alias("dest_tension"),
    )
    origin = departement.select(
        F.col("code_departement").alias("from_dept"), F.col("lat").alias("_lat1"), F.col("lng").alias("_lng1")
    )
    dest = region.select(
        F.col("code_region").alias("to_region"), F.col("lat").alias("_lat2"), F.col("lng").alias("_lng2")
    )
    codes = {  # the codes are at the compared level: read them as v3 fiches for the links
        "from_rome_code": F.col("from_rome"),
        "to_rome_code": F.col("to_rome"),
        "from_rome_version": F.lit("v3"),
        "to_rome_version": F.lit("v3"),
        "_from_v3": F.col("from_rome"),
        "_to_v3": F.col("to_rome"),
    }
    linked = with_rome_link(
        recommendations.withColumns(codes), rome_mobility, v4_proche_max_rank=v4_proche_max_rank
    ).drop(*codes)
    return (
        linked.join(moves, list(pair), "left")
        .join(F.broadcast(dest_market), ["to_rome", "to_region"], "left")
        .join(F.broadcast(origin), "from_dept", "left")
        .join(F.broadcast(dest), "to_region", "left")
        .withColumns(
            {
                "historical_moves": F.coalesce("historical_moves", F.lit(0)),
                "dest_offers": F.coalesce("dest_offers", F.lit(0)),
                "distance_km": haversine_km(F.col("_lat1"), F.col("_lng1"), F.col("_lat2"), F.col("_lng2")),
            }
        )
        .drop("_lat1", "_lng1", "_lat2", "_lng2")
    )


def recommendations(
    active: DataFrame,
    model_uri: str,
    day: date,
    *,
    top_k: int,
    tracking_uri: str,
    model_name: str,
    model_version: int,
    references: dict[str, DataFrame],
    v4_proche_max_rank: int,
) -> DataFrame:
    """The rows of ``gold.recommendations`` for ``day`` (``RECOMMENDATION_COLUMNS``). ``references``:
    ``transitions``, ``market`` (gold), ``rome_mobility``, ``departement``, ``region`` (ref)."""
    scored = score_seekers(active, model_uri, top_k=top_k, tracking_uri=tracking_uri)
    lines = with_reasons(scored, day, **references, v4_proche_max_rank=v4_proche_max_rank)
    return lines.withColumns(
        {
            "run_date": F.lit(day),
            "model_name": F.lit(model_name),
            "model_version": F.lit(model_version),
        }
    ).select(*RECOMMENDATION_COLUMNS)

"""What the champion recommends from one origin (occupation, region), and the paths out of it: the tables
an analyst looks at to judge the recommendations, with their reasons.

``gold.recommendations`` and ``gold.paths`` are internal tables (per seeker; reasons read from the gold
tables). These summaries show no seeker, and take every figure about people from the published views:
the hires of the pair are a sum of published ``flows`` cells, offers and tension those of the published
market cell (withheld with its stock), and the seekers recommended a destination are shown only from
``min_cell`` on. Not guaranteed: a reader knowing how many seekers of the origin were scored (``origins``)
and that each got ``top_k`` destinations can narrow one withheld destination's count down by difference.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mobility.figures import occupation_labels
from mobility.paths import destination_tension


def _withheld(col: str, min_cell: int) -> F.Column:
    return F.when(F.col(col) >= min_cell, F.col(col)).alias(col)


def origins(recommendations: DataFrame, paths: DataFrame, day: date, *, top: int, min_cell: int) -> DataFrame:
    """The ``top`` origins (occupation, region) with the most seekers recommended on ``day`` (at least
    ``min_cell``), and the number of paths out of each; origins with paths first."""
    seekers = (
        recommendations.where((F.col("run_date") == F.lit(day)) & (F.col("rank") == 1))
        .groupBy("from_rome", "from_region")
        .agg(F.count(F.lit(1)).alias("seekers"))
        .where(F.col("seekers") >= min_cell)
    )
    routes = paths.groupBy("from_rome", "from_region").agg(F.count(F.lit(1)).alias("paths"))
    return (
        seekers.join(routes, ["from_rome", "from_region"], "left")
        .select("from_rome", "from_region", "seekers", F.coalesce("paths", F.lit(0)).alias("paths"))
        .orderBy((F.col("paths") > 0).desc(), F.desc("seekers"), "from_rome", "from_region")
        .limit(top)
    )


def for_origin(
    recommendations: DataFrame,
    published_flows: DataFrame,
    published_market: DataFrame,
    rome: DataFrame,
    from_rome: str,
    from_region: str,
    day: date,
    *,
    min_cell: int,
) -> DataFrame:
    """Destinations recommended on ``day`` to the seekers of one origin: how many seekers got each (null
    under ``min_cell``), its best and mean rank and mean score, and the reasons from the published views:
    ``published_hires`` origin -> destination in the periods starting before ``day`` (a sum of published
    cells, hence a lower bound), offers and tension of the destination's market cell the month before
    ``day`` (tension null when the cell's stock is withheld), the ROME link and the distance."""
    recs = recommendations.where(
        (F.col("run_date") == F.lit(day))
        & (F.col("from_rome") == from_rome)
        & (F.col("from_region") == from_region)
    )
    per = recs.groupBy("to_rome", "to_region").agg(
        F.count(F.lit(1)).alias("seekers"),
        F.min("rank").alias("best_rank"),
        F.avg("rank").alias("mean_rank"),
        F.avg("score").alias("mean_score"),
        F.first("rome_link").alias("rome_link"),
        F.avg("distance_km").alias("distance_km"),
        F.first("model_version").alias("model_version"),
    )
    hires = (
        published_flows.where(
            (F.col("from_rome") == from_rome)
            & (F.col("from_region") == from_region)
            & (F.col("period_start") < F.lit(day))
        )
        .groupBy("to_rome", "to_region")
        .agg(F.sum("hires").cast("long").alias("published_hires"))
    )
    last = published_market.agg(F.max("month").alias("last"))
    month = F.least(F.add_months(F.trunc(F.lit(day), "month"), -1), F.col("last"))
    market = (
        published_market.crossJoin(last)
        .where(F.col("month") == month)
        .select(
            F.col("rome").alias("to_rome"),
            F.col("code_region").alias("to_region"),
            F.col("offers_published").alias("dest_offers"),
            F.col("tension").alias("dest_tension"),
        )
    )
    labels = (
        occupation_labels(rome).withColumnRenamed("rome", "to_rome").withColumnRenamed("label", "to_label")
    )
    return (
        per.join(hires, ["to_rome", "to_region"], "left")
        .join(market, ["to_rome", "to_region"], "left")
        .join(F.broadcast(labels), "to_rome", "left")
        .select(
            "to_rome",
            "to_label",
            "to_region",
            _withheld("seekers", min_cell),
            "best_rank",
            "mean_rank",
            "mean_score",
            F.coalesce("published_hires", F.lit(0)).alias("published_hires"),
            "dest_offers",
            "dest_tension",
            "rome_link",
            "distance_km",
            "model_version",
        )
        .orderBy("mean_rank", "to_rome", "to_region")
    )


def paths_from(
    paths: DataFrame, published_market: DataFrame, rome: DataFrame, from_rome: str, from_region: str
) -> DataFrame:
    """The paths of ``gold.paths`` out of one origin, best first, each route spelt "code label (region,
    p=step probability) -> ...", with the destination's tension over the last 12 months of the published
    market (its months whose stock is published; the gold tension of the path would give the withheld
    months back)."""
    origin = paths.where((F.col("from_rome") == from_rome) & (F.col("from_region") == from_region)).drop(
        "dest_tension"
    )
    shown = published_market.where(F.col("seekers_stock").isNotNull())
    tension = destination_tension(shown).select(
        F.col("rome").alias("to_rome"),
        F.col("region").alias("to_region"),
        F.col("tension").alias("dest_tension"),
    )
    steps = origin.select("path_rank", F.explode("steps").alias("s")).select(
        "path_rank",
        F.col("s.step").alias("step"),
        F.col("s.to_rome").alias("step_rome"),
        F.col("s.to_region").alias("step_region"),
        F.col("s.probability").alias("step_probability"),
    )
    labels = occupation_labels(rome).withColumnRenamed("rome", "step_rome")
    move = F.format_string(
        "%s %s (%s, p=%.2f)", "step_rome", F.coalesce("label", F.lit("?")), "step_region", "step_probability"
    )
    routes = (
        steps.join(F.broadcast(labels), "step_rome", "left")
        .groupBy("path_rank")
        .agg(F.sort_array(F.collect_list(F.struct("step", move.alias("move")))).alias("moves"))
    )
    return (
        origin.join(routes, "path_rank")
        .join(tension, ["to_rome", "to_region"], "left")
        .select(
            "path_rank",
            "n_steps",
            "probability",
            "to_rome",
            "to_region",
            "dest_tension",
            F.concat_ws(" → ", F.transform("moves", lambda m: m["move"])).alias("route"),
        )
        .orderBy("path_rank")
    )

"""What the champion recommends from one origin (occupation, region), and the paths out of it: the tables
an analyst looks at to judge the recommendations, with their reasons.

``gold.recommendations`` and ``gold.paths`` are internal tables (per seeker, and per origin with small
step counts): these summaries count seekers per destination and withhold counts under ``min_cell`` (null),
so that a notebook output showing them holds no small group of people.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mobility.figures import occupation_labels


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
    rome: DataFrame,
    from_rome: str,
    from_region: str,
    day: date,
    *,
    min_cell: int,
) -> DataFrame:
    """Destinations recommended on ``day`` to the seekers of one origin: how many seekers got each, its best
    and mean rank, mean score, and the reasons (past hires origin -> destination, offers and tension at the
    destination the month before, ROME link, distance). Counts under ``min_cell`` are null."""
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
        F.max("historical_moves").alias("historical_moves"),
        F.max("dest_offers").alias("dest_offers"),
        F.max("dest_tension").alias("dest_tension"),
        F.first("rome_link").alias("rome_link"),
        F.avg("distance_km").alias("distance_km"),
        F.first("model_version").alias("model_version"),
    )
    labels = (
        occupation_labels(rome).withColumnRenamed("rome", "to_rome").withColumnRenamed("label", "to_label")
    )
    return (
        per.join(F.broadcast(labels), "to_rome", "left")
        .select(
            "to_rome",
            "to_label",
            "to_region",
            _withheld("seekers", min_cell),
            "best_rank",
            "mean_rank",
            "mean_score",
            _withheld("historical_moves", min_cell),
            "dest_offers",
            "dest_tension",
            "rome_link",
            "distance_km",
            "model_version",
        )
        .orderBy("mean_rank", "to_rome", "to_region")
    )


def paths_from(paths: DataFrame, rome: DataFrame, from_rome: str, from_region: str) -> DataFrame:
    """The paths of ``gold.paths`` out of one origin, best first, each route spelt "code label (region,
    p=step probability) -> ..."."""
    origin = paths.where((F.col("from_rome") == from_rome) & (F.col("from_region") == from_region))
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

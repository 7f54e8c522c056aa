"""Scoring a recommender on held-out examples: each example's true destination against the ranked list the
model gave it.

Per example, ``truth_rank`` is the rank of the true (``to_rome``, ``to_region``) in the list (null when
absent). ``hit_at_k``: share of examples with ``truth_rank <= k``. ``mrr``: mean of ``1 / truth_rank`` (0 when
absent). ``ndcg_at_10``: with one relevant destination, mean of ``1 / log2(truth_rank + 1)`` when the rank is
at most 10, else 0. ``coverage``: the share of the true destinations of the window that some example got
in its top 10 (a model that recommends the same few destinations to all covers little). ``calibration``:
expected calibration error of the top-1 score, over 10 equal-width bins of the score, ``sum |mean score -
hit@1| * share of examples``; 0 for a model whose top-1 scores are the probabilities they claim.
The same metrics per segment (age band, sex, education, origin region) make disparities visible.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mobility.recommend.examples import DESTINATION, SEGMENTS

KS = (1, 5, 10)
METRICS = ("examples", *(f"hit_at_{k}" for k in KS), "mrr", "ndcg_at_10", "coverage", "calibration")


def truth_ranks(examples_df: DataFrame, ranked: DataFrame) -> DataFrame:
    """Each example with ``truth_rank`` and ``top_score`` (score of its first recommendation)."""
    truth = ranked.join(examples_df.select("example_id", *DESTINATION), ["example_id", *DESTINATION])
    top = ranked.where(F.col("rank") == 1).select("example_id", F.col("score").alias("top_score"))
    return examples_df.join(
        truth.select("example_id", F.col("rank").alias("truth_rank")), "example_id", "left"
    ).join(top, "example_id", "left")


def _metric_columns() -> list:
    rank = F.col("truth_rank")
    return [
        F.count(F.lit(1)).alias("examples"),
        *(F.avg(F.when(rank <= k, 1.0).otherwise(0.0)).alias(f"hit_at_{k}") for k in KS),
        F.avg(F.coalesce(1.0 / rank, F.lit(0.0))).alias("mrr"),
        F.avg(F.when(rank <= 10, 1.0 / F.log2(rank + 1)).otherwise(0.0)).alias("ndcg_at_10"),
    ]


def metrics(examples_df: DataFrame, ranked: DataFrame, *, by: Sequence[str] = ()) -> DataFrame:
    """One row of ``METRICS`` (per ``by`` group when given) for a model's ``ranked`` lists of
    ``examples_df`` (both keyed by ``example_id``)."""
    scored = truth_ranks(examples_df, ranked)
    base = scored.groupBy(*by).agg(*_metric_columns())
    top10 = ranked.where(F.col("rank") <= 10).join(examples_df.select("example_id", *by), "example_id")
    offered = top10.select(*by, *DESTINATION).distinct().withColumn("_offered", F.lit(1))
    true_dest = examples_df.select(*by, *DESTINATION).distinct()
    coverage = (
        true_dest.join(offered, [*by, *DESTINATION], "left")
        .groupBy(*by)
        .agg(F.avg(F.coalesce(F.col("_offered"), F.lit(0)).cast("double")).alias("coverage"))
    )
    calibration = (
        _bins(scored, by)
        .groupBy(*by)
        .agg(
            (
                F.sum(F.abs(F.col("mean_score") - F.col("hit_rate")) * F.col("examples")) / F.sum("examples")
            ).alias("calibration")
        )
    )
    joined = (
        base.join(coverage, list(by), "left").join(calibration, list(by), "left")
        if by
        else (base.crossJoin(coverage).crossJoin(calibration))
    )
    return joined.select(*by, *METRICS)


def _bins(scored: DataFrame, by: Sequence[str] = ()) -> DataFrame:
    top = F.coalesce("top_score", F.lit(0.0))
    return (
        scored.withColumn("bin", F.least(F.floor(top * 10), F.lit(9)).cast("int"))
        .groupBy(*by, "bin")
        .agg(
            F.count(F.lit(1)).alias("examples"),
            F.avg(top).alias("mean_score"),
            F.avg(F.when(F.col("truth_rank") == 1, 1.0).otherwise(0.0)).alias("hit_rate"),
        )
    )


def reliability(examples_df: DataFrame, ranked: DataFrame) -> DataFrame:
    """The reliability diagram's points: per tenth of the top-1 score, ``examples``, ``mean_score`` and
    ``hit_rate`` (the share whose first recommendation was right)."""
    return _bins(truth_ranks(examples_df, ranked)).orderBy("bin")


def segment_metrics(
    examples_df: DataFrame, ranked: DataFrame, *, segments: Sequence[str] = SEGMENTS
) -> DataFrame:
    """``metrics`` per value of each segment: ``segment``, ``value``, then the metrics (long format)."""
    parts = [
        metrics(examples_df, ranked, by=(segment,)).select(
            F.lit(segment).alias("segment"), F.col(segment).cast("string").alias("value"), *METRICS
        )
        for segment in segments
    ]
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out

"""Baseline recommenders on hand-built examples: the markov backoff and smoothing computed by hand, the
level a query falls back to, popular and stay; and the ranking metrics of a hand-built ranking."""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from mobility.recommend.evaluate import metrics, segment_metrics
from mobility.recommend.examples import band, split, windows
from mobility.recommend.models import markov_tables, popular_tables, rank, stay

MOVES = "from_rome string, from_region string, to_rome string, to_region string"
TRAIN = (
    [("A1101", "11", "A1101", "11")] * 3
    + [("A1101", "11", "A1203", "84")]
    + [("A1101", "84", "B1101", "84")] * 2
)
QUERIES = "example_id string, from_rome string, from_region string"


@pytest.fixture(scope="module")
def tables(spark: SparkSession):
    return markov_tables(spark.createDataFrame(TRAIN, MOVES), alpha=1.0, top_n=10)


def test_markov_smooths_each_origin_towards_its_parent_level(tables):
    origin = {
        (r["from_rome"], r["from_region"], r["to_rome"], r["to_region"]): r["score"]
        for r in tables["origin"].collect()
    }
    assert origin[("A1101", "11", "A1101", "11")] == pytest.approx((3 + 0.5) / 5)
    assert origin[("A1101", "11", "A1203", "84")] == pytest.approx((1 + 1 / 6) / 5)
    # never reached from (A1101, 11): the parent's probability times alpha / (N + alpha)
    assert origin[("A1101", "11", "B1101", "84")] == pytest.approx((1 / 3) / 5)
    assert origin[("A1101", "84", "B1101", "84")] == pytest.approx((2 + 1 / 3) / 3)
    for key in (("A1101", "11"), ("A1101", "84")):
        assert sum(p for k, p in origin.items() if k[:2] == key) == pytest.approx(1.0)
    everything = {(r["to_rome"], r["to_region"]): (r["score"], r["rank"]) for r in tables["all"].collect()}
    assert everything == {
        ("A1101", "11"): (pytest.approx(0.5), 1),
        ("B1101", "84"): (pytest.approx(1 / 3), 2),
        ("A1203", "84"): (pytest.approx(1 / 6), 3),
    }


def test_a_query_uses_the_most_specific_level_its_origin_was_seen_at(spark: SparkSession, tables):
    queries = spark.createDataFrame(
        [("seen", "A1101", "11"), ("other-region", "A1101", "93"), ("same-domaine", "A1102", "11"),
         ("unknown", "K2204", "11")],
        QUERIES,
    )  # fmt: skip
    ranked = rank(queries, tables, top_k=2)
    got = ranked.select("example_id", "level", "rank", "to_rome", "to_region")
    assertDataFrameEqual(
        got,
        [
            ("seen", "origin", 1, "A1101", "11"),
            ("seen", "origin", 2, "A1203", "84"),
            ("other-region", "occupation", 1, "A1101", "11"),
            ("other-region", "occupation", 2, "B1101", "84"),
            ("same-domaine", "domaine", 1, "A1101", "11"),
            ("same-domaine", "domaine", 2, "B1101", "84"),
            ("unknown", "all", 1, "A1101", "11"),
            ("unknown", "all", 2, "B1101", "84"),
        ],  # fmt: skip
    )


def test_popular_counts_the_occupation_and_stay_keeps_the_origin(spark: SparkSession):
    train = spark.createDataFrame(TRAIN, MOVES)
    queries = spark.createDataFrame([("q", "A1101", "84"), ("new", "Z9999", "11")], QUERIES)
    ranked = rank(queries, popular_tables(train, top_n=5), top_k=1)
    assertDataFrameEqual(
        ranked.select("example_id", "level", "to_rome", "to_region", "score"),
        [("q", "occupation", "A1101", "11", 0.5), ("new", "all", "A1101", "11", 0.5)],
    )
    assertDataFrameEqual(
        stay(queries).select("example_id", "to_rome", "to_region", "rank"),
        [("q", "A1101", "84", 1), ("new", "Z9999", "11", 1)],
    )


def test_metrics_of_a_hand_built_ranking(spark: SparkSession):
    examples = spark.createDataFrame(
        [("e1", "A", "11", "F"), ("e2", "B", "11", "M"), ("e3", "C", "84", "F")],
        "example_id string, to_rome string, to_region string, sex string",
    )
    ranked = spark.createDataFrame(
        [("e1", "A", "11", 0.9, 1), ("e1", "B", "11", 0.1, 2),
         ("e2", "A", "11", 0.5, 1), ("e2", "X", "11", 0.3, 2), ("e2", "B", "11", 0.2, 3),
         ("e3", "A", "11", 0.4, 1)],
        "example_id string, to_rome string, to_region string, score double, rank int",
    )  # fmt: skip
    row = metrics(examples, ranked).first().asDict()
    assert row["examples"] == 3
    assert row["hit@1"] == pytest.approx(1 / 3) and row["hit@5"] == pytest.approx(2 / 3)
    assert row["mrr"] == pytest.approx((1 + 1 / 3) / 3)
    assert row["ndcg@10"] == pytest.approx((1 + 0.5) / 3)
    assert row["coverage"] == pytest.approx(2 / 3)  # C/84 is never offered
    # top scores 0.9 (hit), 0.5 (miss), 0.4 (miss): bins 9, 5, 4 -> (0.1 + 0.5 + 0.4) / 3
    assert row["calibration"] == pytest.approx((0.1 + 0.5 + 0.4) / 3)
    by_sex = {r["value"]: r["hit@1"] for r in segment_metrics(examples, ranked, segments=("sex",)).collect()}
    assert by_sex == {"F": pytest.approx(0.5), "M": pytest.approx(0.0)}


def test_bands_and_the_time_split(spark: SparkSession):
    df = spark.createDataFrame([(v,) for v in (None, 2, 3, 5, 6, 11, 12, 40)], "v int")
    labels = [r[0] for r in df.select(band(F.col("v"), [3, 6, 12])).collect()]
    assert labels == [None, "<3", "3-5", "3-5", "6-11", "6-11", "12+", "12+"]
    moves = spark.createDataFrame(
        [(date(2022, 1, 5),), (date(2022, 12, 31),), (date(2023, 1, 1),), (date(2023, 6, 30),)], "date date"
    )
    w = windows(moves, valid_months=3, test_months=3)
    assert (w.cutoff, w.test_start, w.test_end) == (date(2023, 1, 1), date(2023, 4, 1), date(2023, 7, 1))
    parts = {name: sorted(r[0] for r in df.collect()) for name, df in split(moves, w).items()}
    assert parts == {
        "train": [date(2022, 1, 5), date(2022, 12, 31)],
        "valid": [date(2023, 1, 1)],
        "test": [date(2023, 6, 30)],
    }

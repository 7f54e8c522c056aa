"""Baseline recommenders on hand-built examples: the markov backoff and smoothing computed by hand, the
level a query falls back to, popular and stay; and the ranking metrics of a hand-built ranking."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from mobility.recommend.evaluate import metrics, segment_metrics
from mobility.recommend.examples import band, split, windows
from mobility.recommend.models import markov_tables, popular_tables
from mobility.recommend.pyfunc import recommend_frame

MOVES = "from_rome string, from_region string, to_rome string, to_region string"
TRAIN = (
    [("A1101", "11", "A1101", "11")] * 3
    + [("A1101", "11", "A1203", "84")]
    + [("A1101", "84", "B1101", "84")] * 2
)


@pytest.fixture(scope="module")
def tables(spark: SparkSession):
    return markov_tables(spark.createDataFrame(TRAIN, MOVES), alpha=1.0, top_n=10)


def _scores(table, target: str) -> dict:
    return {
        (*(r[k] for k in table.columns if k.startswith("from_")), r[target]): r["score"]
        for r in table.collect()
    }


def test_markov_smooths_each_origin_towards_its_parent_level(tables):
    occupation = _scores(tables["to_rome.origin"], "to_rome")
    assert occupation[("A1101", "11", "A1101")] == pytest.approx((3 + 0.5) / 5)
    assert occupation[("A1101", "11", "A1203")] == pytest.approx((1 + 1 / 6) / 5)
    # never reached from (A1101, 11): the parent's probability times alpha / (N + alpha)
    assert occupation[("A1101", "11", "B1101")] == pytest.approx((1 / 3) / 5)
    assert occupation[("A1101", "84", "B1101")] == pytest.approx((2 + 1 / 3) / 3)
    region = _scores(tables["to_region.region"], "to_region")
    assert region == {("11", "11"): pytest.approx(3.5 / 5), ("11", "84"): pytest.approx(1.5 / 5),
                      ("84", "84"): pytest.approx(2.5 / 3), ("84", "11"): pytest.approx(0.5 / 3)}  # fmt: skip
    origin_region = _scores(tables["to_region.origin"], "to_region")
    assert origin_region[("A1101", "11", "11")] == pytest.approx((3 + 0.7) / 5)
    for key in (("A1101", "11"), ("A1101", "84")):
        assert sum(p for k, p in occupation.items() if k[:2] == key) == pytest.approx(1.0)
    everything = {r["to_rome"]: (r["score"], r["rank"]) for r in tables["to_rome.all"].collect()}
    assert everything == {
        "A1101": (pytest.approx(0.5), 1),
        "B1101": (pytest.approx(1 / 3), 2),
        "A1203": (pytest.approx(1 / 6), 3),
    }


def _as_pandas(tables) -> dict[str, pd.DataFrame]:
    return {level: df.toPandas() for level, df in tables.items()}


def test_a_query_uses_the_most_specific_level_its_origin_was_seen_at(tables):
    queries = pd.DataFrame(
        [("A1101", "11"), ("A1101", "93"), ("A1102", "11"), ("K2204", "75")],
        columns=["from_rome", "from_region"],
    )  # seen; seen in another region; same domaine; unknown
    got = recommend_frame("markov", _as_pandas(tables), queries, top_k=2)
    rows = list(got[["query", "level", "rank", "to_rome", "to_region"]].itertuples(index=False, name=None))
    assert rows == [
        (0, "origin/origin", 1, "A1101", "11"), (0, "origin/origin", 2, "A1101", "84"),
        (1, "occupation/all", 1, "A1101", "11"), (1, "occupation/all", 2, "A1101", "84"),
        (2, "domaine/region", 1, "A1101", "11"), (2, "domaine/region", 2, "B1101", "11"),
        (3, "all/all", 1, "A1101", "11"), (3, "all/all", 2, "A1101", "84"),
    ]  # fmt: skip
    first = got[(got["query"] == 0) & (got["rank"] == 1)]["score"].iloc[0]
    assert first == pytest.approx(0.7 * 0.74)  # p(A1101 | origin) * p(11 | origin)


def test_popular_counts_the_occupation_and_stay_keeps_the_origin(spark: SparkSession):
    train = spark.createDataFrame(TRAIN, MOVES)
    queries = pd.DataFrame([("A1101", "84"), ("Z9999", "11")], columns=["from_rome", "from_region"])
    got = recommend_frame("popular", _as_pandas(popular_tables(train, top_n=5)), queries, top_k=1)
    rows = list(got[["query", "level", "to_rome", "to_region", "score"]].itertuples(index=False, name=None))
    assert rows == [(0, "occupation", "A1101", "11", 0.5), (1, "all", "A1101", "11", 0.5)]
    kept = recommend_frame("stay", {}, queries, top_k=10)
    assert list(kept[["query", "to_rome", "to_region", "rank"]].itertuples(index=False, name=None)) == [
        (0, "A1101", "84", 1),
        (1, "Z9999", "11", 1),
    ]


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
    assert row["hit_at_1"] == pytest.approx(1 / 3) and row["hit_at_5"] == pytest.approx(2 / 3)
    assert row["mrr"] == pytest.approx((1 + 1 / 3) / 3)
    assert row["ndcg_at_10"] == pytest.approx((1 + 0.5) / 3)
    assert row["coverage"] == pytest.approx(2 / 3)  # C/84 is never offered
    # top scores 0.9 (hit), 0.5 (miss), 0.4 (miss): bins 9, 5, 4 -> (0.1 + 0.5 + 0.4) / 3
    assert row["calibration"] == pytest.approx((0.1 + 0.5 + 0.4) / 3)
    by_sex = {
        r["value"]: r["hit_at_1"] for r in segment_metrics(examples, ranked, segments=("sex",)).collect()
    }
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

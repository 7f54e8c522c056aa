"""The ranker on hand-built data: its candidates and features computed by hand, the market read as of the
month before the date scored, and a booster that learns what markov cannot see (the origin département)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from mobility.lake import Lake
from mobility.recommend import ranker
from mobility.recommend.pyfunc import recommend_frame

EXAMPLE = (
    "from_rome string, from_dept string, from_region string, search_band string, age_band string, "
    "education string, month string, to_rome string, to_region string"
)
MARKET = (
    "rome string, code_region string, month date, offers_published long, seekers_stock long, tension double"
)


def _examples(spark: SparkSession, month: str, per_side: int):
    """Secretaries (M1607) of Paris (75) find work in Île-de-France (11), those of Seine-et-Marne (77) in
    Auvergne-Rhône-Alpes (84); a few of each change to D1401 (a v3 "proche" link of M1607)."""
    rows = []
    for dept, region in (("75", "11"), ("77", "84")):
        rows += [("M1607", dept, "11", "<3", "26-49", "NV4", month, "M1607", region)] * per_side
        rows += [("M1607", dept, "11", "3-5", "<26", "NV5", month, "D1401", region)] * (per_side // 4)
    return spark.createDataFrame(rows, EXAMPLE)


@pytest.fixture(scope="module")
def tables(spark: SparkSession, ref_lake: Lake) -> dict[str, pd.DataFrame]:
    market = spark.createDataFrame(
        [
            ("M1607", "11", pd.Timestamp("2022-01-01").date(), 40, 100, 0.4),
            ("M1607", "11", pd.Timestamp("2022-03-01").date(), 10, 100, 0.1),
            ("M1607", "84", pd.Timestamp("2022-01-01").date(), 5, 50, 0.1),
        ],
        MARKET,
    )
    frames = ranker.ranker_tables(
        _examples(spark, "2022-01", 40),
        rome_mobility=ref_lake.read("ref.rome_mobility"),
        departement=ref_lake.read("ref.departement"),
        region=ref_lake.read("ref.region"),
        market=market,
        alpha=1.0,
        top_n=10,
    )
    return {name: df.toPandas() for name, df in frames.items()}


def _query(dept: str, month: str = "2022-05") -> pd.DataFrame:
    """A secretary of ``dept`` with the profile of those who stay in their occupation (``_examples``)."""
    return pd.DataFrame(
        [{"query": 0, "from_rome": "M1607", "from_dept": dept, "from_region": "11", "search_band": "<3",
          "age_band": "26-49", "education": "NV4", "month": month}]
    )  # fmt: skip


def test_candidates_cross_markov_occupations_and_links_with_the_best_regions(tables):
    cands = ranker.candidates(_query("77"), tables, occupations=1, regions=1)
    linked = set(tables["links"].query("from_rome == 'M1607'")["to_rome"])
    assert "D1401" in linked
    # the best occupation (M1607, also the origin's own) and every official link, crossed with the best
    # region of markov (a tie 11/84 broken by code: 11), of the département (84) and the origin's own (11)
    assert set(cands["to_rome"]) == {"M1607", *linked}
    assert set(cands["to_region"]) == {"11", "84"}
    assert len(cands) == 2 * len(set(cands["to_rome"]))
    row = cands.set_index(["to_rome", "to_region"]).loc[("D1401", "84")]
    assert row["link"] == 1.0  # proche
    assert row["p_region_departement"] > 0.9 and row["p_region"] == pytest.approx(0.5)
    assert row["markov"] == pytest.approx(row["p_rome"] * row["p_region"])
    assert row["search_months"] == 0 and row["age"] == 26
    stay = cands.set_index(["to_rome", "to_region"]).loc[("M1607", "11")]
    assert stay["link"] == 0.0 and stay["same_region"] == 1.0 and stay["distance_km"] < 60


def test_queries_sharing_an_origin_get_its_candidates_with_their_own_features(tables):
    """Candidates are built once per origin and given to its queries: each query of a batch gets exactly
    the rows it gets alone, with its own seeker features."""
    alone = [
        _query("77").assign(search_band="12+", education="NV5"),
        _query("75"),
        _query("77").assign(age_band="<26"),
        _query("75", "2022-02").assign(search_band=None),
    ]
    batch = pd.concat(alone, ignore_index=True).assign(query=[3, 1, 0, 2])
    together = ranker.candidates(batch, tables, occupations=1, regions=2)
    keys = ["to_rome", "to_region"]
    for position, query in enumerate(alone):
        own = ranker.candidates(query, tables, occupations=1, regions=2).sort_values(keys)
        got = together[together["query"] == batch["query"][position]].sort_values(keys)
        pd.testing.assert_frame_equal(
            got.drop(columns="query").reset_index(drop=True), own.drop(columns="query").reset_index(drop=True)
        )
    by_query = together.groupby("query")
    assert by_query["search_months"].first().to_dict() == {0: 0.0, 1: 0.0, 2: -1.0, 3: 12.0}
    assert by_query["age"].first().to_dict() == {0: 0.0, 1: 26.0, 2: 26.0, 3: 26.0}


def test_the_market_is_read_in_the_month_before_the_date_scored(tables):
    def dest(month: str) -> pd.Series:
        cands = ranker.candidates(_query("75", month), tables, occupations=1, regions=1)
        return cands.set_index(["to_rome", "to_region"]).loc[("M1607", "11")]

    assert dest("2022-02")["dest_tension"] == pytest.approx(0.4)  # January's
    assert dest("2022-02")["dest_national_offers"] == pytest.approx(np.log1p(45))  # January: 40 + 5
    # February has no row: no offer, tension unknown (not January's, which would be stale)
    assert np.isnan(dest("2022-03")["dest_tension"]) and dest("2022-03")["dest_offers"] == 0
    assert dest("2022-03")["dest_national_offers"] == pytest.approx(np.log1p(45))  # 12 months to February
    assert dest("2022-04")["dest_tension"] == pytest.approx(0.1)  # March's
    assert dest("2022-04")["dest_offers"] == pytest.approx(np.log1p(10))
    assert dest("2022-04")["dest_national_offers"] == pytest.approx(np.log1p(55))  # 40 + 10 + 5
    # past the model's market (March is its last month): its last month
    assert dest("2022-09")["dest_tension"] == pytest.approx(0.1)
    assert np.isnan(dest("2022-01")["dest_tension"])  # nothing known before January


def test_the_booster_learns_the_departement_that_markov_cannot_see(spark: SparkSession, tables):
    learning = _examples(spark, "2022-02", 200).toPandas()
    learnt = ranker.learn(
        learning, tables, occupations=3, regions=2, max_iter=50, learning_rate=0.2, max_leaf_nodes=8, seed=1
    )
    assert learnt.figures["candidate_recall"] == 1.0
    assert learnt.importances[["p_region_departement", "distance_km"]].max() > 0
    # scored in the month learnt on: the same market (another month's would be new values to the booster)
    states = pd.concat([_query("75", "2022-02"), _query("77", "2022-02")], ignore_index=True)
    config = {"occupations": 3, "regions": 2}
    ranked = recommend_frame("ranker", tables, states, 3, booster=learnt.booster, config=config)
    first = ranked[ranked["rank"] == 1].set_index("query")
    assert (first.loc[0, "to_rome"], first.loc[0, "to_region"]) == ("M1607", "11")
    assert (first.loc[1, "to_rome"], first.loc[1, "to_region"]) == ("M1607", "84")
    assert list(ranked.groupby("query")["rank"].max()) == [3, 3]
    # markov alone ranks both the same: its region factor knows the region, not the département
    markov = {k: v for k, v in tables.items() if k.startswith("to_") and k != "to_region.departement"}
    baseline = recommend_frame("markov", markov, states, 1)
    assert baseline.loc[0, "to_region"] == baseline.loc[1, "to_region"]


def test_band_labels_read_as_their_lower_bounds():
    labels = pd.Series(["<3", "3-5", "12+", None])
    assert list(ranker.band_floor(labels)) == [0.0, 3.0, 12.0, -1.0]

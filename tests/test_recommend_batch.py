"""Batch recommendations on hand-built data: who is active on the day and in which origin state, and the
reasons given with each line."""

from __future__ import annotations

from datetime import date

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from mobility.gold.transitions import occupation_segments
from mobility.lake import Lake
from mobility.recommend.batch import active_states, with_reasons

SPELLS = (
    "seeker_id string, registration_date date, end_date date, registration_reason string, end_reason string, "
    "category int, code_commune string, code_departement string, code_region string, rome string, "
    "rome_version string, rome_v3 string, education string"
)
CHANGES = "seeker_id string, start_date date, end_date date, rome string, rome_version string, rome_v3 string"
DAY = date(2022, 6, 15)


def _spell(seeker, start, end, category, dept, region, rome, education="NV4"):
    return (seeker, start, end, "11", None, category, None, dept, region, rome, "v3", rome, education)


def test_active_seekers_are_those_in_the_stock_on_the_day_in_the_occupation_they_then_seek(
    spark: SparkSession,
):
    spells = spark.createDataFrame(
        [
            _spell("a", date(2022, 1, 10), None, 1, "75", "11", "M1607"),
            _spell("b", date(2022, 1, 10), date(2022, 6, 1), 1, "75", "11", "M1607"),  # ended before
            _spell("c", date(2022, 1, 10), None, 4, "75", "11", "M1607"),  # not seeking now
            _spell("d", date(2021, 1, 1), None, 2, "13", "93", "K2111"),  # ended by the next spell
            _spell("d", date(2022, 3, 1), None, 2, "2A", "94", "G1602", education=None),
            _spell("e", date(2022, 6, 16), None, 1, "75", "11", "M1607"),  # registers after the day
        ],
        SPELLS,
    )
    changes = spark.createDataFrame(
        [
            ("a", date(2022, 5, 1), None, "D1401", "v3", "D1401"),
            ("d", date(2022, 6, 16), None, "M1607", "v3", "M1607"),  # after the day
        ],
        CHANGES,
    )
    seekers = spark.createDataFrame(
        # the latest spell's education (a later spell may change it): not the one of the day
        [("a", 1990, "NV1"), ("d", 1960, "NV1")],
        "seeker_id string, birth_year int, education string",
    )
    segments = occupation_segments(spells, changes, level="rome_v3")
    got = active_states(
        segments, seekers, DAY, stock_categories=(1, 2, 3), age_bands=(26, 50), search_bands=(3, 6, 12)
    ).drop("state_id")
    expected = spark.createDataFrame(
        [
            ("a", "D1401", "75", "11", "3-5", "26-49", "NV4", "2022-06"),  # 156 days: 5 months
            ("d", "G1602", "2A", "94", "3-5", "50+", None, "2022-06"),  # 106 days: 3 months
        ],
        "seeker_id string, from_rome string, from_dept string, from_region string, search_band string, "
        "age_band string, education string, month string",
    )
    assertDataFrameEqual(got, expected)


def test_equal_states_share_one_state_id(spark: SparkSession):
    spells = spark.createDataFrame(
        [_spell(s, date(2022, 1, 10), None, 1, "75", "11", "M1607") for s in ("a", "b")]
        + [_spell("c", date(2022, 1, 10), None, 1, "77", "11", "M1607")],
        SPELLS,
    )
    seekers = spark.createDataFrame(
        [(s, 1990, "NV4") for s in "abc"], "seeker_id string, birth_year int, education string"
    )
    segments = occupation_segments(spells, spark.createDataFrame([], CHANGES), level="rome_v3")
    got = active_states(
        segments, seekers, DAY, stock_categories=(1,), age_bands=(26, 50), search_bands=(3, 6, 12)
    )
    ids = {r["seeker_id"]: r["state_id"] for r in got.collect()}
    assert ids["a"] == ids["b"] != ids["c"]


def test_each_line_gives_past_moves_last_months_market_the_rome_link_and_the_distance(
    spark: SparkSession, ref_lake: Lake
):
    lines = spark.createDataFrame(
        [("s", "M1607", "75", "11", "D1401", "84"), ("s", "M1607", "75", "11", "M1607", "11")],
        "seeker_id string, from_rome string, from_dept string, from_region string, to_rome string, "
        "to_region string",
    )
    transitions = spark.createDataFrame(
        [
            ("hire", "M1607", "11", "D1401", "84", date(2022, 1, 5)),
            ("hire", "M1607", "11", "D1401", "84", date(2022, 2, 5)),
            ("hire", "M1607", "11", "D1401", "84", DAY),  # not before the day
            ("reorientation", "M1607", "11", "D1401", "84", date(2022, 2, 5)),  # not a hire
        ],
        "kind string, from_rome string, from_region string, to_rome string, to_region string, move_date date",
    )
    market = spark.createDataFrame(
        [
            ("D1401", "84", date(2022, 5, 1), 12, 0.3),
            ("D1401", "84", date(2022, 6, 1), 99, 9.9),  # the day's own month: not known yet
        ],
        "rome string, code_region string, month date, offers_published long, tension double",
    )
    got = with_reasons(
        lines,
        DAY,
        transitions=transitions,
        market=market,
        rome_mobility=ref_lake.read("ref.rome_mobility"),
        departement=ref_lake.read("ref.departement"),
        region=ref_lake.read("ref.region"),
        v4_proche_max_rank=5,
    )
    rows = {r["to_rome"]: r for r in got.collect()}
    assert (rows["D1401"]["historical_moves"], rows["M1607"]["historical_moves"]) == (2, 0)
    assert (rows["D1401"]["dest_offers"], rows["D1401"]["dest_tension"]) == (12, 0.3)
    assert (rows["M1607"]["dest_offers"], rows["M1607"]["dest_tension"]) == (0, None)
    assert (rows["D1401"]["rome_link"], rows["M1607"]["rome_link"]) == ("proche", "same")
    # Paris to the centroid of Auvergne-Rhône-Alpes (about 400 km), and to its own region's (under 60)
    assert 300 < rows["D1401"]["distance_km"] < 500 and rows["M1607"]["distance_km"] < 60
    assert got.where(F.col("seeker_id") == "s").count() == 2

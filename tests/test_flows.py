"""Flows on hand-built transitions and market rows: moves, stock at origin, rate, median delay, share via
offers, destination offers and tension, periods; coarser views summing to the transitions; indicators; and
``mobility.gold.build`` end to end (the gold frames, their sums, and no Python UDF in any plan)."""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from mobility.config import Settings
from mobility.gold.build import Sources, build
from mobility.gold.flows import (
    flows,
    grand_domaine_flows,
    occupation_flows,
    occupation_mobility,
    region_balance,
    region_flows,
    unusual_pairs,
)
from mobility.gold.transitions import TRANSITION_COLUMNS, RefTables
from mobility.lake import Lake
from tests.test_transitions import CHANGE_ROWS, HIRE_ROWS, OFFER_ROWS, SPELL_ROWS, frames

MOVES = (
    "seeker_id string, kind string, from_rome string, from_region string, to_rome string, to_region string, "
    "move_date date, days_to_move int, via_offer boolean"
)
TRANSITIONS = [
    ("t1", "hire", "A1101", "11", "A1203", "84", date(2022, 2, 10), 30, True),
    ("t2", "hire", "A1101", "11", "A1203", "84", date(2022, 3, 5), 50, False),
    ("t3", "hire", "A1101", "11", "A1203", "84", date(2022, 3, 20), 100, True),
    ("t4", "reorientation", "A1101", "11", "K2204", "11", date(2022, 1, 15), 5, False),
    ("t5", "hire", "K2204", "01", "K2204", "94", date(2022, 2, 1), 20, False),  # Guadeloupe -> Corsica
    ("t6", "hire", "A1101", "11", "A1203", "84", date(2022, 4, 2), 10, False),
    ("t7", "hire", "A1203", "84", "A1101", "11", date(2022, 5, 1), 7, True),
]
MARKET = (
    "rome string, code_region string, month date, seekers_stock long, offers_published long, positions long"
)
MARKET_ROWS = [
    ("A1101", "11", date(2021, 12, 1), 10, 0, 0),  # stock at the start of 2022-Q1
    ("A1101", "11", date(2022, 1, 1), 8, 0, 0),
    ("A1101", "11", date(2022, 2, 1), 6, 0, 0),
    ("A1101", "11", date(2022, 3, 1), 4, 0, 0),  # ... and of 2022-Q2
    ("K2204", "01", date(2021, 12, 1), 3, 0, 0),
    ("A1203", "84", date(2022, 1, 1), 0, 2, 3),
    ("A1203", "84", date(2022, 2, 1), 2, 1, 1),
    ("A1203", "84", date(2022, 3, 1), 2, 1, 1),
    ("A1203", "84", date(2022, 4, 1), 0, 0, 0),
    ("K2204", "94", date(2022, 3, 1), 0, 5, 5),  # offers, no seeker
]
FLOW = (
    "from_rome string, from_region string, to_rome string, to_region string, period string, "
    "period_start date, moves long, hires long, reorientations long, seekers_at_origin long, rate double, "
    "median_days_to_move int, share_via_offers double, dest_offers long, dest_positions long, "
    "dest_tension double"
)
Q1, Q2 = date(2022, 1, 1), date(2022, 4, 1)


@pytest.fixture(scope="module")
def transitions(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(TRANSITIONS, MOVES)


@pytest.fixture(scope="module")
def market(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(MARKET_ROWS, MARKET)


def local(spark: SparkSession, df: DataFrame) -> DataFrame:
    """Computed once into a local frame (Spark jobs cost seconds even on tiny data)."""
    return spark.createDataFrame(df.collect(), df.schema)


@pytest.fixture(scope="module")
def fine(spark: SparkSession, transitions: DataFrame, market: DataFrame) -> DataFrame:
    return local(spark, flows(transitions, market))


def test_flows_per_occupation_region_pair_and_quarter(spark: SparkSession, fine: DataFrame):
    expected = [
        # 3 hires of 30, 50, 100 days, 2 via offers; 10 seekers at the end of December; destination: 4 offers
        # (5 positions) for 0 + 2 + 2 month-end seekers over the quarter
        ("A1101", "11", "A1203", "84", "2022-Q1", Q1, 3, 3, 0, 10, 0.3, 50, 2 / 3, 4, 5, 1.0),
        # a reorientation: no hire, so no share via offers; no market at the destination
        ("A1101", "11", "K2204", "11", "2022-Q1", Q1, 1, 0, 1, 10, 0.1, 5, None, 0, 0, None),
        # overseas to Corsica; offers at the destination but no seeker: tension null
        ("K2204", "01", "K2204", "94", "2022-Q1", Q1, 1, 1, 0, 3, 1 / 3, 20, 0.0, 5, 5, None),
        ("A1101", "11", "A1203", "84", "2022-Q2", Q2, 1, 1, 0, 4, 0.25, 10, 0.0, 0, 0, None),
        ("A1203", "84", "A1101", "11", "2022-Q2", Q2, 1, 1, 0, 2, 0.5, 7, 1.0, 0, 0, None),
    ]
    assertDataFrameEqual(fine, spark.createDataFrame(expected, FLOW))


def test_a_flow_without_seekers_at_origin_has_a_null_rate(spark: SparkSession, market: DataFrame):
    lone = spark.createDataFrame(
        [("x", "hire", "N4101", "52", "A1101", "11", date(2022, 2, 1), 3, False)], MOVES
    )
    row = flows(lone, market).first()
    assert (row["seekers_at_origin"], row["rate"]) == (0, None)


@pytest.mark.parametrize(
    ("period", "labels"),
    [
        ("month", {"2022-01", "2022-02", "2022-03", "2022-04", "2022-05"}),
        ("year", {"2022"}),
    ],
)
def test_the_period_is_a_setting(transitions: DataFrame, market: DataFrame, period: str, labels: set[str]):
    got = flows(transitions, market, period=period).select("period", "period_start", "moves").collect()
    assert {r["period"] for r in got} == labels
    assert sum(r["moves"] for r in got) == len(TRANSITIONS)


def test_monthly_flows_take_the_stock_at_the_end_of_the_month_before(
    transitions: DataFrame, market: DataFrame
):
    rows = flows(transitions, market, period="month").where(F.col("period") == "2022-02").collect()
    got = {(r["from_rome"], r["to_rome"]): r["seekers_at_origin"] for r in rows}
    assert got == {("A1101", "A1203"): 8, ("K2204", "K2204"): 0}


def test_summed_flows_of_every_view_equal_the_transitions(
    spark: SparkSession, transitions: DataFrame, market: DataFrame, fine: DataFrame
):
    views = {
        "flows": fine,
        "region": region_flows(transitions, market),
        "occupation": occupation_flows(transitions, market),
        "grand_domaine": grand_domaine_flows(transitions, market),
    }
    totals = {name: view.agg(F.sum("moves")).first()[0] for name, view in views.items()}
    assert totals == dict.fromkeys(views, len(TRANSITIONS))


def test_coarser_views_aggregate_moves_and_take_the_stock_of_the_coarse_origin(
    spark: SparkSession, transitions: DataFrame, market: DataFrame
):
    regions = region_flows(transitions, market).select(
        "from_region", "to_region", "period", "moves", "seekers_at_origin", "dest_offers"
    )
    expected = [
        ("11", "84", "2022-Q1", 3, 10, 4),
        ("11", "11", "2022-Q1", 1, 10, 0),
        ("01", "94", "2022-Q1", 1, 3, 5),
        ("11", "84", "2022-Q2", 1, 4, 0),
        ("84", "11", "2022-Q2", 1, 2, 0),
    ]
    schema = (
        "from_region string, to_region string, period string, moves long, seekers_at_origin long, "
        "dest_offers long"
    )
    assertDataFrameEqual(regions, spark.createDataFrame(expected, schema))
    domains = grand_domaine_flows(transitions, market).select(
        "from_grand_domaine", "to_grand_domaine", "period", "moves"
    )
    expected = [
        ("A", "A", "2022-Q1", 3),
        ("A", "K", "2022-Q1", 1),
        ("K", "K", "2022-Q1", 1),
        ("A", "A", "2022-Q2", 2),
    ]
    schema = "from_grand_domaine string, to_grand_domaine string, period string, moves long"
    assertDataFrameEqual(domains, spark.createDataFrame(expected, schema))


def test_the_median_delay_is_the_lower_median_of_the_dated_moves_in_every_view(
    spark: SparkSession, market: DataFrame
):
    """The fine view reads each pair's sorted delays, the coarser ones a histogram: the same median."""
    delays = {"A1101": [40, 200, 10, 70, None], "K2204": [None, None], "N4101": [9]}
    moves = spark.createDataFrame(
        [
            (f"{rome}{i}", "hire", rome, "11", "A1203", "84", date(2022, 2, 1), days, False)
            for rome, days in delays.items()
            for i, days in enumerate(days)
        ],
        MOVES,
    )
    fine = {r["from_rome"]: r["median_days_to_move"] for r in flows(moves, market).collect()}
    assert fine == {"A1101": 40, "K2204": None, "N4101": 9}  # 10 40 | 70 200: the lower of the two middles
    occupations = occupation_flows(moves, market).collect()
    assert {r["from_rome"]: r["median_days_to_move"] for r in occupations} == fine
    regions = region_flows(moves, market).collect()
    assert [(r["moves"], r["median_days_to_move"]) for r in regions] == [(8, 40)]  # 9 10 40 | 70 200


def test_region_balance_counts_moves_across_regions(spark: SparkSession, fine: DataFrame):
    got = region_balance(fine).select("region", "period", "inflow", "outflow", "net", "internal")
    expected = [
        ("11", "2022-Q1", 0, 3, -3, 1),
        ("84", "2022-Q1", 3, 0, 3, 0),
        ("01", "2022-Q1", 0, 1, -1, 0),
        ("94", "2022-Q1", 1, 0, 1, 0),
        ("11", "2022-Q2", 1, 1, 0, 0),
        ("84", "2022-Q2", 1, 1, 0, 0),
    ]
    schema = "region string, period string, inflow long, outflow long, net long, internal long"
    assertDataFrameEqual(got, spark.createDataFrame(expected, schema))


def test_occupation_mobility_shares_and_top_destinations(fine: DataFrame):
    got = {r["from_rome"]: r for r in occupation_mobility(fine, top=5).collect()}
    a = got["A1101"]
    assert (a["movers"], a["changers"], a["share_changing"]) == (5, 5, 1.0)
    assert [(d["to_rome"], d["moves"], d["share"]) for d in a["top_destinations"]] == [
        ("A1203", 4, 0.8),
        ("K2204", 1, 0.2),
    ]
    k = got["K2204"]
    assert (k["movers"], k["changers"], k["share_changing"], k["top_destinations"]) == (1, 0, 0.0, [])
    assert [
        d["to_rome"] for d in occupation_mobility(fine, top=1).where("from_rome = 'A1101'").first()[-1]
    ] == ["A1203"]


def test_unusual_pairs_move_more_than_their_sizes_predict(fine: DataFrame):
    # Changers: A1101 -> A1203 4, A1101 -> K2204 1, A1203 -> A1101 1 (total 6).
    got = unusual_pairs(fine, min_moves=1, min_ratio=2.0).collect()
    assert [(r["from_rome"], r["to_rome"], r["moves"]) for r in got] == [("A1203", "A1101", 1)]
    assert got[0]["expected"] == pytest.approx(1 * 1 / 6)
    assert got[0]["ratio"] == pytest.approx(6.0)
    assert unusual_pairs(fine).count() == 0  # no pair reaches the default 5 moves


def test_unknown_period_or_dimension_is_refused(transitions: DataFrame, market: DataFrame):
    with pytest.raises(ValueError, match="period"):
        flows(transitions, market, period="week")
    with pytest.raises(ValueError, match="by"):
        flows(transitions, market, by=("commune",))


# ---------------------------------------------------------------------------------------------- build

GOLD = {
    "segments", "transitions", "transitions_quality", "market_facts", "market", "market_departement",
    "market_national", "flows", "flows_region", "flows_occupation", "flows_grand_domaine", "region_balance",
    "occupation_mobility", "unusual_pairs",
}  # fmt: skip
PYTHON_NODES = ("BatchEvalPython", "ArrowEvalPython", "PythonUDF", "MapInPandas", "FlatMapGroupsInPandas")


@pytest.fixture(scope="module")
def gold(spark: SparkSession, ref_lake: Lake, settings: Settings) -> dict[str, DataFrame]:
    spells, changes, hires, offers = frames(spark, SPELL_ROWS, CHANGE_ROWS, HIRE_ROWS, OFFER_ROWS)
    sources = Sources(spells, changes, hires, offers, RefTables.from_lake(ref_lake))
    tables = build(sources, settings.flows, persist=True)
    yield tables
    spark.catalog.clearCache()


def test_build_returns_every_gold_table(gold: dict[str, DataFrame]):
    assert set(gold) == GOLD
    assert gold["transitions"].columns == list(TRANSITION_COLUMNS)
    assert gold["flows"].columns[:6] == [
        "from_rome",
        "from_region",
        "to_rome",
        "to_region",
        "period",
        "period_start",
    ]
    assert {"code_region", "seekers_stock", "tension", "tension_rolling"} <= set(gold["market"].columns)
    assert "code_departement" in gold["market_departement"].columns


def test_built_transitions_are_matched_hires_plus_reorientations_and_flows_sum_to_them(
    gold: dict[str, DataFrame],
):
    figures = gold["transitions_quality"].first()
    views = ("flows", "flows_region", "flows_occupation", "flows_grand_domaine")
    totals = (
        gold["transitions"].agg(F.count(F.lit(1)).alias("moves")).withColumn("table", F.lit("transitions"))
    )
    for view in views:  # one job for all the sums
        totals = totals.unionByName(
            gold[view].agg(F.sum("moves").alias("moves")).withColumn("table", F.lit(view))
        )
    got = {r["table"]: r["moves"] for r in totals.collect()}
    assert (
        got["transitions"] == figures["transitions"] == figures["hires_matched"] + figures["reorientations"]
    )
    assert figures["transitions"] > 0
    assert got == dict.fromkeys(("transitions", *views), figures["transitions"])


def python_nodes(df: DataFrame) -> list[str]:
    plan = df._jdf.queryExecution().optimizedPlan().toString()
    return [node for node in PYTHON_NODES if node in plan]


def test_no_gold_plan_holds_a_python_udf(gold: dict[str, DataFrame]):
    assert python_nodes(gold["market"].withColumn("x", F.udf(lambda v: v)("rome")))  # the check sees one
    for name, df in gold.items():
        assert not python_nodes(df), name

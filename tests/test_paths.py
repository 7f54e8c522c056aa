"""Paths on hand-built graphs whose answer is known: step probabilities (staying moves, the window, the
min_moves and branching cuts), destination tension, paths of one to three steps (products of the steps,
no revisit, tension threshold, one route per destination, ranking and cut per origin), and the ``paths``
step end to end on a lake."""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from mobility.config import load_settings
from mobility.lake import Lake
from mobility.paths import PATH_COLUMNS, STEP_COLUMNS, best_paths, destination_tension, step_probabilities
from mobility.pipeline import run_paths

MOVES = "kind string, from_rome string, from_region string, to_rome string, to_region string, move_date date"
STEPS = (
    "from_rome string, from_region string, to_rome string, to_region string, moves long, probability double"
)
TENSION = "rome string, region string, tension double"
STEP_TYPE = (
    "array<struct<step:int,from_rome:string,from_region:string,to_rome:string,to_region:string,"
    "probability:double>>"
)
PATHS = (
    "from_rome string, from_region string, path_rank int, n_steps int, probability double, to_rome string, "
    f"to_region string, dest_tension double, steps {STEP_TYPE}"
)
MARKET = "rome string, code_region string, month date, seekers_stock long, offers_published long"
LAST = date(2023, 12, 15)

# States: (rome, region)
A, B, C, D, E, X, Y = (
    ("A1101", "11"), ("B1101", "11"), ("C1101", "11"), ("D1101", "11"), ("E1101", "11"), ("X1101", "11"),
    ("Y1101", "11"),
)  # fmt: skip


def transitions(spark: SparkSession, *edges: tuple) -> DataFrame:
    """``(from_state, to_state, moves[, kind[, date]])`` -> one transition row per move."""
    rows = []
    for edge in edges:
        origin, destination, n = edge[:3]
        kind = edge[3] if len(edge) > 3 else "hire"
        day = edge[4] if len(edge) > 4 else LAST
        rows += [(kind, *origin, *destination, day)] * n
    return spark.createDataFrame(rows, MOVES)


def steps(spark: SparkSession, *edges: tuple) -> DataFrame:
    """``(from_state, to_state, probability)`` -> kept steps (moves are not read by best_paths)."""
    return spark.createDataFrame([(*o, *d, 10, p) for o, d, p in edges], STEPS)


def tension(spark: SparkSession, *states: tuple) -> DataFrame:
    return spark.createDataFrame([(*s, t) for s, t in states], TENSION)


def step_rows(*edges: tuple) -> list[tuple]:
    """The ``steps`` array of a path: ``(from_state, to_state, probability)`` in order."""
    return [(i, *o, *d, p) for i, (o, d, p) in enumerate(edges, start=1)]


def path(origin: tuple, rank: int, dest_tension: float, *edges: tuple) -> tuple:
    probability = 1.0
    for _, _, p in edges:
        probability *= p
    destination = edges[-1][1]
    return (*origin, rank, len(edges), probability, *destination, dest_tension, step_rows(*edges))


def probabilities(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame([(*o, *d, n, p) for o, d, n, p in rows], STEPS)


# ------------------------------------------------------------------------------------------------ steps


def test_a_step_probability_is_its_share_of_the_moves_leaving_the_state_and_staying_moves_do_not_count(
    spark: SparkSession,
):
    moves = transitions(
        spark,
        (A, B, 6),
        (A, C, 3, "reorientation"),
        (A, (A[0], "84"), 1),  # same occupation, another region: a step
        (A, A, 20),  # staying in the state: neither a step nor in the denominator
    )
    got = step_probabilities(moves, months=24, min_moves=1, branching=5)
    assert got.columns == list(STEP_COLUMNS)
    expected = [(A, B, 6, 0.6), (A, C, 3, 0.3), (A, (A[0], "84"), 1, 0.1)]
    assertDataFrameEqual(got, probabilities(spark, expected))


def test_steps_under_min_moves_are_dropped_without_changing_the_others_probabilities(spark: SparkSession):
    moves = transitions(spark, (A, B, 6), (A, C, 2), (A, D, 2), (B, C, 4))
    got = step_probabilities(moves, months=24, min_moves=3, branching=5)
    assertDataFrameEqual(got, probabilities(spark, [(A, B, 6, 0.6), (B, C, 4, 1.0)]))


def test_branching_keeps_the_best_steps_per_state_ties_broken_by_destination_codes(spark: SparkSession):
    moves = transitions(spark, (A, E, 6), (A, D, 5), (A, B, 5), (A, C, 5), (B, A, 5))
    got = step_probabilities(moves, months=24, min_moves=1, branching=2)
    expected = [(A, E, 6, 6 / 21), (A, B, 5, 5 / 21), (B, A, 5, 1.0)]
    assertDataFrameEqual(got, probabilities(spark, expected))


def test_steps_count_the_moves_of_the_last_months_only_and_skip_unknown_states(spark: SparkSession):
    moves = transitions(
        spark,
        (A, B, 3, "hire", date(2023, 1, 1)),  # first day of the 12-month window ending 2023-12
        (A, C, 9, "hire", date(2022, 12, 31)),  # before it
        (A, D, 1, "reorientation", date(2023, 12, 31)),
        (A, (None, "11"), 4),
        ((A[0], None), B, 4),
    )
    got = step_probabilities(moves, months=12, min_moves=1, branching=5)
    assertDataFrameEqual(got, probabilities(spark, [(A, B, 3, 0.75), (A, D, 1, 0.25)]))
    hires_only = step_probabilities(moves, months=12, min_moves=1, branching=5, kinds=("hire",))
    assertDataFrameEqual(hires_only, probabilities(spark, [(A, B, 3, 1.0)]))


# ---------------------------------------------------------------------------------------------- tension


def test_destination_tension_is_offers_per_month_end_seeker_over_the_market_s_last_12_months(
    spark: SparkSession,
):
    rows = [
        ("A1101", "11", date(2022, 12, 1), 100, 100),  # before the window (2023-01..2023-12)
        ("A1101", "11", date(2023, 1, 1), 4, 1),
        ("A1101", "11", date(2023, 12, 1), 6, 4),
        ("B1101", "11", date(2023, 6, 1), 0, 3),  # offers, no seeker: null tension
        ("C1101", "11", date(2022, 6, 1), 1, 1),  # nothing in the window: no row
        ("A1101", "84", date(2023, 12, 1), 2, 1),
    ]
    got = destination_tension(spark.createDataFrame(rows, MARKET))
    expected = [("A1101", "11", 5, 10, 0.5), ("B1101", "11", 3, 0, None), ("A1101", "84", 1, 2, 0.5)]
    schema = "rome string, region string, offers long, stock long, tension double"
    assertDataFrameEqual(got, spark.createDataFrame(expected, schema))


# ------------------------------------------------------------------------------------------------ paths


def test_the_best_path_to_a_tense_destination_goes_through_a_slack_state_with_the_product_probability(
    spark: SparkSession,
):
    graph = steps(spark, (A, B, 0.5), (B, C, 0.4))
    tensions = tension(spark, (A, 0.1), (B, 0.2), (C, 3.0))
    got = best_paths(graph, tensions, min_tension=1.0, max_steps=3, per_origin=10)
    assert got.columns == list(PATH_COLUMNS)
    expected = [path(A, 1, 3.0, (A, B, 0.5), (B, C, 0.4)), path(B, 1, 3.0, (B, C, 0.4))]
    assertDataFrameEqual(got, spark.createDataFrame(expected, PATHS))
    assert got.where(F.col("from_rome") == "A1101").first()["probability"] == pytest.approx(0.2)


def test_a_path_of_three_steps_and_max_steps_bounds_the_length(spark: SparkSession):
    graph = steps(spark, (A, B, 0.5), (B, C, 0.4), (C, D, 0.3))
    tensions = tension(spark, (D, 2.0))
    got = best_paths(graph, tensions, min_tension=1.0, max_steps=3, per_origin=10)
    expected = [
        path(A, 1, 2.0, (A, B, 0.5), (B, C, 0.4), (C, D, 0.3)),
        path(B, 1, 2.0, (B, C, 0.4), (C, D, 0.3)),
        path(C, 1, 2.0, (C, D, 0.3)),
    ]
    assertDataFrameEqual(got, spark.createDataFrame(expected, PATHS))
    shorter = best_paths(graph, tensions, min_tension=1.0, max_steps=2, per_origin=10)
    assertDataFrameEqual(shorter, spark.createDataFrame(expected[1:], PATHS))


def test_a_path_never_revisits_a_state_nor_returns_to_its_origin(spark: SparkSession):
    graph = steps(spark, (A, B, 0.9), (B, A, 0.5), (B, C, 0.5), (C, B, 1.0))
    tensions = tension(spark, (A, 2.0), (B, 2.0), (C, 2.0))
    got = best_paths(graph, tensions, min_tension=1.0, max_steps=3, per_origin=10, one_per_destination=False)
    from_a = got.where(F.col("from_rome") == "A1101").orderBy("path_rank")
    routes = [[(s["to_rome"]) for s in row["steps"]] for row in from_a.collect()]
    assert routes == [["B1101"], ["B1101", "C1101"]]  # not A -> B -> A, nor A -> B -> C -> B


def test_destinations_under_min_tension_or_without_tension_are_not_path_ends(spark: SparkSession):
    graph = steps(spark, (A, B, 0.4), (A, C, 0.3), (A, D, 0.2), (A, E, 0.1))
    tensions = tension(spark, (B, 0.99), (C, 1.0), (D, None))  # E: no market row
    got = best_paths(graph, tensions, min_tension=1.0, max_steps=3, per_origin=10)
    assertDataFrameEqual(got, spark.createDataFrame([path(A, 1, 1.0, (A, C, 0.3))], PATHS))


def test_only_the_likeliest_route_to_a_destination_is_kept_ties_going_to_the_shorter(spark: SparkSession):
    graph = steps(spark, (A, B, 0.5), (A, C, 0.1), (B, C, 0.6), (A, X, 0.2), (X, D, 0.5), (A, D, 0.1))
    tensions = tension(spark, (C, 2.0), (D, 3.0))
    got = best_paths(graph, tensions, min_tension=1.0, max_steps=3, per_origin=10)
    expected = [
        path(A, 1, 2.0, (A, B, 0.5), (B, C, 0.6)),  # 0.3 beats the direct 0.1
        path(A, 2, 3.0, (A, D, 0.1)),  # 0.1 ties with A -> X -> D: the shorter
        path(B, 1, 2.0, (B, C, 0.6)),
        path(X, 1, 3.0, (X, D, 0.5)),
    ]
    assertDataFrameEqual(got, spark.createDataFrame(expected, PATHS))
    every_route = best_paths(
        graph, tensions, min_tension=1.0, max_steps=3, per_origin=10, one_per_destination=False
    )
    assert every_route.where(F.col("from_rome") == "A1101").count() == 4


def test_per_origin_keeps_the_likeliest_paths_ranked_ties_by_fewer_steps_then_codes(spark: SparkSession):
    graph = steps(spark, (A, D, 0.1), (A, C, 0.1), (A, X, 0.4), (X, Y, 1.0), (A, B, 0.4))
    tensions = tension(spark, (B, 2.0), (C, 2.0), (D, 2.0), (Y, 2.0))
    got = best_paths(graph, tensions, min_tension=1.0, max_steps=3, per_origin=3)
    expected = [
        path(A, 1, 2.0, (A, B, 0.4)),
        path(A, 2, 2.0, (A, X, 0.4), (X, Y, 1.0)),  # as likely as B, one step more
        path(A, 3, 2.0, (A, C, 0.1)),  # as likely as D, C first; D is cut
        path(X, 1, 2.0, (X, Y, 1.0)),
    ]
    assertDataFrameEqual(got, spark.createDataFrame(expected, PATHS))


def test_paths_plans_hold_no_python_udf(spark: SparkSession):
    graph = step_probabilities(transitions(spark, (A, B, 5)), months=24, min_moves=1, branching=5)
    got = best_paths(graph, tension(spark, (B, 2.0)), min_tension=1.0, max_steps=3, per_origin=10)
    plan = got._jdf.queryExecution().optimizedPlan().toString()
    assert not any(
        node in plan for node in ("BatchEvalPython", "ArrowEvalPython", "PythonUDF", "MapInPandas")
    )


# ------------------------------------------------------------------------------------------- on a lake


def test_the_paths_step_writes_gold_paths_from_the_lake_s_transitions_and_market(
    spark: SparkSession, lake: Lake
):
    moves = transitions(
        spark,
        (A, B, 6),
        (A, C, 4),  # under min_moves
        (A, A, 30),  # staying
        (B, D, 5),
        (B, A, 5),
        (A, D, 7, "hire", date(2020, 1, 1)),  # before the 24-month window
    )
    lake.overwrite(moves, "gold.transitions")
    market = [
        ("D1101", "11", date(2023, 11, 1), 2, 3),
        ("D1101", "11", date(2023, 12, 1), 2, 1),
        ("A1101", "11", date(2023, 12, 1), 10, 1),
        ("B1101", "11", date(2023, 12, 1), 10, 2),
    ]
    lake.overwrite(spark.createDataFrame(market, MARKET), "gold.market")
    settings = load_settings(
        "test",
        [f"lake.root={lake.root}", "paths.min_tension=1.0", "paths.min_moves=5", "paths.months=24"],
        environ={},
    )
    counts = run_paths(settings)
    assert counts == {
        "gold.transitions rows read": 57,
        "gold.market rows read": 4,
        "steps kept": 3,
        "tense destinations": 1,
        "gold.paths rows": 2,
        "origins with a path": 2,
    }
    expected = [
        path(A, 1, 1.0, (A, B, 6 / 10), (B, D, 0.5)),  # A's denominator: 6 + 4, not the 30 staying
        path(B, 1, 1.0, (B, D, 0.5)),
    ]
    assertDataFrameEqual(lake.read("gold.paths"), spark.createDataFrame(expected, PATHS))

"""Published views: primary suppression, secondary suppression per line (one suppressed cell, the all-ones
pin, off-diagonal lines), the fixpoint and its bound, the published tables built from hand-made gold
tables (every rule of ``mobility.publish``), and an attack: a reader solving every known line total as a
linear program (``scipy.optimize.linprog``) pins no suppressed cell, where primary suppression alone
gives cells away.

``lp_ranges`` and the ``attack_*`` helpers serve ``test_ingest_generated`` too."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import date

import numpy as np
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual
from scipy.optimize import linprog

from mobility.gold.flows import (
    flows,
    grand_domaine_flows,
    occupation_flows,
    occupation_mobility,
    region_balance,
    region_flows,
)
from mobility.publish import Line, SuppressionError, publish, suppress

MIN_CELL = 5  # privacy.min_cell of conf/base.yaml
MAX_ROUNDS = 20

# ------------------------------------------------------------------------------------ the LP attack

Key = tuple
# a line: cell key -> the key of its line (None: the cell is not in any line of this kind)
LineOf = Callable[[Key], Hashable | None]


def withheld(cells: Mapping[Key, tuple[int, bool]], members: Sequence[Key], min_cell: int = MIN_CELL) -> bool:
    """A line total no reader gets, even where it may be published: under ``min_cell`` (primary
    suppression of every published aggregate), or a line without visible cell whose total would give its
    cells away (one cell, or all ones): ``mobility.publish`` withholds those totals."""
    total = sum(cells[k][0] for k in members)
    if total < min_cell:
        return True
    if any(not cells[k][1] for k in members):
        return False
    return len(members) == 1 or total == len(members)


def lp_ranges(
    cells: Mapping[Key, tuple[int, bool]],
    lines: Mapping[str, LineOf],
    known: Callable[[str, Hashable], bool | None] | None = None,
    *,
    min_cell: int = MIN_CELL,
) -> dict[Key, tuple[float, float]]:
    """What a reader can learn of each suppressed cell: its min and max over every table consistent with
    the published cells and the known line totals, each suppressed cell being at least 1.

    ``cells``: key -> (true count, suppressed). ``lines``: name -> the line of a cell. ``known(name, line)``:
    whether the reader knows that line's total (None: known unless ``withheld``). One linear program per
    bound and cell, over the connected part of the lines holding it."""
    hidden = [k for k, (_, h) in cells.items() if h]
    index = {k: i for i, k in enumerate(hidden)}
    groups: dict[tuple[str, Hashable], list[Key]] = defaultdict(list)
    for key in cells:
        for name, line_of in lines.items():
            line = line_of(key)
            if line is not None:
                groups[(name, line)].append(key)
    equations = []  # (indices of the suppressed members, their sum)
    for (name, line), members in groups.items():
        unknown = [index[k] for k in members if cells[k][1]]
        if not unknown:
            continue
        told = known(name, line) if known is not None else None
        if not (told if told is not None else not withheld(cells, members, min_cell)):
            continue
        visible = sum(cells[k][0] for k in members if not cells[k][1])
        equations.append((unknown, sum(cells[k][0] for k in members) - visible))

    parent = list(range(len(hidden)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for unknown, _ in equations:
        for i in unknown[1:]:
            parent[root(i)] = root(unknown[0])
    parts: dict[int, list[int]] = defaultdict(list)
    for i in range(len(hidden)):
        parts[root(i)].append(i)
    part_equations: dict[int, list[tuple[list[int], int]]] = defaultdict(list)
    for unknown, total in equations:
        part_equations[root(unknown[0])].append((unknown, total))

    ranges = {}
    for part, variables in parts.items():
        rows = part_equations.get(part)
        if not rows:
            ranges.update({hidden[i]: (1.0, math.inf) for i in variables})
            continue
        column = {i: j for j, i in enumerate(variables)}
        a = np.zeros((len(rows), len(variables)))
        for r, (unknown, _) in enumerate(rows):
            a[r, [column[i] for i in unknown]] = 1
        b = np.array([total for _, total in rows], dtype=float)
        for i in variables:
            c = np.zeros(len(variables))
            c[column[i]] = 1
            low = linprog(c, A_eq=a, b_eq=b, bounds=(1, None), method="highs")
            high = linprog(-c, A_eq=a, b_eq=b, bounds=(1, None), method="highs")
            assert low.status == 0, f"{hidden[i]}: the published table is infeasible ({low.message})"
            ranges[hidden[i]] = (low.fun, math.inf if high.status == 3 else -high.fun)
    return ranges


def recovered(ranges: Mapping[Key, tuple[float, float]]) -> dict[Key, tuple[float, float]]:
    """The suppressed cells a reader pins to less than one person."""
    return {k: r for k, r in ranges.items() if r[1] - r[0] < 1 - 1e-6}


def attack(
    gold: DataFrame,
    published: DataFrame,
    keys: Sequence[str],
    lines: Mapping[str, LineOf],
    known: Callable[[date], Callable[[str, Hashable], bool | None]] | None = None,
) -> dict[Key, tuple[float, float]]:
    """``lp_ranges`` per period (``period_start``, the last of ``keys``) of a published flows table, the
    true counts from ``gold``; returns the recovered cells."""
    true = {tuple(r[k] for k in keys): r["moves"] for r in gold.select(*keys, "moves").collect()}
    shown = {tuple(r[k] for k in keys): r["moves"] for r in published.select(*keys, "moves").collect()}
    assert true.keys() == shown.keys()
    found = {}
    for period in sorted({k[-1] for k in true}):
        cells = {k: (v, shown[k] is None) for k, v in true.items() if k[-1] == period}
        found.update(recovered(lp_ranges(cells, lines, known(period) if known else None)))
    return found


REGION_LINES: dict[str, LineOf] = {
    "from": lambda k: k[0],
    "to": lambda k: k[1],
    "outflow": lambda k: k[0] if k[0] != k[1] else None,
    "inflow": lambda k: k[1] if k[0] != k[1] else None,
}
OCCUPATION_LINES: dict[str, LineOf] = {"from": lambda k: k[0], "to": lambda k: k[1]}
FLOW_LINES: dict[str, LineOf] = {
    "origin": lambda k: k[:2],
    "destination": lambda k: k[2:4],
    "regions": lambda k: (k[1], k[3]),
    "occupations": lambda k: (k[0], k[2]),
}
FLOW_KEYS = ("from_rome", "from_region", "to_rome", "to_region", "period_start")
REGION_KEYS = ("from_region", "to_region", "period_start")
OCCUPATION_KEYS = ("from_rome", "to_rome", "period_start")


def attack_flows_region(gold: DataFrame, published: DataFrame, balance: DataFrame) -> dict:
    """The attack on ``published_flows_region``: the off-diagonal totals are ``published_region_balance``'s
    outflow and inflow, a row (column) total is known when its outflow (inflow) and internal are."""
    shown = {(r["region"], r["period_start"]): r for r in balance.collect()}
    needs = {"outflow": ("outflow",), "inflow": ("inflow",), "from": ("outflow", "internal"),
             "to": ("inflow", "internal")}  # fmt: skip

    def known(period: date) -> Callable[[str, Hashable], bool | None]:
        def told(name: str, region: Hashable) -> bool | None:
            row = shown.get((region, period))
            return None if row is None else all(row[c] is not None for c in needs[name])

        return told

    return attack(gold, published, REGION_KEYS, REGION_LINES, known)


def attack_flows(gold: DataFrame, published: DataFrame, regions: DataFrame, occupations: DataFrame) -> dict:
    """The attack on ``published_flows``: a region pair's total is known when ``published_flows_region``
    shows it, an occupation pair's when ``published_flows_occupation`` does; origins and destinations
    (published nowhere) are taken as known unless withheld."""
    shown = {
        name: {tuple(r[:3]): r["moves"] for r in df.select(*keys, "moves").collect()}
        for name, df, keys in (
            ("regions", regions, REGION_KEYS),
            ("occupations", occupations, OCCUPATION_KEYS),
        )
    }

    def known(period: date) -> Callable[[str, Hashable], bool | None]:
        def told(name: str, line: Hashable) -> bool | None:
            return shown[name].get((*line, period)) is not None if name in shown else None

        return told

    return attack(gold, published, FLOW_KEYS, FLOW_LINES, known)


def attack_flows_occupation(gold: DataFrame, published: DataFrame) -> dict:
    """The attack on ``published_flows_occupation`` with every row and column total of a period known,
    unless withheld (no table publishes them: the pessimistic reading)."""
    return attack(gold, published, OCCUPATION_KEYS, OCCUPATION_LINES)


# ------------------------------------------------------------------------------------ suppress, one table

CELLS = "r string, c string, n long"


def cells(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, CELLS)


def suppressed_cells(df: DataFrame) -> set[tuple[str, str]]:
    return {(r["r"], r["c"]) for r in df.where("suppressed").collect()}


ROWS_AND_COLUMNS = [Line(("r",)), Line(("c",))]


def test_primary_suppression_hides_counts_between_zero_and_min_cell(spark: SparkSession):
    table = cells(spark, [("a", "x", 0), ("a", "y", 1), ("a", "z", 4), ("b", "x", 5), ("b", "y", 12)])
    expected = spark.createDataFrame(
        [("a", "x", 0, False), ("a", "y", 1, True), ("a", "z", 4, True), ("b", "x", 5, False),
         ("b", "y", 12, False)],
        CELLS + ", suppressed boolean",
    )  # fmt: skip
    assertDataFrameEqual(suppress(table, ("r", "c"), "n", [], min_cell=5, max_rounds=MAX_ROUNDS), expected)


def test_a_line_with_one_suppressed_cell_gets_its_smallest_visible_cell_suppressed_ties_by_keys(
    spark: SparkSession,
):
    # Row a: 3 is primary; 7 (a, y) and 7 (a, z) tie, the keys break it; 30 stays.
    table = cells(spark, [("a", "w", 3), ("a", "y", 7), ("a", "z", 7), ("a", "x", 30), ("b", "w", 9)])
    got = suppress(table, ("r", "c"), "n", [Line(("r",))], min_cell=5, max_rounds=MAX_ROUNDS)
    assert suppressed_cells(got) == {("a", "w"), ("a", "y")}


def test_suppressed_cells_summing_to_their_number_are_pinned_and_get_one_more(spark: SparkSession):
    # Row a: two suppressed ones; the total gives 1 + 1, so 8 joins them. Row b: 1 + 2 = 3 cannot be split
    # by a reader (2 + 1 or 1 + 2): nothing more.
    table = cells(
        spark,
        [("a", "x", 1), ("a", "y", 1), ("a", "z", 8), ("a", "t", 9),
         ("b", "x", 1), ("b", "y", 2), ("b", "z", 8)],
    )  # fmt: skip
    got = suppress(table, ("r", "c"), "n", [Line(("r",))], min_cell=5, max_rounds=MAX_ROUNDS)
    assert suppressed_cells(got) == {("a", "x"), ("a", "y"), ("a", "z"), ("b", "x"), ("b", "y")}


def test_secondary_suppression_iterates_over_rows_and_columns_to_a_fixpoint(spark: SparkSession):
    #      x   y   z
    # a    2  10  20      2 is primary: row a suppresses 10, column x 30 (round 1); then column y and
    # b   30  15  40      row b each hold one suppressed cell: both suppress 15 (round 2); round 3: done.
    table = cells(
        spark,
        [("a", "x", 2), ("a", "y", 10), ("a", "z", 20), ("b", "x", 30), ("b", "y", 15), ("b", "z", 40)],
    )
    got = suppress(table, ("r", "c"), "n", ROWS_AND_COLUMNS, min_cell=5, max_rounds=MAX_ROUNDS)
    assert suppressed_cells(got) == {("a", "x"), ("a", "y"), ("b", "y"), ("b", "x")}
    with pytest.raises(SuppressionError, match=r"did not converge in 1 rounds: still changing in regions"):
        suppress(table, ("r", "c"), "n", ROWS_AND_COLUMNS, min_cell=5, max_rounds=1, table="regions")


def test_off_diagonal_lines_protect_the_outflow(spark: SparkSession):
    # Region a: 6 stay, 3 leave to b, 40 to c. The row alone suppresses 6 (its smallest visible cell), but
    # the outflow (43, published by the region balance) minus 40 would give the 3: the off-diagonal line
    # suppresses 40 too.
    table = cells(spark, [("a", "a", 6), ("a", "b", 3), ("a", "c", 40), ("b", "b", 50), ("c", "c", 60)])
    rows = suppress(table, ("r", "c"), "n", [Line(("r",))], min_cell=5, max_rounds=MAX_ROUNDS)
    assert suppressed_cells(rows) == {("a", "a"), ("a", "b")}
    off_diagonal = [Line(("r",)), Line(("r",), where="r != c", name="outflow")]
    got = suppress(table, ("r", "c"), "n", off_diagonal, min_cell=5, max_rounds=MAX_ROUNDS)
    assert suppressed_cells(got) == {("a", "a"), ("a", "b"), ("a", "c")}


# A 4 x 4 table of moves between regions (diagonal: staying), with its row and column totals and their
# off-diagonal parts published.
REGIONS = ["r1", "r2", "r3", "r4"]
MOVES = [
    [40, 3, 12, 9],
    [7, 55, 1, 14],
    [16, 8, 62, 2],
    [11, 21, 6, 48],
]
REGION_TABLE_LINES = [
    Line(("r",)),
    Line(("c",)),
    Line(("r",), where="r != c", name="outflow"),
    Line(("c",), where="r != c", name="inflow"),
]
TABLE_LINES: dict[str, LineOf] = {
    "from": lambda k: k[0],
    "to": lambda k: k[1],
    "outflow": lambda k: k[0] if k[0] != k[1] else None,
    "inflow": lambda k: k[1] if k[0] != k[1] else None,
}


def test_an_attack_solving_every_line_total_recovers_a_cell_of_primary_suppression_but_none_after_publish(
    spark: SparkSession,
):
    rows = [(a, b, MOVES[i][j]) for i, a in enumerate(REGIONS) for j, b in enumerate(REGIONS)]
    true = {(a, b): n for a, b, n in rows}
    primary = {k: (n, 0 < n < MIN_CELL) for k, n in true.items()}
    # Every line total known (none is under min_cell): r1 -> r2 (3) is alone in its suppressed row.
    exposed = recovered(lp_ranges(primary, TABLE_LINES, lambda name, line: True))
    assert ("r1", "r2") in exposed and exposed[("r1", "r2")] == pytest.approx((3, 3))

    got = suppress(cells(spark, rows), ("r", "c"), "n", REGION_TABLE_LINES, MIN_CELL, MAX_ROUNDS)
    hidden = suppressed_cells(got)
    assert {k for k, (_, h) in primary.items() if h} < hidden
    ranges = lp_ranges({k: (n, k in hidden) for k, n in true.items()}, TABLE_LINES, lambda name, line: True)
    assert set(ranges) == hidden
    assert not recovered(ranges), recovered(ranges)


# --------------------------------------------------------------------------------- publish, every table

TRANSITIONS = (
    "seeker_id string, kind string, from_rome string, from_region string, to_rome string, to_region string, "
    "move_date date, days_to_move int, via_offer boolean"
)
Q1, Q2 = date(2022, 1, 1), date(2022, 4, 1)
# (from_rome, from_region, to_rome, to_region, period, moves, hires, hires via an offer)
FLOWS = [
    ("A1101", "11", "A1101", "11", Q1, 12, 9, 6),  # 3 reorientations: the split is suppressed
    ("A1101", "11", "A1203", "84", Q1, 3, 3, 0),  # primary
    ("A1101", "11", "K2204", "93", Q1, 20, 20, 2),  # 2 hires via an offer: the share is suppressed
    ("A1203", "84", "A1203", "84", Q1, 15, 15, 8),
    ("A1203", "84", "A1101", "11", Q1, 8, 8, 0),
    ("K2204", "93", "K2204", "93", Q1, 30, 25, 10),
    ("K2204", "93", "A1101", "11", Q1, 1, 1, 1),  # primary
    ("K2204", "93", "A1203", "84", Q1, 6, 6, 0),
    ("A1101", "11", "A1101", "11", Q2, 7, 7, 0),
    ("A1101", "11", "A1203", "84", Q2, 9, 9, 5),
    ("A1203", "84", "A1101", "11", Q2, 2, 2, 0),  # primary
    ("A1203", "84", "A1203", "84", Q2, 10, 10, 5),
    ("A1203", "84", "K2204", "93", Q2, 6, 6, 6),
]
ROMES, MARKET_REGIONS = ("A1101", "A1203", "K2204"), ("11", "84", "93")
MONTHS = [date(2021, 12, 1)] + [date(2022, m, 1) for m in range(1, 7)]
# the regional stock of each occupation (small ones: primary suppression) and a few more rows
STOCK = {("A1101", "11"): 40, ("A1101", "84"): 3, ("A1101", "93"): 12, ("A1203", "11"): 9,
         ("A1203", "84"): 50, ("A1203", "93"): 2, ("K2204", "11"): 6, ("K2204", "84"): 7,
         ("K2204", "93"): 60}  # fmt: skip
MARKET = (
    "rome string, code_region string, month date, seekers_stock long, registrations long, "
    "exits_to_work long, offers_published long, positions long, hires long, tension double, "
    "registrations_rolling long, "
    "exits_to_work_rolling long, offers_published_rolling long, positions_rolling long, hires_rolling long, "
    "seekers_stock_avg_rolling double, tension_rolling double, rolling_months int"
)
PEOPLE = {  # published table -> its counts of people, and counts derived from them
    "published_flows": ("moves", "hires", "reorientations", "seekers_at_origin"),
    "published_flows_region": ("moves", "hires", "reorientations", "seekers_at_origin"),
    "published_flows_occupation": ("moves", "hires", "reorientations", "seekers_at_origin"),
    "published_flows_grand_domaine": ("moves", "hires", "reorientations", "seekers_at_origin"),
    "published_region_balance": ("inflow", "outflow", "internal"),
    "published_market": ("seekers_stock", "registrations", "exits_to_work", "hires"),
    "published_market_national": ("seekers_stock", "registrations", "exits_to_work", "hires"),
    "published_occupation_mobility": ("movers", "changers"),
}
DERIVED = {
    "published_flows": ("round(share_via_offers * hires)", "hires - round(share_via_offers * hires)",
                        "round(try_divide(moves, rate))", "round(try_divide(dest_offers, dest_tension))"),
    "published_occupation_mobility": ("movers - changers",),
}  # fmt: skip
for _table in ("published_flows_region", "published_flows_occupation", "published_flows_grand_domaine"):
    DERIVED[_table] = DERIVED["published_flows"]


def transitions(spark: SparkSession) -> DataFrame:
    rows = []
    for from_rome, from_region, to_rome, to_region, period, n, hires, via in FLOWS:
        for i in range(n):
            kind = "hire" if i < hires else "reorientation"
            day = date(period.year, period.month + 1, 1 + i % 28)
            rows.append((f"s{len(rows)}", kind, from_rome, from_region, to_rome, to_region, day, 10 + i,
                         kind == "hire" and i < via))  # fmt: skip
    return spark.createDataFrame(rows, TRANSITIONS)


def market_rows(spark: SparkSession) -> DataFrame:
    rows = []
    for i, month in enumerate(MONTHS):
        for (rome, region), stock in STOCK.items():
            offers = 2 + i % 3
            rows.append((rome, region, month, stock + i % 2, i % 4, (i + len(rome)) % 3, offers, offers + 1,
                         i % 2 * 6, offers / (stock + i % 2), 1, 1, 1, 1, 1, 1.0, 0.1, 1))  # fmt: skip
    return spark.createDataFrame(rows, MARKET)


def local(spark: SparkSession, df: DataFrame) -> DataFrame:
    """Computed once into a local frame."""
    return spark.createDataFrame(df.collect(), df.schema)


@pytest.fixture(scope="module")
def gold(spark: SparkSession) -> dict[str, DataFrame]:
    moves, market = transitions(spark), market_rows(spark)
    counts = ["seekers_stock", "registrations", "exits_to_work", "offers_published", "positions", "hires"]
    national = market.groupBy("rome", "month").agg(*(F.sum(c).alias(c) for c in counts))
    national = national.withColumn("tension", F.col("offers_published") / F.col("seekers_stock"))
    fine = local(spark, flows(moves, market))
    return {
        "flows": fine,
        "flows_region": local(spark, region_flows(moves, market)),
        "flows_occupation": local(spark, occupation_flows(moves, market)),
        "flows_grand_domaine": local(spark, grand_domaine_flows(moves, market)),
        "region_balance": local(spark, region_balance(fine)),
        "market": market,
        "market_national": local(spark, national),
        "occupation_mobility": local(spark, occupation_mobility(fine, top=2)),
    }


@pytest.fixture(scope="module")
def published(spark: SparkSession, gold: dict[str, DataFrame]) -> dict[str, DataFrame]:
    views = publish(gold, min_cell=MIN_CELL, max_rounds=MAX_ROUNDS)
    return {name: local(spark, df) for name, df in views.items()}


def test_publish_returns_every_published_table_with_its_flags(
    gold: dict[str, DataFrame], published: dict[str, DataFrame]
):
    assert list(published) == [f"published_{name}" for name in gold]
    for name, df in published.items():
        source = gold[name.removeprefix("published_")]
        assert df.count() == source.count(), name
        assert df.columns[-2:] == ["suppressed", "suppressed_columns"], name
    assert published["published_flows"].columns[:-2] == gold["flows"].columns
    assert published["published_market"].columns[:-2] == [
        "rome",
        "code_region",
        "month",
        "seekers_stock",
        "registrations",
        "exits_to_work",
        "offers_published",
        "positions",
        "hires",
        "tension",
    ]  # fmt: skip  (the rolling columns are dropped)
    assert "seekers_stock_avg_rolling" not in published["published_market_national"].columns


def test_no_published_count_of_people_is_under_min_cell(published: dict[str, DataFrame]):
    for name, df in published.items():
        counts = (*PEOPLE[name], *DERIVED.get(name, ()))
        small = df.select(
            *(F.count(F.when(F.expr(f"{c} > 0 AND {c} < {MIN_CELL}"), 1)).alias(c) for c in counts)
        )
        assert small.first().asDict() == dict.fromkeys(counts, 0), name
    destinations = published["published_occupation_mobility"].select(F.explode("top_destinations.moves"))
    assert destinations.where(f"col < {MIN_CELL}").count() == 0


def test_a_suppressed_flow_nulls_every_count_and_says_so(published: dict[str, DataFrame]):
    row = published["published_flows"].where(
        "from_rome = 'A1101' AND to_region = '84' AND period = '2022-Q1'"
    )
    got = row.first()
    counts = ("moves", "hires", "reorientations", "rate", "median_days_to_move", "share_via_offers")
    assert [got[c] for c in counts] == [None] * len(counts)
    assert got["suppressed"] and set(counts) <= set(got["suppressed_columns"])
    assert (got["dest_offers"], got["dest_positions"]) != (None, None)  # offers are not people


def test_small_hires_or_reorientations_or_offer_hires_suppress_the_split_not_the_row(
    published: dict[str, DataFrame],
):
    rows = {
        (r["from_rome"], r["to_rome"], r["period"]): r
        for r in published["published_flows"].where("from_region = '11'").collect()
    }
    split = rows[("A1101", "A1101", "2022-Q1")]  # 9 hires, 3 reorientations
    assert (split["hires"], split["reorientations"], split["share_via_offers"]) == (None, None, None)
    assert {"hires", "reorientations", "share_via_offers"} <= set(split["suppressed_columns"])
    offers = rows[("A1101", "K2204", "2022-Q1")]  # 20 hires, 2 through an offer
    assert offers["share_via_offers"] is None and "share_via_offers" in offers["suppressed_columns"]
    for row in rows.values():
        assert row["suppressed"] == bool(row["suppressed_columns"])
        for column in row["suppressed_columns"]:
            assert row[column] is None


def test_suppression_is_consistent_across_linked_tables(
    gold: dict[str, DataFrame], published: dict[str, DataFrame]
):
    fine = published["published_flows"].collect()
    regions = {
        (r["from_region"], r["to_region"], r["period"]): r
        for r in published["published_flows_region"].collect()
    }
    # A suppressed region pair has suppressed flows rows (else they would add up to it), two at least.
    for (a, b, period), row in regions.items():
        members = [r for r in fine if (r["from_region"], r["to_region"], r["period"]) == (a, b, period)]
        hidden = sum(r["moves"] is None for r in members)
        if row["moves"] is None:
            assert hidden >= 1, (a, b, period)
        assert hidden != 1 or row["moves"] is None, (a, b, period)
    # The balance's internal is the diagonal of the published regions; inflow, outflow and net go together.
    for r in published["published_region_balance"].collect():
        diagonal = regions.get((r["region"], r["region"], r["period"]))
        assert r["internal"] == (diagonal["moves"] if diagonal else 0)
        assert (r["inflow"] is None) == (r["outflow"] is None) == (r["net"] is None)
    # The stock a flow row shows at its origin is the market's at the end of the month before the period:
    # withheld when that market cell is.
    market = {
        (r["rome"], r["code_region"], r["month"]): r["seekers_stock"]
        for r in published["published_market"].collect()
    }
    for r in fine:
        start = r["period_start"]
        before = date(start.year, start.month - 1, 1) if start.month > 1 else date(start.year - 1, 12, 1)
        if market[(r["from_rome"], r["from_region"], before)] is None:
            assert r["seekers_at_origin"] is None and "seekers_at_origin" in r["suppressed_columns"]
        else:
            assert r["seekers_at_origin"] == market[(r["from_rome"], r["from_region"], before)]


def test_market_counts_are_suppressed_with_their_lines_and_tension_with_the_stock(
    published: dict[str, DataFrame],
):
    market = published["published_market"].collect()
    for r in market:
        assert (r["tension"] is None) == (r["seekers_stock"] is None) or r["seekers_stock"] == 0
    by_line = defaultdict(list)
    for r in market:
        by_line[(r["rome"], r["month"])].append(r["seekers_stock"])
    national = {
        (r["rome"], r["month"]): r["seekers_stock"] for r in published["published_market_national"].collect()
    }
    for line, values in by_line.items():
        # total published (the national cell) and one regional cell suppressed: impossible
        assert not (national[line] is not None and sum(v is None for v in values) == 1), line


def test_occupation_mobility_hides_small_totals_and_cuts_the_destinations(
    gold: dict[str, DataFrame], published: dict[str, DataFrame]
):
    rows = {r["from_rome"]: r for r in published["published_occupation_mobility"].collect()}
    true = {r["from_rome"]: r for r in gold["occupation_mobility"].collect()}
    for rome, row in rows.items():
        if row["movers"] is None:
            assert {"movers", "changers", "share_changing"} <= set(row["suppressed_columns"])
            assert all(d["share"] is None for d in row["top_destinations"])
        shown = [d["to_rome"] for d in row["top_destinations"]]
        assert shown == [d["to_rome"] for d in true[rome]["top_destinations"]][: len(shown)]
        assert ("top_destinations" in row["suppressed_columns"]) == (
            len(shown) < len(true[rome]["top_destinations"])
        )
    # A1203: 15 + 10 stay, 8 + 2 to A1101, 6 to K2204 (a pair under 5 nowhere): all published.
    assert rows["A1203"]["movers"] == 41


def test_no_suppressed_cell_of_a_published_flows_table_can_be_recovered_by_linear_programming(
    gold: dict[str, DataFrame], published: dict[str, DataFrame]
):
    assert not attack_flows_region(
        gold["flows_region"], published["published_flows_region"], published["published_region_balance"]
    )
    assert not attack_flows_occupation(gold["flows_occupation"], published["published_flows_occupation"])
    domains = {"from": lambda k: k[0], "to": lambda k: k[1]}
    keys = ("from_grand_domaine", "to_grand_domaine", "period_start")
    assert not attack(gold["flows_grand_domaine"], published["published_flows_grand_domaine"], keys, domains)
    assert not attack_flows(
        gold["flows"],
        published["published_flows"],
        published["published_flows_region"],
        published["published_flows_occupation"],
    )


def test_publish_needs_every_gold_table(gold: dict[str, DataFrame]):
    with pytest.raises(ValueError, match="missing: market_national"):
        publish({k: v for k, v in gold.items() if k != "market_national"}, min_cell=5, max_rounds=MAX_ROUNDS)


def test_a_model_without_any_cell_solves_and_hides_nothing():
    """Gold tables without a move nor a market row (a lake of offers only) publish empty views."""
    import pandas as pd

    from mobility.publish.model import Cells, Model

    empty = pd.DataFrame({"k": pd.Series([], dtype=object), "n": pd.Series([], dtype="float64")})
    model = Model(MIN_CELL)
    cells = Cells(empty, "t", ("k",), "n")
    model.add(cells, "t", "n")
    model.line("all", cells, ("k",))
    model.solve(MAX_ROUNDS)
    assert model.hidden("t", "n", pd.DataFrame({"k": ["a"]}), ("k",)).tolist() == [False]
    assert model.suppressed() == []

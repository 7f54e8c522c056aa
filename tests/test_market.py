"""The market tables on a tiny hand-built month range (January to April 2022): stock at month end by
category and occupation sought, overlapping spells, registrations, exits to work, offers by place level
(commune, département, region, national, abroad), hires, tension (null without seekers), rolling values,
Corsica and overseas rows."""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from mobility.gold.market import market, market_facts, market_table
from tests.test_transitions import change, frames, hire, offer, spell

SPELL_ROWS = [
    # s1: stock in A1101 in January, in K2204 (changed 20 Feb) in February, back to work on 15 March
    spell("s1", "2022-01-10", "2022-03-15", rome="A1101", category=1, reason="01"),
    # s2: category 4, out of the stock; its registration counts
    spell("s2", "2022-01-05", rome="A1101", category=4),
    # s3: ends on the last day of February (the day of deregistration): not in February's stock
    spell("s3", "2022-02-01", "2022-02-28", rome="A1101", category=2, reason="02"),
    # s4: two overlapping spells: the later one ends the earlier for the stock
    spell("s4", "2022-01-03", "2022-04-30", rome="A1101", category=1, reason="05"),
    spell("s4", "2022-02-10", rome="A1101", category=1),
    # s5: Corsica, category 3
    spell("s5", "2022-03-05", rome="A1101", commune="2A004", category=3),
    # s6: Guadeloupe, back to work on 2 April
    spell("s6", "2022-01-20", "2022-04-02", rome="K2204", commune="97105", reason="01"),
]
CHANGE_ROWS = [change("s1", "2022-02-20", "K2204")]
HIRE_ROWS = [
    hire("s1", "2022-03-16", "A1203", "69123"),
    hire("nobody", "2022-04-10", "K2204", "97105"),  # without spell: still a hire of the market
]
OFFER_ROWS = [
    offer("O1", "2022-02-03", "A1203", commune="69123", positions=2),  # Lyon, where no one seeks A1203
    offer("O2", "2022-01-15", "A1101", commune="75056"),
    offer("O3", "2022-01-20", "A1101", commune=None, level="region", region="11"),
    offer("O4", "2022-01-25", "A1101", commune=None, level="national"),
    offer("O5", "2022-01-26", "A1101", commune=None, level="abroad"),
    offer("O6", "2022-03-10", "A1101", commune=None, level="departement", dep="2A", region="94"),
]
MONTHLY = (
    "seekers_stock",
    "registrations",
    "exits_to_work",
    "offers_published",
    "positions",
    "hires",
    "tension",
)
ROW = (
    "rome string, {area} month date, seekers_stock long, registrations long, exits_to_work long, "
    "offers_published long, positions long, hires long, tension double"
)


def m(month: int) -> date:
    return date(2022, month, 1)


@pytest.fixture(scope="module")
def facts(spark: SparkSession) -> DataFrame:
    """The monthly facts, computed once into a local frame (Spark jobs cost seconds even on tiny data)."""
    computed = market_facts(*frames(spark, SPELL_ROWS, CHANGE_ROWS, HIRE_ROWS, OFFER_ROWS))
    return spark.createDataFrame(computed.collect(), computed.schema)


def table(spark: SparkSession, facts: DataFrame, geo: str, **kwargs) -> DataFrame:
    computed = market_table(facts, geo=geo, **kwargs)
    return spark.createDataFrame(computed.collect(), computed.schema)


@pytest.fixture(scope="module")
def by_region(spark: SparkSession, facts: DataFrame) -> DataFrame:
    return table(spark, facts, "region")


@pytest.fixture(scope="module")
def by_departement(spark: SparkSession, facts: DataFrame) -> DataFrame:
    return table(spark, facts, "departement")


@pytest.fixture(scope="module")
def national(spark: SparkSession, facts: DataFrame) -> DataFrame:
    return table(spark, facts, "national")


def cell(table: DataFrame, rome: str, area: str | None, month: int) -> dict:
    area_column = next((c for c in ("code_region", "code_departement") if c in table.columns), None)
    where = (F.col("rome") == rome) & (F.col("month") == F.lit(m(month)))
    if area_column:
        where &= F.col(area_column) == area
    rows = table.where(where).collect()
    assert len(rows) <= 1
    return rows[0].asDict() if rows else {}


def test_region_market_month_by_month(spark: SparkSession, by_region: DataFrame):
    expected = [
        # rome, region, month, stock, registrations, exits to work, offers, positions, hires, tension
        ("A1101", "11", m(1), 2, 3, 0, 2, 2, 0, 1.0),  # O2 (commune) and O3 (region level); not O4, O5
        ("A1101", "11", m(2), 1, 2, 0, 0, 0, 0, 0.0),
        ("A1101", "11", m(3), 1, 0, 0, 0, 0, 0, 0.0),
        ("A1101", "11", m(4), 1, 0, 0, 0, 0, 0, 0.0),
        ("K2204", "11", m(2), 1, 0, 0, 0, 0, 0, 0.0),
        ("K2204", "11", m(3), 0, 0, 1, 0, 0, 0, None),
        ("K2204", "11", m(4), 0, 0, 0, 0, 0, 0, None),  # kept: its rolling values are not zero
        ("A1203", "84", m(2), 0, 0, 0, 1, 2, 0, None),  # offers and no seeker: tension null
        ("A1203", "84", m(3), 0, 0, 0, 0, 0, 1, None),
        ("A1203", "84", m(4), 0, 0, 0, 0, 0, 0, None),
        ("A1101", "94", m(3), 1, 1, 0, 1, 1, 0, 1.0),  # Corsica (2A), a département-level offer
        ("A1101", "94", m(4), 1, 0, 0, 0, 0, 0, 0.0),
        ("K2204", "01", m(1), 1, 1, 0, 0, 0, 0, 0.0),  # Guadeloupe (971)
        ("K2204", "01", m(2), 1, 0, 0, 0, 0, 0, 0.0),
        ("K2204", "01", m(3), 1, 0, 0, 0, 0, 0, 0.0),
        ("K2204", "01", m(4), 0, 0, 1, 0, 0, 1, None),
    ]
    got = by_region.select("rome", "code_region", "month", *MONTHLY)
    assertDataFrameEqual(got, spark.createDataFrame(expected, ROW.format(area="code_region string,")))


def test_a_month_with_offers_and_no_seekers_has_a_null_tension(by_region: DataFrame):
    row = cell(by_region, "A1203", "84", 2)
    assert (row["offers_published"], row["seekers_stock"], row["tension"]) == (1, 0, None)


def test_the_stock_follows_the_occupation_sought_and_counts_categories_1_to_3_only(by_region: DataFrame):
    assert cell(by_region, "A1101", "11", 1)["seekers_stock"] == 2  # s1 and s4; s2 is category 4
    assert cell(by_region, "K2204", "11", 2)["seekers_stock"] == 1  # s1 after its change
    assert cell(by_region, "A1101", "94", 3)["seekers_stock"] == 1  # s5, category 3


def test_a_seeker_deregistered_on_the_last_day_of_a_month_is_out_of_its_stock(by_region: DataFrame):
    assert cell(by_region, "A1101", "11", 2)["seekers_stock"] == 1  # s4's later spell; not s3


def test_overlapping_spells_count_a_seeker_once(by_region: DataFrame):
    # s4's first spell runs to April but the second, from 10 February, replaces it.
    assert [cell(by_region, "A1101", "11", month)["seekers_stock"] for month in (2, 3, 4)] == [1, 1, 1]


def test_registrations_count_every_category_and_exits_to_work_the_occupation_at_the_end(by_region: DataFrame):
    assert cell(by_region, "A1101", "11", 1)["registrations"] == 3  # s1, s2 (category 4), s4
    assert cell(by_region, "K2204", "11", 3)["exits_to_work"] == 1  # s1 registered in A1101, left in K2204
    assert cell(by_region, "A1101", "11", 2)["exits_to_work"] == 0  # s3 left for training


def test_rolling_values_sum_the_window_and_weigh_the_tension_by_stock(by_region: DataFrame):
    row = cell(by_region, "A1101", "11", 4)
    assert row["registrations_rolling"] == 5
    assert (row["offers_published_rolling"], row["positions_rolling"]) == (2, 2)
    assert row["seekers_stock_avg_rolling"] == pytest.approx(5 / 4)
    assert row["tension_rolling"] == pytest.approx(2 / 5)
    assert row["rolling_months"] == 4


def test_the_rolling_window_is_a_setting(spark: SparkSession, facts: DataFrame):
    two = table(spark, facts, "region", rolling_months=2)
    row = cell(two, "A1101", "11", 4)
    assert (row["registrations_rolling"], row["rolling_months"], row["tension_rolling"]) == (0, 2, 0.0)
    assert cell(two, "A1203", "84", 4)["offers_published_rolling"] == 0  # February's offer is out of it


def test_departement_rows_leave_out_region_level_offers(by_departement: DataFrame):
    paris = cell(by_departement, "A1101", "75", 1)
    assert (paris["offers_published"], paris["seekers_stock"], paris["tension"]) == (1, 2, 0.5)
    assert cell(by_departement, "A1101", "2A", 3)["offers_published"] == 1
    assert cell(by_departement, "K2204", "971", 4)["hires"] == 1


def test_national_rows_count_every_offer_including_national_and_abroad(national: DataFrame):
    row = cell(national, "A1101", None, 1)
    assert (row["offers_published"], row["seekers_stock"], row["tension"]) == (4, 2, 2.0)
    assert "code_region" not in national.columns


def test_the_calendar_can_be_set(spark: SparkSession, facts: DataFrame):
    months = table(spark, facts, "region", first_month=date(2022, 2, 1), last_month=date(2022, 3, 31))
    assert sorted({r["month"] for r in months.select("month").collect()}) == [m(2), m(3)]
    # Stock registered before the calendar is carried into its first month; its flows are not counted.
    row = cell(months, "A1101", "11", 2)
    assert (row["seekers_stock"], row["registrations"]) == (1, 2)


FACTS = (
    "rome string, code_region string, code_departement string, month date, stock_delta long, "
    "registrations long, exits_to_work long, offers_published long, positions long, hires long"
)


def test_months_between_facts_carry_the_stock_and_the_rolling_window_counts_months_not_rows(
    spark: SparkSession,
):
    facts = spark.createDataFrame(
        [
            ("A1101", "11", "75", m(1), 2, 2, 0, 0, 0, 0),
            ("A1101", "11", "75", m(5), -1, 0, 1, 0, 0, 0),  # three months without a fact before it
            ("K2204", "11", "75", m(3), 1, 1, 0, 0, 0, 0),  # first fact after the calendar's first month
        ],
        FACTS,
    )
    got = table(spark, facts, "region", rolling_months=3).select(
        "rome", "month", "seekers_stock", "registrations", "exits_to_work", "registrations_rolling",
        "exits_to_work_rolling", "seekers_stock_avg_rolling", "rolling_months",
    )  # fmt: skip
    expected = [
        ("A1101", m(1), 2, 2, 0, 2, 0, 2 / 1, 1),
        ("A1101", m(2), 2, 0, 0, 2, 0, 4 / 2, 2),
        ("A1101", m(3), 2, 0, 0, 2, 0, 6 / 3, 3),
        ("A1101", m(4), 2, 0, 0, 0, 0, 6 / 3, 3),  # January's registrations out of the window
        ("A1101", m(5), 1, 0, 1, 0, 1, 5 / 3, 3),
        # no row before its first fact; the months before it count in the window all the same
        ("K2204", m(3), 1, 1, 0, 1, 0, 1 / 3, 3),
        ("K2204", m(4), 1, 0, 0, 1, 0, 2 / 3, 3),
        ("K2204", m(5), 1, 0, 0, 1, 0, 3 / 3, 3),
    ]
    schema = (
        "rome string, month date, seekers_stock long, registrations long, exits_to_work long, "
        "registrations_rolling long, exits_to_work_rolling long, seekers_stock_avg_rolling double, "
        "rolling_months int"
    )
    assertDataFrameEqual(got, spark.createDataFrame(expected, schema))


def test_unknown_geo_is_refused(spark: SparkSession, facts: DataFrame):
    with pytest.raises(ValueError, match="geo"):
        market(*frames(spark, SPELL_ROWS), geo="commune")
    with pytest.raises(ValueError, match="rolling_months"):
        market_table(facts, rolling_months=0)

"""The report's figures on small explicit tables: totals of published cells only, passes between
different occupations with their official link, tension over a window, the quarantine summary without
records, small segments withheld, numbers in French and English."""

from __future__ import annotations

from datetime import date

import pandas as pd
import plotly.graph_objects as go
import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from mobility import figures
from mobility.recommend import explain
from mobility.recommend.card import withhold_small
from mobility.report.build import has_data
from mobility.report.text import Text

FLOWS_REGION = (
    "from_region string, to_region string, period string, period_start date, moves long, "
    "hires long, reorientations long, median_days_to_move int"
)


@pytest.fixture(scope="module")
def flows_region(spark):
    q1, q2 = date(2022, 1, 1), date(2022, 4, 1)
    return spark.createDataFrame(
        [
            ("11", "11", "2022-Q1", q1, 100, 80, 20, 120),
            ("11", "84", "2022-Q1", q1, None, None, None, None),  # suppressed: counts for nothing
            ("84", "11", "2022-Q1", q1, 10, 10, 0, 200),
            ("11", "11", "2022-Q2", q2, 50, 40, 10, 100),
            ("11", "84", "2022-Q2", q2, 7, None, None, 90),
        ],
        FLOWS_REGION,
    )


def test_region_flows_sum_the_published_cells_of_every_period_and_count_the_withheld(spark, flows_region):
    region = spark.createDataFrame(
        [("11", "Île-de-France", 48.7, 2.5, 12000.0), ("84", "Auvergne-Rhône-Alpes", 45.5, 4.5, 70000.0)],
        "code_region string, name string, lat double, lng double, area_km2 double",
    )
    got = figures.region_flows(flows_region, region).select(
        "from_region", "to_region", "moves", "cells_suppressed", "to_name"
    )
    assertDataFrameEqual(
        got,
        [
            Row(from_region="11", to_region="11", moves=150, cells_suppressed=0, to_name="Île-de-France"),
            Row(
                from_region="11", to_region="84", moves=7, cells_suppressed=1, to_name="Auvergne-Rhône-Alpes"
            ),
            Row(from_region="84", to_region="11", moves=10, cells_suppressed=0, to_name="Île-de-France"),
        ],
    )


def test_key_figures_are_totals_of_published_cells(spark, flows_region):
    mobility = spark.createDataFrame(
        [("A1101", 40, 10), ("A1202", None, None), ("B1101", 60, 30)],
        "from_rome string, movers long, changers long",
    )
    market = spark.createDataFrame(
        [
            ("A1101", date(2022, 6, 1), 100, 5),
            ("A1202", date(2022, 6, 1), None, 3),
            ("A1101", date(2022, 5, 1), 90, 4),
        ],
        "rome string, month date, seekers_stock long, offers_published long",
    )
    row = figures.key_figures(flows_region, mobility, market).first()
    assert (row["moves"], row["hires"], row["reorientations"]) == (167, 130, 30)
    assert row["share_changing_region"] == pytest.approx(17 / 167)
    assert row["median_days_to_move"] == pytest.approx((100 * 120 + 10 * 200 + 50 * 100 + 7 * 90) / 167)
    assert row["share_changing_occupation"] == pytest.approx(40 / 100)
    assert (row["last_month"], row["seekers_stock"], row["offers_published"]) == (date(2022, 6, 1), 100, 5)
    assert (row["cells_published"], row["cells_suppressed"]) == (4, 1)
    assert (row["first_period"], row["last_period"]) == ("2022-Q1", "2022-Q2")


def test_occupation_passes_are_moves_to_another_occupation_with_labels_and_official_link(spark):
    mobility = spark.createDataFrame(
        [
            ("A1101", [("A1101", 50, 0.5), ("A1202", 30, 0.3), ("B1101", None, None)]),
            ("B1101", [("A1101", 40, 0.4), ("B1101", 60, 0.6)]),
        ],
        "from_rome string, top_destinations array<struct<to_rome:string, moves:long, share:double>>",
    )
    rome = spark.createDataFrame(
        [
            ("A1101", "v3", "Conduite d'engins agricoles"),
            ("A1202", "v3", "Entretien des espaces naturels"),
            ("B1101", "v3", "Création en arts plastiques"),
            ("A1101", "v4", "un autre sens en v4"),
        ],
        "code_rome string, version string, label string",
    )
    links = spark.createDataFrame(
        [
            ("v3", "A1101", "A1202", "proche"),
            ("v3", "A1101", "A1202", "proche"),
            ("v4", "B1101", "A1101", "x"),
        ],
        "version string, code_rome string, code_rome_cible string, link_type string",
    )
    got = figures.occupation_passes(mobility, rome, links, top=5)
    assertDataFrameEqual(
        got.select("from_rome", "to_rome", "moves", "rome_link", "to_label"),
        [
            Row(
                from_rome="B1101",
                to_rome="A1101",
                moves=40,
                rome_link=None,
                to_label="Conduite d'engins agricoles",
            ),
            Row(
                from_rome="A1101",
                to_rome="A1202",
                moves=30,
                rome_link="proche",
                to_label="Entretien des espaces naturels",
            ),
        ],
        checkRowOrder=True,
    )


def test_tense_occupations_rank_the_window_over_months_whose_stock_is_published(spark):
    rows = []
    for m in range(1, 13):
        month = date(2022, m, 1)
        rows += [
            ("A1101", month, 100, 10),
            ("B1101", month, 100, 30 if m > 6 else 0),
            ("C1101", month, 2, 50),
        ]
    rows.append(("A1101", date(2022, 12, 1), None, 999))  # a suppressed stock: its month is left out
    market = spark.createDataFrame(
        [r for r in rows if not (r[0] == "A1101" and r[1] == date(2022, 12, 1) and r[2] == 100)],
        "rome string, month date, seekers_stock long, offers_published long",
    )
    rome = spark.createDataFrame(
        [("A1101", "v3", "a"), ("B1101", "v3", "b"), ("C1101", "v3", "c")],
        "code_rome string, version string, label string",
    )
    got = figures.tense_occupations(market, rome, months=6, top=5, min_stock=20).collect()
    assert [r["rome"] for r in got] == ["B1101", "A1101"]  # C1101: too few seekers to rank
    assert got[0]["tension"] == pytest.approx(0.3)
    assert got[1]["tension"] == pytest.approx(0.1) and len(got[1]["series"]) == 5


def test_the_quarantine_summary_counts_records_and_never_shows_one(spark):
    quarantine = spark.createDataFrame(
        [
            ("de", "bad_date", "DATINS '2021-13-01'", "raw;line", "de.csv"),
            ("de", "bad_date", "DATINS 'x'", "raw;line2", "de2.csv"),
            ("hires", "unknown_seeker", "no spell", "raw3", "hires.csv"),
        ],
        "table string, reason string, message string, raw string, source_file string",
    )
    got = figures.quarantine_reasons(quarantine)
    assert got.columns == ["table", "reason", "records", "files"]
    assertDataFrameEqual(
        got,
        [
            Row(table="de", reason="bad_date", records=2, files=2),
            Row(table="hires", reason="unknown_seeker", records=1, files=1),
        ],
    )


def test_small_segments_are_withheld_from_the_card_with_a_second_one_that_would_give_them_back():
    segments = pd.DataFrame(
        {
            "segment": ["age_band", "age_band", "age_band", "sex", "sex"],
            "value": ["<26", "26-49", "50+", "1", "2"],
            "examples": [3, 100, 40, 60, 83],
            "hit_at_10": [1.0, 0.8, 0.7, 0.75, 0.78],
        }
    )
    got = withhold_small(segments, 5)
    # <26 is small; 50+ goes with it (the age bands add up to the 143 examples shown in total)
    assert got["examples"].isna().tolist() == [True, False, True, False, False]
    assert got["hit_at_10"].isna().tolist() == [True, False, True, False, False]
    assert got["value"].tolist() == ["<26", "26-49", "50+", "1", "2"]


def test_recommendations_for_an_origin_count_seekers_and_take_their_reasons_from_published_views(spark):
    day = date(2022, 12, 31)
    recs = spark.createDataFrame(
        [(day, f"s{i}", 1, "A1101", "11", "A1202", "11", 0.5, "proche", 0.0, 7) for i in range(6)]
        + [(day, "s0", 2, "A1101", "11", "B1101", "84", 0.1, "none", 400.0, 7)],
        "run_date date, seeker_id string, rank int, from_rome string, from_region string, to_rome string, "
        "to_region string, score double, rome_link string, distance_km double, model_version int",
    )
    flows = spark.createDataFrame(
        [
            ("A1101", "11", "A1202", "11", date(2022, 7, 1), 6),
            ("A1101", "11", "A1202", "11", date(2022, 10, 1), None),  # withheld: counts for nothing
            ("A1101", "11", "A1202", "11", date(2023, 1, 1), 9),  # after the day
            ("A1101", "11", "B1101", "84", date(2022, 7, 1), None),
        ],
        "from_rome string, from_region string, to_rome string, to_region string, "
        "period_start date, hires long",
    )
    market = spark.createDataFrame(
        [
            ("A1202", "11", date(2022, 11, 1), 3, 0.3),
            ("A1202", "11", date(2022, 12, 1), 9, 0.9),  # the day's own month: not yet known on the day
            ("B1101", "84", date(2022, 11, 1), 2, None),  # tension withheld with the stock
        ],
        "rome string, code_region string, month date, offers_published long, tension double",
    )
    rome = spark.createDataFrame(
        [("A1202", "v3", "b"), ("B1101", "v3", "c")], "code_rome string, version string, label string"
    )
    got = explain.for_origin(recs, flows, market, rome, "A1101", "11", day, min_cell=5).collect()
    assert [
        (r["to_rome"], r["seekers"], r["published_hires"], r["dest_offers"], r["dest_tension"]) for r in got
    ] == [
        ("A1202", 6, 6, 3, 0.3),
        ("B1101", None, 0, 2, None),  # one seeker: under the threshold
    ]
    assert "seeker_id" not in got[0].asDict() and got[0]["to_label"] == "b"


def test_numbers_read_in_french_and_english_and_small_counts_are_hidden():
    fr, en = Text("fr", 5), Text("en", 5)
    assert (fr.int(12345), en.int(12345)) == ("12\u202f345", "12,345")
    assert (fr.pct(0.256), en.pct(0.256)) == ("25,6\u202f%", "25.6%")
    assert (fr.count(3), fr.count(0), fr.count(5)) == ("< 5", "0", "5")
    assert fr.metric("ndcg_at_10") == "NDCG@10" and en.metric("hit_at_5") == "hit@5"
    assert fr.segment("sex", "2", {}) == ("Sexe", "femmes")
    with pytest.raises(ValueError, match="unknown language"):
        Text("de", 5)


def test_a_chart_with_nothing_to_draw_is_recognised():
    assert not has_data(go.Figure(go.Heatmap(z=[[None, None]], x=["a", "b"], y=["c"])))
    assert not has_data(go.Figure(go.Sankey(link={"source": [], "target": [], "value": []})))
    assert has_data(go.Figure(go.Bar(x=[1], y=["a"])))

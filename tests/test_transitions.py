"""Transitions on tiny hand-built silver tables: which spell a hire belongs to (grace period, overlapping
spells, no spell), the origin occupation (a change on the hire day), reorientations, offers, mobility kinds,
ROME links, places in Corsica and overseas, and distances (also on the real reference centroids).

The builders here (silver rows with defaults, small reference tables) serve test_market and test_flows too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pytest
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from mobility.gold.transitions import (
    TRANSITION_COLUMNS,
    RefTables,
    Transitions,
    build_transitions,
    occupation_segments,
)
from mobility.lake import Lake

# commune -> (département, region, lat, lng), centroids as in ref.commune
PLACES = {
    "75056": ("75", "11", 48.859819421680356, 2.345606368566849),  # Paris
    "69123": ("69", "84", 45.7541789180852, 4.8428871524748685),  # Lyon
    "13055": ("13", "93", 43.28, 5.38),  # Marseille
    "2A004": ("2A", "94", 41.92274, 8.70583),  # Ajaccio
    "2B033": ("2B", "94", 42.68613, 9.42402),  # Bastia
    "97105": ("971", "01", 15.99916, -61.72939),  # Basse-Terre
    "97209": ("972", "02", 14.64925, -61.06863),  # Fort-de-France
    "97302": ("973", "03", 4.94639, -52.33191),  # Cayenne
    "97411": ("974", "04", -20.94342, 55.4444),  # Saint-Denis
    "97611": ("976", "06", -12.78751, 45.19642),  # Mamoudzou
    "85999": ("85", "52", None, None),  # a commune without a centroid
}
DEPARTEMENTS = {
    "75": ("11", 48.85667, 2.34222),
    "69": ("84", 45.87028, 4.64139),
    "13": ("93", 43.54333, 5.08639),
    "2A": ("94", 41.86361, 8.98806),
    "2B": ("94", 42.39417, 9.20639),
    "971": ("01", 16.265, -61.551),
    "972": ("02", 14.64153, -61.02417),
    "973": ("03", 3.93389, -53.12578),
    "974": ("04", -21.13, 55.53),
    "976": ("06", -12.8275, 45.16624),
    "85": ("52", 46.67472, -1.29778),
}
# v3 fiche of a few ROME 4.0 codes (their official parent)
V4_PARENT = {"M1855": "M1805", "M1805": "M1805", "M1802": "M1802", "M1824": "M1802", "A1101": "A1101"}

SPELLS = (
    "seeker_id string, registration_date date, end_date date, registration_reason string, end_reason string, "
    "category int, code_commune string, code_departement string, code_region string, rome string, "
    "rome_version string, rome_v3 string, appellation string, sex string, education string, birth_year int"
)
CHANGES = "seeker_id string, start_date date, end_date date, rome string, rome_version string, rome_v3 string"
HIRES = (
    "seeker_id string, hire_date date, rome string, rome_version string, rome_v3 string, "
    "code_commune string, code_departement string, code_region string, contract string, "
    "duration_months double, offer_id string"
)
OFFERS = (
    "offer_id string, created_at timestamp, updated_at timestamp, rome string, rome_version string, "
    "rome_v3 string, place_level string, place_label string, code_commune string, code_departement string, "
    "code_region string, lat double, lng double, contract string, positions int, qualification string, "
    "sector string, title string"
)
LINKS = "version string, code_rome string, code_rome_cible string, link_type string, rank int"


def d(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _codes(rome: str, version: str) -> tuple[str, str, str]:
    return rome, version, V4_PARENT.get(rome, rome) if version == "v4" else rome


def spell(
    seeker: str,
    start: str,
    end: str | None = None,
    *,
    rome: str = "A1101",
    version: str = "v3",
    commune: str = "75056",
    category: int = 1,
    reason: str | None = None,
) -> tuple:
    dep, region = PLACES[commune][:2]
    reason = reason if reason is not None else ("01" if end else None)
    return (seeker, d(start), d(end), "11", reason, category, commune, dep, region, *_codes(rome, version),
            None, "1", "NV4", 1985)  # fmt: skip


def change(seeker: str, start: str, rome: str, version: str = "v3", end: str | None = None) -> tuple:
    return (seeker, d(start), d(end), *_codes(rome, version))


def hire(
    seeker: str,
    day: str,
    rome: str = "A1101",
    commune: str = "75056",
    *,
    version: str = "v3",
    offer: str | None = None,
    contract: str = "CDI",
) -> tuple:
    dep, region = PLACES[commune][:2]
    return (seeker, d(day), *_codes(rome, version), commune, dep, region, contract, None, offer)


def offer(
    offer_id: str,
    created: str,
    rome: str = "A1101",
    *,
    version: str = "v3",
    commune: str | None = "75056",
    level: str = "commune",
    dep: str | None = None,
    region: str | None = None,
    positions: int = 1,
) -> tuple:
    if commune:
        dep, region = PLACES[commune][:2]
    created_at = datetime.fromisoformat(created + "T10:00:00")
    return (offer_id, created_at, created_at, *_codes(rome, version), level, None, commune, dep, region, None,
            None, "CDI", positions, None, None, "Poste")  # fmt: skip


def frames(
    spark: SparkSession,
    spells: list[tuple],
    changes: list[tuple] = (),
    hires: list[tuple] = (),
    offers: list[tuple] = (),
) -> tuple[DataFrame, DataFrame, DataFrame, DataFrame]:
    return (
        spark.createDataFrame(list(spells), SPELLS),
        spark.createDataFrame(list(changes), CHANGES),
        spark.createDataFrame(list(hires), HIRES),
        spark.createDataFrame(list(offers), OFFERS),
    )


def small_refs(spark: SparkSession, links: list[tuple] = ()) -> RefTables:
    commune = spark.createDataFrame(
        [(c, dep, reg, lat, lng) for c, (dep, reg, lat, lng) in PLACES.items()],
        "code_commune string, code_departement string, code_region string, lat double, lng double",
    )
    departement = spark.createDataFrame(
        [(dep, reg, lat, lng) for dep, (reg, lat, lng) in DEPARTEMENTS.items()],
        "code_departement string, code_region string, lat double, lng double",
    )
    return RefTables(spark.createDataFrame(list(links), LINKS), commune, departement)


def run(spark: SparkSession, spells, changes=(), hires=(), offers=(), links=(), **kwargs) -> Transitions:
    silver = frames(spark, spells, changes, hires, offers)
    return build_transitions(*silver, small_refs(spark, links), **kwargs)


MOVE = "seeker_id string, kind string, from_rome string, to_rome string, start_date date, move_date date"


# One scenario, computed once (Spark jobs cost seconds even on tiny data): each test reads its own seekers.
LINK_ROWS = [
    ("v3", "A1101", "A1416", "proche", None),
    ("v3", "A1101", "A1416", "evolution", None),  # a job-title level link of another type: proche wins
    ("v3", "A1101", "N4101", "evolution", None),
    ("v3", "M1805", "M1802", "evolution", None),
    ("v4", "M1855", "M1824", "ranked", 1),
    ("v4", "M1855", "A1101", "ranked", 6),
]
# seeker -> (from code, version, to code, version): expected rome_link
LINK_CASES = {
    "same": ("A1101", "v3", "A1101", "v4"),  # a v3 origin and a v4 destination of the same fiche
    "proche": ("A1101", "v3", "A1416", "v3"),
    "evolution": ("A1101", "v3", "N4101", "v3"),
    "v4_close": ("M1855", "v4", "M1824", "v4"),  # rank 1, although v3 says evolution (M1805 -> M1802)
    "v4_far": ("M1855", "v4", "A1101", "v4"),  # rank 6
    "v3_fallback": ("M1805", "v3", "M1824", "v4"),  # not both v4: the v3 link of the parents
    "reverse": ("A1416", "v3", "A1101", "v3"),  # links are directed: A14 -> A11, same grand domaine
    "domaine": ("A1101", "v3", "A1102", "v3"),
    "other": ("A1101", "v3", "K2204", "v3"),
}
SPELL_ROWS = [
    spell("grace1", "2022-01-10", "2022-03-31"),
    spell("grace31", "2022-01-10", "2022-03-31"),
    spell("grace40", "2022-01-10", "2022-03-31"),
    spell("early", "2022-01-10"),
    spell("open", "2021-01-10"),
    spell("overlap", "2022-01-10", "2022-12-31", rome="A1101", commune="75056"),
    spell("overlap", "2022-03-01", "2022-06-30", rome="K2204", commune="69123"),
    spell("overlap_late", "2022-01-10", "2022-12-31", rome="A1101", commune="75056"),
    spell("overlap_late", "2022-03-01", "2022-06-30", rome="K2204", commune="69123"),
    spell("hireday", "2022-01-10", "2022-06-30", rome="A1101"),
    spell("chain", "2022-01-10", rome="A1101"),
    spell("reo", "2022-01-10", commune="97105"),
    spell("samefiche", "2023-01-10", rome="M1805", version="v3"),
    spell("outside", "2022-01-10", "2022-03-31"),
    *(spell(f"offer_{k}", "2022-01-10") for k in ("ok", "nope", "none", "rome", "dep")),
    spell("none", "2022-01-10", commune="2A004"),
    spell("occ", "2022-01-10", commune="2A004"),
    spell("geo", "2022-01-10", commune="2A004"),
    spell("both", "2022-01-10", commune="97105"),
    spell("dom", "2022-01-10", commune="97411"),
    *(spell(s, "2023-01-10", rome=f, version=fv) for s, (f, fv, _, _) in LINK_CASES.items()),
    spell("lyon", "2022-01-10"),
    spell("corse", "2022-01-10", commune="2A004"),
    spell("vendee", "2022-01-10"),
]
CHANGE_ROWS = [
    change("hireday", "2022-04-01", "K2204"),
    change("chain", "2022-02-01", "K2204"),
    change("chain", "2022-03-01", "G1603"),
    change("chain", "2022-05-01", "N4101"),
    change("reo", "2022-02-11", "K2204"),
    change("samefiche", "2023-04-01", "M1855", version="v4"),  # a ROME 4.0 child of M1805
    change("outside", "2022-04-15", "K2204"),  # after the spell's end: in no spell
    change("ghost", "2022-02-01", "K2204"),  # a seeker without spells
]
HIRE_ROWS = [
    hire("grace1", "2022-04-01", "A1203"),
    hire("grace31", "2022-05-01", "A1203"),
    hire("grace40", "2022-05-10", "A1203"),
    hire("nobody", "2022-02-01"),
    hire("early", "2022-01-05"),  # before the registration
    hire("open", "2024-06-01", "A1203"),
    hire("overlap", "2022-05-02", "A1203", "13055"),
    hire("overlap_late", "2022-09-01", "A1203", "13055"),
    hire("hireday", "2022-04-01", "A1203"),
    hire("chain", "2022-04-15", "A1203"),
    hire("outside", "2022-04-20", "A1203"),
    hire("offer_ok", "2022-03-01", "A1203", offer="OK"),
    hire("offer_nope", "2022-03-01", "A1203", offer="NOPE"),  # no such offer
    hire("offer_none", "2022-03-01", "A1203"),
    hire("offer_rome", "2022-03-01", "A1203", offer="OTHER_ROME"),
    hire("offer_dep", "2022-03-01", "A1203", "75056", offer="OTHER_DEP"),
    hire("none", "2022-02-01", "A1101", "2A004"),
    hire("occ", "2022-02-01", "K2204", "2A004"),
    hire("geo", "2022-02-01", "A1101", "2B033"),  # Ajaccio -> Bastia: other département, same region
    hire("both", "2022-02-01", "K2204", "97611"),  # Guadeloupe -> Mayotte
    hire("dom", "2022-02-01", "A1101", "97302"),  # La Réunion -> Guyane
    *(hire(s, "2023-04-01", t, version=tv) for s, (_, _, t, tv) in LINK_CASES.items()),
    hire("lyon", "2022-02-01", commune="69123"),
    hire("corse", "2022-02-01", commune="2B033"),
    hire("vendee", "2022-02-01", commune="85999"),
]
OFFER_ROWS = [
    offer("OK", "2022-02-01", "A1203"),
    offer("OTHER_ROME", "2022-02-01", "K2204"),
    offer("OTHER_DEP", "2022-02-01", "A1203", commune="69123"),
    offer("REGION", "2022-02-01", "A1203", commune=None, level="region", region="11"),
]


@dataclass(frozen=True)
class Scenario:
    transitions: DataFrame  # the result, collected into a local frame
    quality: dict

    def of(self, *seekers: str) -> DataFrame:
        return self.transitions.where(F.col("seeker_id").isin(*seekers))

    def row(self, seeker: str, kind: str = "hire") -> Row:
        rows = self.of(seeker).where(F.col("kind") == kind).collect()
        assert len(rows) == 1, rows
        return rows[0]


def computed(spark: SparkSession, result: Transitions) -> Scenario:
    local = spark.createDataFrame(result.transitions.collect(), result.transitions.schema)
    return Scenario(local, result.quality.first().asDict())


@pytest.fixture(scope="module")
def scenario(spark: SparkSession) -> Scenario:
    return computed(spark, run(spark, SPELL_ROWS, CHANGE_ROWS, HIRE_ROWS, OFFER_ROWS, LINK_ROWS))


@pytest.fixture(scope="module")
def other_settings(spark: SparkSession) -> Scenario:
    """The same scenario with every setting changed."""
    result = run(
        spark, SPELL_ROWS, CHANGE_ROWS, HIRE_ROWS, OFFER_ROWS, LINK_ROWS,
        level="rome", grace_days=45, geo_level="region", v4_proche_max_rank=6,
    )  # fmt: skip
    return computed(spark, result)


def moves(df: DataFrame) -> DataFrame:
    return df.select("seeker_id", "kind", "from_rome", "to_rome", "start_date", "move_date")


# ------------------------------------------------------------------------------------- hire -> spell


def test_a_hire_the_day_after_the_end_of_its_spell_belongs_to_it(spark: SparkSession, scenario: Scenario):
    expected = [("grace1", "hire", "A1101", "A1203", d("2022-01-10"), d("2022-04-01"))]
    assertDataFrameEqual(moves(scenario.of("grace1")), spark.createDataFrame(expected, MOVE))
    assert scenario.row("grace1")["days_to_move"] == 81


def test_a_hire_31_days_after_the_end_belongs_to_the_spell_and_40_days_after_does_not(scenario: Scenario):
    assert scenario.of("grace31").count() == 1
    assert scenario.of("grace40").count() == 0


def test_a_hire_without_spell_is_counted_but_is_no_transition(scenario: Scenario):
    assert scenario.of("grace40", "nobody", "early").count() == 0  # 40 days late, no spell, before it
    assert scenario.quality["hires_without_spell"] == 3


def test_an_open_spell_takes_a_hire_of_any_later_date(scenario: Scenario):
    assert scenario.row("open")["days_to_move"] == 1238


def test_with_overlapping_spells_the_most_recent_one_wins(scenario: Scenario):
    row = scenario.row("overlap")
    assert (row["from_rome"], row["from_dept"], row["start_date"]) == ("K2204", "69", d("2022-03-01"))
    # Once the recent spell is over (grace included), the older one still covers the date and takes the hire.
    row = scenario.row("overlap_late")
    assert (row["from_rome"], row["from_dept"], row["start_date"]) == ("A1101", "75", d("2022-01-10"))


def test_a_seekers_hires_of_one_day_are_one_move_the_first_by_code_and_a_repeated_change_is_one_segment(
    spark: SparkSession,
):
    spells, changes, hires, offers = frames(
        spark,
        [spell("s1", "2022-01-10")],
        [change("s1", "2022-02-01", "G1603"), change("s1", "2022-02-01", "G1603")],
        [hire("s1", "2022-03-01", rome) for rome in ("K2204", "A1203", "A1203")],
    )
    built = build_transitions(spells, changes, hires, offers, small_refs(spark))
    expected = [
        ("s1", "reorientation", "A1101", "G1603", d("2022-01-10"), d("2022-02-01")),
        ("s1", "hire", "G1603", "A1203", d("2022-01-10"), d("2022-03-01")),
    ]
    assertDataFrameEqual(moves(built.transitions), spark.createDataFrame(expected, MOVE))
    quality = built.quality.first()
    assert (quality["hires"], quality["hires_matched"], quality["reorientations"]) == (1, 1, 1)
    assert occupation_segments(spells, changes).count() == 2


# ------------------------------------------------------------------------------- origin, reorientations


def test_a_change_of_the_occupation_sought_on_the_hire_day_is_the_origin(
    spark: SparkSession, scenario: Scenario
):
    expected = [
        ("hireday", "reorientation", "A1101", "K2204", d("2022-01-10"), d("2022-04-01")),
        ("hireday", "hire", "K2204", "A1203", d("2022-01-10"), d("2022-04-01")),
    ]
    assertDataFrameEqual(moves(scenario.of("hireday")), spark.createDataFrame(expected, MOVE))


def test_the_origin_is_the_last_change_before_the_hire_and_each_change_is_a_reorientation(
    spark: SparkSession, scenario: Scenario
):
    expected = [
        ("chain", "reorientation", "A1101", "K2204", d("2022-01-10"), d("2022-02-01")),
        ("chain", "reorientation", "K2204", "G1603", d("2022-01-10"), d("2022-03-01")),
        ("chain", "hire", "G1603", "A1203", d("2022-01-10"), d("2022-04-15")),
        ("chain", "reorientation", "G1603", "N4101", d("2022-01-10"), d("2022-05-01")),  # after the hire
    ]
    assertDataFrameEqual(moves(scenario.of("chain")), spark.createDataFrame(expected, MOVE))


def test_a_reorientation_stays_in_place_and_has_no_contract_nor_offer(scenario: Scenario):
    assert scenario.row("reo", "reorientation").asDict() == {
        "seeker_id": "reo", "kind": "reorientation", "from_rome": "A1101", "from_dept": "971",
        "from_region": "01", "to_rome": "K2204", "to_dept": "971", "to_region": "01",
        "start_date": d("2022-01-10"), "move_date": d("2022-02-11"), "days_to_move": 32, "contract": None,
        "offer_id": None, "via_offer": False, "mobility": "occupational", "rome_link": "other",
        "distance_km": 0.0, "from_commune": "97105", "to_commune": "97105", "from_rome_code": "A1101",
        "from_rome_version": "v3", "to_rome_code": "K2204", "to_rome_version": "v3",
    }  # fmt: skip


def test_a_change_to_a_code_of_the_same_v3_fiche_moves_only_at_the_rome_level(
    scenario: Scenario, other_settings: Scenario
):
    assert scenario.of("samefiche").count() == 0
    row = other_settings.row("samefiche", "reorientation")
    assert (row["from_rome"], row["to_rome"], row["to_rome_version"]) == ("M1805", "M1855", "v4")


def test_a_change_outside_every_spell_is_counted_and_ignored(scenario: Scenario):
    assert scenario.row("outside")["from_rome"] == "A1101"  # hired in the grace period: the change is not
    assert scenario.of("ghost").count() == 0
    assert (scenario.quality["sought_changes"], scenario.quality["sought_changes_without_spell"]) == (8, 2)


def test_segments_of_overlapping_spells_leave_the_stock_when_the_later_spell_starts(spark: SparkSession):
    spells, changes, _, _ = frames(
        spark,
        [spell("s1", "2022-01-10", "2022-12-31"), spell("s1", "2022-03-01", "2022-06-30", rome="K2204")],
        [change("s1", "2022-02-01", "G1603")],
    )
    got = occupation_segments(spells, changes).select(
        "registration_date", "seg_start", "occupation", "stock_until"
    )
    expected = [
        (d("2022-01-10"), d("2022-01-10"), "A1101", d("2022-02-01")),
        (d("2022-01-10"), d("2022-02-01"), "G1603", d("2022-03-01")),
        (d("2022-03-01"), d("2022-03-01"), "K2204", d("2022-06-30")),
    ]
    schema = "registration_date date, seg_start date, occupation string, stock_until date"
    assertDataFrameEqual(got, spark.createDataFrame(expected, schema))


def test_a_change_belongs_to_the_latest_spell_covering_it_even_once_a_later_spell_has_ended(
    spark: SparkSession,
):
    # s1's spell of January runs to December; a later spell runs from March to May. The change of April is in
    # both (the later wins); the change of August is in the first only, the later one being over.
    spells, changes, hires, offers = frames(
        spark,
        [spell("s1", "2022-01-10", "2022-12-31"), spell("s1", "2022-03-01", "2022-05-31", rome="K2204")],
        [change("s1", "2022-04-01", "G1603"), change("s1", "2022-08-01", "N4101")],
    )
    got = occupation_segments(spells, changes).select(
        "registration_date", "seg_start", "seg_index", "occupation", "prev_occupation", "seg_next",
        "next_registration", "stock_until",
    )  # fmt: skip

    def segment(reg, start, index, occupation, prev, seg_next, next_reg, until) -> tuple:
        return (d(reg), d(start), index, occupation, prev, d(seg_next), d(next_reg), d(until))

    expected = [
        segment("2022-01-10", "2022-01-10", 1, "A1101", None, "2022-08-01", "2022-03-01", "2022-03-01"),
        # out of the stock from the later spell's start on, as the stock counts the most recent spell only
        segment("2022-01-10", "2022-08-01", 2, "N4101", "A1101", None, "2022-03-01", "2022-03-01"),
        segment("2022-03-01", "2022-03-01", 1, "K2204", None, "2022-04-01", None, "2022-04-01"),
        segment("2022-03-01", "2022-04-01", 2, "G1603", "K2204", None, None, "2022-05-31"),
    ]
    schema = (
        "registration_date date, seg_start date, seg_index int, occupation string, prev_occupation string, "
        "seg_next date, next_registration date, stock_until date"
    )
    assertDataFrameEqual(got, spark.createDataFrame(expected, schema))
    built = build_transitions(spells, changes, hires, offers, small_refs(spark))
    got = built.transitions.select("kind", "from_rome", "to_rome", "start_date", "move_date")
    expected = [
        ("reorientation", "K2204", "G1603", d("2022-03-01"), d("2022-04-01")),
        ("reorientation", "A1101", "N4101", d("2022-01-10"), d("2022-08-01")),
    ]
    schema = "kind string, from_rome string, to_rome string, start_date date, move_date date"
    assertDataFrameEqual(got, spark.createDataFrame(expected, schema))


# ------------------------------------------------------------------------------------------- offers


def test_via_offer_only_when_the_named_offer_exists_and_mismatched_offers_are_counted(scenario: Scenario):
    got = {r["seeker_id"]: (r["offer_id"], r["via_offer"]) for r in scenario.of(*OFFER_SEEKERS).collect()}
    assert got == {
        "offer_ok": ("OK", True), "offer_nope": ("NOPE", False), "offer_none": (None, False),
        "offer_rome": ("OTHER_ROME", True), "offer_dep": ("OTHER_DEP", True),
    }  # fmt: skip
    figures = {k: v for k, v in scenario.quality.items() if "offer" in k}
    assert figures == {
        "hires_naming_offer": 4,
        "hires_via_offer": 3,
        "hires_unknown_offer": 1,
        "hires_offer_other_occupation": 1,
        "hires_offer_other_departement": 1,
    }


OFFER_SEEKERS = ("offer_ok", "offer_nope", "offer_none", "offer_rome", "offer_dep")


# ------------------------------------------------------------------------------ mobility, places, links


def test_mobility_kinds_with_corsica_and_overseas_places(spark: SparkSession, scenario: Scenario):
    cols = ["seeker_id", "from_dept", "from_region", "to_dept", "to_region", "mobility"]
    expected = [
        ("none", "2A", "94", "2A", "94", "none"),
        ("occ", "2A", "94", "2A", "94", "occupational"),
        ("geo", "2A", "94", "2B", "94", "geographic"),
        ("both", "971", "01", "976", "06", "both"),
        ("dom", "974", "04", "973", "03", "geographic"),
    ]
    schema = ", ".join(f"{c} string" for c in cols)
    assertDataFrameEqual(
        scenario.of(*(e[0] for e in expected)).select(*cols), spark.createDataFrame(expected, schema)
    )


def test_geographic_mobility_at_region_level_is_a_setting(other_settings: Scenario):
    assert other_settings.row("geo")["mobility"] == "none"  # 2A -> 2B, both in Corsica
    assert other_settings.row("both")["mobility"] == "both"


def test_rome_link_types(scenario: Scenario):
    got = {r["seeker_id"]: r["rome_link"] for r in scenario.of(*LINK_CASES).collect()}
    assert got == {
        "same": "same", "proche": "proche", "evolution": "evolution", "v4_close": "proche",
        "v4_far": "evolution", "v3_fallback": "evolution", "reverse": "same_grand_domaine",
        "domaine": "same_domaine", "other": "other",
    }  # fmt: skip
    assert scenario.row("same")["mobility"] == "none"


def test_the_rank_of_v4_links_counted_as_proche_is_a_setting(other_settings: Scenario):
    assert other_settings.row("v4_far")["rome_link"] == "proche"


def test_the_grace_period_is_a_setting(other_settings: Scenario):
    assert other_settings.of("grace40").count() == 1


def test_distance_between_commune_centroids_else_departement_centroids(scenario: Scenario):
    got = {r["seeker_id"]: r["distance_km"] for r in scenario.of("lyon", "corse", "vendee").collect()}
    assert got["lyon"] == pytest.approx(393.3, abs=0.5)
    assert got["corse"] == pytest.approx(103.4, abs=0.5)
    assert got["vendee"] == pytest.approx(364.5, abs=0.5)  # 85999 has no centroid: Paris (75) -> Vendée (85)


def test_paris_to_lyon_is_about_392_km_on_the_real_reference(spark: SparkSession, ref_lake: Lake):
    silver = frames(
        spark,
        [spell("s1", "2022-01-10"), spell("s2", "2022-01-10", commune="97105")],
        hires=[hire("s1", "2022-02-01", commune="69123"), hire("s2", "2022-02-01", commune="2B033")],
    )
    result = build_transitions(*silver, RefTables.from_lake(ref_lake)).transitions
    got = {r["seeker_id"]: r for r in result.collect()}
    assert 385 < got["s1"]["distance_km"] < 400
    assert got["s2"]["distance_km"] == pytest.approx(7_280, rel=0.01)  # Guadeloupe -> Haute-Corse
    assert (got["s2"]["from_region"], got["s2"]["to_dept"], got["s2"]["to_region"]) == ("01", "2B", "94")


# ------------------------------------------------------------------------------------------ figures


def test_transitions_are_the_matched_hires_plus_the_reorientations(scenario: Scenario):
    figures = scenario.quality
    assert figures["hires"] == len(HIRE_ROWS)
    assert figures["hires_matched"] == len(HIRE_ROWS) - 3
    assert figures["reorientations"] == 5  # hireday 1, chain 3, reo 1; samefiche is no move
    assert figures["transitions"] == figures["hires_matched"] + figures["reorientations"]
    assert scenario.transitions.count() == figures["transitions"]
    assert scenario.transitions.columns == list(TRANSITION_COLUMNS)


def test_unknown_settings_are_refused(spark: SparkSession):
    with pytest.raises(ValueError, match="level"):
        run(spark, SPELL_ROWS[:1], level="fap")
    with pytest.raises(ValueError, match="geo_level"):
        run(spark, SPELL_ROWS[:1], geo_level="commune")

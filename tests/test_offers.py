"""Offers as people keep them: a real page of the offers API, a saved JSON list of offers, offers abroad and
in the overseas collectivities; and a batch that lacks some kinds of files still leaves every silver table."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from mobility.config import Settings
from mobility.ingest import IngestReport, ingest
from mobility.ingest.references import References, countries, load_references, resolve_place
from mobility.lake import Lake

SEEKERS = ["IDX;DATINS;DATANN;MOTINS;MOTANN;CATREGR;DEPCOM;ROME;ROMEAPL;SEXE;NIVFOR;ANNAIS",
           "5001;2024-01-10;;11;;1;75056;M1855;;1;NV4;1985"]  # fmt: skip


def offer(id_: str, **place) -> dict:
    return {"id": id_, "intitule": "Poste", "dateCreation": "2025-03-01T10:00:00.000Z", "romeCode": "M1855",
            "lieuTravail": place, "typeContrat": "CDI", "nombrePostes": 1}  # fmt: skip


# As the offers API writes them (libelle, and the codes it gives with them).
ELSEWHERE = [
    offer("AB1", libelle="Allemagne"),
    offer("AB2", libelle="Rust, Allemagne"),
    offer("AB3", libelle="Allemagne (Frontalier)"),
    offer("AB4", libelle="Espagne"),
    offer("AB5", libelle="Portugal"),
    offer("AB6", libelle="99 - Belgique"),
    offer("OC1", libelle="975 - ST PIERRE", codePostal="97500", commune="97502"),
    offer("OC2", libelle="977 - Saint-Barthélemy"),
    offer("OC3", libelle="ST MARTIN", codePostal="97150"),
    offer("OC4", libelle="Nouméa", commune="98818"),
    offer("NO1", libelle="Atlantis"),
]
LIST = [offer(f"LI{i}", libelle="13 - MARSEILLE", commune="13055") for i in range(1, 6)]


@pytest.fixture(scope="module")
def batch(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Spells and offers only: no rome file, no hires file."""
    folder = tmp_path_factory.mktemp("offers-batch")
    (folder / "de.csv").write_text("\n".join(SEEKERS) + "\n")
    shutil.copy(
        settings.reference.dir.parent / "samples" / "offers_api_v2_page.json", folder / "offers_real.json"
    )
    (folder / "offers_list.json").write_text(json.dumps(LIST, indent=2))
    (folder / "offers_elsewhere.json").write_text(json.dumps({"resultats": ELSEWHERE}))
    return folder


@pytest.fixture(scope="module")
def report(lake_with_ref: Lake, settings: Settings, batch: Path) -> IngestReport:
    return ingest(lake_with_ref, settings, batch, batch_id="offers")


def _counts(report: IngestReport, name: str) -> tuple[int, int, int]:
    (entry,) = [c for c in report.counts if c["source_file"] == name]
    return entry["read"], entry["valid"], entry["quarantined"]


def test_every_offer_of_a_real_api_page_is_valid(report: IngestReport, batch: Path):
    page = json.loads((batch / "offers_real.json").read_text())["resultats"]
    assert _counts(report, "offers_real.json") == (len(page), len(page), 0)


def test_a_json_list_of_offers_is_read_like_a_page(report: IngestReport, lake_with_ref: Lake):
    assert _counts(report, "offers_list.json") == (5, 5, 0)
    rows = lake_with_ref.read("silver.offers").where(F.col("offer_id").startswith("LI")).collect()
    assert sorted((r["offer_id"], r["_line"], r["code_departement"]) for r in rows) == [
        (f"LI{i}", i, "13") for i in range(1, 6)
    ]


def test_offers_abroad_and_overseas_are_kept_with_their_level(report: IngestReport, lake_with_ref: Lake):
    rows = lake_with_ref.read("silver.offers").where(~F.col("offer_id").startswith("LI"))
    got = {r["offer_id"]: (r["place_level"], r["code_departement"], r["country"]) for r in rows.collect()}
    assert {k: v for k, v in got.items() if k[:2] in ("AB", "OC")} == {
        "AB1": ("abroad", None, "DE"), "AB2": ("abroad", None, "DE"), "AB3": ("abroad", None, "DE"),
        "AB4": ("abroad", None, "ES"), "AB5": ("abroad", None, "PT"), "AB6": ("abroad", None, "BE"),
        "OC1": ("overseas_collectivity", "975", None), "OC2": ("overseas_collectivity", "977", None),
        "OC3": ("overseas_collectivity", "978", None), "OC4": ("overseas_collectivity", "988", None),
    }  # fmt: skip
    reasons = lake_with_ref.read("silver.quarantine").where(F.col("source_file") == "offers_elsewhere.json")
    assert [(r["line"], r["reason"]) for r in reasons.collect()] == [(11, "unknown_place")]


def test_a_batch_without_some_kinds_leaves_every_silver_table_in_place(
    report: IngestReport, lake_with_ref: Lake
):
    for table in ("spells", "sought_changes", "hires", "offers", "seekers", "quarantine"):
        assert lake_with_ref.exists(f"silver.{table}"), table
    assert lake_with_ref.read("silver.sought_changes").count() == 0
    assert lake_with_ref.read("silver.hires").count() == 0
    assert {"seeker_id", "start_date", "rome_v3", "_batch_id"} <= set(
        lake_with_ref.read("silver.sought_changes").columns
    )


def test_a_place_resolves_without_a_lake(spark):
    """``resolve_place`` on literal references: five levels, the codes before the label (which is read only
    where the codes say nothing)."""
    refs = References(
        rome=spark.createDataFrame([], "code_rome string, in_v3 boolean, in_v4 boolean, v4_parent string"),
        commune=spark.createDataFrame(
            [("13055", "13", "93", 43.3, 5.4)],
            "code_commune string, code_departement string, code_region string, lat double, lng double",
        ),  # fmt: skip
        postal=spark.createDataFrame(
            [],
            "code_commune string, code_postal string, code_departement string, "
            "code_region string, lat double, lng double",
        ),  # fmt: skip
        departement=spark.createDataFrame(
            [("2A", "94", 41.9, 8.7)], "code_departement string, code_region string, lat double, lng double"
        ),  # fmt: skip
        region=spark.createDataFrame([("53", "bretagne")], "code_region string, name_key string"),
        country=countries(spark),
        rome_v4_from=None,
    )
    offers = spark.createDataFrame(
        [("a", "13 - MARSEILLE", "13055", None), ("b", "2A - AJACCIO", None, None),
         ("c", "Bretagne", None, None), ("d", "Suisse", None, None),
         ("e", "978 - Saint-Martin", None, "97150"), ("f", "Bretagne", "13055", None),
         ("g", "Rust, Allemagne", "00000", "00000"), ("h", "France", None, None)],
        "id string, place_label string, _commune string, _postal string",
    ).withColumns({"_lat": F.lit(None).cast("double"), "_lng": F.lit(None).cast("double")})  # fmt: skip
    got = resolve_place(offers, refs).select(
        "id", "place_level", "code_departement", "code_region", "country"
    )
    expected = spark.createDataFrame(
        [("a", "commune", "13", "93", None), ("b", "departement", "2A", "94", None),
         ("c", "region", None, "53", None), ("d", "abroad", None, None, "CH"),
         ("e", "overseas_collectivity", "978", None, None), ("f", "commune", "13", "93", None),
         ("g", "abroad", None, None, "DE"), ("h", "national", None, None, None)],
        "id string, place_level string, code_departement string, code_region string, country string",
    )  # fmt: skip
    assertDataFrameEqual(got, expected)


def test_references_are_read_once_while_the_ref_tables_keep_their_version(lake: Lake):
    """A session ingesting month after month reads ``ref.*`` once; a ref table written since is read anew."""
    spark = lake.spark
    tables = {
        "ref.rome": ([("M1855", "v3", None)], "code_rome string, version string, rome_v3 string"),
        "ref.commune": ([("13055", "13", "93", 43.3, 5.4, 870000)], "code_commune string, code_departement "
                        "string, code_region string, lat double, lng double, population long"),
        "ref.postal_code": ([("13001", "13055")], "code_postal string, code_commune string"),
        "ref.departement": ([("13", "93", 43.5, 5.1)],
                            "code_departement string, code_region string, lat double, lng double"),
        "ref.region": ([("93", "Provence-Alpes-Côte d'Azur")], "code_region string, name string"),
    }  # fmt: skip
    for table, (rows, schema) in tables.items():
        lake.overwrite(spark.createDataFrame(rows, schema), table)
    first = load_references(lake, date(2023, 3, 1))
    assert load_references(lake, date(2023, 3, 1)) is first

    brittany = spark.createDataFrame([("53", "Bretagne")], "code_region string, name string")
    lake.overwrite(brittany, "ref.region")
    again = load_references(lake, date(2023, 3, 1))
    assert again is not first
    assert [tuple(r) for r in again.region.collect()] == [("53", "bretagne")]
    assert [tuple(r) for r in first.region.collect()] == [("93", "provence alpes cote d azur")]

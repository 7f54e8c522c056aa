"""Ingestion of tiny crafted files: one record per reject reason, the valid records beside them landing,
reconciliation, idempotence, updates by a later batch, and no IDX in any table."""

from __future__ import annotations

import json
import threading
from datetime import date
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from mobility.config import Settings
from mobility.ingest import IngestReport, RejectRateError, enforce_reject_rate, ingest
from mobility.ingest.batch import seeker_update, seekers_of
from mobility.ingest.readers import InputError, discover
from mobility.lake import Lake, concurrently

DE_HEADER = "IDX;DATINS;DATANN;MOTINS;MOTANN;CATREGR;DEPCOM;ROME;ROMEAPL;SEXE;NIVFOR;ANNAIS;LIBCOM"
DE = [
    DE_HEADER,
    "1001;2022-01-10;2022-06-30;11;01;1;75056;A1101;;1;NV4;1985;Paris",  # 2 valid, v3 (before 2023-03)
    "1002;2023-05-02;;11;;2;2A004;M1855;;2;NV3;1990;Ajaccio",  # 3 valid, v4-only code
    "1003;2023-05-02;;11;;1;97105;M1805;;1;NV3;1990;Basse-Terre",  # 4 valid, code of both: v4 by date
    "1004;2022-13-45;;11;;1;01001;A1101;;1;;1980;x",  # 5 bad_date
    "1005;2022-06-01;2022-01-01;11;01;1;01001;A1101;;1;;1980;x",  # 6 date_order
    "1006;2022-06-01;;11;;1;01001;Z9999;;1;;1980;x",  # 7 unknown_rome
    "1007;2022-06-01;;11;;1;99999;A1101;;1;;1980;x",  # 8 unknown_commune
    ";2022-06-01;;11;;1;01001;A1101;;1;;1980;x",  # 9 missing_field
    "1008;2022-06-01;;11;;9;01001;A1101;;1;;1980;x",  # 10 bad_value
    "",  # 11 blank: not a record
    "1001;2022-01-10;2022-06-30;11;01;1;75056;A1101;;1;NV4;1985;Paris",  # 12 duplicate
    "1009;2022-06-01;;11",  # 13 malformed (truncated)
]
DE_LATIN1 = [DE_HEADER, "1010;2022-02-01;;11;;1;91228;A1101;;1;;1975;Évry-Courcouronnes"]
DE_NO_ROME = ["IDX;DATINS;DATANN;CATREGR;DEPCOM", "1011;2022-01-01;;1;01001", "1012;2022-01-01;;1;01001"]
ROME = [
    "IDX;ROME;JOURDV;JOURFV",
    "1001;A1416;2022-03-01;",  # valid
    "2000;A1101;2022-03-01;",  # unknown_seeker
    "1001;A1101;2022-05-01;2022-04-01",  # date_order
]
HIRES = [
    "IDX;DATEMB;ROME;DEPCOM;TYPCTR;DUREE;OFFRE_ID",
    "1001;2022-07-15;A1416;69123;CDI;;",  # valid, 15 days after the spell's end
    "1002;2023-06-01;M1855;13055;CDD;6;OFF0001",  # valid, fills an offer created before
    "1003;2023-06-02;M1805;75101;CDD;3;OFF0002",  # offer_after_hire
    "3000;2023-06-01;M1855;75056;CDI;;",  # unknown_seeker
    "1002;2023-06-05;M1855;75056;CDI;abc;",  # bad_value
    "1002;2023-06-06;M1855;75056;CDI;;NOPE",  # valid: an offer unknown is kept
]


def offer(id_: str | None, created: str = "2023-05-20T10:00:00.000Z", rome: str = "M1855", **place) -> dict:
    data = {"intitule": "Poste", "dateCreation": created, "dateActualisation": created, "romeCode": rome}
    data["lieuTravail"] = place or {"libelle": "13 - MARSEILLE", "commune": "13055", "codePostal": "13001"}
    data["typeContrat"] = "CDI"
    data["nombrePostes"] = 1
    if id_:
        data["id"] = id_
    return data


PAGE = [
    offer("OFF0001", created="2023-05-20T10:00:00.000Z"),  # 1 valid, but superseded by the .jsonl: duplicate
    offer("OFF0002", created="2023-07-01T08:00:00.000Z", codePostal="75001", libelle="75 - PARIS 01"),  # 2
    offer("OFF0003", libelle="2A - AJACCIO"),  # 3 département level
    offer("OFF0004", libelle="Bretagne"),  # 4 region level
    offer("OFF0005", libelle="France"),  # 5 national
    offer("OFF0006", libelle="99 - Belgique"),  # 6 abroad
    offer("OFF0007", libelle="Atlantis"),  # 7 unknown_place
    offer("OFF0008", rome="Z9999"),  # 8 unknown_rome
    offer(None),  # 9 missing_field
    offer("OFF0010", created="yesterday"),  # 10 bad_date
    {**offer("OFF0011"), "nombrePostes": "two", "salaire": {"libelle": "extra field"}},  # 11 bad_value
]
LINES = [
    json.dumps(
        {**offer("OFF0001"), "dateActualisation": "2023-05-25T10:00:00.000Z", "intitule": "Mis à jour"}
    ),
    "{not json",  # 2 malformed
    json.dumps(offer("OFF0012", libelle="Île-de-France")),  # 3 valid, region by name without accents
]


def write_batch(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "de.csv").write_text("\n".join(DE) + "\n", encoding="utf-8")
    (folder / "de_latin1.csv").write_bytes(("\n".join(DE_LATIN1) + "\n").encode("latin-1"))
    (folder / "de_norome.csv").write_text("\n".join(DE_NO_ROME) + "\n", encoding="utf-8")
    (folder / "rome.csv").write_text("\n".join(ROME) + "\n", encoding="utf-8")
    (folder / "hires.csv").write_text("\n".join(HIRES) + "\n", encoding="utf-8")
    (folder / "offers_2023-05_001.json").write_text(json.dumps({"resultats": PAGE}), encoding="utf-8")
    (folder / "offers_2023-05_002.json").write_text(
        '{"resultats": [{"id": "OFF0099", "romeC', encoding="utf-8"
    )
    (folder / "offers_2023-06.jsonl").write_text("\n".join(LINES) + "\n", encoding="utf-8")
    (folder / "hires_empty.csv").write_bytes(b"")
    (folder / "notes.txt").write_text("not an input\n")
    return folder


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_batch(tmp_path_factory.mktemp("batch1"))


@pytest.fixture(scope="module")
def first(lake_with_ref: Lake, settings: Settings, batch: Path) -> IngestReport:
    return ingest(lake_with_ref, settings, batch, batch_id="b1")


def quarantined(lake: Lake, source_file: str) -> dict[int, str]:
    rows = lake.read("silver.quarantine").where(F.col("source_file") == source_file).collect()
    return {r["line"]: r["reason"] for r in rows}


def test_each_defective_spell_is_quarantined_with_its_reason(first: IngestReport, lake_with_ref: Lake):
    assert quarantined(lake_with_ref, "de.csv") == {
        5: "bad_date",
        6: "date_order",
        7: "unknown_rome",
        8: "unknown_commune",
        9: "missing_field",
        10: "bad_value",
        12: "duplicate",
        13: "malformed",
    }


def test_valid_spells_beside_the_rejects_land_with_their_rome_version(
    first: IngestReport, lake_with_ref: Lake
):
    spells = lake_with_ref.read("silver.spells")
    got = {(r["rome"], r["rome_version"], r["rome_v3"], r["code_region"]) for r in spells.collect()}
    assert (
        got
        == {
            ("A1101", "v3", "A1101", "11"),  # Paris by its city code
            ("M1855", "v4", "M1805", "94"),  # Corsica
            ("M1805", "v4", "M1805", "01"),  # overseas, code of both referentials, after the cutover
            ("A1101", "v3", "A1101", "11"),  # the latin-1 file
        }
        and spells.count() == 4
    )


def test_a_file_missing_a_mandatory_column_is_rejected_whole_naming_it(first, lake_with_ref: Lake):
    rows = lake_with_ref.read("silver.quarantine").where(F.col("source_file") == "de_norome.csv").collect()
    assert {(r["line"], r["reason"]) for r in rows} == {(2, "schema"), (3, "schema")}
    assert all("ROME" in r["message"] for r in rows)


def test_a_latin1_file_is_read_with_its_accents(first, lake_with_ref: Lake):
    bronze = lake_with_ref.read("bronze.records").where(F.col("source_file") == "de_latin1.csv").collect()
    assert {r["kind"] for r in bronze} == {"de"}
    assert [r["raw"].rsplit(";", 1)[1] for r in bronze] == ["Évry-Courcouronnes"]


def test_changes_and_hires_are_checked_against_known_seekers_and_offers(first, lake_with_ref: Lake):
    assert quarantined(lake_with_ref, "rome.csv") == {3: "unknown_seeker", 4: "date_order"}
    assert quarantined(lake_with_ref, "hires.csv") == {
        4: "offer_after_hire",
        5: "unknown_seeker",
        6: "bad_value",
    }
    hires = lake_with_ref.read("silver.hires")
    assert sorted(r["offer_id"] or "" for r in hires.collect()) == ["", "NOPE", "OFF0001"]


def test_offers_resolve_their_place_at_the_finest_level_they_carry(first, lake_with_ref: Lake):
    offers = {r["offer_id"]: r for r in lake_with_ref.read("silver.offers").collect()}
    assert {k: (v["place_level"], v["code_departement"], v["code_region"]) for k, v in offers.items()} == {
        "OFF0001": ("commune", "13", "93"),
        "OFF0002": ("postal_code", "75", "11"),
        "OFF0003": ("departement", "2A", "94"),
        "OFF0004": ("region", None, "53"),
        "OFF0005": ("national", None, None),
        "OFF0006": ("abroad", None, None),
        "OFF0012": ("region", None, "11"),
    }
    assert offers["OFF0001"]["title"] == "Mis à jour", "the newest version of an offer in the batch wins"
    assert offers["OFF0002"]["code_commune"] == "75101"


def test_each_defective_offer_is_quarantined_with_its_reason(first, lake_with_ref: Lake):
    assert quarantined(lake_with_ref, "offers_2023-05_001.json") == {
        1: "duplicate",
        7: "unknown_place",
        8: "unknown_rome",
        9: "missing_field",
        10: "bad_date",
        11: "bad_value",
    }
    assert quarantined(lake_with_ref, "offers_2023-05_002.json") == {0: "malformed"}
    assert quarantined(lake_with_ref, "offers_2023-06.jsonl") == {2: "malformed"}


def test_every_file_reconciles_read_with_valid_plus_quarantined(first: IngestReport, lake_with_ref: Lake):
    per_file = {c["source_file"]: (c["read"], c["valid"], c["quarantined"]) for c in first.counts}
    assert per_file == {
        "de.csv": (11, 3, 8),
        "de_latin1.csv": (1, 1, 0),
        "de_norome.csv": (2, 0, 2),
        "rome.csv": (3, 1, 2),
        "hires.csv": (6, 3, 3),
        "offers_2023-05_001.json": (11, 5, 6),
        "offers_2023-05_002.json": (1, 0, 1),
        "offers_2023-06.jsonl": (3, 2, 1),
        "hires_empty.csv": (1, 0, 1),
    }
    assert first.ignored == ["notes.txt"]
    assert first.reasons == {"bad_date": 2, "date_order": 2, "unknown_rome": 2, "unknown_commune": 1,
                             "missing_field": 2, "bad_value": 3, "duplicate": 2, "malformed": 4, "schema": 2,
                             "unknown_seeker": 2, "offer_after_hire": 1, "unknown_place": 1}  # fmt: skip
    logged = lake_with_ref.read("silver.ingestion_log").where(F.col("batch_id") == "b1")
    assert logged.agg(F.sum("read")).first()[0] == first.read == 39
    assert lake_with_ref.read("silver.quarantine").count() == first.quarantined == 24
    assert quarantined(lake_with_ref, "hires_empty.csv") == {0: "malformed"}


def test_no_table_holds_a_raw_idx(first, lake_with_ref: Lake):
    ids = {line.split(";")[0] for rows in (DE, DE_LATIN1, ROME, HIRES) for line in rows[1:] if line}
    ids.discard("")
    for table in lake_with_ref.tables("bronze") + lake_with_ref.tables("silver"):
        df = lake_with_ref.read(table)
        assert "IDX" not in df.columns
        text = " ".join(str(r.asDict()) for r in df.collect())
        leaked = [i for i in ids if f"'{i}'" in text or f"'{i};" in text]
        assert not leaked, f"{table} holds IDX values {leaked}"
    seekers = lake_with_ref.read("silver.seekers")
    assert seekers.count() == 4 and all(len(r["seeker_id"]) == 64 for r in seekers.collect())


def test_a_reject_rate_over_the_threshold_fails_after_writing_everything(first: IngestReport):
    with pytest.raises(
        RejectRateError, match=r"24 of 39 records rejected \(61.5% > quality.max_reject_rate 5.0%\)"
    ):
        enforce_reject_rate(first, 0.05)
    enforce_reject_rate(first, 0.7)


def test_ingesting_the_same_files_again_changes_no_silver_row(first, lake_with_ref: Lake, settings, batch):
    tables = ["silver.spells", "silver.sought_changes", "silver.hires", "silver.offers", "silver.seekers",
              "silver.quarantine", "bronze.records"]  # fmt: skip
    before = {t: lake_with_ref.read(t).localCheckpoint() for t in tables}
    again = ingest(lake_with_ref, settings, batch, batch_id="b2")
    assert [(c["read"], c["valid"]) for c in again.counts] == [(c["read"], c["valid"]) for c in first.counts]
    for table in tables:
        assertDataFrameEqual(lake_with_ref.read(table), before[table])


def test_a_later_batch_replaces_exactly_the_updated_offer_and_corrected_spell(
    first, lake_with_ref: Lake, settings: Settings, tmp_path: Path
):
    offers_before = lake_with_ref.read("silver.offers").localCheckpoint()
    spells_before = lake_with_ref.read("silver.spells").localCheckpoint()
    update = tmp_path / "batch3"
    update.mkdir()
    newer = {**offer("OFF0003", libelle="2A - AJACCIO"), "dateActualisation": "2023-06-10T09:00:00.000Z"}
    older = {**offer("OFF0004", libelle="Bretagne"), "dateActualisation": "2023-01-01T09:00:00.000Z"}
    (update / "offers_2023-06_001.json").write_text(
        json.dumps({"resultats": [{**newer, "intitule": "Nouveau titre"}, {**older, "intitule": "Ancien"}]})
    )
    (update / "de.csv").write_text(
        DE_HEADER + "\n1002;2023-05-02;2023-09-30;11;01;2;2A004;M1855;;2;NV3;1990;A\n"
    )
    ingest(lake_with_ref, settings, update, batch_id="b3")

    offers_after = lake_with_ref.read("silver.offers")
    changed = offers_after.exceptAll(offers_before).select("offer_id", "title").collect()
    assert [(r["offer_id"], r["title"]) for r in changed] == [("OFF0003", "Nouveau titre")]
    assert offers_after.count() == offers_before.count()
    spells_after = lake_with_ref.read("silver.spells")
    changed = spells_after.exceptAll(spells_before).collect()
    assert [(str(r["end_date"]), r["end_reason"]) for r in changed] == [("2023-09-30", "01")]
    assert spells_after.count() == spells_before.count()


def test_an_input_folder_with_a_link_outside_is_refused(tmp_path: Path):
    outside = tmp_path / "elsewhere.csv"
    outside.write_text(DE_HEADER + "\n")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "de.csv").symlink_to(outside)
    with pytest.raises(InputError, match="de.csv: points outside the input folder"):
        discover(folder)


def test_silver_tables_keep_statistics_of_their_key_and_batch_only(first, lake_with_ref: Lake):
    """Statistics of every column cost a quarter of the silver writes; reads filter on keys and batches."""
    stats = {
        table: DeltaTable.forPath(lake_with_ref.spark, lake_with_ref.path(f"silver.{table}"))
        .detail()
        .first()["properties"]
        for table in ("spells", "sought_changes", "hires", "offers", "seekers")
    }
    assert {table: props.get("delta.dataSkippingStatsColumns") for table, props in stats.items()} == {
        "spells": "seeker_id,registration_date,_batch_id,_ingested_at",
        "sought_changes": "seeker_id,start_date,_batch_id,_ingested_at",
        "hires": "seeker_id,hire_date,_batch_id,_ingested_at",
        "offers": "offer_id,_batch_id,_ingested_at",
        "seekers": "seeker_id",
    }
    assert {props.get("delta.enableDeletionVectors") for props in stats.values()} == {"true"}


def test_a_batch_updates_its_seekers_from_its_own_spells(spark, lake: Lake):
    """An older spell lowers the first registration and keeps the attributes; a later one brings its own; a
    corrected latest spell (same date) replaces them; a new seeker is inserted; an unchanged one is not
    rewritten."""
    spell = "seeker_id string, registration_date date, birth_year int, sex string, education string"
    known = seekers_of(spark.createDataFrame(
        [("a", date(2022, 5, 1), 1980, "1", "NV3"), ("b", date(2022, 5, 1), 1981, "2", "NV4"),
         ("c", date(2022, 5, 1), 1982, "1", "NV5"), ("d", date(2022, 5, 1), 1983, "2", "NV1")], spell,
    ))  # fmt: skip
    lake.merge(known, "silver.seekers_update", ["seeker_id"])
    batch = spark.createDataFrame(
        [("a", date(2021, 1, 1), 1970, "2", "NV1"), ("b", date(2023, 2, 1), 1981, "2", "NV5"),
         ("c", date(2022, 5, 1), 1982, "2", "NV5"), ("d", date(2022, 5, 1), 1983, "2", "NV1"),
         ("e", date(2023, 3, 1), 1999, "1", "NV2")], spell,
    )  # fmt: skip
    values, changed = seeker_update()
    lake.merge(
        seekers_of(batch), "silver.seekers_update", ["seeker_id"], update_when=changed, update_set=values
    )
    expected = spark.createDataFrame(
        [("a", 1980, "1", "NV3", date(2021, 1, 1), date(2022, 5, 1)),
         ("b", 1981, "2", "NV5", date(2022, 5, 1), date(2023, 2, 1)),
         ("c", 1982, "2", "NV5", date(2022, 5, 1), date(2022, 5, 1)),
         ("d", 1983, "2", "NV1", date(2022, 5, 1), date(2022, 5, 1)),
         ("e", 1999, "1", "NV2", date(2023, 3, 1), date(2023, 3, 1))],
        "seeker_id string, birth_year int, sex string, education string, first_registration date, "
        "last_registration date",
    )  # fmt: skip
    got = lake.read("silver.seekers_update")
    assertDataFrameEqual(got.drop("_row_hash"), expected)
    assertDataFrameEqual(got, seekers_of(batch.unionByName(spark.createDataFrame(
        [(r, date(2022, 5, 1), y, s, n) for r, y, s, n in (("a", 1980, "1", "NV3"), ("b", 1981, "2", "NV4"))],
        spell,
    ))))  # fmt: skip
    metrics = lake.spark.sql(f"DESCRIBE HISTORY delta.`{lake.path('silver.seekers_update')}` LIMIT 1").first()
    assert {k: metrics["operationMetrics"][k] for k in ("numTargetRowsUpdated", "numTargetRowsInserted")} == {
        "numTargetRowsUpdated": "3", "numTargetRowsInserted": "1"
    }  # fmt: skip


def test_writes_run_together_and_a_failed_one_leaves_the_others_done():
    """Two tasks that each wait for the other can only finish when they run at once; a failed task is
    raised after every other has run to its end."""
    both = threading.Barrier(2, timeout=10)
    done: list[str] = []

    def meet(name: str) -> str:
        both.wait()
        done.append(name)
        return name.upper()

    def fail() -> str:
        raise ValueError("commit refused")

    assert concurrently({"a": lambda: meet("a"), "b": lambda: meet("b")}, workers=2) == {"a": "A", "b": "B"}
    done.clear()
    with pytest.raises(ValueError, match="commit refused"):
        concurrently({"bad": fail, "a": lambda: meet("a"), "b": lambda: meet("b")}, workers=3)
    assert sorted(done) == ["a", "b"]
    done.clear()
    with pytest.raises(ValueError, match="commit refused"):  # one at a time: in order, and still every one
        concurrently({"bad": fail, "x": lambda: done.append("x")}, workers=1)
    assert done == ["x"]

"""Refreshing the gold tables: two monthly batches, the second refreshed, give the same gold tables as a
full build of the same silver; the refresh rewrites only the months and periods the batch touched."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from mobility import gold, publish, synth
from mobility.calendar import add_months, period_start_date
from mobility.config import Settings
from mobility.gold.tables import overwrite_from_driver
from mobility.ingest import ingest
from mobility.ingest.batch import seekers_of
from mobility.lake import Lake
from mobility.pipeline import write_flows
from mobility.publish import GOLD_TABLES
from mobility.synth.extract import write_extract

pytestmark = pytest.mark.slow

FIRST_CUT = date(2022, 9, 30)
SECOND_CUT = date(2022, 10, 31)
TABLES = (*gold.TABLES, *(f"published_{name}" for name in GOLD_TABLES))


def flows_and_publish(lake: Lake, settings: Settings, *, full: bool = False) -> dict:
    """The flows step, then the publish step: the gold tables' figures."""
    counts = write_flows(lake, settings, full=full)
    publish.write(lake, settings.privacy)
    return counts


def test_extract_keeps_what_was_known_on_the_date(tmp_path: Path):
    source, first, second = tmp_path / "all", tmp_path / "first", tmp_path / "second"
    source.mkdir()
    (source / "de.csv").write_text(
        "IDX;DATINS;DATANN;MOTINS;MOTANN;CATREGR;DEPCOM;ROME\n"
        "1;2022-01-10;2022-10-15;11;01;1;75056;A1101\n"  # ends in the second window
        "2;2022-10-02;;11;;1;75056;A1101\n"  # registers in the second window
        "3;2022-02-01;2022-03-01;11;02;1;75056;A1101\n"  # over before the first cut
        "4;bad-date;;11;;1;75056;A1101\n",  # unreadable: in every extract
        encoding="utf-8",
    )
    (source / "offers_1.json").write_text(
        '{"resultats": [{"id": "a", "dateCreation": "2022-09-01T10:00:00Z"},'
        ' {"id": "b", "dateCreation": "2022-10-20T10:00:00Z"}]}',
        encoding="utf-8",
    )
    write_extract(source, first, as_of=FIRST_CUT)
    write_extract(source, second, as_of=SECOND_CUT, since=FIRST_CUT)
    assert (first / "de.csv").read_text().splitlines()[1:] == [
        "1;2022-01-10;;11;;1;75056;A1101",
        "3;2022-02-01;2022-03-01;11;02;1;75056;A1101",
        "4;bad-date;;11;;1;75056;A1101",
    ]
    assert (second / "de.csv").read_text().splitlines()[1:] == [
        "1;2022-01-10;2022-10-15;11;01;1;75056;A1101",
        "2;2022-10-02;;11;;1;75056;A1101",
        "4;bad-date;;11;;1;75056;A1101",
    ]
    assert (
        '"a"' in (first / "offers_1.json").read_text() and '"b"' not in (first / "offers_1.json").read_text()
    )
    assert '"a"' not in (second / "offers_1.json").read_text()


def test_calendar_helpers_match_the_spark_periods():
    assert add_months(date(2022, 3, 15), -11) == date(2021, 4, 1)
    assert period_start_date(date(2022, 8, 31), "quarter") == date(2022, 7, 1)
    assert period_start_date(date(2022, 8, 31), "year") == date(2022, 1, 1)


@pytest.fixture(scope="module")
def batches(
    ref_lake: Lake, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    source = tmp_path_factory.mktemp("all")
    synth.generate(ref_lake.spark, ref_lake, settings, seekers=1500, months=12, start="2022-01", seed=11,
                   out=source, dirty_rate=0.0, chunk_seekers=1500)  # fmt: skip
    first, second = tmp_path_factory.mktemp("september"), tmp_path_factory.mktemp("october")
    write_extract(source, first, as_of=FIRST_CUT)
    write_extract(source, second, as_of=SECOND_CUT, since=FIRST_CUT)
    return first, second


@pytest.fixture(scope="module")
def refreshed(lake_with_ref: Lake, settings: Settings, batches: tuple[Path, Path]) -> dict:
    """The lake after batch 1 + full build, batch 2 + refresh: the refresh's figures and table versions."""
    lake = lake_with_ref
    first, second = batches
    ingest(lake, settings, first, batch_id="september")
    built = flows_and_publish(lake, settings)
    assert "mode: full" in built
    ingest(lake, settings, second, batch_id="october")
    counts = flows_and_publish(lake, settings)
    return {"counts": counts, "versions": {name: lake.version(f"gold.{name}") for name in TABLES}}


def test_a_new_batch_refreshes_only_the_months_and_periods_it_touched(refreshed, lake_with_ref: Lake):
    counts = refreshed["counts"]
    assert "mode: refresh" in counts, counts
    assert 0 < counts["touched seekers"] < lake_with_ref.read("silver.seekers").count()
    months = lake_with_ref.read("gold.transitions").select("move_month").distinct().count()
    assert 0 < counts["transition months replaced"] < months
    # the first quarter's flows were not rewritten: the refresh's commit replaced later periods only
    last = lake_with_ref.read("gold.flows").where(F.col("period_start") == date(2022, 1, 1))
    assert last.count() > 0
    history = lake_with_ref.spark.sql(f"DESCRIBE HISTORY delta.`{lake_with_ref.path('gold.flows')}` LIMIT 1")
    predicate = history.first()["operationParameters"]["predicate"]
    assert "2022-01-01" not in predicate and "period_start" in predicate
    # the summaries over every period are rewritten whole, from the driver (delta-rs), as a full build does
    for name in ("occupation_mobility", "unusual_pairs"):
        info = lake_with_ref.commit_info(f"gold.{name}", refreshed["versions"][name])
        assert str(info.get("clientVersion", "")).startswith("delta-rs"), info
        assert counts[f"gold.{name} rows"] == lake_with_ref.read(f"gold.{name}").count() > 0
    with pytest.raises(ValueError, match="gold.transitions is not bounded"):
        overwrite_from_driver(lake_with_ref, "transitions", lake_with_ref.read("gold.transitions"))


def test_a_refresh_replaces_the_segments_of_the_touched_seekers_only(refreshed, lake_with_ref: Lake):
    """One merge: the touched seekers' segments updated, inserted or deleted, every other row left alone."""
    lake = lake_with_ref
    version = refreshed["versions"]["segments"]
    info = lake.commit_info("gold.segments", version)
    assert info["operation"] == "MERGE", info
    metrics = {k: int(v) for k, v in info["operationMetrics"].items() if k.startswith("numTargetRows")}
    touched = metrics["numTargetRowsUpdated"] + metrics["numTargetRowsInserted"]
    assert metrics["numTargetRowsInserted"] > 0, metrics  # the october batch's registrations and changes
    assert 0 < touched < lake.read("gold.segments", version).count() / 2, metrics


def test_seekers_updated_batch_by_batch_equal_seekers_of_every_spell(refreshed, lake_with_ref: Lake):
    """The second batch updates seekers from its own spells only (``seeker_update``): the same rows as
    seekers computed from all of silver.spells, corrected and older spells included."""
    built = seekers_of(lake_with_ref.read("silver.spells"))
    assertDataFrameEqual(lake_with_ref.read("silver.seekers").select(*built.columns), built)
    history = lake_with_ref.spark.sql(
        f"DESCRIBE HISTORY delta.`{lake_with_ref.path('silver.seekers')}` LIMIT 1"
    ).first()["operationMetrics"]
    assert int(history["numTargetRowsUpdated"]) > 0 and int(history["numTargetRowsInserted"]) > 0


def test_refreshed_gold_tables_equal_a_full_build_of_the_same_silver(
    refreshed, lake_with_ref: Lake, settings: Settings
):
    lake = lake_with_ref
    full = flows_and_publish(lake, settings, full=True)
    assert "mode: full" in full
    for name in TABLES:
        after_refresh = lake.read(f"gold.{name}", refreshed["versions"][name])
        rebuilt = lake.read(f"gold.{name}")
        assert rebuilt.count() > 0, name
        assertDataFrameEqual(after_refresh, rebuilt.select(*after_refresh.columns))


def test_a_flows_run_with_no_new_batch_changes_nothing(refreshed, lake_with_ref: Lake, settings: Settings):
    before = lake_with_ref.version("gold.transitions")
    counts = write_flows(lake_with_ref, settings)
    assert counts == {"mode: refresh": 1, "batches": 0}
    assert lake_with_ref.version("gold.transitions") == before

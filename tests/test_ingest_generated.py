"""Ingestion of generated data: every injected defect lands in quarantine with its reason, no clean
record does, and the clean records all reach silver."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from mobility import synth
from mobility.config import Settings
from mobility.gold.tables import TABLES
from mobility.ingest import IngestReport, ingest
from mobility.lake import Lake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def generated(ref_lake: Lake, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    synth.generate(ref_lake.spark, ref_lake, settings, seekers=4000, months=24, start="2022-06", seed=7,
                   out=out, dirty_rate=0.02, chunk_seekers=2000)  # fmt: skip
    return out


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


LOGS = Recorder()


@pytest.fixture(scope="module")
def report(lake_with_ref: Lake, settings: Settings, generated: Path) -> IngestReport:
    root = logging.getLogger()
    level = root.level
    root.addHandler(LOGS)
    root.setLevel(logging.DEBUG)
    try:
        return ingest(lake_with_ref, settings, generated, batch_id="generated")
    finally:
        root.removeHandler(LOGS)
        root.setLevel(level)


def defects(folder: Path) -> list[dict[str, str]]:
    with (folder / "truth" / "defects.csv").open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream, delimiter=";"))


def test_every_injected_defect_is_quarantined_with_its_reason_and_no_clean_record_is(
    report: IngestReport, lake_with_ref: Lake, generated: Path
):
    listed = defects(generated)
    kinds = {d["kind"] for d in listed}
    assert {"bad_date", "date_order", "unknown_rome", "unknown_commune", "missing_field", "duplicate",
            "unknown_seeker", "offer_after_hire", "unknown_place"} <= kinds  # fmt: skip
    expected = {(d["file"], int(d["line"])): d["reason"] for d in listed if d["reason"]}
    rows = lake_with_ref.read("silver.quarantine").select("source_file", "line", "reason").collect()
    got = {(r["source_file"], r["line"]): r["reason"] for r in rows}
    wrong = {k: (v, got.get(k)) for k, v in expected.items() if got.get(k) != v}
    assert not wrong, (
        f"{len(wrong)} defects not quarantined with their reason, e.g. {list(wrong.items())[:5]}"
    )
    extra = set(got) - set(expected)
    assert not extra, f"{len(extra)} clean records quarantined, e.g. {sorted(extra)[:5]}"


def test_clean_records_all_reach_silver_and_files_reconcile(
    report: IngestReport, lake_with_ref: Lake, generated
):
    for c in report.counts:
        assert c["read"] == c["valid"] + c["quarantined"], c
    listed = defects(generated)
    rejected = sum(1 for d in listed if d["reason"])
    assert report.quarantined == rejected
    valid = {c["table"]: 0 for c in report.counts}
    for c in report.counts:
        valid[c["table"]] += c["valid"]
    for table, count in valid.items():
        assert lake_with_ref.read(f"silver.{table}").count() == count, table
    latin1 = lake_with_ref.read("silver.spells").where(F.col("_source_file") == "de_latin1.csv").count()
    assert latin1 == sum(1 for d in listed if d["file"] == "de_latin1.csv")


def test_the_pseudonym_key_is_in_no_log_and_no_table(report: IngestReport, lake_with_ref: Lake, settings):
    key = settings.privacy.key()[0].decode()
    assert LOGS.messages, "the ingestion logs what it does"
    assert not [m for m in LOGS.messages if key in m]
    assert any("development key" in m for m in LOGS.messages), "ingest says it uses the development key"
    for table in lake_with_ref.tables("silver") + lake_with_ref.tables("bronze"):
        df = lake_with_ref.read(table)
        text_columns = [f.name for f in df.schema.fields if f.dataType.simpleString() == "string"]
        hits = df.where(F.concat_ws("|", *text_columns).contains(key)).count()
        assert hits == 0, table


@pytest.fixture(scope="module")
def gold(report: IngestReport, lake_with_ref: Lake, settings: Settings) -> dict[str, int]:
    from mobility.pipeline import write_flows

    return write_flows(lake_with_ref, settings)


def test_flows_step_writes_gold_tables_whose_flows_sum_to_the_transitions(gold, lake_with_ref: Lake):
    transitions = lake_with_ref.read("gold.transitions")
    assert gold["gold.transitions rows"] == transitions.count() > 0
    hires = transitions.where(F.col("kind") == "hire").count()
    reorientations = transitions.where(F.col("kind") == "reorientation").count()
    assert hires + reorientations == transitions.count()
    assert hires == gold["hires_matched"] and reorientations == gold["reorientations"]
    assert gold["hires_matched"] + gold["hires_without_spell"] == lake_with_ref.read("silver.hires").count()
    flows_moves = lake_with_ref.read("gold.flows").agg(F.sum("moves")).first()[0]
    assert flows_moves == transitions.count()
    for table in ("gold.market", "gold.market_departement", "gold.flows_region", "gold.region_balance"):
        assert lake_with_ref.read(table).count() > 0, table
    # the rows each write reports (from its commit) are the rows of the table
    written = {k: v for k, v in gold.items() if k.startswith("gold.") and k.endswith(" rows")}
    assert set(written) == {f"gold.{name} rows" for name in TABLES}
    for name, rows in written.items():
        assert lake_with_ref.read(name.removesuffix(" rows")).count() == rows, name


def test_gold_files_keep_statistics_of_their_key_columns_only(gold, lake_with_ref: Lake):
    import json

    from mobility.gold.tables import STATS_COLUMNS

    for name in ("transitions", "market_departement", "flows"):
        commits = sorted((Path(lake_with_ref.path(f"gold.{name}")) / "_delta_log").glob("*.json"))
        actions = [json.loads(line) for f in commits for line in f.read_text().splitlines()]
        stats = [json.loads(a["add"]["stats"]) for a in actions if "add" in a]
        assert stats, name
        assert {frozenset(s["nullCount"]) for s in stats} == {frozenset(STATS_COLUMNS[name])}, name


# --------------------------------------------------------------------------------------- published views


@pytest.fixture(scope="module")
def gold_frames(gold, lake_with_ref: Lake) -> dict:
    from mobility.publish import GOLD_TABLES

    return {name: lake_with_ref.read(f"gold.{name}") for name in GOLD_TABLES}


@pytest.fixture(scope="module")
def published(gold, lake_with_ref: Lake, settings: Settings) -> dict:
    """The views the publish step wrote."""
    from mobility import publish

    counts = publish.write(lake_with_ref, settings.privacy)
    assert all(counts[f"gold.published_{name} rows"] > 0 for name in publish.GOLD_TABLES), counts
    return {f"published_{name}": df for name, df in publish.read(lake_with_ref).items()}


def test_published_views_of_generated_data_show_no_small_count_and_resist_the_lp_attack(
    published, gold_frames
):
    from tests.test_publish import DERIVED, PEOPLE, attack_flows_occupation, attack_flows_region

    for name, df in published.items():
        counts = (*PEOPLE[name], *DERIVED.get(name, ()))
        small = [F.count(F.when(F.expr(f"{c} > 0 AND {c} < 5"), 1)).alias(c) for c in counts]
        got = df.select(*small, F.count(F.when(F.col("suppressed"), 1)).alias("suppressed")).first().asDict()
        assert got.pop("suppressed") > 0, name  # generated data are small: every table has some
        assert got == dict.fromkeys(counts, 0), name
    moves = published["published_occupation_mobility"].select(F.explode("top_destinations.moves"))
    assert moves.where("col < 5").count() == 0

    regions = attack_flows_region(
        gold_frames["flows_region"],
        published["published_flows_region"],
        published["published_region_balance"],
    )
    assert not regions, f"flows_region cells recovered: {regions}"
    occupations = attack_flows_occupation(
        gold_frames["flows_occupation"], published["published_flows_occupation"]
    )
    assert not occupations, f"flows_occupation cells recovered: {occupations}"


def test_the_suppression_hides_the_cells_the_spark_solver_it_replaced_hid(gold_frames, settings: Settings):
    """The vectorised solver (issue 19) against the Spark one it replaced, on the same gold tables of
    generated data: the same suppressed cells, one by one."""
    from mobility.publish.views import hidden_cells
    from tests.support_publish_spark import hidden_cells as spark_hidden_cells

    limits = {"min_cell": settings.privacy.min_cell, "max_rounds": settings.privacy.max_suppression_rounds}
    new = hidden_cells(gold_frames, **limits)
    old = spark_hidden_cells(gold_frames, **limits)
    assert len(new) > 1000
    assert {"flows", "flows_region", "market", "occupation_mobility_pair"} <= {c[0] for c in new}
    assert new - old == set() and old - new == set()


def test_the_views_a_reader_gets_come_from_one_build_row_read_once(published, lake_with_ref: Lake):
    # Read once per view, a build landing between two reads would hand out views of two builds.
    from dataclasses import dataclass

    from mobility import publish
    from mobility.publish.step import STATE

    @dataclass(frozen=True)
    class Counting(Lake):
        def read(self, table, version=None):  # noqa: ANN001, ANN202
            reads.append(table)
            return super().read(table, version)

        def read_arrow(self, table, version):  # noqa: ANN001, ANN202
            reads.append(table)
            return super().read_arrow(table, version)

    reads: list[str] = []
    views = publish.read(Counting(lake_with_ref.spark, lake_with_ref.root, lake_with_ref.commit_attempts))
    assert len(views) == len(publish.GOLD_TABLES)
    assert reads.count(STATE) == 1


def test_a_publish_failing_half_way_leaves_readers_on_the_last_complete_build(
    published, lake_with_ref: Lake, settings: Settings
):
    from dataclasses import dataclass

    from mobility import publish
    from mobility.publish.step import STATE

    @dataclass(frozen=True)
    class ThirdWriteFails(Lake):
        """A lake whose third view write fails, after two views of the new build were committed."""

        def overwrite_arrow(self, data, table):  # noqa: ANN001, ANN202
            if table.startswith("gold.published_") and len(written) == 2:
                raise OSError("disk full (injected)")
            version = super().overwrite_arrow(data, table)
            written.append(table)
            return version

    def withheld(df):  # noqa: ANN001, ANN202
        """How many values the view withholds."""
        return df.agg(F.sum(F.size("suppressed_columns"))).first()[0]

    written: list[str] = []
    before = {name: withheld(df) for name, df in publish.read(lake_with_ref).items()}
    builds = lake_with_ref.read(STATE).count()
    stricter = settings.privacy.model_copy(update={"min_cell": settings.privacy.min_cell * 4})
    failing = ThirdWriteFails(lake_with_ref.spark, lake_with_ref.root, lake_with_ref.commit_attempts)
    with pytest.raises(OSError, match="injected"):
        publish.write(failing, stricter)
    assert written == ["gold.published_flows", "gold.published_flows_region"]
    latest = withheld(lake_with_ref.read("gold.published_flows"))
    assert latest > before["flows"]  # the new build's first view was written, with more values withheld...
    after = {name: withheld(df) for name, df in publish.read(lake_with_ref).items()}
    assert after == before  # ...and readers still see the last complete build, every view of it
    assert lake_with_ref.read(STATE).count() == builds

"""Ingestion through faults, each provoked for real: files that arrive broken, an ingest killed with
``kill -9`` while it writes, two ingests at once, a year that arrives month by month.

Every scenario ends on the same question: do the tables hold exactly the rows of one clean ingestion of
the same valid data, no row lost and none doubled? ``clean`` is that ingestion (a year of 600 generated
seekers, one batch). The killed and the concurrent ingests are ``mobility ingest`` processes, as a
scheduler runs them; the rest runs in the test's own session.
"""

from __future__ import annotations

import gzip
import random
import shutil
import subprocess
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from mobility import gold, synth
from mobility.config import Settings
from mobility.ingest import TABLES, ingest
from mobility.lake import Lake
from mobility.synth.extract import write_extract
from tests.processes import BIN, job_env, kill, pause, resume, start, stop, tail

pytestmark = [pytest.mark.fault, pytest.mark.slow, pytest.mark.timeout(1800)]

YEAR = 2022
SILVER = (*TABLES, "seekers")
LONG_LINE_BYTES = 50 * 2**20
JOB_TIMEOUT_S = 600
MAY_BE_EMPTY = ("gold.unusual_pairs",)  # no pair of 600 seekers' year is unusual enough


def _lake(ref_lake: Lake, root: Path) -> Lake:
    """An empty lake at ``root`` whose ref zone is the session's; commits retried as the pipeline's."""
    root.mkdir(parents=True)
    (root / "ref").symlink_to(Path(ref_lake.root) / "ref", target_is_directory=True)
    return Lake(ref_lake.spark, root, commit_attempts=5)


def _rows(lake: Lake, table: str) -> DataFrame:
    """A table's rows without the columns that say when and by which batch they came."""
    df = lake.read(table)
    lineage = ("batch_id", "ingested_at")
    return df.select(*(c for c in df.columns if not c.startswith("_") and c not in lineage))


def _assert_same_tables(lake: Lake, clean: Lake, tables: list[str]) -> None:
    for table in tables:
        got, want = _rows(lake, table), _rows(clean, table)
        assert want.count() > 0 or table in MAY_BE_EMPTY, table
        assertDataFrameEqual(got, want.select(*got.columns))


def _silver(lake: Lake) -> list[str]:
    return [f"silver.{t}" for t in SILVER if lake.exists(f"silver.{t}")]


@pytest.fixture(scope="module")
def source(ref_lake: Lake, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A year of input files of 600 generated seekers, without defects."""
    out = tmp_path_factory.mktemp("year")
    synth.generate(ref_lake.spark, ref_lake, settings, seekers=600, months=12, start=f"{YEAR}-01", seed=23,
                   out=out, dirty_rate=0.0, chunk_seekers=600)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def clean(ref_lake: Lake, settings: Settings, source: Path, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The year ingested as one batch, nothing going wrong."""
    lake = _lake(ref_lake, tmp_path_factory.mktemp("clean") / "lake")
    report = ingest(lake, settings, source, batch_id="year")
    assert report.quarantined == 0 and report.read > 0
    return lake


def _ingest_job(lake: Lake, batch: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [str(BIN / "mobility"), "--profile", "test", "--set", f"lake.root={lake.root}",
               "ingest", "--input", str(batch)]  # fmt: skip
    return start(command, log, job_env())


def _commit_window(log: Path) -> tuple[str, str]:
    """The times of the first and the last Delta commit an ingest logged (``mobility.lake`` lines)."""
    times = [line[:23] for line in log.read_text(errors="replace").splitlines() if " mobility.lake" in line]
    assert times, f"no commit logged:\n{tail(log)}"
    return times[0], times[-1]


def _wait_for_commit(process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the ingest has logged its first Delta commit."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while " mobility.lake" not in log.read_text(errors="replace"):
        assert process.poll() is None, f"ingest ended ({process.returncode}) before a commit:\n{tail(log)}"
        assert time.monotonic() < deadline, f"no commit after {JOB_TIMEOUT_S} s:\n{tail(log)}"
        time.sleep(0.05)


def _wait(process: subprocess.Popen[bytes], log: Path) -> int:
    try:
        return process.wait(JOB_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        stop(process)
        pytest.fail(f"ingest still running after {JOB_TIMEOUT_S} s; {log}:\n{tail(log)}")


# ------------------------------------------------------------------------------------------ broken files


def test_broken_files_are_quarantined_by_name_and_the_rest_of_the_batch_lands(
    ref_lake: Lake, clean: Lake, settings: Settings, source: Path, tmp_path: Path
):
    batch = tmp_path / "batch"
    shutil.copytree(source, batch)
    # the hires come gzipped, as extracts often do: read as their plain copy was
    hires = batch / "hires.csv"
    (batch / "hires.csv.gz").write_bytes(gzip.compress(hires.read_bytes()))
    hires.unlink()
    whole = gzip.compress((source / "de.csv").read_bytes())
    (batch / "de_2023-01.csv.gz").write_bytes(whole[: len(whole) // 2])  # cut in transfer
    (batch / "de_2023-02.csv").write_bytes(random.Random(3).randbytes(2**20))  # binary garbage
    (batch / "rome_2023-01.csv").write_bytes(b"")
    with (batch / "offers_2023-01.jsonl").open("wb") as out:  # 50 MB and no newline
        out.write(b'{"id": "' + b"x" * LONG_LINE_BYTES)
    lake = _lake(ref_lake, tmp_path / "lake")

    report = ingest(lake, settings, batch, batch_id="broken")

    quarantine = {r["source_file"]: r for r in lake.read("silver.quarantine").collect()}
    assert sorted(quarantine) == [
        "de_2023-01.csv.gz", "de_2023-02.csv", "offers_2023-01.jsonl", "rome_2023-01.csv"
    ]  # fmt: skip
    assert {r["reason"] for r in quarantine.values()} == {"malformed"}
    assert quarantine["de_2023-01.csv.gz"]["message"].startswith("the gzip file is truncated or corrupt: ")
    assert quarantine["de_2023-02.csv"]["message"] == "binary content (control bytes), not a text file"
    assert quarantine["rome_2023-01.csv"]["message"] == "the file is empty"
    long = quarantine["offers_2023-01.jsonl"]
    assert long["message"].startswith(f"the record has {LONG_LINE_BYTES + 8} characters, over ")
    assert len(long["raw"]) == settings.quality.max_line_chars
    assert report.quarantined == 4
    logged = lake.read("silver.ingestion_log").where(F.col("source_file").isin(*quarantine)).collect()
    assert {(r["source_file"], r["read"], r["quarantined"]) for r in logged} == {
        (name, 1, 1) for name in quarantine
    }
    _assert_same_tables(lake, clean, _silver(clean))


# ----------------------------------------------------------------------------------------- kill -9


def test_an_ingest_killed_while_it_writes_leaves_readable_tables_and_its_rerun_lands_a_clean_run(
    ref_lake: Lake, clean: Lake, settings: Settings, source: Path, tmp_path: Path
):
    lake = _lake(ref_lake, tmp_path / "lake")
    log = tmp_path / "killed.log"
    first_commit = lake.root / "silver" / "spells" / "_delta_log" / f"{0:020d}.json"
    job = _ingest_job(lake, source, log)
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while not first_commit.exists():
        assert job.poll() is None, f"ingest ended ({job.returncode}) before a silver commit:\n{tail(log)}"
        assert time.monotonic() < deadline, f"no silver commit after {JOB_TIMEOUT_S} s:\n{tail(log)}"
        time.sleep(0.05)
    kill(job)

    assert job.returncode == -9
    assert not lake.exists("silver.ingestion_log"), "the ingest was not killed before its end"
    committed = [t for t in lake.tables() if lake.exists(t)]  # a table dies uncommitted at its first write
    assert "silver.spells" in committed
    for table in committed:  # readable at their last commit, whatever was being written when the job died
        lake.read(table).count()

    ingest(lake, settings, source, batch_id="rerun")

    _assert_same_tables(lake, clean, [*_silver(clean), "bronze.records"])
    assert lake.read("silver.quarantine").count() == 0


# ------------------------------------------------------------------------------------ two at once


def _split_by_seeker(source: Path, out: tuple[Path, Path]) -> None:
    """Two batches of the same files: job seekers by parity of IDX, offer pages alternately."""
    for folder in out:
        folder.mkdir()
    for path in sorted(source.iterdir()):
        if path.name.endswith(".csv"):
            header, *lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            for parity, folder in enumerate(out):
                part = [line for line in lines if int(line.split(";", 1)[0]) % 2 == parity]
                (folder / path.name).write_text(header + "".join(part), encoding="utf-8")
    pages = sorted(p for p in source.iterdir() if p.name.startswith("offers_"))
    for i, page in enumerate(pages):
        shutil.copy(page, out[i % 2])


def test_two_ingests_at_once_both_land_every_row_once(
    ref_lake: Lake, clean: Lake, settings: Settings, source: Path, tmp_path: Path
):
    batches = (tmp_path / "even", tmp_path / "odd")
    _split_by_seeker(source, batches)
    lake = _lake(ref_lake, tmp_path / "lake")
    logs = [tmp_path / f"{b.name}.log" for b in batches]

    # They meet for certain: the first is frozen after its first commit until the second has made its own,
    # then both run on (a commit that loses the race is done again, "another job committed first").
    first = _ingest_job(lake, batches[0], logs[0])
    _wait_for_commit(first, logs[0])
    pause(first)
    try:
        assert not lake.exists("silver.ingestion_log"), "the first ingest ended before the second started"
        second = _ingest_job(lake, batches[1], logs[1])
        _wait_for_commit(second, logs[1])
    except BaseException:
        resume(first)  # a frozen group takes no SIGTERM
        stop(first)
        raise
    resume(first)
    jobs = [first, second]
    codes = [_wait(job, log) for job, log in zip(jobs, logs, strict=True)]

    windows = [_commit_window(log) for log in logs]
    assert windows[0][0] < windows[1][1] and windows[1][0] < windows[0][1], f"no overlap: {windows}"
    for code, batch, log in zip(codes, batches, logs, strict=True):
        if code != 0:  # out of attempts: a clear message, and a rerun lands it
            assert "nothing of this write was kept, run it again" in log.read_text(), tail(log)
            ingest(lake, settings, batch, batch_id=f"{batch.name}-rerun")
    _assert_same_tables(lake, clean, _silver(clean))
    # The same lines, under other file names and line numbers.
    per_kind = [dict(t.read("bronze.records").groupBy("kind").count().collect()) for t in (lake, clean)]
    assert per_kind[0] == per_kind[1]
    assert lake.read("silver.quarantine").count() == 0
    batches_logged = lake.read("silver.ingestion_log").select("batch_id").distinct().count()
    assert batches_logged == 2 + sum(code != 0 for code in codes)


# --------------------------------------------------------------------------------- month by month


def _month_ends(year: int) -> list[date]:
    return [date(year + (m == 12), m % 12 + 1, 1) - timedelta(days=1) for m in range(1, 13)]


def test_twelve_monthly_batches_give_the_gold_tables_of_one_yearly_batch(
    ref_lake: Lake, clean: Lake, settings: Settings, source: Path, tmp_path: Path
):
    lake = _lake(ref_lake, tmp_path / "lake")
    since = None
    for month_end in _month_ends(YEAR):
        batch = tmp_path / f"{month_end:%Y-%m}"
        write_extract(source, batch, as_of=month_end, since=since)
        ingest(lake, settings, batch, batch_id=f"{month_end:%Y-%m}")
        since = month_end
    assert lake.read("silver.ingestion_log").select("batch_id").distinct().count() == 12
    # One bronze commit a month (every kind in one table), none to the quarantine for months that rejected
    # nothing (it is created, empty, by the first).
    assert lake.version("bronze.records") == 11
    assert lake.version("silver.quarantine") == 0

    _assert_same_tables(lake, clean, _silver(clean))
    gold.write(lake, settings.flows)
    gold.write(clean, settings.flows)
    _assert_same_tables(lake, clean, [f"gold.{name}" for name in gold.TABLES])

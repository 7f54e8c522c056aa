"""A monthly batch on a warm session: how long one month of 600 generated seekers takes to ingest.

    .venv/bin/python -m bench.monthly [--months 6] [--results bench/results]

One SparkSession (the test profile: local[2]), the reference tables loaded once, a year of 600 generated
seekers (seed 23) cut into monthly extracts as a live system would send them; the first month is ingested
to warm the session up, then each following month is timed, with the Spark jobs it ran. The target (issue
18): <= 8 s a month.

Then, in the same session, what Delta costs whatever the rows (``delta_floor``): a MERGE of 100 rows into a
small table with deletion vectors, and a filtered count of a table just committed (a new snapshot to
build), and seven such MERGEs into seven tables, ``lake.parallel_writes`` at a time. A monthly batch
MERGEs seven tables (bronze, four silver, the seekers; the log appends) and reads two of them committed by
the month before, which bounds it from below however few records it brings.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from mobility import reference, synth
from mobility.config import load_settings
from mobility.ingest import ingest
from mobility.lake import Lake, concurrently
from mobility.spark import get_spark
from mobility.synth.extract import write_extract

HERE = Path(__file__).resolve().parent
TARGET_S = 8.0
SEEKERS, YEAR, SEED = 600, 2022, 23


def month_ends(year: int) -> list[date]:
    return [date(year + (m == 12), m % 12 + 1, 1) - timedelta(days=1) for m in range(1, 13)]


def jobs_run(spark: SparkSession) -> int:
    """The id of the last Spark job started: the difference over a step is the jobs it ran."""
    return max(spark.sparkContext.statusTracker().getJobIdsForGroup(None) or [0])


def delta_floor(spark: SparkSession, path: Path, workers: int, rounds: int = 5, tables: int = 7) -> dict:
    """Median seconds and jobs of a 100-row MERGE (50 rows matched) and of a count right after it, and the
    seconds of ``tables`` such MERGEs into as many tables, ``workers`` at a time (as a batch writes); the
    first round warms up and is left out."""
    one, paths = path / "one", [path / str(n) for n in range(tables)]  # the single MERGE's table is its own
    for table in (one, *paths):
        spark.range(100).selectExpr("id", "cast(id as string) s").write.format("delta").option(
            "delta.enableDeletionVectors", "true"
        ).save(str(table))

    def merge(table: Path, i: int) -> None:
        source = spark.range(i * 50, i * 50 + 100).selectExpr("id", "cast(id * 2 as string) s")
        merge = DeltaTable.forPath(spark, str(table)).alias("t").merge(source.alias("s"), "t.id = s.id")
        merge.whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()

    merges, reads, together = [], [], []
    for i in range(rounds):
        began, first = time.perf_counter(), jobs_run(spark)
        merge(one, i)
        merges.append((time.perf_counter() - began, jobs_run(spark) - first))
        began, first = time.perf_counter(), jobs_run(spark)
        spark.read.format("delta").load(str(one)).where("id > 5").count()
        reads.append((time.perf_counter() - began, jobs_run(spark) - first))
        began = time.perf_counter()
        concurrently({str(t): partial(merge, t, i) for t in paths}, workers)
        together.append(time.perf_counter() - began)
    return {
        "merge_100_rows_seconds": round(statistics.median(m[0] for m in merges[1:]), 2),
        "merge_100_rows_jobs": statistics.median(m[1] for m in merges[1:]),
        "count_after_commit_seconds": round(statistics.median(r[0] for r in reads[1:]), 2),
        "count_after_commit_jobs": statistics.median(r[1] for r in reads[1:]),
        f"merges_into_{tables}_tables_{workers}_at_a_time_seconds": round(statistics.median(together[1:]), 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=6, help="months ingested (the first warms up)")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="bench-monthly-"))
    try:
        settings = load_settings("test", [f"lake.root={work / 'lake'}"])
        spark = get_spark(settings)
        ref = Lake(spark, work / "ref")
        reference.load(spark, ref, settings.reference)
        source = work / "year"
        synth.generate(spark, ref, settings, seekers=SEEKERS, months=12, start=f"{YEAR}-01", seed=SEED,
                       out=source, dirty_rate=0.0, chunk_seekers=SEEKERS)  # fmt: skip
        root = work / "lake"
        root.mkdir()
        (root / "ref").symlink_to(work / "ref" / "ref", target_is_directory=True)
        lake = Lake(spark, root, commit_attempts=settings.lake.commit_attempts)
        since, months = None, []
        for month_end in month_ends(YEAR)[: args.months]:
            batch = work / f"{month_end:%Y-%m}"
            write_extract(source, batch, as_of=month_end, since=since)
            since = month_end
            began, first = time.perf_counter(), jobs_run(spark)
            report = ingest(lake, settings, batch, batch_id=f"{month_end:%Y-%m}")
            months.append({"month": f"{month_end:%Y-%m}", "records": report.read,
                           "seconds": round(time.perf_counter() - began, 1),
                           "spark_jobs": jobs_run(spark) - first})  # fmt: skip
        floor = delta_floor(spark, work / "floor", settings.lake.parallel_writes)
        spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    warm = [m["seconds"] for m in months[1:]]
    result = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "seekers": SEEKERS,
        "months": months,
        "warm_median_seconds": statistics.median(warm) if warm else None,
        "target_seconds": TARGET_S,
        "delta_floor": floor,
        "met": bool(warm) and statistics.median(warm) <= TARGET_S,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"monthly-{result['started'][:10]}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

"""Benchmark of `mobility ingest` on generated data: wall time, records per second, peak memory.

    .venv/bin/python bench/ingest.py --seekers 1000000 [--months 36] [--seed 42]

The generated input is cached under bench/data/<seekers>-<months>-<seed>/ (git-ignored); the lake is
fresh for each run. Results go to bench/results/ingest-<seekers>-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from mobility import reference, synth
from mobility.config import load_settings
from mobility.ingest import ingest
from mobility.lake import Lake
from mobility.spark import get_spark

HERE = Path(__file__).resolve().parent


def jvm_peak_bytes(spark) -> int:
    """Peak resident memory of the driver JVM (VmHWM), read from /proc."""
    pid = spark.sparkContext._jvm.ProcessHandle.current().pid()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seekers", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", default="local")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    work = HERE / "data"
    lake_root = work / "lake-ingest"
    shutil.rmtree(lake_root, ignore_errors=True)
    settings = load_settings(args.profile, [f"lake.root={lake_root}"])
    spark = get_spark(settings)
    lake = Lake(spark, lake_root)
    reference.load(spark, lake, settings.reference)

    data = work / f"{args.seekers}-{args.months}-{args.seed}"
    if not (data / "de.csv").exists():
        synth.generate(
            spark,
            lake,
            settings,
            seekers=args.seekers,
            months=args.months,
            seed=args.seed,
            out=data,
            dirty_rate=0.0,
        )
    input_bytes = sum(p.stat().st_size for p in data.iterdir() if p.is_file())

    start = time.monotonic()
    report = ingest(lake, settings, data)
    seconds = time.monotonic() - start
    result = {
        "step": "ingest",
        "seekers": args.seekers,
        "months": args.months,
        "seed": args.seed,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "records_read": report.read,
        "records_quarantined": report.quarantined,
        "records_per_second": round(report.read / seconds),
        "input_mb": round(input_bytes / 2**20, 1),
        "driver_python_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "driver_jvm_peak_mb": round(jvm_peak_bytes(spark) / 2**20),
        "spark_master": spark.sparkContext.master,
        "shuffle_partitions": settings.spark.shuffle_partitions,
    }
    out = HERE / "results" / f"ingest-{args.seekers}-{datetime.now(UTC):%Y-%m-%d}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

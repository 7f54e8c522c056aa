"""Benchmark of `mobility generate`: wall time, seekers per minute, rows per file kind, peak memory.

    .venv/bin/python bench/generate.py [SEEKERS] [--months 36] [--seed 42] [--dirty-rate 0] [--keep]

The reference tables are loaded once into bench/data/lake-generate/ (git-ignored) and read from there; the
dataset is written to a temporary folder, removed afterwards unless --keep. The generation itself (model,
simulation, files, truth) is timed apart from the Spark read of the reference tables. Results go to
bench/results/generate-<seekers>[-dirty<rate>]-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from mobility import reference, synth
from mobility.config import load_settings
from mobility.lake import Lake
from mobility.spark import get_spark

HERE = Path(__file__).resolve().parent


def peak_rss_mb() -> float:
    """Peak resident memory of this Python process (the JVM that reads the reference is another one)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seekers", type=int, nargs="?", default=1_000_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dirty-rate", type=float, default=0.0)
    parser.add_argument("--chunk-seekers", type=int, default=None)
    parser.add_argument("--profile", default="local")
    parser.add_argument("--keep", action="store_true", help="keep the generated folder and print its path")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    lake_root = HERE / "data" / "lake-generate"
    settings = load_settings(args.profile, [f"lake.root={lake_root}"])
    chunk = args.chunk_seekers or settings.synth.chunk_seekers
    spark = get_spark(settings)
    lake = Lake(spark, lake_root)
    if not lake.exists("ref.tension"):
        reference.load(spark, lake, settings.reference)

    started = time.perf_counter()
    frames = synth.read_reference(lake)
    read_s = time.perf_counter() - started
    out = Path(tempfile.mkdtemp(prefix=f"generate-{args.seekers}-"))
    started = time.perf_counter()
    counts = synth.generate_from_reference(
        frames,
        seekers=args.seekers,
        months=args.months,
        start=settings.synth.start,
        seed=args.seed,
        out=out,
        dirty_rate=args.dirty_rate,
        chunk_seekers=chunk,
        cutover=settings.reference.rome_v4_from,
    )
    generate_s = time.perf_counter() - started
    written = folder_bytes(out)
    result = {
        "benchmark": "generate",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seekers": args.seekers,
        "months": args.months,
        "seed": args.seed,
        "dirty_rate": args.dirty_rate,
        "chunk_seekers": chunk,
        "reference_read_s": round(read_s, 2),
        "generation_s": round(generate_s, 2),
        "total_s": round(read_s + generate_s, 2),
        "seekers_per_minute": round(args.seekers / generate_s * 60),
        "seekers_per_minute_with_reference_read": round(args.seekers / (read_s + generate_s) * 60),
        "rows": counts,
        "bytes_written": written,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pyarrow": pa.__version__,
        },
    }
    spark.stop()
    if args.keep:
        print(f"dataset kept in {out}")
    else:
        shutil.rmtree(out)

    print(f"generate {args.seekers:,} seekers x {args.months} months (chunks of {chunk:,})")
    print(f"  reference read (Spark)  {read_s:8.1f} s")
    print(f"  generation              {generate_s:8.1f} s   {result['seekers_per_minute']:,} seekers/min")
    for kind, rows in counts.items():
        print(f"  {kind:<22}  {rows:>12,}")
    print(f"  written                 {written / 1e6:8.0f} MB")
    print(f"  peak RSS (Python)       {result['peak_rss_mb']:8.0f} MB")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    dirty = f"-dirty{args.dirty_rate:g}" if args.dirty_rate else ""
    path = results / f"generate-{args.seekers}{dirty}-{datetime.now(UTC).date().isoformat()}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"  result                  {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()

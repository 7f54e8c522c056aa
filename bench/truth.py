"""Recovery of the generator's truth at a chosen N: TVD between gold.flows' destination shares and
truth/destinations.csv per origin (the figures of tests/test_flows_truth.py, whose functions it uses).

    .venv/bin/python bench/truth.py --seekers 100000 [--seekers 20000 ...] [--months 36] [--seed 42]
                                    [--min-moves 500] [--one-in 5] [--profile test]

Use --profile local from about 500k seekers (the test profile's 2 GB driver runs out of memory there).
For each N: generate clean data into bench/data/<seekers>-<months>-<seed>/ (git-ignored; regenerated, so
that the step is timed as in the test), ingest it into a fresh lake, write the gold tables, then the
per-origin TVD. Prints and writes to bench/results/truth-<seekers>-<date>.json: wall and CPU seconds per
step (CPU of the driver JVM and Python: the work done, whatever else the machine runs) and the load
average; hires and origins; for the origins with at least --min-moves hires (and at 100 and 1000): how
many, the max and the hires-weighted mean TVD, the same mean for a perfect estimator (multinomial draws of
the truth of the same sizes) and how many reach 0.1; the mean TVD of one seeker in --one-in (the smaller N
of the test) against N's on the same origins; the origins with the most hires.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the project root: tests.test_flows_truth holds the estimator

from mobility import gold as gold_tables  # noqa: E402
from mobility import reference, synth  # noqa: E402
from mobility.config import load_settings  # noqa: E402
from mobility.ingest import ingest  # noqa: E402
from mobility.lake import Lake  # noqa: E402
from mobility.spark import get_spark  # noqa: E402
from tests.test_flows_truth import (  # noqa: E402
    ORIGIN,
    origin_figures,
    sampling_noise,
    summary,
    transition_hire_counts,
    weighted_mean,
)


def cpu_seconds(spark) -> float:
    """CPU time used so far by the driver JVM (user + system, from /proc) and by this Python process."""
    pid = spark.sparkContext._jvm.ProcessHandle.current().pid()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") + time.process_time()


def figures_at(figures, spark, data: Path, min_moves: int) -> dict:
    big = figures[figures["moves"] >= min_moves].reset_index(drop=True)
    out = summary(figures, min_moves)
    if len(big):
        noise = sampling_noise(spark, data, big)
        out["weighted_mean_noise"] = weighted_mean(noise, big["moves"])
        out["max_noise"] = float(noise.max())
        out["reaching_0.1"] = int((big["tvd"] >= 0.1).sum())
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def run(args: argparse.Namespace, seekers: int, ref_root: Path) -> dict:
    work = HERE / "data"
    lake_root = work / f"lake-truth-{seekers}"
    shutil.rmtree(lake_root, ignore_errors=True)
    settings = load_settings(args.profile, [f"lake.root={lake_root}"])
    spark = get_spark(settings)
    lake_root.mkdir(parents=True)
    (lake_root / "ref").symlink_to(ref_root / "ref", target_is_directory=True)
    lake = Lake(spark, lake_root)
    data = work / f"{seekers}-{args.months}-{args.seed}"
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def timed(step, function, *positional, **keywords):
        start, start_cpu = time.monotonic(), cpu_seconds(spark)
        result = function(*positional, **keywords)
        seconds[step], cpu[step] = time.monotonic() - start, cpu_seconds(spark) - start_cpu
        return result

    timed("generate", synth.generate, spark, lake, settings, seekers=seekers, months=args.months,
          seed=args.seed, out=data, dirty_rate=0.0)  # fmt: skip
    timed("ingest", ingest, lake, settings, data, batch_id=f"truth-{seekers}")
    gold = timed("flows", gold_tables.write, lake, settings.flows)
    figures = timed("tvd", origin_figures, lake, data)
    sample = timed("tvd_sample", origin_figures, lake, data, transition_hire_counts(lake, one_in=args.one_in))
    both = figures.merge(sample, on=ORIGIN, suffixes=("", "_sample"))

    result = {
        "step": "truth",
        "seekers": seekers,
        "months": args.months,
        "seed": args.seed,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "spark_master": spark.sparkContext.master,
        "hires": int(figures["moves"].sum()),
        "hires_matched": gold["hires_matched"],
        "hires_without_spell": gold["hires_without_spell"],
        "origins_with_hires": len(figures),
        "max_hires_per_origin": int(figures["moves"].max()),
        "max_flows_moves_per_origin": int(figures["flows_moves"].max()),
        "truth_mass_range": [
            round(float(figures["truth_mass"].min()), 6),
            round(float(figures["truth_mass"].max()), 6),
        ],
        "all_origins_weighted_mean_tvd": round(weighted_mean(figures["tvd"], figures["moves"]), 4),
        "by_min_moves": {
            str(m): figures_at(figures, spark, data, m) for m in sorted({100, args.min_moves, 1000})
        },
        "sample": {
            "one_in": args.one_in,
            "hires": int(sample["moves"].sum()),
            "origins": len(sample),
            "weighted_mean_tvd": round(weighted_mean(both["tvd_sample"], both["moves_sample"]), 4),
            "full_weighted_mean_tvd_same_origins": round(weighted_mean(both["tvd"], both["moves"]), 4),
        },
        "top_origins": figures.head(10)[[*ORIGIN, "moves", "flows_moves", "tvd"]].round(4).to_dict("records"),
    }
    out = HERE / "results" / f"truth-{seekers}-{datetime.now(UTC):%Y-%m-%d}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2), flush=True)
    figures.to_csv(work / f"truth-figures-{seekers}.csv", index=False)
    shutil.rmtree(lake_root, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seekers", type=int, action="append", help="N (repeat the option for several)")
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--min-moves", type=int, default=500)
    parser.add_argument("--one-in", type=int, default=5, help="the sample of seekers compared with N")
    parser.add_argument("--profile", default="test")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    ref_root = HERE / "data" / "lake-truth-ref"
    settings = load_settings(args.profile, [f"lake.root={ref_root}"])
    spark = get_spark(settings)
    if not (ref_root / "ref" / "rome" / "_delta_log").is_dir():
        reference.load(spark, Lake(spark, ref_root), settings.reference)
    for seekers in args.seekers or [100_000]:
        run(args, seekers, ref_root)


if __name__ == "__main__":
    main()

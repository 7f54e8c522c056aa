"""The benchmark harness: every step of the pipeline at a scale, measured on its own, a DuckDB reference of
the flows step, and the targets of issue 7 judged.

    make bench SCALE=S|M|L [SET="spark.shuffle_partitions=16 ..."] [STEPS=ingest]
    .venv/bin/python -m bench.run --scale S [--seed 42] [--set section.key=value ...] [--no-duckdb]

Scales: S = 100,000 seekers, M = 1 million, L = 6 million, 36 months each. The generated input is cached
in bench/data/<seekers>-36-<seed>/ (git-ignored) and generated once per scale and seed; the lake, the MLflow
store and the report are fresh each run (bench/data/<scale>/). One process, one SparkSession (the local
profile with the scale's driver memory), the steps run one after the other as ``mobility pipeline`` runs
them; each step's wall time, rows in and out, peak memory and Spark figures are recorded in
bench/results/<scale>-<date>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import duckdb_ingest, duckdb_reference, targets
from bench.measure import Memory, Stages, jvm_pid
from mobility import pipeline
from mobility.config import Settings, load_settings
from mobility.lake import Lake
from mobility.spark import get_spark

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DATA = HERE / "data"
MONTHS = 36


@dataclass(frozen=True)
class Scale:
    name: str
    seekers: int
    driver_memory: str  # local mode: the executors are the driver's JVM


SCALES = {
    "S": Scale("S", 100_000, "6g"),
    "M": Scale("M", 1_000_000, "10g"),
    "L": Scale("L", 6_000_000, "12g"),
}
STEPS = ("generate", "ingest", "flows", "publish", "train", "recommend", "paths", "report")
END_TO_END = STEPS[1:]  # ingest to report: generation excluded
SILVER = ("silver.spells", "silver.sought_changes", "silver.hires", "silver.offers")

log = logging.getLogger("bench")


def bench_settings(scale: Scale, seed: int, profile: str, sets: list[str]) -> Settings:
    """The profile's settings pointed at the bench's folders, the scale's size and driver memory, the UI
    server on (the harness reads Spark's status API) and every stage kept for it; ``sets`` last."""
    work = DATA / scale.name
    settings = load_settings(
        profile,
        [
            f"lake.root={work / 'lake'}",
            f"mlflow.tracking_uri=sqlite:///{work / 'mlflow.db'}",
            f"mlflow.artifact_root={work / 'mlartifacts'}",
            f"report.out={work / 'report'}",
            f"synth.seekers={scale.seekers}",
            f"synth.months={MONTHS}",
            f"synth.seed={seed}",
            f"synth.out={DATA / f'{scale.seekers}-{MONTHS}-{seed}'}",
            "synth.dirty_rate=0",
            f"spark.driver_memory={scale.driver_memory}",
            "spark.ui_enabled=true",
            *sets,
        ],
    )
    conf = {
        **settings.spark.conf,
        "spark.ui.retainedStages": "100000",
        "spark.ui.retainedJobs": "100000",
        "spark.ui.showConsoleProgress": "false",
    }
    return settings.model_copy(update={"spark": settings.spark.model_copy(update={"conf": conf})})


def fresh(settings: Settings) -> None:
    """Remove the lake, the MLflow store and the report of an earlier run of this scale."""
    shutil.rmtree(settings.lake.root, ignore_errors=True)
    shutil.rmtree(settings.mlflow.artifact_root, ignore_errors=True)
    shutil.rmtree(settings.report.out, ignore_errors=True)
    Path(settings.mlflow.tracking_uri.removeprefix("sqlite:///")).unlink(missing_ok=True)


def rows(lake: Lake, tables: tuple[str, ...] | list[str]) -> int:
    return sum(lake.read(t).count() for t in tables)


def _int(value: object) -> int:
    return int(value) if value not in (None, "") else 0


def io_of(step: str, counts: dict[str, object], lake: Lake, settings: Settings) -> tuple[int, int]:
    """(rows in, rows out) of a step, from what it returned and the tables it read and wrote."""
    if step == "generate":
        return settings.synth.seekers, sum(_int(counts.get(k)) for k in ("de", "rome", "hires", "offers"))
    if step == "ingest":
        valid = sum(_int(v) for k, v in counts.items() if k.endswith(": valid"))
        return _int(counts["records read"]), valid
    if step == "flows":
        gold = sum(_int(v) for k, v in counts.items() if k.startswith("gold.") and k.endswith(" rows"))
        return rows(lake, SILVER), gold
    if step == "publish":
        published = sum(
            _int(v) for k, v in counts.items() if k.startswith("gold.published_") and k.endswith(" rows")
        )
        return published, published
    if step == "train":
        return rows(lake, ["gold.transitions"]), sum(k.endswith(": version") for k in counts)
    if step == "recommend":
        return _int(counts["active seekers"]), _int(counts["gold.recommendations lines"])
    if step == "paths":
        read = _int(counts["gold.transitions rows read"]) + _int(counts["gold.market rows read"])
        return read, _int(counts["gold.paths rows"])
    if step == "report":
        return _int(counts["exported rows"]), _int(counts["exported rows"])
    raise ValueError(step)


def measured(step: str, run, lake: Lake, settings: Settings, stages: Stages, jvm: int) -> dict[str, object]:
    """Run one step under the probes; its figures."""
    stages.mark()
    started = time.perf_counter()
    with Memory(jvm) as memory:
        counts = run()
    seconds = time.perf_counter() - started
    figures = {**memory.figures(), **stages.figures()}
    rows_in, rows_out = io_of(step, counts, lake, settings)
    out = {
        "step": step,
        "seconds": round(seconds, 1),
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rows_per_second": round(rows_in / seconds) if seconds else None,
        **figures,
        "counts": {k: v for k, v in counts.items() if not k.startswith("rejects in ")},
    }
    log.info("bench: %s in %.1f s, %d rows in, %d out, JVM peak %.1f GiB, shuffle %.2f GiB, spill %.2f GiB",
             step, seconds, rows_in, rows_out, figures["driver_jvm_peak_bytes"] / 2**30,
             figures["shuffle_write_bytes"] / 2**30, figures["disk_spilled_bytes"] / 2**30)  # fmt: skip
    return out


def generated(settings: Settings, lake: Lake, stages: Stages, jvm: int) -> dict[str, object]:
    """The generate step, or its figures from the run that wrote the cached input."""
    folder = Path(settings.synth.out)
    record = folder / "_bench_generate.json"
    if record.is_file():
        cached = json.loads(record.read_text())
        return {**cached, "cached": True}
    shutil.rmtree(folder, ignore_errors=True)
    figures = measured("generate", lambda: pipeline.run_generate(settings), lake, settings, stages, jvm)
    record.write_text(json.dumps(figures, indent=2) + "\n")
    return {**figures, "cached": False}


def snapshot_files(lake: Lake) -> dict[str, list[str]]:
    """The Parquet files of the current snapshot of each silver table the flows step reads."""
    files = {}
    for table in SILVER:
        paths = lake.read(table).inputFiles()
        files[table.removeprefix("silver.")] = [p.removeprefix("file:") for p in paths]
    return files


def reference_run(lake: Lake, settings: Settings, cores: int) -> dict[str, object]:
    """DuckDB's three tables over the silver snapshots the flows step read, Spark's same three tables
    (``duckdb_reference.spark_run``), and the totals of all: the step's gold tables, Spark's and DuckDB's."""
    out = DATA / settings.lake.root.parent.name / "duckdb"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    with Memory(jvm_pid(lake.spark)) as memory:
        result = duckdb_reference.run(
            snapshot_files(lake),
            out,
            settings.flows,
            threads=cores,
            memory_limit="8GB",
        )
    wall = round(time.perf_counter() - started, 1)
    spark = duckdb_reference.spark_totals(
        {name: lake.read(f"gold.{name}") for name in duckdb_reference.TOTALS}
    )
    same = duckdb_reference.spark_run(lake, out / "spark", settings.flows)
    differences = {
        f"{table}.{figure}": {"spark": spark[table][figure], "spark_same": same["totals"][table][figure],
                              "duckdb": value}
        for table, figures in result["totals"].items()
        for figure, value in figures.items()
        if not spark[table][figure] == same["totals"][table][figure] == value
    }  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)
    log.info("bench: duckdb reference in %.1f s, Spark's same tables in %.1f s, %d totals differ",
             result["seconds"], same["seconds"], len(differences))  # fmt: skip
    return {
        **result,
        "python_peak_bytes": memory.figures()["driver_python_peak_bytes"],
        "wall_seconds": wall,
        "spark_totals": spark,
        "spark_same": same,
        "differences": differences,
        "same_totals": not differences,
    }


def ingest_yardstick(settings: Settings, ingested: dict[str, object], cores: int) -> dict[str, object]:
    """DuckDB's ingest of the same input files (``bench.duckdb_ingest``): its seconds, and whether it read
    the records Spark read."""
    out = DATA / settings.lake.root.parent.name / "duckdb-ingest"
    result = duckdb_ingest.ingest(Path(settings.synth.out), settings.reference, out, threads=cores)
    shutil.rmtree(out, ignore_errors=True)
    read = sum(r["read"] for r in result["rows"].values())
    log.info("bench: duckdb ingest in %.1f s, %d records read", result["seconds"], read)
    return {**result, "records_read": read, "same_records_read": read == _int(ingested["records read"])}


def machine() -> dict[str, object]:
    import duckdb
    import pyspark

    mem = next(
        int(line.split()[1]) * 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {"cpus": os.cpu_count(), "memory_bytes": mem, "python": platform.python_version(),
            "pyspark": pyspark.__version__, "duckdb": duckdb.__version__}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="S")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", default="local")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB reference")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the result files")
    parser.add_argument(
        "--steps",
        default=",".join(END_TO_END),
        help="steps to measure (default all); the run stops after the last",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "mlflow", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    scale = SCALES[args.scale]
    settings = bench_settings(scale, args.seed, args.profile, args.sets)
    fresh(settings)
    began = datetime.now(UTC)
    spark = get_spark(settings)
    lake = Lake(spark, settings.lake.root)
    stages, jvm = Stages(spark), jvm_pid(spark)
    cores = spark.sparkContext.defaultParallelism

    steps = []
    pipeline.run_reference(settings)  # setup, not measured: the same for every scale
    steps.append(generated(settings, lake, stages, jvm))
    duck = duck_ingest = None
    chosen = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = set(chosen) - set(END_TO_END)
    if unknown:
        parser.error(f"--steps: unknown step(s) {', '.join(sorted(unknown))}; steps: {', '.join(END_TO_END)}")
    for name in END_TO_END[: max(END_TO_END.index(s) for s in chosen) + 1]:
        run = lambda n=name: pipeline.run_step(n, settings)  # noqa: E731
        steps.append(measured(name, run, lake, settings, stages, jvm))
        if name == "ingest" and not args.no_duckdb:
            duck_ingest = ingest_yardstick(settings, steps[-1]["counts"], cores)
        if name == "flows" and not args.no_duckdb:
            duck = reference_run(lake, settings, cores)

    result = {
        "scale": scale.name,
        "seekers": scale.seekers,
        "months": MONTHS,
        "seed": args.seed,
        "started": began.isoformat(timespec="seconds"),
        "machine": machine(),
        "spark": {
            "master": spark.sparkContext.master,
            "cores": cores,
            "driver_memory": settings.spark.driver_memory,
            "shuffle_partitions": settings.spark.shuffle_partitions,
            "sets": args.sets,
        },
        "steps": steps,
        "partial": chosen != list(END_TO_END),
        "end_to_end_seconds": round(sum(s["seconds"] for s in steps if s["step"] in END_TO_END), 1),
        "duckdb": duck,
        "duckdb_ingest": duck_ingest,
    }
    spark.stop()
    result["targets"] = targets.judge(result, targets.latest_results(args.results))
    json_path, md_path = targets.write(result, args.results)
    print(md_path.read_text())
    print(f"bench: results in {json_path} and {md_path}")
    return result


if __name__ == "__main__":
    main()

"""The targets of issue 7, judged on a harness result (and on the latest result of the other scales where a
target compares scales), and the result files: JSON and a markdown table."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

GIB = 2**30
END_TO_END_LIMIT_S = 20 * 60
PEAK_LIMIT_BYTES = 16 * GIB
DUCKDB_RATIO = {"M": 4.0, "L": 3.0}  # Spark's gold tables against DuckDB's, like for like
PUBLISH_LIMIT_S = {"M": 15.0, "L": 30.0}
GROWTH_LIMIT = 6.0
PER_MINUTE = 1_000_000
JUDGED_SCALES = ("M", "L")  # where a per-row rate or a ratio to DuckDB means something (S is overhead)

PROJECT = Path(__file__).resolve().parents[1]
_COLLECTING = re.compile(r"\.(collect|toPandas|toArrow|toLocalIterator)\(")


def unbounded_collects(package: Path = PROJECT / "mobility") -> list[str]:
    """Lines of the library bringing a Spark result to the driver without saying why it is bounded: each
    ``collect()``, ``toPandas()``, ``toArrow()`` or ``toLocalIterator()`` carries a ``# bounded: <why>``
    comment on its line (or the line before), e.g. ``# bounded: one row per reason``."""
    found = []
    for path in sorted(package.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            code = line.split("#", 1)[0]
            before = lines[i - 1] if i else ""
            if _COLLECTING.search(code) and "# bounded:" not in line and "# bounded:" not in before:
                found.append(f"{path.relative_to(package.parent)}:{i + 1}: {line.strip()}")
    return found


def latest_results(folder: Path) -> dict[str, dict]:
    """The latest whole run of each scale in ``folder`` (files <scale>-<date>.json; runs of some steps only,
    ``--steps``, are not compared with)."""
    latest: dict[str, dict] = {}
    for path in sorted(folder.glob("[SML]-*.json")):
        result = json.loads(path.read_text())
        if result.get("partial"):
            continue
        if result["started"] >= latest.get(result["scale"], {}).get("started", ""):
            latest[result["scale"]] = result
    return latest


def _step(result: dict, name: str) -> dict | None:
    return next((s for s in result["steps"] if s["step"] == name), None)


def _verdict(ok: bool) -> str:
    return "met" if ok else "missed"


def judge(result: dict, others: dict[str, dict]) -> list[dict[str, str]]:
    """Each target with its figure and ``met``, ``missed`` or ``not judged`` (and why)."""
    scale = result["scale"]
    judged = scale in JUDGED_SCALES
    out = []

    e2e = result["end_to_end_seconds"]
    failed = sum(s.get("failed_tasks", 0) for s in result["steps"] if s["step"] != "generate")
    peak = max(s.get("processes_peak_bytes", 0) for s in result["steps"])
    figure = f"end to end {e2e / 60:.1f} min, {failed} failed tasks, peak memory {peak / GIB:.1f} GiB"
    ok = e2e < END_TO_END_LIMIT_S and failed == 0 and peak < PEAK_LIMIT_BYTES
    if result.get("partial"):
        verdict = "not judged (some steps only)"
    else:
        verdict = _verdict(ok) if scale == "L" else "not judged (L only)"
    out.append({"target": "1. L end to end < 20 min, no task failure, peak memory < 16 GiB", "figure": figure,
                "verdict": verdict})  # fmt: skip

    duck = result.get("duckdb")
    if duck:
        flows = _step(result, "flows")["seconds"]
        totals = "same totals" if duck["same_totals"] else f"{len(duck['differences'])} totals differ"
        step = f"flows {flows:.0f} s / DuckDB {duck['seconds']:.0f} s = {flows / duck['seconds']:.1f}x"
        same = duck.get("spark_same")
        if same:  # like for like: Spark computing and writing what DuckDB does
            ratio = same["seconds"] / duck["seconds"]
            figure = (f"Spark's same three tables {same['seconds']:.0f} s / DuckDB {duck['seconds']:.0f} s = "
                      f"{ratio:.1f}x (the whole step, thirteen Delta tables: {step}); {totals}")  # fmt: skip
        else:  # results of runs before the like-for-like measure
            ratio = flows / duck["seconds"]
            figure = f"{step}; {totals}"
        limit = DUCKDB_RATIO.get(scale)
        verdict = _verdict(ratio <= limit and duck["same_totals"]) if limit else "not judged (M, L)"
    else:
        figure, verdict = "DuckDB reference not run", "not judged"
    out.append({"target": "2. flows within 4x of DuckDB at M, 3x at L", "figure": figure, "verdict": verdict})

    publish = _step(result, "publish")
    if publish is None:
        figure, verdict = "publish not run", "not judged"
    else:
        limit = PUBLISH_LIMIT_S.get(scale)
        figure = f"publish {publish['seconds']:.1f} s" + (f" (target {limit:.0f} s)" if limit else "")
        verdict = _verdict(publish["seconds"] <= limit) if limit else "not judged (M, L)"
    out.append({"target": "2b. publish <= 15 s at M, <= 30 s at L", "figure": figure, "verdict": verdict})

    pair = {"M": (result, others.get("L")), "L": (others.get("M"), result)}.get(scale)
    if pair and all(pair):
        m, big = pair
        ratios = {}
        for s in big["steps"]:
            before = _step(m, s["step"])
            if before and before["seconds"]:
                ratios[s["step"]] = s["seconds"] / before["seconds"]
        worst = max(ratios, key=ratios.get)
        figure = ", ".join(f"{k} {v:.1f}" for k, v in ratios.items())
        figure += f" (M of {m['started'][:10]}, L of {big['started'][:10]})"
        verdict = _verdict(ratios[worst] <= GROWTH_LIMIT)
    else:
        figure, verdict = "needs an M and an L result", "not judged"
    out.append({"target": "3. time(L) / time(M) <= 6 for every step", "figure": figure, "verdict": verdict})

    recommend = _step(result, "recommend")
    if recommend is None:
        figure, verdict = "recommend not run (--steps)", "not judged"
    else:
        per_min = recommend["rows_in"] / recommend["seconds"] * 60
        figure = (
            f"{recommend['rows_in']:,} seekers in {recommend['seconds']:.0f} s = {per_min / 1e6:.2f} M/min"
        )
        verdict = _verdict(per_min >= PER_MINUTE) if judged else "not judged (M, L)"
    out.append({"target": "4a. recommend scores >= 1M active seekers per minute", "figure": figure,
                "verdict": verdict})  # fmt: skip
    generate = _step(result, "generate")
    per_min = result["seekers"] / generate["seconds"] * 60
    cached = " (when the cached input was written)" if generate.get("cached") else ""
    figure = (
        f"{result['seekers']:,} seekers in {generate['seconds']:.0f} s = {per_min / 1e6:.2f} M/min{cached}"
    )
    verdict = _verdict(per_min >= PER_MINUTE) if judged else "not judged (M, L)"
    out.append({"target": "4b. the generator writes >= 1M seekers per minute", "figure": figure,
                "verdict": verdict})  # fmt: skip

    loose = unbounded_collects()
    python = max(s.get("driver_python_peak_bytes", 0) for s in result["steps"])
    figure = f"{len(loose)} unbounded collect/toPandas in mobility/; driver Python peak {_gib(python)} GiB"
    out.append({"target": "5. no collect or toPandas of growing data", "figure": figure,
                "verdict": _verdict(not loose)})  # fmt: skip
    return out


def _gib(n: int | None) -> str:
    return f"{(n or 0) / GIB:.2f}"


def markdown(result: dict) -> str:
    spark = result["spark"]
    lines = [
        f"# Benchmark {result['scale']}: {result['seekers']:,} seekers, {result['months']} months "
        f"(seed {result['seed']}), {result['started']}",
        "",
        f"{result['machine']['cpus']} CPUs, {result['machine']['memory_bytes'] / GIB:.0f} GiB; Spark "
        f"{result['machine']['pyspark']} {spark['master']} ({spark['cores']} cores), driver memory "
        f"{spark['driver_memory']}, shuffle partitions {spark['shuffle_partitions']}"
        + (f", settings {' '.join(spark['sets'])}" if spark["sets"] else ""),
        "",
        "| step | wall s | rows in | rows out | rows in / s | driver JVM peak GiB | driver Python peak GiB "
        "| all processes peak GiB | shuffle write GiB | spill disk GiB | stages | failed tasks |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["steps"]:
        name = s["step"] + (" (cached input)" if s.get("cached") else "")
        lines.append(
            f"| {name} | {s['seconds']:.1f} | {s['rows_in']:,} | {s['rows_out']:,} "
            f"| {s['rows_per_second'] or 0:,} "
            f"| {_gib(s.get('driver_jvm_peak_bytes'))} | {_gib(s.get('driver_python_peak_bytes'))} "
            f"| {_gib(s.get('processes_peak_bytes'))} | {_gib(s.get('shuffle_write_bytes'))} "
            f"| {_gib(s.get('disk_spilled_bytes'))} | {s.get('stages', 0)} | {s.get('failed_tasks', 0)} |"
        )
    lines += ["", f"End to end (ingest to report): {result['end_to_end_seconds'] / 60:.1f} min.", ""]
    duck = result.get("duckdb")
    if duck:
        flows = _step(result, "flows")["seconds"]
        lines += [
            "## DuckDB reference of the flows step",
            "",
            f"DuckDB {result['machine']['duckdb']} ({result['spark']['cores']} threads): transitions, "
            f"regional market and flows from the Parquet files of the same silver snapshots in "
            f"{duck['seconds']:.1f} s (per statement: "
            f"{', '.join(f'{k} {v}' for k, v in duck['steps'].items())}); the Spark flows step (every gold "
            f"table; the published views are the publish step's) {flows:.1f} s: ratio "
            f"{flows / duck['seconds']:.1f}.",
            "",
        ]
        same = duck.get("spark_same")
        if same:
            lines += [
                f"Like for like, Spark computing the same three tables with the flows step's code and "
                f"writing them as Parquet (`duckdb_reference.spark_run`): {same['seconds']:.1f} s (writes: "
                f"{', '.join(f'{k} {v}' for k, v in same['steps'].items())}): ratio "
                f"{same['seconds'] / duck['seconds']:.1f}.",
                "",
            ]
        lines += ["| total | Spark (gold) | Spark (same tables) | DuckDB |", "|---|---:|---:|---:|"]
        for table, figures in duck["totals"].items():
            for figure, value in figures.items():
                gold = f"{duck['spark_totals'][table][figure]:,}"
                alone = f"{same['totals'][table][figure]:,}" if same else "-"
                lines.append(f"| {table}.{figure} | {gold} | {alone} | {value:,} |")
        lines += ["", "Same totals." if duck["same_totals"] else f"Totals differ: {duck['differences']}", ""]
    yardstick = result.get("duckdb_ingest")
    if yardstick:
        ingest = _step(result, "ingest")["seconds"]
        lines += [
            "## DuckDB yardstick of the ingest step",
            "",
            f"DuckDB ({result['spark']['cores']} threads, `bench/duckdb_ingest.py`): the same input files "
            f"read, pseudonymised, checked and written as bronze and silver Parquet (no Delta, no checks "
            f"across tables) in {yardstick['seconds']:.1f} s (per part: "
            f"{', '.join(f'{k} {v}' for k, v in yardstick['parts'].items())}), "
            f"{yardstick['records_read']:,} records read"
            + (" as Spark did" if yardstick["same_records_read"] else ", NOT the records Spark read")
            + f"; the Spark ingest step {ingest:.1f} s: ratio {ingest / yardstick['seconds']:.1f}.",
            "",
        ]
    lines += ["## Targets", "", "| target | figure | verdict |", "|---|---|---|"]
    lines += [f"| {t['target']} | {t['figure']} | {t['verdict']} |" for t in result["targets"]]
    return "\n".join(lines) + "\n"


def write(result: dict, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{result['scale']}-{date.fromisoformat(result['started'][:10]).isoformat()}"
    if result.get("partial"):  # --steps: named after the last step measured, beside the whole runs
        stem += f"-to-{result['steps'][-1]['step']}"
    json_path, md_path = folder / f"{stem}.json", folder / f"{stem}.md"
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown(result), encoding="utf-8")
    return json_path, md_path

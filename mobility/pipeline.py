"""The batch steps in their order, each a thin run of the library against the lake.

A step reads only tables written by earlier steps, so each can be rerun alone; the CLI commands and the
``jobs/*.py`` spark-submit entry points both call these functions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from pyspark import StorageLevel

from mobility import reference
from mobility.config import Settings
from mobility.errors import MobilityError
from mobility.ingest import IngestReport, enforce_reject_rate, ingest
from mobility.lake import Lake
from mobility.spark import get_spark

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    name: str
    summary: str
    run: Callable[..., dict[str, object]]


@contextmanager
def timed(step: str) -> Iterator[None]:
    start = time.monotonic()
    log.info("%s: started", step)
    yield
    log.info("%s: done in %.1f s", step, time.monotonic() - start)


def open_lake(settings: Settings) -> Lake:
    """The lake of ``settings`` on this process's SparkSession."""
    return Lake(get_spark(settings), settings.lake.root, settings.lake.commit_attempts)


def run_reference(settings: Settings) -> dict[str, int]:
    """Load the official referentials into ``ref.*``; return the summary counts."""
    with timed("reference"):
        lake = open_lake(settings)
        log.info("reference: reading %s", settings.reference.dir)
        reference.load(lake.spark, lake, settings.reference)
        return reference.summary(lake)


def run_generate(settings: Settings, **options: object) -> dict[str, int]:
    """Write a synthetic dataset in the real input formats (options left None come from ``synth.*``)."""
    from mobility import synth  # numpy-heavy; only the generate step needs it

    with timed("generate"):
        lake = open_lake(settings)
        return synth.generate(lake.spark, lake, settings, **options)


def ingest_report_counts(report: IngestReport) -> dict[str, int]:
    """Per table: records read = valid + quarantined; quarantined per reason; the files with rejects.
    Every file's own figures are in ``silver.ingestion_log``."""
    counts: dict[str, int] = {"files read": len({c["source_file"] for c in report.counts})}
    for c in report.counts:
        for what in ("read", "valid", "quarantined"):
            counts[f"{c['table']}: {what}"] = counts.get(f"{c['table']}: {what}", 0) + c[what]
    for reason, n in sorted(report.reasons.items()):
        counts[f"quarantined: {reason}"] = n
    for c in report.counts:
        if c["quarantined"]:
            counts[f"rejects in {c['source_file']}"] = c["quarantined"]
    counts["records read"] = report.read
    counts["records quarantined"] = report.quarantined
    return counts


def run_ingest(settings: Settings, input_dir: Path | None = None) -> dict[str, int]:
    """Ingest a folder of input files (default: the generator's ``synth.out``) as one batch."""
    input_dir = input_dir or settings.synth.out
    with timed("ingest"):
        lake = open_lake(settings)
        report = ingest(lake, settings, input_dir)
        log.info("ingest: batch %s, %d records read, %d quarantined (%.2f%%) in %.1f s", report.batch_id,
                 report.read, report.quarantined, 100 * report.reject_rate, report.seconds)  # fmt: skip
        counts = ingest_report_counts(report)
        enforce_reject_rate(report, settings.quality.max_reject_rate)
        return counts


def write_flows(lake: Lake, settings: Settings, *, full: bool = False) -> dict[str, int]:
    """The flows step on ``lake``: the gold tables refreshed or rebuilt (``mobility.gold.write``); rows and
    figures."""
    from mobility import gold

    return gold.write(lake, settings.flows, full=full)


def run_flows(settings: Settings, *, full: bool = False) -> dict[str, int]:
    """Silver -> gold.transitions, gold.market*, gold.flows* and the indicators: refreshed for the batches
    ingested since the last build, or rebuilt whole (``full``, or when no earlier build allows a refresh;
    see ``mobility.gold``)."""
    with timed("flows"):
        return write_flows(open_lake(settings), settings, full=full)


def run_publish(settings: Settings) -> dict[str, int]:
    """Gold -> gold.published_*: the views that may leave the lake, with small-cell and secondary
    suppression (``mobility.publish``), rebuilt when the gold tables or the privacy settings changed."""
    from mobility import publish

    with timed("publish"):
        return publish.write(
            open_lake(settings), settings.privacy, parallel_writes=settings.lake.parallel_writes
        )


def run_train(settings: Settings, *, reproduce: str | None = None) -> dict[str, object]:
    """Train, evaluate, log and register the recommenders (or retrain one logged run: ``reproduce``)."""
    from mobility.recommend import train

    with timed("train"):
        lake = open_lake(settings)
        trained = [train.reproduce(lake, settings, reproduce)] if reproduce else train.train(lake, settings)
        counts: dict[str, object] = {}
        for t in trained:
            counts[f"{t.model}: run"] = t.run_id
            counts[f"{t.model}: version"] = t.version
            for metric in ("hit_at_10", "ndcg_at_10"):
                counts[f"{t.model}: test {metric}"] = f"{t.test[metric]:.4f}"
            counts[f"{t.model}: champion"] = "yes" if t.decision.promoted else "no"
        return counts


def run_recommend(
    settings: Settings, *, day: date | None = None, top_k: int | None = None
) -> dict[str, object]:
    """Score every seeker active on ``day`` (``recommend.date``; default: the end of the market's last month)
    with the champion and replace that day's partition of ``gold.recommendations``."""
    from pyspark.sql import functions as F

    from mobility import tracking
    from mobility.calendar import add_months
    from mobility.recommend import batch

    day = day or settings.recommend.date
    top_k = top_k or settings.recommend.top_k
    name = settings.train.model_name
    with timed("recommend"):
        client = tracking.configure(settings.mlflow)  # fails before any work when tracking is down
        version = tracking.champion_version(client, name)
        if version is None:
            raise tracking.TrackingError(f"no champion of model {name!r}: run `mobility train` first")
        lake = open_lake(settings)
        first, last = lake.read("gold.market").agg(F.min("month"), F.max("month")).first()  # one row
        if last is None:
            raise MobilityError("recommend: gold.market is empty: run `mobility flows` first")
        day = day or add_months(last, 1) - timedelta(days=1)
        run = client.get_run(client.get_model_version(name, str(version)).run_id)
        cutoff = run.data.params.get("window.cutoff")
        if day <= first or (cutoff is not None and day.isoformat() < cutoff):
            raise MobilityError(
                f"recommend: {day} is before what the champion (v{version}) may use: its tables hold the "
                f"moves before {cutoff}, and the market starts in {first:%Y-%m}; score a later date"
            )
        active = batch.active_states(
            lake.read("gold.segments"),
            lake.read("silver.seekers"),
            day,
            stock_categories=settings.flows.stock_categories,
            age_bands=settings.train.age_bands,
            search_bands=settings.train.search_bands,
        ).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            seekers, states = active.count(), active.select("state_id").distinct().count()
            log.info("recommend: %d seekers active on %s in %d distinct states; champion v%d", seekers, day,
                     states, version)  # fmt: skip
            references = {
                "transitions": lake.read("gold.transitions"),
                "market": lake.read("gold.market"),
                **{t: lake.read(f"ref.{t}") for t in ("rome_mobility", "departement", "region")},
            }
            lines = batch.recommendations(
                active,
                f"models:/{name}/{version}",  # the version resolved once: the alias may move meanwhile
                day,
                top_k=top_k,
                tracking_uri=settings.mlflow.tracking_uri,
                model_name=name,
                model_version=version,
                references=references,
                v4_proche_max_rank=settings.flows.v4_proche_max_rank,
            )
            lake.replace_where(
                lines, "gold.recommendations", f"run_date = DATE'{day.isoformat()}'", ("run_date",)
            )
        finally:
            active.unpersist()
        written = lake.read("gold.recommendations").where(F.col("run_date") == F.lit(day))
        figures = written.agg(F.count(F.lit(1)), F.countDistinct("seeker_id")).first()  # one row
        log.info("recommend: wrote %d lines for %d seekers of %s", figures[0], figures[1], day)
        return {
            "date": day.isoformat(),
            "champion version": version,
            "active seekers": seekers,
            "distinct states scored": states,
            "gold.recommendations lines": figures[0],
            "seekers recommended": figures[1],
        }


def run_paths(settings: Settings) -> dict[str, int]:
    """gold.transitions and gold.market -> gold.paths: per origin (occupation, region), the best paths of up
    to ``paths.max_steps`` moves towards a tense destination (``mobility.paths``); rows read and written."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from mobility import paths

    options = settings.paths
    with timed("paths"):
        started = time.monotonic()
        lake = open_lake(settings)
        transitions, market = lake.read("gold.transitions"), lake.read("gold.market")
        steps = paths.step_probabilities(
            transitions,
            months=options.months,
            # gold.paths may be shown: no step rests on fewer moves than a published count
            min_moves=max(options.min_moves, settings.privacy.min_cell),
            branching=options.branching,
        ).persist(StorageLevel.MEMORY_AND_DISK)
        tension = paths.destination_tension(market).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            counts = {
                "gold.transitions rows read": transitions.count(),
                "gold.market rows read": market.count(),
                "steps kept": steps.count(),
                "tense destinations": tension.where(tension["tension"] >= options.min_tension).count(),
            }
            best = paths.best_paths(
                steps,
                tension,
                min_tension=options.min_tension,
                max_steps=options.max_steps,
                per_origin=options.per_origin,
            )
            lake.overwrite(best, "gold.paths")
        finally:
            steps.unpersist()
            tension.unpersist()
        written = lake.read("gold.paths").agg(
            F.count(F.lit(1)).alias("rows"), F.count_distinct("from_rome", "from_region").alias("origins")
        )
        counts["gold.paths rows"], counts["origins with a path"] = written.first()  # one row
        log.info(
            "paths: %d transitions and %d market rows read, %d paths written for %d origins in %.1f s",
            counts["gold.transitions rows read"],
            counts["gold.market rows read"],
            counts["gold.paths rows"],
            counts["origins with a path"],
            time.monotonic() - started,
        )
        return counts


def run_report(settings: Settings, *, out: Path | None = None, lang: str | None = None) -> dict[str, object]:
    """The offline HTML report of the published views and the recommender, and their CSV/Parquet exports
    (``mobility.report``), in ``report.out`` (or ``out``)."""
    from mobility import report

    with timed("report"):
        return report.build(
            open_lake(settings), settings, out or settings.report.out, lang or settings.report.lang
        )


STEPS: tuple[Step, ...] = (
    Step("reference", "load the ROME, geography and DARES reference tables", run_reference),
    Step("generate", "write a synthetic dataset in the real input formats", run_generate),
    Step("ingest", "read input files into bronze and silver, with quarantine", run_ingest),
    Step("flows", "build transitions, market and flows", run_flows),
    Step("publish", "the published views, with disclosure control", run_publish),
    Step("train", "train and register the recommender models", run_train),
    Step("recommend", "score active job seekers with the champion model", run_recommend),
    Step("paths", "multi-step mobility paths", run_paths),
    Step("report", "the HTML report and published exports", run_report),
)


def step(name: str) -> Step:
    return next(s for s in STEPS if s.name == name)


def run_step(name: str, settings: Settings) -> dict[str, object]:
    return step(name).run(settings)

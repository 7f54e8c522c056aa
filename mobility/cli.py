"""The ``mobility`` command: one subcommand per batch step, settings from ``--profile`` and ``--set``.

Exit status 0 on success; on failure a one-line reason on stderr and status 1 (2 for a usage error).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import TyperException

from mobility import pipeline
from mobility.config import Settings, load_settings
from mobility.errors import MobilityError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.callback()
def _options(
    ctx: typer.Context,
    profile: Annotated[
        str | None, typer.Option(help="Settings profile: local (default), cluster or test.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override one setting: --set section.key=value (repeatable)."),
    ] = None,
    conf_dir: Annotated[
        Path | None, typer.Option(help="Folder of the settings files (default: the project's conf/).")
    ] = None,
) -> None:
    ctx.obj = load_settings(profile, set_ or (), conf_dir=conf_dir)


def _print_counts(title: str, counts: dict[str, int]) -> None:
    typer.echo(title)
    width = max(map(len, counts), default=0)
    for key, value in counts.items():
        typer.echo(
            f"  {key:<{width}}  {value:>9,}" if isinstance(value, int) else f"  {key:<{width}}  {value}"
        )


def _run(ctx: typer.Context, name: str) -> None:
    settings: Settings = ctx.obj
    counts = pipeline.run_step(name, settings)
    _print_counts(f"{name}: done (lake {settings.lake.root})", counts)


@app.command()
def reference(ctx: typer.Context) -> None:
    """Load the official ROME, geography and DARES files from reference.dir into ref.* tables."""
    _run(ctx, "reference")


@app.command()
def generate(
    ctx: typer.Context,
    seekers: Annotated[int | None, typer.Option(help="Job seekers (default synth.seekers).")] = None,
    months: Annotated[int | None, typer.Option(help="Months of history (default synth.months).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed: same seed, same bytes.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default synth.out).")] = None,
    dirty_rate: Annotated[
        float | None, typer.Option(help="Share of records given a defect, listed in defects.csv.")
    ] = None,
) -> None:
    """Write a synthetic France in the real input formats, with its ground truth."""
    settings: Settings = ctx.obj
    counts = pipeline.run_generate(
        settings, seekers=seekers, months=months, seed=seed, out=out, dirty_rate=dirty_rate
    )
    _print_counts(f"generate: done ({out or settings.synth.out})", counts)


@app.command()
def ingest(
    ctx: typer.Context,
    input_dir: Annotated[
        Path | None, typer.Option("--input", help="Folder of input files (default synth.out).")
    ] = None,
) -> None:
    """Read de, rome, hires and offers files into bronze and silver; rejects go to silver.quarantine."""
    settings: Settings = ctx.obj
    _print_counts("ingest: done", pipeline.run_ingest(settings, input_dir))


@app.command()
def flows(
    ctx: typer.Context,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Rebuild every gold table instead of refreshing what new batches touched."
        ),
    ] = False,
) -> None:
    """Build gold.transitions, gold.market and gold.flows (and coarser views) from silver."""
    settings: Settings = ctx.obj
    _print_counts(f"flows: done (lake {settings.lake.root})", pipeline.run_flows(settings, full=full))


@app.command()
def publish(ctx: typer.Context) -> None:
    """Write gold.published_*, the views that may leave the lake (counts of few people withheld)."""
    settings: Settings = ctx.obj
    _print_counts("publish: done", pipeline.run_publish(settings))


@app.command()
def train(
    ctx: typer.Context,
    reproduce: Annotated[
        str | None, typer.Option(help="Retrain the model of this MLflow run on the data versions it read.")
    ] = None,
) -> None:
    """Train the recommenders on gold.transitions, log each in MLflow, register and choose the champion."""
    settings: Settings = ctx.obj
    _print_counts("train: done", pipeline.run_train(settings, reproduce=reproduce))


@app.command()
def recommend(
    ctx: typer.Context,
    day: Annotated[
        datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="Day scored (default: recommend.date)."),
    ] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", min=1, help="Destinations per seeker.")] = None,
) -> None:
    """Score every job seeker active on the date with the champion model into gold.recommendations."""
    settings: Settings = ctx.obj
    counts = pipeline.run_recommend(settings, day=day.date() if day else None, top_k=top_k)
    _print_counts(f"recommend: done (lake {settings.lake.root})", counts)


@app.command()
def paths(ctx: typer.Context) -> None:
    """Write gold.paths: per origin, the best paths of up to paths.max_steps moves to tense destinations."""
    settings: Settings = ctx.obj
    _print_counts(f"paths: done (lake {settings.lake.root})", pipeline.run_paths(settings))


@app.command()
def report(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option(help="Folder of the report and exports (default report.out).")
    ] = None,
    lang: Annotated[
        str | None, typer.Option(help="Language of the report: fr (default report.lang) or en.")
    ] = None,
) -> None:
    """Write the offline HTML report of the published views and the recommender, with CSV/Parquet exports."""
    settings: Settings = ctx.obj
    if lang is not None and lang not in ("fr", "en"):
        raise typer.BadParameter(f"{lang!r} is not one of fr, en", param_hint="--lang")
    counts = pipeline.run_report(settings, out=out, lang=lang)
    _print_counts("report: done", counts)
    typer.echo(f"report: open {Path(str(counts['report'])).resolve().as_uri()}")


@app.command("pipeline")
def run_pipeline(
    ctx: typer.Context,
    input_dir: Annotated[
        Path | None,
        typer.Option(
            "--input", help="Ingest this folder of real files instead of generating the default data."
        ),
    ] = None,
) -> None:
    """Run every step in order: on generated data by default, on --input DIR when given."""
    settings: Settings = ctx.obj
    counts: dict[str, object] = {}
    for found in pipeline.STEPS:
        if found.name == "generate" and input_dir is not None:
            typer.echo(f"generate: skipped, ingesting {input_dir}")
        elif found.name == "ingest":
            _print_counts("ingest: done", pipeline.run_ingest(settings, input_dir))
        else:
            counts = found.run(settings)
            _print_counts(f"{found.name}: done", counts)
    typer.echo(f"pipeline: done (lake {settings.lake.root})")
    if "report" in counts:
        typer.echo(f"report: open {Path(str(counts['report'])).resolve().as_uri()}")
        typer.echo("MLflow runs and models: make mlflow-ui, then open http://127.0.0.1:5000")


@app.command("settings")
def settings_(
    ctx: typer.Context, key: Annotated[str | None, typer.Argument(help="section.key to print")] = None
) -> None:
    """Print the resolved settings (or one of them): what a run will use."""
    settings: Settings = ctx.obj
    if key:
        typer.echo(settings.get(key))
    else:
        typer.echo(json.dumps(settings.model_dump(mode="json"), indent=2))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``mobility`` script and of ``jobs/*.py``."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        code = app(args=list(argv) if argv is not None else None, prog_name="mobility", standalone_mode=False)
    except TyperException as exc:  # usage errors: click's own message, status 2
        show = getattr(exc, "show", None)
        show() if show else typer.echo(f"mobility: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except MobilityError as exc:
        typer.echo(f"mobility: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # a bug or an environment fault: still one line, the trace on request
        if os.environ.get("MOBILITY_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:500]
        typer.echo(f"mobility: {type(exc).__name__}: {first} (MOBILITY_DEBUG=1 shows the trace)", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def run_job(name: str, argv: Sequence[str] | None = None) -> None:
    """spark-submit entry: ``jobs/<name>.py [--profile P] [--set k=v ...] [step options]``.

    The global options come first on the command line of ``mobility``; a job takes them anywhere. The
    settings are read from the ``conf/`` beside ``jobs/``: under spark-submit the package is imported from
    the ``--py-files`` zip, which holds no settings, and the working directory can be anywhere.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    global_args, step_args = [], []
    conf_dir = Path(sys.argv[0]).resolve().parents[1] / "conf"
    if "--conf-dir" not in argv and not any(a.startswith("--conf-dir=") for a in argv) and conf_dir.is_dir():
        global_args += ["--conf-dir", str(conf_dir)]
    while argv:
        arg = argv.pop(0)
        if arg in ("--profile", "--set", "--conf-dir") and argv:
            global_args += [arg, argv.pop(0)]
        elif arg.startswith(("--profile=", "--set=", "--conf-dir=")):
            global_args.append(arg)
        else:
            step_args.append(arg)
    main([*global_args, name, *step_args])

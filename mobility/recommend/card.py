"""The recommender's card: what the champion is, how it was chosen, how it does per segment, what it read.

Read from the tracking store only (runs, params, metrics, the champion's ``segments.csv``), so that the
report and the notebooks show exactly what MLflow recorded.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient

from mobility.config import Settings
from mobility.recommend.evaluate import METRICS
from mobility.tracking import champion_version, configure

RUNS_SHOWN = 500  # the latest runs read to find each model's last training


@dataclass(frozen=True)
class ModelCard:
    name: str
    champion: int | None
    model: str | None  # the champion's kind (stay, popular, markov, ranker)
    run_id: str | None
    trained_on: str | None  # day of the champion's run
    windows: dict[str, str]  # cutoff, test_start, test_end
    decision: str | None
    test: dict[str, float]  # the champion's test metrics
    runs: pd.DataFrame  # model, version, run_id, day, champion, test_<metric>...: each model's latest run
    segments: pd.DataFrame  # segment, value, examples, metrics; segments under min_cell withheld (NaN)
    data_versions: pd.DataFrame  # table, version


def _day(millis: int | None) -> str | None:
    return datetime.fromtimestamp(millis / 1000, UTC).date().isoformat() if millis else None


def withhold_small(segments: pd.DataFrame, min_cell: int) -> pd.DataFrame:
    """Blank the examples and metrics of segments with fewer than ``min_cell`` examples: a segment that small
    describes few enough people to recognise them. The values of a segment (men, women) add up to the
    examples shown in total, so one blanked value would follow by difference: the next smallest is blanked
    with it."""
    out = segments.copy()
    hide = out["examples"].fillna(0) < min_cell
    for _, group in out.groupby("segment"):
        hidden = hide[group.index]
        if hidden.sum() == 1 and len(group) > 1:
            hide[group.loc[~hidden, "examples"].idxmin()] = True
    out.loc[hide, [c for c in out.columns if c not in ("segment", "value")]] = float("nan")
    return out


def model_card(settings: Settings) -> ModelCard:
    """The card of ``train.model_name`` in the tracking store of ``settings``."""
    client: MlflowClient = configure(settings.mlflow)
    name = settings.train.model_name
    experiment = client.get_experiment_by_name(settings.mlflow.experiment)
    runs = (
        client.search_runs(
            [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=RUNS_SHOWN
        )
        if experiment
        else []
    )
    version = champion_version(client, name)
    champion_run = client.get_model_version(name, str(version)).run_id if version else None
    rows, seen = [], set()
    for run in runs:
        model = run.data.params.get("model")
        if model is None or model in seen or run.info.status != "FINISHED":
            continue
        seen.add(model)
        rows.append(
            {
                "model": model,
                "version": int(run.data.tags.get("registered_version", 0)) or None,
                "run_id": run.info.run_id,
                "day": _day(run.info.start_time),
                "champion": run.info.run_id == champion_run,
                **{f"test_{m}": run.data.metrics.get(f"test_{m}") for m in METRICS if m != "examples"},
            }
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "model",
            "version",
            "run_id",
            "day",
            "champion",
            *(f"test_{m}" for m in METRICS if m != "examples"),
        ],
    )
    if champion_run is None:
        empty = pd.DataFrame(columns=["segment", "value", *METRICS])
        return ModelCard(
            name,
            None,
            None,
            None,
            None,
            {},
            None,
            {},
            table,
            empty,
            pd.DataFrame(columns=["table", "version"]),
        )
    run = client.get_run(champion_run)
    params = run.data.params
    with tempfile.TemporaryDirectory() as tmp:
        try:
            segments = pd.read_csv(
                Path(client.download_artifacts(champion_run, "segments.csv", tmp)), dtype={"value": str}
            )
        except Exception:  # a run logged before segments existed
            segments = pd.DataFrame(columns=["segment", "value", *METRICS])
    versions = pd.DataFrame(
        sorted((k[len("data.") :], int(v)) for k, v in params.items() if k.startswith("data.")),
        columns=["table", "version"],
    )
    return ModelCard(
        name=name,
        champion=version,
        model=params.get("model"),
        run_id=champion_run,
        trained_on=_day(run.info.start_time),
        windows={k: params.get(f"window.{k}", "?") for k in ("cutoff", "test_start", "test_end")},
        decision=run.data.tags.get("champion_decision"),
        test={m: run.data.metrics[f"test_{m}"] for m in METRICS if f"test_{m}" in run.data.metrics},
        runs=table,
        segments=withhold_small(segments, settings.privacy.min_cell),
        data_versions=versions,
    )

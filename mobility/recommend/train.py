"""``mobility train``: fit each recommender on the training window, evaluate it on the validation and test
windows through the very model it logs, and track it in MLflow (one run per model in the experiment of
``mlflow.experiment``, registered as ``train.model_name``; see ``mobility.tracking`` for the aliases).

The models are scored per distinct origin state (``state_id``), then joined back to the examples, so the
cost of scoring grows with the states, not with the examples.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: plots are files
import joblib  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402
from pyspark import StorageLevel  # noqa: E402
from pyspark.sql import DataFrame  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from mobility.calendar import add_months  # noqa: E402
from mobility.config import Settings  # noqa: E402
from mobility.lake import Lake  # noqa: E402
from mobility.recommend import ranker  # noqa: E402
from mobility.recommend.evaluate import METRICS, metrics, reliability, segment_metrics  # noqa: E402
from mobility.recommend.examples import Windows, examples, split, windows, with_state_id  # noqa: E402
from mobility.recommend.models import markov_tables, popular_tables  # noqa: E402
from mobility.recommend.pyfunc import (  # noqa: E402
    BOOSTER,
    INPUT_COLUMNS,
    TableRecommender,
    recommend_frame,
    score_states,
)
from mobility.tracking import (  # noqa: E402
    Decision,
    champion_version,
    configure,
    data_versions,
    log_data,
    logged_data,
    promote,
)

log = logging.getLogger(__name__)

EXAMPLES = ("gold.transitions", "silver.seekers", "silver.spells")
CONTEXT = ("gold.market", "ref.rome_mobility", "ref.departement", "ref.region")  # read by the ranker
INPUTS = (*EXAMPLES, *CONTEXT)
MODELS = ("stay", "popular", "markov", "ranker")
SELECTION_METRIC = "ndcg_at_10"


@dataclass
class Fitted:
    """A model's tables (pandas: bounded by the referential) and, for the ranker, its booster."""

    tables: dict[str, pd.DataFrame]
    booster: object = None
    config: dict[str, object] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    importances: pd.Series | None = None


@dataclass(frozen=True)
class Trained:
    model: str
    run_id: str
    model_uri: str
    version: int
    test: dict[str, float]
    decision: Decision


def learning_data(
    lake: Lake, settings: Settings, versions: dict[str, int] | None = None
) -> tuple[DataFrame, Windows]:
    """The examples (at the given Delta versions, else the current ones) and the windows of the split."""
    versions = versions or {}
    t = settings.train
    df = examples(
        lake.read("gold.transitions", versions.get("gold.transitions")),
        lake.read("silver.seekers", versions.get("silver.seekers")),
        lake.read("silver.spells", versions.get("silver.spells")),
        age_bands=t.age_bands,
        search_bands=t.search_bands,
    )
    df = with_state_id(df).persist(StorageLevel.MEMORY_AND_DISK)
    return df, windows(df, valid_months=t.valid_months, test_months=t.test_months, cutoff=t.cutoff)


def read_inputs(lake: Lake, versions: dict[str, int]) -> dict[str, DataFrame]:
    """The tables a model reads besides the examples, at the given Delta versions."""
    return {table: lake.read(table, versions.get(table)) for table in CONTEXT}


def fit(kind: str, train: DataFrame, settings: Settings, inputs: dict[str, DataFrame], w: Windows) -> Fitted:
    """The model learnt from the ``train`` examples (see ``mobility.recommend.models`` and ``.ranker``)."""
    t = settings.train
    if kind == "stay":
        return Fitted({})
    if kind == "popular":
        return Fitted(_pandas(popular_tables(train, top_n=t.top_n)))
    if kind == "markov":
        return Fitted(_pandas(markov_tables(train, alpha=t.smoothing, top_n=t.top_n)))
    if kind == "ranker":
        return fit_ranker(train, settings, inputs, w)
    raise ValueError(f"model {kind!r}: expected one of {', '.join(MODELS)}")


def _pandas(tables: dict[str, DataFrame]) -> dict[str, pd.DataFrame]:
    """Tables bounded by the referential (occupations x regions x ``top_n``, months of the market)."""
    # bounded: occupations x regions x top_n, months of the market
    return {name: df.toPandas() for name, df in tables.items()}


def fit_ranker(train: DataFrame, settings: Settings, inputs: dict[str, DataFrame], w: Windows) -> Fitted:
    """The booster learns on the last ``ranker.months`` of the training window with tables learnt before
    them, and the model keeps those tables (``mobility.recommend.ranker``)."""
    t, r = settings.train, settings.train.ranker
    start = add_months(w.cutoff, -r.months)

    before, recent = train.where(F.col("date") < F.lit(start)), train.where(F.col("date") >= F.lit(start))
    available = recent.count()
    if available == 0 or before.limit(1).count() == 0:
        raise ValueError(
            f"ranker: needs moves before and after {start} in the training window (train.ranker.months)"
        )
    fraction = min(1.0, r.max_examples / available)
    drawn = recent.sample(fraction=fraction, seed=r.seed).limit(r.max_examples)
    # bounded: max_examples rows
    learning = drawn.select(*ranker.QUERY_COLUMNS, "to_rome", "to_region").toPandas()
    tables = _pandas(
        ranker.ranker_tables(
            before,
            rome_mobility=inputs["ref.rome_mobility"],
            departement=inputs["ref.departement"],
            region=inputs["ref.region"],
            market=inputs["gold.market"],
            alpha=t.smoothing,
            top_n=t.top_n,
        )
    )
    learnt = ranker.learn(
        learning,
        tables,
        occupations=r.occupations,
        regions=r.regions,
        max_iter=r.max_iter,
        learning_rate=r.learning_rate,
        max_leaf_nodes=r.max_leaf_nodes,
        seed=r.seed,
    )
    log.info("train: ranker learnt on %d examples from %s, %s", len(learning), start, learnt.figures)
    config = {"occupations": r.occupations, "regions": r.regions, "learning_start": start.isoformat()}
    return Fitted(tables, learnt.booster, config, learnt.figures, learnt.importances)


def ranked_examples(examples_df: DataFrame, model_uri: str, *, top_k: int, tracking_uri: str) -> DataFrame:
    """Each example's ranked destinations from the logged model, its states scored once."""
    states = examples_df.select("state_id", *INPUT_COLUMNS).dropDuplicates(["state_id"])
    scored = score_states(states, model_uri, top_k=top_k, tracking_uri=tracking_uri)
    return examples_df.select("example_id", "state_id").join(scored, "state_id").drop("state_id")


def _log_model(kind: str, fitted: Fitted, sample: pd.DataFrame, folder: Path) -> str:
    paths = {}
    for level, df in fitted.tables.items():
        paths[level] = str(folder / f"{level}.parquet")
        df.to_parquet(paths[level], index=False)
    if fitted.booster is not None:
        paths[BOOSTER] = str(folder / "booster.joblib")
        joblib.dump(fitted.booster, paths[BOOSTER])
    config = {"kind": kind, **fitted.config}
    output = recommend_frame(kind, fitted.tables, sample, top_k=10, booster=fitted.booster, config=config)
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=TableRecommender(),
        artifacts=paths,
        model_config=config,
        signature=infer_signature(sample, output, params={"top_k": 10}),
        input_example=sample,
    )
    return info.model_uri


def _log_plots(rel: pd.DataFrame, folder: Path) -> None:
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(rel["mean_score"], rel["hit_rate"], marker="o", label="model")
    ax.set_xlabel("top-1 score")
    ax.set_ylabel("share of right first recommendations")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(folder / "reliability.png", dpi=100)
    plt.close(fig)
    mlflow.log_artifact(str(folder / "reliability.png"))


def _log_importances(importances: pd.Series, folder: Path) -> None:
    importances.rename("importance").to_csv(folder / "importances.csv", index_label="feature")
    mlflow.log_artifact(str(folder / "importances.csv"))
    fig, ax = plt.subplots(figsize=(6, 5))
    ordered = importances.sort_values()
    ax.barh(ordered.index, ordered.to_numpy())
    ax.set_xlabel("drop of log-likelihood when the feature is permuted")
    fig.tight_layout()
    fig.savefig(folder / "importances.png", dpi=100)
    plt.close(fig)
    mlflow.log_artifact(str(folder / "importances.png"))


def train_model(
    lake: Lake,
    settings: Settings,
    kind: str,
    data: DataFrame,
    w: Windows,
    versions: dict[str, dict],
    inputs: dict[str, DataFrame],
    scored: dict[int, float] | None = None,
) -> Trained:
    """One model: fit, log, evaluate through the logged model, register, decide the champion. ``scored``:
    the test score of versions registered earlier in this training, on these same test examples (the
    champion is not scored again when it is one of them); this model's is added to it."""
    t = settings.train
    uri = settings.mlflow.tracking_uri
    parts = split(data, w)
    started = time.monotonic()
    with mlflow.start_run(run_name=kind) as run, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mlflow.log_params(
            {
                "model": kind,
                **{k: str(v) for k, v in t.model_dump(mode="json").items()},
                "window.cutoff": w.cutoff.isoformat(),
                "window.test_start": w.test_start.isoformat(),
                "window.test_end": w.test_end.isoformat(),
            }
        )
        log_data(versions)
        fitted = fit(kind, parts["train"], settings, inputs, w)
        if fitted.figures:
            mlflow.log_metrics({f"fit_{name}": value for name, value in fitted.figures.items()})
        if fitted.importances is not None:
            _log_importances(fitted.importances, folder)
        # bounded: five rows (the model's input example)
        sample = parts["test"].select(*INPUT_COLUMNS).dropna().limit(5).toPandas()
        model_uri = _log_model(kind, fitted, sample, folder)
        scores: dict[str, dict[str, float]] = {}
        for window in ("valid", "test"):
            ranked = ranked_examples(parts[window], model_uri, top_k=t.top_k, tracking_uri=uri)
            ranked = ranked.persist(StorageLevel.MEMORY_AND_DISK)
            row = metrics(parts[window], ranked).first().asDict()  # one row
            scores[window] = {m: float(row[m] or 0.0) for m in METRICS}
            mlflow.log_metrics({f"{window}_{m}": v for m, v in scores[window].items()})
            if window == "test":
                segments = segment_metrics(parts[window], ranked).toPandas()  # bounded: segments x values
                segments.to_csv(folder / "segments.csv", index=False)
                mlflow.log_artifact(str(folder / "segments.csv"))
                # bounded: one row per reliability bin
                _log_plots(reliability(parts[window], ranked).toPandas(), folder)
            ranked.unpersist()
        version = int(mlflow.register_model(model_uri, t.model_name).version)
        champion_score = _champion_score(parts["test"], settings, scored or {})
        if scored is not None:
            scored[version] = scores["test"][SELECTION_METRIC]
        client = mlflow.MlflowClient(uri)
        decision = promote(
            client,
            t.model_name,
            version,
            scores["test"][SELECTION_METRIC],
            champion_score,
            min_gain=t.min_gain,
        )
        reason = decision.reason(SELECTION_METRIC, t.min_gain)
        mlflow.set_tags({"champion_decision": reason, "registered_version": str(version)})
        mlflow.log_dict(
            {
                "version": version,
                "promoted": decision.promoted,
                "challenger_test_ndcg_at_10": decision.challenger_score,
                "champion_test_ndcg_at_10": decision.champion_score,
                "champion_version_before": decision.champion_version,
                "champion_version_after": champion_version(client, t.model_name),
            },
            "champion_decision.json",
        )
        log.info("train: %s in %.1f s, test %s; %s", kind, time.monotonic() - started,
                 {k: round(v, 4) for k, v in scores["test"].items()}, reason)  # fmt: skip
        return Trained(kind, run.info.run_id, model_uri, version, scores["test"], decision)


def _champion_score(test: DataFrame, settings: Settings, scored: dict[int, float]) -> float | None:
    """The current champion's NDCG@10 on these test examples (None without a champion); from ``scored``
    when the champion was scored on them already."""
    t = settings.train
    uri = settings.mlflow.tracking_uri
    champion = champion_version(mlflow.MlflowClient(uri), t.model_name)
    if champion is None:
        return None
    if champion in scored:
        return scored[champion]
    ranked = ranked_examples(test, f"models:/{t.model_name}@champion", top_k=t.top_k, tracking_uri=uri)
    return float(metrics(test, ranked).first()[SELECTION_METRIC] or 0.0)


def train(lake: Lake, settings: Settings, *, models: tuple[str, ...] = MODELS) -> list[Trained]:
    """Train, log and register each model in order (see the module docstring)."""
    configure(settings.mlflow)  # fails before any work when the tracking store is unusable
    versions = data_versions(lake, INPUTS)
    read_at = {t: int(v["version"]) for t, v in versions.items()}
    data, w = learning_data(lake, settings, read_at)
    inputs = read_inputs(lake, read_at)
    log.info("train: windows train < %s <= valid < %s <= test < %s", w.cutoff, w.test_start, w.test_end)
    try:
        scored: dict[int, float] = {}
        return [train_model(lake, settings, kind, data, w, versions, inputs, scored) for kind in models]
    finally:
        data.unpersist()


def reproduce(lake: Lake, settings: Settings, run_id: str) -> Trained:
    """Retrain the model of ``run_id`` on the Delta versions it read (time travel) and its windows."""
    configure(settings.mlflow)
    run = mlflow.get_run(run_id)
    params = run.data.params
    versions = logged_data(run_id)
    data, w = learning_data(lake, settings, versions)
    w = Windows(*(pd.Timestamp(params[f"window.{k}"]).date() for k in ("cutoff", "test_start", "test_end")))
    recorded = {t: {"path": lake.path(t), "version": v} for t, v in versions.items()}
    try:
        return train_model(lake, settings, params["model"], data, w, recorded, read_inputs(lake, versions))
    finally:
        data.unpersist()

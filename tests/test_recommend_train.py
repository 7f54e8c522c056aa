"""Training on generated data with a real MLflow SQLite store: every model logged with its metrics, data
versions and artifacts; markov beats popular and stay; the champion alias follows the best test NDCG@10 and
a worse challenger does not move it; a run reproduced from its logged Delta versions gives its metrics."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from mobility import synth
from mobility.config import Settings, load_settings
from mobility.ingest import ingest
from mobility.lake import Lake
from mobility.pipeline import write_flows
from mobility.recommend import train as training

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tracked(lake_with_ref: Lake, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose lake holds gold tables of generated data and whose MLflow store is the module's own."""
    out = tmp_path_factory.mktemp("generated")
    synth.generate(lake_with_ref.spark, lake_with_ref, settings, seekers=3000, months=24, start="2021-01",
                   seed=5, out=out, dirty_rate=0.0, chunk_seekers=3000)  # fmt: skip
    ingest(lake_with_ref, settings, out, batch_id="train")
    write_flows(lake_with_ref, settings.flows)
    store = tmp_path_factory.mktemp("mlflow")
    return load_settings(
        "test",
        [
            f"lake.root={lake_with_ref.root}",
            f"mlflow.tracking_uri=sqlite:///{store}/mlflow.db",
            f"mlflow.artifact_root={store}/artifacts",
            "train.valid_months=3",
            "train.test_months=3",
        ],
        environ={},
    )


@pytest.fixture(scope="module")
def trained(lake_with_ref: Lake, tracked: Settings) -> dict[str, training.Trained]:
    return {t.model: t for t in training.train(lake_with_ref, tracked)}


def test_every_model_is_logged_with_metrics_data_versions_and_artifacts(trained, tracked: Settings):
    client = MlflowClient(tracked.mlflow.tracking_uri)
    for t in trained.values():
        run = client.get_run(t.run_id)
        assert run.data.params["model"] == t.model
        assert int(run.data.params["data.gold.transitions"]) >= 0
        for window in ("valid", "test"):
            assert 0 <= run.data.metrics[f"{window}_ndcg_at_10"] <= 1
        names = {a.path for a in client.list_artifacts(t.run_id)}
        assert {"segments.csv", "reliability.png", "data_versions.json", "champion_decision.json"} <= names
        loaded = mlflow.pyfunc.load_model(t.model_uri)
        assert loaded.metadata.signature is not None


def test_markov_beats_popular_and_stay_on_the_test_window(trained):
    for metric in ("ndcg_at_10", "hit_at_10"):
        assert trained["markov"].test[metric] > trained["popular"].test[metric], metric
        assert trained["markov"].test[metric] > trained["stay"].test[metric], metric


def test_the_champion_is_the_best_model_and_a_worse_challenger_does_not_move_it(
    trained, lake_with_ref: Lake, tracked: Settings
):
    client = MlflowClient(tracked.mlflow.tracking_uri)
    name = tracked.train.model_name
    best = max(trained.values(), key=lambda t: t.test["ndcg_at_10"])
    assert int(client.get_model_version_by_alias(name, "champion").version) == best.version
    worse = training.train(lake_with_ref, tracked, models=("stay",))[0]
    assert not worse.decision.promoted
    assert int(client.get_model_version_by_alias(name, "challenger").version) == worse.version
    assert int(client.get_model_version_by_alias(name, "champion").version) == best.version
    assert worse.decision.champion_score == pytest.approx(best.test["ndcg_at_10"])


def test_reproducing_a_run_from_its_logged_versions_gives_its_metrics(
    trained, lake_with_ref: Lake, tracked: Settings, settings: Settings, tmp_path: Path
):
    # the lake moves on after training: a new full build writes new versions of the gold tables
    write_flows(lake_with_ref, settings.flows, full=True)
    again = training.reproduce(lake_with_ref, tracked, trained["markov"].run_id)
    assert again.test == pytest.approx(trained["markov"].test)

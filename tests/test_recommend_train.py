"""Training on generated data with a real MLflow SQLite store: every model logged with its metrics, data
versions and artifacts; markov beats popular and stay; the champion alias follows the rule on test NDCG@10
and a worse challenger does not move it; a run reproduced from its logged Delta versions gives its metrics;
the champion scores the seekers active on a day into gold.recommendations, one state at a time."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from pyspark.sql import functions as F

from mobility import gold as gold_tables
from mobility import pipeline
from mobility.config import Settings
from mobility.errors import MobilityError
from mobility.lake import Lake
from mobility.recommend import train as training

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lake_with_ref(generated_lake: Lake) -> Lake:
    """The session's generated lake (silver and gold of 3,000 seekers over 2021-2022)."""
    return generated_lake


@pytest.fixture(scope="module")
def tracked(tracked_lake) -> Settings:
    """Settings on the generated lake whose MLflow store is the session's."""
    return tracked_lake.settings


@pytest.fixture(scope="module")
def trained(tracked_lake) -> dict[str, training.Trained]:
    return tracked_lake.trained


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
        if t.model == "ranker":
            assert {"importances.png", "importances.csv"} <= names
            assert run.data.metrics["fit_candidate_recall"] > 0.5
            assert int(run.data.params["data.gold.market"]) >= 0
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
    best = None  # the rule, replayed over the models in training order
    for t in trained.values():
        if best is None or t.test["ndcg_at_10"] >= best.test["ndcg_at_10"] + tracked.train.min_gain:
            best = t
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
    gold_tables.write(lake_with_ref, settings.flows, full=True)
    again = training.reproduce(lake_with_ref, tracked, trained["ranker"].run_id)
    assert again.test == pytest.approx(trained["ranker"].test)


def test_recommend_scores_every_active_seeker_once_per_state_and_replaces_its_day(
    trained, lake_with_ref: Lake, tracked: Settings
):
    client = MlflowClient(tracked.mlflow.tracking_uri)
    champion = int(client.get_model_version_by_alias(tracked.train.model_name, "champion").version)
    first = pipeline.run_recommend(tracked, day=date(2022, 9, 30), top_k=5)
    last = pipeline.run_recommend(tracked, top_k=5)  # default day: the end of the market's last month
    assert last["date"] == "2022-12-31"
    for counts in (first, last):
        assert counts["active seekers"] >= counts["distinct states scored"] > 0
        assert counts["seekers recommended"] == counts["active seekers"]
        assert counts["gold.recommendations lines"] == 5 * counts["active seekers"]
    recs = lake_with_ref.read("gold.recommendations")
    day = recs.where(F.col("run_date") == date(2022, 9, 30))
    assert day.select("state_id").distinct().count() == first["distinct states scored"]
    assert {r[0] for r in day.select("model_version").distinct().collect()} == {champion}
    ranks = day.groupBy("seeker_id").agg(
        F.min("rank").alias("lo"), F.max("rank").alias("hi"), F.count("*").alias("n")
    )
    assert ranks.where("lo != 1 OR hi != 5 OR n != 5").count() == 0
    assert day.where(F.col("rome_link").isNull() | F.col("historical_moves").isNull()).count() == 0
    with pytest.raises(MobilityError, match="before what the champion"):  # its tables hold later moves
        pipeline.run_recommend(tracked, day=date(2022, 3, 31))
    # rerunning a day replaces its partition and leaves the other day as it was
    again = pipeline.run_recommend(tracked, day=date(2022, 9, 30), top_k=3)
    assert again["gold.recommendations lines"] == 3 * first["active seekers"]
    assert (
        lake_with_ref.read("gold.recommendations").count()
        == 3 * first["active seekers"] + 5 * last["active seekers"]
    )

"""Training against a real ``mlflow server`` over HTTP, as a team deployment runs it.

The SQLite store of the other tests is read and written in process; here a server process owns the store
(PostgreSQL, a server of the test's own) and the artifacts (``--artifacts-destination``, served through it),
and the client only has ``http://127.0.0.1:PORT``. Runs, registry aliases and models must all go through
that URI: the driver and the Spark Python workers that load the models (``score_states``) included. A server
that is down must fail ``configure`` within seconds, not after MLflow's minutes of HTTP retries; one that
goes down in the middle of a training must leave the registry's aliases where they were.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import mlflow
import mlflow.tracking.fluent
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mobility.config import Settings, load_settings
from mobility.lake import Lake
from mobility.recommend import train as training
from mobility.recommend.pyfunc import INPUT_COLUMNS, OUTPUT_COLUMNS, score_states
from mobility.tracking import CHALLENGER, CHAMPION, TrackingError, configure
from tests.processes import HOST, free_ports
from tests.servers import MlflowServer, postgres_server

UNREACHABLE_WITHIN_S = 30  # the probe gives up in seconds; MLflow's own retries would take about 4 minutes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module", autouse=True)
def _mlflow_globals_restored() -> Iterator[None]:
    """``configure`` points this process's MLflow (URI, active experiment, their environment variables) at
    the module's server; the modules that run after must not inherit a server that is gone."""
    saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")}
    experiment = mlflow.tracking.fluent._active_experiment_id
    yield
    mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])  # None: unset again
    mlflow.tracking.fluent._active_experiment_id = experiment
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """``mlflow server`` on a free port of 127.0.0.1: its store in PostgreSQL, artifacts proxied to a local
    folder (a shared one in a deployment)."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    with postgres_server() as postgres:
        server = MlflowServer(postgres.uri, folder / "artifacts", folder / "server.log").start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def lake_with_ref(generated_lake: Lake) -> Lake:
    """The session's generated lake (silver and gold of 3,000 seekers over 2021-2022)."""
    return generated_lake


@pytest.fixture(scope="module")
def tracked(lake_with_ref: Lake, server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings on the generated lake whose tracking URI is the server's."""
    return load_settings(
        "test",
        [
            f"lake.root={lake_with_ref.root}",
            f"mlflow.tracking_uri={server.uri}",
            # ignored over HTTP (the server keeps the artifacts): a test checks nothing lands here
            f"mlflow.artifact_root={tmp_path_factory.mktemp('client-artifacts')}",
            "train.valid_months=3",
            "train.test_months=3",
        ],
        environ={},
    )


@pytest.fixture(scope="module")
def trained(lake_with_ref: Lake, tracked: Settings) -> dict[str, training.Trained]:
    """``stay`` becomes the first champion, then ``markov`` is compared with it: both sides over HTTP."""
    return {t.model: t for t in training.train(lake_with_ref, tracked, models=("stay", "markov"))}


@pytest.fixture(scope="module")
def origins(lake_with_ref: Lake, tracked: Settings, trained) -> pd.DataFrame:
    """A few origin states of the examples (the model's input columns, as its signature types them)."""
    data, _ = training.learning_data(lake_with_ref, tracked)
    try:
        states = data.select(*INPUT_COLUMNS).dropna().dropDuplicates().orderBy(*INPUT_COLUMNS).limit(5)
        return states.toPandas()
    finally:
        data.unpersist()


def test_runs_params_and_metrics_are_recorded_by_the_server(trained, server: MlflowServer):
    client = MlflowClient(server.uri)
    for t in trained.values():
        run = client.get_run(t.run_id)
        assert run.data.params["model"] == t.model
        assert int(run.data.params["data.gold.transitions"]) >= 0
        assert int(run.data.params["data.silver.seekers"]) >= 0
        assert 0 <= run.data.metrics["test_ndcg_at_10"] <= 1


def test_artifacts_go_through_the_server_to_its_destination_not_to_the_client_artifact_root(
    trained, server: MlflowServer, tracked: Settings
):
    client = MlflowClient(server.uri)
    run = client.get_run(trained["markov"].run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
    on_disk = server.artifacts / urlparse(run.info.artifact_uri).path.lstrip("/")
    for name in ("segments.csv", "reliability.png", "data_versions.json", "champion_decision.json"):
        assert (on_disk / name).is_file(), f"{name} not under {on_disk}"
    model = client.get_logged_model(trained["markov"].model_uri.rsplit("/", 1)[1])
    assert (server.artifacts / urlparse(model.artifact_location).path.lstrip("/") / "MLmodel").is_file()
    assert not any(tracked.mlflow.artifact_root.iterdir())


def test_the_champion_decision_is_made_and_recorded_through_the_server(trained, tracked: Settings):
    """``markov`` is compared with the champion ``stay`` scored by Spark workers loading
    ``models:/...@champion`` over HTTP, and the aliases it sets are the server's."""
    client = MlflowClient(tracked.mlflow.tracking_uri)
    name, min_gain = tracked.train.model_name, tracked.train.min_gain
    stay, markov = trained["stay"], trained["markov"]
    assert stay.decision.champion_version is None and stay.decision.promoted
    assert markov.decision.champion_version == stay.version
    assert markov.decision.champion_score == pytest.approx(stay.test["ndcg_at_10"])
    assert markov.decision.promoted == (markov.test["ndcg_at_10"] >= stay.test["ndcg_at_10"] + min_gain)
    champion = markov if markov.decision.promoted else stay
    assert int(client.get_model_version_by_alias(name, "champion").version) == champion.version
    assert int(client.get_model_version_by_alias(name, "challenger").version) == markov.version
    decision = client.get_run(markov.run_id).data.tags["champion_decision"]
    assert decision.startswith(f"version {markov.version} ")


def test_the_champion_and_a_version_load_through_the_server_and_rank_destinations(
    origins, trained, tracked: Settings
):
    mlflow.set_tracking_uri(tracked.mlflow.tracking_uri)
    name = tracked.train.model_name
    for model_uri in (f"models:/{name}@champion", f"models:/{name}/{trained['markov'].version}"):
        ranked = mlflow.pyfunc.load_model(model_uri).predict(origins, params={"top_k": 5})
        assert list(ranked.columns) == list(OUTPUT_COLUMNS), model_uri
        assert set(ranked["query"]) == set(range(len(origins))), model_uri  # every origin is answered
        for _, rows in ranked.groupby("query"):
            assert list(rows["rank"]) == list(range(1, len(rows) + 1)) and len(rows) <= 5, model_uri
            assert rows["score"].is_monotonic_decreasing, model_uri
    assert ranked.groupby("query").size().max() > 1  # markov ranks several destinations


def test_spark_python_workers_load_a_model_from_the_server_uri_they_are_given(
    origins, trained, tracked: Settings, spark
):
    """The workers do not inherit the driver's MLflow settings: only the URI passed to ``score_states``
    (training already scored the champion alias that way: see the champion decision)."""
    uri = tracked.mlflow.tracking_uri
    model_uri = f"models:/{tracked.train.model_name}/{trained['markov'].version}"
    states = origins.assign(state_id=[f"s{i}" for i in range(len(origins))])
    scored = score_states(spark.createDataFrame(states), model_uri, top_k=5, tracking_uri=uri).toPandas()
    expected = mlflow.pyfunc.load_model(model_uri).predict(origins, params={"top_k": 5})
    expected["state_id"] = states["state_id"].to_numpy()[expected["query"].to_numpy()]
    keys = ["state_id", "rank"]
    got = scored.sort_values(keys).reset_index(drop=True)
    want = expected[got.columns].sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_configure_fails_within_seconds_naming_the_uri_when_no_server_answers(settings: Settings):
    uri = f"http://{HOST}:{free_ports()[0]}"  # nothing listens there
    down = settings.mlflow.model_copy(update={"tracking_uri": uri})
    started = time.monotonic()
    with pytest.raises(TrackingError, match=f"{uri} unreachable"):
        configure(down)
    assert time.monotonic() - started < UNREACHABLE_WITHIN_S


# ------------------------------------------------------------------------------- the server goes down


def _registry(uri: str, name: str) -> dict[str, object]:
    """The registry's state of model ``name``: its versions, and the version each alias points to."""
    client = MlflowClient(uri)
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
    return {"versions": versions, "aliases": dict(client.get_registered_model(name).aliases)}


def _last_spark_job(spark) -> int:
    return max(spark.sparkContext.statusTracker().getJobIdsForGroup(None), default=-1)


@pytest.mark.fault
def test_a_server_down_when_training_starts_fails_before_any_work_and_moves_no_alias(
    server: MlflowServer, tracked: Settings, lake_with_ref: Lake, trained, spark
):
    name = tracked.train.model_name
    before, last_job = _registry(server.uri, name), _last_spark_job(spark)
    assert {CHAMPION, CHALLENGER} <= set(before["aliases"])
    server.stop()
    try:
        started = time.monotonic()
        with pytest.raises(TrackingError, match=f"{server.uri} unreachable"):
            training.train(lake_with_ref, tracked, models=("markov",))
        assert time.monotonic() - started < UNREACHABLE_WITHIN_S
        assert _last_spark_job(spark) == last_job, "Spark work ran before the tracking server was checked"
    finally:
        server.start()
    assert _registry(server.uri, name) == before


@pytest.mark.fault
@pytest.mark.parametrize("dies", ["before registering", "after registering"])
def test_a_server_down_between_logging_and_registration_leaves_the_aliases_where_they_were(
    dies: str, server: MlflowServer, tracked: Settings, lake_with_ref: Lake, trained, monkeypatch
):
    """The run is logged, then the server dies just before (or just after) the new version is registered:
    training fails, and no alias points to a version that was not registered and compared whole."""
    name = tracked.train.model_name
    before = _registry(server.uri, name)
    register = mlflow.register_model

    def server_dies(*args, **kwargs):
        if dies == "before registering":
            server.stop()
            return register(*args, **kwargs)
        registered = register(*args, **kwargs)
        server.stop()
        return registered

    monkeypatch.setattr(mlflow, "register_model", server_dies)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail now, not after minutes of retries
    try:
        with pytest.raises((MlflowException, TrackingError)):
            training.train(lake_with_ref, tracked, models=("stay",))
    finally:
        if not server.healthy():
            server.start()
        while mlflow.active_run():  # the failed run could not be closed on a server that was down
            mlflow.end_run("FAILED")
    after = _registry(server.uri, name)
    assert after["aliases"] == before["aliases"]
    new = [v for v in after["versions"] if v not in before["versions"]]
    assert new == ([] if dies == "before registering" else [max(before["versions"]) + 1])

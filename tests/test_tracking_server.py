"""Training against a real ``mlflow server`` over HTTP, as a team deployment runs it.

The SQLite store of the other tests is read and written in process; here a server process owns the store
(SQLite) and the artifacts (``--artifacts-destination``, served through it), and the client only has
``http://127.0.0.1:PORT``. Runs, registry aliases and models must all go through that URI: the driver and
the Spark Python workers that load the models (``score_states``) included. A server that is down must fail
``configure`` within seconds, not after MLflow's minutes of HTTP retries.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import mlflow.tracking.fluent
import pandas as pd
import pytest
from mlflow import MlflowClient

from mobility.config import Settings, load_settings
from mobility.lake import Lake
from mobility.recommend import train as training
from mobility.recommend.pyfunc import INPUT_COLUMNS, OUTPUT_COLUMNS, score_states
from mobility.tracking import TrackingError, configure

HOST = "127.0.0.1"
START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30
UNREACHABLE_WITHIN_S = 30  # the probe gives up in seconds; MLflow's own retries would take about 4 minutes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@dataclass(frozen=True)
class Server:
    uri: str
    artifacts: Path  # its --artifacts-destination
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else f"({path} was not written)"
    return "\n".join(text.splitlines()[-lines:])


def _wait_ready(process: subprocess.Popen[bytes], uri: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            pytest.fail(f"mlflow server exited with status {process.returncode}; {log}:\n{_tail(log)}")
        with (
            contextlib.suppress(urllib.error.URLError, OSError),  # not listening yet
            urllib.request.urlopen(f"{uri}/health", timeout=5) as response,
        ):
            if response.status == 200:
                return
        if time.monotonic() > deadline:
            pytest.fail(f"mlflow server: {uri}/health not OK after {START_TIMEOUT_S} s; {log}:\n{_tail(log)}")
        time.sleep(0.5)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the group (the CLI, uvicorn and its worker), SIGKILL if it will not go."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)  # start_new_session: the CLI leads its own group
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_TIMEOUT_S)
            return


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
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``mlflow server`` on a free port of 127.0.0.1: SQLite store, artifacts proxied to a local folder."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    uri, artifacts, log = f"http://{HOST}:{_free_port()}", folder / "artifacts", folder / "server.log"
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server",
        "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination", str(artifacts), "--serve-artifacts",
        "--host", HOST, "--port", uri.rsplit(":", 1)[1], "--workers", "1",
    ]  # fmt: skip
    # No job runner (GenAI scorers, periodic tasks): two processes less on a shared two-core machine.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=folder, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )  # fmt: skip
    try:
        _wait_ready(process, uri, log)
        yield Server(uri, artifacts, log)
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def lake_with_ref(generated_lake: Lake) -> Lake:
    """The session's generated lake (silver and gold of 3,000 seekers over 2021-2022)."""
    return generated_lake


@pytest.fixture(scope="module")
def tracked(lake_with_ref: Lake, server: Server, tmp_path_factory: pytest.TempPathFactory) -> Settings:
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


def test_runs_params_and_metrics_are_recorded_by_the_server(trained, server: Server):
    client = MlflowClient(server.uri)
    for t in trained.values():
        run = client.get_run(t.run_id)
        assert run.data.params["model"] == t.model
        assert int(run.data.params["data.gold.transitions"]) >= 0
        assert int(run.data.params["data.silver.seekers"]) >= 0
        assert 0 <= run.data.metrics["test_ndcg_at_10"] <= 1


def test_artifacts_go_through_the_server_to_its_destination_not_to_the_client_artifact_root(
    trained, server: Server, tracked: Settings
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
    uri = f"http://{HOST}:{_free_port()}"  # nothing listens there
    down = settings.mlflow.model_copy(update={"tracking_uri": uri})
    started = time.monotonic()
    with pytest.raises(TrackingError, match=f"{uri} unreachable"):
        configure(down)
    assert time.monotonic() - started < UNREACHABLE_WITHIN_S

"""MLflow: where runs go, what data a run read, and the registry's champion/challenger aliases.

Every run records the path and Delta version of each table it read (params ``data.<table>`` and the
artifact ``data_versions.json``), which is what lets ``mobility train --reproduce RUN_ID`` read the same
rows by time travel. A new model version gets the alias ``challenger``; ``champion`` moves to it only when
its score beats the current champion's, measured on the same examples, by ``min_gain``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.rest_utils import http_request

from mobility.config import MlflowSettings
from mobility.errors import MobilityError
from mobility.lake import Lake

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"

# MLflow's HTTP client retries a server that does not answer for about four minutes (7 retries, backoff
# factor 2: MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR). The reachability probe of
# ``configure`` gives up after a few seconds instead; the calls after it keep MLflow's patient defaults.
PROBE_RETRIES = 2
PROBE_TIMEOUT_S = 10


# What the registry answers for a model or an alias that does not exist (the latter: "alias not found").
_NO_SUCH_MODEL_OR_ALIAS = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


class TrackingError(MobilityError):
    """The tracking server cannot be reached, or a run or model asked for does not exist."""


def configure(settings: MlflowSettings) -> MlflowClient:
    """Point MLflow at the tracking store and experiment of the settings, and check it answers before any
    work starts (a server that is down fails here, not after training)."""
    if settings.tracking_uri.startswith(("http://", "https://")):
        _probe(settings.tracking_uri)
    mlflow.set_tracking_uri(settings.tracking_uri)
    client = MlflowClient(settings.tracking_uri)
    try:
        if client.get_experiment_by_name(settings.experiment) is None:
            location = None if settings.tracking_uri.startswith("http") else settings.artifact_root.as_uri()
            client.create_experiment(settings.experiment, artifact_location=location)
        mlflow.set_experiment(settings.experiment)
    except MlflowException as error:
        raise TrackingError(
            f"MLflow tracking at {settings.tracking_uri} unusable: {error.message}"
        ) from error
    except Exception as error:  # connection refused, timeouts: the REST client's own errors
        raise TrackingError(f"MLflow tracking at {settings.tracking_uri} unreachable: {error}") from error
    return client


def _probe(uri: str) -> None:
    """Raise ``TrackingError`` within seconds when nothing answers at ``uri``. Any HTTP answer will do, an
    error status included: the calls that follow report those in MLflow's own words."""
    try:
        http_request(get_default_host_creds(uri), "/health", "GET", max_retries=PROBE_RETRIES,
                     backoff_factor=1, timeout=PROBE_TIMEOUT_S, raise_on_status=False)  # fmt: skip
    except Exception as error:  # MlflowException wrapping the connection error or timeout
        message = error.message if isinstance(error, MlflowException) else str(error)
        raise TrackingError(f"MLflow tracking at {uri} unreachable: {message}") from error


def data_versions(lake: Lake, tables: tuple[str, ...]) -> dict[str, dict[str, object]]:
    """Path and current Delta version of each table."""
    return {table: {"path": lake.path(table), "version": lake.version(table)} for table in tables}


def log_data(versions: dict[str, dict[str, object]]) -> None:
    mlflow.log_params({f"data.{table}": f"{v['version']}" for table, v in versions.items()})
    mlflow.log_dict(versions, "data_versions.json")


def logged_data(run_id: str) -> dict[str, int]:
    """The Delta version of each table a run read."""
    run = mlflow.get_run(run_id)
    return {
        key[len("data.") :]: int(value) for key, value in run.data.params.items() if key.startswith("data.")
    }


@dataclass(frozen=True)
class Decision:
    """Whether ``champion`` moved to the new version, and the scores compared."""

    version: int
    promoted: bool
    challenger_score: float
    champion_score: float | None
    champion_version: int | None

    def reason(self, metric: str, min_gain: float) -> str:
        if self.champion_version is None:
            return f"version {self.version} is the first champion ({metric} {self.challenger_score:.4f})"
        verb = "beats" if self.promoted else "does not beat"
        return (
            f"version {self.version} ({metric} {self.challenger_score:.4f}) {verb} champion version "
            f"{self.champion_version} ({self.champion_score:.4f}) by {min_gain}"
        )


def champion_version(client: MlflowClient, name: str) -> int | None:
    """The version ``champion`` points to; None when the model or the alias does not exist yet. Any other
    failure (a server that stopped answering) is raised: taken for "no champion", it would crown the next
    version without a comparison."""
    try:
        return int(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException as error:
        if error.error_code in _NO_SUCH_MODEL_OR_ALIAS:
            return None
        raise TrackingError(f"cannot read the {CHAMPION} alias of {name}: {error.message}") from error


def promote(
    client: MlflowClient,
    name: str,
    version: int,
    challenger_score: float,
    champion_score: float | None,
    *,
    min_gain: float,
) -> Decision:
    """Give ``version`` the alias ``challenger``, and ``champion`` when it wins (or there is none)."""
    current = champion_version(client, name)
    client.set_registered_model_alias(name, CHALLENGER, str(version))
    promoted = current is None or (
        champion_score is not None and challenger_score >= champion_score + min_gain
    )
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, str(version))
    return Decision(version, promoted, challenger_score, champion_score if current else None, current)

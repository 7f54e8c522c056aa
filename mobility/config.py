"""Settings: one typed object, layered from files, the environment and the command line.

Order (later wins): ``conf/base.yaml``, ``conf/<profile>.yaml``, ``MOBILITY_<SECTION>__<KEY>`` environment
variables, ``--set section.key=value``. Every value remembers where it came from, so that an unknown key or a
value of the wrong type fails at start with the key *and* its source named. Relative paths are resolved
against the project root (the parent of the ``conf`` folder), never against the working directory, so that
a job behaves the same wherever spark-submit starts it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mobility.errors import MobilityError

ENV_PREFIX = "MOBILITY_"
# Environment variables named without the SECTION__KEY form, kept for their documented names.
ENV_ALIASES = {"MOBILITY_PSEUDO_KEY": "privacy.pseudo_key"}
PROFILES = ("local", "cluster", "test")


class SettingsError(MobilityError):
    """A setting is unknown, malformed or missing; the message names the key and its source."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    root = (info.context or {}).get("root")
    value = Path(os.path.expanduser(value))
    return value if value.is_absolute() or root is None else (Path(root) / value).resolve()


class LakeSettings(_Section):
    root: Path
    commit_attempts: int = Field(ge=1)
    parallel_writes: int = Field(ge=1)

    _root = field_validator("root")(_resolve_path)


class ReferenceFiles(_Section):
    rome_v3: str
    rome_v3_mobility: str
    rome_v3_appellation: str
    rome_v3_tree: str
    rome_v4: str
    rome_v4_mobility: str
    rome_v4_appellation: str
    regions: str
    departements: str
    communes: str
    tension: str
    fap_rome: str


class ReferenceSettings(_Section):
    dir: Path
    files: ReferenceFiles
    rome_v3_release: str
    rome_v4_release: str
    # The first day records carry ROME 4.0 codes; a code both referentials know is read in the version in
    # force on the record's date.
    rome_v4_from: date

    _dir = field_validator("dir")(_resolve_path)


class SparkSettings(_Section):
    master: str
    app_name: str
    driver_memory: str = Field(pattern=r"^\d+[kmgt]?$")
    shuffle_partitions: int = Field(gt=0)
    ui_enabled: bool
    log_level: str = Field(pattern=r"^(ALL|DEBUG|INFO|WARN|ERROR|FATAL|OFF)$")
    jars_dir: Path
    conf: dict[str, str] = {}

    _jars_dir = field_validator("jars_dir")(_resolve_path)


class MlflowSettings(_Section):
    tracking_uri: str
    experiment: str
    artifact_root: Path
    # Runs and models go to a shared `mlflow server` (the cluster profile): a database on the driver's disk
    # would keep them from the team and be lost with the machine, so it is refused at start.
    shared_server: bool

    _artifact_root = field_validator("artifact_root")(_resolve_path)

    @field_validator("tracking_uri")
    @classmethod
    def _absolute_sqlite(cls, value: str, info: ValidationInfo) -> str:
        """A relative SQLite path would follow the working directory; anchor it at the project root."""
        prefix = "sqlite:///"
        root = (info.context or {}).get("root")
        if value.startswith(prefix) and not value.startswith(prefix + "/") and root is not None:
            return prefix + str((Path(root) / value[len(prefix) :]).resolve())
        return value

    @model_validator(mode="after")
    def _a_server_when_shared(self) -> MlflowSettings:
        if self.shared_server and not self.tracking_uri.startswith(("http://", "https://")):
            raise ValueError(
                f"tracking_uri {self.tracking_uri!r} is not a server: this profile tracks to a shared mlflow "
                "server (mlflow.shared_server); set MOBILITY_MLFLOW__TRACKING_URI=http://tracking-host:5000"
            )
        return self


class PrivacySettings(_Section):
    # The least count of people a published view shows (mobility.publish).
    min_cell: int = Field(ge=1)
    # Bound of the secondary-suppression rounds; reaching it is an error naming the tables still changing.
    max_suppression_rounds: int = Field(ge=1)
    # The pseudonym key (HMAC-SHA256 of IDX), from MOBILITY_PSEUDO_KEY; never printed (SecretStr).
    pseudo_key: SecretStr | None = None
    # A documented, non-secret key for generated data, set by the local and test profiles only.
    dev_key: SecretStr | None = None

    @model_validator(mode="after")
    def _a_key_is_required(self) -> PrivacySettings:
        if self.pseudo_key is None and self.dev_key is None:
            raise ValueError(
                "no pseudonym key: set MOBILITY_PSEUDO_KEY (this profile has no development key)"
            )
        return self

    def key(self) -> tuple[bytes, bool]:
        """The key to pseudonymise with, and whether it is the development key."""
        chosen = self.pseudo_key or self.dev_key
        assert chosen is not None  # the validator guarantees one
        return chosen.get_secret_value().encode("utf-8"), self.pseudo_key is None


class SynthSettings(_Section):
    """The generator's defaults (``mobility generate``)."""

    seekers: int = Field(gt=0)
    months: int = Field(gt=0)
    start: str = Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")
    seed: int
    out: Path
    dirty_rate: float = Field(ge=0, le=1)
    chunk_seekers: int = Field(gt=0)

    _out = field_validator("out")(_resolve_path)


class FlowsSettings(_Section):
    """The ``flows`` step (definitions: ``mobility.gold.transitions``, ``market`` and ``flows``)."""

    period: Literal["month", "quarter", "year"]
    level: Literal["rome_v3", "rome"]
    grace_days: int = Field(ge=0)
    rolling_months: int = Field(gt=0)
    geo_level: Literal["departement", "region"]
    v4_proche_max_rank: int = Field(gt=0)
    stock_categories: tuple[int, ...]
    top_destinations: int = Field(gt=0)
    min_pair_moves: int = Field(gt=0)
    min_pair_ratio: float = Field(gt=0)


class RankerSettings(_Section):
    """The gradient-boosting ranker of ``mobility.recommend.ranker``."""

    # The last months of the training window the ranker learns on (its markov features come from before).
    months: int = Field(gt=0)
    # Candidates: the markov factors' best occupations and regions, crossed, plus the official links.
    occupations: int = Field(gt=0)
    regions: int = Field(gt=0)
    # At most this many examples are drawn to learn on (the learning runs on the driver).
    max_examples: int = Field(gt=0)
    max_iter: int = Field(gt=0)
    learning_rate: float = Field(gt=0, le=1)
    max_leaf_nodes: int = Field(gt=1)
    seed: int


class TrainSettings(_Section):
    """``mobility train`` (definitions: ``mobility.recommend``)."""

    valid_months: int = Field(gt=0)
    test_months: int = Field(gt=0)
    # First day of the validation window; None: from the end of the data.
    cutoff: date | None = None
    age_bands: tuple[int, ...]
    search_bands: tuple[int, ...]
    smoothing: float = Field(gt=0)
    top_n: int = Field(gt=0)
    top_k: int = Field(gt=0)
    min_gain: float = Field(ge=0)
    model_name: str = Field(min_length=1)
    ranker: RankerSettings

    @model_validator(mode="after")
    def _candidates_within_tables(self) -> TrainSettings:
        if self.ranker.occupations > self.top_n:
            raise ValueError(f"ranker.occupations ({self.ranker.occupations}) exceeds top_n ({self.top_n})")
        return self


Day = date  # a field named ``date`` hides the type inside its class


class RecommendSettings(_Section):
    """``mobility recommend`` (definitions: ``mobility.recommend.batch``)."""

    # The day scored; None: the last day of the last month of gold.market (the latest the lake describes).
    date: Day | None = None
    top_k: int = Field(gt=0)


class PathsSettings(_Section):
    """``mobility paths`` (definitions: ``mobility.paths``)."""

    # A destination qualifies when its tension over the last 12 months of gold.market (offers published per
    # month-end seeker in stock) is at least this.
    min_tension: float = Field(ge=0)
    max_steps: int = Field(ge=1, le=3)
    # Best next steps kept per state (occupation, region), and paths kept per origin.
    branching: int = Field(gt=0)
    per_origin: int = Field(gt=0)
    # A step needs at least this many observed moves.
    min_moves: int = Field(ge=1)
    # Months of gold.transitions used, counting back from the last move month.
    months: int = Field(gt=0)


class ReportSettings(_Section):
    """``mobility report`` (definitions: ``mobility.report``)."""

    out: Path
    lang: Literal["fr", "en"]
    # Rows of the ranked tables (mobility passes, tense occupations).
    top: int = Field(gt=0)
    # An occupation enters the tension ranking with at least this mean stock of seekers (national, monthly).
    min_stock: int = Field(ge=1)

    _out = field_validator("out")(_resolve_path)


class QualitySettings(_Section):
    max_reject_rate: float = Field(ge=0, le=1)
    max_line_chars: int = Field(gt=0)


class Settings(_Section):
    profile: str
    project_root: Path
    lake: LakeSettings
    reference: ReferenceSettings
    spark: SparkSettings
    mlflow: MlflowSettings
    privacy: PrivacySettings
    synth: SynthSettings
    quality: QualitySettings
    flows: FlowsSettings
    train: TrainSettings
    recommend: RecommendSettings
    paths: PathsSettings
    report: ReportSettings

    def get(self, dotted: str) -> Any:
        """Value of ``section.key`` (for the CLI's ``settings`` command and the Makefile)."""
        value: Any = self
        for part in dotted.split("."):
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, BaseModel) and part in type(value).model_fields:
                value = getattr(value, part)
            else:
                raise SettingsError(f"unknown setting {dotted!r}")
        return value


def default_conf_dir() -> Path:
    """``MOBILITY_CONF_DIR``, else ``conf/`` beside the package (a checkout), else ``./conf``."""
    if env := os.environ.get(ENV_PREFIX + "CONF_DIR"):
        return Path(env).resolve()
    beside = Path(__file__).resolve().parents[1] / "conf"
    return beside if beside.is_dir() else Path("conf").resolve()


def _merge(
    into: dict[str, Any], layer: Mapping[str, Any], source: str, origins: dict[str, str], prefix: str = ""
) -> None:
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value, source, origins, dotted + ".")
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value
            origins[dotted] = source
            if isinstance(value, Mapping):
                for sub in _flatten(value, dotted + "."):
                    origins[sub] = source


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in mapping.items():
        keys.append(prefix + key)
        if isinstance(value, Mapping):
            keys.extend(_flatten(value, f"{prefix}{key}."))
    return keys


def _split_key(dotted: str) -> list[str]:
    """``spark.conf.spark.executor.memory`` -> spark / conf / spark.executor.memory: below a free-form
    mapping, the rest of the key is one name."""
    parts, out = dotted.split("."), []
    model: type[BaseModel] | None = Settings
    while parts:
        part = parts.pop(0)
        out.append(part)
        field = model.model_fields.get(part) if model else None
        annotation = field.annotation if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif get_origin(annotation) is dict and parts:
            out.append(".".join(parts))
            break
        else:
            model = None
    return out


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    parts = _split_key(dotted)
    layer: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        layer = {part: layer}
    return layer


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def _env_layers(environ: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    layers = []
    for name, value in sorted(environ.items()):
        if name in ENV_ALIASES:
            layers.append((f"environment variable {name}", _nest(ENV_ALIASES[name], value)))
        elif name.startswith(ENV_PREFIX) and "__" in name:
            dotted = name[len(ENV_PREFIX) :].lower().replace("__", ".")
            layers.append((f"environment variable {name}", _nest(dotted, value)))
    return layers


def _set_layers(assignments: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    layers = []
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"--set {item!r}: expected section.key=value")
        layers.append((f"--set {key.strip()}", _nest(key.strip(), value)))
    return layers


def _describe(error: ValidationError, origins: Mapping[str, str]) -> str:
    lines = []
    for item in error.errors():
        dotted = ".".join(str(part) for part in item["loc"])
        source = next(
            (origins[k] for k in _prefixes(dotted) if k in origins),
            "no file sets it",
        )
        if item["type"] == "extra_forbidden":
            reason = "unknown setting"
        elif item["type"] == "missing":
            reason = "missing setting"
        elif "key" in dotted or item["type"] == "value_error":
            reason = item["msg"].removeprefix("Value error, ")  # never echo a key's value
        else:
            reason = f"{item['msg']} (got {item.get('input')!r})"
        lines.append(f"{dotted}: {reason} [{source}]")
    return "invalid settings: " + "; ".join(lines)


def _prefixes(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def load_settings(
    profile: str | None = None,
    overrides: Sequence[str] = (),
    conf_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings of ``profile`` (default ``MOBILITY_PROFILE`` or ``local``); raise SettingsError."""
    environ = os.environ if environ is None else environ
    profile = profile or environ.get(ENV_PREFIX + "PROFILE") or "local"
    if profile not in PROFILES:
        raise SettingsError(f"profile: unknown profile {profile!r}, expected one of {', '.join(PROFILES)}")
    conf_dir = (conf_dir or default_conf_dir()).resolve()
    files = [conf_dir / "base.yaml", conf_dir / f"{profile}.yaml"]
    for path in files:
        if not path.is_file():
            raise SettingsError(f"{path}: settings file not found")

    layers = [(str(path), _read_yaml(path)) for path in files]
    layers += _env_layers(environ) + _set_layers(overrides)
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for source, layer in layers:
        _merge(merged, layer, source, origins)
    root = conf_dir.parent
    merged.update(profile=profile, project_root=root)
    try:
        return Settings.model_validate(merged, context={"root": root})
    except ValidationError as exc:
        raise SettingsError(_describe(exc, origins)) from None

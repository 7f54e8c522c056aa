from pathlib import Path

import pytest

from mobility.config import SettingsError, load_settings
from tests.conftest import PROJECT_ROOT

CONF = PROJECT_ROOT / "conf"


@pytest.fixture
def conf_dir(tmp_path: Path) -> Path:
    """A copy of conf/ that a test can spoil."""
    folder = tmp_path / "conf"
    folder.mkdir()
    for path in CONF.glob("*.yaml"):
        (folder / path.name).write_text(path.read_text())
    return folder


def test_local_profile_is_the_default_and_paths_are_anchored_at_the_project_root():
    settings = load_settings(environ={})
    assert settings.profile == "local"
    assert settings.lake.root == PROJECT_ROOT / "lake"
    assert settings.reference.dir == (PROJECT_ROOT / "../shared/data/reference").resolve()
    assert settings.mlflow.tracking_uri == f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"
    assert settings.privacy.min_cell == 5


def test_profile_file_overrides_base():
    settings = load_settings("test", environ={})
    assert settings.spark.master == "local[2]"
    assert settings.spark.ui_enabled is False
    assert settings.spark.app_name == "mobility-tests"


def test_environment_overrides_files_and_set_overrides_environment(tmp_path: Path):
    env = {"MOBILITY_LAKE__ROOT": str(tmp_path / "env"), "MOBILITY_PRIVACY__MIN_CELL": "11"}
    settings = load_settings("local", environ=env)
    assert settings.lake.root == tmp_path / "env"
    assert settings.privacy.min_cell == 11
    settings = load_settings("local", [f"lake.root={tmp_path / 'cli'}"], environ=env)
    assert settings.lake.root == tmp_path / "cli"


def test_profile_comes_from_the_environment_when_not_given():
    assert load_settings(environ={"MOBILITY_PROFILE": "test"}).profile == "test"


def test_unknown_key_in_a_file_is_refused_naming_key_and_file(conf_dir: Path):
    (conf_dir / "local.yaml").write_text("lake:\n  roots: elsewhere\n")
    with pytest.raises(SettingsError) as error:
        load_settings("local", conf_dir=conf_dir, environ={})
    assert "lake.roots: unknown setting" in str(error.value)
    assert str(conf_dir / "local.yaml") in str(error.value)


def test_unknown_section_on_the_command_line_is_refused():
    with pytest.raises(SettingsError, match=r"lakes: unknown setting \[--set lakes.root\]"):
        load_settings("local", ["lakes.root=/tmp/x"], environ={})


def test_unknown_environment_key_is_refused_naming_the_variable():
    with pytest.raises(
        SettingsError, match="spark.cores: unknown setting .environment variable MOBILITY_SPARK__CORES"
    ):
        load_settings("local", environ={"MOBILITY_SPARK__CORES": "4"})


def test_wrong_type_in_a_file_is_refused_naming_key_file_and_value(conf_dir: Path):
    (conf_dir / "test.yaml").write_text("privacy:\n  min_cell: many\n")
    with pytest.raises(SettingsError) as error:
        load_settings("test", conf_dir=conf_dir, environ={})
    message = str(error.value)
    assert "privacy.min_cell" in message and "valid integer" in message and "'many'" in message
    assert str(conf_dir / "test.yaml") in message


def test_wrong_type_on_the_command_line_is_refused():
    with pytest.raises(
        SettingsError, match=r"spark.shuffle_partitions: .*greater than 0.*\[--set spark.shuffle_partitions\]"
    ):
        load_settings("local", ["spark.shuffle_partitions=0"], environ={})
    with pytest.raises(SettingsError, match=r"spark.ui_enabled: .*valid boolean"):
        load_settings("local", ["spark.ui_enabled=perhaps"], environ={})


def test_missing_key_is_reported_as_missing(conf_dir: Path):
    (conf_dir / "base.yaml").write_text(
        (CONF / "base.yaml").read_text().replace("  experiment: mobility-recommender\n", "")
    )
    with pytest.raises(SettingsError, match=r"mlflow.experiment: missing setting \[.*base.yaml\]"):
        load_settings("local", conf_dir=conf_dir, environ={})


def test_unknown_profile_and_malformed_set_are_refused():
    with pytest.raises(SettingsError, match="unknown profile 'prod'"):
        load_settings("prod", environ={})
    with pytest.raises(SettingsError, match="expected section.key=value"):
        load_settings("local", ["lake.root"], environ={})


def test_invalid_yaml_names_the_file(conf_dir: Path):
    (conf_dir / "local.yaml").write_text("lake: [unclosed\n")
    with pytest.raises(SettingsError, match="local.yaml: not valid YAML"):
        load_settings("local", conf_dir=conf_dir, environ={})


def test_yaml_is_loaded_safely(conf_dir: Path):
    (conf_dir / "local.yaml").write_text("lake:\n  root: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings("local", conf_dir=conf_dir, environ={})


def test_settings_get_reads_a_dotted_key():
    settings = load_settings("local", ["spark.conf.spark.foo=bar"], environ={})
    assert settings.get("privacy.min_cell") == 5
    with pytest.raises(SettingsError, match="unknown setting 'privacy.nope'"):
        settings.get("privacy.nope")


SERVER = {"MOBILITY_MLFLOW__TRACKING_URI": "http://tracking-host:5000"}


def test_cluster_profile_refuses_to_start_without_a_pseudonym_key():
    with pytest.raises(SettingsError, match="privacy: no pseudonym key: set MOBILITY_PSEUDO_KEY"):
        load_settings("cluster", environ=SERVER)


def test_cluster_profile_refuses_to_track_anywhere_but_to_a_server():
    key = {"MOBILITY_PSEUDO_KEY": "k"}
    for uri in ("sqlite:///mlflow.db", "file:///shared/mlruns", "postgresql://db-host/mlflow"):
        with pytest.raises(
            SettingsError, match=r"mlflow: tracking_uri '.*' is not a server: .*MOBILITY_MLFLOW__"
        ):
            load_settings("cluster", environ={**key, "MOBILITY_MLFLOW__TRACKING_URI": uri})
    for uri in ("http://tracking-host:5000", "https://mlflow.example.org"):
        assert (
            load_settings(
                "cluster", environ={**key, "MOBILITY_MLFLOW__TRACKING_URI": uri}
            ).mlflow.tracking_uri
            == uri
        )
    assert load_settings("local", environ={}).mlflow.tracking_uri.startswith("sqlite:////")


def test_the_pseudonym_key_comes_from_its_variable_and_is_never_printed():
    settings = load_settings("cluster", environ={"MOBILITY_PSEUDO_KEY": "s3cret-value", **SERVER})
    assert settings.privacy.key() == (b"s3cret-value", False)
    assert "s3cret-value" not in repr(settings) + settings.model_dump_json()
    local = load_settings("local", environ={})
    key, is_dev = local.privacy.key()
    assert is_dev and key.startswith(b"mobility-local-development-key")

"""One SparkSession for the whole run (``test`` profile: local[2], no UI, two shuffle partitions) and a
fresh lake folder per test module."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from mobility import reference
from mobility.config import Settings, load_settings
from mobility.lake import Lake
from mobility.spark import get_spark

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The data of ``generated_lake``; a module that runs the pipeline elsewhere on the same data generates it
# again with these (same seed, same bytes) and compares with that lake.
GENERATED = {"seekers": 3000, "months": 24, "start": "2021-01", "seed": 5, "dirty_rate": 0.0,
             "chunk_seekers": 3000}  # fmt: skip


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The test profile, hermetic: no MOBILITY_* variable of the caller's shell leaks in."""
    root = tmp_path_factory.mktemp("session-lake")
    return load_settings("test", [f"lake.root={root}"], environ={})


@pytest.fixture(scope="session")
def spark(settings: Settings) -> SparkSession:
    session = get_spark(settings)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """An empty lake of the module's own."""
    return Lake(spark, tmp_path_factory.mktemp("lake"))


@pytest.fixture(scope="session")
def ref_lake(spark: SparkSession, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """A lake holding the ref.* tables loaded once from the real reference files."""
    lake = Lake(spark, tmp_path_factory.mktemp("ref-lake"))
    reference.load(spark, lake, settings.reference)
    return lake


@pytest.fixture(scope="module")
def lake_with_ref(ref_lake: Lake, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """An empty lake of the module's own whose ref zone is the session's (linked, read-only by use)."""
    root = tmp_path_factory.mktemp("lake")
    (root / "ref").symlink_to(Path(ref_lake.root) / "ref", target_is_directory=True)
    return Lake(ref_lake.spark, root)


@pytest.fixture(scope="session")
def generated_input(ref_lake: Lake, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The input files of 3,000 generated seekers over 24 months (2021-2022), written once."""
    from mobility import synth

    out = tmp_path_factory.mktemp("generated")
    synth.generate(ref_lake.spark, ref_lake, settings, out=out, **GENERATED)
    return out


@pytest.fixture(scope="session")
def generated_lake(ref_lake: Lake, settings: Settings, generated_input: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Lake:  # fmt: skip
    """A lake holding the silver and gold tables of ``generated_input``, built once for the modules that
    train on it; they add their own tables (recommendations) and rewrite gold with the same data, never other
    data."""
    from mobility import gold
    from mobility.ingest import ingest

    root = tmp_path_factory.mktemp("generated-lake")
    (root / "ref").symlink_to(Path(ref_lake.root) / "ref", target_is_directory=True)
    lake = Lake(ref_lake.spark, root)
    ingest(lake, settings, generated_input, batch_id="generated")
    gold.write(lake, settings.flows)
    return lake


@dataclass(frozen=True)
class Tracked:
    """The generated lake after every step: settings pointing at it and at a session MLflow store."""

    lake: Lake
    settings: Settings
    trained: dict  # model -> mobility.recommend.train.Trained, in training order


@pytest.fixture(scope="session")
def tracked_lake(generated_lake: Lake, tmp_path_factory: pytest.TempPathFactory) -> Tracked:
    """The generated lake with its published views and the four recommenders trained into a session MLflow
    store (SQLite), trained once for the modules that read models (training, report, notebooks). Modules
    may train more versions (the champion only moves to a better one) and add recommendation days."""
    from mobility import publish
    from mobility.recommend import train

    store = tmp_path_factory.mktemp("mlflow")
    tracked = load_settings(
        "test",
        [
            f"lake.root={generated_lake.root}",
            f"mlflow.tracking_uri=sqlite:///{store}/mlflow.db",
            f"mlflow.artifact_root={store}/artifacts",
            "train.valid_months=3",
            "train.test_months=3",
        ],
        environ={},
    )
    publish.write(generated_lake, tracked.privacy)
    return Tracked(generated_lake, tracked, {t.model: t for t in train.train(generated_lake, tracked)})


@pytest.fixture(scope="session")
def scored_lake(tracked_lake: Tracked) -> Tracked:
    """``tracked_lake`` with the champion's recommendations of its last day and the paths written."""
    from mobility import pipeline

    pipeline.run_recommend(tracked_lake.settings)
    pipeline.run_paths(tracked_lake.settings)
    return tracked_lake


@dataclass(frozen=True)
class BenchRun:
    """One ``make bench SCALE=S`` run: its process, its result (the JSON), its lake and generated input."""

    done: subprocess.CompletedProcess
    results: Path
    result: dict
    lake: Path
    input: Path

    def step(self, name: str) -> dict:
        return next(s for s in self.result["steps"] if s["step"] == name)


@pytest.fixture(scope="session")
def bench_s(tmp_path_factory: pytest.TempPathFactory) -> BenchRun:
    """The benchmark harness at scale S (100,000 seekers, 36 months, the whole pipeline: about 8 minutes),
    run once as a subprocess: its smoke test reads the figures, the recovery of the generator's truth
    reads the lake (the same data the truth module would generate: one run serves both)."""
    from bench.run import DATA, MONTHS, SCALES

    results = tmp_path_factory.mktemp("bench-results")
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--scale", "S", "--seed", "42", "--results", str(results)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1400,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = results.glob("S-*.json")
    generated = DATA / f"{SCALES['S'].seekers}-{MONTHS}-42"
    return BenchRun(done, results, json.loads(path.read_text()), DATA / "S" / "lake", generated)


def seeker_ids_in(text: str, ids: set[str]) -> set[str]:
    """The ids of ``ids`` (64-hex-digit pseudonyms) found in ``text``: every long run of hex digits is
    searched, so an id glued to other digits is found too."""
    runs = re.findall(r"[0-9a-fA-F]{64,}", text)
    return {i for i in ids if any(i in run.lower() for run in runs)}

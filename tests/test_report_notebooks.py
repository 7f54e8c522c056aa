"""The analyst notebooks: each runs headless (papermill) on the generated lake through the project's
settings, failing on any cell error; they are committed without outputs and open the lake with the one
helper call."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill
import pytest

from tests.conftest import PROJECT_ROOT, seeker_ids_in

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
NAMES = ("01_mobility_flows", "02_labour_market", "03_recommendations")


def test_the_three_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == list(NAMES)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_committed_without_outputs_and_open_the_lake_with_one_helper_call(path: Path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), (
        f"{path.name} has outputs: python -m mobility.notebook strip {path}"
    )
    assert "papermill" not in nb.metadata
    assert [c for c in code if "parameters" in c.metadata.get("tags", [])], "no parameters cell"
    source = "\n".join(c.source for c in code)
    assert source.count("open_project(") == 1
    for setup in ("SparkSession", "get_spark", "load_settings", "Lake("):
        assert setup not in source, f"{path.name} builds its own {setup}: use open_project"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_headless_on_the_generated_lake(name: str, scored_lake, tmp_path: Path):
    settings = scored_lake.settings
    out = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(
        str(PROJECT_ROOT / "notebooks" / f"{name}.ipynb"),
        str(out),
        parameters={
            "profile": "test",
            "overrides": [
                f"lake.root={settings.lake.root}",
                f"mlflow.tracking_uri={settings.mlflow.tracking_uri}",
                f"mlflow.artifact_root={settings.mlflow.artifact_root}",
            ],
            "lang": "en",
        },
        kernel_name="python3",
        cwd=str(PROJECT_ROOT / "notebooks"),
        progress_bar=False,
        execution_timeout=300,
    )  # raises PapermillExecutionError, naming the cell, on any error
    executed = nbformat.read(out, as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(figures) >= 2, f"{name} drew {len(figures)} charts"
    for figure in figures:
        assert json.loads(json.dumps(figure["data"]["application/vnd.plotly.v1+json"]))["data"], "empty chart"
    ids = {r[0] for r in scored_lake.lake.read("silver.seekers").select("seeker_id").collect()}
    assert len(ids) > 1000
    assert seeker_ids_in(out.read_text(encoding="utf-8"), ids) == set(), f"{name} shows a seeker id"

"""One call opens the project from a notebook: ``project = open_project(profile, overrides)``.

The settings are the project's (``conf/`` and ``MOBILITY_*`` variables, then ``overrides`` as
``section.key=value``), so a notebook reads the same lake and tracking store as the batch steps, and a test
runs it on another lake by passing ``lake.root=...``. ``python -m mobility.notebook strip FILE...`` clears
the outputs of notebooks before they are committed.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from mobility.config import Settings, load_settings
from mobility.lake import Lake
from mobility.report.text import Text
from mobility.spark import get_spark

QUIET = "spark.ui.showConsoleProgress"


@dataclass
class Project:
    settings: Settings
    lake: Lake
    lang: str

    @property
    def spark(self) -> SparkSession:
        return self.lake.spark

    @cached_property
    def text(self) -> Text:
        """Labels and number formats of the notebook's language, and the threshold of counts."""
        return Text(self.lang, self.settings.privacy.min_cell)

    def published(self, view: str) -> DataFrame:
        """``gold.published_<view>`` of the last complete build: what may leave the team (use these for any
        figure shown outside)."""
        from mobility import publish

        return publish.read_view(self.lake, view)

    def ref(self, table: str) -> DataFrame:
        """``ref.<table>``: the referentials (labels, geography)."""
        return self.lake.read(f"ref.{table}")

    def table(self, name: str) -> DataFrame:
        """Any table of the lake (``zone.name``): internal, not for figures leaving the team."""
        return self.lake.read(name)

    @staticmethod
    def small(df: DataFrame) -> pd.DataFrame:
        """A small Spark result (figures bounded by the referentials) as pandas, for plotting."""
        # bounded: the caller's figure, bounded by the referentials
        return df.toPandas()


def open_project(
    profile: str | None = None, overrides: Sequence[str] = (), lang: str | None = None
) -> Project:
    """Settings of ``profile`` with ``overrides``, a SparkSession built from them, and the lake."""
    settings = load_settings(profile, list(overrides))
    logging.getLogger("py4j").setLevel(logging.WARNING)
    lake = Lake(get_spark(settings), settings.lake.root, settings.lake.commit_attempts)
    return Project(settings, lake, lang or settings.report.lang)


def strip(path: Path) -> bool:
    """Clear the outputs, execution counts and execution metadata of a notebook; True when it changed."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        for key in ("execution", "papermill"):
            cell.metadata.pop(key, None)
    for key in ("papermill", "widgets"):
        nb.metadata.pop(key, None)
    after = nbformat.writes(nb)
    if after != before:
        path.write_text(after + ("" if after.endswith("\n") else "\n"), encoding="utf-8")
    return after != before


if __name__ == "__main__":
    if sys.argv[1:2] != ["strip"]:
        sys.exit("usage: python -m mobility.notebook strip NOTEBOOK.ipynb...")
    for name in sys.argv[2:]:
        print(f"{name}: {'stripped' if strip(Path(name)) else 'clean'}")

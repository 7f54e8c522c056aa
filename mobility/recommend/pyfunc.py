"""The recommenders as MLflow pyfunc models, and scoring of origin states with one in Spark.

A ``TableRecommender`` holds the ranked tables of ``mobility.recommend.models`` (one per backoff level;
none for ``stay``), or those of ``mobility.recommend.ranker`` and its booster, and answers, for each input
row (an origin state, ``INPUT_COLUMNS``; the baselines read only ``from_rome`` and ``from_region``), its
``top_k`` destinations. Its size is bounded by the referential (occupations x regions x ``top_n``, months
of the market), not by the number of seekers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import joblib
import mlflow
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from mobility.recommend import ranker
from mobility.recommend.models import FACTORS, LEVELS

OUTPUT_COLUMNS = ("query", "to_rome", "to_region", "score", "rank", "level")
INPUT_COLUMNS = ranker.QUERY_COLUMNS
BOOSTER = "booster"  # the artifact holding the ranker's booster (joblib)


class TableRecommender(mlflow.pyfunc.PythonModel):
    """Top destinations of each origin state from the most specific level it was seen at."""

    def load_context(self, context: Any) -> None:
        self.config = dict(context.model_config or {})
        self.kind = self.config.get("kind", "table")
        artifacts = dict(context.artifacts or {})
        self.booster = joblib.load(artifacts.pop(BOOSTER)) if BOOSTER in artifacts else None
        self.tables = {level: pd.read_parquet(path) for level, path in artifacts.items()}

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        top_k = int((params or {}).get("top_k", 10))
        return recommend_frame(
            self.kind, self.tables, model_input, top_k, booster=self.booster, config=self.config
        )


def recommend_frame(
    kind: str,
    tables: dict[str, pd.DataFrame],
    states: pd.DataFrame,
    top_k: int,
    *,
    booster: Any = None,
    config: dict | None = None,
) -> pd.DataFrame:
    """Rows ``OUTPUT_COLUMNS``: ``query`` is the input row's position. ``booster`` and ``config``
    (``occupations``, ``regions``): the ranker's."""
    if kind == "ranker":
        config = config or {}
        out = ranker.recommend(
            tables,
            booster,
            states,
            top_k,
            occupations=int(config["occupations"]),
            regions=int(config["regions"]),
        )
        return out[list(OUTPUT_COLUMNS)].reset_index(drop=True)
    q = pd.DataFrame(
        {
            "query": range(len(states)),
            "from_rome": states["from_rome"].to_numpy(),
            "from_region": states["from_region"].to_numpy(),
        }
    )
    if kind == "stay":
        return pd.DataFrame(
            {"query": q["query"], "to_rome": q["from_rome"], "to_region": q["from_region"], "score": 1.0,
             "rank": 1, "level": "origin"}
        )  # fmt: skip
    q["from_domaine"] = q["from_rome"].str.slice(0, 3)
    if kind == "markov":
        occupations = _lookup(q, tables, "to_rome", FACTORS["to_rome"], top_k)
        regions = _lookup(q, tables, "to_region", FACTORS["to_region"], top_k)
        joint = occupations.merge(regions, on="query", suffixes=("_rome", "_region"))
        joint["score"] = joint["score_rome"] * joint["score_region"]
        joint["level"] = joint["level_rome"] + "/" + joint["level_region"]
    else:
        joint = _lookup(q, tables, None, LEVELS, top_k)
    if joint.empty:
        return pd.DataFrame({c: [] for c in OUTPUT_COLUMNS})
    joint = joint.sort_values(["query", "score", "to_rome", "to_region"], ascending=[True, False, True, True])
    joint["rank"] = joint.groupby("query").cumcount() + 1
    return joint[joint["rank"] <= top_k][list(OUTPUT_COLUMNS)].reset_index(drop=True)


def _lookup(
    q: pd.DataFrame, tables: dict[str, pd.DataFrame], target: str | None, levels: dict, top_k: int
) -> pd.DataFrame:
    """Per query, the ``top_k`` rows of the most specific level of ``levels`` its origin was seen at (tables
    named ``<target>.<level>``, or ``<level>`` for joint tables)."""
    parts, remaining = [], q
    for level, keys in levels.items():
        name = f"{target}.{level}" if target else level
        if name not in tables or remaining.empty:
            continue
        table = tables[name][tables[name]["rank"] <= top_k].drop(columns="rank")
        found = (
            remaining[["query", *keys]].merge(table, on=list(keys))
            if keys
            else remaining[["query"]].merge(table, how="cross")
        )
        parts.append(found.drop(columns=list(keys)).assign(level=level))
        remaining = remaining[~remaining["query"].isin(found["query"])]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["query", "score", "level"])


def score_states(states: DataFrame, model_uri: str, *, top_k: int, tracking_uri: str) -> DataFrame:
    """Each row of ``states`` (with ``state_id`` and the input columns) with its ``top_k`` destinations:
    ``state_id``, ``to_rome``, ``to_region``, ``score``, ``rank``, ``level``. The model is loaded once per
    task, on the executors (``mapInPandas``); rows are states, not seekers."""

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        mlflow.set_tracking_uri(tracking_uri)  # Python workers do not inherit the driver's
        model = mlflow.pyfunc.load_model(model_uri)
        for batch in batches:
            out = model.predict(batch[list(INPUT_COLUMNS)], params={"top_k": top_k})
            out["state_id"] = batch["state_id"].to_numpy()[out["query"].to_numpy()]
            yield out[["state_id", "to_rome", "to_region", "score", "rank", "level"]]

    schema = "state_id string, to_rome string, to_region string, score double, rank int, level string"
    # States of one origin side by side: a batch then holds few origins, whose candidates the ranker builds
    # once for all their states.
    origin = list(ranker.ORIGIN_COLUMNS)
    return (
        states.select("state_id", *INPUT_COLUMNS)
        .repartition(*origin)
        .sortWithinPartitions(*origin)
        .mapInPandas(predict, schema)
        .withColumn("rank", F.col("rank").cast("int"))
    )

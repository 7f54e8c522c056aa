"""Does the champion find the generator's truth? For the origins (v3 occupation sought, region) with at
least --min-hires hires in gold.transitions, the truly most likely destination (truth/destinations.csv)
against the champion's top 10 for the origin's test-window examples.

    .venv/bin/python bench/champion_truth.py [--data data/generated] [--min-hires 100] [--profile local]

Reads the lake and MLflow store of the settings (run `make run` first). Per origin: the share of its test
examples whose top 10 holds the true top destination; an origin counts as found when that share is over
one half. Prints and writes bench/results/champion-truth-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import mlflow  # noqa: E402
from pyspark.sql import Window  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from mobility.config import load_settings  # noqa: E402
from mobility.pipeline import open_lake  # noqa: E402
from mobility.recommend import train  # noqa: E402
from mobility.recommend.examples import split  # noqa: E402
from mobility.tracking import champion_version, configure  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/generated"))
    parser.add_argument("--min-hires", type=int, default=100)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args()
    settings = load_settings(args.profile)
    client = configure(settings.mlflow)
    name = settings.train.model_name
    version = champion_version(client, name)
    if version is None:
        sys.exit("no champion: run `make run` first")
    kind = client.get_run(client.get_model_version(name, str(version)).run_id).data.params["model"]
    lake = open_lake(settings)
    spark = lake.spark
    data, windows = train.learning_data(lake, settings)
    test = split(data, windows)["test"]
    hires = (
        lake.read("gold.transitions")
        .where(F.col("kind") == "hire")
        .groupBy("from_rome", "from_region")
        .agg(F.count(F.lit(1)).alias("hires"))
        .where(F.col("hires") >= args.min_hires)
    )
    truth = (
        spark.read.option("sep", ";").option("header", True)
        .csv(str(args.data / "truth" / "destinations.csv"))
        .select(
            F.col("from_rome_v3").alias("from_rome"), "from_region",
            F.col("to_rome_v3").alias("true_rome"), F.col("to_region").alias("true_region"),
            F.col("probability").cast("double").alias("p"),
        )
    )  # fmt: skip
    best = Window.partitionBy("from_rome", "from_region").orderBy(F.desc("p"), "true_rome", "true_region")
    top = truth.withColumn("_r", F.row_number().over(best)).where("_r = 1").drop("_r")
    examples = test.join(hires, ["from_rome", "from_region"]).join(top, ["from_rome", "from_region"])
    ranked = train.ranked_examples(
        examples, f"models:/{name}/{version}", top_k=10, tracking_uri=settings.mlflow.tracking_uri
    )
    found = ranked.join(
        examples.select(
            "example_id", F.col("true_rome").alias("to_rome"), F.col("true_region").alias("to_region")
        ),
        ["example_id", "to_rome", "to_region"],
    ).select("example_id", F.lit(1).alias("found"))
    per_origin = (
        examples.join(found, "example_id", "left")
        .groupBy("from_rome", "from_region")
        .agg(F.avg(F.coalesce("found", F.lit(0))).alias("share"), F.count(F.lit(1)).alias("examples"))
    )
    row = per_origin.agg(
        F.count(F.lit(1)).alias("origins"),
        F.avg((F.col("share") > 0.5).cast("double")).alias("share_found"),
        F.avg("share").alias("mean_example_share"),
        F.sum("examples").alias("examples"),
    ).first()  # one row
    result = {
        "champion": f"{name} v{version} ({kind})",
        "min_hires": args.min_hires,
        "test_window": f"{windows.test_start} to {windows.test_end}",
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.asDict().items()},
    }
    print(json.dumps(result, indent=2))
    out = HERE / "results" / f"champion-truth-{datetime.now(UTC):%Y-%m-%d}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    mlflow.end_run()


if __name__ == "__main__":
    main()

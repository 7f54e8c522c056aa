"""Recovery of the generator's truth by the pipeline: generated data -> ingest -> gold.flows, compared with
``truth/destinations.csv`` (issue 4: "the estimated destination probabilities approach the generator's
truth (total variation distance under 0.1 for origins with at least 500 moves, at 100k seekers) and
tighten as N grows").

What the truth is
    ``destinations.csv`` gives, for every origin (``from_rome_v3``, ``from_region``), the exact
    P(destination v3 occupation, destination region | origin) of a *hire*: the origin is the occupation
    sought on the hire day (after any change of the occupation sought: ``draw_trajectories`` switches the
    origin to the new occupation) and the region of residence (the spell's place), the destination the
    hire's occupation at the common v3 level (a ROME 4.0 code counts as its official v3 parent) and the
    region of the workplace. Reorientations are not in it (they follow another kernel, without staying).
    That is exactly the hire transitions of ``gold.transitions`` at level ``rome_v3``.
The estimator
    ``gold.flows`` (level ``rome_v3``): ``hires`` summed over periods per (from_rome, from_region, to_rome,
    to_region), divided by the origin's hires. An origin's "moves" are its hires (the sample behind the
    estimate; ``moves`` of gold.flows also counts reorientations, which the truth does not describe).
    ``TVD = 0.5 * sum |p_est - p_true|`` over the union of both sides' destinations, in Spark; only the
    per-origin result (one row per origin, a number bounded by the model, not by the data) is collected.

What can be asserted at 100k seekers
    A 100k run has 77,109 hires spread over 6,803 of the 9,027 origins: the biggest origin (M1203 in
    Ile-de-France) has 371 hires and none has 500, so the issue's figure cannot be asserted there (a test
    over no origin could not fail); ``bench/truth.py`` measures it at larger N (at 500k seekers 56 origins
    have 500 hires). The threshold is also within sampling noise at 500 hires: a perfect estimator
    (a multinomial draw of the truth itself) has a TVD of 0.04-0.11, mean about 0.07, at 500 draws, and
    reaches 0.1 for a few percent of origins (at 500k seekers one origin of 56 does, TVD 0.102 with 512
    hires, while the hires-weighted mean TVD equals the perfect estimator's: 0.0546 against 0.0543). So the
    module also checks that the estimates are as close to the truth as sampling allows, and that they
    tighten with five times the seekers (the smaller N being one seeker in five of the same run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from bench.run import MONTHS as BENCH_MONTHS
from bench.run import SCALES
from mobility.lake import Lake
from tests.conftest import BenchRun

pytestmark = pytest.mark.slow

# The N: the data of the benchmark's scale S, whose run (generation, ingest, gold) the module reads
# rather than doing it again (conftest's bench_s); bench/truth.py measures the figures at any N.
SEEKERS = 100_000
ONE_IN = 5  # the smaller N it must tighten from: one seeker in five of the run
MONTHS = 36
SEED = 42
MIN_MOVES = 500  # the origins (summary figures)
NOISE_MIN_MOVES = 50  # origins whose TVD is compared with sampling noise
NOISE_DRAWS = 200
NOISE_MARGIN = 1.1  # moves-weighted TVD may exceed the sampling noise's by 10% (its own noise: ~2%)
TIGHTER = 0.8  # the mean TVD at N is below this share of that at N / 5 (measured at 100k: 0.61)

ORIGIN = ["from_rome", "from_region"]
CELL = [*ORIGIN, "to_rome", "to_region"]
TRUTH_SCHEMA = (
    "from_rome_v3 string, from_region string, to_rome_v3 string, to_region string, probability double"
)


# ---------------------------------------------------------------------------------------------- estimator


def read_truth(spark: SparkSession, folder: Path) -> DataFrame:
    """``truth/destinations.csv`` with the gold column names: CELL and ``p_true``."""
    return spark.read.csv(
        str(folder / "truth" / "destinations.csv"), sep=";", header=True, schema=TRUTH_SCHEMA
    ).select(
        F.col("from_rome_v3").alias("from_rome"),
        "from_region",
        F.col("to_rome_v3").alias("to_rome"),
        "to_region",
        F.col("probability").alias("p_true"),
    )


def hire_counts(lake: Lake) -> DataFrame:
    """Hires per (origin, destination) cell of gold.flows, all periods together (cells with a hire)."""
    return lake.read("gold.flows").where(F.col("hires") > 0).groupBy(*CELL).agg(F.sum("hires").alias("hires"))


def transition_hire_counts(lake: Lake, one_in: int = 1) -> DataFrame:
    """The same from gold.transitions (kind ``hire``), for one seeker in ``one_in`` (by a hash of the
    pseudonym): a sample of the seekers is a smaller N of the same model, seekers being independent."""
    hires = lake.read("gold.transitions").where(F.col("kind") == "hire")
    if one_in > 1:
        hires = hires.where(F.pmod(F.xxhash64("seeker_id"), F.lit(one_in)) == 0)
    return hires.groupBy(*CELL).agg(F.count(F.lit(1)).alias("hires"))


def origin_figures(
    lake: Lake, folder: Path, counts: DataFrame | None = None, min_moves: int = 1
) -> pd.DataFrame:
    """One row per origin with at least ``min_moves`` hires in ``counts`` (default: ``hire_counts``):
    ``moves`` (hires), ``tvd``, ``truth_mass`` (sum of the true probabilities of the origin: 1 when the truth
    knows it), ``truth_cells``, ``estimated_cells`` and ``flows_moves`` (moves of gold.flows from the origin:
    hires and reorientations of every seeker)."""
    counts = hire_counts(lake) if counts is None else counts
    origins = counts.groupBy(*ORIGIN).agg(F.sum("hires").alias("moves")).where(F.col("moves") >= min_moves)
    estimated = counts.join(origins, ORIGIN).select(*CELL, (F.col("hires") / F.col("moves")).alias("p_est"))
    truth = read_truth(lake.spark, folder).join(F.broadcast(origins.select(*ORIGIN)), ORIGIN, "left_semi")
    both = estimated.join(truth, CELL, "full_outer")
    gap = F.abs(F.coalesce(F.col("p_est"), F.lit(0.0)) - F.coalesce(F.col("p_true"), F.lit(0.0)))
    per_origin = both.groupBy(*ORIGIN).agg(
        (0.5 * F.sum(gap)).alias("tvd"),
        F.coalesce(F.sum("p_true"), F.lit(0.0)).alias("truth_mass"),
        F.count("p_true").alias("truth_cells"),
        F.count("p_est").alias("estimated_cells"),
    )
    flows_moves = lake.read("gold.flows").groupBy(*ORIGIN).agg(F.sum("moves").alias("flows_moves"))
    result = per_origin.join(origins, ORIGIN).join(flows_moves, ORIGIN, "left")
    return result.toPandas().sort_values(["moves", *ORIGIN], ascending=[False, True, True], ignore_index=True)


def sampling_noise(
    spark: SparkSession, folder: Path, figures: pd.DataFrame, draws: int = NOISE_DRAWS, seed: int = 0
) -> pd.Series:
    """Per origin of ``figures``: the mean TVD of ``draws`` multinomial samples of its size (``moves``) drawn
    from the truth itself, i.e. what a perfect estimator gets by chance. Collects the true rows of these
    origins only (bounded by the truth's size, a few hundred rows per origin)."""
    keys = spark.createDataFrame(figures[ORIGIN])
    rows = read_truth(spark, folder).join(F.broadcast(keys), ORIGIN, "left_semi").toPandas()
    rng = np.random.default_rng(seed)
    by_origin = {key: g["p_true"].to_numpy() for key, g in rows.groupby(ORIGIN)}
    noise = []
    for key, n in zip(
        zip(figures["from_rome"], figures["from_region"], strict=True), figures["moves"], strict=True
    ):
        p = by_origin[key] / by_origin[key].sum()
        sample = rng.multinomial(int(n), p, size=draws) / n
        noise.append(0.5 * np.abs(sample - p).sum(axis=1).mean())
    return pd.Series(noise, index=figures.index, name="noise")


def weighted_mean(values: pd.Series, weights: pd.Series) -> float:
    return float(np.average(values, weights=weights))


def summary(figures: pd.DataFrame, min_moves: int = MIN_MOVES) -> dict[str, float | int | None]:
    """The issue's figures for the origins with at least ``min_moves`` hires."""
    big = figures[figures["moves"] >= min_moves]
    return {
        "origins": len(big),
        "max_tvd": float(big["tvd"].max()) if len(big) else None,
        "weighted_mean_tvd": weighted_mean(big["tvd"], big["moves"]) if len(big) else None,
    }


# ---------------------------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class Run:
    seekers: int
    folder: Path
    lake: Lake
    gold: dict[str, int]
    figures: pd.DataFrame  # origin_figures of gold.flows: every origin with a hire


@pytest.fixture(scope="module")
def run(spark: SparkSession, bench_s: BenchRun) -> Run:
    """Clean data of SEEKERS seekers (MONTHS from the default start, SEED), ingested, gold written: the run
    of the benchmark at scale S, which is that very data (``make bench SCALE=S``; conftest's ``bench_s``)."""
    same = (SCALES["S"].seekers, BENCH_MONTHS, bench_s.input.name)
    assert same == (SEEKERS, MONTHS, f"{SEEKERS}-{MONTHS}-{SEED}"), same
    lake = Lake(spark, bench_s.lake)
    counts = bench_s.step("flows")["counts"]
    return Run(SEEKERS, bench_s.input, lake, counts, origin_figures(lake, bench_s.input))


# ---------------------------------------------------------------------------------------------- tests


def test_every_hire_is_estimated_on_an_origin_the_truth_knows(run: Run):
    figures = run.figures
    assert run.gold["hires_without_spell"] == 0
    assert figures["moves"].sum() == run.gold["hires_matched"] > 0.7 * SEEKERS
    unknown = figures[(figures["truth_mass"] - 1).abs() > 1e-6]
    assert unknown.empty, unknown
    # a hire never goes where the truth sends nobody
    assert (figures["estimated_cells"] <= figures["truth_cells"]).all()
    # gold.flows and gold.transitions count the same hires per cell
    flows, transitions = hire_counts(run.lake), transition_hire_counts(run.lake)
    differ = flows.join(transitions, CELL, "full_outer").where(
        ~flows["hires"].eqNullSafe(transitions["hires"])
    )
    assert differ.isEmpty()


def test_estimates_are_as_close_to_the_truth_as_sampling_allows(run: Run):
    """Origins with at least NOISE_MIN_MOVES hires: their moves-weighted mean TVD is that of a perfect
    estimator (a multinomial draw of the truth of the same size) up to NOISE_MARGIN; a bias of the pipeline
    (a wrong origin, region or v3 parent for some hires) adds its own share of TVD on top."""
    figures = run.figures[run.figures["moves"] >= NOISE_MIN_MOVES].reset_index(drop=True)
    assert len(figures) >= 20
    noise = sampling_noise(run.lake.spark, run.folder, figures)
    tvd, expected = weighted_mean(figures["tvd"], figures["moves"]), weighted_mean(noise, figures["moves"])
    assert tvd <= NOISE_MARGIN * expected, (tvd, expected)


def test_estimates_tighten_with_five_times_the_seekers(run: Run):
    """The 20k estimate is that of one seeker in five of the same run: seekers are independent draws of the
    model, so it is distributed as a 20k run's (a second pipeline run would double the module's time). On
    the origins both have, the moves-weighted mean TVD (each weighted by its own hires) is clearly smaller
    with five times the seekers."""
    smaller = origin_figures(run.lake, run.folder, transition_hire_counts(run.lake, one_in=ONE_IN))
    assert 0.17 < smaller["moves"].sum() / run.figures["moves"].sum() < 0.23
    both = run.figures.merge(smaller, on=ORIGIN, suffixes=("_full", "_smaller"))
    assert len(both) == len(smaller)
    at_full = weighted_mean(both["tvd_full"], both["moves_full"])
    at_smaller = weighted_mean(both["tvd_smaller"], both["moves_smaller"])
    assert at_full < TIGHTER * at_smaller, (at_full, at_smaller)

"""Learning examples: one per hire of ``gold.transitions``, the seeker's origin state then and the
destination their hire was in, split by time so that nothing of the future reaches a model.

Origin state
    ``from_rome`` (occupation sought, at the transitions' level), ``from_dept``, ``from_region``,
    ``search_band`` (months searching at the date: ``days_to_move`` / 30.4375, banded by ``search_bands``),
    ``age_band`` (age reached in the year of the date, banded by ``age_bands``), ``education`` (NIVFOR of
    the origin spell: ``silver.seekers`` holds the latest spell's, which may come after the date),
    and ``month`` (``YYYY-MM`` of the date: models may read the market of the month before).
    ``sex`` is kept to report on, never as a feature.
Destination
    (``to_rome``, ``to_region``).
Time split
    ``train``: moves before the validation window; ``valid``: ``valid_months`` from ``cutoff``; ``test``: the
    ``test_months`` after it. ``cutoff`` defaults to the first day of the month ``valid_months +
    test_months`` before the month after the last move, so the test window ends with the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from mobility.calendar import add_months

DAYS_PER_MONTH = 30.4375
STATE = ("from_rome", "from_dept", "from_region", "search_band", "age_band", "education", "month")
DESTINATION = ("to_rome", "to_region")
SEGMENTS = ("age_band", "sex", "education", "from_region")


def with_state_id(df: DataFrame) -> DataFrame:
    """A stable id of the origin state (nulls included), so that equal states are scored once."""
    parts = [F.coalesce(F.col(c).cast("string"), F.lit("\u2205")) for c in STATE]
    return df.withColumn("state_id", F.sha2(F.concat_ws("|", *parts), 256).substr(1, 20))


def band(value: Column, edges: Sequence[int]) -> Column:
    """``<e0``, ``e0-e1-1``, ..., ``eN+`` for a value and increasing edges; null stays null."""
    edges = sorted(edges)
    if not edges:
        return F.when(value.isNotNull(), F.lit("all"))
    labels = F.when(value < edges[0], F.lit(f"<{edges[0]}"))
    for low, high in zip(edges, edges[1:], strict=False):
        labels = labels.when(value < high, F.lit(f"{low}-{high - 1}"))
    return labels.when(value >= edges[-1], F.lit(f"{edges[-1]}+"))


def examples(
    transitions: DataFrame,
    seekers: DataFrame,
    spells: DataFrame,
    *,
    age_bands: Sequence[int],
    search_bands: Sequence[int],
) -> DataFrame:
    """One row per hire: ``example_id``, ``seeker_id``, ``date``, the origin state, ``sex``, destination."""
    origin_spell = spells.select(
        "seeker_id", F.col("registration_date").alias("start_date"), "education"
    )  # a hire's start_date is its spell's registration date
    hires = (
        transitions.where(F.col("kind") == "hire")
        .join(seekers.select("seeker_id", "birth_year", "sex"), "seeker_id", "left")
        .join(origin_spell, ["seeker_id", "start_date"], "left")
    )
    months = F.floor(F.col("days_to_move") / F.lit(DAYS_PER_MONTH))
    return hires.select(
        F.sha2(F.concat_ws("|", "seeker_id", F.col("move_date").cast("string"), "to_rome", "to_region"), 256)
        .substr(1, 16)
        .alias("example_id"),
        "seeker_id",
        F.col("move_date").alias("date"),
        "from_rome",
        "from_dept",
        "from_region",
        band(months, search_bands).alias("search_band"),
        band(F.year("move_date") - F.col("birth_year"), age_bands).alias("age_band"),
        "education",
        F.date_format("move_date", "yyyy-MM").alias("month"),
        "sex",
        *DESTINATION,
    )


@dataclass(frozen=True)
class Windows:
    """The time split: ``[train_start, cutoff)`` to learn, ``[cutoff, test_start)`` to validate,
    ``[test_start, test_end)`` to test."""

    cutoff: date
    test_start: date
    test_end: date


def windows(
    examples_df: DataFrame, *, valid_months: int, test_months: int, cutoff: date | None = None
) -> Windows:
    """The windows of the split (``cutoff`` from the data when not given: see the module docstring)."""
    if cutoff is None:
        last = examples_df.agg(F.max("date")).first()[0]  # one value
        if last is None:
            raise ValueError("no hire to learn from: gold.transitions holds no move of kind hire")
        cutoff = add_months(last, 1 - valid_months - test_months)
    cutoff = cutoff.replace(day=1)
    test_start = add_months(cutoff, valid_months)
    return Windows(cutoff, test_start, add_months(test_start, test_months))


def split(examples_df: DataFrame, w: Windows) -> dict[str, DataFrame]:
    """``train``, ``valid`` and ``test`` examples of the windows."""
    day = F.col("date")
    return {
        "train": examples_df.where(day < F.lit(w.cutoff)),
        "valid": examples_df.where((day >= F.lit(w.cutoff)) & (day < F.lit(w.test_start))),
        "test": examples_df.where((day >= F.lit(w.test_start)) & (day < F.lit(w.test_end))),
    }

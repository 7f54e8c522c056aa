"""``gold.paths``: for each origin state (occupation, region), the most likely paths of up to ``max_steps``
moves towards a destination whose market is tense, from ``gold.transitions`` and ``gold.market``.

Definitions
-----------
State
    A pair (``rome``, ``region``): the occupation at the level of the transitions (``rome_v3`` by default)
    and the region. Moves with an unknown occupation or region on either side are left out.
Step, and its probability
    Among the moves of the last ``months`` months of ``gold.transitions`` (counting back from the month of the
    last move, that month included; both kinds, hires and reorientations, as in ``gold.flows``),
    ``P(next | state) = moves(state -> next) / moves leaving state``. A move that stays in its state (same
    occupation and region, e.g. a hire in the occupation sought in another département of the region) is
    not a step: it is left out of both counts, so the probabilities are those of the next state *given a
    move out of the state*. Otherwise staying, by far the most frequent move, would only scale every path of
    an origin by the same factor at each step and say nothing of where to go. A step is kept when it has at
    least ``min_moves`` moves (reliability, and no count under the published minimum in a table that may be
    shown) and is among the ``branching`` best of its state (most moves first, ties by destination codes).
    The cuts do not change the denominators: a kept step's probability is still its share of every move
    leaving the state, and the probabilities of a state's kept steps sum to at most 1.
Destination tension
    Per state, over the last 12 months of ``gold.market`` (the 12 months ending with its last month, the same
    calendar for every state): offers published / sum of the month-end stocks of seekers, i.e. offers per
    job seeker in stock, the mean monthly tension weighted by stock. It is ``tension_rolling`` of the last
    month when ``flows.rolling_months`` is 12, computed here so that it does not depend on that setting.
    Months without a row count as zero offers and zero stock (the market leaves out all-zero rows). Null
    when no seeker was in stock: such a destination never qualifies. The window is the market's last months
    for every state, not each state's own last row, so a market that has gone quiet is not judged on old
    figures.
Path
    A sequence of 1 to ``max_steps`` kept steps, each leaving the state the previous one reached, that never
    visits a state twice (the origin included), and whose last state has a tension of at least
    ``min_tension``. Earlier states may be tense too. ``probability`` is the product of the steps'
    probabilities: the chance that a seeker leaving the origin follows the path if each move depends only on
    the state it leaves (a Markov chain over states; the data follows few seekers over several moves, so
    chains of observed single moves are what can be estimated).
Kept paths
    Per origin and destination, only the most likely path (ties: fewer steps, then the codes of the states
    along the path): alternative routes to one destination would otherwise fill an origin's list with one
    or two very likely destinations. Then per origin the ``per_origin`` most likely paths, ranked
    ``path_rank`` 1, 2, ... (ties: fewer steps, then the destination's codes).

Columns of ``gold.paths``: ``from_rome``, ``from_region``, ``path_rank``, ``n_steps``, ``probability``,
``to_rome``, ``to_region`` (the destination), ``dest_tension`` and ``steps``, the moves in order:
array of struct ``step`` (1, 2, ...), ``from_rome``, ``from_region``, ``to_rome``, ``to_region``,
``probability``.

Native Spark only: the paths are grown by ``max_steps - 1`` joins of the paths with the kept steps (small:
at most ``branching`` per state, broadcast), the visited states held in an array; at most ``branching **
max_steps`` paths per origin are formed.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

KINDS = ("hire", "reorientation")
TENSION_MONTHS = 12
STEP_COLUMNS = ("from_rome", "from_region", "to_rome", "to_region", "moves", "probability")
PATH_COLUMNS = (
    "from_rome", "from_region", "path_rank", "n_steps", "probability", "to_rome", "to_region", "dest_tension",
    "steps",
)  # fmt: skip


def step_probabilities(
    transitions: DataFrame, *, months: int, min_moves: int, branching: int, kinds: Sequence[str] = KINDS
) -> DataFrame:
    """The kept steps (columns ``STEP_COLUMNS``) of ``gold.transitions``: one row per (state, next state)
    with its ``moves`` and ``probability`` (see the module docstring)."""
    if months < 1 or min_moves < 1 or branching < 1:
        raise ValueError(f"months {months}, min_moves {min_moves}, branching {branching}: expected >= 1")
    move_month = F.trunc(F.col("move_date"), "month")
    # The window, as a one-row frame (no collect): from months - 1 months before the last move month.
    first = F.broadcast(transitions.agg(F.add_months(F.max(move_month), -(months - 1)).alias("_first_month")))
    known = F.lit(True)
    for column in ("from_rome", "from_region", "to_rome", "to_region"):
        known &= F.col(column).isNotNull()
    staying = (F.col("from_rome") == F.col("to_rome")) & (F.col("from_region") == F.col("to_region"))
    pairs = (
        transitions.crossJoin(first)
        .where((move_month >= F.col("_first_month")) & F.col("kind").isin(list(kinds)) & known & ~staying)
        .groupBy("from_rome", "from_region", "to_rome", "to_region")
        .agg(F.count(F.lit(1)).alias("moves"))
    )
    state = Window.partitionBy("from_rome", "from_region")
    best = state.orderBy(F.col("moves").desc(), "to_rome", "to_region")
    return (
        pairs.withColumn("probability", F.col("moves") / F.sum("moves").over(state))
        .where(F.col("moves") >= min_moves)
        .withColumn("_rank", F.row_number().over(best))
        .where(F.col("_rank") <= branching)
        .select(
            "from_rome",
            "from_region",
            "to_rome",
            "to_region",
            F.col("moves").cast("long").alias("moves"),
            F.col("probability").cast("double").alias("probability"),
        )
    )


def destination_tension(market: DataFrame, *, months: int = TENSION_MONTHS) -> DataFrame:
    """Per state of the regional ``gold.market``: ``rome``, ``region``, ``offers`` (published over the last
    ``months`` months of the table), ``stock`` (sum of the month-end stocks over them) and ``tension``
    (``offers / stock``, null when no stock)."""
    if months < 1:
        raise ValueError(f"months {months}: expected >= 1")
    first = F.broadcast(market.agg(F.add_months(F.max("month"), -(months - 1)).alias("_first_month")))
    summed = (
        market.crossJoin(first)
        .where((F.col("month") >= F.col("_first_month")) & F.col("rome").isNotNull())
        .where(F.col("code_region").isNotNull())
        .groupBy("rome", F.col("code_region").alias("region"))
        .agg(
            F.sum("offers_published").cast("long").alias("offers"),
            F.sum("seekers_stock").cast("long").alias("stock"),
        )
    )
    tension = F.when(F.col("stock") > 0, F.col("offers") / F.col("stock")).cast("double")
    return summed.withColumn("tension", tension)


def _step(number: Column | int, at_rome: str, at_region: str, to_rome: str, to_region: str) -> Column:
    return F.struct(
        (number if isinstance(number, Column) else F.lit(number)).cast("int").alias("step"),
        F.col(at_rome).alias("from_rome"),
        F.col(at_region).alias("from_region"),
        F.col(to_rome).alias("to_rome"),
        F.col(to_region).alias("to_region"),
        F.col("_p").alias("probability"),
    )


def _state(rome: str, region: str) -> Column:
    return F.struct(F.col(rome).alias("rome"), F.col(region).alias("region"))


def best_paths(
    steps: DataFrame,
    tension: DataFrame,
    *,
    min_tension: float,
    max_steps: int,
    per_origin: int,
    one_per_destination: bool = True,
) -> DataFrame:
    """``gold.paths`` (columns ``PATH_COLUMNS``) from the kept steps (``step_probabilities``) and the
    destinations' tension (``destination_tension``); see the module docstring. ``one_per_destination``
    False keeps every route to a destination."""
    if max_steps < 1 or per_origin < 1:
        raise ValueError(f"max_steps {max_steps}, per_origin {per_origin}: expected >= 1")
    edges = F.broadcast(
        steps.select(
            F.col("from_rome").alias("_at_rome"),
            F.col("from_region").alias("_at_region"),
            F.col("to_rome").alias("_next_rome"),
            F.col("to_region").alias("_next_region"),
            F.col("probability").alias("_p"),
        )
    )
    tense = F.broadcast(
        tension.where(F.col("tension") >= F.lit(min_tension)).select(
            F.col("rome").alias("_at_rome"),
            F.col("region").alias("_at_region"),
            F.col("tension").alias("dest_tension"),
        )
    )
    # A path: origin, the state it has reached (_at_*), its steps so far and the states it visited.
    paths = edges.select(
        F.col("_at_rome").alias("from_rome"),
        F.col("_at_region").alias("from_region"),
        F.col("_next_rome").alias("_at_rome"),
        F.col("_next_region").alias("_at_region"),
        F.lit(1).alias("n_steps"),
        F.col("_p").alias("probability"),
        F.array(_step(1, "_at_rome", "_at_region", "_next_rome", "_next_region")).alias("steps"),
        F.array(_state("_at_rome", "_at_region"), _state("_next_rome", "_next_region")).alias("_visited"),
    )
    ending = [paths.join(tense, ["_at_rome", "_at_region"])]
    for _ in range(2, max_steps + 1):
        revisits = F.exists(
            "_visited",
            lambda v: (v["rome"] == F.col("_next_rome")) & (v["region"] == F.col("_next_region")),
        )
        n_steps = F.col("n_steps") + 1
        paths = (
            paths.join(edges, ["_at_rome", "_at_region"])
            .where(~revisits)
            .select(
                "from_rome",
                "from_region",
                F.col("_next_rome").alias("_at_rome"),
                F.col("_next_region").alias("_at_region"),
                n_steps.alias("n_steps"),
                (F.col("probability") * F.col("_p")).alias("probability"),
                F.concat(
                    "steps", F.array(_step(n_steps, "_at_rome", "_at_region", "_next_rome", "_next_region"))
                ).alias("steps"),
                F.concat("_visited", F.array(_state("_next_rome", "_next_region"))).alias("_visited"),
            )
        )
        ending.append(paths.join(tense, ["_at_rome", "_at_region"]))

    found = ending[0]
    for more in ending[1:]:
        found = found.unionByName(more)
    found = found.withColumn("_route", F.transform("steps", lambda s: F.struct(s["to_rome"], s["to_region"])))
    likeliest = [F.col("probability").desc(), F.col("n_steps")]
    if one_per_destination:
        route = Window.partitionBy("from_rome", "from_region", "_at_rome", "_at_region").orderBy(
            *likeliest, "_route"
        )
        found = found.withColumn("_best", F.row_number().over(route)).where(F.col("_best") == 1)
    origin = Window.partitionBy("from_rome", "from_region").orderBy(
        *likeliest, "_at_rome", "_at_region", "_route"
    )
    return (
        found.withColumn("path_rank", F.row_number().over(origin))
        .where(F.col("path_rank") <= per_origin)
        .select(
            "from_rome",
            "from_region",
            F.col("path_rank").cast("int").alias("path_rank"),
            F.col("n_steps").cast("int").alias("n_steps"),
            F.col("probability").cast("double").alias("probability"),
            F.col("_at_rome").alias("to_rome"),
            F.col("_at_region").alias("to_region"),
            F.col("dest_tension").cast("double").alias("dest_tension"),
            "steps",
        )
    )

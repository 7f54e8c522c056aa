"""The baseline recommenders, each a table of ranked destinations per origin learnt from training examples
(``mobility.recommend.examples``); ``mobility.recommend.pyfunc`` answers queries from the tables.

``stay``
    The origin itself: same occupation, same region.
``popular``
    The destinations most often reached from the origin occupation (every region), by count; an occupation
    never seen falls back on the most frequent destinations overall.
``markov``
    Empirical destination probabilities of the origin with backoff, in two factors:
    ``p(to_rome, to_region | origin) = p(to_rome | origin) * p(to_region | origin)``. Each factor backs off
    through levels, the occupation one origin (occupation and region) -> occupation -> domaine (the first
    three characters of the code) -> all, the region one origin -> origin region -> all, smoothed by
    interpolation: ``p_L(v) = (n_L(v) + alpha * p_parent(v)) / (N_L + alpha)``, ``n_L(v)`` the moves of the
    origin's group at level L to v and ``N_L`` all its moves; at the top ``p_all(v) = n(v) / N``. Why two
    factors: a joint backoff to "occupation" would send a seeker of Brittany to the regions where the
    occupation's other movers live, while moves mostly stay in their own region whatever the occupation.
    A query uses, per factor, the most specific level its origin was seen at. Per group, the values kept are
    those it moved to and the ``top_n`` of its parent group (a value never reached from the group has
    ``alpha * p_parent / (N_L + alpha)``), ranked, ``top_n`` kept.

Tables hold ``key`` columns, ``to_rome``, ``to_region``, ``score`` (a probability, or a share for
``popular``) and ``rank`` (1 = best; ties broken by destination codes, so ranks are deterministic).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from mobility.recommend.examples import DESTINATION

# The two factors of markov: target -> its backoff levels (level -> key columns), most specific first.
FACTORS: dict[str, dict[str, tuple[str, ...]]] = {
    "to_rome": {
        "origin": ("from_rome", "from_region"),
        "occupation": ("from_rome",),
        "domaine": ("from_domaine",),
        "all": (),
    },
    "to_region": {"origin": ("from_rome", "from_region"), "region": ("from_region",), "all": ()},
}
# popular: joint destinations per level
LEVELS: dict[str, tuple[str, ...]] = {"occupation": ("from_rome",), "all": ()}


def with_domaine(df: DataFrame) -> DataFrame:
    return df.withColumn("from_domaine", F.substring("from_rome", 1, 3))


def _ranked(df: DataFrame, keys: tuple[str, ...], targets: tuple[str, ...], top_n: int) -> DataFrame:
    order = Window.partitionBy(*keys) if keys else Window.partitionBy(F.lit(0))
    ranked = df.withColumn("rank", F.row_number().over(order.orderBy(F.desc("score"), *targets)))
    return ranked.where(F.col("rank") <= top_n)


def popular_tables(train: DataFrame, *, top_n: int) -> dict[str, DataFrame]:
    """Counts per origin occupation (level ``occupation``) and overall (``all``), ranked."""
    tables = {}
    for level, keys in LEVELS.items():
        counts = train.groupBy(*keys, *DESTINATION).count()
        total = F.sum("count").over(Window.partitionBy(*keys) if keys else Window.partitionBy(F.lit(0)))
        scored = counts.withColumn("score", F.col("count") / total)
        tables[level] = _ranked(scored, keys, DESTINATION, top_n).drop("count")
    return tables


def markov_tables(train: DataFrame, *, alpha: float, top_n: int) -> dict[str, DataFrame]:
    """The smoothed tables of both factors at every backoff level, keyed ``<target>.<level>`` (see the
    module docstring)."""
    if alpha <= 0:
        raise ValueError(f"alpha {alpha}: expected a positive smoothing")
    train = with_domaine(train)
    tables = {}
    for target, levels in FACTORS.items():
        for level, table in backoff_tables(train, target, levels, alpha=alpha, top_n=top_n).items():
            tables[f"{target}.{level}"] = table
    return tables


def backoff_tables(
    train: DataFrame, target: str, levels: dict[str, tuple[str, ...]], *, alpha: float, top_n: int
) -> dict[str, DataFrame]:
    """``p_L(target | key_L)`` smoothed towards the next level of ``levels``, ``top_n`` per key."""
    names = list(levels)
    full: dict[str, DataFrame] = {}  # level -> probability of every target value the group reached
    tables: dict[str, DataFrame] = {}
    for i in reversed(range(len(names))):
        level, keys = names[i], levels[names[i]]
        group = Window.partitionBy(*keys) if keys else Window.partitionBy(F.lit(0))
        counts = train.groupBy(*keys, target).count().withColumn("_total", F.sum("count").over(group))
        if i == len(names) - 1:
            reached = counts.select(*keys, target, (F.col("count") / F.col("_total")).alias("score"))
            candidates = reached
        else:
            parent = names[i + 1]
            parent_keys = levels[parent]
            needs_domaine = "from_domaine" in parent_keys and "from_domaine" not in keys
            derived = {"from_domaine": F.substring("from_rome", 1, 3)} if needs_domaine else {}
            reached = (
                counts.withColumns(derived)
                .join(full[parent].withColumnRenamed("score", "_parent"), [*parent_keys, target])
                .select(*keys, target, _smoothed(F.col("count"), alpha))
            )
            totals = train.groupBy(*keys).count().withColumnRenamed("count", "_total").withColumns(derived)
            parent_top = tables[parent].drop("rank").withColumnRenamed("score", "_parent")
            inherited = (
                totals.join(parent_top, list(parent_keys))
                if parent_keys
                else totals.crossJoin(F.broadcast(parent_top))
            )
            inherited = inherited.select(*keys, target, _smoothed(F.lit(0), alpha))
            candidates = reached.unionByName(inherited.join(reached, [*keys, target], "left_anti"))
        full[level] = reached
        tables[level] = _ranked(candidates, keys, (target,), top_n)
    return {level: tables[level] for level in names}


def _smoothed(count: Column, alpha: float) -> Column:
    return ((count + F.lit(alpha) * F.col("_parent")) / (F.col("_total") + F.lit(alpha))).alias("score")

"""The baseline recommenders, each a table of ranked destinations per origin learnt from training examples
(``mobility.recommend.examples``), and ``rank``: the top destinations of each query from such tables.

``stay``
    The origin itself: same occupation, same region.
``popular``
    The destinations most often reached from the origin occupation (every region), by count; an occupation
    never seen falls back on the most frequent destinations overall.
``markov``
    Empirical destination probabilities of the origin with backoff, origin (occupation and region) ->
    occupation -> domaine (the first three characters of the code) -> all, smoothed by interpolation:
    ``p_L(d) = (n_L(d) + alpha * p_parent(d)) / (N_L + alpha)``, ``n_L(d)`` the moves of the origin's group at
    level L to d and ``N_L`` all its moves; at the top ``p_all(d) = n(d) / N``. A query uses the most
    specific level its origin was seen at. Per group, the destinations kept are those it moved to and the
    ``top_n`` of its parent group (a destination never reached from the group has ``alpha * p_parent /
    (N_L + alpha)``), ranked, ``top_n`` kept.

Tables hold ``key`` columns, ``to_rome``, ``to_region``, ``score`` (a probability, or a share for
``popular``) and ``rank`` (1 = best; ties broken by destination codes, so ranks are deterministic).
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from mobility.recommend.examples import DESTINATION

MODELS = ("stay", "popular", "markov")
# backoff level -> its key columns, most specific first; "all" has none
LEVELS: dict[str, tuple[str, ...]] = {
    "origin": ("from_rome", "from_region"),
    "occupation": ("from_rome",),
    "domaine": ("from_domaine",),
    "all": (),
}
PARENT = {"origin": "occupation", "occupation": "domaine", "domaine": "all"}


def with_domaine(df: DataFrame) -> DataFrame:
    return df.withColumn("from_domaine", F.substring("from_rome", 1, 3))


def _ranked(df: DataFrame, keys: tuple[str, ...], top_n: int) -> DataFrame:
    order = Window.partitionBy(*keys) if keys else Window.partitionBy(F.lit(0))
    ranked = df.withColumn("rank", F.row_number().over(order.orderBy(F.desc("score"), *DESTINATION)))
    return ranked.where(F.col("rank") <= top_n)


def popular_tables(train: DataFrame, *, top_n: int) -> dict[str, DataFrame]:
    """Counts per origin occupation (level ``occupation``) and overall (``all``), ranked."""
    tables = {}
    for level in ("occupation", "all"):
        keys = LEVELS[level]
        counts = train.groupBy(*keys, *DESTINATION).count()
        total = F.sum("count").over(Window.partitionBy(*keys) if keys else Window.partitionBy(F.lit(0)))
        tables[level] = _ranked(counts.withColumn("score", F.col("count") / total), keys, top_n).drop("count")
    return tables


def markov_tables(train: DataFrame, *, alpha: float, top_n: int) -> dict[str, DataFrame]:
    """The smoothed tables of every backoff level (see the module docstring)."""
    if alpha <= 0:
        raise ValueError(f"alpha {alpha}: expected a positive smoothing")
    train = with_domaine(train)
    full: dict[str, DataFrame] = {}  # level -> probability of every destination the group reached
    tables: dict[str, DataFrame] = {}
    for level in reversed(LEVELS):
        keys = LEVELS[level]
        group = Window.partitionBy(*keys) if keys else Window.partitionBy(F.lit(0))
        counts = train.groupBy(*keys, *DESTINATION).count().withColumn("_total", F.sum("count").over(group))
        if level == "all":
            reached = counts.select(*DESTINATION, (F.col("count") / F.col("_total")).alias("score"))
            candidates = reached
        else:
            parent = PARENT[level]
            parent_keys = LEVELS[parent]
            parent_of = _parent_key(level)
            reached = (
                counts.withColumns(parent_of)
                .join(full[parent].withColumnRenamed("score", "_parent"), [*parent_keys, *DESTINATION])
                .select(*keys, *DESTINATION, _smoothed(F.col("count"), alpha))
            )
            totals = train.groupBy(*keys).count().withColumnRenamed("count", "_total").withColumns(parent_of)
            parent_top = tables[parent].drop("rank").withColumnRenamed("score", "_parent")
            inherited = (
                totals.join(parent_top, list(parent_keys))
                if parent_keys
                else totals.crossJoin(F.broadcast(parent_top))
            )
            inherited = inherited.select(*keys, *DESTINATION, _smoothed(F.lit(0), alpha))
            candidates = reached.unionByName(inherited.join(reached, [*keys, *DESTINATION], "left_anti"))
        full[level] = reached
        tables[level] = _ranked(candidates, keys, top_n)
    return {level: tables[level] for level in LEVELS}


def _parent_key(level: str) -> dict[str, Column]:
    """The parent level's key columns of a group at ``level``."""
    if level == "occupation":
        return {"from_domaine": F.substring("from_rome", 1, 3)}
    return {}


def _smoothed(count: Column, alpha: float) -> Column:
    return ((count + F.lit(alpha) * F.col("_parent")) / (F.col("_total") + F.lit(alpha))).alias("score")


def stay(queries: DataFrame) -> DataFrame:
    """The ``stay`` recommendation of each query: its own occupation and region, score 1, rank 1."""
    return queries.select(
        "example_id",
        F.col("from_rome").alias("to_rome"),
        F.col("from_region").alias("to_region"),
        F.lit(1.0).alias("score"),
        F.lit(1).alias("rank"),
    )


def rank(queries: DataFrame, tables: Mapping[str, DataFrame], *, top_k: int) -> DataFrame:
    """The ``top_k`` destinations of each query (``example_id``) from the most specific level of ``tables``
    (a subset of ``LEVELS``, e.g. those of ``markov_tables`` or ``popular_tables``) its origin was seen at:
    ``example_id``, ``to_rome``, ``to_region``, ``score``, ``rank``, ``level``."""
    queries = with_domaine(queries)
    chosen = queries.select("example_id", *{k for keys in LEVELS.values() for k in keys}).withColumn(
        "level", F.lit(None).cast("string")
    )
    for level in (name for name in LEVELS if name in tables):
        keys = LEVELS[level]
        if not keys:
            chosen = chosen.withColumn("level", F.coalesce("level", F.lit(level)))
            continue
        seen = tables[level].select(*keys).distinct().withColumn("_seen", F.lit(level))
        chosen = (
            chosen.join(F.broadcast(seen), list(keys), "left")
            .withColumn("level", F.coalesce("level", "_seen"))
            .drop("_seen")
        )
    parts = []
    for level, table in tables.items():
        keys = LEVELS[level]
        mine = chosen.where(F.col("level") == level)
        hits = (
            mine.join(table.where(F.col("rank") <= top_k), list(keys))
            if keys
            else mine.crossJoin(F.broadcast(table.where(F.col("rank") <= top_k)))
        )
        parts.append(hits.select("example_id", *DESTINATION, "score", "rank", "level"))
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out

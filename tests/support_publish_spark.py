"""The Spark implementation of secondary suppression that ``mobility.publish`` replaced (issue 19), kept
as an oracle: the new solver must suppress the same cells on the same gold tables.

Every cell, line membership and link is a row named by a string (``row|key|key#system``); each round joins
the memberships of the lines touched by the last round with the cells' state, aggregates per line and marks
the picked cells. Its cost grows with the whole state per round, which is why it was replaced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from mobility.publish.rules import FLOW_TABLES, MARKET_COUNTS
from mobility.publish.solver import SuppressionError

log = logging.getLogger(__name__)

_NULL_KEY = "\u2205"
_CROSSING = "NOT (from_region <=> to_region)"
_CHANGING = "from_rome != to_rome"


# ------------------------------------------------------------------------------------------- engine


def sensitive(count: Column, min_cell: int) -> Column:
    """Primary suppression: ``0 < count < min_cell`` (false for null)."""
    return F.coalesce((count > 0) & (count < min_cell), F.lit(False))


def _sensitive_sql(count: str, min_cell: int) -> str:
    return f"coalesce(({count}) > 0 AND ({count}) < {min_cell}, false)"


def key_id(name: str, keys: Iterable[str | Column]) -> Column:
    """A string naming one cell or line: ``name|value|value...`` (null keys spelt ``\u2205``); ``keys``
    are columns, or column names or SQL expressions."""
    parts = [
        F.coalesce((k if isinstance(k, Column) else F.expr(k)).cast("string"), F.lit(_NULL_KEY)) for k in keys
    ]
    return F.concat_ws("|", F.lit(name), *parts)


def _key_sql(name: str, keys: Iterable[str]) -> str:
    """``key_id`` as SQL text (the model builds hundreds of them: one parse each instead of many calls)."""
    parts = "".join(f", coalesce(cast({k} as string), '{_NULL_KEY}')" for k in keys)
    return f"concat_ws('|', '{name}'{parts})"


def solve(
    cells: DataFrame,
    members: DataFrame,
    links: DataFrame | None = None,
    *,
    max_rounds: int,
) -> DataFrame:
    """Secondary suppression to a fixpoint: the general building block.

    ``cells``: one row per cell, ``cell`` (a unique id), ``table`` (named in errors), ``count``, ``lower``
    (the least value a reader knows a suppressed cell holds: 1 for counts of present cells, 0 for counts
    inside a row) and ``hidden`` (suppressed from the start: primary, or forced); other columns are carried
    through. ``members``: ``group`` (a line), ``cell``, ``total`` (the cell publishes the line's total; a
    line without one has a total taken as published); leave out the cells under their lower bound (they
    never change nor help). ``links``: ``src``, ``dst``: suppressing ``src`` suppresses ``dst``. Returns
    ``cells`` with the final ``hidden``.

    A line needs a fix when exactly one member is hidden, or when two or more are, its total is not, and
    its hidden cells sum to their lower bounds (pinned; zeros pinned at 0 reveal nobody). The fix hides the
    line's smallest visible member holding at least its lower bound (ties by id), preferring members that
    are not alone in another line.
    """
    if max_rounds < 1:
        raise ValueError(f"max_rounds {max_rounds}: expected at least 1")
    spark = cells.sparkSession
    began = time.monotonic()
    if links is None:
        links = spark.createDataFrame([], "src string, dst string")
    # Unions of many frames have many partitions: hash them by cell, into a fixed number of partitions
    # (which adaptive execution keeps), so that each round joins them to the state without a shuffle.
    partitions = int(spark.conf.get("spark.sql.shuffle.partitions"))
    links = links.select("src", "dst").distinct().localCheckpoint(eager=False)
    initial = cells.withColumn("hidden", F.coalesce(F.col("hidden"), F.lit(False))).localCheckpoint(
        eager=False
    )
    core = initial.select("cell", "table", "count", "lower", "hidden")

    # A line of one member can never be fixed: its membership is dropped. (Cells under their lower bound,
    # the zeros of a market count, never change nor help: callers leave them out.)
    kept = (
        members.select("group", "cell", F.col("total").cast("boolean").alias("total"))
        .withColumn("_size", F.count(F.lit(1)).over(Window.partitionBy("group")))
        .repartition(partitions, "cell")
        .localCheckpoint(eager=False)
    )
    members = kept.where(F.col("_size") > 1).drop("_size")
    # A cell alone in a line is a poor complement: suppressed, it would be the line's total, which the
    # other lines may give (the rows' totals minus the other columns'). Picks prefer cells that are not.
    alone = kept.where(F.col("_size") == 1).select("cell").distinct().withColumn("alone", F.lit(True))
    # Only the cells of a line or a link can change: the rounds work on those alone.
    active = (
        members.select("cell")
        .unionByName(links.select(F.col("src").alias("cell")))
        .unionByName(links.select(F.col("dst").alias("cell")))
        .distinct()
    )
    state = (
        core.join(active, "cell", "left_semi")
        .join(alone, "cell", "left")
        .withColumn("alone", F.coalesce(F.col("alone"), F.lit(False)))
        .repartition(partitions, "cell")
        .localCheckpoint(eager=False)
    )
    log.debug("suppression: set up in %.1f s", time.monotonic() - began)

    # Round 1 looks at every line and link; the next ones at those of the cells the last round changed.
    part = ~F.col("total")
    changed_cells = state.where("hidden").select("cell")
    dirty = members
    for round_ in range(1, max_rounds + 1):
        began = time.monotonic()
        joined = dirty.join(state.select("cell", "count", "lower", "hidden", "alone"), "cell")
        candidate = ~F.col("hidden") & (F.col("count") >= F.col("lower"))
        lines = joined.groupBy("group").agg(
            F.sum(F.col("hidden").cast("int")).alias("n_hidden"),
            F.max(F.col("hidden") & F.col("total")).alias("total_hidden"),
            F.sum(F.when(F.col("hidden") & part, F.col("count"))).alias("hidden_sum"),
            F.sum(F.when(F.col("hidden") & part, F.col("lower"))).alias("hidden_lower"),
            F.min(F.when(candidate, F.struct("alone", "count", "cell"))).alias("pick"),
        )
        pinned = (
            (F.col("n_hidden") >= 2)
            & ~F.col("total_hidden")
            & (F.col("hidden_sum") == F.col("hidden_lower"))
            & (F.col("hidden_lower") > 0)
        )
        picks = lines.where(((F.col("n_hidden") == 1) | pinned) & F.col("pick").isNotNull()).select(
            F.col("pick.cell").alias("cell")
        )
        linked = links.join(changed_cells.select(F.col("cell").alias("src")), "src").select(
            F.col("dst").alias("cell")
        )
        flagged = picks.unionByName(linked).distinct().withColumn("_flag", F.lit(True))
        state = (
            state.join(flagged, "cell", "left")
            .withColumn("_changed", F.coalesce(F.col("_flag"), F.lit(False)) & ~F.col("hidden"))
            .withColumn("hidden", F.col("hidden") | F.col("_changed"))
            .drop("_flag")
            .repartition(partitions, "cell")
            .localCheckpoint(eager=False)
        )
        # bounded: one row per published table
        changed = state.where("_changed").groupBy("table").count().collect()
        log.debug("suppression round %d: %s in %.1f s", round_, {r["table"]: r["count"] for r in changed},
                  time.monotonic() - began)  # fmt: skip
        if not changed:
            final = state.select("cell", F.col("hidden").alias("_final"))
            return (
                initial.join(final, "cell", "left")
                .withColumn("hidden", F.coalesce(F.col("_final"), F.col("hidden")))
                .drop("_final")
            )
        changed_cells = state.where("_changed").select("cell")
        touched = members.join(changed_cells, "cell", "left_semi").select("group").distinct()
        dirty = members.join(touched, "group", "left_semi")
        state = state.drop("_changed")
    still = ", ".join(f"{r['table']} ({r['count']} cells)" for r in sorted(changed, key=lambda r: r["table"]))
    raise SuppressionError(
        f"secondary suppression did not converge in {max_rounds} rounds: still changing in {still}"
    )


# ------------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class _Cells:
    """Cells of the model: a source frame, the row name and key columns of their ids, and the system (the
    count: ``moves``, ``hires``... a row can hold several cells)."""

    df: DataFrame
    row: str
    keys: tuple[str, ...]
    system: str

    def cell_sql(self) -> str:
        return f"concat_ws('#', {_key_sql(self.row, self.keys)}, '{self.system}')"

    def using(self, system: str) -> _Cells:
        return _Cells(self.df, self.row, self.keys, system)


class _Model:
    """The cells, line memberships and links of every published table, for one ``solve``. Each is a SQL
    struct over a source frame; a frame is scanned once for all of its structs (one explode)."""

    def __init__(self, min_cell: int) -> None:
        self.min_cell = min_cell
        self._structs: dict[int, tuple[DataFrame, dict[str, list[str]]]] = {}

    def _put(self, df: DataFrame, kind: str, struct: str, where: str | None = None) -> None:
        if where is not None:
            struct = f"CASE WHEN coalesce({where}, false) THEN {struct} END"
        found = self._structs.setdefault(id(df), (df, {"cells": [], "members": [], "links": []}))
        found[1][kind].append(struct)

    def add(
        self,
        cells: _Cells,
        table: str,
        count: str,
        *,
        lower: int = 1,
        hidden: str | None = None,
        where: str | None = None,
    ) -> None:
        """Cells with the value ``count`` (SQL); suppressed from the start when primary or ``hidden``."""
        start = _sensitive_sql(count, self.min_cell) + (f" OR {hidden}" if hidden else "")
        struct = (
            f"named_struct('cell', {cells.cell_sql()}, 'row', {_key_sql(cells.row, cells.keys)}, "
            f"'table', '{table}', 'system', '{cells.system}', 'count', cast({count} as bigint), "
            f"'lower', {lower}, 'hidden', {start})"
        )
        self._put(cells.df, "cells", struct, where)

    def line(
        self,
        name: str,
        parts: _Cells,
        by: Sequence[str],
        *,
        where: str | None = None,
        total: tuple[_Cells, Sequence[str]] | None = None,
    ) -> None:
        """Lines ``name``: the ``parts`` (meeting ``where``) grouped by ``by``; ``total``: the cells
        publishing the lines' totals, with their line keys in the order of ``by``."""
        group = f"{parts.system}/{name}"
        self._put(
            parts.df,
            "members",
            f"named_struct('group', {_key_sql(group, by)}, 'cell', {parts.cell_sql()}, 'total', false)",
            where,
        )
        if total is not None:
            cells, tby = total
            struct = (
                f"named_struct('group', {_key_sql(group, tby)}, 'cell', {cells.cell_sql()}, 'total', true)"
            )
            self._put(cells.df, "members", struct)

    def link(self, src: _Cells, dst: _Cells, *, both: bool = False) -> None:
        """Suppressing a cell of ``src`` suppresses the cell of ``dst`` on the same row of ``src.df``."""
        self._put(src.df, "links", f"named_struct('src', {src.cell_sql()}, 'dst', {dst.cell_sql()})")
        if both:
            self._put(src.df, "links", f"named_struct('src', {dst.cell_sql()}, 'dst', {src.cell_sql()})")

    def frame(self, kind: str) -> DataFrame:
        frames = [
            df.select(
                F.explode(F.expr(f"filter(array({', '.join(structs)}), v -> v IS NOT NULL)")).alias("_v")
            ).select("_v.*")
            for df, kinds in self._structs.values()
            if (structs := kinds[kind])
        ]
        return reduce(DataFrame.unionByName, frames)

    def solve(self, max_rounds: int) -> DataFrame:
        return solve(self.frame("cells"), self.frame("members"), self.frame("links"), max_rounds=max_rounds)


def _period_keys(table: str) -> tuple[str, ...]:
    return (*FLOW_TABLES[table], "period_start")


_VIA = "round(coalesce(share_via_offers, 0D) * hires)"  # hires through an offer (0 without hire)


def _flows_model(model: _Model, gold: Mapping[str, DataFrame]) -> None:
    m = model.min_cell
    moves = {t: _Cells(gold[t], t, _period_keys(t), "moves") for t in FLOW_TABLES}
    for t, cells in moves.items():
        model.add(cells, t, "moves")
        model.add(cells.using("hires"), t, "hires", lower=0, hidden=_sensitive_sql("reorientations", m))
        model.add(cells.using("via"), t, _VIA, lower=0, hidden=_sensitive_sql(f"hires - {_VIA}", m))
        model.link(cells, cells.using("hires"))
        model.link(cells.using("hires"), cells.using("via"))

    balance, mobility = gold["region_balance"], gold["occupation_mobility"]
    pairs_df = gold["flows"].groupBy("from_rome", "to_rome").agg(F.sum("moves").alias("moves"))
    pairs = _Cells(pairs_df, "occupation_mobility_pair", ("from_rome", "to_rome"), "moves")
    model.add(pairs, "occupation_mobility", "moves")
    movers = _Cells(mobility, "occupation_mobility", ("from_rome",), "movers")
    changers = movers.using("changers")
    stayers = _Cells(mobility, "occupation_mobility_pair", ("from_rome", "from_rome"), "moves")
    model.add(movers, "occupation_mobility", "movers")
    model.add(changers, "occupation_mobility", "changers")
    model.link(movers, changers, both=True)
    model.link(movers, stayers, both=True)
    inflow = _Cells(balance, "region_balance", ("region", "period_start"), "inflow")
    outflow = inflow.using("outflow")
    model.add(inflow, "region_balance", "inflow")
    model.add(outflow, "region_balance", "outflow")
    model.link(inflow, outflow, both=True)

    ps = "period_start"
    for system in ("moves", "hires", "via"):
        f, r, o, g = (moves[t].using(system) for t in FLOW_TABLES)
        model.line("flows.origin", f, ("from_rome", "from_region", ps))
        model.line("flows.destination", f, ("to_rome", "to_region", ps))
        model.line("flows.region_pair", f, ("from_region", "to_region", ps),
                   total=(r, ("from_region", "to_region", ps)))  # fmt: skip
        model.line("flows.occupation_pair", f, ("from_rome", "to_rome", ps),
                   total=(o, ("from_rome", "to_rome", ps)))  # fmt: skip
        model.line("flows_region.from", r, ("from_region", ps))
        model.line("flows_region.to", r, ("to_region", ps))
        model.line("flows_occupation.from", o, ("from_rome", ps))
        model.line("flows_occupation.to", o, ("to_rome", ps))
        domains = ("substring(from_rome, 1, 1)", "substring(to_rome, 1, 1)", ps)
        model.line("flows_occupation.domain_pair", o, domains,
                   total=(g, ("from_grand_domaine", "to_grand_domaine", ps)))  # fmt: skip
        model.line("flows_grand_domaine.from", g, ("from_grand_domaine", ps))
        model.line("flows_grand_domaine.to", g, ("to_grand_domaine", ps))
        # the period's total: the sum of any of the four tables (of the grand domaines, when all are shown)
        for t, cells in zip(FLOW_TABLES, (f, r, o, g), strict=True):
            model.line(f"{t}.period", cells, (ps,))
    # Moves only: the region balance and the occupation mobility publish more totals.
    r = moves["flows_region"]
    model.line(
        "flows_region.outflow", r, ("from_region", ps), where=_CROSSING, total=(outflow, ("region", ps))
    )
    model.line("flows_region.inflow", r, ("to_region", ps), where=_CROSSING, total=(inflow, ("region", ps)))
    for t in ("flows", "flows_occupation"):
        model.line(f"{t}.pair_all_periods", moves[t], ("from_rome", "to_rome"), total=(pairs, pairs.keys))
        model.line(f"{t}.movers", moves[t], ("from_rome",), total=(movers, movers.keys))
        model.line(
            f"{t}.changers", moves[t], ("from_rome",), where=_CHANGING, total=(changers, changers.keys)
        )


# market total row name -> its line keys on the market: the regional stock's totals that the coarse flows
# publish as seekers_at_origin (the national cell is the third, per occupation)
_STOCK_TOTALS = {
    "market_region_total": ("code_region", "month"),
    "market_domain_total": ("substring(rome, 1, 1)", "month"),
}


def _market_model(model: _Model, gold: Mapping[str, DataFrame]) -> None:
    market, national = gold["market"], gold["market_national"]
    # A zero is never suppressed nor picked (a reader knows a suppressed cell holds someone): zero cells
    # stay out of the model, and visible.
    for count in MARKET_COUNTS:
        nonzero = f"{count} > 0"
        cells = _Cells(market, "market", ("rome", "code_region", "month"), count)
        totals = _Cells(national, "market_national", ("rome", "month"), count)
        model.add(cells, "market", count, where=nonzero)
        model.add(totals, "market_national", count, where=nonzero)
        model.line("market.rome_month", cells, ("rome", "month"), where=nonzero, total=(totals, totals.keys))
        if count != "seekers_stock":  # the stock's region lines have their published totals below
            model.line("market.region_month", cells, ("code_region", "month"), where=nonzero)
    stock = _Cells(market, "market", ("rome", "code_region", "month"), "seekers_stock")
    for name, by in _STOCK_TOTALS.items():
        sums = (
            market.where("seekers_stock > 0")
            .groupBy(*(F.expr(b).alias(f"_k{i}") for i, b in enumerate(by)))
            .agg(F.sum("seekers_stock").alias("seekers_stock"))
        )
        totals = _Cells(sums, name, tuple(f"_k{i}" for i in range(len(by))), "seekers_stock")
        model.add(totals, "market", "seekers_stock")
        model.line(name, stock, by, where="seekers_stock > 0", total=(totals, totals.keys))


def hidden_cells(gold: Mapping[str, DataFrame], *, min_cell: int, max_rounds: int) -> set[tuple[str, ...]]:
    """The names of the suppressed cells (row, key texts..., system), as ``mobility.publish`` names them."""
    model = _Model(min_cell)
    _flows_model(model, gold)
    _market_model(model, gold)
    solved = model.solve(max_rounds).where("hidden").select("cell")
    out = set()
    for r in solved.toLocalIterator():  # bounded: the cells of the published tables
        name, system = r["cell"].rsplit("#", 1)
        out.add((*name.split("|"), system))
    return out

"""Published views: ``gold.published_*``, the only tables that leave the lake (report, exports, notebooks
shared outside), with small-cell and secondary suppression of every count of people.

Vocabulary
----------
Cell
    One published count of people: ``moves`` of a flows row, ``seekers_stock`` of a market row, ``inflow``
    of a region balance... A suppressed cell is published as null.
Line
    A set of cells whose total is published, or may be: a row or a column of a table, a cell of a coarser
    table (the ``flows`` rows from region 11 to region 84 in a quarter sum to one ``flows_region`` cell),
    an indicator (``region_balance.outflow`` sums the off-diagonal cells of a ``flows_region`` row). A line
    is given by a subset of a table's key columns (cells with equal values form one line), optionally
    restricted to the cells meeting a condition (off-diagonal cells only). When its total is itself a
    published cell, that cell is a member of the line (its total) and is suppressed like any other cell.

Rules, and why each is needed
-----------------------------
1. Primary: a count ``c`` with ``0 < c < min_cell`` is suppressed: a small group of people can be
   recognised (the one seeker of a village who became a baker). Zero and absent cells are not sensitive
   (nobody to recognise) and are never suppressed, so a reader knows a suppressed cell is at least 1.
2. Secondary, per line: the total and all but one cell of a line give the last cell by difference, so a
   line holding exactly one suppressed member (its total included) gets one more: its smallest visible
   cell (ties broken by the cell's keys, so the result is deterministic), preferring cells that are not
   alone in another line (such a cell, suppressed, would be that line's total, which the other lines can
   give: the rows' totals minus the other columns'). A line whose suppressed cells
   sum to their number gets one more too (the all-ones pin: each suppressed cell is at least 1, so a
   reader knowing the total learns they are all 1). A fix can break another line: rounds repeat over all
   lines until none needs a fix (a fixpoint; past ``max_rounds`` a ``SuppressionError`` names the tables
   still changing).
3. A line left with no visible cell to suppress cannot be fixed by its cells, yet its total would give
   them away (one cell: it is the total; all ones: the total is their number), whatever its size (a cell
   suppressed as a complement holds 5 or more). Its total is then withheld, which is automatic when the
   total is a published cell of the line (the only visible member left, hence the one suppressed); a total
   that no table publishes (a ``flows`` origin over a quarter) needs nothing. (Refines the first rule set,
   which only withheld such totals when under ``min_cell``.)
4. Tables sharing totals are solved together, in one fixpoint over all their cells and lines, because
   each can undo the other: a ``flows_region`` cell suppressed as a complement is the sum of its ``flows``
   rows, so one of those is suppressed too (the line "this ``flows_region`` cell = the sum of these
   ``flows`` rows" holding one suppressed member), and a ``flows`` line that cannot be fixed withholds
   the ``flows_region`` cell publishing its total (rule 3). Likewise ``flows_occupation`` with
   ``flows_grand_domaine``, ``flows`` and ``flows_occupation`` with ``occupation_mobility``,
   ``flows_region`` with ``region_balance``, ``market`` with ``market_national``.
5. Counts inside a row are cells of their own, in the same lines as the row, as the coarser tables publish
   their totals too: ``hires`` (with ``reorientations = moves - hires``, so both or neither) is suppressed
   when either is small, when the row's ``moves`` is, and by secondary suppression over the lines' hires;
   the hires via an offer (``share_via_offers * hires``, published as the share) likewise inside the
   hires. A reader knows only that a suppressed one is at least 0.
6. A value derived from a count is withheld with it (``rate = moves / seekers_at_origin`` would give it
   back; ``median_days_to_move`` belongs to its row), and a value revealing a count of another table
   follows that count: ``seekers_at_origin`` is the market stock at the end of the month before the
   period (a ``market`` cell; for the coarse flows a regional, national or grand-domaine total of the
   market, each a cell of the model), and ``dest_tension`` divides the offers by the destination's stock
   over the period's months, so it is withheld when any of those stock cells is (and when the stock it
   implies, ``dest_offers / dest_tension``, is under ``min_cell``).
7. Values that are not counts of people are kept: ``dest_offers``, ``dest_positions``,
   ``offers_published``, ``positions`` (job offers), and the median delay of a published row.

What the rules guarantee, and what they do not: with every line total known, no suppressed cell can be
computed from one line, and no line pins its cells at their least values. These are the usual per-line
rules, not a proof against a reader solving all the lines together as a linear program (each suppressed
cell at least 1): such a reader narrows cells down and, in some patterns, pins one (two suppressed 1s at
the ends of a chain of rows and columns; small lines whose totals, withheld one by one, still add up with
the others, as a table's rows sum to its columns). The tests run that attack (``scipy.optimize.linprog``)
with the totals a reader gets from the published tables: ``flows_region`` with ``region_balance`` (a row
total only when its outflow and internal are both shown: taking every row total as known, though no
table publishes it, pins cells of generated data), ``flows`` with the shown region and occupation pairs,
and ``flows_occupation`` with every row and column total of a period known unless withheld (under
``min_cell``, or by rule 3), a pessimistic reading that holds on generated data (it does not always for
``flows_grand_domaine``, whose rows and columns are published nowhere either). Closing this for good
takes an audit by linear programming per period (as tau-argus does), which is not native Spark. Mixing
tables of different populations can still reveal their difference (the national market counts seekers
without a region, the regional lines do not): these rules do not treat it.

Per table
---------
``published_flows``, ``published_flows_region``, ``published_flows_occupation``,
``published_flows_grand_domaine``
    The gold columns, suppressed as above. Lines, per period: ``flows``: the origin (occupation, region),
    the destination, the region pair (total: a ``flows_region`` cell), the occupation pair (a
    ``flows_occupation`` cell); ``flows_region``: rows, columns, and their off-diagonal parts (totals:
    ``region_balance`` outflow and inflow); ``flows_occupation``: rows, columns, grand-domaine pairs (a
    ``flows_grand_domaine`` cell); ``flows_grand_domaine``: rows and columns; in each table the period's
    total (the same for the four, published by the grand domaines when all are shown). Across periods,
    for ``flows`` and ``flows_occupation``: the occupation pair (total: the ``occupation_mobility`` pair,
    below), the origin occupation (``movers``) and its moves to another occupation (``changers``).
``published_region_balance``
    ``internal`` is the diagonal cell of ``published_flows_region``; ``inflow`` and ``outflow`` are cells
    (totals of the off-diagonal lines). When either is suppressed, both are, and ``net`` (``net`` and one
    of them give the other).
``published_occupation_mobility``
    ``movers``, ``changers`` and the stayers ``movers - changers`` (the pair of the occupation with itself)
    are cells, as is each occupation pair's total over the periods (what ``top_destinations`` shows). When
    any of the three is suppressed, ``movers``, ``changers``, ``share_changing`` and the ``share`` of every
    destination are withheld (``moves / share`` gives the movers). ``top_destinations`` is cut before its
    first entry whose pair is suppressed: an entry removed from the middle of the ranking would be
    bracketed by its neighbours.
``published_market``, ``published_market_national``
    ``seekers_stock``, ``registrations``, ``exits_to_work``, ``hires`` each suppressed on its own, over the
    lines (``rome``, ``month``), whose total is the ``market_national`` cell, and (``code_region``,
    ``month``); for the stock also (grand domaine, ``month``): the region and grand-domaine totals of the
    stock are cells, published by the coarse flows as ``seekers_at_origin``. ``tension`` is withheld with
    the stock. The rolling columns are dropped: consecutive 12-month windows differ by one month in and one
    month out, so their differences would give suppressed months back.

Flags
-----
Every published table has ``suppressed_columns`` (``array<string>``: the columns of the row withheld for
privacy, in column order, empty when none) and ``suppressed`` (``size(suppressed_columns) > 0``). A column
is listed whenever its rule applies, even when the gold value was null anyway (``share_via_offers`` of a
row without hires), so that the list reveals nothing; a null not listed is a genuine null (``rate`` without
seekers at origin). Only the columns named here are published: a new gold column stays in the lake until
a rule is written for it.

Native Spark only. The inputs are materialised once (``localCheckpoint``); every cell, line membership
and link is a row; each round joins the memberships of the lines touched by the last round with the cells'
state, aggregates per line and marks the picked cells, and ``localCheckpoint`` cuts the lineage. The only
thing collected is the number of cells changed per table in a round.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from mobility.config import PrivacySettings
from mobility.errors import MobilityError
from mobility.lake import Lake

log = logging.getLogger(__name__)

GOLD_TABLES = (
    "flows",
    "flows_region",
    "flows_occupation",
    "flows_grand_domaine",
    "region_balance",
    "market",
    "market_national",
    "occupation_mobility",
)
# flows table -> its keys besides the period
FLOW_TABLES: dict[str, tuple[str, ...]] = {
    "flows": ("from_rome", "from_region", "to_rome", "to_region"),
    "flows_region": ("from_region", "to_region"),
    "flows_occupation": ("from_rome", "to_rome"),
    "flows_grand_domaine": ("from_grand_domaine", "to_grand_domaine"),
}
FLOW_COLUMNS = (
    "period",
    "period_start",
    "moves",
    "hires",
    "reorientations",
    "seekers_at_origin",
    "rate",
    "median_days_to_move",
    "share_via_offers",
    "dest_offers",
    "dest_positions",
    "dest_tension",
)
MARKET_COUNTS = ("seekers_stock", "registrations", "exits_to_work", "hires")
MARKET_COLUMNS = (
    "seekers_stock",
    "registrations",
    "exits_to_work",
    "offers_published",
    "positions",
    "hires",
    "tension",
)
_NULL_KEY = "\u2205"
_CROSSING = "NOT (from_region <=> to_region)"
_CHANGING = "from_rome != to_rome"


class SuppressionError(MobilityError):
    """Secondary suppression did not reach its fixpoint within ``max_rounds``."""


@dataclass(frozen=True)
class Line:
    """Cells whose total is, or may be, published: those with equal values of ``by`` (column names or SQL
    expressions), among the cells meeting ``where`` (a SQL condition; all cells when None)."""

    by: tuple[str, ...]
    where: str | None = None
    name: str | None = None

    def label(self) -> str:
        return self.name or ",".join(self.by) + (f" where {self.where}" if self.where else "")


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


def suppress(
    cells: DataFrame,
    keys: Sequence[str],
    count: str,
    lines: Sequence[Line],
    min_cell: int,
    max_rounds: int,
    *,
    table: str = "cells",
    lower: int = 1,
    forced: str | Column | None = None,
) -> DataFrame:
    """One table's ``cells`` (rows unique on ``keys``) with a boolean ``suppressed``: primary and secondary
    suppression of the column ``count`` over ``lines``, every line's total taken as published. ``forced``
    (a boolean column or SQL expression) suppresses cells from the start; ``lower`` is the least value a
    reader knows a suppressed cell holds (1: zeros are never suppressed); ``table`` names it in errors.
    Lines are checked one by one: two published lines that nest (a row and its off-diagonal part) also
    publish their difference (the diagonal cell), which no single line shows."""
    hidden = sensitive(F.col(count), min_cell)
    if forced is not None:
        hidden = hidden | F.coalesce(forced if isinstance(forced, Column) else F.expr(forced), F.lit(False))
    marked = cells.withColumn("_cell", key_id(table, keys)).withColumn("_hidden", hidden)
    state = marked.select(
        F.col("_cell").alias("cell"),
        F.lit(table).alias("table"),
        F.col(count).cast("long").alias("count"),
        F.lit(lower).alias("lower"),
        F.col("_hidden").alias("hidden"),
    )
    # Cells under the lower bound (zeros) are never suppressed nor picked: they are in no line.
    counted = marked.where(F.col("_hidden") | F.coalesce(F.col(count) >= lower, F.lit(False)))
    members = []
    for line in lines:
        part = counted if line.where is None else counted.where(F.coalesce(F.expr(line.where), F.lit(False)))
        group = key_id(f"{table}:{line.label()}", line.by)
        members.append(
            part.select(group.alias("group"), F.col("_cell").alias("cell"), F.lit(False).alias("total"))
        )
    empty = cells.sparkSession.createDataFrame([], "group string, cell string, total boolean")
    solved = solve(state, reduce(DataFrame.unionByName, members, empty), max_rounds=max_rounds)
    flags = solved.select(F.col("cell").alias("_cell"), F.col("hidden").alias("suppressed"))
    return marked.join(flags, "_cell", "left").drop("_cell", "_hidden")


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


# ------------------------------------------------------------------------------------ the outputs


def _flags(hidden: DataFrame, row: str, systems: Sequence[str]) -> DataFrame:
    """Per id of a suppressed row named ``row``: ``_h_<system>``, whether that cell is suppressed.
    ``hidden``: ``row``, ``systems`` (those suppressed) of the rows with a suppressed cell."""
    return hidden.where(F.col("row").startswith(row + "|")).select(
        F.col("row").alias("_row"), *(F.array_contains("systems", s).alias(f"_h_{s}") for s in systems)
    )


def _hidden(name: str) -> Column:
    return F.coalesce(F.col(name), F.lit(False))


def _published(
    columns: Sequence[str],
    withheld: Sequence[tuple[str, Column]],
    altered: Mapping[str, Column] | None = None,
) -> list[Column]:
    """``columns`` with those of ``withheld`` nulled under their condition, then the two flags (listing
    also the columns of ``altered`` under theirs: values shortened rather than nulled)."""
    rules = dict(withheld)
    listed = {**rules, **(altered or {})}
    names = F.filter(
        F.array(*(F.when(listed[c], F.lit(c)) for c in columns if c in listed)), lambda n: n.isNotNull()
    )
    return [
        *(F.when(~rules[c], F.col(c)).alias(c) if c in rules else F.col(c) for c in columns),
        (F.size(names) > 0).alias("suppressed"),
        names.alias("suppressed_columns"),
    ]


def _period_end(start: Column, label: Column) -> Column:
    """The day after the period labelled ``2022-Q1``, ``2022-03`` or ``2022`` starting on ``start``."""
    return (
        F.when(label.contains("-Q"), F.add_months(start, 3))
        .when(F.length(label) == 7, F.add_months(start, 1))
        .otherwise(F.add_months(start, 12))
    )


# flows table -> (stock row name, origin keys, destination keys) of its seekers_at_origin and dest_tension;
# the regional stock of an occupation is the line of its national cell, and follows it
_STOCK = {
    "flows": ("market", ("from_rome", "from_region"), ("to_rome", "to_region")),
    "flows_region": ("market_region_total", ("from_region",), ("to_region",)),
    "flows_occupation": ("market_national", ("from_rome",), ("to_rome",)),
    "flows_grand_domaine": ("market_domain_total", ("from_grand_domaine",), ("to_grand_domaine",)),
}


def _published_flows(table: str, df: DataFrame, state: DataFrame, stock: DataFrame, m: int) -> DataFrame:
    """``state``: the rows with suppressed cells (``_flags``); ``stock``: ``row`` of the suppressed stock
    cells."""
    keys = _period_keys(table)
    stock_row, origin, destination = _STOCK[table]
    start = F.col("period_start")
    months = F.sequence(
        start, F.add_months(_period_end(start, F.col("period")), -1), F.expr("INTERVAL 1 MONTH")
    )
    looked = df.select(
        key_id(table, keys).alias("_row"),
        key_id(stock_row, [*origin, F.add_months(start, -1)]).alias("_origin"),
        F.explode(F.transform(months, lambda month: key_id(stock_row, [*destination, month]))).alias("_dest"),
    )
    at_origin = (
        looked.select("_row", "_origin")
        .distinct()
        .join(stock.select(F.col("row").alias("_origin")), "_origin")
        .select("_row", F.lit(True).alias("_h_seekers"))
    )
    at_destination = (
        looked.join(stock.select(F.col("row").alias("_dest")), "_dest")
        .select("_row", F.lit(True).alias("_h_dest"))
        .distinct()
    )
    joined = (
        df.withColumn("_row", key_id(table, keys))
        .join(_flags(state, table, ("moves", "hires", "via")), "_row", "left")
        .join(at_origin, "_row", "left")
        .join(at_destination, "_row", "left")
    )
    moves = _hidden("_h_moves")
    hires = moves | _hidden("_h_hires")
    seekers = _hidden("_h_seekers") | sensitive(F.col("seekers_at_origin"), m)
    implied_stock = F.round(F.try_divide(F.col("dest_offers"), F.col("dest_tension")))
    withheld = [
        ("moves", moves),
        ("hires", hires),
        ("reorientations", hires),
        ("seekers_at_origin", seekers),
        ("rate", moves | seekers),
        ("median_days_to_move", moves),
        ("share_via_offers", hires | _hidden("_h_via")),
        ("dest_tension", _hidden("_h_dest") | sensitive(implied_stock, m)),
    ]
    return joined.select(*_published([*FLOW_TABLES[table], *FLOW_COLUMNS], withheld))


def _published_region_balance(df: DataFrame, state: DataFrame, m: int) -> DataFrame:
    diagonal = _flags(state, "flows_region", ("moves",)).select(
        "_row", F.col("_h_moves").alias("_h_internal")
    )
    joined = (
        df.withColumn("_row", key_id("region_balance", ("region", "period_start")))
        .join(_flags(state, "region_balance", ("inflow", "outflow")), "_row", "left")
        .drop("_row")
        .withColumn("_row", key_id("flows_region", ("region", "region", "period_start")))
        .join(diagonal, "_row", "left")
    )
    crossing = _hidden("_h_inflow") | _hidden("_h_outflow")
    crossing = crossing | sensitive(F.col("inflow"), m) | sensitive(F.col("outflow"), m)
    withheld = [
        ("inflow", crossing),
        ("outflow", crossing),
        ("net", crossing),
        ("internal", _hidden("_h_internal") | sensitive(F.col("internal"), m)),
    ]
    columns = ("region", "period", "period_start", "inflow", "outflow", "net", "internal")
    return joined.select(*_published(columns, withheld))


def _published_occupation_mobility(df: DataFrame, state: DataFrame, m: int) -> DataFrame:
    # Per origin: the shown destinations whose pair is suppressed (5 at most per origin).
    hidden_pairs = (
        df.select("from_rome", F.explode("top_destinations.to_rome").alias("to_rome"))
        .withColumn("_row", key_id("occupation_mobility_pair", ("from_rome", "to_rome")))
        .join(_flags(state, "occupation_mobility_pair", ("moves",)), "_row")
        .where(F.col("_h_moves"))
        .groupBy("from_rome")
        .agg(F.collect_set("to_rome").alias("_hidden_to"))
    )
    joined = (
        df.withColumn("_row", key_id("occupation_mobility", ("from_rome",)))
        .join(_flags(state, "occupation_mobility", ("movers", "changers")), "_row", "left")
        .join(hidden_pairs, "from_rome", "left")
    )
    totals = _hidden("_h_movers") | _hidden("_h_changers")
    for count in (F.col("movers"), F.col("changers"), F.col("movers") - F.col("changers")):
        totals = totals | sensitive(count, m)
    hidden_to = F.coalesce(F.col("_hidden_to"), F.array().cast("array<string>"))
    removed = F.transform(
        "top_destinations", lambda d: F.array_contains(hidden_to, d["to_rome"]) | sensitive(d["moves"], m)
    )
    cut = F.array_position(removed, True)  # 1-based; 0 when no entry is removed
    kept = F.when(cut == 0, F.col("top_destinations")).otherwise(F.slice("top_destinations", 1, cut - 1))
    destinations = F.transform(
        kept,
        lambda d: F.struct(
            d["to_rome"].alias("to_rome"),
            d["moves"].alias("moves"),
            F.when(~totals, d["share"]).alias("share"),
        ),
    )
    withheld = [("movers", totals), ("changers", totals), ("share_changing", totals)]
    columns = ("from_rome", "movers", "changers", "share_changing", "top_destinations")
    shortened = joined.withColumn("_cut", cut > 0).withColumn("top_destinations", destinations)
    return shortened.select(*_published(columns, withheld, {"top_destinations": F.col("_cut")}))


def _published_market(table: str, df: DataFrame, keys: Sequence[str], state: DataFrame) -> DataFrame:
    joined = df.withColumn("_row", key_id(table, keys)).join(
        _flags(state, table, MARKET_COUNTS), "_row", "left"
    )
    withheld = [(c, _hidden(f"_h_{c}")) for c in MARKET_COUNTS]
    withheld.append(("tension", _hidden("_h_seekers_stock")))
    return joined.select(*_published([*keys, *MARKET_COLUMNS], withheld))


def publish(gold: Mapping[str, DataFrame], *, min_cell: int, max_rounds: int) -> dict[str, DataFrame]:
    """The published views of the gold tables (see the module docstring for every rule).

    ``gold``: the frames of ``gold.<name>`` keyed by name: ``flows``, ``flows_region``, ``flows_occupation``,
    ``flows_grand_domaine``, ``region_balance``, ``market``, ``market_national``, ``occupation_mobility``.
    Returns ``published_<name>`` for each. ``min_cell``: the least count published (``privacy.min_cell``);
    ``max_rounds``: bound of the secondary-suppression rounds (``SuppressionError`` beyond it).
    """
    missing = [t for t in GOLD_TABLES if t not in gold]
    if missing:
        raise ValueError(f"publish: gold tables missing: {', '.join(missing)}")
    if min_cell < 1:
        raise ValueError(f"min_cell {min_cell}: expected at least 1")
    began = time.monotonic()
    # Each input is read by many parts of the model: plan it once, compute it once (at its first use).
    gold = {t: gold[t].localCheckpoint(eager=False) for t in GOLD_TABLES}
    log.debug("publish: inputs planned in %.1f s", time.monotonic() - began)
    model = _Model(min_cell)
    _flows_model(model, gold)
    _market_model(model, gold)
    state = (
        model.solve(max_rounds)
        .where("hidden")
        .groupBy("row")
        .agg(F.collect_set("system").alias("systems"))
        .localCheckpoint(eager=False)
    )
    log.debug("publish: suppressed in %.1f s", time.monotonic() - began)
    stock = state.where(F.array_contains("systems", "seekers_stock")).select("row")
    out = {f"published_{t}": _published_flows(t, gold[t], state, stock, min_cell) for t in FLOW_TABLES}
    out["published_region_balance"] = _published_region_balance(gold["region_balance"], state, min_cell)
    for table, keys in (("market", ("rome", "code_region", "month")), ("market_national", ("rome", "month"))):
        out[f"published_{table}"] = _published_market(table, gold[table], keys, state)
    out["published_occupation_mobility"] = _published_occupation_mobility(
        gold["occupation_mobility"], state, min_cell
    )
    return {name: out[name] for name in (f"published_{t}" for t in GOLD_TABLES)}


STATE = "gold.published_state"
RULES_VERSION = 1  # bump with any change of the rules: views built under other rules are rebuilt


def _state(lake: Lake, privacy: PrivacySettings) -> str:
    """What the views are built from: the settings and the Delta version of every gold table read."""
    versions = {t: lake.version(f"gold.{t}") for t in GOLD_TABLES}
    state = {
        "rules": RULES_VERSION,
        "min_cell": privacy.min_cell,
        "max_rounds": privacy.max_suppression_rounds,
    }
    return json.dumps({**state, "gold": versions}, sort_keys=True)


def up_to_date(lake: Lake, privacy: PrivacySettings) -> bool:
    """The published views were built from the current gold tables under the current settings."""
    if not (lake.exists(STATE) and all(lake.exists(f"gold.published_{t}") for t in GOLD_TABLES)):
        return False
    last = lake.read(STATE).orderBy(F.col("built_at").desc()).first()  # one row per build
    return last is not None and last["state"] == _state(lake, privacy)


def write(lake: Lake, privacy: PrivacySettings) -> dict[str, int]:
    """Replace every ``gold.published_*`` table by the published views of the current gold tables, unless
    they are up to date; return rows and suppressed rows per table. Rebuilt whole: the views are small
    aggregates, and secondary suppression links cells across periods, so a partial rebuild is not exact."""
    if up_to_date(lake, privacy):
        log.info("publish: the published views are up to date with the gold tables")
        return {"published views up to date": 1}
    began = time.monotonic()
    state = _state(lake, privacy)
    gold = {t: lake.read(f"gold.{t}") for t in GOLD_TABLES}
    views = publish(gold, min_cell=privacy.min_cell, max_rounds=privacy.max_suppression_rounds)
    counts: dict[str, int] = {}
    for name, df in views.items():
        lake.overwrite(df, f"gold.{name}")
        written = lake.read(f"gold.{name}")
        figures = written.agg(F.count(F.lit(1)), F.count(F.when(F.col("suppressed"), 1))).first()  # one row
        counts[f"gold.{name} rows"], counts[f"gold.{name} suppressed rows"] = figures[0], figures[1]
        log.info("publish: wrote gold.%s: %d rows, %d with suppressed cells", name, figures[0], figures[1])
    row = lake.spark.createDataFrame([(state,)], "state string").withColumn("built_at", F.current_timestamp())
    lake.append(row, STATE)
    seconds = time.monotonic() - began
    log.info("publish: %d views, min_cell %d, in %.1f s", len(views), privacy.min_cell, seconds)
    return counts

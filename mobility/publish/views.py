"""The published views of the gold tables: the gold frames brought to the driver once, their cells solved
(``rules``), each row's suppressed cells flagged in pandas, and the rules' columns applied in Spark."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from mobility.publish.model import Cells, Model
from mobility.publish.rules import (
    DOMAIN,
    DOMAINS,
    FLOW_TABLES,
    GOLD_TABLES,
    MARKET_COUNTS,
    MARKET_KEYS,
    VIA,
    period_keys,
    solved,
)

log = logging.getLogger(__name__)

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
MARKET_COLUMNS = (
    "seekers_stock",
    "registrations",
    "exits_to_work",
    "offers_published",
    "positions",
    "hires",
    "tension",
)
# flows table -> (stock row name, origin keys, destination keys) of its seekers_at_origin and dest_tension;
# the regional stock of an occupation is the line of its national cell, and follows it
_STOCK = {
    "flows": ("market", ("from_rome", "from_region"), ("to_rome", "to_region")),
    "flows_region": ("market_region_total", ("from_region",), ("to_region",)),
    "flows_occupation": ("market_national", ("from_rome",), ("to_rome",)),
    "flows_grand_domaine": ("market_domain_total", ("from_grand_domaine",), ("to_grand_domaine",)),
}
_ORIGIN_MONTH, _MONTHS = "_origin_month", "_months"


def sensitive(count: Column, min_cell: int) -> Column:
    """Primary suppression: ``0 < count < min_cell`` (false for null)."""
    return F.coalesce((count > 0) & (count < min_cell), F.lit(False))


def _period_end(start: Column, label: Column) -> Column:
    """The day after the period labelled ``2022-Q1``, ``2022-03`` or ``2022`` starting on ``start``."""
    return (
        F.when(label.contains("-Q"), F.add_months(start, 3))
        .when(F.length(label) == 7, F.add_months(start, 1))
        .otherwise(F.add_months(start, 12))
    )


def collect(gold: Mapping[str, DataFrame]) -> dict[str, pd.DataFrame]:
    """The gold tables on the driver (a million rows at 1M seekers), with the columns the rules read: the
    hires via an offer, the grand domaines, the months of each flows period."""
    extra: dict[str, list[Column]] = {t: [] for t in GOLD_TABLES}
    start = F.col("period_start")
    for t in FLOW_TABLES:
        extra[t] += [
            F.round(F.coalesce(F.col("share_via_offers"), F.lit(0.0)) * F.col("hires"))
            .cast("long")
            .alias(VIA),
            F.add_months(start, -1).alias(_ORIGIN_MONTH),
            F.sequence(
                start, F.add_months(_period_end(start, F.col("period")), -1), F.expr("INTERVAL 1 MONTH")
            ).alias(_MONTHS),  # fmt: skip
        ]
    extra["flows_occupation"] += [
        F.substring(f"{s}_rome", 1, 1).alias(d) for s, d in zip(("from", "to"), DOMAINS, strict=True)
    ]
    extra["market"].append(F.substring("rome", 1, 1).alias(DOMAIN))
    # bounded: aggregates, bounded by occupations x places x periods
    return {t: gold[t].select("*", *extra[t]).toPandas() for t in GOLD_TABLES}


def _flow_flags(model: Model, table: str, df: pd.DataFrame) -> pd.DataFrame:
    keys = period_keys(table)
    stock_row, origin, destination = _STOCK[table]
    flags = pd.DataFrame({f"_h_{s}": model.hidden(table, s, df, keys) for s in ("moves", "hires", "via")})
    flags["_h_seekers"] = model.hidden(stock_row, "seekers_stock", df, (*origin, _ORIGIN_MONTH))
    months = df[[*destination, _MONTHS]].explode(_MONTHS)
    dest = model.hidden(stock_row, "seekers_stock", months, (*destination, _MONTHS))
    flags["_h_dest"] = (
        pd.Series(dest, index=months.index).groupby(level=0).any().reindex(df.index, fill_value=False)
    )
    return flags


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
    names = F.array_compact(F.array(*(F.when(listed[c], F.lit(c)) for c in columns if c in listed)))
    return [
        *(F.when(~rules[c], F.col(c)).alias(c) if c in rules else F.col(c) for c in columns),
        (F.size(names) > 0).alias("suppressed"),
        names.alias("suppressed_columns"),
    ]


def _flagged(gold: DataFrame, rows: pd.DataFrame, flags: pd.DataFrame) -> DataFrame:
    """The gold rows (as collected) with their flags, back in Spark under the gold schema."""
    schema = T.StructType([*gold.schema.fields, *(T.StructField(c, T.BooleanType()) for c in flags.columns)])
    frame = pd.concat([rows[gold.columns].reset_index(drop=True), flags.reset_index(drop=True)], axis=1)
    # Under spark.sql.execution.arrow.localRelationThreshold, the frame becomes a local relation, whose
    # projections the optimiser folds on the driver, row by row: a shuffle keeps the rules' columns in tasks.
    most = int(gold.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    return gold.sparkSession.createDataFrame(frame, schema).repartition(
        max(1, min(most, -(-len(frame) // _ROWS_PER_FILE)))
    )


_ROWS_PER_FILE = 200_000  # the published views are small: a file per task, and few tasks


def _published_flows(table: str, df: DataFrame, m: int) -> DataFrame:
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
    return df.select(*_published([*FLOW_TABLES[table], *FLOW_COLUMNS], withheld))


def _published_region_balance(df: DataFrame, m: int) -> DataFrame:
    crossing = _hidden("_h_inflow") | _hidden("_h_outflow")
    crossing = crossing | sensitive(F.col("inflow"), m) | sensitive(F.col("outflow"), m)
    withheld = [
        ("inflow", crossing),
        ("outflow", crossing),
        ("net", crossing),
        ("internal", _hidden("_h_internal") | sensitive(F.col("internal"), m)),
    ]
    columns = ("region", "period", "period_start", "inflow", "outflow", "net", "internal")
    return df.select(*_published(columns, withheld))


def _hidden_destinations(model: Model, mobility: pd.DataFrame) -> pd.Series:
    """Per origin: the shown destinations whose pair is suppressed (5 at most per origin)."""
    entries = mobility[["from_rome", "top_destinations"]].explode("top_destinations").dropna()
    entries["to_rome"] = entries["top_destinations"].map(lambda d: d["to_rome"])
    hidden = model.hidden("occupation_mobility_pair", "moves", entries, ("from_rome", "to_rome"))
    chosen = entries["to_rome"][hidden]
    lists = chosen.groupby(level=0).agg(list)
    return lists.reindex(mobility.index).map(lambda v: v if isinstance(v, list) else [])


def _published_occupation_mobility(df: DataFrame, flags: pd.DataFrame, m: int) -> DataFrame:
    schema = "from_rome string, _h_movers boolean, _h_changers boolean, _hidden_to array<string>"
    joined = df.join(F.broadcast(df.sparkSession.createDataFrame(flags, schema)), "from_rome", "left")
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


def _published_market(table: str, df: DataFrame) -> DataFrame:
    withheld = [(c, _hidden(f"_h_{c}")) for c in MARKET_COUNTS]
    withheld.append(("tension", _hidden("_h_seekers_stock")))
    return df.select(*_published([*MARKET_KEYS[table], *MARKET_COLUMNS], withheld))


def publish(gold: Mapping[str, DataFrame], *, min_cell: int, max_rounds: int) -> dict[str, DataFrame]:
    """The published views of the gold tables (see ``mobility.publish`` for every rule).

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
    rows = collect(gold)
    log.info("publish: %d gold rows read in %.1f s", sum(map(len, rows.values())), time.monotonic() - began)
    began = time.monotonic()
    model = solved(rows, min_cell=min_cell, max_rounds=max_rounds)
    log.info("publish: cells suppressed in %.1f s", time.monotonic() - began)
    out = {}
    for t in FLOW_TABLES:
        flagged = _flagged(gold[t], rows[t], _flow_flags(model, t, rows[t]))
        out[f"published_{t}"] = _published_flows(t, flagged, min_cell)
    balance = rows["region_balance"]
    keys = ("region", "period_start")
    flags = pd.DataFrame(
        {f"_h_{s}": model.hidden("region_balance", s, balance, keys) for s in ("inflow", "outflow")}
    )
    flags["_h_internal"] = model.hidden("flows_region", "moves", balance, ("region", *keys))
    out["published_region_balance"] = _published_region_balance(
        _flagged(gold["region_balance"], balance, flags), min_cell
    )
    for table, keys in MARKET_KEYS.items():
        df = rows[table]
        flags = pd.DataFrame({f"_h_{c}": model.hidden(table, c, df, keys) for c in MARKET_COUNTS})
        out[f"published_{table}"] = _published_market(table, _flagged(gold[table], df, flags))
    mobility = rows["occupation_mobility"]
    flags = pd.DataFrame(
        {
            "from_rome": mobility["from_rome"],
            **{
                f"_h_{s}": model.hidden("occupation_mobility", s, mobility, ("from_rome",))
                for s in ("movers", "changers")
            },
            "_hidden_to": _hidden_destinations(model, mobility),
        }
    )
    out["published_occupation_mobility"] = _published_occupation_mobility(
        gold["occupation_mobility"], flags, min_cell
    )
    return {name: out[name] for name in (f"published_{t}" for t in GOLD_TABLES)}


def hidden_cells(gold: Mapping[str, DataFrame], *, min_cell: int, max_rounds: int) -> set[tuple[str, ...]]:
    """The names of the suppressed cells (row, key texts..., system), to compare solvers on."""
    return set(solved(collect(gold), min_cell=min_cell, max_rounds=max_rounds).suppressed())


@dataclass(frozen=True)
class Line:
    """Cells whose total is, or may be, published: those with equal values of ``by`` (column names or SQL
    expressions), among the cells meeting ``where`` (a SQL condition; all cells when None)."""

    by: tuple[str, ...]
    where: str | None = None
    name: str | None = None


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
    """One small table's ``cells`` (rows unique on ``keys``) with a boolean ``suppressed``: primary and
    secondary suppression of the column ``count`` over ``lines``, every line's total taken as published.
    ``forced`` (a boolean column or SQL expression) suppresses cells from the start; ``lower`` is the least
    value a reader knows a suppressed cell holds (1: zeros are never suppressed); ``table`` names it in
    errors. Lines are checked one by one: two published lines that nest (a row and its off-diagonal part)
    also publish their difference (the diagonal cell), which no single line shows."""
    forced_col = F.lit(False) if forced is None else forced if isinstance(forced, Column) else F.expr(forced)
    extra = [F.coalesce(forced_col, F.lit(False)).alias("_forced")]
    for i, line in enumerate(lines):
        extra += [F.expr(b).alias(f"_l{i}_{j}") for j, b in enumerate(line.by)]
        extra.append(F.coalesce(F.expr(line.where or "true"), F.lit(False)).alias(f"_l{i}_where"))
    df = cells.select("*", *extra).toPandas()  # bounded: a published table
    model = Model(min_cell)
    part = Cells(df, table, tuple(keys), count)
    # Cells under the lower bound (zeros) are never suppressed nor picked: they are in no line.
    counted = model.sensitive(df[count]) | df["_forced"].to_numpy() | (df[count] >= lower).to_numpy()
    model.add(part, table, count, lower=lower, hidden="_forced")
    for i, line in enumerate(lines):
        by = [f"_l{i}_{j}" for j in range(len(line.by))]
        model.line(f"{table}:{i}", part, by, where=counted & df[f"_l{i}_where"].to_numpy())
    model.solve(max_rounds)
    df["suppressed"] = model.hidden(table, count, df, keys)
    out = df[[*cells.columns, "suppressed"]]
    schema = T.StructType([*cells.schema.fields, T.StructField("suppressed", T.BooleanType())])
    return cells.sparkSession.createDataFrame(out, schema)

"""The published views of the gold tables: the gold tables as Arrow tables on the driver, their cells solved
(``rules``), and each view made there from its flags with Arrow compute.

``published`` is the pure part (Arrow tables in, Arrow tables out); ``publish`` wraps it for Spark frames
(tests, notebooks); the step reads and writes the tables' files without Spark (``mobility.publish.step``)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_schema

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
_PERIOD_MONTHS = {"quarter": 3, "month": 1, "year": 12}


def sensitive(count: np.ndarray, min_cell: int) -> np.ndarray:
    """Primary suppression: ``0 < count < min_cell`` (false for null, read as NaN)."""
    with np.errstate(invalid="ignore"):
        return (count > 0) & (count < min_cell)


def _numbers(table: pa.Table, column: str) -> np.ndarray:
    """A numeric column as float64, nulls as NaN."""
    return table.column(column).to_numpy().astype(np.float64)


def _round_half_up(x: np.ndarray) -> np.ndarray:
    """Spark's ``round`` (half away from zero), which NumPy's (half to even) is not."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _add_months(day: dt.date, months: int) -> dt.date:
    """``day`` (the first of a month) ``months`` later."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _period_length(label: str) -> int:
    """Months of the period labelled ``2022-Q1``, ``2022-03`` or ``2022``."""
    if "-Q" in label:
        return _PERIOD_MONTHS["quarter"]
    return _PERIOD_MONTHS["month"] if len(label) == 7 else _PERIOD_MONTHS["year"]


def frames(tables: Mapping[str, pa.Table]) -> dict[str, pd.DataFrame]:
    """The gold tables as pandas frames, with the columns the rules read: the hires via an offer, the months
    of each flows period, the grand domaines."""
    out = {t: tables[t].to_pandas() for t in GOLD_TABLES}
    for t in FLOW_TABLES:
        df = out[t]
        share = df["share_via_offers"].astype(float).fillna(0.0).to_numpy()
        df[VIA] = _round_half_up(share * df["hires"].to_numpy(dtype=float)).astype(np.int64)
        # A few periods, hundreds of thousands of rows: each period's months made once.
        periods = [
            (start, label)
            for start, label in df[["period_start", "period"]].drop_duplicates().itertuples(index=False)
            if start is not None and label is not None
        ]
        months = {p: [_add_months(p[0], k) for k in range(_period_length(p[1]))] for p in periods}
        df[_ORIGIN_MONTH] = df["period_start"].map({start: _add_months(start, -1) for start, _ in periods})
        df[_MONTHS] = [months.get(p) for p in zip(df["period_start"], df["period"], strict=True)]
    occupation = out["flows_occupation"]
    for side, domain in zip(("from", "to"), DOMAINS, strict=True):
        occupation[domain] = occupation[f"{side}_rome"].str[:1]
    out["market"][DOMAIN] = out["market"]["rome"].str[:1]
    return out


def collect(gold: Mapping[str, DataFrame]) -> dict[str, pa.Table]:
    """The gold frames on the driver as Arrow tables."""
    # bounded: aggregates, bounded by occupations x places x periods
    return {t: gold[t].toArrow() for t in GOLD_TABLES}


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


def _published(
    table: pa.Table,
    columns: Sequence[str],
    withheld: Sequence[tuple[str, np.ndarray]],
    altered: Mapping[str, np.ndarray] | None = None,
) -> pa.Table:
    """``columns`` of ``table`` with those of ``withheld`` nulled where their mask holds, then the two flags
    (listing also the columns of ``altered`` under theirs: values shortened rather than nulled)."""
    rules = dict(withheld)
    listed = {**rules, **(altered or {})}
    out: dict[str, pa.ChunkedArray | pa.Array] = {}
    for c in columns:
        values = table.column(c)
        out[c] = (
            pc.if_else(pa.array(rules[c]), pa.scalar(None, values.type), values) if c in rules else values
        )
    names = [c for c in columns if c in listed]
    matrix = np.column_stack([listed[c] for c in names]).astype(bool)
    row_counts = matrix.sum(axis=1)
    _, at = np.nonzero(matrix)  # row by row, each row's columns in order
    offsets = np.concatenate([[0], np.cumsum(row_counts)]).astype(np.int32)
    out["suppressed"] = pa.array(row_counts > 0)
    out["suppressed_columns"] = pa.ListArray.from_arrays(
        pa.array(offsets), pa.array(np.array(names, dtype=object)[at], pa.string()), type=_NAMES
    )
    fields = [table.schema.field(c).with_nullable(True) for c in columns]
    flags = [
        pa.field("suppressed", pa.bool_(), nullable=False),
        pa.field("suppressed_columns", _NAMES, False),
    ]
    return pa.table(out, schema=pa.schema([*fields, *flags]))


_NAMES = pa.list_(pa.field("element", pa.string(), nullable=False))  # the names listed are never null


def _published_flows(table: str, gold: pa.Table, flags: pd.DataFrame, m: int) -> pa.Table:
    moves = flags["_h_moves"].to_numpy(dtype=bool)
    hires = moves | flags["_h_hires"].to_numpy(dtype=bool)
    seekers = flags["_h_seekers"].to_numpy(dtype=bool) | sensitive(_numbers(gold, "seekers_at_origin"), m)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = _numbers(gold, "dest_offers") / _numbers(gold, "dest_tension")
    implied_stock = _round_half_up(np.where(np.isfinite(ratio), ratio, np.nan))  # try_divide: null on 0
    withheld = [
        ("moves", moves),
        ("hires", hires),
        ("reorientations", hires),
        ("seekers_at_origin", seekers),
        ("rate", moves | seekers),
        ("median_days_to_move", moves),
        ("share_via_offers", hires | flags["_h_via"].to_numpy(dtype=bool)),
        ("dest_tension", flags["_h_dest"].to_numpy(dtype=bool) | sensitive(implied_stock, m)),
    ]
    return _published(gold, [*FLOW_TABLES[table], *FLOW_COLUMNS], withheld)


def _published_region_balance(gold: pa.Table, flags: pd.DataFrame, m: int) -> pa.Table:
    crossing = flags["_h_inflow"].to_numpy(dtype=bool) | flags["_h_outflow"].to_numpy(dtype=bool)
    crossing = crossing | sensitive(_numbers(gold, "inflow"), m) | sensitive(_numbers(gold, "outflow"), m)
    internal = flags["_h_internal"].to_numpy(dtype=bool) | sensitive(_numbers(gold, "internal"), m)
    withheld = [("inflow", crossing), ("outflow", crossing), ("net", crossing), ("internal", internal)]
    columns = ("region", "period", "period_start", "inflow", "outflow", "net", "internal")
    return _published(gold, columns, withheld)


def _hidden_destinations(model: Model, mobility: pd.DataFrame) -> pd.Series:
    """Per origin: the shown destinations whose pair is suppressed (5 at most per origin)."""
    entries = mobility[["from_rome", "top_destinations"]].explode("top_destinations").dropna()
    entries["to_rome"] = entries["top_destinations"].map(lambda d: d["to_rome"])
    hidden = model.hidden("occupation_mobility_pair", "moves", entries, ("from_rome", "to_rome"))
    chosen = entries["to_rome"][hidden]
    lists = chosen.groupby(level=0).agg(list)
    return lists.reindex(mobility.index).map(lambda v: v if isinstance(v, list) else [])


def _published_occupation_mobility(gold: pa.Table, model: Model, mobility: pd.DataFrame, m: int) -> pa.Table:
    """Movers, changers and shares withheld when any of the three totals is suppressed; the ranking cut
    before its first suppressed or small pair (a few hundred rows: plain Python)."""
    known = mobility["from_rome"].notna().to_numpy()  # a null origin names no cell
    totals = known & (
        model.hidden("occupation_mobility", "movers", mobility, ("from_rome",))
        | model.hidden("occupation_mobility", "changers", mobility, ("from_rome",))
    )
    movers, changers = _numbers(gold, "movers"), _numbers(gold, "changers")
    for count in (movers, changers, movers - changers):
        totals = totals | sensitive(count, m)
    hidden_to = _hidden_destinations(model, mobility).tolist()
    cut, shortened = np.zeros(len(mobility), dtype=bool), []
    for i, entries in enumerate(gold.column("top_destinations").to_pylist()):
        if entries is None:
            shortened.append(None)
            continue
        hidden = set(hidden_to[i]) if known[i] else set()
        removed = [e["to_rome"] in hidden or (e["moves"] is not None and 0 < e["moves"] < m) for e in entries]
        kept = entries[: removed.index(True)] if True in removed else entries
        cut[i] = True in removed
        shortened.append([{**e, "share": None if totals[i] else e["share"]} for e in kept])
    entry = gold.schema.field("top_destinations").type.value_type
    destinations = pa.array(shortened, pa.list_(pa.field("element", entry, nullable=False)))  # no null entry
    withheld = [("movers", totals), ("changers", totals), ("share_changing", totals)]
    columns = ("from_rome", "movers", "changers", "share_changing", "top_destinations")
    table = gold.set_column(gold.schema.get_field_index("top_destinations"), "top_destinations", destinations)
    return _published(table, columns, withheld, {"top_destinations": cut})


def _published_market(table: str, gold: pa.Table, flags: pd.DataFrame) -> pa.Table:
    withheld = [(c, flags[f"_h_{c}"].to_numpy(dtype=bool)) for c in MARKET_COUNTS]
    withheld.append(("tension", flags["_h_seekers_stock"].to_numpy(dtype=bool)))
    return _published(gold, [*MARKET_KEYS[table], *MARKET_COLUMNS], withheld)


def _require(tables: Mapping[str, object]) -> None:
    missing = [t for t in GOLD_TABLES if t not in tables]
    if missing:
        raise ValueError(f"publish: gold tables missing: {', '.join(missing)}")


def published(tables: Mapping[str, pa.Table], *, min_cell: int, max_rounds: int) -> dict[str, pa.Table]:
    """The published views of the gold tables (see ``mobility.publish`` for every rule), Arrow in and out.

    ``tables``: ``gold.<name>`` keyed by name: ``flows``, ``flows_region``, ``flows_occupation``,
    ``flows_grand_domaine``, ``region_balance``, ``market``, ``market_national``, ``occupation_mobility``.
    Returns ``published_<name>`` for each. ``min_cell``: the least count published (``privacy.min_cell``);
    ``max_rounds``: bound of the secondary-suppression rounds (``SuppressionError`` beyond it).
    """
    _require(tables)
    if min_cell < 1:
        raise ValueError(f"min_cell {min_cell}: expected at least 1")
    began = time.monotonic()
    rows = frames(tables)
    model = solved(rows, min_cell=min_cell, max_rounds=max_rounds)
    log.info(
        "publish: cells of %d gold rows suppressed in %.1f s",
        sum(map(len, rows.values())),
        time.monotonic() - began,
    )
    out = {}
    for t in FLOW_TABLES:
        out[f"published_{t}"] = _published_flows(t, tables[t], _flow_flags(model, t, rows[t]), min_cell)
    balance = rows["region_balance"]
    keys = ("region", "period_start")
    flags = pd.DataFrame(
        {f"_h_{s}": model.hidden("region_balance", s, balance, keys) for s in ("inflow", "outflow")}
    )
    flags["_h_internal"] = model.hidden("flows_region", "moves", balance, ("region", *keys))
    out["published_region_balance"] = _published_region_balance(tables["region_balance"], flags, min_cell)
    for table, keys in MARKET_KEYS.items():
        df = rows[table]
        flags = pd.DataFrame({f"_h_{c}": model.hidden(table, c, df, keys) for c in MARKET_COUNTS})
        out[f"published_{table}"] = _published_market(table, tables[table], flags)
    out["published_occupation_mobility"] = _published_occupation_mobility(
        tables["occupation_mobility"], model, rows["occupation_mobility"], min_cell
    )
    return {name: out[name] for name in (f"published_{t}" for t in GOLD_TABLES)}


def _spark_field(field: pa.Field, spark_field: T.StructField) -> T.StructField:
    """A list field keeps its elements' nullability (``from_arrow_schema`` reads every array as nullable)."""
    kind = spark_field.dataType
    if pa.types.is_list(field.type) and isinstance(kind, T.ArrayType):
        kind = T.ArrayType(kind.elementType, containsNull=field.type.value_field.nullable)
    return T.StructField(field.name, kind, nullable=field.nullable)


def to_spark(spark: SparkSession, table: pa.Table) -> DataFrame:
    """A view in Spark, for its Delta write."""
    spark_fields = from_arrow_schema(table.schema).fields
    schema = T.StructType([_spark_field(f, g) for f, g in zip(table.schema, spark_fields, strict=True)])
    # A file per 200,000 rows (the frame arrives in Arrow batches of 10,000, a task each).
    return spark.createDataFrame(table, schema).coalesce(max(1, -(-table.num_rows // _ROWS_PER_FILE)))


_ROWS_PER_FILE = 200_000


def publish(gold: Mapping[str, DataFrame], *, min_cell: int, max_rounds: int) -> dict[str, DataFrame]:
    """``published`` for Spark frames: the gold frames collected, the views back in Spark."""
    _require(gold)
    spark = next(iter(gold.values())).sparkSession
    views = published(collect(gold), min_cell=min_cell, max_rounds=max_rounds)
    return {name: to_spark(spark, table) for name, table in views.items()}


def hidden_cells(gold: Mapping[str, DataFrame], *, min_cell: int, max_rounds: int) -> set[tuple[str, ...]]:
    """The names of the suppressed cells (row, key texts..., system), to compare solvers on."""
    return set(solved(frames(collect(gold)), min_cell=min_cell, max_rounds=max_rounds).suppressed())


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

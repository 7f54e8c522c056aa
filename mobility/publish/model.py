"""The cells, lines and links of a suppression problem, over pandas frames, as integer ids for the solver.

A cell is named by its row (``flows``, ``market_national``...), the values of its keys and its system (the
count it holds: ``moves``, ``hires``...). Two frames naming the same cell (a pair of occupations summed from
``flows`` and the stayers of ``occupation_mobility``) reach the same id. Ids follow the order of the
cells' names read as text (the row, then each key, then the system), the tie-break of the picks.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mobility.publish.solver import Problem, solve

NULL_KEY = "\u2205"  # how a null key reads (after every ASCII character)

Mask = str | np.ndarray | None  # a boolean column of the frame, an array, or all rows


@dataclass(frozen=True)
class Cells:
    """Cells of the model: one per row of ``df``, named ``row`` and the values of ``keys`` (columns of
    ``df``), holding the count ``system``."""

    df: pd.DataFrame
    row: str
    keys: tuple[str, ...]
    system: str

    def using(self, system: str) -> Cells:
        return Cells(self.df, self.row, self.keys, system)


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return NULL_KEY
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _mask(df: pd.DataFrame, where: Mask) -> np.ndarray:
    if where is None:
        return np.ones(len(df), dtype=bool)
    values = df[where].to_numpy() if isinstance(where, str) else where
    return np.asarray(pd.Series(values).fillna(False).astype(bool))


class _Names:
    """Tuples of key values (one "space" per row or line name, a fixed number of slots each) as int64 codes:
    equal tuples of one space get one code in every frame; within a space, codes follow the tuples' text.
    A slot is a column of a frame, or a constant (a cell's system)."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, int], set[str]] = defaultdict(set)
        self._slots: dict[str, int] = {}
        self._seen: set[tuple[str, int, tuple[str, ...]]] = set()
        # (frame id, column) -> (the frame, kept so that its id stays its own; codes; texts)
        self._factors: dict[tuple[int, str], tuple[pd.DataFrame, np.ndarray, list[str]]] = {}

    def _factor(self, df: pd.DataFrame, column: str) -> tuple[np.ndarray, list[str]]:
        """The column's codes (-1: null) and its distinct values as text, once per frame."""
        key = (id(df), column)
        if key not in self._factors or self._factors[key][0] is not df:
            codes, uniques = pd.factorize(df[column].to_numpy(dtype=object), use_na_sentinel=True)
            self._factors[key] = (df, codes, [_text(u) for u in uniques])
        return self._factors[key][1:]

    def see(self, space: str, df: pd.DataFrame, columns: Sequence[str], *constants: str) -> None:
        width = len(columns) + len(constants)
        if self._slots.setdefault(space, width) != width:
            raise ValueError(f"{space}: named by {width} keys, and by {self._slots[space]} elsewhere")
        if (space, id(df), tuple(columns)) not in self._seen:
            self._seen.add((space, id(df), tuple(columns)))
            for slot, column in enumerate(columns):
                codes, texts = self._factor(df, column)
                self._values[(space, slot)].update(texts)
                if (codes < 0).any():
                    self._values[(space, slot)].add(NULL_KEY)
        for slot, constant in enumerate(constants, start=len(columns)):
            self._values[(space, slot)].add(constant)

    def build(self) -> None:
        self._rank = {k: {v: i for i, v in enumerate(sorted(vs))} for k, vs in self._values.items()}
        self._offset: dict[str, int] = {}
        self._radix: dict[str, list[int]] = {}
        start = 0
        for space in sorted(self._slots, key=lambda s: s + "|"):  # a row's name reads before its first "|"
            radix = [len(self._rank[(space, i)]) for i in range(self._slots[space])]
            self._offset[space], self._radix[space] = start, radix
            start += int(np.prod(radix, dtype=object))
        if start >= 2**62:
            raise ValueError(f"suppression model: {start} possible cell names overflow 64-bit ids")

    def code(self, space: str, df: pd.DataFrame, columns: Sequence[str], *constants: str) -> np.ndarray:
        """Codes of the tuples of ``df``'s ``columns`` and ``constants`` (-1 where a value was never seen:
        no such cell)."""
        length = len(df)
        if space not in self._offset:
            return np.full(length, -1, dtype=np.int64)
        code = np.zeros(length, dtype=np.int64)
        unknown = np.zeros(length, dtype=bool)
        for slot, column in enumerate(columns):
            rank = self._rank[(space, slot)]
            codes, texts = self._factor(df, column)
            lookup = np.array([rank.get(t, -1) for t in texts] + [rank.get(NULL_KEY, -1)])
            ranks = lookup[codes].astype(np.int64)  # code -1 (a null) reads the last entry
            unknown |= ranks < 0
            code = code * self._radix[space][slot] + ranks
        for slot, constant in enumerate(constants, start=len(columns)):
            at = self._rank[(space, slot)].get(constant, -1)
            unknown |= at < 0
            code = code * self._radix[space][slot] + at
        return np.where(unknown, -1, code + self._offset[space])


@dataclass
class _Added:
    cells: Cells
    table: str
    count: np.ndarray
    valid: np.ndarray
    lower: int
    hidden: np.ndarray
    rows: np.ndarray  # positions in cells.df


class Model:
    """Cells, line memberships and links of every published table, solved once (``solve``), then asked
    which cells are suppressed (``hidden``)."""

    def __init__(self, min_cell: int) -> None:
        self.min_cell = min_cell
        self._names = _Names()
        self._added: list[_Added] = []
        self._members: list[tuple[str, Cells, tuple[str, ...], np.ndarray, bool]] = []
        self._links: list[tuple[Cells, Cells]] = []
        self._hidden: np.ndarray | None = None
        self._cache: dict[tuple, np.ndarray] = {}

    def sensitive(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """Primary suppression: ``0 < count < min_cell`` (false for null)."""
        v = pd.Series(values, dtype="float64").to_numpy()
        return (v > 0) & (v < self.min_cell)  # NaN compares false

    def _see(self, cells: Cells) -> None:
        self._names.see(cells.row, cells.df, cells.keys, cells.system)

    def add(
        self,
        cells: Cells,
        table: str,
        count: str,
        *,
        lower: int = 1,
        hidden: Mask = None,
        where: Mask = None,
    ) -> None:
        """Cells holding the column ``count``; suppressed from the start when primary or ``hidden``."""
        rows = np.flatnonzero(_mask(cells.df, where))
        values = pd.to_numeric(cells.df[count], errors="raise").astype("float64").to_numpy()[rows]
        forced = _mask(cells.df, hidden)[rows] if hidden is not None else False
        start = self.sensitive(values) | forced
        valid = ~np.isnan(values)
        self._see(cells)
        self._added.append(
            _Added(cells, table, np.where(valid, values, 0).astype(np.int64), valid, lower, start, rows)
        )

    def line(
        self,
        name: str,
        parts: Cells,
        by: Sequence[str],
        *,
        where: Mask = None,
        total: tuple[Cells, Sequence[str]] | None = None,
    ) -> None:
        """Lines ``name``: the ``parts`` (meeting ``where``) grouped by the columns ``by``; ``total``: the
        cells publishing the lines' totals, with their line keys in the order of ``by``."""
        group = f"{parts.system}/{name}"
        self._member(group, parts, by, np.flatnonzero(_mask(parts.df, where)), total=False)
        if total is not None:
            cells, keys = total
            self._member(group, cells, keys, np.arange(len(cells.df)), total=True)

    def _member(self, group: str, cells: Cells, by: Sequence[str], rows: np.ndarray, *, total: bool) -> None:
        self._names.see(group, cells.df, by)
        self._see(cells)
        self._members.append((group, cells, tuple(by), rows, total))

    def link(self, src: Cells, dst: Cells, *, both: bool = False) -> None:
        """Suppressing a cell of ``src`` suppresses the cell of ``dst`` on the same row of ``src.df``."""
        for cells in (src, dst):
            self._see(cells)
        self._links.append((src, dst))
        if both:
            self._links.append((dst, src))

    def _ids(self, cells: Cells) -> np.ndarray:
        """The id of each row's cell (-1: not in the model), once per frame, name and system."""
        key = (id(cells.df), cells.row, cells.keys, cells.system)
        if key not in self._cache:
            codes = self._names.code(cells.row, cells.df, cells.keys, cells.system)
            self._cache[key] = self._find(codes)
        return self._cache[key]

    def _codes(self, cells: Cells, rows: np.ndarray) -> np.ndarray:
        return self._names.code(cells.row, cells.df, cells.keys, cells.system)[rows]

    def _find(self, codes: np.ndarray) -> np.ndarray:
        if not len(self._cells):  # no cell at all (gold tables without a move nor a market row)
            return np.full(len(codes), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._cells, codes), len(self._cells) - 1)
        return np.where((codes >= 0) & (self._cells[at] == codes), at, -1)

    def solve(self, max_rounds: int) -> None:
        self._names.build()
        codes = np.concatenate([self._codes(a.cells, a.rows) for a in self._added])
        order = np.argsort(codes, kind="stable")
        self._cells = codes[order]
        repeated = np.flatnonzero(np.diff(self._cells) == 0)
        if len(repeated):
            raise ValueError(f"suppression model: a cell is added twice ({len(repeated)} cells)")
        tables = sorted({a.table for a in self._added})
        column = {
            name: np.concatenate([getattr(a, name) for a in self._added])[order]
            for name in ("count", "valid", "hidden")
        }
        lower = np.concatenate([np.full(len(a.rows), a.lower) for a in self._added])[order]
        table = np.concatenate([np.full(len(a.rows), tables.index(a.table)) for a in self._added])[order]
        groups, members, totals = [], [], []
        for group, cells, by, rows, total in self._members:
            groups.append(self._names.code(group, cells.df, by)[rows])
            members.append(self._ids(cells)[rows])
            totals.append(np.full(len(rows), total))
        src, dst = [], []
        for a, b in self._links:
            i, j = self._ids(a), self._ids(b)
            both = (i >= 0) & (j >= 0)
            src.append(i[both])
            dst.append(j[both])
        problem = Problem(
            count=column["count"],
            valid=column["valid"],
            lower=lower.astype(np.int64),
            hidden=column["hidden"],
            table=table,
            tables=tables,
            group=_cat(groups),
            member=_cat(members),
            total=_cat(totals, bool),
            src=_cat(src),
            dst=_cat(dst),
        )
        self._hidden = solve(problem, max_rounds=max_rounds)

    def hidden(self, row: str, system: str, df: pd.DataFrame, keys: Sequence[str]) -> np.ndarray:
        """Whether the cells named ``row``, the values of ``df``'s columns ``keys`` and ``system`` are
        suppressed (False for cells not in the model)."""
        if self._hidden is None:
            raise RuntimeError("Model.hidden before Model.solve")
        ids = self._find(self._names.code(row, df, keys, system))
        out = np.zeros(len(ids), dtype=bool)
        out[ids >= 0] = self._hidden[ids[ids >= 0]]
        return out

    def suppressed(self) -> list[tuple[str, ...]]:
        """The names of every suppressed cell (row, key texts..., system): what two solvers can be compared
        on."""
        if self._hidden is None:
            raise RuntimeError("Model.suppressed before Model.solve")
        out = []
        for a in self._added:
            hidden = self._hidden[self._ids(a.cells)[a.rows]]
            df = a.cells.df.iloc[a.rows[hidden]]
            texts = zip(*([_text(v) for v in df[k]] for k in a.cells.keys), strict=True)
            out.extend((a.cells.row, *t, a.cells.system) for t in texts)
        return out


def _cat(parts: list[np.ndarray], dtype: type = np.int64) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype=dtype)

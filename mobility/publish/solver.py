"""Secondary suppression to a fixpoint, over integer ids on the driver.

The published tables are aggregates (about a million rows at 1M seekers): their cells, line memberships and
links fit in a few NumPy arrays, and a round is a handful of vectorised passes over the lines that the last
round touched. Spark would pay a shuffle and a commit of the whole state per round for the same result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mobility.errors import MobilityError

log = logging.getLogger(__name__)


class SuppressionError(MobilityError):
    """Secondary suppression did not reach its fixpoint within ``max_rounds``."""


@dataclass(frozen=True)
class Problem:
    """Cells ``0..n-1`` in tie-break order (a pick prefers the lowest id among equals), their lines and links.

    ``count`` (``valid`` False where null), ``lower`` (the least value a reader knows a suppressed cell
    holds: 1 for counts of present cells, 0 for counts inside a row), ``hidden`` (suppressed from the start),
    ``table`` (an index into ``tables``, named in errors). ``group``, ``member``, ``total``: one entry per
    membership of a cell in a line (``total``: the cell publishes the line's total; a line without one has
    its total taken as published; ``member`` -1: a cell not in the model). ``src``, ``dst``: suppressing
    ``src`` suppresses ``dst``."""

    count: np.ndarray
    valid: np.ndarray
    lower: np.ndarray
    hidden: np.ndarray
    table: np.ndarray
    tables: Sequence[str]
    group: np.ndarray
    member: np.ndarray
    total: np.ndarray
    src: np.ndarray
    dst: np.ndarray


def solve(problem: Problem, *, max_rounds: int) -> np.ndarray:
    """The final ``hidden`` of every cell.

    A line needs a fix when exactly one member is hidden, or when two or more are, its total is not, and
    its hidden cells sum to their lower bounds (pinned; zeros pinned at 0 reveal nobody). The fix hides the
    line's smallest visible member holding at least its lower bound (ties by id), preferring members that
    are not alone in another line (suppressed, such a cell would be that line's total, which the other
    lines may give). Every round sees the state left by the one before: its picks and the links of the
    cells it changed apply together."""
    if max_rounds < 1:
        raise ValueError(f"max_rounds {max_rounds}: expected at least 1")
    began = time.monotonic()
    p = problem
    n = len(p.count)
    hidden = p.hidden.astype(bool).copy()
    group = pd.factorize(p.group)[0].astype(np.int64) if len(p.group) else p.group
    n_groups = int(group.max()) + 1 if len(group) else 0
    # A line of one member can never be fixed: dropped. Its cell is "alone", a poor complement.
    # (Memberships of cells not in the model, -1, count in a line's size and are dropped after.)
    size = np.bincount(group, minlength=n_groups)
    single = size[group] == 1
    alone = np.zeros(n, dtype=bool)
    alone[p.member[single & (p.member >= 0)]] = True
    kept = ~single & (p.member >= 0)
    group, member, total = group[kept], p.member[kept], p.total[kept].astype(bool)
    count = np.where(p.valid, p.count, 0).astype(np.int64)
    candidate_ok = p.valid & (count >= p.lower)
    # Pick order: not alone first, then the smallest count, then the id.
    rank = np.empty(n, dtype=np.int64)
    by_rank = np.lexsort((np.arange(n), count, alone))
    rank[by_rank] = np.arange(n)
    none = np.int64(n)
    src, dst = p.src, p.dst
    links_by_src = np.argsort(src, kind="stable")
    src_sorted = src[links_by_src]
    log.debug("suppression: %d cells, %d memberships of %d lines, %d links set up in %.2f s",
              n, len(member), n_groups, len(src), time.monotonic() - began)  # fmt: skip

    changed = hidden.copy()  # round 1 follows the links of every cell hidden from the start
    dirty = np.ones(n_groups, dtype=bool)
    for round_ in range(1, max_rounds + 1):
        began = time.monotonic()
        rows = np.flatnonzero(dirty[group])
        g, c, t = group[rows], member[rows], total[rows]
        h = hidden[c]
        part = h & ~t
        n_hidden = np.bincount(g, weights=h, minlength=n_groups)
        total_hidden = np.bincount(g, weights=h & t, minlength=n_groups) > 0
        summed = part & p.valid[c]
        hidden_sum = np.bincount(g, weights=np.where(summed, count[c], 0), minlength=n_groups)
        has_sum = np.bincount(g, weights=summed, minlength=n_groups) > 0
        hidden_lower = np.bincount(g, weights=np.where(part, p.lower[c], 0), minlength=n_groups)
        pinned = (n_hidden >= 2) & ~total_hidden & has_sum & (hidden_sum == hidden_lower) & (hidden_lower > 0)
        free = ~h & candidate_ok[c]
        best = np.full(n_groups, none, dtype=np.int64)
        np.minimum.at(best, g[free], rank[c[free]])
        fix = ((n_hidden == 1) | pinned) & (best < none)
        picks = by_rank[best[fix]]
        followed = _linked(np.flatnonzero(changed), src_sorted, dst[links_by_src])
        flagged = np.concatenate([picks, followed])
        changed = np.zeros(n, dtype=bool)
        changed[flagged] = True
        changed &= ~hidden
        hidden |= changed
        per_table = np.bincount(p.table[changed], minlength=len(p.tables))
        summary = {p.tables[i]: int(k) for i, k in enumerate(per_table) if k}
        log.debug("suppression round %d: %s in %.2f s", round_, summary, time.monotonic() - began)
        if not summary:
            return hidden
        dirty = np.zeros(n_groups, dtype=bool)
        dirty[group[changed[member]]] = True
    still = ", ".join(f"{t} ({k} cells)" for t, k in sorted(summary.items()))
    raise SuppressionError(
        f"secondary suppression did not converge in {max_rounds} rounds: still changing in {still}"
    )


def _linked(cells: np.ndarray, src_sorted: np.ndarray, dst_sorted: np.ndarray) -> np.ndarray:
    """The destinations of the links leaving ``cells`` (links sorted by source)."""
    lo = np.searchsorted(src_sorted, cells, side="left")
    hi = np.searchsorted(src_sorted, cells, side="right")
    lengths = hi - lo
    if not lengths.sum():
        return np.empty(0, dtype=np.int64)
    starts = np.repeat(lo - np.cumsum(lengths) + lengths, lengths)
    return dst_sorted[starts + np.arange(lengths.sum())]

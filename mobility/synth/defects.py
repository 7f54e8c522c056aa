"""Realistic defects, injected as EXTRA records so that every clean record stays as it was.

Each defective record is a copy of a clean record of the same chunk with exactly one defect. A copy whose
defect leaves its natural key readable gets another key (the registration or change one day later, the
hire one day earlier, a new offer id), chosen so that it collides with no clean key: a spell's next day is
still inside it, a hire's previous day is still after its registration. Only the ``duplicate`` defect keeps
the key, being an exact copy. Which records are copied and how is drawn from the defects' own random
stream: the clean records do not depend on the dirty rate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from mobility.synth.render import dumps

UNKNOWN_ROME = ("Z9999", "A9999")
UNKNOWN_COMMUNE = ("99999", "00000")
UNREADABLE_PLACES = ({}, {"libelle": "Non renseigné"})

DE_KINDS = ("bad_date", "date_order", "unknown_rome", "unknown_commune", "missing_field", "duplicate")
ROME_KINDS = ("bad_date", "date_order", "unknown_rome", "missing_field", "duplicate", "unknown_seeker")
HIRES_KINDS = (
    "bad_date", "unknown_rome", "unknown_commune", "missing_field", "duplicate", "unknown_seeker",
    "offer_after_hire",
)  # fmt: skip
OFFER_KINDS = ("unknown_place", "bad_date", "unknown_rome", "missing_field", "duplicate")
# Record defects are named after the quarantine reason they must produce; whole-file ones are not.
FILE_REASONS = {"malformed_json": "malformed", "truncated_line": "malformed", "latin1": ""}


@dataclass(frozen=True)
class Defect:
    """One injected defect: ``line`` counts from the chunk's first record for CSV (0-based) until the
    writer makes it a file line, and is the 1-based position in ``resultats`` for offers."""

    kind: str
    line: int
    key: str

    @property
    def reason(self) -> str:
        return FILE_REASONS.get(self.kind, self.kind)


def bad_date(day: int, style: int) -> str:
    """A date no parser takes: month 13..24, or the French day/month/year order."""
    y, m, d = (int(x) for x in str(np.datetime64(int(day), "D")).split("-"))
    return f"{y:04d}-{m + 12:02d}-{d:02d}" if style % 2 == 0 else f"{d:02d}/{m:02d}/{y:04d}"


def _iso(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def _plan(rng: np.random.Generator, n: int, rate: float, kinds: tuple[str, ...]) -> list[str]:
    """The kinds of the ``round(rate * n)`` defects of a file's chunk, in turn from a random first one."""
    count = int(round(rate * n))
    first = int(rng.integers(len(kinds))) if count else 0
    return [kinds[(first + i) % len(kinds)] for i in range(count)]


def _choose(rng: np.random.Generator, plan: list[str], eligible: dict[str, np.ndarray], n: int) -> list[int]:
    """A distinct source row per planned defect among those eligible for its kind (-1 when none is left),
    distinct so that two shifted copies never share a key."""
    order = rng.permutation(n)
    used = np.zeros(n, bool)
    chosen = np.full(len(plan), -1)
    kinds = np.asarray(plan)
    for kind in dict.fromkeys(plan):  # in order of first appearance
        slots = np.flatnonzero(kinds == kind)
        ok = ~used[order]
        if kind in eligible:
            ok &= eligible[kind][order]
        rows = order[ok][: len(slots)]
        used[rows] = True
        chosen[slots[: len(rows)]] = rows
    return chosen.tolist()


def csv_defects(
    file_kind: str,
    table: pa.Table,
    start: np.ndarray,
    end: np.ndarray,
    rate: float,
    rng: np.random.Generator,
    end_day: int,
    unknown_idx: np.ndarray,
    offer_days: np.ndarray | None = None,
    offer_ids: np.ndarray | None = None,
) -> tuple[pa.Table, list[Defect]]:
    """Defective copies of rows of a chunk's ``de``, ``rome`` or ``hires`` table.

    ``start``/``end`` are the rows' key date and end date (day numbers, -1 none): DATINS/DATANN, JOURDV/
    JOURFV, DATEMB/-. ``unknown_idx`` are IDX values of no seeker. For hires, ``offer_days`` (sorted) and
    ``offer_ids`` are the chunk's clean offers, of which one created after a hire is named by the
    ``offer_after_hire`` copies.
    """
    n = table.num_rows
    kinds = {"de": DE_KINDS, "rome": ROME_KINDS, "hires": HIRES_KINDS}[file_kind]
    plan = _plan(rng, n, rate, kinds)
    if not plan:
        return table.slice(0, 0), []
    key_col, end_col = {"de": ("DATINS", "DATANN"), "rome": ("JOURDV", "JOURFV"), "hires": ("DATEMB", None)}[
        file_kind
    ]
    closed_later = end >= start + 1
    if file_kind == "hires":
        shiftable = np.ones(n, bool)  # the day before a hire is still after its registration
        shift = -1
    else:
        shiftable = closed_later | ((end < 0) & (start + 1 < end_day))
        shift = 1
    eligible = {
        "date_order": closed_later,
        "unknown_rome": shiftable,
        "unknown_commune": shiftable,
        "missing_field": shiftable,
    }
    later = np.zeros(n, np.int64)
    if offer_days is not None:
        # the first offer created two days or more after the hire: after the copy's day (the hire's - 1)
        later = np.searchsorted(offer_days, start + 1, side="right")
        eligible["offer_after_hire"] = later < len(offer_days)
    sources = _choose(rng, plan, eligible, n)
    kept = [(k, s) for k, s in zip(plan, sources, strict=True) if s >= 0]
    rows = table.take(pa.array([s for _, s in kept], pa.int64())).to_pylist()
    blanks = {"de": ("CATREGR", "DEPCOM", "ROME"), "rome": ("ROME",), "hires": ("ROME", "DEPCOM")}[file_kind]
    out, defects = [], []
    for i, ((kind, src), row) in enumerate(zip(kept, rows, strict=True)):
        shifted = _iso(start[src] + shift)
        if kind == "bad_date":
            row[key_col] = bad_date(start[src], i)
        elif kind == "date_order":
            row[key_col], row[end_col] = row[end_col], row[key_col]
        elif kind == "unknown_rome":
            row[key_col], row["ROME"] = shifted, UNKNOWN_ROME[i % 2]
        elif kind == "unknown_commune":
            row[key_col], row["DEPCOM"] = shifted, UNKNOWN_COMMUNE[i % 2]
        elif kind == "missing_field":
            if i % 2 == 0:
                row["IDX"] = None
            else:
                row[key_col], row[blanks[(i // 2) % len(blanks)]] = shifted, None
        elif kind == "unknown_seeker":
            row["IDX"] = str(unknown_idx[i % len(unknown_idx)])
        elif kind == "offer_after_hire":
            pick = int(rng.integers(later[src], len(offer_days)))
            row[key_col], row["OFFRE_ID"] = shifted, str(offer_ids[pick])
        if file_kind == "hires" and kind not in ("duplicate", "offer_after_hire"):
            row["OFFRE_ID"] = None  # a copy filling the clean hire's offer could read as another defect
        out.append(row)
        defects.append(Defect(kind, n + i, row["IDX"] or ""))
    return pa.Table.from_pylist(out, schema=table.schema), defects


def offer_defects(
    texts: list[str], page_size: int, rate: float, rng: np.random.Generator, new_ids: list[str]
) -> tuple[list[str], list[Defect]]:
    """Defective offers appended to one month's clean offers of a chunk (``texts``, in page order).

    Duplicates come first and copy an offer of the page they land on, when it has one. ``line`` of a
    Defect is the offer's 0-based index in the month's list (clean + defective); the writer turns it into
    a page and a position.
    """
    n = len(texts)
    plan = _plan(rng, n, rate, OFFER_KINDS)
    plan.sort(key=lambda kind: kind != "duplicate")
    out, defects = [], []
    for i, kind in enumerate(plan):
        index = n + i
        if kind == "duplicate":
            page_start = index // page_size * page_size
            low = page_start if page_start < n else 0
            text = texts[int(rng.integers(low, n))]
            offer_id = json.loads(text)["id"]
        else:
            offer = json.loads(texts[int(rng.integers(n))])
            offer["id"] = offer_id = new_ids[i]
            offer["origineOffre"]["urlOrigine"] = (
                offer["origineOffre"]["urlOrigine"].rsplit("/", 1)[0] + "/" + offer_id
            )
            if kind == "unknown_place":
                offer["lieuTravail"] = dict(UNREADABLE_PLACES[i % 2])
            elif kind == "bad_date":
                created = offer["dateCreation"]
                day = np.datetime64(created[:10], "D").astype(np.int64)
                date_part = bad_date(day, i)
                offer["dateCreation"] = date_part + ("T" if "-" in date_part else " ") + created[11:]
            elif kind == "unknown_rome":
                offer["romeCode"] = UNKNOWN_ROME[i % 2]
            elif kind == "missing_field":
                del offer["romeCode" if i % 2 == 0 else "dateCreation"]
            text = dumps(offer)
        out.append(text)
        defects.append(Defect(kind, index, offer_id))
    return out, defects

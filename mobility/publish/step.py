"""The publish step: read the gold tables, build the published views, write them as one build.

Delta commits one table at a time, so a build records, once every view is written, the version of each
(``gold.published_state``); readers read those versions. A build failing half-way leaves views of the new
build at their latest version, which no reader sees: they keep reading the last complete build.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from functools import partial

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame

from mobility.config import PrivacySettings
from mobility.lake import Lake, LakeError, concurrently
from mobility.publish.rules import GOLD_TABLES
from mobility.publish.views import published

log = logging.getLogger(__name__)

STATE = "gold.published_state"
RULES_VERSION = 1  # bump with any change of the rules: views built under other rules are rebuilt
VIEWS = tuple(f"published_{t}" for t in GOLD_TABLES)


def _versions(lake: Lake) -> dict[str, int]:
    """The Delta version of every gold table the views read."""
    return {t: lake.version(f"gold.{t}") for t in GOLD_TABLES}


def _state(versions: dict[str, int], privacy: PrivacySettings) -> str:
    """What the views are built from: the settings and the Delta version of every gold table read."""
    state = {
        "rules": RULES_VERSION,
        "min_cell": privacy.min_cell,
        "max_rounds": privacy.max_suppression_rounds,
    }
    return json.dumps({**state, "gold": versions}, sort_keys=True)


def _last_build(lake: Lake) -> dict | None:
    if not lake.exists(STATE):
        return None
    builds = lake.read_arrow(STATE, lake.version(STATE)).to_pylist()  # one row per build
    if not builds:
        return None
    last = max(builds, key=lambda b: b["built_at"])
    return {**last, "views": dict(last["views"] or ())}


def up_to_date(lake: Lake, privacy: PrivacySettings) -> bool:
    """The published views were built from the current gold tables under the current settings."""
    last = _last_build(lake)
    return last is not None and bool(last.get("views")) and last["state"] == _state(_versions(lake), privacy)


def read_view(lake: Lake, view: str) -> DataFrame:
    """``gold.published_<view>`` as the last complete build wrote it (``view`` with or without the prefix)."""
    return _view(lake, view, _last_build(lake))


def read(lake: Lake) -> dict[str, DataFrame]:
    """Every published view of the last complete build, keyed by gold table name: the versions of one build
    row, read once, so that a build landing meanwhile cannot mix views of two builds."""
    last = _last_build(lake)
    return {t: _view(lake, t, last) for t in GOLD_TABLES}


def _view(lake: Lake, view: str, last: dict | None) -> DataFrame:
    name = view if view.startswith("published_") else f"published_{view}"
    if last is None or name not in (last.get("views") or {}):
        raise LakeError(
            f"no published views (gold.{name} of a complete build): "
            "run `mobility publish` (after `mobility flows`)"
        )
    return lake.read(f"gold.{name}", version=last["views"][name])


def write(lake: Lake, privacy: PrivacySettings, *, parallel_writes: int = 1) -> dict[str, int]:
    """Replace the published views by those of the current gold tables, unless they are up to date; rows
    and suppressed rows per view. Rebuilt whole: the views are small aggregates, and secondary suppression
    links cells across periods, so a partial rebuild is not exact. ``parallel_writes``: views written at
    once (``lake.parallel_writes``)."""
    if up_to_date(lake, privacy):
        log.info("publish: the published views are up to date with the gold tables")
        return {"published views up to date": 1}
    began = time.monotonic()
    build = uuid.uuid4().hex
    read_versions = _versions(lake)
    state = _state(read_versions, privacy)
    # The gold tables are aggregates read whole: from their files at the versions of the state, without Spark.
    gold = {t: lake.read_arrow(f"gold.{t}", read_versions[t]) for t in GOLD_TABLES}
    log.info(
        "publish: read %d gold rows in %.1f s",
        sum(t.num_rows for t in gold.values()),
        time.monotonic() - began,
    )
    views = published(gold, min_cell=privacy.min_cell, max_rounds=privacy.max_suppression_rounds)

    def written(name: str, table: pa.Table) -> tuple[int, int, int]:
        version = lake.overwrite_arrow(table, f"gold.{name}")
        rows, suppressed = table.num_rows, pc.sum(table.column("suppressed")).as_py() or 0
        log.info("publish: wrote gold.%s: %d rows, %d with suppressed cells", name, rows, suppressed)
        return version, rows, suppressed

    tasks = {name: partial(written, name, table) for name, table in views.items()}
    done = concurrently(tasks, parallel_writes)
    versions = {name: version for name, (version, _, _) in done.items()}
    counts: dict[str, int] = {}
    for name, (_, rows, suppressed) in done.items():
        counts[f"gold.{name} rows"], counts[f"gold.{name} suppressed rows"] = rows, suppressed
    row = pa.table(
        {
            "build_id": [build],
            "state": [state],
            "views": pa.array([list(versions.items())], pa.map_(pa.string(), pa.int64())),
            "built_at": pa.array([dt.datetime.now(dt.UTC)], pa.timestamp("us", tz="UTC")),
        }
    )
    lake.append_arrow(row, STATE)
    seconds = time.monotonic() - began
    log.info(
        "publish: build %s, %d views, min_cell %d, in %.1f s", build, len(views), privacy.min_cell, seconds
    )
    return counts

"""The ``flows`` step's writes: every gold table built from silver and written (``write_full``), or brought up
to date with the batches ingested since the last build (``mobility.gold.refresh``) when that build allows it.

Every write is a Delta overwrite (of the partitions concerned, for a refresh), atomic per table; the state
row (``gold.flows_state``) is appended last, so a build interrupted half-way is redone from the same state. A
full build writes the tables bounded by occupations, places and periods (``DRIVER_TABLES``) from the driver
with delta-rs, the others with Spark; a refresh replaces periods with Spark and rewrites the two summaries
over every period from the driver.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame

from mobility.config import FlowsSettings
from mobility.gold.build import build_flows, build_states, read_sources
from mobility.gold.refresh import refresh
from mobility.gold.tables import (
    DRIVER_TABLES,
    State,
    one_file_per_partition,
    overwrite_from_driver,
    partition_by,
    partitioned,
    properties,
    save_state,
)
from mobility.lake import Lake

log = logging.getLogger(__name__)


def write_full(lake: Lake, options: FlowsSettings) -> dict[str, int]:
    """Build every gold table of the step from silver and replace them; return rows per table and the
    transitions' quality figures. The flows read the transitions as written: at 6M seekers, scanning the
    table cost less than caching them for the flows (bench/README)."""
    state = State.current(lake, options)
    states = build_states(read_sources(lake), options, persist=True)
    quality = states.pop("transitions_quality").first().asDict()  # one row of figures
    counts: dict[str, int] = {}
    try:
        counts |= _overwrite(lake, states)
        written = lake.read("gold.transitions")
        counts |= _overwrite(lake, build_flows(written, states["market"], options, persist=True))
    finally:
        lake.spark.catalog.clearCache()
    save_state(lake, state, "full")
    for key, value in quality.items():
        log.info("flows: %s = %s", key, value)
        counts[key] = value
    return counts


def _overwrite(lake: Lake, gold: dict[str, DataFrame]) -> dict[str, int]:
    """Replace each ``gold.<name>`` with its frame; rows written per table."""
    counts: dict[str, int] = {}
    for name, df in gold.items():
        if name in DRIVER_TABLES:
            counts[f"gold.{name} rows"] = overwrite_from_driver(lake, name, df)
            continue
        table = one_file_per_partition(name, partitioned(name, df))
        version = lake.overwrite(table, f"gold.{name}", partition_by(name), properties(name))
        counts[f"gold.{name} rows"] = lake.rows_written(f"gold.{name}", version)
    return counts


def write(lake: Lake, options: FlowsSettings, *, full: bool = False) -> dict[str, int]:
    """The flows step's writes: a refresh when the last build allows it (and ``full`` is not asked), else
    a full build."""
    if not full:
        counts = refresh(lake, options)
        if counts is not None:
            return {"mode: refresh": 1, **counts}
        log.info("flows: full build (no usable state of a previous build)")
    return {"mode: full": 1, **write_full(lake, options)}

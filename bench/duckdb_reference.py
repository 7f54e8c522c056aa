"""A second implementation of the heaviest step in DuckDB SQL: gold.transitions, the regional gold.market and
gold.flows from the Parquet files of the same silver Delta snapshots, with the definitions of
``mobility.gold.transitions``, ``mobility.gold.market`` and ``mobility.gold.flows`` (the columns that sum;
``rome_link``, distances and medians are left out). It gives the harness a single-node yardstick for Spark's
time and a check of its totals: both must find the same moves, stocks and offers. ``spark_run`` is the same
work in Spark (the flows step's code, these three tables only, Parquet out): the like-for-like figure."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import duckdb
from pyspark.sql import DataFrame

from mobility.config import FlowsSettings
from mobility.gold.build import build_flows, build_states, read_sources
from mobility.gold.market import DEPARTEMENT_PLACES, REGION_PLACES
from mobility.ingest.formats import MOTANN_BACK_TO_WORK
from mobility.lake import Lake

SILVER = ("spells", "sought_changes", "hires", "offers")

# The totals both implementations must agree on: table -> {figure: SQL aggregate}.
TOTALS = {
    "transitions": {
        "rows": "count(*)",
        "hires": "count(*) FILTER (WHERE kind = 'hire')",
        "reorientations": "count(*) FILTER (WHERE kind = 'reorientation')",
        "via_offer": "count(*) FILTER (WHERE via_offer)",
        "days_to_move": "sum(days_to_move)",
        "changing_occupation": "count(*) FILTER (WHERE from_rome IS DISTINCT FROM to_rome)",
    },
    "market": {
        "rows": "count(*)",
        "seekers_stock": "sum(seekers_stock)",
        "registrations": "sum(registrations)",
        "exits_to_work": "sum(exits_to_work)",
        "offers_published": "sum(offers_published)",
        "positions": "sum(positions)",
        "hires": "sum(hires)",
        "offers_published_rolling": "sum(offers_published_rolling)",
    },
    "flows": {
        "rows": "count(*)",
        "moves": "sum(moves)",
        "hires": "sum(hires)",
        "reorientations": "sum(reorientations)",
        "seekers_at_origin": "sum(seekers_at_origin)",
        "dest_offers": "sum(dest_offers)",
        "dest_positions": "sum(dest_positions)",
    },
}


def _in(values: Sequence[object]) -> str:
    return ", ".join(f"'{v}'" if isinstance(v, str) else str(v) for v in values)


def statements(
    *, level: str, grace_days: int, stock_categories: Sequence[int], rolling_months: int, period: str
) -> list[tuple[str, str]]:
    """(name, SQL) in order: views over the silver tables, then the three tables."""
    stocked = f"category IN ({_in(stock_categories)}) AND (stock_until IS NULL OR stock_until > seg_start)"
    return [
        (
            "spell",
            """CREATE TEMP TABLE spell AS SELECT seeker_id, registration_date, end_date, category, end_reason,
                code_commune, code_departement, code_region, rome, rome_version, rome_v3,
                lead(registration_date) OVER (PARTITION BY seeker_id ORDER BY registration_date)
                    AS next_registration
            FROM spells""",
        ),
        (
            "segments",
            f"""CREATE TEMP TABLE segments AS
            WITH owner AS (
                SELECT c.seeker_id, c.start_date, max(s.registration_date) AS registration_date
                FROM (SELECT DISTINCT seeker_id, start_date FROM sought_changes) c
                JOIN spells s ON s.seeker_id = c.seeker_id AND s.registration_date <= c.start_date
                    AND (s.end_date IS NULL OR c.start_date <= s.end_date)
                GROUP BY ALL
            ), parts AS (
                SELECT seeker_id, registration_date, end_date, next_registration, category, end_reason,
                    code_commune, code_departement, code_region, registration_date AS seg_start, 0 AS _order,
                    rome, rome_version, rome_v3
                FROM spell
                UNION ALL
                SELECT s.seeker_id, s.registration_date, s.end_date, s.next_registration, s.category,
                    s.end_reason, s.code_commune, s.code_departement, s.code_region, c.start_date, 1,
                    c.rome, c.rome_version, c.rome_v3
                FROM sought_changes c JOIN owner o USING (seeker_id, start_date)
                JOIN spell s ON s.seeker_id = c.seeker_id AND s.registration_date = o.registration_date
            ), ordered AS (
                SELECT *, {level} AS occupation,
                    row_number() OVER w AS seg_index,
                    lead(seg_start) OVER w AS seg_next,
                    lag({level}) OVER w AS prev_occupation,
                    lag(rome_v3) OVER w AS prev_rome_v3
                FROM parts
                WINDOW w AS (PARTITION BY seeker_id, registration_date ORDER BY seg_start, _order)
            )
            SELECT *, least(seg_next, end_date, next_registration) AS stock_until FROM ordered""",
        ),
        (
            "transitions",
            f"""CREATE TEMP TABLE transitions AS
            WITH best AS (
                SELECT h.seeker_id, h.hire_date, g.registration_date, g.occupation, g.code_departement,
                    g.code_region
                FROM (SELECT DISTINCT seeker_id, hire_date FROM hires) h
                JOIN segments g ON g.seeker_id = h.seeker_id AND g.registration_date <= h.hire_date
                    AND (g.end_date IS NULL OR h.hire_date <= g.end_date + INTERVAL {int(grace_days)} DAY)
                    AND g.seg_start <= h.hire_date
                QUALIFY row_number() OVER (PARTITION BY h.seeker_id, h.hire_date
                    ORDER BY g.registration_date DESC, g.seg_start DESC, g.seg_index DESC) = 1
            )
            SELECT h.seeker_id, 'hire' AS kind, b.occupation AS from_rome, b.code_departement AS from_dept,
                b.code_region AS from_region, h.{level} AS to_rome, h.code_departement AS to_dept,
                h.code_region AS to_region, b.registration_date AS start_date, h.hire_date AS move_date,
                h.hire_date - b.registration_date AS days_to_move, o.offer_id IS NOT NULL AS via_offer
            FROM hires h JOIN best b USING (seeker_id, hire_date)
            LEFT JOIN (SELECT offer_id FROM offers) o ON o.offer_id = h.offer_id
            UNION ALL
            SELECT seeker_id, 'reorientation', prev_occupation, code_departement, code_region,
                occupation, code_departement, code_region, registration_date, seg_start,
                seg_start - registration_date, false
            FROM segments WHERE seg_index > 1 AND occupation IS DISTINCT FROM prev_occupation""",
        ),
        (
            "facts",
            f"""CREATE TEMP TABLE facts AS
            WITH f AS (
                SELECT occupation AS rome, code_region, code_departement,
                    date_trunc('month', seg_start)::DATE AS month, 1 AS stock_delta, 0 AS registrations,
                    0 AS exits_to_work, 0 AS offers_published, 0 AS positions, 0 AS hires
                FROM segments WHERE {stocked}
                UNION ALL
                SELECT occupation, code_region, code_departement, date_trunc('month', stock_until)::DATE,
                    -1, 0, 0, 0, 0, 0
                FROM segments WHERE {stocked} AND stock_until IS NOT NULL
                UNION ALL
                SELECT occupation, code_region, code_departement,
                    date_trunc('month', registration_date)::DATE, 0, 1, 0, 0, 0, 0
                FROM segments WHERE seg_index = 1
                UNION ALL
                SELECT occupation, code_region, code_departement, date_trunc('month', end_date)::DATE,
                    0, 0, 1, 0, 0, 0
                FROM segments WHERE seg_next IS NULL AND end_reason = '{MOTANN_BACK_TO_WORK}'
                    AND end_date IS NOT NULL
                UNION ALL
                SELECT {level}, code_region, code_departement, date_trunc('month', hire_date)::DATE,
                    0, 0, 0, 0, 0, 1
                FROM hires
                UNION ALL
                SELECT {level},
                    CASE WHEN place_level IN ({_in(REGION_PLACES)}) THEN code_region END,
                    CASE WHEN place_level IN ({_in(DEPARTEMENT_PLACES)}) THEN code_departement END,
                    date_trunc('month', created_at)::DATE, 0, 0, 0, 1, coalesce(positions, 1), 0
                FROM offers
            )
            SELECT rome, code_region, code_departement, month, sum(stock_delta) AS stock_delta,
                sum(registrations) AS registrations, sum(exits_to_work) AS exits_to_work,
                sum(offers_published) AS offers_published, sum(positions) AS positions, sum(hires) AS hires
            FROM f WHERE month IS NOT NULL AND rome IS NOT NULL
            GROUP BY ALL""",
        ),
        (
            "market",
            f"""CREATE TEMP TABLE market AS
            WITH monthly AS (
                SELECT rome, code_region, month, sum(stock_delta) AS stock_delta,
                    sum(registrations) AS registrations, sum(exits_to_work) AS exits_to_work,
                    sum(offers_published) AS offers_published, sum(positions) AS positions,
                    sum(hires) AS hires
                FROM facts WHERE code_region IS NOT NULL GROUP BY ALL
            ), calendar AS (
                SELECT unnest(generate_series(min(month), max(month), INTERVAL 1 MONTH))::DATE AS month
                FROM monthly
            ), dense AS (
                SELECT k.rome, k.code_region, c.month, coalesce(m.stock_delta, 0) AS stock_delta,
                    coalesce(m.registrations, 0) AS registrations,
                    coalesce(m.exits_to_work, 0) AS exits_to_work,
                    coalesce(m.offers_published, 0) AS offers_published,
                    coalesce(m.positions, 0) AS positions, coalesce(m.hires, 0) AS hires,
                    year(c.month) * 12 + month(c.month) AS _index
                FROM (SELECT DISTINCT rome, code_region FROM monthly) k CROSS JOIN calendar c
                LEFT JOIN monthly m USING (rome, code_region, month)
            ), stocked AS (
                SELECT *, sum(stock_delta) OVER (PARTITION BY rome, code_region ORDER BY _index
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS seekers_stock
                FROM dense
            ), rolled AS (
                SELECT rome, code_region, month, seekers_stock, registrations, exits_to_work,
                    offers_published, positions, hires,
                    sum(registrations) OVER w AS registrations_rolling,
                    sum(exits_to_work) OVER w AS exits_to_work_rolling,
                    sum(offers_published) OVER w AS offers_published_rolling,
                    sum(positions) OVER w AS positions_rolling,
                    sum(hires) OVER w AS hires_rolling,
                    sum(seekers_stock) OVER w / count(*) OVER w AS seekers_stock_avg_rolling
                FROM stocked
                WINDOW w AS (PARTITION BY rome, code_region ORDER BY _index
                    RANGE BETWEEN {int(rolling_months) - 1} PRECEDING AND CURRENT ROW)
            )
            SELECT * FROM rolled
            WHERE seekers_stock <> 0 OR registrations_rolling <> 0 OR exits_to_work_rolling <> 0
                OR offers_published_rolling <> 0 OR positions_rolling <> 0 OR hires_rolling <> 0
                OR seekers_stock_avg_rolling <> 0""",
        ),
        (
            "flows",
            f"""CREATE TEMP TABLE flows AS
            WITH counted AS (
                SELECT from_rome, from_region, to_rome, to_region,
                    date_trunc('{period}', move_date)::DATE AS period_start, count(*) AS moves,
                    count(*) FILTER (WHERE kind = 'hire') AS hires,
                    count(*) FILTER (WHERE kind = 'reorientation') AS reorientations
                FROM transitions GROUP BY ALL
            ), at_origin AS (
                SELECT rome AS from_rome, code_region AS from_region,
                    (month + INTERVAL 1 MONTH)::DATE AS period_start, sum(seekers_stock) AS seekers_at_origin
                FROM market
                WHERE date_trunc('{period}', month + INTERVAL 1 MONTH) = month + INTERVAL 1 MONTH
                GROUP BY ALL
            ), at_destination AS (
                SELECT rome AS to_rome, code_region AS to_region,
                    date_trunc('{period}', month)::DATE AS period_start,
                    sum(offers_published) AS dest_offers, sum(positions) AS dest_positions
                FROM market GROUP BY ALL
            )
            SELECT c.*, coalesce(o.seekers_at_origin, 0) AS seekers_at_origin,
                coalesce(d.dest_offers, 0) AS dest_offers, coalesce(d.dest_positions, 0) AS dest_positions
            FROM counted c
            LEFT JOIN at_origin o ON o.from_rome IS NOT DISTINCT FROM c.from_rome
                AND o.from_region IS NOT DISTINCT FROM c.from_region AND o.period_start = c.period_start
            LEFT JOIN at_destination d ON d.to_rome IS NOT DISTINCT FROM c.to_rome
                AND d.to_region IS NOT DISTINCT FROM c.to_region AND d.period_start = c.period_start""",
        ),
    ]


def run(
    files: dict[str, list[str]],
    out: Path,
    flows: FlowsSettings,
    *,
    threads: int,
    memory_limit: str,
) -> dict[str, object]:
    """Compute the three tables from the silver snapshot ``files`` (table -> Parquet paths) with the
    ``flows`` settings of the Spark step and write them as Parquet under ``out``; return the wall time
    (reading the files included), the seconds per statement and the totals (``TOTALS``)."""
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"threads": threads, "memory_limit": memory_limit,
                                 "temp_directory": str(out / "_spill")})  # fmt: skip
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    for table in SILVER:
        paths = ", ".join(f"'{p}'" for p in files[table])
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{paths}])")
    rows_in = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in SILVER}
    sql = statements(level=flows.level, grace_days=flows.grace_days, stock_categories=flows.stock_categories,
                     rolling_months=flows.rolling_months, period=flows.period)  # fmt: skip
    for name, statement in sql:
        at = time.perf_counter()
        con.execute(statement)
        seconds[name] = round(time.perf_counter() - at, 2)
    for table in TOTALS:
        at = time.perf_counter()
        con.execute(f"COPY {table} TO '{out / table}.parquet' (FORMAT parquet)")
        seconds[f"write {table}"] = round(time.perf_counter() - at, 2)
    wall = time.perf_counter() - started
    totals = {table: totals_of(con, table) for table in TOTALS}
    con.close()
    return {"seconds": round(wall, 2), "steps": seconds, "rows_in": rows_in, "totals": totals}


def spark_run(lake: Lake, out: Path, flows: FlowsSettings) -> dict[str, object]:
    """Spark doing what ``run`` does: the same three tables from the current silver snapshots (the ones the
    flows step read) with the code of the flows step (``mobility.gold.build``), written as Parquet under
    ``out``; the wall time (planning included), the seconds per write and the totals of what was written.

    The like-for-like side of the yardstick: the flows step also builds ten more tables and commits
    thirteen Delta tables (most partitioned by month or period), which DuckDB's three Parquet files do not."""
    started = time.perf_counter()
    states = build_states(read_sources(lake), flows, persist=True)
    seconds: dict[str, float] = {}

    def write(table: str, df: DataFrame) -> None:
        at = time.perf_counter()
        df.write.mode("overwrite").parquet(str(out / table))
        seconds[f"write {table}"] = round(time.perf_counter() - at, 2)

    try:
        # As the flows step does: the flows read the transitions as written.
        write("transitions", states["transitions"])
        write("market", states["market"])
        transitions = lake.spark.read.parquet(str(out / "transitions"))
        write("flows", build_flows(transitions, states["market"], flows, persist=True)["flows"])
    finally:
        lake.spark.catalog.clearCache()
    wall = time.perf_counter() - started
    totals = spark_totals({table: lake.spark.read.parquet(str(out / table)) for table in TOTALS})
    return {"seconds": round(wall, 2), "steps": seconds, "totals": totals}


def totals_of(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, int | float]:
    figures = TOTALS[table]
    row = con.execute(f"SELECT {', '.join(figures.values())} FROM {table}").fetchone()
    return {name: _number(value) for name, value in zip(figures, row, strict=True)}


def _number(value: object) -> int | float:
    if value is None:
        return 0
    as_float = float(value)
    return int(as_float) if as_float.is_integer() else round(as_float, 6)


def spark_totals(tables: dict[str, object]) -> dict[str, dict[str, int | float]]:
    """The same totals over Spark's gold tables (``tables``: name -> DataFrame), with the same SQL."""
    out = {}
    for name, df in tables.items():
        figures = TOTALS[name]
        select = ", ".join(f"{expr} AS `{figure}`" for figure, expr in figures.items())
        row = df.sparkSession.sql(f"SELECT {select} FROM {{t}}", t=df).first()  # one row of totals
        out[name] = {figure: _number(row[figure]) for figure in figures}
    return out

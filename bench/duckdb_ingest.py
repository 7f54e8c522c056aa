"""A single-node yardstick for the ingest step: the same work in DuckDB SQL on the same input files.

Every record is read as a line (offers: each page's offers as their own JSON text), its IDX pseudonymised
with two SHA-256 rounds (the HMAC's cost), split, typed, checked against the ROME referentials and the
communes, flagged when its natural key repeats, then written twice as Parquet: bronze (the raw text and its
hash) and silver (typed columns and a hash of them), with the rejected records and the seekers. No Delta
(no commits, no MERGE) and no reconciliation per file: a floor for what Spark's step does, not an equal.
``ingest(input_dir, reference settings, out)`` returns seconds per part and the rows written.

    .venv/bin/python -m bench.duckdb_ingest bench/data/1000000-36-42 /tmp/out
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import duckdb

from mobility.config import ReferenceSettings, load_settings
from mobility.ingest import formats

# Each CSV kind (files `<kind>*.csv`): its silver table, its natural key (as the step's; the duplicate window
# of `_reason` names its columns), and the SELECT of its typed columns over `f`, the split fields.
_DATE = "try_strptime({0}, '%Y-%m-%d')::DATE"
_CSV = {
    "de": ("spells", "seeker_id, registration_date", f"""
        seeker_id, {_DATE.format('f[2]')} AS registration_date, {_DATE.format('f[3]')} AS end_date,
        f[4] AS registration_reason, f[5] AS end_reason, try_cast(f[6] AS INT) AS category,
        f[7] AS code_commune, f[8] AS rome, f[9] AS appellation, f[10] AS sex, f[11] AS education,
        try_cast(f[12] AS INT) AS birth_year"""),
    "rome": ("sought_changes", "seeker_id, start_date", f"""
        seeker_id, f[2] AS rome, {_DATE.format('f[3]')} AS start_date, {_DATE.format('f[4]')} AS end_date,
        NULL::VARCHAR AS code_commune"""),
    "hires": ("hires", "seeker_id, hire_date", f"""
        seeker_id, {_DATE.format('f[2]')} AS hire_date, f[3] AS rome, f[4] AS code_commune,
        f[5] AS contract, try_cast(f[6] AS INT) AS duration_months, nullif(f[7], '') AS offer_id"""),
}  # fmt: skip


def _reason(kind: str) -> str:
    """The first failed check of a CSV record, as in ``mobility.ingest.conform`` (fewer messages)."""
    layout = formats.CSV_LAYOUTS[kind]
    n = len(layout.columns)
    date = {"de": "registration_date", "rome": "start_date", "hires": "hire_date"}[kind]
    commune = "AND c.insee_com IS NULL AND code_commune <> ''" if kind != "rome" else "AND false"
    extra = (
        "WHEN category IS NULL OR category NOT BETWEEN 1 AND 5 THEN 'bad_value' "
        "WHEN end_date < registration_date THEN 'date_order' "
        if kind == "de" else ""
    )  # fmt: skip
    return f"""CASE WHEN len(f) < {n} THEN 'malformed' WHEN f[1] = '' OR f[2] = '' THEN 'missing_field'
        WHEN {date} IS NULL THEN 'bad_date' {extra}
        WHEN r.code IS NULL THEN 'unknown_rome' WHEN true {commune} THEN 'unknown_commune'
        WHEN count(*) OVER (PARTITION BY seeker_id, {date}) > 1
             AND row_number() OVER (PARTITION BY seeker_id, {date} ORDER BY line) > 1 THEN 'duplicate'
        END"""


def ingest(input_dir: Path, reference: ReferenceSettings, out: Path, threads: int = 2,
           memory_limit: str = "6GB", key: str = "bench-key") -> dict:  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}; SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    ipad, opad = key + "\x36", key + "\x5c"
    parts: dict[str, float] = {}
    began = time.monotonic()
    files = reference.files
    con.execute(f"""CREATE TABLE rome AS
        SELECT code_rome AS code FROM read_csv('{reference.dir / files.rome_v3}')
        UNION SELECT code_rome FROM read_csv('{reference.dir / files.rome_v4}');
        CREATE TABLE communes AS
        WITH c AS (SELECT * FROM read_csv('{reference.dir / files.communes}', all_varchar = true)
                   WHERE insee_dep IS NOT NULL)
        SELECT insee_com, any_value(insee_dep) AS insee_dep, any_value(insee_reg) AS insee_reg FROM c
        GROUP BY insee_com
        UNION ALL  -- Paris, Lyon, Marseille by their city code too (mobility.reference)
        SELECT DISTINCT insee_parente, insee_dep, insee_reg FROM c WHERE commune_type = 'ARM'""")  # fmt: skip
    parts["references"] = time.monotonic() - began
    rows: dict[str, int] = {}
    for kind, (table, _key, typed) in _CSV.items():
        began = time.monotonic()
        con.execute(f"""CREATE OR REPLACE TEMP TABLE lines AS
            WITH raw AS (
                SELECT filename AS source_file, row_number() OVER (PARTITION BY filename) AS line, line AS raw
                FROM read_csv('{input_dir}/{kind}*.csv', columns = {{'line': 'VARCHAR'}}, delim = '\\0',
                              quote = '', escape = '', header = true, filename = true)
            ), swapped AS (
                SELECT *, sha256('{opad}' || sha256('{ipad}' || split_part(raw, ';', 1))) AS seeker_id
                FROM raw
            )
            SELECT source_file, line, seeker_id || substr(raw, strpos(raw, ';')) AS raw, seeker_id,
                   string_split(raw, ';') AS f
            FROM swapped""")  # fmt: skip
        con.execute(f"""CREATE OR REPLACE TEMP TABLE typed AS
            WITH t AS (SELECT source_file, line, raw, f, {typed} FROM lines)
            SELECT t.*, {_reason(kind)} AS reason
            FROM t LEFT JOIN rome r ON r.code = t.rome
            LEFT JOIN communes c ON c.insee_com = t.code_commune""")
        rows[table] = _write(con, kind, table, typed, out)
        parts[table] = time.monotonic() - began
    began = time.monotonic()
    con.execute(f"""CREATE OR REPLACE TEMP TABLE typed AS
        WITH pages AS (SELECT filename AS source_file, content FROM read_text('{input_dir}/offers*.json')),
        offers AS (
            SELECT source_file, unnest(json_extract(content, '$.resultats[*]'))::VARCHAR AS raw FROM pages
        ), o AS (
            SELECT source_file, row_number() OVER (PARTITION BY source_file) AS line, raw,
                   json_extract_string(raw, ['id', 'dateCreation', 'dateActualisation', 'romeCode',
                       '$.lieuTravail.commune', '$.lieuTravail.codePostal', '$.lieuTravail.libelle',
                       'typeContrat', 'nombrePostes', 'qualificationCode', 'secteurActivite', 'intitule',
                       '$.lieuTravail.latitude', '$.lieuTravail.longitude']) AS f
            FROM offers
        )
        SELECT o.source_file, o.line, o.raw, f[1] AS offer_id, try_cast(f[2] AS TIMESTAMP) AS created_at,
               try_cast(f[3] AS TIMESTAMP) AS updated_at, f[4] AS rome, f[5] AS code_commune,
               f[6] AS postal_code, f[7] AS place_label, c.insee_dep AS code_departement,
               c.insee_reg AS code_region, f[8] AS contract, try_cast(f[9] AS INT) AS positions,
               f[10] AS qualification, f[11] AS sector, f[12] AS title, try_cast(f[13] AS DOUBLE) AS lat,
               try_cast(f[14] AS DOUBLE) AS lng,
               CASE WHEN f[1] IS NULL OR f[2] IS NULL OR f[4] IS NULL THEN 'missing_field'
                    WHEN try_cast(f[2] AS TIMESTAMP) IS NULL THEN 'bad_date'
                    WHEN r.code IS NULL THEN 'unknown_rome'
                    WHEN c.insee_com IS NULL AND f[7] IS NULL THEN 'unknown_place'
                    WHEN row_number() OVER (PARTITION BY f[1] ORDER BY f[3] DESC) > 1 THEN 'duplicate'
               END AS reason
        FROM o LEFT JOIN rome r ON r.code = f[4] LEFT JOIN communes c ON c.insee_com = f[5]""")
    rows["offers"] = _write(con, "offers", "offers", None, out)
    parts["offers"] = time.monotonic() - began
    began = time.monotonic()
    con.execute(f"""COPY (
        SELECT seeker_id, arg_max(birth_year, registration_date) AS birth_year,
               arg_max(sex, registration_date) AS sex, arg_max(education, registration_date) AS education,
               min(registration_date) AS first_registration, max(registration_date) AS last_registration
        FROM read_parquet('{out}/silver/spells.parquet') GROUP BY seeker_id
        ) TO '{out}/silver/seekers.parquet'""")  # fmt: skip
    parts["seekers"] = time.monotonic() - began
    return {"seconds": round(sum(parts.values()), 1), "parts": {k: round(v, 1) for k, v in parts.items()},
            "rows": rows, "duckdb": duckdb.__version__}  # fmt: skip


def _write(con: duckdb.DuckDBPyConnection, kind: str, table: str, typed: str | None, out: Path) -> dict:
    """Bronze (raw text, its hash), silver (typed, hashed) and the quarantine of one kind, as Parquet."""
    for zone in ("bronze", "silver", "quarantine"):
        (out / zone).mkdir(exist_ok=True)
    columns = [c for c in con.sql("SELECT * FROM typed LIMIT 0").columns
               if c not in ("source_file", "line", "raw", "f", "reason")]  # fmt: skip
    con.execute(f"""COPY (SELECT '{kind}' AS kind, source_file, line, raw, sha256(raw) AS raw_hash FROM typed)
        TO '{out}/bronze/{kind}.parquet'""")
    con.execute(f"""COPY (SELECT {", ".join(columns)}, sha256(to_json(struct_pack({", ".join(columns)})))
            AS _row_hash, source_file AS _source_file, line AS _line FROM typed WHERE reason IS NULL)
        TO '{out}/silver/{table}.parquet'""")  # fmt: skip
    con.execute(f"""COPY (SELECT '{table}' AS "table", reason, source_file, line, raw FROM typed
        WHERE reason IS NOT NULL) TO '{out}/quarantine/{table}.parquet'""")
    counts = con.execute("SELECT count(*), count(*) FILTER (WHERE reason IS NULL) FROM typed").fetchone()
    return {"read": counts[0], "valid": counts[1]}


if __name__ == "__main__":
    result = ingest(Path(sys.argv[1]), load_settings("local").reference, Path(sys.argv[2]))
    print(json.dumps(result, indent=1))

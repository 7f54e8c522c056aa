"""CSV and Parquet exports of the published views, beside the report, with their data dictionary.

Only ``gold.published_*`` views are exported. A column without a description here stops the export: a new
published column must be documented before it leaves.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StructType

from mobility import publish
from mobility.errors import MobilityError
from mobility.lake import Lake
from mobility.publish import GOLD_TABLES

log = logging.getLogger(__name__)

VIEWS: dict[str, tuple[str, str]] = {
    "flows": ("Mobilités par métier et région d'origine, métier et région d'arrivée, et trimestre",
              "Moves by occupation and region of origin, occupation and region of destination, and quarter"),
    "flows_region": ("Mobilités de région à région par trimestre", "Moves from region to region by quarter"),
    "flows_occupation": ("Mobilités de métier à métier par trimestre", "Moves from occupation to occupation by quarter"),
    "flows_grand_domaine": ("Mobilités de grand domaine à grand domaine par trimestre",
                            "Moves from grand domaine to grand domaine by quarter"),
    "region_balance": ("Arrivées, départs et solde de chaque région par trimestre",
                       "Arrivals, departures and balance of each region by quarter"),
    "market": ("Marché du travail par métier, région et mois", "Labour market by occupation, region and month"),
    "market_national": ("Marché du travail par métier et mois, France entière",
                        "Labour market by occupation and month, whole of France"),
    "occupation_mobility": ("Mobilités au départ de chaque métier, toutes périodes, et ses destinations principales",
                            "Moves out of each occupation, all periods, and its main destinations"),
}  # fmt: skip

COLUMNS: dict[str, tuple[str, str]] = {
    "from_rome": ("Métier d'origine (code ROME v3)", "Occupation of origin (ROME v3 code)"),
    "to_rome": ("Métier d'arrivée (code ROME v3)", "Occupation of destination (ROME v3 code)"),
    "rome": ("Métier (code ROME v3)", "Occupation (ROME v3 code)"),
    "from_region": ("Région d'origine (code INSEE)", "Region of origin (INSEE code)"),
    "to_region": ("Région d'arrivée (code INSEE)", "Region of destination (INSEE code)"),
    "region": ("Région (code INSEE)", "Region (INSEE code)"),
    "code_region": ("Région (code INSEE)", "Region (INSEE code)"),
    "from_grand_domaine": ("Grand domaine ROME d'origine (lettre)", "ROME grand domaine of origin (letter)"),
    "to_grand_domaine": ("Grand domaine ROME d'arrivée (lettre)", "ROME grand domaine of destination (letter)"),
    "period": ("Trimestre (AAAA-Tn)", "Quarter (YYYY-Qn)"),
    "period_start": ("Premier jour de la période", "First day of the period"),
    "month": ("Mois (premier jour)", "Month (first day)"),
    "moves": ("Mobilités (personnes ; vide si masqué)", "Moves (people; empty when withheld)"),
    "hires": ("Retours à l'emploi (personnes ; vide si masqué)", "Hires (people; empty when withheld)"),
    "reorientations": ("Changements de métier recherché (personnes ; vide si masqué)",
                       "Changes of the occupation sought (people; empty when withheld)"),
    "seekers_at_origin": ("Demandeurs en stock à l'origine, fin du mois précédant la période (personnes)",
                          "Job seekers in stock at the origin, end of the month before the period (people)"),
    "rate": ("Mobilités / demandeurs à l'origine", "Moves / job seekers at the origin"),
    "median_days_to_move": ("Délai médian de l'inscription à la mobilité (jours)",
                            "Median days from registration to the move"),
    "share_via_offers": ("Part des retours à l'emploi passés par une offre publiée",
                         "Share of hires made through a published offer"),
    "dest_offers": ("Offres publiées à destination sur la période", "Offers published at the destination in the period"),
    "dest_positions": ("Postes offerts à destination sur la période", "Positions offered at the destination in the period"),
    "dest_tension": ("Tension à destination (offres par demandeur)", "Tension at the destination (offers per seeker)"),
    "inflow": ("Arrivées d'une autre région (personnes)", "Moves in from another region (people)"),
    "outflow": ("Départs vers une autre région (personnes)", "Moves out to another region (people)"),
    "net": ("Arrivées moins départs", "Arrivals minus departures"),
    "internal": ("Mobilités restant dans la région (personnes)", "Moves staying in the region (people)"),
    "seekers_stock": ("Demandeurs en catégories A, B, C en fin de mois (personnes)",
                      "Job seekers in categories A, B, C at the month's end (people)"),
    "registrations": ("Inscriptions du mois (personnes)", "Registrations in the month (people)"),
    "exits_to_work": ("Sorties pour reprise d'emploi du mois (personnes)", "Exits back to work in the month (people)"),
    "offers_published": ("Offres publiées dans le mois", "Offers published in the month"),
    "positions": ("Postes offerts dans le mois", "Positions offered in the month"),
    "tension": ("Offres publiées par demandeur en stock", "Offers published per job seeker in stock"),
    "movers": ("Mobilités au départ du métier (personnes)", "Moves out of the occupation (people)"),
    "changers": ("dont vers un autre métier (personnes)", "of which to another occupation (people)"),
    "share_changing": ("Part des mobilités qui changent de métier", "Share of moves changing occupation"),
    "top_destinations": ("Destinations principales : métier, mobilités, part (JSON en CSV)",
                         "Main destinations: occupation, moves, share (JSON in CSV)"),
    "suppressed": ("Vrai si une valeur de la ligne est masquée", "True when a value of the row is withheld"),
    "suppressed_columns": ("Colonnes masquées de la ligne (séparées par « | » en CSV)",
                           "Columns of the row withheld (separated by \"|\" in CSV)"),
}  # fmt: skip


def _flat(df: DataFrame) -> DataFrame:
    """CSV holds no arrays or structs: arrays of strings joined by '|', anything nested as JSON."""
    out = []
    for field in df.schema.fields:
        col = F.col(field.name)
        if isinstance(field.dataType, ArrayType) and not isinstance(field.dataType.elementType, StructType):
            col = F.concat_ws("|", col)
        elif isinstance(field.dataType, ArrayType | StructType):
            col = F.to_json(col)
        out.append(col.alias(field.name))
    return df.select(*out)


def _single_file(df: DataFrame, fmt: str, target: Path, **options: str) -> None:
    """Write ``df`` as one file at ``target`` (Spark writes a folder of parts: one part, moved)."""
    staging = target.with_name(target.name + ".parts")
    shutil.rmtree(staging, ignore_errors=True)
    df.coalesce(1).write.mode("overwrite").options(**options).format(fmt).save(str(staging))
    parts = sorted(staging.glob(f"part-*.{fmt}*"))
    if len(parts) != 1:
        raise MobilityError(f"export: expected one {fmt} part in {staging}, found {len(parts)}")
    target.unlink(missing_ok=True)
    shutil.move(str(parts[0]), target)
    shutil.rmtree(staging)


def dictionary(lake: Lake, lang: str) -> list[tuple[str, str, str, str]]:
    """(view, column, type, description) for every column of every published view."""
    rows = []
    for name in GOLD_TABLES:
        for field in publish.read_view(lake, name).schema.fields:
            if field.name not in COLUMNS:
                raise MobilityError(f"export: column {field.name!r} of published_{name} has no description")
            fr, en = COLUMNS[field.name]
            rows.append(
                (f"published_{name}", field.name, field.dataType.simpleString(), fr if lang == "fr" else en)
            )
    return rows


def write(lake: Lake, out: Path, lang: str) -> dict[str, int]:
    """Every published view as ``out/<view>.csv`` and ``.parquet``, and ``out/DICTIONARY.md``; rows each."""
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    columns = dictionary(lake, lang)  # fails before any write when a column is undocumented
    for name in GOLD_TABLES:
        started = time.monotonic()
        view = f"published_{name}"
        df = publish.read_view(lake, view)
        _single_file(df, "parquet", out / f"{view}.parquet")
        _single_file(_flat(df), "csv", out / f"{view}.csv", header="true", encoding="UTF-8", escape='"')
        rows[view] = lake.spark.read.parquet(str(out / f"{view}.parquet")).count()
        log.info("report: exported %s, %d rows, in %.1f s", view, rows[view], time.monotonic() - started)
    fr = lang == "fr"
    lines = ["# " + ("Dictionnaire des données" if fr else "Data dictionary"), ""]
    lines.append(
        "Vues publiées : tout effectif de personnes sous le seuil est vide, et d'autres cases le sont pour qu'il "
        "ne se déduise pas des totaux ; `suppressed_columns` dit lesquelles."
        if fr
        else "Published views: every count of people under the threshold is empty, and so are other cells so "
        "that it cannot be worked out from the totals; `suppressed_columns` says which."
    )
    for name in GOLD_TABLES:
        view = f"published_{name}"
        lines += [
            "",
            f"## {view} ({rows[view]:,} {'lignes' if fr else 'rows'})",
            "",
            VIEWS[name][0 if fr else 1],
            "",
        ]
        lines += ["| column | type | " + ("description" if not fr else "définition") + " |", "|---|---|---|"]
        lines += [f"| `{c}` | {t} | {d} |" for v, c, t, d in columns if v == view]
    (out / "DICTIONARY.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rows

"""Reference data: the official ROME referentials (v3 and 4.0), INSEE geography and DARES tension.

Both ROME versions live side by side in ``ref.rome``, each code with its referential ``version`` and
``release``, because ROME 4.0 reuses some v3 codes with other meanings: a label or a link is only ever
read with the version it came from. ``rome_v3`` is the common level: a v3 fiche is its own, a v4 fiche's
is its official ``code_rome_parent``. Flows across the 2023 cutover are computed on it.

The files are read from ``reference.dir`` with the names in ``reference.files``. Each is checked before
Spark reads it (present, in its encoding, with its separator and columns, every row as wide as the
header) so that a broken download fails at once with the file and the defect named, rather than as a
stack trace halfway through a write. The files are a few megabytes, fixed in size whatever the
trajectories, so checking them in the driver is cheap.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from mobility.config import ReferenceSettings
from mobility.errors import MobilityError
from mobility.ingest.readers import clean_name, header_names
from mobility.lake import Lake

log = logging.getLogger(__name__)

ROME_CODE = r"^[A-N][0-9]{4}$"
REGION_CODE = r"^[0-9]{2}$"
DEPARTEMENT_CODE = r"^([0-9]{2}|2[AB]|97[0-9])$"
COMMUNE_CODE = r"^([0-9]{2}|2[AB])[0-9]{3}$"
_SEPARATORS = (",", ";", "\t", "|")


class ReferenceFileError(MobilityError):
    """A reference file is missing or malformed; the message names the file and the defect."""


@dataclass(frozen=True)
class CsvFormat:
    """What the loader needs of a file: the columns it reads, its separator and encoding."""

    columns: tuple[str, ...]
    sep: str = ","
    encoding: str = "utf-8"


FORMATS: Mapping[str, CsvFormat] = {
    "rome_v3": CsvFormat(("code_rome", "code_ogr", "libelle_rome")),
    "rome_v3_mobility": CsvFormat(
        (
            "code_rome",
            "code_rome_cible",
            "code_appellation_source",
            "code_appellation_cible",
            "code_type_mobilite",
        )
    ),
    "rome_v3_appellation": CsvFormat(("code_ogr", "libelle_appellation_long", "code_rome")),
    "rome_v3_tree": CsvFormat(
        ("code_type_referentiel", "code_pere", "code_noeud", "libelle_item_arbo", "code_type_noeud")
    ),
    "rome_v4": CsvFormat(("code_rome", "code_ogr", "libelle_rome", "code_rome_parent")),
    "rome_v4_mobility": CsvFormat(("code_rome", "code_rome_cible", "numero_ordre")),
    "rome_v4_appellation": CsvFormat(
        ("code_ogr", "libelle_appellation_long", "code_rome", "code_rome_parent")
    ),
    "regions": CsvFormat(("insee_reg", "region", "lng", "lat", "aire")),
    "departements": CsvFormat(("insee_dep", "insee_reg", "departement", "lng", "lat", "aire")),
    "communes": CsvFormat(
        (
            "insee_com",
            "insee_reg",
            "insee_dep",
            "commune",
            "code_postal",
            "commune_type",
            "insee_parente",
            "lat",
            "lng",
            "superficie_km2",
            "population_2021",
            "pop_15_64_chomage_2021",
            "pop_15_64_active_2021",
        )
    ),  # fmt: skip
    "tension": CsvFormat(
        (
            "fap",
            "Emploi moyen",
            "Tension",
            "Catégorie Tension",
            "Intensité d'embauches",
            "Lien formation-emploi",
            "Manque de main-d'œuvre disponible",
            "Non-durabilité de l'emploi",
            "Conditions de travail contraignantes",
            "Inadéquation géographique",
            "Année",
            "niveau_geo",
            "niveau_fap",
            "reg",
            "dep",
        )
    ),  # fmt: skip
    # Windows-1252 in fact (0x85 is an ellipsis in its labels), but Spark reads ISO-8859-1 at most; the
    # ROME labels it repeats are taken from the ROME files instead.
    "fap_rome": CsvFormat(("Fap", "Rome"), sep=";", encoding="iso-8859-1"),
}


# ---------------------------------------------------------------------------------------------- reading


def check_csv(path: Path, fmt: CsvFormat) -> None:
    """Raise ReferenceFileError unless ``path`` is a readable CSV of ``fmt``."""
    if not path.is_file():
        raise ReferenceFileError(f"{path}: file not found (set reference.dir or reference.files)")
    raw = path.read_bytes()
    try:
        text = raw.decode(fmt.encoding)
    except UnicodeDecodeError as exc:
        raise ReferenceFileError(
            f"{path}: not {fmt.encoding} text (byte {raw[exc.start]:#04x} at offset {exc.start}); "
            f"save the file as {fmt.encoding}"
        ) from None
    # csv on the text itself, not str.splitlines(): latin-1 files hold 0x85, a line break to Python only.
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=fmt.sep)
    first = next(rows, None)
    if not first or not "".join(first).strip():
        raise ReferenceFileError(f"{path}: empty file, expected a header with {', '.join(fmt.columns)}")
    header = [clean_name(name) for name in first]
    header_line = text.split("\n", 1)[0]
    missing = [c for c in fmt.columns if c not in header]
    if missing:
        for other in _SEPARATORS:
            if other != fmt.sep and all(c in header_names(header_line, other) for c in fmt.columns):
                raise ReferenceFileError(
                    f"{path}: wrong separator: expected {fmt.sep!r} but the header is separated by {other!r}"
                )
        raise ReferenceFileError(
            f"{path}: missing column(s) {', '.join(missing)}; the header has {', '.join(header)}"
        )
    for row in rows:
        if row and len(row) != len(header):
            raise ReferenceFileError(
                f"{path}: line {rows.line_num} has {len(row)} fields, the header has {len(header)}"
            )


def read_csv(spark: SparkSession, path: Path, fmt: CsvFormat) -> DataFrame:
    """The file as strings, columns named as in its header (trimmed); empty fields are null."""
    check_csv(path, fmt)
    df = (
        spark.read.option("header", True)
        .option("sep", fmt.sep)
        .option("encoding", fmt.encoding)
        .option("quote", '"')
        .option("escape", '"')
        .option("mode", "FAILFAST")
        .csv(str(path))
    )
    df = df.toDF(*(clean_name(name) for name in df.columns))
    return df.select(*(F.nullif(F.trim(F.col(f"`{c}`")), F.lit("")).alias(c) for c in df.columns))


def read_sources(spark: SparkSession, settings: ReferenceSettings) -> dict[str, DataFrame]:
    """Every reference file of ``settings`` as a DataFrame of strings, keyed as in ``reference.files``."""
    files = settings.files.model_dump()
    return {key: read_csv(spark, settings.dir / files[key], fmt) for key, fmt in FORMATS.items()}


# ----------------------------------------------------------------------------------------- transforming


def _double(name: str) -> Column:
    return F.col(f"`{name}`").cast("double")


def _label(name: str) -> Column:
    """The official exports escape apostrophes SQL-style (``d''engins``); labels are shown to people."""
    return F.regexp_replace(F.col(f"`{name}`"), "''", "'")


def _int(name: str) -> Column:
    return F.col(f"`{name}`").cast("double").cast("int")


def rome(v3: DataFrame, v4: DataFrame, v3_release: str, v4_release: str) -> DataFrame:
    """``ref.rome``: the fiches of both versions, each with its v3 common code and tree position."""

    def fiches(df: DataFrame, version: str, release: str, parent: Column) -> DataFrame:
        return df.select(
            F.col("code_rome"),
            F.lit(version).alias("version"),
            F.lit(release).alias("release"),
            _label("libelle_rome").alias("label"),
            parent.alias("rome_v3"),
            F.col("code_ogr").cast("long").alias("code_ogr"),
        )

    both = fiches(v3, "v3", v3_release, F.col("code_rome")).unionByName(
        fiches(v4, "v4", v4_release, F.col("code_rome_parent"))
    )
    return both.withColumns(
        {"domaine": F.substring("code_rome", 1, 3), "grand_domaine": F.substring("code_rome", 1, 1)}
    )


def rome_mobility(v3_links: DataFrame, v4_links: DataFrame, v3_release: str, v4_release: str) -> DataFrame:
    """``ref.rome_mobility``: v3 typed links (proche, evolution) and v4 ranked links (rank 1 = closest).

    v3 rows with appellations filled are links between job titles of the two fiches; they are kept with
    their appellation codes, as the official file has them.
    """
    v3 = v3_links.select(
        F.lit("v3").alias("version"),
        F.lit(v3_release).alias("release"),
        "code_rome",
        "code_rome_cible",
        F.when(F.col("code_type_mobilite") == "1", "proche")
        .when(F.col("code_type_mobilite") == "2", "evolution")
        .alias("link_type"),
        F.lit(None).cast("int").alias("rank"),
        F.col("code_appellation_source").cast("long").alias("appellation_source"),
        F.col("code_appellation_cible").cast("long").alias("appellation_cible"),
    )
    v4 = v4_links.select(
        F.lit("v4").alias("version"),
        F.lit(v4_release).alias("release"),
        "code_rome",
        "code_rome_cible",
        F.lit("ranked").alias("link_type"),
        F.col("numero_ordre").cast("int").alias("rank"),
        F.lit(None).cast("long").alias("appellation_source"),
        F.lit(None).cast("long").alias("appellation_cible"),
    )
    return v3.unionByName(v4)


def rome_tree(tree: DataFrame) -> DataFrame:
    """``ref.rome_tree``: the 14 grands domaines (one letter) and 110 domaines (letter + 2 digits).

    The arborescence file also holds a second, numbered tree (``code_type_referentiel`` 7) and the
    fiches themselves; only the main tree's inner nodes are kept.
    """
    nodes = tree.filter(
        (F.col("code_type_referentiel") == "6")
        & (F.col("code_type_noeud") == "2")
        & F.col("code_noeud").rlike(r"^[A-N]([0-9]{2})?$")
    )
    return nodes.select(
        F.when(F.length("code_noeud") == 1, "grand_domaine").otherwise("domaine").alias("level"),
        F.col("code_noeud").alias("code"),
        _label("libelle_item_arbo").alias("label"),
        F.when(F.length("code_noeud") == 3, F.substring("code_noeud", 1, 1)).alias("parent"),
    )


def rome_appellation(v3: DataFrame, v4: DataFrame, v3_release: str, v4_release: str) -> DataFrame:
    """``ref.rome_appellation``: job titles of both versions with their fiche and its v3 common code."""

    def titles(df: DataFrame, version: str, release: str, parent: Column) -> DataFrame:
        return df.select(
            F.lit(version).alias("version"),
            F.lit(release).alias("release"),
            F.col("code_ogr").cast("long").alias("code_ogr"),
            _label("libelle_appellation_long").alias("label"),
            "code_rome",
            parent.alias("rome_v3"),
        )

    return titles(v3, "v3", v3_release, F.col("code_rome")).unionByName(
        titles(v4, "v4", v4_release, F.col("code_rome_parent"))
    )


def region(regions: DataFrame) -> DataFrame:
    """``ref.region``: the 18 regions with their centroid."""
    return regions.select(
        F.col("insee_reg").alias("code_region"),
        F.col("region").alias("name"),
        _double("lng").alias("lng"),
        _double("lat").alias("lat"),
        _double("aire").alias("area_km2"),
    )


def departement(departements: DataFrame) -> DataFrame:
    """``ref.departement``: the 101 départements with their region and centroid."""
    return departements.select(
        F.col("insee_dep").alias("code_departement"),
        F.col("insee_reg").alias("code_region"),
        F.col("departement").alias("name"),
        _double("lng").alias("lng"),
        _double("lat").alias("lat"),
        _double("aire").alias("area_km2"),
    )


def commune(communes: DataFrame) -> DataFrame:
    """``ref.commune``: one row per INSEE code, plus Paris, Lyon and Marseille as a whole.

    The source has one row per (commune, postal code) and lists the three cities by arrondissement only,
    while real files use both the arrondissement and the city code (75056, 69123, 13055): the city rows
    are built from their arrondissements (populations summed, centroid weighted by population).
    """
    typed = communes.select(
        F.col("insee_com").alias("code_commune"),
        F.col("insee_dep").alias("code_departement"),
        F.col("insee_reg").alias("code_region"),
        F.col("commune").alias("name"),
        F.col("commune_type"),
        F.col("insee_parente").alias("parent_code"),
        _double("lat").alias("lat"),
        _double("lng").alias("lng"),
        _double("superficie_km2").alias("area_km2"),
        _int("population_2021").alias("population"),
        _int("pop_15_64_active_2021").alias("active_15_64"),
        _int("pop_15_64_chomage_2021").alias("unemployed_15_64"),
    )
    value_columns = [c for c in typed.columns if c != "code_commune"]
    # Rows of one commune differ only by postal code, which is not kept here: min() picks the shared value.
    unique = typed.groupBy("code_commune").agg(*(F.min(c).alias(c) for c in value_columns))
    arrondissements = unique.filter((F.col("commune_type") == "ARM") & F.col("parent_code").isNotNull())
    weight = F.coalesce(F.col("population"), F.lit(0))
    cities = arrondissements.groupBy(F.col("parent_code").alias("code_commune")).agg(
        F.min("code_departement").alias("code_departement"),
        F.min("code_region").alias("code_region"),
        F.regexp_extract(F.min("name"), r"^(.+?) [0-9]", 1).alias("name"),
        F.lit("COM").alias("commune_type"),
        F.lit(None).cast("string").alias("parent_code"),
        (F.sum(F.col("lat") * weight) / F.sum(weight)).alias("lat"),
        (F.sum(F.col("lng") * weight) / F.sum(weight)).alias("lng"),
        F.sum("area_km2").alias("area_km2"),
        F.sum("population").cast("int").alias("population"),
        F.sum("active_15_64").cast("int").alias("active_15_64"),
        F.sum("unemployed_15_64").cast("int").alias("unemployed_15_64"),
    )
    missing_cities = cities.join(unique.select("code_commune"), "code_commune", "left_anti")
    return unique.unionByName(missing_cities)


def postal_code(communes: DataFrame) -> DataFrame:
    """``ref.postal_code``: which communes a postal code covers (offers often carry only that)."""
    return (
        communes.select(F.col("code_postal"), F.col("insee_com").alias("code_commune"))
        .where(F.col("code_postal").isNotNull())
        .distinct()
    )


def fap_rome(fap_rome_raw: DataFrame) -> DataFrame:
    """``ref.fap_rome``: FAP-225 family -> ROME v3 fiche; families without a fiche (``NA``) dropped."""
    return fap_rome_raw.where(F.col("Rome").rlike(ROME_CODE)).select(
        F.col("Fap").alias("fap"), F.col("Rome").alias("code_rome")
    )


def tension(tensions: DataFrame) -> DataFrame:
    """``ref.tension``: DARES tension by FAP at national, region and département level.

    Region codes come as floats (``84.0``) and are turned back into INSEE codes (``84``, ``01``).
    """
    reg = F.col("reg").cast("double").cast("int")
    return tensions.select(
        F.col("fap"),
        F.regexp_replace(F.col("niveau_fap"), " ", "").alias("fap_level"),
        F.trim(F.col("niveau_geo")).alias("geo_level"),
        F.when(reg.isNotNull(), F.lpad(reg.cast("string"), 2, "0")).alias("code_region"),
        F.col("dep").alias("code_departement"),
        _int("Année").alias("year"),
        _double("Emploi moyen").alias("employment"),
        _double("Tension").alias("tension"),
        _int("Catégorie Tension").alias("tension_category"),
        _int("Intensité d'embauches").alias("hiring_intensity"),
        _int("Lien formation-emploi").alias("training_link"),
        _int("Manque de main-d'œuvre disponible").alias("labour_shortage"),
        _int("Non-durabilité de l'emploi").alias("job_instability"),
        _int("Conditions de travail contraignantes").alias("working_conditions"),
        _int("Inadéquation géographique").alias("geographic_mismatch"),
    )


# ------------------------------------------------------------------------------------------- validating

# Which file each table comes from, and which of its codes must match which pattern.
_CODE_CHECKS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "ref.rome": (("code_rome", ROME_CODE), ("rome_v3", ROME_CODE)),
    "ref.rome_mobility": (("code_rome", ROME_CODE), ("code_rome_cible", ROME_CODE), ("link_type", r".")),
    "ref.region": (("code_region", REGION_CODE),),
    "ref.departement": (("code_departement", DEPARTEMENT_CODE), ("code_region", REGION_CODE)),
    "ref.commune": (("code_commune", COMMUNE_CODE + "|^97[0-9]{3}$"), ("code_departement", DEPARTEMENT_CODE)),
}
SOURCES: Mapping[str, tuple[str, ...]] = {
    "ref.rome": ("rome_v3", "rome_v4"),
    "ref.rome_mobility": ("rome_v3_mobility", "rome_v4_mobility"),
    "ref.rome_tree": ("rome_v3_tree",),
    "ref.rome_appellation": ("rome_v3_appellation", "rome_v4_appellation"),
    "ref.region": ("regions",),
    "ref.departement": ("departements",),
    "ref.commune": ("communes",),
    "ref.postal_code": ("communes",),
    "ref.fap_rome": ("fap_rome",),
    "ref.tension": ("tension",),
}


def check_codes(table: str, df: DataFrame, files: str) -> None:
    """Fail naming the file when a code column of ``table`` holds a value outside its pattern."""
    checks = _CODE_CHECKS.get(table, ())
    if not checks:
        return
    bad = F.lit(False)
    for column, pattern in checks:
        bad = bad | F.col(column).isNull() | ~F.col(column).rlike(pattern)
    # bounded: three example rows for the error message
    rows = df.where(bad).select(*(c for c, _ in checks)).limit(3).collect()
    if rows:
        shown = "; ".join(", ".join(f"{k}={v!r}" for k, v in row.asDict().items()) for row in rows)
        raise ReferenceFileError(f"{files}: malformed codes for {table}: {shown}")


# ----------------------------------------------------------------------------------------------- step


def build(sources: Mapping[str, DataFrame], settings: ReferenceSettings) -> dict[str, DataFrame]:
    """All ``ref.*`` tables from the raw files."""
    v3, v4 = settings.rome_v3_release, settings.rome_v4_release
    return {
        "ref.rome": rome(sources["rome_v3"], sources["rome_v4"], v3, v4),
        "ref.rome_mobility": rome_mobility(sources["rome_v3_mobility"], sources["rome_v4_mobility"], v3, v4),
        "ref.rome_tree": rome_tree(sources["rome_v3_tree"]),
        "ref.rome_appellation": rome_appellation(
            sources["rome_v3_appellation"], sources["rome_v4_appellation"], v3, v4
        ),
        "ref.region": region(sources["regions"]),
        "ref.departement": departement(sources["departements"]),
        "ref.commune": commune(sources["communes"]),
        "ref.postal_code": postal_code(sources["communes"]),
        "ref.fap_rome": fap_rome(sources["fap_rome"]),
        "ref.tension": tension(sources["tension"]),
    }


def load(spark: SparkSession, lake: Lake, settings: ReferenceSettings) -> dict[str, int]:
    """Read, check and write every ``ref.*`` table; return the Delta version written per table."""
    tables = build(read_sources(spark, settings), settings)
    files = settings.files.model_dump()
    versions = {}
    for table, df in tables.items():
        named = ", ".join(str(settings.dir / files[key]) for key in SOURCES[table])
        try:
            check_codes(table, df, named)
            versions[table] = lake.overwrite(df, table)
        except ReferenceFileError:
            raise
        except Exception as exc:  # Spark's FAILFAST parse errors surface here, deep in a Java trace.
            first = str(exc).strip().splitlines()[0][:300]
            raise ReferenceFileError(f"{named}: could not be read into {table}: {first}") from exc
    return versions


def _count_by(df: DataFrame, column: str) -> dict[str, int]:
    # bounded: one row per value of a reference column
    return {row[column]: row["n"] for row in df.groupBy(column).agg(F.count("*").alias("n")).collect()}


def summary(lake: Lake) -> dict[str, int]:
    """The counts a user checks after loading: fiches, tree, links, geography."""
    rome_versions = _count_by(lake.read("ref.rome"), "version")
    with_parent = (
        lake.read("ref.rome").where((F.col("version") == "v4") & F.col("rome_v3").isNotNull()).count()
    )
    links = _count_by(lake.read("ref.rome_mobility"), "version")
    tree = _count_by(lake.read("ref.rome_tree"), "level")
    return {
        "rome v3 fiches": rome_versions.get("v3", 0),
        "rome v4 fiches": rome_versions.get("v4", 0),
        "rome v4 fiches with a v3 parent": with_parent,
        "grands domaines": tree.get("grand_domaine", 0),
        "domaines": tree.get("domaine", 0),
        "v3 typed links": links.get("v3", 0),
        "v4 ranked links": links.get("v4", 0),
        "regions": lake.read("ref.region").count(),
        "departements": lake.read("ref.departement").count(),
        "communes": lake.read("ref.commune").count(),
        "postal codes": lake.read("ref.postal_code").select("code_postal").distinct().count(),
        "fap->rome rows": lake.read("ref.fap_rome").count(),
        "tension rows": lake.read("ref.tension").count(),
    }

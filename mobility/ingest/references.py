"""The reference lookups of ingestion: ROME codes of either referential, communes, postal codes, and the
place of an offer at the finest level it states.

Places of offers (``place_level``), finest first: ``commune`` (a known commune code), ``postal_code``, else
``departement`` (the "NN - TOWN" label's département), ``region`` (a region's name), ``national`` ("France"),
``overseas_collectivity`` (the collectivités d'outre-mer of INSEE's geographic code, outside the
départements and regions: 975 Saint-Pierre-et-Miquelon, 977 Saint-Barthélemy, 978 Saint-Martin, 984 the
TAAF, 986 Wallis-et-Futuna, 987 French Polynesia, 988 New Caledonia, 989 Clipperton; known by the label's
prefix, the commune code or the postal code; the code is kept in ``code_departement``, as the COG does),
and ``abroad`` (a label naming a country, in French as the offers API writes it, "Allemagne",
"Rust, Allemagne", "Allemagne (Frontalier)", or "99 - Pays", or "Etranger"; the country's ISO code in
``country`` when the label names one). Country names come from ``pycountry``'s ISO 3166 list and its French
translation, French territories excluded (they are départements or collectivities here).
"""

from __future__ import annotations

import functools
import gettext
import operator
from dataclasses import dataclass
from datetime import date
from functools import reduce

import pycountry
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from mobility.lake import Lake

# INSEE COG, collectivités d'outre-mer: code -> postal codes (or their prefixes) that stand for them.
OVERSEAS_COLLECTIVITIES = {
    "975": ("975",), "977": ("97133",), "978": ("97150",), "984": ("984",), "986": ("986",),
    "987": ("987",), "988": ("988",), "989": ("989",),
}  # fmt: skip
# ISO 3166 codes of French overseas départements, collectivities and territories: not abroad.
FRENCH_TERRITORIES = ("FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF", "WF", "PF", "NC", "TF", "CP")
ABROAD_WORDS = ("etranger",)


@dataclass(frozen=True)
class References:
    """The reference lookups ingestion joins with, each small enough to broadcast."""

    rome: DataFrame
    commune: DataFrame
    postal: DataFrame
    departement: DataFrame
    region: DataFrame
    country: DataFrame
    rome_v4_from: date


def _name_key(column: Column) -> Column:
    """A place name compared without case, accents, hyphens or apostrophes (offers write them freely)."""
    plain = F.translate(F.lower(F.trim(column)), "àâäéèêëîïôöùûüç'-", "aaaeeeeiioouuuc  ")
    return F.regexp_replace(plain, r"\s+", " ")


def _local(df: DataFrame) -> DataFrame:
    """``df`` brought to the driver and given back as a literal table: bounded by a referential (a few
    thousand rows), it is then broadcast to every join of the batch without a job or a lookup of its own."""
    return df.sparkSession.createDataFrame(df.collect(), df.schema)  # bounded: a referential


REF_TABLES = ("ref.rome", "ref.commune", "ref.postal_code", "ref.departement", "ref.region")


def load_references(lake: Lake, rome_v4_from: date) -> References:
    """The lookups of one batch, read from ``ref.*`` and held as literal tables. A session that ingests
    batch after batch (monthly extracts) reads them once for as long as the ``ref.*`` tables keep their
    Delta version: 18 small jobs, 2 s of a monthly batch."""
    commits = tuple((t, *_commit_key(lake, t)) for t in REF_TABLES)
    return _read_references(lake, commits, rome_v4_from)


def _commit_key(lake: Lake, table: str) -> tuple[int, int]:
    """A table's latest version and when it was committed (a table written anew restarts its versions)."""
    version, info = lake.last_commit(table)
    return version, int(info.get("timestamp", 0))


@functools.lru_cache(maxsize=2)
def _read_references(lake: Lake, commits: tuple[tuple[str, int, int], ...], rome_v4_from: date) -> References:
    """The lookups at the versions in ``commits`` (the cache key: a table written since is read anew)."""
    version = {table: v for table, v, _ in commits}

    def read(table: str) -> DataFrame:
        return lake.read(table, version[table])

    rome = (
        read("ref.rome")
        .groupBy("code_rome")
        .agg(
            F.max(F.col("version") == "v3").alias("in_v3"),
            F.max(F.col("version") == "v4").alias("in_v4"),
            F.max(F.when(F.col("version") == "v4", F.col("rome_v3"))).alias("v4_parent"),
        )
    )
    commune = read("ref.commune").select("code_commune", "code_departement", "code_region", "lat", "lng")
    by_population = read("ref.commune").select(
        "code_commune", F.coalesce("population", F.lit(0)).alias("pop")
    )
    # A postal code covering several communes stands for its most populous one.
    postal = (
        read("ref.postal_code")
        .join(by_population, "code_commune")
        .groupBy("code_postal")
        .agg(F.max_by("code_commune", F.struct("pop", F.col("code_commune"))).alias("code_commune"))
        .join(commune, "code_commune")
    )
    departement = read("ref.departement").select("code_departement", "code_region", "lat", "lng")
    region = read("ref.region").select("code_region", _name_key(F.col("name")).alias("name_key"))
    tables = (rome, commune, postal, departement, region, countries(lake.spark))
    return References(*(_local(t) for t in tables), rome_v4_from=rome_v4_from)


def resolve_rome(df: DataFrame, code: str, on: Column, refs: References) -> DataFrame:
    """Add ``rome_version`` and ``rome_v3`` for the code in ``code`` as of date ``on`` (null: unknown)."""
    looked = df.join(F.broadcast(refs.rome.withColumnRenamed("code_rome", "_rome")),
                     F.col(code) == F.col("_rome"), "left")  # fmt: skip
    recent = on >= F.lit(refs.rome_v4_from)
    version = (
        F.when(F.col("in_v3") & F.col("in_v4"), F.when(recent, "v4").otherwise("v3"))
        .when(F.col("in_v4"), "v4")
        .when(F.col("in_v3"), "v3")
    )
    return (
        looked.withColumn("rome_version", version)
        .withColumn(
            "rome_v3",
            F.when(F.col("rome_version") == "v4", F.col("v4_parent")).otherwise(
                F.when(F.col("rome_version") == "v3", F.col(code))
            ),
        )  # fmt: skip
        .drop("_rome", "in_v3", "in_v4", "v4_parent")
    )


def resolve_commune(df: DataFrame, code: str, refs: References) -> DataFrame:
    """Add ``code_departement`` and ``code_region`` of the commune in ``code`` (null: unknown)."""
    lookup = refs.commune.select(F.col("code_commune").alias("_commune"), "code_departement", "code_region")
    return df.join(F.broadcast(lookup), F.col(code) == F.col("_commune"), "left").drop("_commune")


def countries(spark: SparkSession) -> DataFrame:
    """``name_key`` -> ``country`` (ISO 3166 alpha-2) for every foreign country, by its French and English
    names (official and common ones), a few hundred rows."""
    french = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["fr"])
    rows = set()
    for country in pycountry.countries:
        if country.alpha_2 in FRENCH_TERRITORIES:
            continue
        for name in {
            country.name,
            getattr(country, "common_name", None),
            getattr(country, "official_name", None),
        }:
            if name:
                rows |= {(name, country.alpha_2), (french.gettext(name), country.alpha_2)}
    names = spark.createDataFrame(sorted(rows), "name string, country string")
    return names.select(_name_key(F.col("name")).alias("name_key"), "country").dropDuplicates(["name_key"])


def _collectivity(commune: Column, postal: Column, label_code: Column) -> Column:
    """The overseas collectivity's code from the label's prefix, the commune code or the postal code."""
    by_commune = F.substring(commune, 1, 3)
    found = F.when(label_code.isin(*OVERSEAS_COLLECTIVITIES), label_code).when(
        by_commune.isin(*OVERSEAS_COLLECTIVITIES) & (F.length(commune) == 5), by_commune
    )
    for code, prefixes in OVERSEAS_COLLECTIVITIES.items():
        found = found.when(reduce(operator.or_, (postal.startswith(p) for p in prefixes)), F.lit(code))
    return found


def resolve_place(df: DataFrame, refs: References) -> DataFrame:
    """Add the offer's ``place_level``, its commune, département (or overseas collectivity), region,
    coordinates and ``country`` (abroad).

    The label is read only where the codes say nothing: its keys (regular expressions, a few microseconds an
    offer) are null for an offer placed by its commune or postal code, as nearly all are, and so are the
    label's name keys for an offer placed by its "NN - TOWN" département."""
    label = F.trim(F.col("place_label"))
    commune = refs.commune.select([F.col(c).alias(f"_c_{c}") for c in refs.commune.columns])
    postal = refs.postal.select([F.col(c).alias(f"_p_{c}") for c in refs.postal.columns])
    dep = refs.departement.select([F.col(c).alias(f"_d_{c}") for c in refs.departement.columns])
    region = refs.region.select([F.col(c).alias(f"_r_{c}") for c in refs.region.columns])
    country = refs.country.select([F.col(c).alias(f"_k_{c}") for c in refs.country.columns])
    df = df.join(F.broadcast(commune), F.col("_commune") == F.col("_c_code_commune"), "left").join(
        F.broadcast(postal), F.col("_postal") == F.col("_p_code_postal"), "left"
    )
    by_codes = F.col("_c_code_commune").isNotNull() | F.col("_p_code_commune").isNotNull()
    label_dep = F.regexp_extract(label, r"^(2[AB]|9[78][0-9]|[0-9]{2}) - ", 1)
    df = df.withColumn("_label_dep", F.when(~by_codes, label_dep)).join(
        F.broadcast(dep), F.col("_label_dep") == F.col("_d_code_departement"), "left"
    )
    # "Rust, Allemagne", "Allemagne (Frontalier)", "99 - Allemagne": the country is the last part.
    last_part = F.element_at(F.split(F.regexp_replace(label, r"\([^)]*\)", ""), ","), -1)
    by_label = ~by_codes & F.col("_d_code_departement").isNull()
    df = df.withColumns(
        {
            "_label_key": F.when(by_label, _name_key(label)),
            "_country_key": F.when(by_label, _name_key(F.regexp_replace(last_part, r"^\s*99 - ", ""))),
        }
    )
    df = df.join(F.broadcast(region), F.col("_label_key") == F.col("_r_name_key"), "left").join(
        F.broadcast(country), F.col("_country_key") == F.col("_k_name_key"), "left"
    )
    collectivity = _collectivity(F.col("_commune"), F.col("_postal"), F.col("_label_dep"))
    df = df.withColumn("_com", collectivity)
    abroad = (
        F.col("_k_country").isNotNull() | label.startswith("99 - ") | F.col("_label_key").isin(*ABROAD_WORDS)
    )
    level = (
        F.when(F.col("_c_code_commune").isNotNull(), "commune")
        .when(F.col("_p_code_commune").isNotNull(), "postal_code")
        .when(F.col("_d_code_departement").isNotNull(), "departement")
        .when(F.col("_r_code_region").isNotNull(), "region")
        .when(F.col("_label_key") == "france", "national")
        .when(F.col("_com").isNotNull(), "overseas_collectivity")
        .when(abroad, "abroad")
    )
    return df.withColumns(
        {
            "place_level": level,
            "code_commune": F.coalesce("_c_code_commune", "_p_code_commune"),
            "code_departement": F.coalesce(
                "_c_code_departement", "_p_code_departement", "_d_code_departement", "_com"
            ),
            "code_region": F.coalesce("_c_code_region", "_p_code_region", "_d_code_region", "_r_code_region"),
            "country": F.when(level == "abroad", F.col("_k_country")),
            "lat": F.coalesce("_lat", "_c_lat", "_p_lat", "_d_lat"),
            "lng": F.coalesce("_lng", "_c_lng", "_p_lng", "_d_lng"),
        }
    ).drop(
        "_com",
        *(c for c in df.columns if c.startswith(("_c_", "_p_", "_d_", "_r_", "_k_", "_label_", "_country_"))),
    )

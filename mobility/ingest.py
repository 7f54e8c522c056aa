"""Ingestion: input files -> ``bronze.*`` (as read) -> ``silver.*`` (typed, validated, conformed).

One run is one batch (``batch_id``). Every record read ends either in its silver table or in
``silver.quarantine`` with a reason code (``formats.REASONS``), its raw text, file and line; the per-file
reconciliation (read = valid + quarantined) is stored in ``silver.ingestion_log``.

Conforming:
- IDX becomes ``seeker_id``, an HMAC pseudonym (``mobility.privacy``), as the lines are read
  (``mobility.sources``): no table holds IDX, not bronze, not the raw lines of the quarantine.
- ROME codes of either referential are valid. A code that both know (ROME 4.0 reused some v3 codes) is
  read in the version in force on the record's date (``reference.rome_v4_from``); each code is stored with
  its ``rome_version`` and ``rome_v3``, the common level.
- A commune code resolves to its département and region (Paris, Lyon and Marseille by arrondissement or
  by city code). An offer's place resolves to the finest level it carries: commune, else postal code,
  else the "NN - TOWN" label's département, else a region's name, else France as a whole or abroad.

Writes are idempotent: silver tables are MERGEd on natural keys and a row changes only when its content
does (offers: when ``dateActualisation`` is newer), bronze and quarantine insert what they do not hold yet.
Ingesting the same files twice changes no row.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from mobility import formats
from mobility.config import Settings
from mobility.errors import MobilityError
from mobility.lake import Lake
from mobility.quality import (
    QUARANTINE_KEYS,
    Check,
    classify,
    is_empty,
    is_valid,
    mark_duplicates,
    missing_fields,
    quarantine_rows,
    raw_hash,
)
from mobility.sources import SourceFile, csv_records, discover, offer_records

log = logging.getLogger(__name__)

DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

SPELL_COLUMNS = (
    "seeker_id", "registration_date", "end_date", "registration_reason", "end_reason", "category",
    "code_commune", "code_departement", "code_region", "rome", "rome_version", "rome_v3", "appellation",
    "sex", "education", "birth_year",
)  # fmt: skip
CHANGE_COLUMNS = ("seeker_id", "start_date", "end_date", "rome", "rome_version", "rome_v3")
HIRE_COLUMNS = (
    "seeker_id", "hire_date", "rome", "rome_version", "rome_v3", "code_commune", "code_departement",
    "code_region", "contract", "duration_months", "offer_id",
)  # fmt: skip
OFFER_COLUMNS = (
    "offer_id", "created_at", "updated_at", "rome", "rome_version", "rome_v3", "place_level", "place_label",
    "code_commune", "code_departement", "code_region", "lat", "lng", "contract", "positions",
    "qualification", "sector", "title",
)  # fmt: skip
SEEKER_COLUMNS = ("seeker_id", "birth_year", "sex", "education", "first_registration", "last_registration")

# silver table -> (input kind, natural key)
TABLES = {
    "spells": ("de", ("seeker_id", "registration_date")),
    "sought_changes": ("rome", ("seeker_id", "start_date")),
    "hires": ("hires", ("seeker_id", "hire_date")),
    "offers": ("offers", ("offer_id",)),
}

OFFER_SCHEMA = (
    "id string, intitule string, dateCreation string, dateActualisation string, romeCode string, "
    "lieuTravail struct<libelle: string, commune: string, codePostal: string, latitude: double, "
    "longitude: double>, typeContrat string, nombrePostes string, qualificationCode string, "
    "secteurActivite string, _corrupt string"
)


class RejectRateError(MobilityError):
    """More records were rejected than ``quality.max_reject_rate`` allows (everything was written)."""


# ------------------------------------------------------------------------------------------ reference


@dataclass(frozen=True)
class References:
    """The reference lookups ingestion joins with, each small enough to broadcast."""

    rome: DataFrame
    commune: DataFrame
    postal: DataFrame
    departement: DataFrame
    region: DataFrame
    rome_v4_from: date


def _name_key(column: Column) -> Column:
    """A place name compared without case, accents, hyphens or apostrophes (offers write them freely)."""
    plain = F.translate(F.lower(F.trim(column)), "àâäéèêëîïôöùûüç'-", "aaaeeeeiioouuuc  ")
    return F.regexp_replace(plain, r"\s+", " ")


def load_references(lake: Lake, rome_v4_from: date) -> References:
    rome = (
        lake.read("ref.rome")
        .groupBy("code_rome")
        .agg(
            F.max(F.col("version") == "v3").alias("in_v3"),
            F.max(F.col("version") == "v4").alias("in_v4"),
            F.max(F.when(F.col("version") == "v4", F.col("rome_v3"))).alias("v4_parent"),
        )
    )
    commune = lake.read("ref.commune").select("code_commune", "code_departement", "code_region", "lat", "lng")
    by_population = lake.read("ref.commune").select(
        "code_commune", F.coalesce("population", F.lit(0)).alias("pop")
    )
    # A postal code covering several communes stands for its most populous one.
    postal = (
        lake.read("ref.postal_code")
        .join(by_population, "code_commune")
        .groupBy("code_postal")
        .agg(F.max_by("code_commune", F.struct("pop", F.col("code_commune"))).alias("code_commune"))
        .join(commune, "code_commune")
    )
    departement = lake.read("ref.departement").select("code_departement", "code_region", "lat", "lng")
    region = lake.read("ref.region").select("code_region", _name_key(F.col("name")).alias("name_key"))
    return References(rome, commune, postal, departement, region, rome_v4_from)


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


# ------------------------------------------------------------------------------------------- records


def _field(name: str) -> Column:
    value = F.trim(F.col("fields")[name])
    return F.when(value != "", value)


def _split_fields(records: DataFrame, layout: formats.CsvLayout) -> DataFrame:
    """The record's place and structure, and each column of the layout as a trimmed string."""
    return records.select(
        "source_file", "line", "raw", "n_fields", "n_columns", "missing_columns", "read_error",
        *(_field(c).alias(c) for c in layout.columns),
    )  # fmt: skip


def _date_order(start_raw: str, start: str, end_raw: str, end: str) -> Check:
    return Check(
        "date_order",
        F.col(end) < F.col(start),
        F.format_string(f"{end_raw} %s is before {start_raw} %s", F.col(end_raw), F.col(start_raw)),
    )


def _date(column: str) -> Column:
    return F.when(F.col(column).rlike(DATE_PATTERN), F.try_to_date(F.col(column), "yyyy-MM-dd"))


def _bad_date(raw: str, parsed: str) -> Check:
    return Check(
        "bad_date",
        ~is_empty(raw) & F.col(parsed).isNull(),
        F.format_string(f"{raw} %s is not a date (YYYY-MM-DD)", F.col(raw)),
    )


def _structure_checks() -> list[Check]:
    return [
        Check("malformed", F.col("read_error").isNotNull(), F.col("read_error")),
        Check(
            "schema",
            F.col("missing_columns").isNotNull(),
            F.format_string("the file has no column %s", F.col("missing_columns")),
        ),
        Check(
            "malformed",
            F.col("n_fields") != F.col("n_columns"),
            F.format_string("%d fields where the header has %d", F.col("n_fields"), F.col("n_columns")),
        ),
    ]


def _rome_check(code: str = "ROME") -> Check:
    return Check(
        "unknown_rome",
        F.col("rome_version").isNull(),
        F.format_string(f"{code} %s is in neither ROME referential", F.col(code)),
    )


def _commune_check(code: str = "DEPCOM") -> Check:
    return Check(
        "unknown_commune",
        F.col("code_departement").isNull(),
        F.format_string(f"{code} %s is not a known commune", F.col(code)),
    )


def _row_hash(columns: Sequence[str]) -> Column:
    return F.sha2(F.to_json(F.struct(*columns)), 256)


def conform_spells(records: DataFrame, refs: References) -> DataFrame:
    """Registration spells (``de``): typed and checked; ``_reason`` null for a valid record."""
    df = _split_fields(records, formats.DE)
    df = df.withColumns({"_datins": _date("DATINS"), "_datann": _date("DATANN")})
    df = resolve_rome(df, "ROME", F.col("_datins"), refs)
    df = resolve_commune(df, "DEPCOM", refs)
    birth = F.col("ANNAIS").try_cast("int")
    checks = [
        *_structure_checks(),
        missing_fields(formats.DE.mandatory),
        _bad_date("DATINS", "_datins"),
        _bad_date("DATANN", "_datann"),
        _date_order("DATINS", "_datins", "DATANN", "_datann"),
        Check(
            "bad_value",
            ~F.col("CATREGR").isin(*formats.CATEGORIES),
            F.format_string("CATREGR %s is not a category 1-5", F.col("CATREGR")),
        ),
        Check(
            "bad_value",
            ~is_empty("SEXE") & ~F.col("SEXE").isin(*formats.SEXES),
            F.format_string("SEXE %s is neither 1 nor 2", F.col("SEXE")),
        ),
        Check(
            "bad_value",
            ~is_empty("ANNAIS") & (birth.isNull() | ~birth.between(1900, 2100)),
            F.format_string("ANNAIS %s is not a year of birth", F.col("ANNAIS")),
        ),
        _rome_check(),
        _commune_check(),
    ]
    df = classify(df, checks)
    df = df.select(
        "source_file", "line", "raw", "_reason", "_message",
        F.col("IDX").alias("seeker_id"),
        F.col("_datins").alias("registration_date"),
        F.col("_datann").alias("end_date"),
        F.col("MOTINS").alias("registration_reason"),
        F.col("MOTANN").alias("end_reason"),
        F.col("CATREGR").try_cast("int").alias("category"),
        F.col("DEPCOM").alias("code_commune"),
        "code_departement", "code_region",
        F.col("ROME").alias("rome"), "rome_version", "rome_v3",
        F.col("ROMEAPL").alias("appellation"),
        F.col("SEXE").alias("sex"),
        F.col("NIVFOR").alias("education"),
        birth.alias("birth_year"),
    )  # fmt: skip
    return mark_duplicates(df, TABLES["spells"][1], [F.col("source_file"), F.col("line")], "IDX and DATINS")


def conform_changes(records: DataFrame, refs: References) -> DataFrame:
    """Changes of the occupation sought within a spell (``rome``)."""
    df = _split_fields(records, formats.ROME)
    df = df.withColumns({"_start": _date("JOURDV"), "_end": _date("JOURFV")})
    df = resolve_rome(df, "ROME", F.col("_start"), refs)
    checks = [
        *_structure_checks(),
        missing_fields(formats.ROME.mandatory),
        _bad_date("JOURDV", "_start"),
        _bad_date("JOURFV", "_end"),
        _date_order("JOURDV", "_start", "JOURFV", "_end"),
        _rome_check(),
    ]
    df = classify(df, checks).select(
        "source_file", "line", "raw", "_reason", "_message",
        F.col("IDX").alias("seeker_id"),
        F.col("_start").alias("start_date"),
        F.col("_end").alias("end_date"),
        F.col("ROME").alias("rome"), "rome_version", "rome_v3",
    )  # fmt: skip
    return mark_duplicates(
        df, TABLES["sought_changes"][1], [F.col("source_file"), F.col("line")], "IDX and JOURDV"
    )


def conform_hires(records: DataFrame, refs: References) -> DataFrame:
    """Return-to-work events (``hires``)."""
    df = _split_fields(records, formats.HIRES)
    df = df.withColumn("_datemb", _date("DATEMB"))
    df = resolve_rome(df, "ROME", F.col("_datemb"), refs)
    df = resolve_commune(df, "DEPCOM", refs)
    months = F.col("DUREE").try_cast("double")
    checks = [
        *_structure_checks(),
        missing_fields(formats.HIRES.mandatory),
        _bad_date("DATEMB", "_datemb"),
        Check(
            "bad_value",
            ~is_empty("DUREE") & (months.isNull() | (months < 0)),
            F.format_string("DUREE %s is not a number of months", F.col("DUREE")),
        ),
        _rome_check(),
        _commune_check(),
    ]
    df = classify(df, checks).select(
        "source_file", "line", "raw", "_reason", "_message",
        F.col("IDX").alias("seeker_id"),
        F.col("_datemb").alias("hire_date"),
        F.col("ROME").alias("rome"), "rome_version", "rome_v3",
        F.col("DEPCOM").alias("code_commune"), "code_departement", "code_region",
        F.col("TYPCTR").alias("contract"),
        months.alias("duration_months"),
        F.col("OFFRE_ID").alias("offer_id"),
    )  # fmt: skip
    return mark_duplicates(df, TABLES["hires"][1], [F.col("source_file"), F.col("line")], "IDX and DATEMB")


def resolve_place(df: DataFrame, refs: References) -> DataFrame:
    """Add the offer's ``place_level`` and its commune, département, region and coordinates."""
    label = F.trim(F.col("place_label"))
    df = df.withColumns(
        {
            "_label_dep": F.regexp_extract(label, r"^(2[AB]|97[0-9]|[0-9]{2}) - ", 1),
            "_label_key": _name_key(label),
        }
    )
    commune = refs.commune.select([F.col(c).alias(f"_c_{c}") for c in refs.commune.columns])
    postal = refs.postal.select([F.col(c).alias(f"_p_{c}") for c in refs.postal.columns])
    dep = refs.departement.select([F.col(c).alias(f"_d_{c}") for c in refs.departement.columns])
    region = refs.region.select([F.col(c).alias(f"_r_{c}") for c in refs.region.columns])
    df = (
        df.join(F.broadcast(commune), F.col("_commune") == F.col("_c_code_commune"), "left")
        .join(F.broadcast(postal), F.col("_postal") == F.col("_p_code_postal"), "left")
        .join(F.broadcast(dep), F.col("_label_dep") == F.col("_d_code_departement"), "left")
        .join(F.broadcast(region), F.col("_label_key") == F.col("_r_name_key"), "left")
    )
    level = (
        F.when(F.col("_c_code_commune").isNotNull(), "commune")
        .when(F.col("_p_code_commune").isNotNull(), "postal_code")
        .when(F.col("_d_code_departement").isNotNull(), "departement")
        .when(F.col("_r_code_region").isNotNull(), "region")
        .when(F.col("_label_key") == "france", "national")
        .when(label.startswith("99 - ") | F.lower(label).isin("etranger", "étranger"), "abroad")
    )
    return df.withColumns(
        {
            "place_level": level,
            "code_commune": F.coalesce("_c_code_commune", "_p_code_commune"),
            "code_departement": F.coalesce(
                "_c_code_departement", "_p_code_departement", "_d_code_departement"
            ),
            "code_region": F.coalesce("_c_code_region", "_p_code_region", "_d_code_region", "_r_code_region"),
            "lat": F.coalesce("_lat", "_c_lat", "_p_lat", "_d_lat"),
            "lng": F.coalesce("_lng", "_c_lng", "_p_lng", "_d_lng"),
        }
    ).drop(*(c for c in df.columns if c.startswith(("_c_", "_p_", "_d_", "_r_", "_label_"))))


def conform_offers(records: DataFrame, refs: References) -> DataFrame:
    """Job offers from the API: typed, place resolved, checked; the newest version of an id wins."""
    offer = F.from_json(F.col("raw"), OFFER_SCHEMA, {"columnNameOfCorruptRecord": "_corrupt"})
    df = records.withColumn("_o", offer)
    place = F.col("_o.lieuTravail")
    df = df.select(
        "source_file", "line", "raw", "page_error",
        F.trim(F.col("_o.id")).alias("id"),
        F.col("_o.dateCreation").alias("dateCreation"),
        F.col("_o.dateActualisation").alias("dateActualisation"),
        F.trim(F.col("_o.romeCode")).alias("romeCode"),
        F.col("_o.nombrePostes").alias("nombrePostes"),
        (F.col("_o").isNull() | F.col("_o._corrupt").isNotNull()).alias("_unparsed"),
        F.col("_o.typeContrat").alias("contract"),
        F.col("_o.qualificationCode").alias("qualification"),
        F.col("_o.secteurActivite").alias("sector"),
        F.col("_o.intitule").alias("title"),
        F.trim(place["commune"]).alias("_commune"),
        F.trim(place["codePostal"]).alias("_postal"),
        place["libelle"].alias("place_label"),
        place["latitude"].alias("_lat"),
        place["longitude"].alias("_lng"),
    )  # fmt: skip
    created = F.col("dateCreation").try_cast("timestamp")
    updated = F.col("dateActualisation").try_cast("timestamp")
    df = df.withColumns({"created_at": created, "updated_at": F.coalesce(updated, created)})
    df = resolve_rome(df, "romeCode", F.to_date("created_at"), refs)
    df = resolve_place(df, refs)
    positions = F.col("nombrePostes").try_cast("int")
    checks = [
        Check("malformed", F.col("page_error").isNotNull(), F.col("page_error")),
        Check("malformed", F.col("_unparsed"), F.lit("the offer is not a valid JSON object")),
        missing_fields(formats.OFFER_MANDATORY),
        Check(
            "bad_date",
            F.col("created_at").isNull(),
            F.format_string("dateCreation %s is not an ISO timestamp", F.col("dateCreation")),
        ),
        Check(
            "bad_value",
            ~is_empty("nombrePostes") & (positions.isNull() | (positions < 1)),
            F.format_string("nombrePostes %s is not a number of positions", F.col("nombrePostes")),
        ),
        _rome_check("romeCode"),
        Check(
            "unknown_place",
            F.col("place_level").isNull(),
            F.format_string(
                "lieuTravail %s cannot be placed", F.coalesce(F.col("place_label"), F.lit("(none)"))
            ),
        ),
    ]
    df = classify(df, checks).select(
        "source_file", "line", "raw", "_reason", "_message",
        F.col("id").alias("offer_id"), "created_at", "updated_at",
        F.col("romeCode").alias("rome"), "rome_version", "rome_v3",
        "place_level", "place_label", "code_commune", "code_departement", "code_region", "lat", "lng",
        "contract", F.coalesce(positions, F.lit(1)).alias("positions"), "qualification", "sector", "title",
    )  # fmt: skip
    # The newest version of an offer wins; among equal versions, the first read (as for CSV records).
    newest = [F.col("updated_at").desc_nulls_last(), F.col("source_file"), F.col("line")]
    return mark_duplicates(df, TABLES["offers"][1], newest, "offer id")


# ----------------------------------------------------------------------------------- cross-table checks


def check_known_seekers(df: DataFrame, known: DataFrame) -> DataFrame:
    """Reject records of job seekers who have no registration spell (in this batch or in silver)."""
    flagged = df.join(known.select("seeker_id", F.lit(True).alias("_known")), "seeker_id", "left")
    check = Check(
        "unknown_seeker",
        F.col("_known").isNull() & F.col("seeker_id").isNotNull(),
        F.lit("no registration spell of this job seeker"),
    )
    return classify(flagged, [check]).drop("_known")


def check_offers_before_hires(hires: DataFrame, offers: DataFrame) -> DataFrame:
    """Reject hires that fill an offer created after the hire date."""
    created = offers.select(F.col("offer_id"), F.to_date("created_at").alias("_created"))
    flagged = hires.join(created, "offer_id", "left")
    check = Check(
        "offer_after_hire",
        F.col("_created") > F.col("hire_date"),
        F.format_string("offer %s was created on %s, after the hire", F.col("offer_id"), F.col("_created")),
    )
    return classify(flagged, [check]).drop("_created")


# ---------------------------------------------------------------------------------------------- batch


@dataclass
class IngestReport:
    batch_id: str
    input_dir: Path
    counts: list[dict] = field(default_factory=list)  # per (table, file): read, valid, quarantined
    reasons: dict[str, int] = field(default_factory=dict)  # quarantined records per reason
    ignored: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def read(self) -> int:
        return sum(c["read"] for c in self.counts)

    @property
    def quarantined(self) -> int:
        return sum(c["quarantined"] for c in self.counts)

    @property
    def reject_rate(self) -> float:
        return self.quarantined / self.read if self.read else 0.0


def _bronze(df: DataFrame, batch_id: str, at: Column, fields: bool) -> DataFrame:
    extra = [F.col("fields")] if fields else []
    return df.select(
        "source_file", "line", "raw", *extra,
        raw_hash().alias("raw_hash"),
        F.lit(batch_id).alias("_batch_id"), at.alias("_ingested_at"),
    )  # fmt: skip


def _silver(df: DataFrame, columns: Sequence[str], batch_id: str, at: Column) -> DataFrame:
    return df.where(is_valid()).select(
        *columns,
        _row_hash(columns).alias("_row_hash"),
        F.col("source_file").alias("_source_file"),
        F.col("line").alias("_line"),
        F.lit(batch_id).alias("_batch_id"),
        at.alias("_ingested_at"),
    )


def _seekers(spells: DataFrame) -> DataFrame:
    """One row per job seeker, with the attributes of the latest spell."""
    latest = F.max_by(F.struct("birth_year", "sex", "education"), F.col("registration_date"))
    agg = spells.groupBy("seeker_id").agg(
        latest.alias("_latest"),
        F.min("registration_date").alias("first_registration"),
        F.max("registration_date").alias("last_registration"),
    )
    df = agg.select(
        "seeker_id", "_latest.birth_year", "_latest.sex", "_latest.education",
        "first_registration", "last_registration",
    )  # fmt: skip
    return df.withColumn("_row_hash", _row_hash(SEEKER_COLUMNS))


def _input_kind(source: SourceFile) -> str:
    return "offers" if source.kind.startswith("offers") else source.kind


def _quarantine_unreadable(
    lake: Lake, unreadable: Sequence[SourceFile], batch_id: str, at: Column, report: IngestReport
) -> None:
    """A file that cannot be read at all (empty, corrupt gzip, binary) is one record, quarantined with why,
    so the batch says it came; its bytes are not kept."""
    table_of = {kind: table for table, (kind, _) in TABLES.items()}
    rows = [(table_of[_input_kind(f)], f.name, f.defect) for f in unreadable]
    df = lake.spark.createDataFrame(rows, "table string, source_file string, message string").select(
        "table",
        F.lit("malformed").alias("reason"),
        "message",
        F.lit("").alias("raw"),
        F.sha2(F.lit(""), 256).alias("raw_hash"),
        "source_file",
        F.lit(0).cast("long").alias("line"),
        F.lit(batch_id).alias("batch_id"),
        at.alias("ingested_at"),
    )
    lake.merge(df, "silver.quarantine", QUARANTINE_KEYS, insert_only=True)
    report.counts += [
        {"table": table, "source_file": name, "read": 1, "valid": 0, "quarantined": 1}
        for table, name, _ in rows
    ]
    report.reasons["malformed"] = report.reasons.get("malformed", 0) + len(rows)


def new_batch_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def ingest(lake: Lake, settings: Settings, input_dir: Path, batch_id: str | None = None) -> IngestReport:
    """Ingest every file of a known kind in ``input_dir`` as one batch."""
    start = time.monotonic()
    batch_id = batch_id or new_batch_id()
    files, ignored = discover(input_dir)
    if not files:
        raise MobilityError(f"{input_dir}: no input files (de*.csv, rome*.csv, hires*.csv, offers*.json[l])")
    for name in ignored:
        log.info("ingest: ignored %s (not an input kind)", name)
    key, is_dev_key = settings.privacy.key()
    if is_dev_key:
        log.warning(
            "ingest: pseudonyms use the development key of the profile; set MOBILITY_PSEUDO_KEY for real data"
        )
    refs = load_references(lake, settings.reference.rome_v4_from)
    max_chars = settings.quality.max_line_chars
    staging = Path(lake.root) / "_staging" / batch_id
    at = F.lit(datetime.now(UTC)).cast("timestamp")
    spark = lake.spark
    by_kind: dict[str, list[SourceFile]] = {}
    unreadable: list[SourceFile] = []
    for source in files:
        if source.defect:
            unreadable.append(source)
            log.warning("ingest: %s: %s; quarantined as one malformed record", source.name, source.defect)
            continue
        by_kind.setdefault(_input_kind(source), []).append(source)
        if source.encoding != "UTF-8":
            log.info("ingest: %s is %s, read as such", source.name, source.encoding)
    for kind, sources in by_kind.items():
        size = sum(f.path.stat().st_size for f in sources) / 2**20
        log.info("ingest: reading %d %s file(s), %.1f MB, from %s", len(sources), kind, size, input_dir)

    conformed: dict[str, DataFrame] = {}
    conformers = {"spells": conform_spells, "sought_changes": conform_changes, "hires": conform_hires}
    raw: dict[str, DataFrame] = {}
    for table, (kind, _) in TABLES.items():
        if kind not in by_kind:
            continue
        # Read once: bronze and the conformed records both come from this copy (reading the files costs
        # two passes, one of them numbering the lines).
        if kind == "offers":
            records = offer_records(spark, by_kind[kind], staging, max_chars)
            raw[table] = records.persist(StorageLevel.MEMORY_AND_DISK)
            conformed[table] = conform_offers(raw[table], refs)
        else:
            records = csv_records(spark, by_kind[kind], staging, key, max_chars)
            raw[table] = records.persist(StorageLevel.MEMORY_AND_DISK)
            conformed[table] = conformers[table](raw[table], refs)

    # Checks across tables: against this batch's valid records and what silver already holds.
    def known(table: str, columns: Sequence[str]) -> DataFrame | None:
        parts = []
        if table in conformed:
            parts.append(conformed[table].where(is_valid()).select(*columns))
        if lake.exists(f"silver.{table}"):
            parts.append(lake.read(f"silver.{table}").select(*columns))
        if not parts:
            return None
        out = parts[0]
        for part in parts[1:]:
            out = out.unionByName(part)
        return out

    for table in ("spells", "offers"):
        if table in conformed:
            conformed[table] = conformed[table].persist(StorageLevel.MEMORY_AND_DISK)
    seekers = known("spells", ["seeker_id"])
    seekers = seekers.distinct() if seekers is not None else spark.createDataFrame([], "seeker_id string")
    for table in ("sought_changes", "hires"):
        if table in conformed:
            conformed[table] = check_known_seekers(conformed[table], seekers)
    offers = known("offers", ["offer_id", "created_at"])
    if "hires" in conformed and offers is not None:
        offers = offers.groupBy("offer_id").agg(F.min("created_at").alias("created_at"))
        conformed["hires"] = check_offers_before_hires(conformed["hires"], offers)
    for table in ("sought_changes", "hires"):
        if table in conformed:
            conformed[table] = conformed[table].persist(StorageLevel.MEMORY_AND_DISK)

    report = IngestReport(batch_id, input_dir, ignored=ignored)
    columns = {"spells": SPELL_COLUMNS, "sought_changes": CHANGE_COLUMNS, "hires": HIRE_COLUMNS,
               "offers": OFFER_COLUMNS}  # fmt: skip
    for table, df in conformed.items():
        kind, keys = TABLES[table]
        lake.merge(_bronze(raw[table], batch_id, at, kind != "offers"), f"bronze.{kind}",
                   ["source_file", "line", "raw_hash"], insert_only=True)  # fmt: skip
        update_when = "s.updated_at > t.updated_at" if table == "offers" else "s._row_hash <> t._row_hash"
        lake.merge(
            _silver(df, columns[table], batch_id, at), f"silver.{table}", keys, update_when=update_when
        )
        lake.merge(quarantine_rows(df, table, batch_id, at), "silver.quarantine", QUARANTINE_KEYS,
                   insert_only=True)  # fmt: skip
        counts = df.groupBy("source_file").agg(
            F.count("*").alias("read"),
            F.count(F.when(is_valid(), 1)).alias("valid"),
            F.count(F.when(~is_valid(), 1)).alias("quarantined"),
        )
        for row in counts.orderBy("source_file").collect():  # bounded: one row per file
            report.counts.append({"table": table, **row.asDict()})
        for row in df.where(~is_valid()).groupBy("_reason").count().collect():  # bounded: one row per reason
            report.reasons[row["_reason"]] = report.reasons.get(row["_reason"], 0) + row["count"]
    if "spells" in conformed:
        touched = conformed["spells"].where(is_valid()).select("seeker_id").distinct()
        spells = lake.read("silver.spells").join(touched, "seeker_id", "left_semi")
        lake.merge(
            _seekers(spells), "silver.seekers", ["seeker_id"], update_when="s._row_hash <> t._row_hash"
        )
    for df in (*conformed.values(), *raw.values()):
        df.unpersist()
    if unreadable:
        _quarantine_unreadable(lake, unreadable, batch_id, at, report)
    shutil.rmtree(staging, ignore_errors=True)  # transcoded copies of latin-1 files, read by now

    report.seconds = time.monotonic() - start
    log_rows = [
        (batch_id, c["table"], c["source_file"], c["read"], c["valid"], c["quarantined"])
        for c in report.counts
    ]
    log_df = spark.createDataFrame(
        log_rows, "batch_id string, table string, source_file string, read long, valid long, quarantined long"
    ).withColumn("ingested_at", at)
    lake.append(log_df, "silver.ingestion_log")
    return report


def enforce_reject_rate(report: IngestReport, max_rate: float) -> None:
    """Raise once everything is written when the batch rejected more than ``max_rate`` of its records."""
    if report.reject_rate > max_rate:
        raise RejectRateError(
            f"batch {report.batch_id}: {report.quarantined:,} of {report.read:,} records rejected "
            f"({report.reject_rate:.1%} > quality.max_reject_rate {max_rate:.1%}); see silver.quarantine"
        )

"""Conforming: the records of one input kind, typed, resolved against the references and checked.

Each ``conform_*`` is a pure function of the reader's records (``mobility.ingest.readers``) and the
references: valid records have a null ``_reason``, rejected ones the first failed check (``checks``). ROME
codes of either referential are valid; a code that both know (ROME 4.0 reused some v3 codes) is read in the
version in force on the record's date (``reference.rome_v4_from``), and each code is stored with its
``rome_version`` and ``rome_v3``, the common level. A commune code resolves to its département and region
(Paris, Lyon and Marseille by arrondissement or by city code); an offer's place to the finest level it
states (``references.resolve_place``).

The checks across tables (a hire of a seeker without any spell, a hire filling an offer created after it)
run on narrow columns: the few failing keys are found first, then broadcast back to flag their records.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from mobility.ingest import formats
from mobility.ingest.checks import Check, classify, duplicate_flags, flag, is_empty, missing_fields
from mobility.ingest.references import References, resolve_commune, resolve_place, resolve_rome

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
    "code_commune", "code_departement", "code_region", "country", "lat", "lng", "contract", "positions",
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


# ------------------------------------------------------------------------------------------- records


POSITIONS = ("source_file", "line", "_block", "_mid")


def _carried(df: DataFrame) -> list[str]:
    """Where each record was read (its line, or the split position that numbers it later) and its raw text."""
    return [c for c in POSITIONS if c in df.columns] + ["raw"]


def _split_fields(records: DataFrame, layout: formats.CsvLayout) -> DataFrame:
    """The record's place and structure, and each column of the layout (trimmed, null when empty)."""
    return records.select(
        *_carried(records), "n_fields", "n_columns", "missing_columns", "read_error", *layout.columns
    )


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


def row_hash(columns: Sequence[str | Column]) -> Column:
    """A hash of a row's content (named columns, or expressions aliased to them): equal rows, equal hash."""
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
        *_carried(df), "_reason", "_message",
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
    return df


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
        *_carried(df), "_reason", "_message",
        F.col("IDX").alias("seeker_id"),
        F.col("_start").alias("start_date"),
        F.col("_end").alias("end_date"),
        F.col("ROME").alias("rome"), "rome_version", "rome_v3",
    )  # fmt: skip
    return df


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
        *_carried(df), "_reason", "_message",
        F.col("IDX").alias("seeker_id"),
        F.col("_datemb").alias("hire_date"),
        F.col("ROME").alias("rome"), "rome_version", "rome_v3",
        F.col("DEPCOM").alias("code_commune"), "code_departement", "code_region",
        F.col("TYPCTR").alias("contract"),
        months.alias("duration_months"),
        F.col("OFFRE_ID").alias("offer_id"),
    )  # fmt: skip
    return df


def conform_offers(records: DataFrame, refs: References) -> DataFrame:
    """Job offers from the API: typed, place resolved, checked; the newest version of an id wins."""
    offer = F.from_json(F.col("raw"), OFFER_SCHEMA, {"columnNameOfCorruptRecord": "_corrupt"})
    df = records.withColumn("_o", offer)
    place = F.col("_o.lieuTravail")
    df = df.select(
        *_carried(df), "page_error",
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
        *_carried(df), "_reason", "_message",
        F.col("id").alias("offer_id"), "created_at", "updated_at",
        F.col("romeCode").alias("rome"), "rome_version", "rome_v3",
        "place_level", "place_label", "code_commune", "code_departement", "code_region", "country",
        "lat", "lng",
        "contract", F.coalesce(positions, F.lit(1)).alias("positions"), "qualification", "sector", "title",
    )  # fmt: skip
    return df


# ------------------------------------------------------------------------------- checks across records

_KEY_NAMES = {"spells": "IDX and DATINS", "sought_changes": "IDX and JOURDV", "hires": "IDX and DATEMB",
              "offers": "offer id"}  # fmt: skip


def positions_of(df: DataFrame) -> list[str]:
    """The columns that say where each record was read: file and line, or file and split position."""
    return [c for c in POSITIONS if c in df.columns]


def duplicates(table: str, df: DataFrame) -> DataFrame:
    """Flags of every valid record of ``table`` but the first of its natural key: the first read (file, line,
    or the split position that gives it), and for offers the newest version (``updated_at``) first."""
    positions = positions_of(df)
    order = [("updated_at", True)] if table == "offers" else []
    order += [(c, False) for c in positions]
    return duplicate_flags(df, TABLES[table][1], order, _KEY_NAMES[table], positions)


def unknown_seekers(df: DataFrame, known: DataFrame) -> DataFrame:
    """Flags of records of job seekers who have no registration spell (``known``: ``seeker_id`` of this
    batch's valid spells and of silver). The seekers of ``df`` missing from ``known`` are found on the ids
    alone, then only their records are read for their positions."""
    valid = df.where(F.col("_reason").isNull() & F.col("seeker_id").isNotNull())
    unknown = valid.select("seeker_id").distinct().join(known, "seeker_id", "left_anti")
    rows = valid.select("seeker_id", *positions_of(df)).join(F.broadcast(unknown), "seeker_id", "left_semi")
    return flag(rows, positions_of(df), "unknown_seeker", F.lit("no registration spell of this job seeker"))


def offers_after_hires(hires: DataFrame, offers: DataFrame) -> DataFrame:
    """Flags of hires that fill an offer created after the hire date (``offers``: ``offer_id``,
    ``created_at``)."""
    created = offers.select("offer_id", F.to_date("created_at").alias("_created"))
    rows = (
        hires.where(F.col("_reason").isNull() & F.col("offer_id").isNotNull())
        .select("offer_id", "hire_date", *positions_of(hires))
        .join(created, "offer_id")
        .where(F.col("_created") > F.col("hire_date"))
    )
    message = F.format_string(
        "offer %s was created on %s, after the hire", F.col("offer_id"), F.col("_created")
    )
    return flag(rows, positions_of(hires), "offer_after_hire", message)

"""The input formats, shared by the generator that writes them and the ingestion that reads them.

The layouts follow the public employment service's historical file (FHS) and the job-offers API v2
(``../shared/DESIGN.md``, "Inputs"). CSV files are ``;``-separated with a header, dates ISO ``YYYY-MM-DD``,
an empty field meaning unknown (or, for an end date, still open). Columns beyond those listed here are kept
in bronze and ignored after.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

CSV_SEPARATOR = ";"
# Pages of the offers API hold at most this many offers.
OFFERS_PAGE_SIZE = 150


@dataclass(frozen=True)
class CsvLayout:
    """A CSV input kind: its file-name pattern, every column it has, and those a record cannot lack."""

    kind: str
    pattern: str
    columns: tuple[str, ...]
    mandatory: tuple[str, ...]


DE = CsvLayout(
    kind="de",
    pattern="de*.csv",
    columns=(
        "IDX",
        "DATINS",
        "DATANN",
        "MOTINS",
        "MOTANN",
        "CATREGR",
        "DEPCOM",
        "ROME",
        "ROMEAPL",
        "SEXE",
        "NIVFOR",
        "ANNAIS",
    ),  # fmt: skip
    mandatory=("IDX", "DATINS", "CATREGR", "DEPCOM", "ROME"),
)
ROME = CsvLayout(
    kind="rome",
    pattern="rome*.csv",
    columns=("IDX", "ROME", "JOURDV", "JOURFV"),
    mandatory=("IDX", "ROME", "JOURDV"),
)
HIRES = CsvLayout(
    kind="hires",
    pattern="hires*.csv",
    columns=("IDX", "DATEMB", "ROME", "DEPCOM", "TYPCTR", "DUREE", "OFFRE_ID"),
    mandatory=("IDX", "DATEMB", "ROME", "DEPCOM"),
)
CSV_LAYOUTS: Mapping[str, CsvLayout] = {layout.kind: layout for layout in (DE, ROME, HIRES)}

# Job offers: raw API responses {"resultats": [...]} in offers*.json, or one offer per line in offers*.jsonl.
OFFERS_PATTERNS = ("offers*.json", "offers*.jsonl")
OFFER_MANDATORY = ("id", "dateCreation", "romeCode")

# FHS codes.
MOTANN_BACK_TO_WORK = "01"
MOTANN_TRAINING = "02"
END_REASONS: Mapping[str, str] = {
    "01": "back to work",
    "02": "entering training",
    "03": "sickness or maternity",
    "04": "cancelled (administrative)",
    "05": "failed to renew",
    "06": "other",
}
CATEGORIES = ("1", "2", "3", "4", "5")  # 1-3 are the categories A, B, C counted in the stock
SEXES = ("1", "2")
EDUCATION_LEVELS = ("AFS", "CFG", "C3A", "C12", "NV5", "NV4", "NV3", "NV2", "NV1")
CONTRACT_TYPES = ("CDI", "CDD", "MIS", "SAI", "LIB", "FRA", "DIN")


# Every reason a record can be quarantined for. The generator's defect list names these codes.
REASONS: Mapping[str, str] = {
    "schema": "the file lacks a mandatory column: every record of it is rejected",
    "malformed": "the record does not parse (wrong number of fields, invalid or truncated JSON)",
    "missing_field": "a mandatory field is empty",
    "bad_date": "a date is not a valid YYYY-MM-DD (or ISO timestamp for offers)",
    "date_order": "an end date is before its start date",
    "unknown_rome": "the ROME code is in neither referential",
    "unknown_commune": "the commune or département does not exist",
    "bad_value": "a coded field holds a value outside its code list (category, sex, number)",
    "duplicate": "the same record (natural key) was already read in this batch",
    "unknown_seeker": "a hire or a change of occupation of a job seeker who has no registration spell",
    "offer_after_hire": "the hire fills an offer created after the hire date",
    "unknown_place": "the offer's place cannot be read at any level",
}

"""Simulated records in the real input formats: FHS-like ``;`` CSV and job-offers API v2 JSON.

CSV bodies are written by pyarrow from string columns (no quoting: no field holds ``;``, and pyarrow fails
rather than write one unquoted). Offers are JSON texts assembled from fragments escaped once per label, so
that a chunk of tens of thousands of offers costs one string format per offer.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from mobility.ingest import formats
from mobility.synth.model import Model
from mobility.synth.simulate import Table, offer_id, seeker_idx

DE_COLUMNS = (*formats.DE.columns, "LIBCOM")

# Cosmetic vocabularies of offers (the ingestion keeps them in bronze only).
COUNTRIES = ("Belgique", "Suisse", "Luxembourg", "Allemagne", "Espagne", "Monaco", "Royaume-Uni", "Canada")
EMPLOYERS = (
    "ATELIERS DU VAL", "GROUPE HORIZON", "SOCIETE NOUVELLE MARTIN", "SERVICES ET PROXIMITE",
    "BATI OUEST", "CLINIQUE DES TILLEULS", "TRANSPORTS DELORME", "RESTAURATION DU MIDI",
    "MAISON BERTRAND", "COOPERATIVE DES PLAINES", "CABINET LEROY ET ASSOCIES", "LOGISTIQUE CENTRE",
)  # fmt: skip
AGENCIES = ("TEMPO INTERIM", "INTERIM PLUS", "ALTER TRAVAIL TEMPORAIRE", "MISSIONS EMPLOI")
CONTRACT_LABELS = {
    "CDI": "Contrat à durée indéterminée",
    "CDD": "Contrat à durée déterminée",
    "MIS": "Mission intérimaire",
    "SAI": "Contrat travail saisonnier",
    "LIB": "Profession libérale",
    "FRA": "Franchise",
    "DIN": "CDI intérimaire",
}
QUALIFICATION_LABELS = {
    "1": "Manoeuvre", "2": "Ouvrier spécialisé", "3": "Ouvrier qualifié (P1,P2)",
    "4": "Ouvrier qualifié (P3,P4,OHQ)", "5": "Employé non qualifié", "6": "Employé qualifié",
    "7": "Technicien", "8": "Agent de maîtrise", "9": "Cadre",
}  # fmt: skip
# NAF division of an offer's employer by grand domaine; temporary-work agencies for MIS and DIN.
SECTORS = {
    "A": ("01", "Culture et production animale, chasse et services annexes"),
    "B": ("90", "Activités créatives, artistiques et de spectacle"),
    "C": ("64", "Activités des services financiers, hors assurance et caisses de retraite"),
    "D": ("47", "Commerce de détail, à l'exception des automobiles et des motocycles"),
    "E": ("58", "Édition"),
    "F": ("43", "Travaux de construction spécialisés"),
    "G": ("56", "Restauration"),
    "H": ("25", "Fabrication de produits métalliques, à l'exception des machines et des équipements"),
    "I": ("33", "Réparation et installation de machines et d'équipements"),
    "J": ("86", "Activités pour la santé humaine"),
    "K": ("88", "Action sociale sans hébergement"),
    "L": ("90", "Activités créatives, artistiques et de spectacle"),
    "M": ("70", "Activités des sièges sociaux ; conseil de gestion"),
    "N": ("49", "Transports terrestres et transport par conduite"),
}
AGENCY_SECTOR = ("78", "Activités des agences de travail temporaire")


def _j(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def dumps(offer: dict) -> str:
    """An offer as the generator writes it (compact, UTF-8)."""
    return json.dumps(offer, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Codebook:
    """Strings of the model's index spaces, as pyarrow arrays (CSV) and JSON fragments (offers)."""

    code: pa.Array
    appel_ogr: pa.Array
    com_code: pa.Array
    com_name: pa.Array
    code_json: np.ndarray  # '"M1805"'
    code_label_json: np.ndarray
    appel_label: np.ndarray  # plain labels (for intitule)
    appel_label_json: np.ndarray
    place_json: dict[str, np.ndarray]  # place kind -> fragment per commune (or per region / country)
    sector_json: np.ndarray  # per grand domaine
    com_region: np.ndarray


def codebook(model: Model) -> Codebook:
    """The strings of a model, built once per process."""
    dep_of = model.com_dep
    label_dep = model.dep_code[dep_of]
    names = model.com_name
    libelle = np.array(
        [_j(f"{d} - {n}") for d, n in zip(label_dep.tolist(), names.tolist(), strict=True)], object
    )
    lat = [f"{x:.6f}".rstrip("0").rstrip(".") for x in np.nan_to_num(model.com_lat).tolist()]
    lng = [f"{x:.6f}".rstrip("0").rstrip(".") for x in np.nan_to_num(model.com_lng).tolist()]
    postal = [f',"codePostal":"{c}"' if c else "" for c in model.com_postal.tolist()]
    code = model.com_code.tolist()
    commune = [
        f'{{"libelle":{lb},"latitude":{la},"longitude":{lo}{pc_},"commune":"{c}"}}'
        for lb, la, lo, pc_, c in zip(libelle.tolist(), lat, lng, postal, code, strict=True)
    ]
    no_coords = [
        f'{{"libelle":{lb}{pc_},"commune":"{c}"}}' for lb, pc_, c in zip(libelle, postal, code, strict=True)
    ]
    postal_only = [
        f'{{"libelle":{lb}{pc_}}}' if pc_ else f'{{"libelle":{lb}}}'
        for lb, pc_ in zip(libelle, postal, strict=True)
    ]
    dep_only = [f'{{"libelle":{lb}}}' for lb in libelle.tolist()]
    region_of = model.dep_region[dep_of]
    region = np.array([f'{{"libelle":{_j(n)}}}' for n in model.region_name.tolist()], object)[region_of]
    sectors = [
        f'"secteurActivite":"{SECTORS[g][0]}","secteurActiviteLibelle":{_j(SECTORS[g][1])}'
        for g in model.grands_domaines
    ]
    return Codebook(
        code=pa.array(model.code.tolist(), pa.string()),
        appel_ogr=pa.array(model.appel_ogr.tolist(), pa.string()),
        com_code=pa.array(code, pa.string()),
        com_name=pa.array(names.tolist(), pa.string()),
        code_json=np.array([_j(c) for c in model.code.tolist()], object),
        code_label_json=np.array([_j(c) for c in model.code_label.tolist()], object),
        appel_label=model.appel_label,
        appel_label_json=np.array([_j(c) for c in model.appel_label.tolist()], object),
        place_json={
            "commune": np.array(commune, object),
            "commune_no_coords": np.array(no_coords, object),
            "postal_code": np.array(postal_only, object),
            "departement": np.array(dep_only, object),
            "region": region,
            "national": np.full(len(code), '{"libelle":"France"}', object),
            "abroad": np.array([f'{{"libelle":{_j("99 - " + c)}}}' for c in COUNTRIES], object),
        },
        sector_json=np.array(sectors, object),
        com_region=region_of,
    )


# ---------------------------------------------------------------------------------------------- CSV


def _strings(values: np.ndarray, blank: np.ndarray | None = None) -> pa.Array:
    return pa.array(values.tolist() if values.dtype == object else values, pa.string(), mask=blank)


def _dates(days: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(days.astype(np.int32), pa.date32(), mask=days < 0), pa.string())


def _ints(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values.astype(np.int64)), pa.string())


def _take(strings: pa.Array, index: np.ndarray) -> pa.Array:
    return strings.take(pa.array(index, pa.int64(), mask=index < 0))


def csv_body(table: pa.Table) -> bytes:
    """Rows without header, ``;``-separated, empty for null."""
    sink = io.BytesIO()
    pcsv.write_csv(
        table,
        sink,
        pcsv.WriteOptions(include_header=False, delimiter=formats.CSV_SEPARATOR, quoting_style="none"),
    )
    return sink.getvalue()


def header(columns: tuple[str, ...]) -> bytes:
    return (formats.CSV_SEPARATOR.join(columns) + "\n").encode()


def de_table(book: Codebook, seekers: Table, spells: Table) -> pa.Table:
    s = spells["seeker"]
    depcom = seekers["depcom"][s]
    return pa.table(
        {
            "IDX": _ints(seeker_idx(seekers["number"][s])),
            "DATINS": _dates(spells["datins"]),
            "DATANN": _dates(spells["datann"]),
            "MOTINS": _strings(spells["motins"]),
            "MOTANN": _strings(spells["motann"], spells["motann"] == ""),
            "CATREGR": _strings(spells["category"]),
            "DEPCOM": _take(book.com_code, depcom),
            "ROME": _take(book.code, spells["code"]),
            "ROMEAPL": _take(book.appel_ogr, spells["appellation"]),
            "SEXE": _strings(seekers["sex"][s]),
            "NIVFOR": _strings(seekers["education"][s]),
            "ANNAIS": _ints(seekers["birth_year"][s]),
            "LIBCOM": _take(book.com_name, depcom),
        }
    )


def rome_table(book: Codebook, seekers: Table, changes: Table) -> pa.Table:
    return pa.table(
        {
            "IDX": _ints(seeker_idx(seekers["number"][changes["seeker"]])),
            "ROME": _take(book.code, changes["code"]),
            "JOURDV": _dates(changes["day"]),
            "JOURFV": _dates(changes["end"]),
        }
    )


def hires_table(book: Codebook, seekers: Table, hires: Table, offers: Table) -> pa.Table:
    offer = hires["offer"]
    ids = offer_id(offers["number"][np.maximum(offer, 0)]) if len(offer) else np.array([], "<U7")
    return pa.table(
        {
            "IDX": _ints(seeker_idx(seekers["number"][hires["seeker"]])),
            "DATEMB": _dates(hires["day"]),
            "ROME": _take(book.code, hires["code"]),
            "DEPCOM": _take(book.com_code, hires["commune"]),
            "TYPCTR": _strings(hires["contract"]),
            "DUREE": pc.cast(pa.array(hires["months"], pa.int64(), mask=hires["months"] <= 0), pa.string()),
            "OFFRE_ID": _strings(ids, offer < 0),
        }
    )


# ---------------------------------------------------------------------------------------------- JSON


def _timestamps(ms: np.ndarray) -> list[str]:
    return [t + "Z" for t in np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms").tolist()]


def offer_texts(model: Model, book: Codebook, offers: Table) -> list[str]:
    """Each offer as a compact JSON object in the API v2 shape."""
    n = len(offers["day"])
    if n == 0:
        return []
    ids = offer_id(offers["number"]).tolist()
    commune = offers["commune"]
    place = offers["place"]
    lieu = np.empty(n, object)
    for kind, fragments in book.place_json.items():
        at = place == kind
        if kind == "abroad":
            lieu[at] = fragments[offers["country"][at] % len(fragments)]
        else:
            lieu[at] = fragments[commune[at]]
    code = offers["code"]
    appel = offers["appellation"]
    has_appel = appel >= 0
    appel_label = np.where(has_appel, book.appel_label[np.maximum(appel, 0)], model.code_label[code])
    appel_json = np.where(has_appel, book.appel_label_json[np.maximum(appel, 0)], book.code_label_json[code])
    contract = offers["contract"]
    agency = np.isin(contract, ["MIS", "DIN"])
    sector = np.where(
        agency,
        f'"secteurActivite":"{AGENCY_SECTOR[0]}","secteurActiviteLibelle":{_j(AGENCY_SECTOR[1])}',
        book.sector_json[model.occ_grand_domaine[offers["occupation"]]],
    )
    pick = offers["country"]
    employer = np.where(
        agency,
        np.array([_j(a) for a in AGENCIES], object)[pick % len(AGENCIES)],
        np.array([_j(e) for e in EMPLOYERS], object)[pick % len(EMPLOYERS)],
    )
    contract_json = {
        c: f'"typeContrat":"{c}","typeContratLibelle":{_j(lbl)}' for c, lbl in CONTRACT_LABELS.items()
    }
    qualification_json = {
        q: f'"qualificationCode":"{q}","qualificationLibelle":{_j(lbl)}'
        for q, lbl in QUALIFICATION_LABELS.items()
    }
    columns = zip(
        ids,
        [_j(f"{a} (H/F)") for a in appel_label.tolist()],
        _timestamps(offers["created_ms"]),
        _timestamps(offers["updated_ms"]),
        lieu.tolist(),
        book.code_json[code].tolist(),
        book.code_label_json[code].tolist(),
        appel_json.tolist(),
        employer.tolist(),
        [contract_json[c] for c in contract.tolist()],
        offers["positions"].tolist(),
        [qualification_json[q] for q in offers["qualification"].tolist()],
        sector.tolist(),
        strict=True,
    )
    return [
        f'{{"id":"{i}","intitule":{title},"description":{title},"dateCreation":"{created}",'
        f'"dateActualisation":"{updated}","lieuTravail":{where},"romeCode":{rc},"romeLibelle":{rl},'
        f'"appellationlibelle":{al},"entreprise":{{"nom":{emp}}},{ct},"natureContrat":"Contrat travail",'
        f'"nombrePostes":{pos},{ql},{sec},"alternance":false,'
        f'"origineOffre":{{"origine":"1","urlOrigine":"https://candidat.francetravail.fr/offres/recherche/detail/{i}"}}}}'
        for i, title, created, updated, where, rc, rl, al, emp, ct, pos, ql, sec in columns
    ]


def page(texts: list[str]) -> str:
    """A raw API response holding these offers."""
    return '{"resultats":[' + ",".join(texts) + "]}"

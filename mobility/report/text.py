"""The report's words in French (the default: the service and the jury read French) and English, and the
number formats of each language."""

from __future__ import annotations

import math
from dataclasses import dataclass

LANGS = ("fr", "en")

_T: dict[str, tuple[str, str]] = {
    # page
    "title": ("Mobilité professionnelle des demandeurs d'emploi", "Professional mobility of job seekers"),
    "subtitle": (
        "Flux entre métiers et régions, marché du travail et recommandations de mobilité",
        "Flows between occupations and regions, labour market and mobility recommendations",
    ),
    "generated": (
        "Rapport produit le {day} à partir du lac {lake}.",
        "Report written on {day} from the lake {lake}.",
    ),
    "coverage": ("Mobilités de {first} à {last}.", "Moves from {first} to {last}."),
    "privacy_note": (
        "Seules des valeurs publiées figurent ici : tout effectif de personnes inférieur à {m} est masqué, "
        "ainsi que les cases qui permettraient de le retrouver. Les totaux sont des sommes de cases publiées, "
        "donc des minorants.",
        "Only published values appear here: every count of people under {m} is withheld, and so are the cells "
        "that would give it back. Totals are sums of published cells, hence lower bounds.",
    ),
    "contents": ("Sommaire", "Contents"),
    # sections
    "s_key": ("Chiffres clés", "Key figures"),
    "s_regions": ("Flux entre régions", "Flows between regions"),
    "s_occupations": ("Mobilités entre métiers", "Moves between occupations"),
    "s_delay": ("Délais et offres", "Time to move and job offers"),
    "s_tension": ("Tensions sur le marché du travail", "Labour-market tension"),
    "s_model": ("Le recommandeur", "The recommender"),
    "s_quality": ("Qualité des données", "Data quality"),
    "s_method": ("Méthodologie et définitions", "Methodology and definitions"),
    "s_exports": ("Fichiers exportés", "Exported files"),
    # key figures
    "k_moves": (
        "Mobilités observées (retours à l'emploi et réorientations)",
        "Moves observed (hires and reorientations)",
    ),
    "k_hires": ("dont retours à l'emploi", "of which hires"),
    "k_reorientations": (
        "dont réorientations (changement de métier recherché)",
        "of which reorientations (change of occupation sought)",
    ),
    "k_region": (
        "Part des mobilités qui changent de région (régions connues)",
        "Share of moves changing region (regions known)",
    ),
    "k_occupation": ("Part des mobilités qui changent de métier", "Share of moves changing occupation"),
    "k_days": (
        "Délai de l'inscription à la mobilité (médianes publiées, moyenne pondérée)",
        "Time from registration to move (published medians, weighted mean)",
    ),
    "k_stock": (
        "Demandeurs d'emploi en fin de mois (catégories A, B, C), {month}",
        "Job seekers at month end (categories A, B, C), {month}",
    ),
    "k_offers": ("Offres publiées, {month}", "Offers published, {month}"),
    "k_tension": ("Offres par demandeur, {month}", "Offers per job seeker, {month}"),
    "k_periods": ("Périodes", "Periods"),
    "k_suppressed": ("Cases région x région masquées", "Region x region cells withheld"),
    "days": ("{n} jours", "{n} days"),
    # charts
    "c_flow_map": (
        "Carte des flux entre régions (métropole) : les {n} premiers flux et le solde de chaque région",
        "Map of flows between regions (mainland): the {n} largest flows and each region's balance",
    ),
    "c_flow_map_none": (
        "Solde de chaque région (métropole) ; aucun flux entre régions n'est publié",
        "Each region's balance (mainland); no flow between regions is published",
    ),
    "c_flow_map_note": (
        "Cercles : solde des arrivées et des départs (vert : gagne, rouge : perd), placés au centroïde "
        "de la région ; traits : flux d'une région à l'autre, épaisseur selon le nombre de mobilités.",
        "Circles: arrivals minus departures (green: gains, red: loses), at the region's centroid; "
        "lines: moves from one region to another, thicker for more moves.",
    ),
    "c_region_matrix": (
        "Mobilités d'une région à une autre (hors mobilités internes)",
        "Moves from one region to another (internal moves left out)",
    ),
    "c_overseas": ("Régions d'outre-mer (hors carte)", "Overseas regions (off the map)"),
    "c_sankey": (
        "Mobilités qui changent de grand domaine : d'origine (à gauche) et d'arrivée (à droite)",
        "Moves changing grand domaine: of origin (left) and of destination (right)",
    ),
    "c_occupation_sankey": (
        "Les {n} principales passerelles d'un métier (à gauche) vers un autre (à droite)",
        "The {n} main passes from one occupation (left) to another (right)",
    ),
    "c_leaving": ("Métiers que l'on quitte le plus", "Occupations most left"),
    "c_arriving": ("Métiers que l'on rejoint le plus", "Occupations most joined"),
    "c_delay": (
        "Délai de mobilité par grand domaine d'origine (médianes publiées, moyenne pondérée par les mobilités)",
        "Time to move by grand domaine of origin (published medians, mean weighted by moves)",
    ),
    "c_offers_share": (
        "Part des retours à l'emploi passés par une offre publiée",
        "Share of hires made through a published offer",
    ),
    "c_market": (
        "Demandeurs en stock et offres publiées par mois",
        "Job seekers in stock and offers published per month",
    ),
    "c_tense": (
        "Les métiers les plus en tension sur les {n} derniers mois",
        "The tensest occupations over the last {n} months",
    ),
    "c_tension_region": (
        "Tension par région et par mois (offres par demandeur)",
        "Tension by region and month (offers per seeker)",
    ),
    "c_models": ("Modèles comparés sur la période de test", "Models compared on the test window"),
    "c_disparities": (
        "Écarts du champion par segment (hit@10 sur la période de test)",
        "The champion's disparities by segment (hit@10 on the test window)",
    ),
    "no_data": (
        "aucune valeur publiée (toutes masquées ou absentes)",
        "no published value (all withheld or absent)",
    ),
    # axes and series
    "moves": ("Mobilités", "Moves"),
    "hires": ("Retours à l'emploi", "Hires"),
    "share": ("Part", "Share"),
    "inflow": ("Arrivées", "Arrivals"),
    "outflow": ("Départs", "Departures"),
    "net": ("Solde", "Net"),
    "internal": ("Internes", "Internal"),
    "from_region": ("Région d'origine", "Region of origin"),
    "to_region": ("Région d'arrivée", "Region of destination"),
    "month": ("Mois", "Month"),
    "period": ("Période", "Period"),
    "stock": ("Demandeurs en stock", "Job seekers in stock"),
    "registrations": ("Inscriptions", "Registrations"),
    "exits": ("Sorties vers l'emploi", "Exits to work"),
    "offers": ("Offres publiées", "Offers published"),
    "tension": ("Tension (offres par demandeur)", "Tension (offers per seeker)"),
    "median_days": ("Délai médian (jours)", "Median time (days)"),
    "leaving": ("Départs vers un autre métier", "Moves to another occupation"),
    "arriving": ("Arrivées d'un autre métier", "Moves from another occupation"),
    # passes
    "passes_title": ("Les principales passerelles entre métiers", "The main passes between occupations"),
    "passes_note": (
        "Les {n} mobilités d'un métier vers un autre les plus fréquentes, toutes périodes confondues ; "
        "« lien ROME » : le lien officiel du référentiel (proche, évolution) s'il existe.",
        "The {n} most frequent moves from one occupation to another, all periods together; "
        '"ROME link": the referential\'s official link (close, evolution) when there is one.',
    ),
    "from_occupation": ("Métier d'origine", "Occupation of origin"),
    "to_occupation": ("Métier d'arrivée", "Occupation of destination"),
    "share_of_movers": ("Part des mobilités du métier", "Share of the occupation's moves"),
    "rome_link": ("Lien ROME", "ROME link"),
    "link_proche": ("proche", "close"),
    "link_evolution": ("évolution", "evolution"),
    "link_none": ("aucun", "none"),
    "tense_table": ("Métier", "Occupation"),
    "mean_stock": ("Stock moyen", "Mean stock"),
    # model card
    "m_none": (
        "Aucun modèle champion n'est enregistré : lancez `mobility train`.",
        "No champion model is registered: run `mobility train`.",
    ),
    "m_champion": (
        "Champion : {model} (version {version} de {name}), entraîné le {day}.",
        "Champion: {model} (version {version} of {name}), trained on {day}.",
    ),
    "m_windows": (
        "Apprentissage sur les mobilités avant le {cutoff} ; test du {test_start} au {test_end} (exclu).",
        "Learnt on the moves before {cutoff}; tested from {test_start} to {test_end} (excluded).",
    ),
    "m_decision": ("Décision : {reason}", "Decision: {reason}"),
    "m_metrics": ("Mesures sur la période de test", "Metrics on the test window"),
    "m_runs": ("Derniers entraînements de chaque modèle", "Latest training of each model"),
    "m_data": ("Versions des tables lues (Delta)", "Versions of the tables read (Delta)"),
    "m_segments": ("Par segment", "By segment"),
    "m_segments_note": (
        "Un segment de moins de {m} exemples est masqué.",
        "A segment of fewer than {m} examples is withheld.",
    ),
    "m_limits": ("Limites", "Limits"),
    "m_limits_text": (
        "Le modèle recommande là où des demandeurs semblables ont retrouvé un emploi : il reproduit les "
        "mobilités passées, y compris leurs biais (par exemple entre femmes et hommes, que le modèle n'utilise "
        "pas comme variable mais dont les écarts sont mesurés ci-dessus). Il ne connaît ni les souhaits ni les "
        "compétences de la personne. Ses tables s'arrêtent à la date de fin d'apprentissage : le réentraîner "
        "chaque mois. Les mesures portent sur des retours à l'emploi observés, pas sur l'effet d'une "
        "recommandation.",
        "The model recommends where similar job seekers found work: it repeats past moves, their biases "
        "included (between women and men, for instance: sex is not a feature, but its disparities are "
        "measured above). It knows neither the person's wishes nor their skills. Its tables stop at the end of "
        "its learning window: retrain it monthly. The metrics are on observed hires, not on the effect of a "
        "recommendation.",
    ),
    "model": ("Modèle", "Model"),
    "version": ("Version", "Version"),
    "champion": ("Champion", "Champion"),
    "yes": ("oui", "yes"),
    "no": ("non", "no"),
    "table": ("Table", "Table"),
    "segment": ("Segment", "Segment"),
    "value": ("Valeur", "Value"),
    "examples": ("Exemples", "Examples"),
    "withheld": ("masqué", "withheld"),
    "metric": ("Mesure", "Metric"),
    "seg_age_band": ("Âge", "Age"),
    "seg_sex": ("Sexe", "Sex"),
    "seg_education": ("Formation", "Education"),
    "seg_from_region": ("Région", "Region"),
    "sex_1": ("hommes", "men"),
    "sex_2": ("femmes", "women"),
    "met_coverage": ("couverture", "coverage"),
    "met_calibration": ("écart de calibration", "calibration error"),
    "met_examples": ("exemples", "examples"),
    "q_batch": ("Lot", "Batch"),
    "q_when": ("Ingéré le", "Ingested on"),
    # quality
    "q_read": ("Lus", "Read"),
    "q_valid": ("Valides", "Valid"),
    "q_quarantined": ("En quarantaine", "Quarantined"),
    "q_files": ("Fichiers", "Files"),
    "q_reason": ("Motif", "Reason"),
    "q_records": ("Enregistrements", "Records"),
    "q_none": ("Aucun enregistrement n'a été mis en quarantaine.", "No record was quarantined."),
    "q_note": (
        "Les {n} derniers lots ingérés, par table d'entrée, et leurs rejets par motif. Ce sont des nombres "
        "d'enregistrements (lignes de fichiers), pas de personnes ; aucun enregistrement n'est montré.",
        "The last {n} batches ingested, per input table, and their rejects per reason. These are numbers of "
        "records (lines of files), not of people; no record is shown.",
    ),
    # exports
    "e_note": (
        "Les vues publiées, au format CSV (séparateur virgule, UTF-8) et Parquet, avec leur dictionnaire "
        "des données :",
        "The published views, as CSV (comma-separated, UTF-8) and Parquet, with their data dictionary:",
    ),
    "e_rows": ("lignes", "rows"),
}

# Definitions shown in the methodology section: (term, French, English).
DEFINITIONS: tuple[tuple[str, str, str], ...] = (
    (
        "Mobilité / Move",
        "Un retour à l'emploi (embauche) ou un changement du métier recherché au cours d'une inscription. L'origine "
        "est le métier recherché et le lieu de l'inscription à la date de la mobilité ; la destination, le métier et "
        "le lieu de l'embauche (ou le nouveau métier recherché).",
        "A return to work (hire) or a change of the occupation sought during a registration spell. The origin is the "
        "occupation sought and the spell's place on the day of the move; the destination, the hire's occupation and "
        "workplace (or the new occupation sought).",
    ),
    (
        "Métier / Occupation",
        "Une fiche du Répertoire opérationnel des métiers et des emplois (ROME), comparée au niveau des fiches ROME v3 "
        "(une fiche ROME 4.0 est rattachée à sa fiche v3 officielle).",
        "A fiche of the ROME referential, compared at the level of the v3 fiches (a ROME 4.0 fiche maps to its "
        "official v3 parent).",
    ),
    (
        "Stock / Stock",
        "Demandeurs inscrits en fin de mois en catégories A, B ou C.",
        "Job seekers registered at a month's end in categories A, B or C.",
    ),
    (
        "Tension / Tension",
        "Offres d'emploi publiées dans le mois par demandeur en stock en fin de mois, pour un métier et un lieu.",
        "Job offers published in the month per job seeker in stock at the month's end, for an occupation and place.",
    ),
    (
        "Passerelle / Pass",
        "Une mobilité fréquente d'un métier vers un autre.",
        "A frequent move from one occupation to another.",
    ),
    (
        "Masquage / Suppression",
        "Un effectif de personnes entre 1 et le seuil moins un est publié vide (masquage primaire) ; d'autres cases "
        "sont masquées pour qu'aucun effectif masqué ne se déduise d'une ligne, d'une colonne ou d'un total publié "
        "(masquage secondaire).",
        "A count of people from 1 to the threshold minus one is published empty (primary suppression); other cells "
        "are withheld so that no suppressed count follows from a row, a column or a published total (secondary "
        "suppression).",
    ),
    (
        "hit@k, MRR, NDCG@10",
        "Part des retours à l'emploi dont la destination réelle figure parmi les k premières recommandations ; "
        "moyenne de l'inverse de son rang ; gain cumulé actualisé normalisé des dix premières.",
        "Share of hires whose real destination is among the first k recommendations; mean of the inverse of its "
        "rank; normalised discounted cumulative gain of the first ten.",
    ),
)

METHOD: dict[str, tuple[str, ...]] = {
    "fr": (
        "Les trajectoires (inscriptions, changements de métier recherché, embauches) et les offres d'emploi "
        "sont lues, contrôlées et pseudonymisées (l'identifiant est remplacé par une empreinte HMAC) dans un lac "
        "Delta ; les enregistrements invalides vont en quarantaine avec leur motif.",
        "Chaque embauche est rattachée à l'inscription en cours (jusqu'à un mois après sa fin) ; les flux "
        "agrègent les mobilités par métier, région et trimestre, le marché compte stock, inscriptions, sorties "
        "vers l'emploi et offres par métier, lieu et mois.",
        "Avant de quitter l'équipe, chaque table passe par le masquage des petits effectifs : ce rapport et ses "
        "exports ne lisent que ces vues publiées.",
        "Le recommandeur apprend, sur les mobilités passées, où des demandeurs semblables (métier, lieu, durée "
        "d'inscription, âge, formation) ont retrouvé un emploi ; il est choisi sur une période de test tenue à "
        "l'écart, et suivi dans MLflow.",
    ),
    "en": (
        "Trajectories (registration spells, changes of the occupation sought, hires) and job offers are read, "
        "checked and pseudonymised (the identifier is replaced by an HMAC digest) into a Delta lake; invalid "
        "records go to quarantine with their reason.",
        "Each hire is attached to the current spell (up to a month after its end); flows add moves up by "
        "occupation, region and quarter, the market counts stock, registrations, exits to work and offers by "
        "occupation, place and month.",
        "Before leaving the team, every table goes through small-count suppression: this report and its "
        "exports read only those published views.",
        "The recommender learns from past moves where similar job seekers (occupation, place, time searching, "
        "age, education) found work; it is chosen on a held-out test window and tracked in MLflow.",
    ),
}

REASONS_FR = {
    "schema": "le fichier n'a pas une colonne obligatoire : tous ses enregistrements sont rejetés",
    "malformed": "l'enregistrement ne se lit pas (nombre de champs, JSON invalide ou tronqué)",
    "missing_field": "un champ obligatoire est vide",
    "bad_date": "une date n'est pas une date AAAA-MM-JJ valide",
    "date_order": "une date de fin précède sa date de début",
    "unknown_rome": "le code ROME n'est dans aucun des deux référentiels",
    "unknown_commune": "la commune ou le département n'existe pas",
    "bad_value": "un champ codé a une valeur hors de sa liste (catégorie, sexe, nombre)",
    "duplicate": "le même enregistrement (clé naturelle) figure déjà dans ce lot",
    "unknown_seeker": "embauche ou changement de métier d'un demandeur sans inscription",
    "offer_after_hire": "l'embauche pourvoit une offre créée après la date d'embauche",
    "unknown_place": "le lieu de l'offre ne se lit à aucun niveau",
}


@dataclass(frozen=True)
class Text:
    """Words and numbers in one language: ``t("key", n=3)``, ``t.int(12345)``, ``t.pct(0.25)``."""

    lang: str
    min_cell: int

    def __post_init__(self) -> None:
        if self.lang not in LANGS:
            raise ValueError(f"unknown language {self.lang!r}: one of {', '.join(LANGS)}")

    @property
    def fr(self) -> bool:
        return self.lang == "fr"

    def __call__(self, key: str, **values: object) -> str:
        fr, en = _T[key]
        return (fr if self.fr else en).format(**values)

    def int(self, n: float | None) -> str:
        if n is None or (isinstance(n, float) and math.isnan(n)):
            return "–"
        text = f"{round(n):,}"
        return text.replace(",", "\u202f") if self.fr else text

    def count(self, n: float | None) -> str:
        """A count of people or records: under ``min_cell`` (and not zero) it shows as "< min_cell"."""
        if n is not None and not (isinstance(n, float) and math.isnan(n)) and 0 < n < self.min_cell:
            return f"< {self.min_cell}"
        return self.int(n)

    def float(self, x: float | None, digits: int = 2) -> str:
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return "–"
        text = f"{x:,.{digits}f}"
        return text.replace(",", "\u202f").replace(".", ",") if self.fr else text

    def pct(self, x: float | None, digits: int = 1) -> str:
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return "–"
        return self.float(100 * x, digits) + ("\u202f%" if self.fr else "%")

    @property
    def separators(self) -> str:
        """Plotly's ``layout.separators``: decimal mark, then thousands separator."""
        return ", " if self.fr else ".,"

    def reason(self, code: str) -> str:
        from mobility.ingest.formats import REASONS

        return REASONS_FR.get(code, code) if self.fr else REASONS.get(code, code)

    def link(self, kind: str | None) -> str:
        return self(f"link_{kind}") if kind in ("proche", "evolution") else self("link_none")

    def metric(self, name: str) -> str:
        """``hit_at_10`` -> hit@10, ``ndcg_at_10`` -> NDCG@10..."""
        if name in ("coverage", "calibration", "examples"):
            return self(f"met_{name}")
        head, _, k = name.partition("_at_")
        return {"hit": "hit", "ndcg": "NDCG", "mrr": "MRR"}.get(head, head) + (f"@{k}" if k else "")

    def segment(self, name: str, value: str, regions: dict[str, str]) -> tuple[str, str]:
        """A segment and its value in words (sex codes and region codes named)."""
        if name == "sex" and value in ("1", "2"):
            value = self(f"sex_{value}")
        elif name == "from_region":
            value = regions.get(value, value)
        return (self(f"seg_{name}") if f"seg_{name}" in _T else name), value

    def definitions(self) -> list[tuple[str, str]]:
        return [(term, fr if self.fr else en) for term, fr, en in DEFINITIONS]

    def method(self) -> tuple[str, ...]:
        return METHOD[self.lang]

"""The generator's model parameters: every number that shapes the synthetic France, in one place.

They are written to ``truth/params.json`` beside the data, so that a recovery test (or an analyst) knows the
exact model the data was drawn from. Rates are per month of 30.4375 days; weights need not sum to 1 (they
are normalised where used). Code lists pair a code with its weight, so that the JSON keeps both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

DAYS_PER_MONTH = 30.4375


@dataclass(frozen=True)
class SynthParams:
    """The ground-truth model; defaults give realistic FHS-like volumes (see bench/README.md)."""

    # --- who the seekers are -------------------------------------------------------------------------
    # Share of seekers already registered when the window opens (the stock), and how long before.
    stock_share: float = 0.4
    stock_max_elapsed_days: int = 730
    women_share: float = 0.52
    # Age at first registration: (lowest age, highest age, weight) bands.
    age_bands: tuple[tuple[int, int, float], ...] = (
        (18, 24, 0.16),
        (25, 34, 0.27),
        (35, 49, 0.32),
        (50, 64, 0.25),
    )
    education_weights: tuple[tuple[str, float], ...] = (
        ("AFS", 0.04), ("CFG", 0.08), ("C3A", 0.05), ("C12", 0.06), ("NV5", 0.30),
        ("NV4", 0.23), ("NV3", 0.11), ("NV2", 0.08), ("NV1", 0.05),
    )  # fmt: skip
    category_weights: tuple[tuple[str, float], ...] = (
        ("1", 0.56),
        ("2", 0.11),
        ("3", 0.19),
        ("4", 0.07),
        ("5", 0.07),
    )
    # Registration reasons (MOTINS): the generator's own list, modelled on the FHS codes; not validated.
    first_registration_reasons: tuple[tuple[str, float], ...] = (
        ("11", 0.06), ("12", 0.14), ("13", 0.05), ("14", 0.30), ("15", 0.10), ("16", 0.15),
        ("17", 0.10), ("18", 0.10),
    )  # fmt: skip
    # MOTINS of a spell that follows a job, by contract type of that job, and after a non-work exit.
    motins_after_contract: tuple[tuple[str, str], ...] = (
        ("CDI", "12"),
        ("CDD", "14"),
        ("MIS", "15"),
        ("SAI", "14"),
    )
    motins_after_other_exit: str = "17"
    # Paris, Lyon and Marseille residents: share whose DEPCOM is the city code rather than the arrondissement.
    city_code_share: float = 0.3
    # Occupations sought per region: DARES employment spread over ROME fiches, plus this floor (a share of
    # the region's mean fiche weight) so that fiches of FAP families without DARES figures still occur.
    occupation_floor: float = 0.05

    # --- time to an exit --------------------------------------------------------------------------
    # Hire hazard: Weibull in the time already spent searching (shape < 1: it decreases with duration);
    # this is its value after one month, for a tension at the national median.
    work_rate_month: float = 0.1
    work_shape: float = 0.75
    # Log-multiplier of the hire hazard per unit of (centred) DARES tension of the occupation and region.
    tension_hazard: float = 0.3
    # Tension values are centred on the national median of FAP tensions and clipped to this range.
    tension_clip: tuple[float, float] = (-2.0, 3.0)
    # Constant hazards of the other exits (MOTANN code, monthly rate).
    other_exit_rates_month: tuple[tuple[str, float], ...] = (
        ("02", 0.010), ("03", 0.006), ("04", 0.016), ("05", 0.018), ("06", 0.006),
    )  # fmt: skip
    # Changes of the occupation sought inside a spell (rows of the ``rome`` file): rate and cap per spell.
    reorientation_rate_month: float = 0.02
    max_reorientations: int = 2
    # DATANN after a hire: the registration closes 0..this many days after DATEMB.
    deregistration_max_days: int = 20

    # --- after a spell ------------------------------------------------------------------------------
    # Probability of registering again, and the mean gap before it (months), by end reason (MOTANN).
    return_probability: tuple[tuple[str, float], ...] = (
        ("01", 0.65), ("02", 0.75), ("03", 0.85), ("04", 0.6), ("05", 0.6), ("06", 0.5),
    )  # fmt: skip
    return_gap_months: tuple[tuple[str, float], ...] = (
        ("01", 1.0), ("02", 6.0), ("03", 3.0), ("04", 3.0), ("05", 2.0), ("06", 4.0),
    )  # fmt: skip
    # Contract of a hire and its length: temporary contracts last 1 + a geometric number of months of this
    # mean; a permanent job lasts an exponential time of mean ``permanent_job_months``.
    contract_weights: tuple[tuple[str, float], ...] = (
        ("CDI", 0.38),
        ("CDD", 0.40),
        ("MIS", 0.18),
        ("SAI", 0.04),
    )
    temporary_extra_months: tuple[tuple[str, float], ...] = (("CDD", 4.0), ("MIS", 1.5), ("SAI", 1.5))
    permanent_job_months: float = 30.0
    # The next spell seeks the occupation of the job just held with this probability, else the previous one.
    seek_last_job_share: float = 0.7

    # --- where a hire goes: the movement model (the ground truth) -----------------------------------
    # Occupation of the job: a mixture over the origin v3 fiche's neighbourhoods. An empty neighbourhood
    # (no 'evolution' link, a domaine of one fiche) gives its weight to the others.
    occ_stay: float = 0.55
    occ_proche: float = 0.20
    occ_evolution: float = 0.08
    occ_domaine: float = 0.12
    occ_elsewhere: float = 0.05
    # "Elsewhere" means one of the hub occupations: the fiches with the most offers nationally.
    elsewhere_hubs: int = 10
    # Inside a neighbourhood, targets are weighted by (national offers) ** this exponent.
    occupation_attraction: float = 0.5
    # Place of the job: stay in the département, one of the region (by population), or a gravity
    # model over départements: population ** a / (distance + offset) ** b, up to a maximum distance (the
    # origin included, at distance 0, so that an isolated département keeps its jobs).
    geo_stay: float = 0.62
    geo_region: float = 0.20
    geo_gravity: float = 0.18
    gravity_population_exponent: float = 1.0
    gravity_distance_exponent: float = 2.0
    gravity_distance_offset_km: float = 30.0
    gravity_max_km: float = 300.0
    # Offers attract moves: the place weight is multiplied by (static offers of the destination occupation
    # in the département + prior * their mean) ** exponent.
    offer_attraction: float = 0.5
    offer_attraction_prior: float = 0.5

    # --- offers ---------------------------------------------------------------------------------------
    # Market offers per seeker and month, and the log-multiplier of offers per seeker per unit of tension.
    offers_per_seeker_month: float = 0.012
    tension_offers: float = 0.8
    # Monthly seasonality of offers (January..December), stronger for the seasonal grands domaines.
    seasonality: tuple[float, ...] = (0.95, 1.0, 1.08, 1.1, 1.08, 1.04, 0.96, 0.78, 1.06, 1.06, 0.98, 0.91)
    seasonal_grands_domaines: tuple[str, ...] = ("A", "G")
    seasonal_amplification: float = 2.5
    # Share of hires that fill an offer: the newest offer of the same occupation and département created
    # in the ``offer_match_days`` before the hire, else an offer published ``filled_offer_lead_days``
    # before it (one the seeker answered).
    via_offer_share: float = 0.35
    offer_match_days: int = 90
    filled_offer_lead_days: tuple[int, int] = (5, 60)
    # How precisely an offer states its place (the job-offers API shapes).
    place_weights: tuple[tuple[str, float], ...] = (
        ("commune", 0.83), ("commune_no_coords", 0.02), ("postal_code", 0.04), ("departement", 0.04),
        ("region", 0.03), ("national", 0.02), ("abroad", 0.02),
    )  # fmt: skip
    # Offers' positions: 1 + a geometric number of this mean.
    extra_positions_mean: float = 0.25
    qualification_weights: tuple[tuple[str, float], ...] = (
        ("1", 0.03), ("2", 0.04), ("3", 0.16), ("4", 0.04), ("5", 0.14), ("6", 0.33), ("7", 0.09),
        ("8", 0.09), ("9", 0.08),
    )  # fmt: skip
    offer_contract_weights: tuple[tuple[str, float], ...] = (
        ("CDI", 0.45), ("CDD", 0.27), ("MIS", 0.22), ("SAI", 0.03), ("LIB", 0.02), ("FRA", 0.005),
        ("DIN", 0.005),
    )  # fmt: skip

    # --- defects (dirty_rate > 0) --------------------------------------------------------------------
    # Extra records of the latin-1 file.
    latin1_records: int = 20

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> SynthParams:
        """The parameters of a truth/params.json (JSON lists back to tuples), to rerun its model."""
        return cls(**{key: _tuples(value) for key, value in values.items()})


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def weights(pairs: tuple[tuple[str, float], ...]) -> tuple[list[str], list[float]]:
    """Codes and their weights, normalised."""
    total = float(sum(w for _, w in pairs))
    return [c for c, _ in pairs], [w / total for _, w in pairs]

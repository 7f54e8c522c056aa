"""One chunk of seekers simulated with numpy only: trajectories, hires and the offers of their market.

A chunk is independent of every other (its own random streams, its own offers), so that chunks can run in
any process and memory is bounded by the chunk size. Times are integer day numbers; an event at a
fractional duration ``T`` after registration happens on day ``DATINS + ceil(T)``, so that every event of a
spell falls strictly after its registration day and two changes of one spell never share a day.

Tables are dicts of equal-length arrays (column name -> array); their columns are listed where they are
built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mobility.ingest import formats
from mobility.synth.model import Model
from mobility.synth.params import DAYS_PER_MONTH, SynthParams, weights

Table = dict[str, np.ndarray]

# Identifiers: one-to-one scrambles of sequence numbers, so that they look arbitrary and never collide.
IDX_BASE = 100_000_000
IDX_SPACE = 900_000_000  # 9-digit IDX values
OFFER_ID_SPACE = 36**7  # 7 characters of [0-9A-Z], like the API's ids
# Multipliers prime to their space (one-to-one maps) and small enough for int64 products.
IDX_SCRAMBLE = 2_654_435_761
OFFER_SCRAMBLE = 100_000_007
OFFER_BLOCK = 2_000_000  # offer numbers reserved per chunk; injected defects use the upper half
_ALPHABET36 = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
_KEY_DAYS = 1 << 20  # (cell, day) packed as cell * _KEY_DAYS + day
# Offer places (keys of params.place_weights) that name a commune, and those that name the département.
COMMUNE_PLACES = ("commune", "commune_no_coords")
DEPARTEMENT_PLACES = (*COMMUNE_PLACES, "departement")
_DAY_MS = 86_400_000


def seeker_idx(numbers: np.ndarray) -> np.ndarray:
    """The IDX of seeker numbers: 9 decimal digits, one-to-one below IDX_SPACE."""
    return IDX_BASE + (np.asarray(numbers, np.int64) % IDX_SPACE * IDX_SCRAMBLE + 12_345) % IDX_SPACE


def offer_id(numbers: np.ndarray) -> np.ndarray:
    """7-character ids of offer numbers, one-to-one below OFFER_ID_SPACE."""
    x = (np.asarray(numbers, np.int64) % OFFER_ID_SPACE * OFFER_SCRAMBLE + 8_000_000_000) % OFFER_ID_SPACE
    digits = np.stack([(x // 36**k) % 36 for k in range(6, -1, -1)], axis=1)
    return np.ascontiguousarray(_ALPHABET36[digits]).view("<U7").ravel()


def categorical(rng: np.random.Generator, pairs: tuple[tuple[str, float], ...], n: int) -> np.ndarray:
    """Codes drawn from (code, weight) pairs."""
    codes, w = weights(pairs)
    pick = np.minimum(np.searchsorted(np.cumsum(w), rng.random(n), side="right"), len(w) - 1)
    return np.asarray(codes)[pick]


def code_on(model: Model, occ: np.ndarray, day: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The code a record of this day carries: its v3 occupation before the cutover, after it one of the
    occupation's ROME 4.0 children (uniformly)."""
    count = model.child_count[occ]
    child = model.child_start[occ] + np.minimum((rng.random(len(occ)) * count).astype(np.int64), count - 1)
    return np.where(day >= model.cutover_day, child, occ)


def appellation(model: Model, code: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Index of an appellation of each code (in its version), -1 when the code has none."""
    count = model.appel_count[code]
    pick = model.appel_start[code] + np.minimum(
        (rng.random(len(code)) * count).astype(np.int64), np.maximum(count - 1, 0)
    )
    return np.where(count > 0, pick, -1)


def _years(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def _by_code(pairs: tuple[tuple[str, float], ...], codes: np.ndarray) -> np.ndarray:
    table = dict(pairs)
    return np.array([table.get(c, 0.0) for c in codes.tolist()], np.float64)


def draw_seekers(model: Model, p: SynthParams, first: int, n: int, rng: np.random.Generator) -> Table:
    """Who the chunk's seekers are and when each first registers.

    Columns: number (global, IDX = seeker_idx(number)), commune (residence), depcom (the commune written,
    the city code for some arrondissements), dep, region, sex, education, birth_year, first_day (DATINS of
    the first spell), elapsed (days of that spell already spent when the window opens: the stock), occupation
    (first one sought, v3).
    """
    commune = model.residence.sample(0, rng.random(n))
    dep = model.com_dep[commune]
    region = model.dep_region[dep]
    stock = rng.random(n) < p.stock_share
    elapsed = np.where(stock, 1 + rng.integers(0, p.stock_max_elapsed_days, n), 0)
    first_day = np.where(
        stock,
        model.start_day - elapsed,
        model.start_day + rng.integers(0, model.end_day - model.start_day, n),
    )
    band = np.asarray([(lo, hi) for lo, hi, _ in p.age_bands])
    which = categorical(rng, tuple((str(i), w) for i, (_, _, w) in enumerate(p.age_bands)), n).astype(int)
    age = band[which, 0] + (rng.random(n) * (band[which, 1] - band[which, 0] + 1)).astype(np.int64)
    return {
        "number": np.arange(first, first + n, dtype=np.int64),
        "commune": commune,
        "depcom": np.where(rng.random(n) < p.city_code_share, model.com_alias[commune], commune),
        "dep": dep,
        "region": region,
        "sex": np.where(rng.random(n) < p.women_share, "2", "1"),
        "education": categorical(rng, p.education_weights, n),
        "birth_year": _years(first_day) - age,
        "first_day": first_day,
        "elapsed": elapsed,
        "occupation": model.occupation_sought.sample(region, rng.random(n)),
    }


def _destination_dep(model: Model, origin_dep: np.ndarray, occ: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Département of a job: the place kernel of the origin times the offers of the occupation there."""
    w = model.k_geo[origin_dep] * model.attraction[occ]
    cum = np.cumsum(w, axis=1)
    return np.minimum((cum <= (u * cum[:, -1])[:, None]).sum(axis=1), w.shape[1] - 1)


def draw_trajectories(
    model: Model, p: SynthParams, seekers: Table, rng: np.random.Generator
) -> tuple[Table, Table, Table]:
    """Every spell of the chunk's seekers until the window closes: sought changes, exits and hires.

    Competing risks in continuous time: a Weibull hire hazard in the time spent searching (scaled by the
    tension of the occupation sought in the seeker's region), constant hazards of the other exits and of a
    change of the occupation sought (at most ``max_reorientations``); a change switches the hire hazard to
    the new occupation. Residence never changes, so that a hire's origin département within its region is
    distributed as the seekers are (the truth relies on it).

    Returns spells (seeker, datins, datann (-1 open), motins, motann ('' open), category, occupation),
    changes (spell, seeker, day, end (-1 open), occupation) and hires (spell, seeker, day, origin_occupation,
    origin_dep, occupation, dep, commune, contract, months (0 = none)), codes not yet drawn.
    """
    other_codes = np.array([c for c, _ in p.other_exit_rates_month])
    other_rates = np.array([r for _, r in p.other_exit_rates_month]) / DAYS_PER_MONTH
    other_cum = np.cumsum(other_rates) / other_rates.sum()
    k = p.work_shape
    c0 = p.work_rate_month / k  # cumulative hire hazard: c0 * multiplier * (t / month) ** k
    reorient_rate = p.reorientation_rate_month / DAYS_PER_MONTH
    motins_after = dict(p.motins_after_contract)

    seeker = np.arange(len(seekers["number"]))
    datins = seekers["first_day"].copy()
    tau0 = seekers["elapsed"].astype(np.float64)
    occ = seekers["occupation"].copy()
    motins = categorical(rng, p.first_registration_reasons, len(seeker))
    spell_parts: list[Table] = []
    change_parts: list[Table] = []
    hire_parts: list[Table] = []
    n_spells = 0
    while len(seeker):
        m = len(seeker)
        spell_id = n_spells + np.arange(m)
        n_spells += m
        region = seekers["region"][seeker]
        horizon = model.end_day - datins  # an event at offset x is observed when x < horizon
        tau, cur = tau0.copy(), occ.copy()
        exit_t = np.empty(m)
        is_work = np.zeros(m, bool)
        pending = np.arange(m)
        for c in range(p.max_reorientations + 1):
            t = tau[pending]
            mult = model.work_multiplier[cur[pending], region[pending]]
            e_work = rng.exponential(size=len(t)) / (c0 * mult)
            t_work = DAYS_PER_MONTH * ((t / DAYS_PER_MONTH) ** k + e_work) ** (1 / k)
            t_other = t + rng.exponential(size=len(t)) / other_rates.sum()
            t_change = t + rng.exponential(size=len(t)) / reorient_rate
            if c == p.max_reorientations:
                t_change[:] = np.inf
            first_exit = np.minimum(t_work, t_other)
            change = (t_change < first_exit) & (np.ceil(t_change) < horizon[pending])
            done = pending[~change]
            exit_t[done] = first_exit[~change]
            is_work[done] = (t_work < t_other)[~change]
            moved = pending[change]
            day = np.ceil(t_change[change])
            new = model.reorientation.sample(cur[moved], rng.random(len(moved)))
            change_parts.append(
                {
                    "spell": spell_id[moved],
                    "seeker": seeker[moved],
                    "day": datins[moved] + day.astype(np.int64),
                    "occupation": new,
                    "order": np.full(len(moved), c),
                }
            )
            tau[moved], cur[moved] = day, new
            pending = moved

        offset = np.maximum(np.ceil(exit_t), 1).astype(np.int64)
        observed = offset < horizon
        exit_day = datins + offset
        work = observed & is_work
        pick = np.minimum(np.searchsorted(other_cum, rng.random(m), side="right"), len(other_codes) - 1)
        reason = np.where(work, formats.MOTANN_BACK_TO_WORK, np.where(observed, other_codes[pick], ""))
        datann = np.where(work, exit_day + rng.integers(0, p.deregistration_max_days + 1, m), exit_day)
        known_end = observed & (datann < model.end_day)
        spell_parts.append(
            {
                "seeker": seeker,
                "datins": datins,
                "datann": np.where(known_end, datann, -1),
                "motins": motins,
                "motann": np.where(known_end, reason, ""),
                "category": categorical(rng, p.category_weights, m),
                "occupation": occ,
            }
        )

        # hires: where the job is, its contract and how long it lasts
        h = np.flatnonzero(work)
        origin_dep = seekers["dep"][seeker[h]]
        dest_occ = model.next_occupation.sample(cur[h], rng.random(len(h)))
        dest_dep = _destination_dep(model, origin_dep, dest_occ, rng.random(len(h)))
        commune = model.workplace.sample(dest_dep, rng.random(len(h)))
        commune = np.where(rng.random(len(h)) < p.city_code_share, model.com_alias[commune], commune)
        contract = categorical(rng, p.contract_weights, len(h))
        extra = _by_code(p.temporary_extra_months, contract)
        months = np.where(extra > 0, rng.geometric(1 / (1 + extra)), 0)
        job_days = np.where(
            extra > 0,
            months * DAYS_PER_MONTH,
            rng.exponential(p.permanent_job_months * DAYS_PER_MONTH, len(h)),
        )
        hire_parts.append(
            {
                "spell": spell_id[h],
                "seeker": seeker[h],
                "day": exit_day[h],
                "origin_occupation": cur[h],
                "origin_dep": origin_dep,
                "occupation": dest_occ,
                "dep": dest_dep,
                "commune": commune,
                "contract": contract,
                "months": months,
            }
        )

        # the next spell: after a job, it follows the contract's end
        ended = np.flatnonzero(observed)
        why = reason[ended]
        back = rng.random(len(ended)) < _by_code(p.return_probability, why)
        gap = rng.exponential(_by_code(p.return_gap_months, why) * DAYS_PER_MONTH)
        next_occ = cur[ended].copy()
        next_motins = np.full(len(ended), p.motins_after_other_exit, dtype=object)
        hired = is_work[ended]
        job = np.searchsorted(h, ended[hired])
        gap[hired] += job_days[job]
        keep_job = rng.random(len(job)) < p.seek_last_job_share
        next_occ[hired] = np.where(keep_job, dest_occ[job], cur[ended[hired]])
        next_motins[hired] = [motins_after[ct] for ct in contract[job].tolist()]
        next_day = np.maximum(exit_day[ended], datann[ended]) + 1 + gap.astype(np.int64)
        go = back & (next_day < model.end_day)
        seeker, datins, occ = seeker[ended[go]], next_day[go], next_occ[go]
        tau0 = np.zeros(len(seeker))
        motins = next_motins[go].astype(str)

    spells = _concat(spell_parts)
    changes = _concat(change_parts)
    order = np.lexsort((changes["order"], changes["spell"]))
    changes = {key: value[order] for key, value in changes.items() if key != "order"}
    same_next = np.r_[changes["spell"][1:] == changes["spell"][:-1], False]
    next_day = np.r_[changes["day"][1:], 0]
    changes["end"] = np.where(same_next, next_day - 1, spells["datann"][changes["spell"]])
    return spells, changes, _concat(hire_parts)


def _concat(parts: list[Table]) -> Table:
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def offer_details(
    model: Model, p: SynthParams, occ: np.ndarray, dep: np.ndarray, day: np.ndarray, rng: np.random.Generator
) -> Table:
    """Offers of these (occupation, département, day): place, time, contract and the rest drawn.

    Columns: occupation, dep, day, commune, created_ms, updated_ms, code, appellation, place (a key of
    params.place_weights), contract, positions, qualification, country (for 'abroad' places).
    """
    n = len(occ)
    commune = model.workplace.sample(dep, rng.random(n))
    created = day * _DAY_MS + rng.integers(7 * 3_600_000, 19 * 3_600_000, n)
    code = code_on(model, occ, day, rng)
    return {
        "occupation": occ,
        "dep": dep,
        "day": day,
        "commune": np.where(rng.random(n) < p.city_code_share, model.com_alias[commune], commune),
        "created_ms": created,
        "updated_ms": created + rng.integers(0, 3 * _DAY_MS, n),
        "code": code,
        "appellation": appellation(model, code, rng),
        "place": categorical(rng, p.place_weights, n),
        "contract": categorical(rng, p.offer_contract_weights, n),
        "positions": rng.geometric(1 / (1 + p.extra_positions_mean), n),
        "qualification": categorical(rng, p.qualification_weights, n),
        "country": rng.integers(0, 1 << 16, n),
    }


def draw_offers(model: Model, p: SynthParams, n_seekers: int, rng: np.random.Generator) -> Table:
    """The market offers of a chunk: a share of the national market proportional to its seekers.

    Cells (occupation, département) are drawn by the static offer shares (seekers times exp(tension)),
    months by the seasonality of the occupation's grand domaine, days uniformly in the month.
    """
    months = len(model.month_start) - 1
    count = rng.poisson(p.offers_per_seeker_month * n_seekers * months)
    cell = model.offer_cell.sample(0, rng.random(count))
    occ, dep = np.divmod(cell, len(model.dep_code))
    month = model.offer_month.sample(model.occ_grand_domaine[occ], rng.random(count))
    length = model.month_start[month + 1] - model.month_start[month]
    day = model.month_start[month] + (rng.random(count) * length).astype(np.int64)
    return offer_details(model, p, occ, dep, day, rng)


def link_offers(model: Model, p: SynthParams, hires: Table, offers: Table, rng: np.random.Generator) -> Table:
    """Let a share of hires fill an offer; return the offers, extended with those filled but not drawn.

    A hire that goes through an offer takes the newest offer of the same occupation and département whose
    place names the département (commune or "NN - TOWN" label) created in the ``offer_match_days`` before
    the hire day; without one, the offer it filled is added, published ``filled_offer_lead_days`` before
    (if that is inside the window). Sets hires' ``offer`` (index into the offers, -1 none) and, for an
    offer at a commune, the hire's commune to the offer's.
    """
    n_dep = len(model.dep_code)
    n_h = len(hires["day"])
    via = rng.random(n_h) < p.via_offer_share
    lead = rng.integers(p.filled_offer_lead_days[0], p.filled_offer_lead_days[1] + 1, n_h)
    linkable = np.isin(offers["place"], DEPARTEMENT_PLACES)
    candidates = np.flatnonzero(linkable)
    keys = (offers["occupation"] * n_dep + offers["dep"])[candidates] * _KEY_DAYS + offers["day"][candidates]
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    wanted = (hires["occupation"] * n_dep + hires["dep"]) * _KEY_DAYS + hires["day"]
    pos = np.searchsorted(keys, wanted, side="left") - 1  # newest offer created strictly before the hire day
    if len(keys):
        found = via & (pos >= 0) & (keys[np.maximum(pos, 0)] >= wanted - p.offer_match_days)
        offer = np.where(found, candidates[order[np.maximum(pos, 0)]], -1)
    else:
        found, offer = np.zeros(n_h, bool), np.full(n_h, -1)
    make = via & ~found & (hires["day"] - lead >= model.start_day)
    made = np.flatnonzero(make)
    filled = offer_details(
        model, p, hires["occupation"][made], hires["dep"][made], hires["day"][made] - lead[made], rng
    )
    filled["commune"] = hires["commune"][made]
    filled["place"] = np.full(len(made), "commune", dtype=filled["place"].dtype)
    filled["contract"] = hires["contract"][made].astype(filled["contract"].dtype)
    n_market = len(offers["day"])
    offer[made] = n_market + np.arange(len(made))
    out = {key: np.concatenate([offers[key], filled[key].astype(offers[key].dtype)]) for key in offers}
    at_commune = (offer >= 0) & np.isin(out["place"][np.maximum(offer, 0)], COMMUNE_PLACES)
    hires["commune"] = np.where(at_commune, out["commune"][np.maximum(offer, 0)], hires["commune"])
    hires["offer"] = offer
    return out


@dataclass(frozen=True, eq=False)
class Chunk:
    """The simulated records of one chunk (see the functions above for the columns)."""

    index: int
    seekers: Table
    spells: Table
    changes: Table
    hires: Table
    offers: Table


def simulate_chunk(
    model: Model, p: SynthParams, index: int, first: int, n: int, seed: np.random.SeedSequence
) -> Chunk:
    """Seekers ``first .. first + n - 1``: trajectories, hires, offers, and every record's codes."""
    r_seekers, r_spells, r_offers, r_links, r_codes = (np.random.default_rng(s) for s in seed.spawn(5))
    seekers = draw_seekers(model, p, first, n, r_seekers)
    spells, changes, hires = draw_trajectories(model, p, seekers, r_spells)
    offers = draw_offers(model, p, n, r_offers)
    offers = link_offers(model, p, hires, offers, r_links)
    if len(offers["day"]) >= OFFER_BLOCK // 2:
        raise ValueError(f"chunk of {n} seekers has too many offers for its id block: lower chunk_seekers")
    offers["number"] = index * OFFER_BLOCK + np.arange(len(offers["day"]))

    spells["code"] = code_on(model, spells["occupation"], spells["datins"], r_codes)
    spells["appellation"] = appellation(model, spells["code"], r_codes)
    changes["code"] = code_on(model, changes["occupation"], changes["day"], r_codes)
    own = code_on(model, hires["occupation"], hires["day"], r_codes)
    linked = hires["offer"] >= 0
    offer_code = offers["code"][np.maximum(hires["offer"], 0)]
    hires["code"] = np.where(linked & model.code_is_v4[offer_code], offer_code, own)
    return Chunk(index=index, seekers=seekers, spells=spells, changes=changes, hires=hires, offers=offers)

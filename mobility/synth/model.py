"""The numpy model of a synthetic France, built once from the ``ref.*`` tables, and its ground truth.

Everything the chunk simulation samples from lives here as plain arrays (picklable, so worker processes get
a copy): where seekers live, which occupations they seek per region, how fast they find a job, where that
job is (occupation x département) and where offers appear. Reference tables are sorted explicitly before
use, so that the model, and hence the files, never depend on the order Spark returned rows in.

Index spaces: occupations ``o`` are the v3 fiches (sorted codes); "codes" extend them with their ROME 4.0
children (``O + k``) so that a record's code of either version is one integer; départements ``d`` and
regions ``r`` are those where seekers live (Mayotte has no unemployment figure and is left out).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from mobility.synth.params import DAYS_PER_MONTH, SynthParams

EPOCH = date(1970, 1, 1)
EARTH_RADIUS_KM = 6371.0


def day_number(d: date) -> int:
    """Days since 1970-01-01 (numpy ``datetime64[D]`` as an integer)."""
    return (d - EPOCH).days


@dataclass(frozen=True, eq=False)
class Sampler:
    """Inverse-CDF sampling from many categorical distributions at once, without a Python loop.

    ``bounds`` holds, for each group ``g``, ``g + cumulative probability`` of its items, so that one
    ``searchsorted`` of ``g + u`` finds the item of every draw whatever its group. Items of weight zero are
    never drawn.
    """

    bounds: np.ndarray
    items: np.ndarray

    def sample(self, groups: np.ndarray | int, u: np.ndarray) -> np.ndarray:
        return self.items[np.searchsorted(self.bounds, np.asarray(groups) + u, side="right")]


def grouped_sampler(groups: np.ndarray, items: np.ndarray, weight: np.ndarray) -> Sampler:
    """A Sampler of ``items`` in ``groups`` (integers 0..G-1, each with a positive total weight)."""
    keep = weight > 0
    groups, items, weight = groups[keep], items[keep], weight[keep].astype(np.float64)
    order = np.lexsort((items, groups))
    groups, items, weight = groups[order], items[order], weight[order]
    cum = np.cumsum(weight)
    ends = np.r_[groups[1:] != groups[:-1], True]
    sizes = np.diff(np.r_[0, np.flatnonzero(ends) + 1])
    group_end = cum[ends]
    group_before = np.r_[0.0, group_end[:-1]]
    within = (cum - np.repeat(group_before, sizes)) / np.repeat(group_end - group_before, sizes)
    within[ends] = 1.0
    return Sampler(bounds=groups + within, items=items)


def dense_sampler(p: np.ndarray) -> Sampler:
    """A Sampler with one group per row of the matrix ``p`` (items are column indices)."""
    rows, cols = np.indices(p.shape)
    return grouped_sampler(rows.ravel(), cols.ravel(), p.ravel())


def normalise_rows(m: np.ndarray) -> np.ndarray:
    total = m.sum(axis=1, keepdims=True)
    return np.divide(m, total, out=np.zeros_like(m), where=total > 0)


@dataclass(frozen=True, eq=False)
class Model:
    """Arrays of the model; see the module docstring for the index spaces."""

    # window (day numbers) and months
    start_day: int
    end_day: int  # exclusive
    cutover_day: int
    month_start: np.ndarray  # (M + 1,) first day of each month of the window, then end_day
    # occupations and codes
    n_occ: int
    code: np.ndarray  # (C,) ROME code strings: v3 occupations then v4 children
    code_label: np.ndarray  # (C,) label in the code's own version
    code_is_v4: np.ndarray  # (C,) bool
    code_v3: np.ndarray  # (C,) the v3 occupation of each code
    child_start: np.ndarray  # (O,) first v4 child code of each occupation
    child_count: np.ndarray  # (O,)
    occ_grand_domaine: np.ndarray  # (O,) index into grands_domaines
    grands_domaines: np.ndarray
    appel_start: np.ndarray  # (C,) appellations of each code in appel_ogr / appel_label
    appel_count: np.ndarray
    appel_ogr: np.ndarray
    appel_label: np.ndarray
    # geography
    region_code: np.ndarray  # (R,)
    region_name: np.ndarray
    dep_code: np.ndarray  # (D,)
    dep_region: np.ndarray  # (D,)
    dep_name: np.ndarray
    dep_weight: np.ndarray  # (D,) share of seekers (unemployed 15-64)
    com_code: np.ndarray  # (N,) communes of the kept départements, parents of arrondissements included
    com_name: np.ndarray
    com_dep: np.ndarray
    com_lat: np.ndarray
    com_lng: np.ndarray
    com_postal: np.ndarray  # '' when none
    com_alias: np.ndarray  # the city row of an arrondissement, else the commune itself
    latin1_communes: np.ndarray  # communes whose name has accents and fits in ISO-8859-1
    residence: Sampler  # one group: commune of residence, by unemployed 15-64
    workplace: Sampler  # groups = départements: commune of a job or an offer, by active 15-64
    # occupations sought, tension, hazards
    occupation_sought: Sampler  # groups = regions
    p_occ_region: np.ndarray  # (R, O)
    tension: np.ndarray  # (O, R) centred, clipped
    work_multiplier: np.ndarray  # (O, R) hire hazard multiplier
    # movement model
    k_occ: np.ndarray  # (O, O) P(destination occupation | origin occupation)
    next_occupation: Sampler  # groups = occupations, from k_occ
    reorientation: Sampler  # groups = occupations, k_occ without staying
    k_geo: np.ndarray  # (D, D) place kernel before offer attraction
    attraction: np.ndarray  # (O, D) offer attraction of each destination cell
    # offers
    offer_share: np.ndarray  # (O, D) static share of offers (sums to 1)
    offer_cell: Sampler  # one group over o * D + d
    offer_month: Sampler  # groups = grands domaines: month index in the window


def _sorted(df: pd.DataFrame, *keys: str) -> pd.DataFrame:
    return df.sort_values(list(keys), kind="mergesort").reset_index(drop=True)


def _month_starts(start: date, months: int) -> np.ndarray:
    first = np.datetime64(f"{start.year:04d}-{start.month:02d}", "M")
    return (np.arange(months + 1) + first).astype("datetime64[D]").astype(np.int64)


def _haversine(lat: np.ndarray, lng: np.ndarray) -> np.ndarray:
    la, lo = np.radians(lat), np.radians(lng)
    dlat = la[:, None] - la[None, :]
    dlng = lo[:, None] - lo[None, :]
    h = np.sin(dlat / 2) ** 2 + np.cos(la[:, None]) * np.cos(la[None, :]) * np.sin(dlng / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0, 1)))


def _mixture(components: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """Rows mixing normalised component matrices; an empty row of a component gives its weight to the
    others (the mixture weights are renormalised per row)."""
    total = np.zeros_like(components[0][1], dtype=np.float64)
    mass = np.zeros(total.shape[0])
    for weight, m in components:
        rows = normalise_rows(m)
        present = rows.sum(axis=1) > 0
        total += weight * rows
        mass += weight * present
    return total / mass[:, None]


def build_model(
    ref: dict[str, pd.DataFrame], params: SynthParams, start: date, months: int, cutover: date
) -> Model:
    """The model from the reference tables (pandas, as read from ``ref.*``)."""
    p = params
    # ------------------------------------------------------------------ geography
    com = _sorted(ref["ref.commune"], "code_commune")
    deps = _sorted(ref["ref.departement"], "code_departement")
    regions = _sorted(ref["ref.region"], "code_region")
    postal = _sorted(ref["ref.postal_code"], "code_commune", "code_postal")
    com = com[com["code_departement"].isin(deps["code_departement"])].reset_index(drop=True)
    parents = set(com.loc[com["commune_type"] == "ARM", "parent_code"].dropna())
    is_parent = com["code_commune"].isin(parents).to_numpy()
    unemployed = np.where(is_parent, 0, com["unemployed_15_64"].fillna(0).to_numpy(np.float64))
    dep_unemployed = pd.Series(unemployed).groupby(com["code_departement"].to_numpy()).sum()
    kept_deps = deps[deps["code_departement"].map(dep_unemployed).fillna(0) > 0].reset_index(drop=True)
    kept_regions = regions[regions["code_region"].isin(kept_deps["code_region"])].reset_index(drop=True)
    region_index = {c: i for i, c in enumerate(kept_regions["code_region"])}
    dep_index = {c: i for i, c in enumerate(kept_deps["code_departement"])}

    com = com[com["code_departement"].isin(dep_index)].reset_index(drop=True)
    is_parent = com["code_commune"].isin(parents).to_numpy()
    com_dep = com["code_departement"].map(dep_index).to_numpy(np.int64)
    unemployed = np.where(is_parent, 0, com["unemployed_15_64"].fillna(0).to_numpy(np.float64))
    active = np.where(is_parent, 0, com["active_15_64"].fillna(0).to_numpy(np.float64))
    population = np.where(is_parent, 0, com["population"].fillna(0).to_numpy(np.float64))
    com_index = {c: i for i, c in enumerate(com["code_commune"])}
    is_arm = (com["commune_type"] == "ARM").to_numpy()
    alias = np.arange(len(com))
    alias[is_arm] = com.loc[is_arm, "parent_code"].map(com_index).to_numpy(np.int64)
    first_postal = postal.drop_duplicates("code_commune").set_index("code_commune")["code_postal"]
    com_postal = com["code_commune"].map(first_postal)
    # A city row has no postal code of its own: it takes its first arrondissement's.
    city_postal = com_postal[is_arm].groupby(com.loc[is_arm, "parent_code"]).min()
    com_postal = com_postal.fillna(com["code_commune"].map(city_postal)).fillna("").to_numpy(object)
    names = com["name"].to_numpy(object)
    latin1 = np.array(
        [i for i, n in enumerate(names) if not n.isascii() and _fits_latin1(n) and unemployed[i] > 0],
        np.int64,
    )
    # a département with no active population (none here) would make the workplace sampler fail loudly
    workplace = grouped_sampler(com_dep, np.arange(len(com)), np.where(active > 0, active, 0))
    residence = grouped_sampler(np.zeros(len(com), np.int64), np.arange(len(com)), unemployed)
    n_dep = len(kept_deps)
    dep_region = kept_deps["code_region"].map(region_index).to_numpy(np.int64)
    dep_weight = np.bincount(com_dep, unemployed, n_dep)
    dep_weight = dep_weight / dep_weight.sum()
    dep_population = np.bincount(com_dep, population, n_dep)

    # ------------------------------------------------------------------ occupations and codes
    rome = ref["ref.rome"]
    v3 = _sorted(rome[rome["version"] == "v3"], "code_rome")
    v4 = _sorted(rome[rome["version"] == "v4"], "rome_v3", "code_rome")
    v3 = v3[v3["code_rome"].isin(v4["rome_v3"])].reset_index(drop=True)  # every occupation has a v4 child
    occ_index = {c: i for i, c in enumerate(v3["code_rome"])}
    v4 = v4[v4["rome_v3"].isin(occ_index)].reset_index(drop=True)
    n_occ = len(v3)
    child_parent = v4["rome_v3"].map(occ_index).to_numpy(np.int64)
    child_count = np.bincount(child_parent, minlength=n_occ)
    child_start = n_occ + np.r_[0, np.cumsum(child_count)[:-1]]
    code = np.r_[v3["code_rome"].to_numpy(object), v4["code_rome"].to_numpy(object)]
    code_label = np.r_[v3["label"].to_numpy(object), v4["label"].to_numpy(object)]
    code_is_v4 = np.r_[np.zeros(n_occ, bool), np.ones(len(v4), bool)]
    code_v3 = np.r_[np.arange(n_occ), child_parent]
    gd_of = v3["code_rome"].str[0].to_numpy(object)
    grands_domaines = np.array(sorted(set(gd_of)), object)
    occ_gd = np.searchsorted(grands_domaines, gd_of)

    codes = pd.DataFrame(
        {"version": np.where(code_is_v4, "v4", "v3"), "code_rome": code, "code_index": np.arange(len(code))}
    )
    appel = ref["ref.rome_appellation"][["version", "code_rome", "code_ogr", "label"]]
    appel = _sorted(appel.merge(codes, on=["version", "code_rome"]), "code_index", "code_ogr")
    appel_count = np.bincount(appel["code_index"].to_numpy(np.int64), minlength=len(code))
    appel_start = np.r_[0, np.cumsum(appel_count)[:-1]]

    # ------------------------------------------------------------------ DARES: demand and tension
    n_reg = len(kept_regions)
    fap = _sorted(ref["ref.fap_rome"], "fap", "code_rome")
    fap = fap[fap["code_rome"].isin(occ_index)].drop_duplicates()
    fap = fap.assign(
        occ=fap["code_rome"].map(occ_index), share=1.0 / fap.groupby("fap")["code_rome"].transform("size")
    )
    tension = ref["ref.tension"]
    t225 = tension[tension["fap_level"] == "fap225"]
    reg = t225[(t225["geo_level"] == "reg") & t225["code_region"].isin(region_index)]
    nat = t225[t225["geo_level"] == "nat"]
    # a fiche's employment is its families' spread equally over their fiches; its tension is the mean of
    # its families' weighted by that employment (the national figure where the region has none)
    emp, emp_t, emp_known = (np.zeros((n_reg, n_occ)) for _ in range(3))
    joined = reg.merge(fap, on="fap")
    at = (joined["code_region"].map(region_index).to_numpy(np.int64), joined["occ"].to_numpy(np.int64))
    e = joined["employment"].fillna(0).to_numpy() * joined["share"].to_numpy()
    known = joined["tension"].notna().to_numpy()
    np.add.at(emp, at, e)
    np.add.at(emp_known, at, e * known)
    np.add.at(emp_t, at, e * joined["tension"].fillna(0).to_numpy())
    nat_joined = nat.merge(fap, on="fap")
    e_nat = nat_joined["employment"].fillna(0) * nat_joined["share"] * nat_joined["tension"].notna()
    w_nat = np.bincount(nat_joined["occ"], e_nat, minlength=n_occ)
    wt_nat = np.bincount(nat_joined["occ"], e_nat * nat_joined["tension"].fillna(0), minlength=n_occ)
    median_t = float(np.median(nat["tension"].dropna()))
    t_nat = np.divide(wt_nat, w_nat, out=np.full(n_occ, median_t), where=w_nat > 0)
    t_reg = np.divide(emp_t, emp_known, out=np.zeros_like(emp_t), where=emp_known > 0)
    t_or = np.where(emp_known > 0, t_reg, t_nat[None, :]).T
    t_or = np.clip(t_or - median_t, *p.tension_clip)
    demand = emp + p.occupation_floor * emp.mean(axis=1, keepdims=True)
    p_occ_region = normalise_rows(demand)
    occupation_sought = dense_sampler(p_occ_region)

    # ------------------------------------------------------------------ static offers
    offer_share = (
        dep_weight[None, :] * p_occ_region[dep_region].T * np.exp(p.tension_offers * t_or[:, dep_region])
    )
    offer_share /= offer_share.sum()
    national = offer_share.sum(axis=1)
    attraction = (offer_share + p.offer_attraction_prior * offer_share.mean()) ** p.offer_attraction

    # ------------------------------------------------------------------ movement: occupations
    links = ref["ref.rome_mobility"]
    links = links[
        (links["version"] == "v3")
        & links["code_rome"].isin(occ_index)
        & links["code_rome_cible"].isin(occ_index)
    ]
    links = links[links["code_rome"] != links["code_rome_cible"]]
    pull = national**p.occupation_attraction

    def link_matrix(kind: str) -> np.ndarray:
        pairs = links.loc[links["link_type"] == kind, ["code_rome", "code_rome_cible"]].drop_duplicates()
        m = np.zeros((n_occ, n_occ))
        m[
            pairs["code_rome"].map(occ_index).to_numpy(np.int64),
            pairs["code_rome_cible"].map(occ_index).to_numpy(np.int64),
        ] = 1
        return m * pull[None, :]

    domaine = v3["code_rome"].str[:3].to_numpy(object)
    same_domaine = (domaine[:, None] == domaine[None, :]) & ~np.eye(n_occ, dtype=bool)
    hubs = np.lexsort((np.arange(n_occ), -national))[: p.elsewhere_hubs]
    elsewhere = np.zeros((n_occ, n_occ))
    elsewhere[:, hubs] = pull[hubs]
    np.fill_diagonal(elsewhere, 0)
    moves = [
        (p.occ_proche, link_matrix("proche")),
        (p.occ_evolution, link_matrix("evolution")),
        (p.occ_domaine, same_domaine * pull[None, :]),
        (p.occ_elsewhere, elsewhere),
    ]
    k_occ = _mixture([(p.occ_stay, np.eye(n_occ)), *moves])
    reorient = _mixture(moves)

    # ------------------------------------------------------------------ movement: places
    distance = _haversine(kept_deps["lat"].to_numpy(np.float64), kept_deps["lng"].to_numpy(np.float64))
    same_region = dep_region[:, None] == dep_region[None, :]
    gravity = np.where(
        distance <= p.gravity_max_km,
        dep_population[None, :] ** p.gravity_population_exponent
        / (distance + p.gravity_distance_offset_km) ** p.gravity_distance_exponent,
        0.0,
    )
    k_geo = _mixture(
        [
            (p.geo_stay, np.eye(n_dep)),
            (p.geo_region, same_region * dep_population[None, :]),
            (p.geo_gravity, gravity),
        ]
    )

    # ------------------------------------------------------------------ offers: cells and months
    month_start = _month_starts(start, months)
    month_of_year = (np.arange(months) + start.month - 1) % 12
    base = np.asarray(p.seasonality, np.float64)
    season = np.tile(base, (len(grands_domaines), 1))
    seasonal = np.isin(grands_domaines, p.seasonal_grands_domaines)
    season[seasonal] = np.clip(1 + p.seasonal_amplification * (base - 1), 0.05, None)
    month_days = np.diff(month_start) / DAYS_PER_MONTH
    month_weight = season[:, month_of_year] * month_days[None, :]
    offer_month = dense_sampler(month_weight)
    offer_cell = grouped_sampler(
        np.zeros(n_occ * n_dep, np.int64), np.arange(n_occ * n_dep), offer_share.ravel()
    )

    return Model(
        start_day=int(month_start[0]),
        end_day=int(month_start[-1]),
        cutover_day=day_number(cutover),
        month_start=month_start,
        n_occ=n_occ,
        code=code,
        code_label=code_label,
        code_is_v4=code_is_v4,
        code_v3=code_v3,
        child_start=child_start,
        child_count=child_count,
        occ_grand_domaine=occ_gd,
        grands_domaines=grands_domaines,
        appel_start=appel_start,
        appel_count=appel_count,
        appel_ogr=appel["code_ogr"].astype(np.int64).astype(str).to_numpy(object),
        appel_label=appel["label"].to_numpy(object),
        region_code=kept_regions["code_region"].to_numpy(object),
        region_name=kept_regions["name"].to_numpy(object),
        dep_code=kept_deps["code_departement"].to_numpy(object),
        dep_region=dep_region,
        dep_name=kept_deps["name"].to_numpy(object),
        dep_weight=dep_weight,
        com_code=com["code_commune"].to_numpy(object),
        com_name=names,
        com_dep=com_dep,
        com_lat=com["lat"].to_numpy(np.float64),
        com_lng=com["lng"].to_numpy(np.float64),
        com_postal=com_postal,
        com_alias=alias,
        latin1_communes=latin1,
        residence=residence,
        workplace=workplace,
        occupation_sought=occupation_sought,
        p_occ_region=p_occ_region,
        tension=t_or,
        work_multiplier=np.exp(p.tension_hazard * t_or),
        k_occ=k_occ,
        next_occupation=dense_sampler(k_occ),
        reorientation=dense_sampler(reorient),
        k_geo=k_geo,
        attraction=attraction,
        offer_share=offer_share,
        offer_cell=offer_cell,
        offer_month=offer_month,
    )


def _fits_latin1(text: str) -> bool:
    try:
        text.encode("iso-8859-1")
    except UnicodeEncodeError:
        return False
    return True


def place_kernel(model: Model) -> np.ndarray:
    """G[o', d, d']: P(destination département d' | destination occupation o', origin département d).

    The place kernel weighted by the offers of the destination occupation in each département, normalised
    per (o', d): offers attract moves, and the distribution stays a function of the origin only.
    """
    g = model.k_geo[None, :, :] * model.attraction[:, None, :]
    return g / g.sum(axis=2, keepdims=True)


def destination_parts(model: Model) -> Iterator[pd.DataFrame]:
    """The exact P(destination v3 occupation x region | origin v3 occupation, origin region) of a hire,
    one origin region at a time (rows sorted by origin occupation, destination occupation, region).

    P(o', d' | o, d) = K_occ(o' | o) G(d' | o', d); the origin département is mixed within its region with
    the seekers' location weights (the hazards and occupations do not depend on the département within a
    region, so these are also the weights of hires' origins).
    """
    n_reg, n_dep = len(model.region_code), len(model.dep_code)
    to_region = np.zeros((n_dep, n_reg))
    to_region[np.arange(n_dep), model.dep_region] = 1
    within = np.zeros((n_reg, n_dep))
    within[model.dep_region, np.arange(n_dep)] = model.dep_weight
    within = normalise_rows(within)
    q = within[None, :, :] @ (place_kernel(model) @ to_region)  # (O, R origin, R destination)
    occ_pairs = np.argwhere(model.k_occ > 0)  # (o, o') sorted by o then o'
    for r in range(n_reg):
        qr = q[:, r, :]  # (O', R')
        nz_o, nz_s = np.nonzero(qr > 0)  # sorted by o' then R'
        counts = np.bincount(nz_o, minlength=model.n_occ)
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        per_pair = counts[occ_pairs[:, 1]]
        pair = np.repeat(np.arange(len(occ_pairs)), per_pair)
        offset = np.arange(len(pair)) - np.repeat(np.cumsum(per_pair) - per_pair, per_pair)
        o, o2 = occ_pairs[pair, 0], occ_pairs[pair, 1]
        s = nz_s[starts[o2] + offset]
        yield pd.DataFrame(
            {
                "from_rome_v3": model.code[o],
                "from_region": model.region_code[r],
                "to_rome_v3": model.code[o2],
                "to_region": model.region_code[s],
                "probability": model.k_occ[o, o2] * qr[o2, s],
            }
        )


def destinations(model: Model) -> pd.DataFrame:
    """All of ``destination_parts`` in one frame (origin region, origin occupation, destination...)."""
    return pd.concat(destination_parts(model), ignore_index=True)

"""``ranker``: gradient boosting over candidate destinations, learning how to weigh what markov knows with
what it cannot use (the département, the official ROME links, distance, offers and tension).

Candidates of an origin state
    markov's ``occupations`` best occupations (factor ``to_rome``, most specific level seen) and the origin's
    official links (v3 ``proche`` and ``evolution``) and own occupation, crossed with the ``regions`` best
    regions of the origin (factor ``to_region``, and the same factor learnt per département) and its own.
Features of a candidate (``FEATURES``)
    The probability of each markov factor at every backoff level (0 where the level does not hold it) and
    at the most specific level the origin was seen at, their product (markov's own score), the
    probability of the region given the origin département; the ROME link type; same region; the distance
    from the origin département's centroid to the destination region's; offers and tension at the
    destination and tension at the origin in the month before the date scored (no row that month: no
    offer, tension unknown), and the destination occupation's national offers over the 12 months to it;
    months searching, age band, education. Sex is never a feature. A date past the model's market data
    reads the last month it holds (retrain to refresh it).
Learning without leaking
    The ranker learns on the examples of the last ``ranker.months`` of the training window, with tables
    learnt on the moves before them, so that no example's features count its own move, and the model keeps
    those very tables. Why not tables of the whole window, as markov has: their probabilities are sharper
    (more moves per origin, more origins seen at the specific levels) than those the booster learnt to
    weigh; on 100k generated seekers that shift cost more than the extra months gave (test NDCG@10 0.683
    against 0.704 with the learning tables; markov 0.688). The label of a candidate is whether it is the
    example's destination; the score is the boosted probability.

Everything here is pandas on tables bounded by the referential (occupations x regions x ``top_n``, months
of the market): it runs in the pyfunc, on the executors, for any number of states.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance

from mobility.gold.transitions import rome_links
from mobility.recommend.models import FACTORS, backoff_tables, markov_tables

# markov's factor levels plus the ranker's own: the region given the origin département
REGION_LEVELS: dict[str, tuple[str, ...]] = {
    "departement": ("from_dept", "from_region"),
    "region": ("from_region",),
    "all": (),
}
LINKS = ("same", "proche", "evolution", "same_domaine", "same_grand_domaine", "other")
QUERY_COLUMNS = ("from_rome", "from_dept", "from_region", "search_band", "age_band", "education", "month")
FEATURES = (
    *(f"p_rome_{level}" for level in FACTORS["to_rome"]),
    *(f"p_region_{level}" for level in FACTORS["to_region"]),
    "p_region_departement",
    "p_rome",
    "p_region",
    "markov",
    "link",
    "same_region",
    "distance_km",
    "dest_offers",
    "dest_tension",
    "origin_tension",
    "dest_national_offers",
    "search_months",
    "age",
    "education_level",
)
SEEKER_FEATURES = ("search_months", "age", "education_level")  # the features of the seeker, not the origin
ORIGIN_COLUMNS = ("from_rome", "from_dept", "from_region", "month")  # what the other features depend on
EARTH_RADIUS_KM = 6371.0
IMPORTANCE_ROWS = 50_000  # candidate rows the permutation importances are measured on


def month_index(month: pd.Series) -> pd.Series:
    """``YYYY-MM`` (or a date's first seven characters) as months since year 0; null stays NaN."""
    text = month.astype("string").str.slice(0, 7)
    return (
        pd.to_numeric(text.str.slice(0, 4), errors="coerce") * 12
        + pd.to_numeric(text.str.slice(5, 7), errors="coerce")
        - 1
    )


def band_floor(label: pd.Series) -> pd.Series:
    """The lower bound of a band label (``<3`` -> 0, ``3-5`` -> 3, ``12+`` -> 12); null -> -1."""
    text = label.astype("string")
    low = pd.to_numeric(text.str.extract(r"^(\d+)", expand=False), errors="coerce")
    return low.where(~text.str.startswith("<").fillna(False), 0).fillna(-1).astype(float)


def _seen(q: pd.DataFrame, table: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    """Whether each query's key holds rows in ``table`` (an origin seen at this level)."""
    if not keys:
        return pd.Series(len(table) > 0, index=q.index)
    known = table[list(keys)].drop_duplicates().assign(_seen=True)
    return q[list(keys)].merge(known, on=list(keys), how="left")["_seen"].notna().to_numpy()


def _factor(
    q: pd.DataFrame, tables: Mapping[str, pd.DataFrame], target: str, levels: Mapping[str, tuple[str, ...]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per query: the factor's probability of each of its values at every level (long: ``query``,
    ``target``, ``p_<level>``), and the most specific level each query was seen at (``query``, ``_best``)."""
    q = q.copy()
    best = pd.Series(np.nan, index=q.index, dtype="object")
    wide: pd.DataFrame | None = None
    for level, keys in levels.items():
        table = tables[f"{target}.{level}"]
        seen = _seen(q, table, keys)
        best = best.where(best.notna() | ~pd.Series(seen, index=q.index), level)
        part = (
            q[["query", *keys]].merge(table[[*keys, target, "score"]], on=list(keys))
            if keys
            else q[["query"]].merge(table[[target, "score"]], how="cross")
        )
        part = part[["query", target, "score"]].rename(columns={"score": f"p_{level}"})
        wide = part if wide is None else wide.merge(part, on=["query", target], how="outer")
    q["_best"] = best
    return wide, q[["query", "_best"]]


def candidates(
    q: pd.DataFrame, tables: Mapping[str, pd.DataFrame], *, occupations: int, regions: int
) -> pd.DataFrame:
    """Candidate destinations of each query with their features (``query``, ``to_rome``, ``to_region``,
    ``FEATURES``). ``q``: ``query`` and ``QUERY_COLUMNS``. The candidates and all but the seeker's own
    features depend on the origin alone (``ORIGIN_COLUMNS``), which many queries share: they are built
    once per origin, then given to its queries."""
    q = q.reset_index(drop=True)
    origins = q[list(ORIGIN_COLUMNS)].drop_duplicates().reset_index(drop=True)
    origins.insert(0, "query", np.arange(len(origins)))
    per_origin = _origin_candidates(origins, tables, occupations=occupations, regions=regions)
    queries = q[["query", *ORIGIN_COLUMNS]].merge(
        origins.rename(columns={"query": "_origin"}), on=list(ORIGIN_COLUMNS)
    )
    queries["search_months"] = band_floor(q["search_band"])
    queries["age"] = band_floor(q["age_band"])
    vocabulary = tables["education"]["education"].tolist()
    queries["education_level"] = (
        q["education"].map({v: float(i) for i, v in enumerate(vocabulary)}).fillna(-1.0).astype(float)
    )
    cands = queries[["query", "_origin", *SEEKER_FEATURES]].merge(
        per_origin.rename(columns={"query": "_origin"}), on="_origin"
    )
    return cands[["query", "to_rome", "to_region", *FEATURES]]


def _origin_candidates(
    q: pd.DataFrame, tables: Mapping[str, pd.DataFrame], *, occupations: int, regions: int
) -> pd.DataFrame:
    """The candidates of each origin (``query``: its number) with the features of the origin and the
    destination (all of ``FEATURES`` but ``SEEKER_FEATURES``)."""
    q = q.assign(from_domaine=lambda d: d["from_rome"].str.slice(0, 3))
    roles, rome_best = _factor(q, tables, "to_rome", FACTORS["to_rome"])
    region_levels = {**FACTORS["to_region"], "departement": REGION_LEVELS["departement"]}
    regs, region_best = _factor(q, tables, "to_region", region_levels)
    roles = _best_probability(roles, rome_best, FACTORS["to_rome"])
    regs = _best_probability(regs, region_best, FACTORS["to_region"])
    roles = roles.rename(columns={f"p_{lv}": f"p_rome_{lv}" for lv in FACTORS["to_rome"]} | {"p": "p_rome"})
    regs = regs.rename(columns={f"p_{lv}": f"p_region_{lv}" for lv in region_levels} | {"p": "p_region"})
    links = tables["links"]
    own = q[["query", "from_rome"]].rename(columns={"from_rome": "to_rome"}).dropna()
    linked = q[["query", "from_rome"]].merge(links, on="from_rome")[["query", "to_rome"]]
    top_roles = _top(roles, "p_rome", occupations, "to_rome")[["query", "to_rome"]]
    chosen_roles = pd.concat([top_roles, own, linked], ignore_index=True).drop_duplicates()
    own_region = q[["query", "from_region"]].rename(columns={"from_region": "to_region"}).dropna()
    top_regs = [
        _top(regs, column, regions, "to_region")[["query", "to_region"]]
        for column in ("p_region", "p_region_departement")
    ]
    chosen_regs = pd.concat([*top_regs, own_region], ignore_index=True).drop_duplicates()
    cands = chosen_roles.merge(chosen_regs, on="query").dropna(subset=["to_rome", "to_region"])
    cands = cands.merge(roles, on=["query", "to_rome"], how="left").merge(
        regs, on=["query", "to_region"], how="left"
    )
    probabilities = [c for c in cands.columns if c.startswith("p_")]
    cands[probabilities] = cands[probabilities].fillna(0.0)
    cands["markov"] = cands["p_rome"] * cands["p_region"]
    return _context_features(cands.merge(q, on="query"), tables)


def _best_probability(
    wide: pd.DataFrame, best: pd.DataFrame, levels: Mapping[str, tuple[str, ...]]
) -> pd.DataFrame:
    """``p``: the probability at the most specific level the query was seen at (markov's lookup)."""
    wide = wide.merge(best, on="query")
    p = pd.Series(0.0, index=wide.index)
    for level in levels:
        p = p.where(wide["_best"] != level, wide[f"p_{level}"].fillna(0.0))
    return wide.assign(p=p).drop(columns="_best")


def _top(df: pd.DataFrame, column: str, n: int, target: str) -> pd.DataFrame:
    """The ``n`` best values of ``target`` per query by ``column``, among those it gives a probability."""
    df = df[df[column].notna() & (df[column] > 0) & df[target].notna()]
    ordered = df.sort_values(["query", column, target], ascending=[True, False, True])
    return ordered[ordered.groupby("query").cumcount() < n]


def _context_features(cands: pd.DataFrame, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    link = cands[["from_rome", "to_rome"]].merge(tables["links"], on=["from_rome", "to_rome"], how="left")
    typed = link["link_type"].to_numpy()
    same = cands["from_rome"].to_numpy() == cands["to_rome"].to_numpy()
    domaine = cands["from_rome"].str.slice(0, 3).to_numpy() == cands["to_rome"].str.slice(0, 3).to_numpy()
    grand = cands["from_rome"].str.slice(0, 1).to_numpy() == cands["to_rome"].str.slice(0, 1).to_numpy()
    kind = np.select(
        [same, typed == "proche", typed == "evolution", domaine, grand],
        [0, 1, 2, 3, 4],
        default=5,
    )
    cands["link"] = kind.astype(float)
    cands["same_region"] = (cands["from_region"] == cands["to_region"]).astype(float)
    origin = cands[["from_dept"]].merge(tables["departements"], on="from_dept", how="left")
    dest = cands[["to_region"]].merge(tables["regions"], on="to_region", how="left")
    cands["distance_km"] = haversine(
        origin["lat"].to_numpy(), origin["lng"].to_numpy(), dest["lat"].to_numpy(), dest["lng"].to_numpy()
    )
    market = tables["market"]
    known = market["month_index"].max() if len(market) else np.nan
    # the month before the date scored, or the model's last month when the date is past it
    cands["_before"] = np.fmin(month_index(cands["month"]) - 1, known)
    dest_market = _in_month(cands, market, ["to_rome", "to_region"], ["rome", "code_region"])
    cands["dest_offers"] = np.log1p(dest_market["offers"].fillna(0.0).to_numpy())
    cands["dest_tension"] = dest_market["tension"].to_numpy()
    origin_market = _in_month(cands, market, ["from_rome", "from_region"], ["rome", "code_region"])
    cands["origin_tension"] = origin_market["tension"].to_numpy()
    national = _in_month(cands, tables["national"], ["to_rome"], ["rome"])
    cands["dest_national_offers"] = np.log1p(national["offers_12m"].fillna(0.0).to_numpy())
    return cands[["query", "to_rome", "to_region", *(f for f in FEATURES if f not in SEEKER_FEATURES)]]


def _in_month(
    left: pd.DataFrame, right: pd.DataFrame, left_keys: list[str], right_keys: list[str]
) -> pd.DataFrame:
    """Per row of ``left``, the values of the row of ``right`` with equal keys and ``month_index`` equal to
    ``left._before``, in ``left``'s order; NaN when there is none (the market has no all-zero rows: no
    offer and no seeker that month)."""
    probe = left[[*left_keys, "_before"]].rename(columns=dict(zip(left_keys, right_keys, strict=True)))
    probe = probe.rename(columns={"_before": "month_index"})
    values = [c for c in right.columns if c not in (*right_keys, "month_index")]
    found = probe.merge(right, on=[*right_keys, "month_index"], how="left")
    return found[values].astype(float).reset_index(drop=True)


def haversine(lat1: np.ndarray, lng1: np.ndarray, lat2: np.ndarray, lng2: np.ndarray) -> np.ndarray:
    """Great-circle distance in km (NaN when a centroid is unknown)."""
    p1, p2 = np.radians(lat1.astype(float)), np.radians(lat2.astype(float))
    dp, dl = p2 - p1, np.radians(lng2.astype(float) - lng1.astype(float))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def ranker_tables(
    train: DataFrame,
    *,
    rome_mobility: DataFrame,
    departement: DataFrame,
    region: DataFrame,
    market: DataFrame,
    alpha: float,
    top_n: int,
) -> dict[str, DataFrame]:
    """The tables the ranker reads, learnt from ``train`` examples and the reference and market tables:
    markov's, the region factor per origin département, the v3 links, centroids, the monthly market (by
    ``month_index``) and the national offers of the 12 months to each month, the education vocabulary."""
    tables = markov_tables(train, alpha=alpha, top_n=top_n)
    per_dept = backoff_tables(train, "to_region", REGION_LEVELS, alpha=alpha, top_n=top_n)
    tables["to_region.departement"] = per_dept["departement"]
    v3, _ = rome_links(rome_mobility)
    tables["links"] = v3.select(
        F.col("_l3_from").alias("from_rome"),
        F.col("_l3_to").alias("to_rome"),
        F.col("_l3_type").alias("link_type"),
    )
    tables["departements"] = departement.select(F.col("code_departement").alias("from_dept"), "lat", "lng")
    tables["regions"] = region.select(F.col("code_region").alias("to_region"), "lat", "lng")
    index = (F.year("month") * 12 + F.month("month") - 1).alias("month_index")
    tables["market"] = market.where((F.col("offers_published") > 0) | (F.col("seekers_stock") > 0)).select(
        "rome",
        "code_region",
        index,
        F.col("offers_published").cast("double").alias("offers"),
        F.col("tension").cast("double").alias("tension"),
    )
    monthly = market.groupBy("rome", index).agg(F.sum("offers_published").cast("double").alias("offers"))
    # every (occupation, month) of the calendar, so that each month has its 12-month sum
    months = monthly.agg(
        F.explode(F.sequence(F.min("month_index"), F.max("month_index"))).alias("month_index")
    )
    calendar = monthly.select("rome").distinct().crossJoin(months)
    monthly = calendar.join(monthly, ["rome", "month_index"], "left").fillna(0.0, subset=["offers"])
    last_year = Window.partitionBy("rome").orderBy("month_index").rangeBetween(-11, 0)
    tables["national"] = monthly.select(
        "rome", "month_index", F.sum("offers").over(last_year).alias("offers_12m")
    )
    # sorted: a feature's codes must not depend on the order Spark returns rows in (reproduce)
    tables["education"] = (
        train.where(F.col("education").isNotNull()).select("education").distinct().orderBy("education")
    )
    return tables


@dataclass(frozen=True)
class Learnt:
    booster: HistGradientBoostingClassifier
    figures: dict[str, float]
    importances: pd.Series


def learn(
    examples: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame],
    *,
    occupations: int,
    regions: int,
    max_iter: int,
    learning_rate: float,
    max_leaf_nodes: int,
    seed: int,
) -> Learnt:
    """Fit the booster on the candidates of ``examples`` (``QUERY_COLUMNS`` and the true ``to_rome``,
    ``to_region``); with figures (candidate rows, share of examples whose destination is a candidate) and
    permutation importances (drop of the log-likelihood, on a sample of the candidates)."""
    q = examples.reset_index(drop=True).assign(query=lambda d: np.arange(len(d)))
    cands = candidates(q[["query", *QUERY_COLUMNS]], tables, occupations=occupations, regions=regions)
    if cands.empty:
        raise ValueError("ranker: no candidate for any example: nothing to learn")
    truth = q[["query", "to_rome", "to_region"]].assign(label=1)
    cands = cands.merge(truth, on=["query", "to_rome", "to_region"], how="left")
    y = cands["label"].fillna(0).astype(int).to_numpy()
    if y.sum() == 0 or y.sum() == len(y):
        raise ValueError(
            "ranker: the candidates hold no true destination (or only true ones): nothing to learn"
        )
    booster = HistGradientBoostingClassifier(
        max_iter=max_iter,
        learning_rate=learning_rate,
        max_leaf_nodes=max_leaf_nodes,
        early_stopping=False,
        random_state=seed,
    )
    x = cands[list(FEATURES)].to_numpy(dtype=float)
    booster.fit(x, y)
    figures = {"candidate_rows": float(len(cands)), "candidate_recall": float(y.sum()) / len(q)}
    rows = np.random.default_rng(seed).permutation(len(y))[:IMPORTANCE_ROWS]
    drop = permutation_importance(
        booster, x[rows], y[rows], scoring="neg_log_loss", n_repeats=3, random_state=seed
    )
    ranked = pd.Series(drop.importances_mean, index=list(FEATURES)).sort_values(ascending=False)
    return Learnt(booster, figures, ranked)


def recommend(
    tables: Mapping[str, pd.DataFrame],
    booster: HistGradientBoostingClassifier,
    states: pd.DataFrame,
    top_k: int,
    *,
    occupations: int,
    regions: int,
) -> pd.DataFrame:
    """The ``top_k`` scored candidates of each state (``query``: the state's position)."""
    q = pd.DataFrame({"query": np.arange(len(states))})
    for column in QUERY_COLUMNS:
        q[column] = states[column].to_numpy() if column in states else None
    cands = candidates(q, tables, occupations=occupations, regions=regions)
    if cands.empty:
        return pd.DataFrame(columns=["query", "to_rome", "to_region", "score", "rank", "level"])
    cands["score"] = booster.predict_proba(cands[list(FEATURES)].to_numpy(dtype=float))[:, 1]
    cands = cands.sort_values(["query", "score", "to_rome", "to_region"], ascending=[True, False, True, True])
    cands["rank"] = cands.groupby("query").cumcount() + 1
    top = cands[cands["rank"] <= top_k]
    return top.assign(level="ranker")[["query", "to_rome", "to_region", "score", "rank", "level"]]

"""The cells and lines of the published tables (the rules of ``mobility.publish``, numbered there), on pandas
frames of the gold tables as ``views.frames`` brings them to the driver."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from mobility.publish.model import Cells, Model

GOLD_TABLES = (
    "flows",
    "flows_region",
    "flows_occupation",
    "flows_grand_domaine",
    "region_balance",
    "market",
    "market_national",
    "occupation_mobility",
)
# flows table -> its keys besides the period
FLOW_TABLES: dict[str, tuple[str, ...]] = {
    "flows": ("from_rome", "from_region", "to_rome", "to_region"),
    "flows_region": ("from_region", "to_region"),
    "flows_occupation": ("from_rome", "to_rome"),
    "flows_grand_domaine": ("from_grand_domaine", "to_grand_domaine"),
}
MARKET_COUNTS = ("seekers_stock", "registrations", "exits_to_work", "hires")
MARKET_KEYS = {"market": ("rome", "code_region", "month"), "market_national": ("rome", "month")}
VIA = "_via"  # hires through an offer: round(share_via_offers * hires), 0 without hire (views.frames)
DOMAINS = ("_from_domain", "_to_domain")  # grand domaines of flows_occupation's pair (views.frames)
DOMAIN = "_domain"  # the market's grand domaine (views.frames)
# market total row name -> its line keys on the market: the regional stock's totals that the coarse flows
# publish as seekers_at_origin (the national cell is the third, per occupation)
STOCK_TOTALS = {"market_region_total": ("code_region", "month"), "market_domain_total": (DOMAIN, "month")}


def period_keys(table: str) -> tuple[str, ...]:
    return (*FLOW_TABLES[table], "period_start")


def _crossing(df: pd.DataFrame) -> pd.Series:
    """``NOT (from_region <=> to_region)``."""
    a, b = df["from_region"], df["to_region"]
    return ~((a == b) | (a.isna() & b.isna()))


def _changing(df: pd.DataFrame) -> pd.Series:
    """``from_rome != to_rome`` (false with a null)."""
    return (df["from_rome"] != df["to_rome"]) & df["from_rome"].notna() & df["to_rome"].notna()


def flows_model(model: Model, gold: Mapping[str, pd.DataFrame]) -> None:
    moves = {t: Cells(gold[t], t, period_keys(t), "moves") for t in FLOW_TABLES}
    for t, cells in moves.items():
        df = gold[t]
        model.add(cells, t, "moves")
        model.add(cells.using("hires"), t, "hires", lower=0, hidden=model.sensitive(df["reorientations"]))
        model.add(cells.using("via"), t, VIA, lower=0, hidden=model.sensitive(df["hires"] - df[VIA]))
        model.link(cells, cells.using("hires"))
        model.link(cells.using("hires"), cells.using("via"))

    balance, mobility = gold["region_balance"], gold["occupation_mobility"]
    pairs_df = gold["flows"].groupby(["from_rome", "to_rome"], dropna=False, as_index=False)["moves"].sum()
    pairs = Cells(pairs_df, "occupation_mobility_pair", ("from_rome", "to_rome"), "moves")
    model.add(pairs, "occupation_mobility", "moves")
    movers = Cells(mobility, "occupation_mobility", ("from_rome",), "movers")
    changers = movers.using("changers")
    stayers = Cells(mobility, "occupation_mobility_pair", ("from_rome", "from_rome"), "moves")
    model.add(movers, "occupation_mobility", "movers")
    model.add(changers, "occupation_mobility", "changers")
    model.link(movers, changers, both=True)
    model.link(movers, stayers, both=True)
    inflow = Cells(balance, "region_balance", ("region", "period_start"), "inflow")
    outflow = inflow.using("outflow")
    model.add(inflow, "region_balance", "inflow")
    model.add(outflow, "region_balance", "outflow")
    model.link(inflow, outflow, both=True)

    ps = "period_start"
    for system in ("moves", "hires", "via"):
        f, r, o, g = (moves[t].using(system) for t in FLOW_TABLES)
        model.line("flows.origin", f, ("from_rome", "from_region", ps))
        model.line("flows.destination", f, ("to_rome", "to_region", ps))
        model.line("flows.region_pair", f, ("from_region", "to_region", ps),
                   total=(r, ("from_region", "to_region", ps)))  # fmt: skip
        model.line("flows.occupation_pair", f, ("from_rome", "to_rome", ps),
                   total=(o, ("from_rome", "to_rome", ps)))  # fmt: skip
        model.line("flows_region.from", r, ("from_region", ps))
        model.line("flows_region.to", r, ("to_region", ps))
        model.line("flows_occupation.from", o, ("from_rome", ps))
        model.line("flows_occupation.to", o, ("to_rome", ps))
        model.line("flows_occupation.domain_pair", o, (*DOMAINS, ps),
                   total=(g, ("from_grand_domaine", "to_grand_domaine", ps)))  # fmt: skip
        model.line("flows_grand_domaine.from", g, ("from_grand_domaine", ps))
        model.line("flows_grand_domaine.to", g, ("to_grand_domaine", ps))
        # the period's total: the sum of any of the four tables (of the grand domaines, when all are shown)
        for t, cells in zip(FLOW_TABLES, (f, r, o, g), strict=True):
            model.line(f"{t}.period", cells, (ps,))
    # Moves only: the region balance and the occupation mobility publish more totals.
    r = moves["flows_region"]
    crossing = _crossing(r.df).to_numpy()
    model.line(
        "flows_region.outflow", r, ("from_region", ps), where=crossing, total=(outflow, ("region", ps))
    )
    model.line("flows_region.inflow", r, ("to_region", ps), where=crossing, total=(inflow, ("region", ps)))
    for t in ("flows", "flows_occupation"):
        model.line(f"{t}.pair_all_periods", moves[t], ("from_rome", "to_rome"), total=(pairs, pairs.keys))
        model.line(f"{t}.movers", moves[t], ("from_rome",), total=(movers, movers.keys))
        changing = _changing(moves[t].df).to_numpy()
        model.line(f"{t}.changers", moves[t], ("from_rome",), where=changing, total=(changers, changers.keys))


def stock_totals(market: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The regional and grand-domaine totals of the stock, keyed ``_k0``, ``_k1``."""
    present = market[market["seekers_stock"] > 0]
    out = {}
    for name, by in STOCK_TOTALS.items():
        sums = present.groupby(list(by), dropna=False, as_index=False)["seekers_stock"].sum()
        out[name] = sums.rename(columns={b: f"_k{i}" for i, b in enumerate(by)})
    return out


def market_model(model: Model, gold: Mapping[str, pd.DataFrame]) -> None:
    market, national = gold["market"], gold["market_national"]
    # A zero is never suppressed nor picked (a reader knows a suppressed cell holds someone): zero cells
    # stay out of the model, and visible.
    for count in MARKET_COUNTS:
        nonzero = (market[count] > 0).to_numpy()
        cells = Cells(market, "market", MARKET_KEYS["market"], count)
        totals = Cells(national, "market_national", MARKET_KEYS["market_national"], count)
        model.add(cells, "market", count, where=nonzero)
        model.add(totals, "market_national", count, where=(national[count] > 0).to_numpy())
        model.line("market.rome_month", cells, ("rome", "month"), where=nonzero, total=(totals, totals.keys))
        if count != "seekers_stock":  # the stock's region lines have their published totals below
            model.line("market.region_month", cells, ("code_region", "month"), where=nonzero)
    stock = Cells(market, "market", MARKET_KEYS["market"], "seekers_stock")
    present = (market["seekers_stock"] > 0).to_numpy()
    for name, sums in stock_totals(market).items():
        totals = Cells(sums, name, ("_k0", "_k1"), "seekers_stock")
        model.add(totals, "market", "seekers_stock")
        model.line(name, stock, STOCK_TOTALS[name], where=present, total=(totals, totals.keys))


def solved(gold: Mapping[str, pd.DataFrame], *, min_cell: int, max_rounds: int) -> Model:
    """Every cell of the published tables, suppressed to the fixpoint."""
    model = Model(min_cell)
    flows_model(model, gold)
    market_model(model, gold)
    model.solve(max_rounds)
    return model

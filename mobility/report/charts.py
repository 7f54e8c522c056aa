"""Plotly figures of the small tables of ``mobility.figures`` (pandas), for the report and the notebooks.

Every trace declares in ``meta.counts`` which of its arrays hold counts of people (``[]`` when none), so
that a test can check, in the rendered page, that no count under the threshold is drawn. Nothing here
fetches anything at run time: no map tiles, no web fonts; the map is drawn from the regions' centroids on
plain axes.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mobility.report.text import Text

GREEN, RED, BLUE, ORANGE, GREY = "#1b7837", "#b2182b", "#2166ac", "#e08214", "#8c8c8c"
MAINLAND_LAT = (41.0, 51.5)  # regions outside this band are overseas: listed, not drawn on the map


def _layout(fig: go.Figure, t: Text, title: str, height: int = 420) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 15}},
        separators=t.separators,
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        template="plotly_white",
        font={"family": "Segoe UI, Helvetica, Arial, sans-serif", "size": 12},
    )
    return fig


def _short(label: object, width: int = 38) -> str:
    text = str(label) if label is not None and not (isinstance(label, float) and math.isnan(label)) else "?"
    return text if len(text) <= width else text[: width - 1] + "…"


def mainland(df: pd.DataFrame, lat: str = "lat") -> pd.Series:
    return df[lat].between(*MAINLAND_LAT)


def flow_map(pairs: pd.DataFrame, balance: pd.DataFrame, t: Text, *, top: int = 25) -> go.Figure:
    """Regions at their centroids, a circle per region sized by its published moves in and out and coloured by
    its net balance, and the ``top`` largest flows between two mainland regions as lines."""
    fig = go.Figure()
    lines = pairs[
        (pairs["from_region"] != pairs["to_region"]) & mainland(pairs, "from_lat") & mainland(pairs, "to_lat")
    ]
    lines = lines[lines["moves"] > 0].nlargest(top, "moves")
    widest = max(lines["moves"].max(), 1) if len(lines) else 1
    for row in lines.itertuples():
        fig.add_trace(
            go.Scatter(
                x=[row.from_lng, row.to_lng],
                y=[row.from_lat, row.to_lat],
                mode="lines",
                line={"width": 1 + 7 * row.moves / widest, "color": BLUE},
                opacity=0.45,
                customdata=[[row.moves], [row.moves]],
                hovertemplate=f"{row.from_name} → {row.to_name}<br>{t('moves')}: "
                + "%{customdata[0]:,}<extra></extra>",
                showlegend=False,
                meta={"counts": ["customdata"]},
            )
        )
    shown = balance[mainland(balance)]
    size = (shown["inflow"] + shown["outflow"]).astype(float)
    biggest = max(size.max(), 1.0) if len(shown) else 1.0
    fig.add_trace(
        go.Scatter(
            x=shown["lng"],
            y=shown["lat"],
            mode="markers+text",
            text=shown["name"],
            textposition="bottom center",
            marker={
                "size": 14 + 36 * (size / biggest) ** 0.5,
                "color": [GREEN if n >= 0 else RED for n in shown["net"]],
                "opacity": 0.75,
                "line": {"width": 1, "color": "white"},
            },
            customdata=shown[["inflow", "outflow", "internal"]].to_numpy(),
            hovertext=[f"{t('net')}: {t.int(n)}" for n in shown["net"]],
            hovertemplate="<b>%{text}</b><br>"
            + f"{t('inflow')}: %{{customdata[0]:,}}<br>{t('outflow')}: %{{customdata[1]:,}}<br>"
            + f"{t('internal')}: %{{customdata[2]:,}}<br>%{{hovertext}}<extra></extra>",
            showlegend=False,
            meta={"counts": ["customdata"]},
        )
    )
    fig.update_xaxes(visible=False)
    # degrees of longitude are shorter than degrees of latitude at 46.5° N
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1 / math.cos(math.radians(46.5)))
    title = t("c_flow_map", n=len(lines)) if len(lines) else t("c_flow_map_none")
    return _layout(fig, t, title, height=620)


def region_matrix(pairs: pd.DataFrame, t: Text) -> go.Figure:
    """Heatmap of published moves from a region (rows) to another (columns); the diagonal is left out."""
    crossing = pairs[pairs["from_region"] != pairs["to_region"]]
    ends = [pairs[[f"{e}_region", f"{e}_name"]].set_axis(["region", "name"], axis=1) for e in ("from", "to")]
    order = pd.concat(ends).drop_duplicates("region").sort_values("region")
    names = dict(zip(order["region"], order["name"].map(_short), strict=True))
    grid = crossing.pivot_table(index="from_region", columns="to_region", values="moves", aggfunc="sum")
    grid = grid.reindex(index=order["region"], columns=order["region"])
    z = [[None if pd.isna(v) or v == 0 else int(v) for v in row] for row in grid.to_numpy()]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[names[c] for c in grid.columns],
            y=[names[c] for c in grid.index],
            colorscale="Blues",
            hovertemplate=f"%{{y}} → %{{x}}<br>{t('moves')}: %{{z:,}}<extra></extra>",
            colorbar={"title": {"text": t("moves")}},
            meta={"counts": ["z"]},
        )
    )
    fig.update_yaxes(autorange="reversed", title=t("from_region"))
    fig.update_xaxes(title=t("to_region"), tickangle=-45)
    return _layout(fig, t, t("c_region_matrix"), height=640)


def _sankey(links: pd.DataFrame, src: str, dst: str, order: list, color: str, fill: str) -> go.Sankey:
    """Origins (left, ``src`` codes) to destinations (right, ``dst``) by ``moves``, nodes labelled "code
    label" (``from_label``, ``to_label``) in ``order``."""
    names = {
        **dict(zip(links[src], links["from_label"], strict=True)),
        **dict(zip(links[dst], links["to_label"], strict=True)),
    }
    origins = [c for c in order if c in set(links[src])]
    dests = [c for c in order if c in set(links[dst])]
    index = {("o", c): i for i, c in enumerate(origins)} | {
        ("d", c): len(origins) + i for i, c in enumerate(dests)
    }
    return go.Sankey(
        arrangement="snap",
        node={
            "label": [f"{c} {_short(names.get(c), 30)}" for c in origins + dests],
            "pad": 8,
            "thickness": 14,
            "color": color,
        },
        link={
            "source": [index["o", c] for c in links[src]],
            "target": [index["d", c] for c in links[dst]],
            "value": links["moves"].astype(int).tolist(),
            "color": fill,
        },
        meta={"counts": ["link.value"]},
    )


def sankey(links: pd.DataFrame, t: Text) -> go.Figure:
    """Grands domaines of origin (left) to grands domaines of destination (right), by published moves."""
    links = links[links["moves"] > 0]
    order = sorted(set(links["from_grand_domaine"]) | set(links["to_grand_domaine"]))
    trace = _sankey(links, "from_grand_domaine", "to_grand_domaine", order, BLUE, "rgba(33,102,172,0.25)")
    return _layout(go.Figure(trace), t, t("c_sankey"), height=640)


def occupation_sankey(passes: pd.DataFrame, t: Text) -> go.Figure:
    """The main moves from one occupation to another (``figures.occupation_passes``) as a Sankey."""
    order = list(dict.fromkeys([*passes["from_rome"], *passes["to_rome"]]))  # the most frequent first
    trace = _sankey(passes, "from_rome", "to_rome", order, GREEN, "rgba(27,120,55,0.25)")
    return _layout(go.Figure(trace), t, t("c_occupation_sankey", n=len(passes)), height=560)


def occupation_balance(balance: pd.DataFrame, t: Text, *, top: int = 12) -> go.Figure:
    """The occupations most left for another, and most joined from another (published moves)."""
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=(t("c_leaving"), t("c_arriving")), horizontal_spacing=0.25
    )
    for col, (what, color) in enumerate((("leaving", RED), ("arriving", GREEN)), start=1):
        best = balance.nlargest(top, what).iloc[::-1]
        fig.add_trace(
            go.Bar(
                x=best[what],
                y=[f"{r} {_short(lbl, 30)}" for r, lbl in zip(best["rome"], best["label"], strict=True)],
                orientation="h",
                marker_color=color,
                name=t(what),
                hovertemplate="%{y}<br>%{x:,}<extra></extra>",
                meta={"counts": ["x"]},
            ),
            row=1,
            col=col,
        )
    fig.update_layout(showlegend=False)
    return _layout(fig, t, t("s_occupations"), height=460)


def time_to_move(delays: pd.DataFrame, t: Text) -> go.Figure:
    ordered = delays.sort_values("median_days")
    fig = go.Figure(
        go.Bar(
            x=ordered["median_days"],
            y=[
                f"{c} {_short(lbl, 34)}"
                for c, lbl in zip(ordered["grand_domaine"], ordered["label"], strict=True)
            ],
            orientation="h",
            marker_color=BLUE,
            customdata=ordered[["moves"]].to_numpy(),
            hovertemplate=f"%{{y}}<br>{t('median_days')}: %{{x:.0f}}<br>{t('moves')}: "
            + "%{customdata[0]:,}<extra></extra>",
            meta={"counts": ["customdata"]},
        )
    )
    fig.update_xaxes(title=t("median_days"))
    return _layout(fig, t, t("c_delay"), height=460)


def offers_share(shares: pd.DataFrame, t: Text) -> go.Figure:
    fig = go.Figure(
        go.Scatter(
            x=shares["period"],
            y=shares["share_via_offers"],
            mode="lines+markers",
            line_color=ORANGE,
            customdata=shares[["hires"]].to_numpy(),
            hovertemplate=f"%{{x}}: %{{y:.1%}}<br>{t('hires')}: %{{customdata[0]:,}}<extra></extra>",
            meta={"counts": ["customdata"]},
        )
    )
    fig.update_yaxes(tickformat=".0%", title=t("share"), rangemode="tozero")
    fig.update_xaxes(title=t("period"))
    return _layout(fig, t, t("c_offers_share"), height=360)


def market(overview: pd.DataFrame, t: Text) -> go.Figure:
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for col, name, color in (
        ("seekers_stock", "stock", BLUE),
        ("exits_to_work", "exits", GREEN),
        ("registrations", "registrations", GREY),
    ):
        fig.add_trace(
            go.Scatter(
                x=overview["month"], y=overview[col], name=t(name), line_color=color, meta={"counts": ["y"]}
            ),
            secondary_y=False,
        )
    fig.add_trace(
        go.Scatter(
            x=overview["month"],
            y=overview["offers_published"],
            name=t("offers"),
            line_color=ORANGE,
            line_dash="dot",
            meta={"counts": []},
        ),  # offers are not people
        secondary_y=True,
    )
    fig.update_yaxes(title=t("stock"), secondary_y=False, rangemode="tozero")
    fig.update_yaxes(title=t("offers"), secondary_y=True, rangemode="tozero", showgrid=False)
    fig.update_layout(legend={"orientation": "h", "y": -0.15})
    return _layout(fig, t, t("c_market"), height=400)


def tense_occupations(tense: pd.DataFrame, t: Text, *, months: int) -> go.Figure:
    fig = go.Figure()
    for row in tense.itertuples():
        series = pd.DataFrame([dict(s.asDict()) if hasattr(s, "asDict") else dict(s) for s in row.series])
        fig.add_trace(
            go.Scatter(
                x=series["month"],
                y=series["tension"],
                mode="lines",
                name=f"{row.rome} {_short(row.label, 32)}",
                meta={"counts": []},
            )
        )
    fig.update_yaxes(title=t("tension"), rangemode="tozero")
    fig.update_layout(legend={"font": {"size": 10}})
    return _layout(fig, t, t("c_tense", n=months), height=440)


def tension_by_region(tension: pd.DataFrame, t: Text) -> go.Figure:
    grid = tension.pivot_table(index="name", columns="month", values="tension", aggfunc="first").sort_index()
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[pd.Timestamp(m).strftime("%Y-%m") for m in grid.columns],
            y=[_short(n) for n in grid.index],
            colorscale="YlOrRd",
            colorbar={"title": {"text": t("tension")}},
            hovertemplate="%{y}, %{x}: %{z:.3f}<extra></extra>",
            meta={"counts": []},
        )
    )
    return _layout(fig, t, t("c_tension_region"), height=560)


def models(runs: pd.DataFrame, t: Text) -> go.Figure:
    fig = go.Figure()
    for metric, color in (("ndcg_at_10", BLUE), ("hit_at_10", GREEN), ("mrr", ORANGE)):
        fig.add_trace(
            go.Bar(
                x=runs["model"],
                y=runs[f"test_{metric}"],
                name=metric,
                marker_color=color,
                meta={"counts": []},
            )
        )
    fig.update_yaxes(range=[0, 1])
    fig.update_layout(barmode="group")
    return _layout(fig, t, t("c_models"), height=360)


def disparities(segments: pd.DataFrame, t: Text) -> go.Figure:
    shown = segments.dropna(subset=["hit_at_10"])
    fig = go.Figure(
        go.Bar(
            x=[f"{s}: {v}" for s, v in zip(shown["segment"], shown["value"], strict=True)],
            y=shown["hit_at_10"],
            marker_color=[BLUE if i % 2 else GREEN for i in pd.factorize(shown["segment"])[0]],
            customdata=shown[["examples"]].to_numpy(),
            hovertemplate=f"%{{x}}<br>hit@10: %{{y:.3f}}<br>{t('examples')}: "
            + "%{customdata[0]:,}<extra></extra>",
            meta={"counts": ["customdata"]},
        )
    )
    fig.update_yaxes(range=[0, 1], title="hit@10")
    fig.update_xaxes(tickangle=-45)
    return _layout(fig, t, t("c_disparities"), height=420)

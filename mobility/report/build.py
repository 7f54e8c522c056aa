"""``mobility report``: one self-contained HTML file (charts and their library embedded, nothing fetched when
it opens) and the published views exported beside it.

Every figure comes from ``mobility.figures`` over the ``gold.published_*`` views, the recommender's card
from the tracking store, the data-quality summary from ``silver.ingestion_log`` and ``silver.quarantine``
(counts only, never a record). Counts in tables carry ``class="count"`` and chart traces declare their
counts (``meta.counts``), so that the tests can check that none is under the threshold.
"""

from __future__ import annotations

import html
import logging
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from plotly.offline import get_plotlyjs
from pyspark.sql import DataFrame

from mobility import figures, publish
from mobility.config import Settings
from mobility.errors import MobilityError
from mobility.lake import Lake, LakeError
from mobility.recommend.card import ModelCard, model_card
from mobility.report import charts, exports
from mobility.report.text import Text

log = logging.getLogger(__name__)

REPORT_FILE = "rapport.html"  # French by default; report.html for --lang en
BATCHES_SHOWN = 12  # the data-quality table shows the last batches ingested


@dataclass
class Table:
    """An HTML table: headers, and rows of cells, each (text, css class) ("count" for counts of people)."""

    headers: list[str]
    rows: list[list[tuple[str, str]]] = field(default_factory=list)


@dataclass
class Section:
    id: str
    title: str
    blocks: list[object] = field(default_factory=list)  # str (paragraph), Markup (chart), Table


def _cell(text: object, kind: str = "") -> tuple[str, str]:
    return (str(text), kind)


def _count(t: Text, n: object) -> tuple[str, str]:
    return (t.count(None if pd.isna(n) else n), "count")


def _num(text: str) -> tuple[str, str]:
    return (text, "num")


def _pandas(df: DataFrame) -> pd.DataFrame:
    """A small Spark result to pandas (the figures are bounded by the referentials)."""
    # bounded: figures bounded by the referentials (mobility.figures)
    return df.toPandas()


def has_data(fig: go.Figure) -> bool:
    """Whether any trace of ``fig`` holds a value to draw (a chart of nothing is replaced by a sentence)."""

    def filled(values: object) -> bool:
        if values is None:
            return False
        if isinstance(values, list | tuple) or hasattr(values, "tolist"):
            return any(filled(v) for v in (values.tolist() if hasattr(values, "tolist") else values))
        return not pd.isna(values)

    for trace in fig.data:
        if trace.type == "heatmap":
            drawn = filled(trace.z)
        elif trace.type == "sankey":
            drawn = filled(trace.link.value)
        else:
            drawn = filled(trace.x) and filled(trace.y)
        if drawn:
            return True
    return False


def _chart(t: Text, fig: go.Figure) -> Markup:
    if not has_data(fig):
        title = html.escape(fig.layout.title.text or "")
        colon = "\u00a0:" if t.fr else ":"
        return Markup(f'<p class="empty"><b>{title}</b>{colon} {html.escape(t("no_data"))}</p>')
    div = pio.to_html(
        fig, full_html=False, include_plotlyjs=False, config={"displaylogo": False, "responsive": True}
    )
    return Markup(f'<div class="chart">{div}</div>')


def _views(lake: Lake) -> dict[str, object]:
    try:
        return publish.read(lake)
    except LakeError as error:
        raise MobilityError(f"report: {error}") from error


def sections(
    lake: Lake, views: dict[str, DataFrame], settings: Settings, t: Text, card: ModelCard | None
) -> tuple[list[Section], dict]:
    """The report's sections, and the header's facts."""
    top = settings.report.top
    v = views
    ref = {name: lake.read(f"ref.{name}") for name in ("rome", "rome_tree", "rome_mobility", "region")}
    key = figures.key_figures(v["flows_region"], v["occupation_mobility"], v["market_national"]).first()
    month = key["last_month"].strftime("%Y-%m") if key["last_month"] else "?"
    out: list[Section] = []

    s = Section("key", t("s_key"))
    facts = Table(["", ""])
    facts.rows = [
        [_cell(t("k_moves")), _count(t, key["moves"])],
        [_cell(t("k_hires")), _count(t, key["hires"])],
        [_cell(t("k_reorientations")), _count(t, key["reorientations"])],
        [_cell(t("k_region")), _num(t.pct(key["share_changing_region"]))],
        [_cell(t("k_occupation")), _num(t.pct(key["share_changing_occupation"]))],
        [_cell(t("k_days")), _num(t("days", n=t.int(key["median_days_to_move"])))],
        [_cell(t("k_stock", month=month)), _count(t, key["seekers_stock"])],
        [_cell(t("k_offers", month=month)), _num(t.int(key["offers_published"]))],
        [_cell(t("k_tension", month=month)), _num(t.float(key["tension"], 3))],
        [_cell(t("k_periods")), _num(f"{key['first_period']} – {key['last_period']}")],
        [
            _cell(t("k_suppressed")),
            _num(
                f"{t.int(key['cells_suppressed'])} / "
                f"{t.int(key['cells_suppressed'] + key['cells_published'])}"
            ),
        ],
    ]
    s.blocks.append(facts)
    out.append(s)

    s = Section("regions", t("s_regions"))
    pairs = _pandas(figures.region_flows(v["flows_region"], ref["region"]))
    balance = _pandas(figures.region_balance(v["region_balance"], ref["region"]))
    s.blocks += [_chart(t, charts.flow_map(pairs, balance, t, top=25)), t("c_flow_map_note")]
    overseas = balance[~charts.mainland(balance)].sort_values("region")
    if len(overseas):
        table = Table([t("c_overseas"), t("inflow"), t("outflow"), t("net"), t("internal")])
        table.rows = [
            [
                _cell(r.name),
                _count(t, r.inflow),
                _count(t, r.outflow),
                _num(t.int(r.net)),
                _count(t, r.internal),
            ]
            for r in overseas.itertuples()
        ]
        s.blocks.append(table)
    s.blocks.append(_chart(t, charts.region_matrix(pairs, t)))
    out.append(s)

    s = Section("occupations", t("s_occupations"))
    domains = figures.grand_domaine_flows(v["flows_grand_domaine"], ref["rome_tree"], changing_only=True)
    s.blocks.append(_chart(t, charts.sankey(_pandas(domains), t)))
    passes = _pandas(
        figures.occupation_passes(v["occupation_mobility"], ref["rome"], ref["rome_mobility"], top)
    )
    table = Table(
        [t("from_occupation"), t("to_occupation"), t("moves"), t("share_of_movers"), t("rome_link")]
    )
    table.rows = [
        [
            _cell(f"{r.from_rome} {r.from_label}"),
            _cell(f"{r.to_rome} {r.to_label}"),
            _count(t, r.moves),
            _num(t.pct(r.share)),
            _cell(t.link(r.rome_link)),
        ]
        for r in passes.itertuples()
    ]
    s.blocks += [Markup(f"<h3>{html.escape(t('passes_title'))}</h3>"), t("passes_note", n=len(passes))]
    s.blocks += [_chart(t, charts.occupation_sankey(passes, t)), table]
    moving = _pandas(figures.occupation_balance(v["flows_occupation"], ref["rome"]))
    s.blocks.append(_chart(t, charts.occupation_balance(moving, t, top=12)))
    out.append(s)

    s = Section("delay", t("s_delay"))
    delays = _pandas(figures.time_to_move(v["flows_grand_domaine"], ref["rome_tree"]))
    s.blocks.append(_chart(t, charts.time_to_move(delays, t)))
    s.blocks.append(_chart(t, charts.offers_share(_pandas(figures.via_offers(v["flows_grand_domaine"])), t)))
    out.append(s)

    s = Section("tension", t("s_tension"))
    start = figures.flows_start(v["flows_region"]).first()["start"]  # one row
    s.blocks.append(
        _chart(t, charts.market(_pandas(figures.market_overview(v["market_national"], start)), t))
    )
    tense = _pandas(
        figures.tense_occupations(
            v["market_national"], ref["rome"], months=12, top=top, min_stock=settings.report.min_stock
        )
    )
    s.blocks.append(_chart(t, charts.tense_occupations(tense.head(8), t, months=12)))
    table = Table([t("tense_table"), t("tension"), t("mean_stock")])
    table.rows = [
        [_cell(f"{r.rome} {r.label}"), _num(t.float(r.tension, 3)), _num(t.int(r.mean_stock))]
        for r in tense.itertuples()
    ]
    s.blocks.append(table)
    by_region = _pandas(figures.tension_by_region(v["market"], ref["region"], start))
    s.blocks.append(_chart(t, charts.tension_by_region(by_region, t)))
    out.append(s)

    # bounded: 18 rows
    regions = dict(ref["region"].select("code_region", "name").toPandas().itertuples(index=False))
    out.append(_model_section(card, t, regions))
    out.append(_quality_section(lake, t))
    s = Section("method", t("s_method"))
    s.blocks += list(t.method())
    table = Table(["", ""])
    table.rows = [[_cell(term, "term"), _cell(text)] for term, text in t.definitions()]
    s.blocks.append(table)
    out.append(s)
    header = {"first": key["first_period"] or "?", "last": key["last_period"] or "?"}
    return out, header


def _model_section(card: ModelCard | None, t: Text, regions: dict[str, str]) -> Section:
    s = Section("model", t("s_model"))
    if card is None or card.champion is None:
        s.blocks.append(t("m_none"))
        return s
    s.blocks.append(
        t("m_champion", model=card.model, version=card.champion, name=card.name, day=card.trained_on)
    )
    s.blocks.append(t("m_windows", **card.windows))
    if card.decision:
        s.blocks.append(t("m_decision", reason=card.decision))
    metrics = Table([t("metric"), t("value")])
    metrics.rows = [
        [_cell(t.metric(m)), _count(t, v) if m == "examples" else _num(t.float(v, 4))]
        for m, v in card.test.items()
    ]
    s.blocks += [Markup(f"<h3>{html.escape(t('m_metrics'))}</h3>"), metrics]
    if len(card.runs):
        s.blocks.append(_chart(t, charts.models(card.runs, t)))
        runs = Table(
            [t("model"), t("version"), t("champion"), "NDCG@10", "hit@10", "MRR", t.metric("coverage"), "run"]
        )
        runs.rows = [
            [
                _cell(r.model),
                _num(str(r.version)),
                _cell(t("yes") if r.champion else t("no")),
                _num(t.float(r.test_ndcg_at_10, 4)),
                _num(t.float(r.test_hit_at_10, 4)),
                _num(t.float(r.test_mrr, 4)),
                _num(t.float(r.test_coverage, 4)),
                _cell(r.run_id[:8], "mono"),
            ]
            for r in card.runs.itertuples()
        ]
        s.blocks += [Markup(f"<h3>{html.escape(t('m_runs'))}</h3>"), runs]
    if len(card.segments):
        named = card.segments.copy()
        named[["segment", "value"]] = [
            t.segment(str(a), str(b), regions) for a, b in zip(named["segment"], named["value"], strict=True)
        ]
        s.blocks += [
            Markup(f"<h3>{html.escape(t('m_segments'))}</h3>"),
            _chart(t, charts.disparities(named, t)),
            t("m_segments_note", m=t.min_cell),
        ]
        seg = Table([t("segment"), t("value"), t("examples"), "hit@10", "NDCG@10"])
        seg.rows = [
            [
                _cell(r.segment),
                _cell(r.value),
                _count(t, r.examples) if not pd.isna(r.examples) else _cell(t("withheld")),
                _num(t.float(r.hit_at_10, 3)),
                _num(t.float(r.ndcg_at_10, 3)),
            ]
            for r in named.itertuples()
        ]
        s.blocks.append(seg)
    data = Table([t("table"), t("version")])
    data.rows = [[_cell(r.table, "mono"), _num(str(r.version))] for r in card.data_versions.itertuples()]
    s.blocks += [
        Markup(f"<h3>{html.escape(t('m_data'))}</h3>"),
        data,
        Markup(f"<h3>{html.escape(t('m_limits'))}</h3>"),
        t("m_limits_text"),
    ]
    return s


def _quality_section(lake: Lake, t: Text) -> Section:
    s = Section("quality", t("s_quality"))
    if not lake.exists("silver.ingestion_log"):
        s.blocks.append(t("q_none"))
        return s
    batches = figures.last_batches(lake.read("silver.ingestion_log"), BATCHES_SHOWN)
    ingested = _pandas(figures.ingestion_summary(lake.read("silver.ingestion_log"), batches))
    table = Table(
        [t("q_batch"), t("q_when"), t("table"), t("q_read"), t("q_valid"), t("q_quarantined"), t("q_files")]
    )
    table.rows = [
        [
            _cell(r.batch_id, "mono"),
            _cell(f"{r.ingested_at:%Y-%m-%d %H:%M}"),
            _cell(r.table, "mono"),
            _num(t.int(r.read)),
            _num(t.int(r.valid)),
            _num(t.int(r.quarantined)),
            _num(t.int(r.files)),
        ]
        for r in ingested.itertuples()
    ]
    s.blocks += [t("q_note", n=ingested["batch_id"].nunique()), table]
    reasons = _pandas(figures.quarantine_reasons(lake.read("silver.quarantine"), batches))
    if len(reasons):
        table = Table([t("table"), t("q_reason"), "", t("q_records"), t("q_files")])
        table.rows = [
            [
                _cell(r.table, "mono"),
                _cell(r.reason, "mono"),
                _cell(t.reason(r.reason)),
                _num(t.int(r.records)),
                _num(t.int(r.files)),
            ]
            for r in reasons.itertuples()
        ]
        s.blocks.append(table)
    else:
        s.blocks.append(t("q_none"))
    return s


def render(sections_: list[Section], header: dict, t: Text, lake_root: str, exported: dict[str, int]) -> str:
    env = Environment(
        loader=PackageLoader("mobility.report", "."), autoescape=select_autoescape(["html", "j2"])
    )
    template = env.get_template("template.html.j2")
    return template.render(
        t=t,
        lang=t.lang,
        sections=sections_,
        header=header,
        lake=lake_root,
        day=date.today().isoformat(),
        plotly_js=Markup(get_plotlyjs()),
        exported=exported,
        kind=_kind,
    )


def _kind(block: object) -> str:
    return "table" if isinstance(block, Table) else "html" if isinstance(block, Markup) else "text"


def build(lake: Lake, settings: Settings, out: Path, lang: str) -> dict[str, object]:
    """Write ``out/rapport.html`` (``report.html`` in English) and ``out/exports/``; figures of the run."""
    started = time.monotonic()
    t = Text(lang, settings.privacy.min_cell)
    views = _views(lake)  # fails before any work when the flows step has not run
    out.mkdir(parents=True, exist_ok=True)
    try:
        card = model_card(settings)
    except MobilityError as error:  # tracking unreachable: the report still has the lake's figures
        log.warning("report: no recommender card (%s)", error)
        card = None
    parts, header = sections(lake, views, settings, t, card)
    log.info("report: figures read in %.1f s", time.monotonic() - started)
    exported = exports.write(lake, out / "exports", lang)
    path = out / (REPORT_FILE if lang == "fr" else "report.html")
    path.write_text(render(parts, header, t, str(settings.lake.root), exported), encoding="utf-8")
    log.info(
        "report: wrote %s (%.1f MB) in %.1f s", path, path.stat().st_size / 1e6, time.monotonic() - started
    )
    return {
        "report": str(path),
        "charts": sum(isinstance(b, Markup) and 'class="chart"' in b for s in parts for b in s.blocks),
        "exported views": len(exported),
        "exported rows": sum(exported.values()),
    }

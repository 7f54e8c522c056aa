"""The report on the generated lake: one offline HTML file opened in headless Chromium (every chart drawn, no
console error, no request leaving the file), French by default and English on demand, labels from the ROME
referential, exports of the published views with their dictionary, and no count of people under the
threshold nor any seeker id in the report or the exports."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from mobility import pipeline
from mobility.publish import GOLD_TABLES
from mobility.report.exports import COLUMNS
from tests.conftest import PROJECT_ROOT, seeker_ids_in

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("MOBILITY_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = PROJECT_ROOT / "build" / "screenshots"
# published columns holding counts of people (the dictionary says "(people" for each)
PEOPLE = {c for c, (_, en) in COLUMNS.items() if "(people" in en}


@pytest.fixture(scope="module")
def reports(scored_lake, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    out = {}
    for lang in ("fr", "en"):
        folder = tmp_path_factory.mktemp(f"report-{lang}")
        out[lang] = pipeline.run_report(scored_lake.settings, out=folder, lang=lang)
    return out


def _open(path: Path, screenshot: Path | None = None) -> dict:
    """Open ``path`` in Chromium with every network request refused; what the page showed and logged."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs Debian's (or set MOBILITY_CHROMIUM)")
    seen: dict = {"console": [], "errors": [], "requests": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: seen["console"].append((m.type, m.text)))
        page.on("pageerror", lambda e: seen["errors"].append(str(e)))

        def refuse(route):
            seen["requests"].append(route.request.url)
            route.abort()

        page.route(re.compile(r"^(?!file:).*"), refuse)  # offline: anything but the file itself is refused
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_function("() => document.querySelectorAll('.chart .main-svg').length > 0")
        page.wait_for_timeout(500)
        # per chart: its SVG layers, and its data marks actually drawn (lines, points, bars, heatmap images,
        # Sankey links and nodes): a chart of nothing has none
        seen["charts"] = page.evaluate(
            """() => Array.from(document.querySelectorAll('.chart')).map(c => {
                const marks = Array.from(c.querySelectorAll('.overplot .trace path, .overplot .hm image, '
                    + '.sankey .sankey-link, .sankey .sankey-node rect'));
                const drawn = marks.filter(e => {
                    const d = e.getAttribute('d');
                    const href = e.getAttribute('href') || e.getAttribute('xlink:href');
                    return (d && d.length > 4 && d !== 'M0,0Z') || (href && href.length > 20)
                        || (e.tagName === 'rect' && +e.getAttribute('height') > 0);
                });
                const box = c.getBoundingClientRect();
                return {svg: c.querySelectorAll('svg.main-svg').length, marks: drawn.length,
                        height: box.height, width: box.width,
                        title: (c.querySelector('.gtitle') || {}).textContent};
            })"""
        )
        # every trace's arrays declared as counts (meta.counts), flattened, as plotly.js decoded them
        # (``_fullData``: numpy arrays travel base64-encoded in ``data``)
        seen["traces"] = page.evaluate(
            """() => {
                const get = (o, path) => path.split('.').reduce((a, k) => (a == null ? a : a[k]), o);
                const flat = (x) => Array.isArray(x) || ArrayBuffer.isView(x)
                    ? Array.from(x).flatMap(flat) : [x];
                const plots = Array.from(document.querySelectorAll('.js-plotly-plot'));
                return plots.flatMap(gd => gd._fullData.map(full => {
                    const meta = gd.data[full.index].meta;
                    const declared = !!(meta && Array.isArray(meta.counts));
                    return {type: full.type, declared: declared,
                            counts: declared ? meta.counts.flatMap(p => flat(get(full, p))) : []};
                }));
            }"""
        )
        seen["count_cells"] = page.evaluate(
            "() => Array.from(document.querySelectorAll('td.count')).map(td => td.textContent)"
        )
        seen["text"] = page.evaluate("() => document.body.innerText")
        seen["lang"] = page.evaluate("() => document.documentElement.lang")
        if screenshot:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return seen


@pytest.fixture(scope="module")
def opened(reports) -> dict[str, dict]:
    return {lang: _open(Path(r["report"]), SCREENSHOTS / f"report-{lang}.png") for lang, r in reports.items()}


def test_the_report_opens_offline_with_every_chart_drawn_and_no_console_error(reports, opened):
    for lang, seen in opened.items():
        assert seen["requests"] == [], f"{lang}: the report asked the network for {seen['requests'][:3]}"
        assert seen["errors"] == [], seen["errors"]
        assert [m for m in seen["console"] if m[0] == "error"] == []
        assert len(seen["charts"]) == reports[lang]["charts"] >= 8
        for chart in seen["charts"]:
            assert chart["svg"] > 0 and chart["marks"] > 0, chart
            assert chart["height"] > 200 and chart["width"] > 400, chart
        shot = SCREENSHOTS / f"report-{lang}.png"
        assert shot.stat().st_size > 50_000  # a full page of charts, not a blank one


def test_the_report_is_french_by_default_and_english_on_demand(reports, opened):
    assert Path(reports["fr"]["report"]).name == "rapport.html" and opened["fr"]["lang"] == "fr"
    assert "Chiffres clés" in opened["fr"]["text"] and "Qualité des données" in opened["fr"]["text"]
    assert Path(reports["en"]["report"]).name == "report.html" and opened["en"]["lang"] == "en"
    assert "Key figures" in opened["en"]["text"] and "Chiffres clés" not in opened["en"]["text"]
    for section in ("Le recommandeur", "Méthodologie et définitions", "Tensions sur le marché du travail"):
        assert section in opened["fr"]["text"]


def test_labels_come_from_the_rome_referential(scored_lake, opened):
    lake = scored_lake.lake
    passes = (
        lake.read("gold.published_occupation_mobility")
        .select("from_rome", F.explode("top_destinations").alias("d"))
        .where("d.to_rome != from_rome AND d.moves IS NOT NULL")
        .orderBy(F.desc("d.moves"), "from_rome", "d.to_rome")
        .first()
    )
    assert passes is not None, "the generated lake has no published occupation pass"
    labels = dict(lake.read("ref.rome").where("version = 'v3'").select("code_rome", "label").collect())
    text = opened["fr"]["text"]
    assert f"{passes['from_rome']} {labels[passes['from_rome']]}" in text
    assert f"{passes['d']['to_rome']} {labels[passes['d']['to_rome']]}" in text


def _number(text: str) -> int | None:
    digits = re.sub(r"[\s\u202f\u00a0,]", "", text)
    return int(digits) if digits.isdigit() else None


def test_no_count_of_people_under_the_threshold_is_drawn_or_written_in_the_report(scored_lake, opened):
    m = scored_lake.settings.privacy.min_cell
    for lang, seen in opened.items():
        assert all(tr["declared"] for tr in seen["traces"]), "a chart trace does not declare its counts"
        drawn = [v for tr in seen["traces"] for v in tr["counts"] if isinstance(v, int | float)]
        assert len(drawn) >= 50, "the check would be vacuous"
        assert [v for v in drawn if 0 < v < m] == [], lang
        written = [_number(c) for c in seen["count_cells"] if not c.startswith("<")]
        assert len(written) > 10 and None not in written, seen["count_cells"][:20]
        assert [v for v in written if 0 < v < m] == [], lang


def test_exports_hold_every_published_view_with_a_dictionary_and_no_small_count(scored_lake, reports):
    lake, m = scored_lake.lake, scored_lake.settings.privacy.min_cell
    folder = Path(reports["fr"]["report"]).parent / "exports"
    dictionary = (folder / "DICTIONARY.md").read_text(encoding="utf-8")
    for name in GOLD_TABLES:
        view = f"published_{name}"
        published = lake.read(f"gold.{view}")
        csv = pd.read_csv(folder / f"{view}.csv", dtype=str, keep_default_na=False)
        parquet = pd.read_parquet(folder / f"{view}.parquet")
        assert len(csv) == len(parquet) == published.count()
        assert list(csv.columns) == list(parquet.columns) == published.columns
        for column in published.columns:
            assert f"| `{column}` |" in dictionary, (view, column)
        for column in PEOPLE & set(parquet.columns):
            values = pd.to_numeric(parquet[column], errors="coerce")
            assert not ((values > 0) & (values < m)).any(), (view, column)
        if "top_destinations" in parquet.columns:
            nested = [d["moves"] for ds in parquet["top_destinations"] for d in ds if d["moves"] is not None]
            assert nested and min(nested) >= m
    assert reports["fr"]["exported views"] == len(GOLD_TABLES)


def test_no_seeker_id_reaches_the_report_or_the_exports(scored_lake, reports):
    ids = {r[0] for r in scored_lake.lake.read("silver.seekers").select("seeker_id").collect()}  # 3,000
    assert len(ids) > 1000
    for lang, r in reports.items():
        folder = Path(r["report"]).parent
        files = [Path(r["report"]), *sorted((folder / "exports").glob("*.csv"))]
        for path in files:
            assert seeker_ids_in(path.read_text(encoding="utf-8"), ids) == set(), (lang, path.name)


def test_report_without_published_views_fails_with_one_line(tmp_path: Path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(PROJECT_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "mobility", "--profile", "test", "--set", f"lake.root={tmp_path / 'lake'}",
         "--set", f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
         "--set", f"mlflow.artifact_root={tmp_path / 'artifacts'}", "report", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("mobility: report: no published views"), result.stderr[-2000:]
    assert not (tmp_path / "out" / "rapport.html").exists()

"""``generate``: read the reference tables once, then write a synthetic dataset chunk by chunk.

Chunks of ``chunk_seekers`` seekers are simulated and encoded one after the other and appended to the
files, so that memory depends on the chunk size, not on the number of seekers. Every random draw comes from
``SeedSequence(seed)`` spawned into three families (clean records, defects, the latin-1 extras), the first
two spawned again per chunk: the same arguments give the same bytes, and the clean records do not depend on
the dirty rate.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from mobility.ingest import formats
from mobility.synth import defects as dz
from mobility.synth import render
from mobility.synth.model import Model, build_model, destination_parts
from mobility.synth.params import SynthParams
from mobility.synth.simulate import (
    IDX_SPACE,
    OFFER_BLOCK,
    OFFER_ID_SPACE,
    Chunk,
    appellation,
    code_on,
    draw_seekers,
    draw_trajectories,
    offer_id,
    seeker_idx,
    simulate_chunk,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from mobility.config import Settings
    from mobility.lake import Lake

REFERENCE_TABLES = (
    "ref.rome", "ref.rome_mobility", "ref.rome_appellation", "ref.region", "ref.departement", "ref.commune",
    "ref.postal_code", "ref.fap_rome", "ref.tension",
)  # fmt: skip
CSV_FILES = {"de": "de.csv", "rome": "rome.csv", "hires": "hires.csv"}
LATIN1_FILE = "de_latin1.csv"
# Beside the data, not among it: a name like defects.csv would match the de*.csv input pattern.
DEFECTS_FILE = "truth/defects.csv"
DEFECTS_HEADER = ("file", "line", "kind", "reason", "key")
DESTINATION_COLUMNS = ("from_rome_v3", "from_region", "to_rome_v3", "to_region", "probability")
TRUTH_DIGITS = 9  # significant digits of the probabilities written
MALFORMED_PAGE = 901  # first page number of the malformed offers files (9NN)
# What a previous run may have left in ``out``: removed first, so that no stale page survives.
OUTPUT_GLOBS = ("de*.csv", "rome*.csv", "hires*.csv", "offers*.json", DEFECTS_FILE)


def read_reference(lake: Lake) -> dict[str, pd.DataFrame]:
    """The reference tables the model needs, as pandas frames (small, bounded: a few MB)."""
    from pyspark.sql import functions as F

    frames = {}
    for table in REFERENCE_TABLES:
        df = lake.read(table)
        if table == "ref.tension":
            df = df.where((F.col("fap_level") == "fap225") & F.col("geo_level").isin("reg", "nat"))
        elif table == "ref.rome_mobility":
            df = df.where(F.col("version") == "v3")
        # bounded: the reference tables (fixed size)
        frames[table] = df.toPandas()
    return frames


@dataclass(frozen=True)
class Run:
    """The arguments of a run, as recorded in truth/params.json."""

    seekers: int
    months: int
    start: date
    seed: int
    dirty_rate: float
    chunk_seekers: int
    cutover: date

    def to_json(self) -> dict[str, Any]:
        return {
            "seekers": self.seekers,
            "months": self.months,
            "start": self.start.strftime("%Y-%m"),
            "seed": self.seed,
            "dirty_rate": self.dirty_rate,
            "chunk_seekers": self.chunk_seekers,
            "rome_v4_from": self.cutover.isoformat(),
        }

    @property
    def n_chunks(self) -> int:
        return -(-self.seekers // self.chunk_seekers)

    def unknown_idx(self, chunk: int, p: SynthParams) -> np.ndarray:
        """IDX values of no seeker, distinct per chunk (after the seekers and the latin-1 extras)."""
        first = self.seekers + p.latin1_records + chunk * self.chunk_seekers
        return seeker_idx(np.arange(first, first + self.chunk_seekers))


# Random stream families under SeedSequence(seed).
CLEAN, DEFECTS, LATIN1 = 0, 1, 2


def stream(run: Run, family: int, *index: int) -> np.random.SeedSequence:
    """Child ``index`` of ``family``: what ``SeedSequence(seed).spawn(3)[family].spawn(...)[index]`` gives."""
    return np.random.SeedSequence(run.seed, spawn_key=(family, *index))


def parse_start(start: str | date) -> date:
    if isinstance(start, date):
        return start.replace(day=1)
    year, month = (int(x) for x in start.split("-")[:2])
    return date(year, month, 1)


# ------------------------------------------------------------------------------------------ one chunk


@dataclass
class ChunkOutput:
    """A chunk encoded: CSV bodies (clean rows, then defective ones), offers per month, defects."""

    index: int
    bodies: dict[str, bytes]
    clean_rows: dict[str, int]
    defect_rows: dict[str, list[dz.Defect]]
    # month index -> (texts in page order: clean ones, then defective ones; defects with list indices)
    offers: dict[int, tuple[list[str], list[dz.Defect]]]
    last_row: dict[str, str] = field(default_factory=dict)


def _sorted(table: dict[str, np.ndarray], *keys: str) -> dict[str, np.ndarray]:
    order = np.lexsort(tuple(table[k] for k in reversed(keys)))
    return {k: v[order] for k, v in table.items()}


def encode_chunk(model: Model, book: render.Codebook, p: SynthParams, run: Run, chunk: Chunk) -> ChunkOutput:
    """The chunk's records in the file formats, with its defects when the run is dirty."""
    rng = np.random.default_rng(stream(run, DEFECTS, chunk.index))
    spells = _sorted(chunk.spells, "seeker", "datins")
    changes = _sorted(chunk.changes, "seeker", "day")
    hires = _sorted(chunk.hires, "seeker", "day")
    tables = {
        "de": render.de_table(book, chunk.seekers, spells),
        "rome": render.rome_table(book, chunk.seekers, changes),
        "hires": render.hires_table(book, chunk.seekers, hires, chunk.offers),
    }
    offers = _sorted(chunk.offers, "created_ms", "number")
    months = np.searchsorted(model.month_start, offers["day"], side="right") - 1
    texts = render.offer_texts(model, book, offers)

    dirty = run.dirty_rate > 0
    spans = {
        "de": (spells["datins"], spells["datann"]),
        "rome": (changes["day"], changes["end"]),
        "hires": (hires["day"], np.full(len(hires["day"]), -1)),
    }
    offer_days, offer_ids = offers["day"], offer_id(offers["number"])
    bodies, clean_rows, defect_rows, last_row = {}, {}, {}, {}
    for kind, table in tables.items():
        body = render.csv_body(table)
        clean_rows[kind] = table.num_rows
        defect_rows[kind] = []
        if table.num_rows:
            last_row[kind] = body[body.rstrip(b"\n").rfind(b"\n") + 1 :].decode().rstrip("\n")
        if dirty:
            start, end = spans[kind]
            extra, found = dz.csv_defects(
                kind,
                table,
                start,
                end,
                run.dirty_rate,
                rng,
                model.end_day,
                run.unknown_idx(chunk.index, p),
                offer_days if kind == "hires" else None,
                offer_ids if kind == "hires" else None,
            )
            body += render.csv_body(extra)
            defect_rows[kind] = found
        bodies[kind] = body

    by_month: dict[int, tuple[list[str], list[dz.Defect]]] = {}
    next_defect = chunk.index * OFFER_BLOCK + OFFER_BLOCK // 2
    bounds = np.searchsorted(months, np.arange(len(model.month_start)))
    for m in range(len(model.month_start) - 1):
        month_texts = texts[bounds[m] : bounds[m + 1]]
        if not month_texts:
            continue
        found: list[dz.Defect] = []
        if dirty:
            ids = offer_id(np.arange(next_defect, next_defect + len(month_texts) + 1)).tolist()
            extra, found = dz.offer_defects(month_texts, formats.OFFERS_PAGE_SIZE, run.dirty_rate, rng, ids)
            next_defect += len(extra)
            month_texts = month_texts + extra
        by_month[m] = (month_texts, found)
    return ChunkOutput(chunk.index, bodies, clean_rows, defect_rows, by_month, last_row)


def chunk_outputs(model: Model, book: render.Codebook, p: SynthParams, run: Run) -> Iterator[ChunkOutput]:
    """Every chunk, simulated and encoded in order."""
    for index in range(run.n_chunks):
        first = index * run.chunk_seekers
        n = min(run.chunk_seekers, run.seekers - first)
        chunk = simulate_chunk(model, p, index, first, n, stream(run, CLEAN, index))
        yield encode_chunk(model, book, p, run, chunk)


# ------------------------------------------------------------------------------------------ the files


def _clear(out: Path) -> None:
    """Remove what a previous run wrote; refuse to touch input files the generator did not write."""
    found = [p.name for pattern in OUTPUT_GLOBS for p in sorted(out.glob(pattern))]
    if found and not (out / "truth").is_dir():
        raise FileExistsError(
            f"{out} holds input files not written by the generator ({', '.join(found[:3])}, ...): "
            "choose an empty or generated folder"
        )
    for pattern in OUTPUT_GLOBS:
        for path in sorted(out.glob(pattern)):
            path.unlink()
    shutil.rmtree(out / "truth", ignore_errors=True)


def _month_label(model: Model, m: int) -> str:
    return str(np.datetime64(int(model.month_start[m]), "D"))[:7]


def _defect_line(file: str, line: int, defect: dz.Defect) -> str:
    return f"{file};{line};{defect.kind};{defect.reason};{defect.key}\n"


def latin1_records(model: Model, book: render.Codebook, p: SynthParams, run: Run) -> pa.Table:
    """Clean first spells of extra seekers living in communes whose names have accents (ISO-8859-1)."""
    rng = np.random.default_rng(stream(run, LATIN1))
    n = p.latin1_records
    seekers = draw_seekers(model, p, run.seekers, n, rng)
    commune = model.latin1_communes[rng.integers(0, len(model.latin1_communes), n)]
    seekers.update(commune=commune, depcom=commune, dep=model.com_dep[commune])
    seekers["region"] = model.dep_region[seekers["dep"]]
    spells, _, _ = draw_trajectories(model, p, seekers, rng)
    spells = _sorted(spells, "seeker", "datins")
    first = np.r_[True, spells["seeker"][1:] != spells["seeker"][:-1]]
    spells = {k: v[first] for k, v in spells.items()}
    spells["code"] = code_on(model, spells["occupation"], spells["datins"], rng)
    spells["appellation"] = appellation(model, spells["code"], rng)
    return render.de_table(book, seekers, spells)


def write_dataset(
    model: Model, p: SynthParams, run: Run, out: Path, reference_summary: dict[str, Any] | None = None
) -> dict[str, int]:
    """Every file of the dataset in ``out``; returns the records written per kind."""
    out.mkdir(parents=True, exist_ok=True)
    _clear(out)
    (out / "truth").mkdir()  # marks the folder as the generator's from the start
    book = render.codebook(model)
    dirty = run.dirty_rate > 0
    counts = {
        "seekers": run.seekers,
        "de": 0,
        "rome": 0,
        "hires": 0,
        "offers": 0,
        "offer_files": 0,
        "defects": 0,
    }
    headers = {"de": render.DE_COLUMNS, "rome": formats.ROME.columns, "hires": formats.HIRES.columns}
    files = {kind: open(out / name, "wb") for kind, name in CSV_FILES.items()}  # noqa: SIM115
    defects_file = open(out / DEFECTS_FILE, "w", encoding="utf-8", newline="") if dirty else None  # noqa: SIM115
    pages = np.zeros(len(model.month_start) - 1, np.int64)
    last_row: dict[str, str] = {}
    last_page: tuple[int, str] | None = None
    try:
        for kind, handle in files.items():
            handle.write(render.header(headers[kind]))
        if defects_file:
            defects_file.write(";".join(DEFECTS_HEADER) + "\n")
        for output in chunk_outputs(model, book, p, run):
            for kind, handle in files.items():
                first_line = 2 + counts[kind]
                handle.write(output.bodies[kind])
                counts[kind] += output.clean_rows[kind] + len(output.defect_rows[kind])
                for d in output.defect_rows[kind]:
                    defects_file.write(_defect_line(CSV_FILES[kind], first_line + d.line, d))
                last_row.update(output.last_row)
            for m, (texts, found) in output.offers.items():
                label = _month_label(model, m)
                size = formats.OFFERS_PAGE_SIZE
                for start in range(0, len(texts), size):
                    pages[m] += 1
                    name = f"offers_{label}_{pages[m]:03d}.json"
                    text = render.page(texts[start : start + size])
                    (out / name).write_text(text, encoding="utf-8")
                    last_page = (m, text)
                    counts["offer_files"] += 1
                first_page = pages[m] - (len(texts) - 1) // size
                for d in found:
                    name = f"offers_{label}_{first_page + d.line // size:03d}.json"
                    defects_file.write(_defect_line(name, d.line % size + 1, d))
                counts["offers"] += len(texts)
        if dirty:
            _whole_file_defects(
                model, book, p, run, out, files, defects_file, counts, last_row, pages, last_page
            )
    finally:
        for handle in files.values():
            handle.close()
        if defects_file:
            defects_file.close()
    if dirty:
        with open(out / DEFECTS_FILE, encoding="utf-8") as handle:
            counts["defects"] = sum(1 for _ in handle) - 1
    counts["truth_rows"] = write_truth(model, p, run, out, counts, reference_summary)
    return counts


def _whole_file_defects(
    model: Model,
    book: render.Codebook,
    p: SynthParams,
    run: Run,
    out: Path,
    files: dict[str, Any],
    defects_file: Any,
    counts: dict[str, int],
    last_row: dict[str, str],
    pages: np.ndarray,
    last_page: tuple[int, str] | None,
) -> None:
    """The defects of a whole file or line: truncated last lines, unparseable pages, a latin-1 file."""
    for kind, handle in files.items():
        row = last_row.get(kind)
        if row is None:
            continue
        fields = row.split(formats.CSV_SEPARATOR)
        # two fields and half of the third: too few fields whatever the layout
        cut = (
            formats.CSV_SEPARATOR.join(fields[:2])
            + formats.CSV_SEPARATOR
            + fields[2][: max(1, len(fields[2]) // 2)]
        )
        handle.write(cut.encode())
        counts[kind] += 1
        defects_file.write(
            _defect_line(CSV_FILES[kind], counts[kind] + 1, dz.Defect("truncated_line", 0, fields[0]))
        )
    if last_page is not None:
        m, text = last_page
        label = _month_label(model, m)
        number = max(MALFORMED_PAGE, int(pages[m]) + 1)
        broken = {
            f"offers_{label}_{number:03d}.json": text[: len(text) // 2],
            f"offers_{label}_{number + 1:03d}.json": "<html><body><h1>502 Bad Gateway</h1></body></html>\n",
        }
        for name, content in broken.items():
            (out / name).write_text(content, encoding="utf-8")
            counts["offer_files"] += 1
            defects_file.write(_defect_line(name, 0, dz.Defect("malformed_json", 0, "")))
    table = latin1_records(model, book, p, run)
    text = render.header(render.DE_COLUMNS).decode() + render.csv_body(table).decode()
    (out / LATIN1_FILE).write_bytes(text.encode("iso-8859-1"))
    counts["de"] += table.num_rows
    for i, idx in enumerate(table.column("IDX").to_pylist()):
        defects_file.write(_defect_line(LATIN1_FILE, i + 2, dz.Defect("latin1", 0, idx)))


def write_truth(
    model: Model,
    p: SynthParams,
    run: Run,
    out: Path,
    counts: dict[str, int],
    reference_summary: dict[str, Any] | None = None,
) -> int:
    """truth/params.json (parameters, arguments, model summary, counts) and truth/destinations.csv."""
    truth = out / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    rows = 0
    with open(truth / "destinations.csv", "wb") as handle:
        handle.write(render.header(DESTINATION_COLUMNS))
        for part in destination_parts(model):
            prob = part["probability"].to_numpy()
            digits = 10 ** (TRUTH_DIGITS - np.ceil(np.log10(prob)))
            part["probability"] = np.round(prob * digits) / digits
            handle.write(render.csv_body(pa.Table.from_pandas(part, preserve_index=False)))
            rows += len(part)
    national = model.offer_share.sum(axis=1)
    hubs = np.lexsort((np.arange(model.n_occ), -national))[: p.elsewhere_hubs]
    summary = {
        "occupations_v3": int(model.n_occ),
        "codes_v4": int(model.code_is_v4.sum()),
        "regions": model.region_code.tolist(),
        "departements": int(len(model.dep_code)),
        "communes_of_residence": int(len(model.residence.items)),
        "elsewhere_hubs": model.code[hubs].tolist(),
        "window": [
            str(np.datetime64(model.start_day, "D")),
            str(np.datetime64(model.end_day - 1, "D")),
        ],
    }
    if reference_summary:
        summary.update(reference_summary)
    document = {
        "seed": run.seed,
        "arguments": run.to_json(),
        "params": p.to_json(),
        "model": summary,
        "counts": {**counts, "truth_rows": rows},
    }
    (truth / "params.json").write_text(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return rows


# ------------------------------------------------------------------------------------------ entry points


def generate_from_reference(
    reference: dict[str, pd.DataFrame],
    *,
    seekers: int,
    months: int,
    start: str | date,
    seed: int,
    out: Path,
    dirty_rate: float,
    chunk_seekers: int,
    cutover: date,
    params: SynthParams | None = None,
) -> dict[str, int]:
    """``generate`` without Spark: from the reference tables as pandas frames."""
    if seekers <= 0 or months <= 0 or chunk_seekers <= 0:
        raise ValueError("seekers, months and chunk_seekers must be positive")
    if not 0 <= dirty_rate <= 1:
        raise ValueError(f"dirty_rate must be between 0 and 1, got {dirty_rate}")
    p = params or SynthParams()
    run = Run(seekers, months, parse_start(start), seed, dirty_rate, chunk_seekers, cutover)
    if seekers + p.latin1_records + (run.n_chunks + 1) * chunk_seekers >= IDX_SPACE:
        raise ValueError("too many seekers for 9-digit IDX values")
    if run.n_chunks * OFFER_BLOCK >= OFFER_ID_SPACE:
        raise ValueError("too many chunks for 7-character offer ids: raise chunk_seekers")
    model = build_model(reference, p, run.start, months, cutover)
    rows = {"reference_rows": {table: len(frame) for table, frame in sorted(reference.items())}}
    return write_dataset(model, p, run, Path(out), rows)


def generate(
    spark: SparkSession,
    lake: Lake,
    settings: Settings,
    *,
    seekers: int | None = None,
    months: int | None = None,
    start: str | date | None = None,
    seed: int | None = None,
    out: Path | str | None = None,
    dirty_rate: float | None = None,
    chunk_seekers: int | None = None,
    params: SynthParams | None = None,
) -> dict[str, int]:
    """Write a synthetic dataset in the real input formats to ``out``; return the records written per kind.

    Reads the ``ref.*`` tables of ``lake`` once (``spark`` is the lake's session), then generates with numpy
    only. Arguments left to None take their value from ``settings.synth``; the ROME 4.0 cutover is
    ``settings.reference.rome_v4_from``.
    """
    synth = settings.synth
    return generate_from_reference(
        read_reference(lake),
        seekers=synth.seekers if seekers is None else seekers,
        months=synth.months if months is None else months,
        start=synth.start if start is None else start,
        seed=synth.seed if seed is None else seed,
        out=Path(synth.out if out is None else out),
        dirty_rate=synth.dirty_rate if dirty_rate is None else dirty_rate,
        chunk_seekers=synth.chunk_seekers if chunk_seekers is None else chunk_seekers,
        cutover=settings.reference.rome_v4_from,
        params=params,
    )

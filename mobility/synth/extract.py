"""Extracts of a dataset as the source systems would have sent it on a date: the batches a real run
receives one after another, cut from a generated (or real) folder of input files.

``as_of`` D: a record exists once it started on or before D (registration DATINS, change JOURDV, hire
DATEMB, offer dateCreation); an end date after D (DATANN, JOURFV) is not known yet and is blank, with the
end reason. ``since`` S (optional): only the records that are new or changed in (S, D], i.e. started after
S or ended in the window, as a monthly delta extract would hold them. A record whose date cannot be read
is kept in every extract, so that ingestion quarantines it with its reason. Files are streamed line by line
and written in their own encoding; other files (the ground truth) are not copied.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from mobility.ingest import formats
from mobility.ingest.readers import clean_name, detect_encoding, kind_of, open_text

# kind -> (start column, end column or None, columns blanked with the end)
_CSV_DATES = {
    "de": ("DATINS", "DATANN", ("DATANN", "MOTANN")),
    "rome": ("JOURDV", "JOURFV", ("JOURFV",)),
    "hires": ("DATEMB", None, ()),
}


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def _keep(start: date | None, end: date | None, as_of: date, since: date | None) -> bool:
    if start is None:
        return True
    if start > as_of:
        return False
    if since is None or start > since:
        return True
    return end is not None and since < end <= as_of


def _csv_lines(path: Path, kind: str, as_of: date, since: date | None) -> Iterator[str]:
    start_column, end_column, blanked = _CSV_DATES[kind]
    sep = formats.CSV_SEPARATOR
    with open_text(path, detect_encoding(path)) as stream:
        header = next(stream, None)
        if header is None:
            return
        yield header
        names = [clean_name(n) for n in header.rstrip("\r\n").split(sep)]
        start_at = names.index(start_column)
        end_at = names.index(end_column) if end_column else None
        blank_at = [names.index(n) for n in blanked if n in names]
        for line in stream:
            fields = line.rstrip("\r\n").split(sep)
            if len(fields) != len(names):  # malformed: ingestion says why
                yield line
                continue
            end = _day(fields[end_at]) if end_at is not None and fields[end_at] else None
            if not _keep(_day(fields[start_at]), end, as_of, since):
                continue
            if end is not None and end > as_of:
                for i in blank_at:
                    fields[i] = ""
                line = sep.join(fields) + line[len(line.rstrip("\r\n")) :]
            yield line


def _offers(path: Path, kind: str, as_of: date, since: date | None) -> Iterator[str]:
    def kept(offer: object) -> bool:
        created = offer.get("dateCreation") if isinstance(offer, dict) else None
        return _keep(_day(created) if isinstance(created, str) else None, None, as_of, since)

    encoding = detect_encoding(path)
    if kind == "offers_lines":
        with open_text(path, encoding) as stream:
            for line in stream:
                try:
                    keep = kept(json.loads(line))
                except ValueError:
                    keep = True
                if keep:
                    yield line
        return
    with open_text(path, encoding) as stream:
        text = stream.read()  # one API page: 150 offers at most
    try:
        page = json.loads(text)
    except ValueError:
        yield text
        return
    if isinstance(page, dict) and isinstance(page.get("resultats"), list):
        page["resultats"] = [offer for offer in page["resultats"] if kept(offer)]
        if page["resultats"]:
            yield json.dumps(page, ensure_ascii=False)
    else:
        yield text


def write_extract(source: Path, out: Path, *, as_of: date, since: date | None = None) -> dict[str, int]:
    """Write the extract of ``source`` on ``as_of`` (the changes since ``since`` only, when given) into
    ``out``; return the lines (pages for offers) written per file kind."""
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    for path in sorted(source.iterdir()):
        kind = kind_of(path.name)
        if kind is None or not path.is_file():
            continue
        lines = (
            _csv_lines(path, kind, as_of, since) if kind in _CSV_DATES else _offers(path, kind, as_of, since)
        )
        parts = list(lines) if kind not in _CSV_DATES else None
        if parts is not None and not parts:
            continue  # an offers page left empty is not sent
        encoding = detect_encoding(path)
        with open_text(out / path.name, encoding, "w") as target:
            n = 0
            for line in parts if parts is not None else lines:
                target.write(line)
                n += 1
        written[kind] = written.get(kind, 0) + n - (1 if kind in _CSV_DATES else 0)
    return written

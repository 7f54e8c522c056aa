"""Readers of the input files: every record as read, with its file and line, nothing dropped.

A record's raw text is kept from the start, so that whatever later rejects it can quarantine it exactly
as it came. CSV files are read as lines (Spark's text source) rather than with the CSV reader, which would
silently skip blank lines, pad short rows and lose the line number; the fields are then split with the
native ``from_csv``, once, into one trimmed string column per column of the layout. Line numbers come
from the order of rows inside each file split (``monotonically_increasing_id`` is consecutive within a
partition) and the sizes of earlier splits (``number_lines``), so no file is ever read by one task or
collected. Numbering needs the split sizes before the numbers: the batch stages what the readers give
(conformed) and numbers the staged rows (``split_offsets``), so that each file is read once.

The job seeker's IDX is replaced by its pseudonym right here, computed once per record and written both
in the IDX column and in the raw line, so that no table, not even bronze or the quarantine, ever holds it.

Offer pages (``offers*.json``) are read whole, one row a file, and parsed once into their offers' JSON
texts: a raw API response (``{"resultats": [...]}``) or a JSON list of offers (how saved search results
usually look) alike.

The encoding of each file is found by validating it as UTF-8 in the driver, streaming (memory does not
grow with the file); a file that is not UTF-8 is taken as latin-1 and transcoded to UTF-8 in a staging
folder first, because Spark's text source only reads UTF-8. The same pass finds the files that cannot be
read at all (empty, a gzip that does not decompress to its end, binary content): each becomes one
quarantined record naming why, and the other files of the batch land. Any kind may come gzipped
(``de_2024-01.csv.gz``); Spark decompresses it by its name. A line longer than ``quality.max_line_chars``
is quarantined with its first characters only, so that a file without newlines cannot fill the lake.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import IO

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from mobility.errors import MobilityError
from mobility.ingest import formats
from mobility.ingest.pseudonyms import pseudonym

log = logging.getLogger(__name__)

UTF8 = "UTF-8"
LATIN1 = "ISO-8859-1"
_CHUNK = 1 << 20
GZIP_SUFFIX = ".gz"
# Bytes that no CSV or JSON text holds (controls other than tab, newlines and form feed). A file whose first
# block holds more than this share of them is binary: random bytes hold 11%, a text with a stray one ~0%.
_BINARY_BYTES = bytes([*range(0, 9), 11, *range(14, 32)])
_BINARY_SHARE = 0.05
_BINARY_BLOCK = 1 << 16
# From this many files of a folder on, the folder is listed once instead of each file named.
LIST_FOLDER_FROM = 32


class InputError(MobilityError):
    """The input folder or one of its files cannot be ingested at all."""


@dataclass(frozen=True)
class SourceFile:
    """One input file: where it is, what kind of records it holds, how to decode it."""

    path: Path
    name: str
    kind: str
    encoding: str
    header: tuple[str, ...] = ()
    defect: str | None = None  # why the file cannot be read at all; None when it can

    @property
    def is_csv(self) -> bool:
        return self.kind in formats.CSV_LAYOUTS


def kind_of(name: str) -> str | None:
    """The input kind of a file name (``de``, ``rome``, ``hires``, ``offers``, ``offers_lines``), gzipped
    or not."""
    name = name.removesuffix(GZIP_SUFFIX)
    for layout in formats.CSV_LAYOUTS.values():
        if fnmatch(name, layout.pattern):
            return layout.kind
    pages, lines = formats.OFFERS_PATTERNS
    if fnmatch(name, lines):
        return "offers_lines"
    if fnmatch(name, pages):
        return "offers"
    return None


def is_gzip(path: Path) -> bool:
    return path.name.endswith(GZIP_SUFFIX)


def open_bytes(path: Path) -> IO[bytes]:
    """The file's content, decompressed as it is read when its name says gzip."""
    return gzip.open(path, "rb") if is_gzip(path) else path.open("rb")


def open_text(path: Path, encoding: str, mode: str = "r") -> IO[str]:
    """The file as text (``mode`` "r" or "w"), through gzip when its name says so."""
    if is_gzip(path):
        return gzip.open(path, mode + "t", encoding=encoding, newline="")
    return path.open(mode, encoding=encoding, newline="")


def _is_binary(block: bytes) -> bool:
    odd = len(block) - len(block.translate(None, _BINARY_BYTES))
    return odd > _BINARY_SHARE * len(block)


def inspect(path: Path) -> tuple[str, str | None]:
    """The file's encoding (UTF-8 if its whole content decodes as UTF-8, else latin-1, which decodes any
    byte) and why it cannot be read at all (None when it can), in one streaming pass."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8, size = True, 0
    try:
        with open_bytes(path) as stream:
            while chunk := stream.read(_CHUNK):
                if size == 0 and _is_binary(chunk[:_BINARY_BLOCK]):
                    return LATIN1, "binary content (control bytes), not a text file"
                size += len(chunk)
                if utf8:
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError:
                        utf8 = False
    except (EOFError, OSError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        what = "the gzip file is truncated or corrupt" if is_gzip(path) else "the file cannot be read"
        return LATIN1, f"{what}: {error}"
    if size == 0:
        return UTF8, "the file is empty"
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    return (UTF8 if utf8 else LATIN1), None


def detect_encoding(path: Path) -> str:
    """UTF-8 if the whole file decodes as UTF-8, else latin-1."""
    return inspect(path)[0]


def clean_name(name: str) -> str:
    """A column name as written in a header: trimmed, without a byte-order mark."""
    return name.strip().lstrip("\ufeff")


def header_names(line: str, sep: str = formats.CSV_SEPARATOR) -> tuple[str, ...]:
    """The column names of a CSV header line."""
    row = next(csv.reader([line.rstrip("\r\n")], delimiter=sep), [])
    return tuple(clean_name(name) for name in row)


def read_header(path: Path, encoding: str, max_chars: int = _CHUNK) -> tuple[str, ...]:
    """The column names of a CSV file's first line (of its first ``max_chars`` characters)."""
    with open_text(path, encoding) as stream:
        return header_names(stream.readline(max_chars))


def discover(input_dir: Path) -> tuple[list[SourceFile], list[str]]:
    """The files of known kinds in ``input_dir`` (sorted by name) and the names of those ignored.

    A name that leads outside the folder (a link to elsewhere, ``..`` included) is refused with its name:
    a batch is what its folder holds. A file that cannot be read at all comes back with its ``defect``.
    """
    root = input_dir.resolve()
    if not root.is_dir():
        raise InputError(f"{input_dir}: no such input folder")
    found, ignored = [], []
    for path in sorted(input_dir.iterdir(), key=lambda p: p.name):
        if path.is_dir():
            ignored.append(path.name)
            continue
        kind = kind_of(path.name)
        if kind is None:
            ignored.append(path.name)
            continue
        if not path.resolve().is_relative_to(root):
            raise InputError(f"{path.name}: points outside the input folder ({path.resolve()}); refused")
        encoding, defect = inspect(path)
        header = read_header(path, encoding) if kind in formats.CSV_LAYOUTS and defect is None else ()
        found.append(SourceFile(path, path.name, kind, encoding, header, defect))
    return found, ignored


def _staged(files: Sequence[SourceFile], staging: Path) -> list[tuple[SourceFile, Path]]:
    """Each file with the UTF-8 path Spark reads: itself, or a transcoded copy of a latin-1 file under
    the same name (rows are traced to their file by name)."""
    staged = []
    for source in files:
        if source.encoding == UTF8:
            staged.append((source, source.path))
            continue
        staging.mkdir(parents=True, exist_ok=True)
        target = staging / source.name
        with (
            open_text(source.path, source.encoding) as src,
            open_text(target, UTF8, "w") as dst,
        ):
            while chunk := src.read(_CHUNK):
                dst.write(chunk)
        staged.append((source, target))
    return staged


def positions() -> dict[str, Column]:
    """Where a row was read: its file, the start of its split and its position in the split's task, from
    which ``number_lines`` makes line numbers once the split sizes are known."""
    return {
        "source_file": F.col("_metadata.file_name"),
        "_block": F.col("_metadata.file_block_start"),
        "_mid": F.monotonically_increasing_id(),
    }


def split_offsets(df: DataFrame) -> DataFrame:
    """For each file split of ``df`` (``positions``): its first ``_mid`` and the lines of its file before it.

    One small job whose result, one row per file split (files x size / ``spark.sql.files.maxPartitionBytes``),
    is brought to the driver and given back as a local table, so that numbering costs the readers of
    ``df`` a broadcast join with a literal table, not an aggregation each."""
    rows = df.groupBy("source_file", "_block").agg(F.min("_mid").alias("_first"), F.count("*").alias("_rows"))
    before: dict[str, int] = {}
    offsets = []
    for row in sorted(rows.collect()):  # bounded: one row per file split
        offsets.append((row["source_file"], row["_block"], row["_first"], before.get(row["source_file"], 0)))
        before[row["source_file"]] = before.get(row["source_file"], 0) + row["_rows"]
    schema = "source_file string, _block long, _first long, _before long"
    return df.sparkSession.createDataFrame(offsets, schema)


def number_lines(df: DataFrame, offsets: DataFrame | None = None) -> DataFrame:
    """Replace ``_block`` and ``_mid`` (``positions``) by ``line``, 1-based per file, from ``offsets``
    (``split_offsets``), or from an aggregation of ``df`` itself when not given (``df`` is then read twice:
    split sizes, then numbers)."""
    if offsets is None:
        blocks = df.groupBy("source_file", "_block").agg(
            F.min("_mid").alias("_first"), F.count("*").alias("_rows")
        )
        earlier = (
            Window.partitionBy("source_file").orderBy("_block").rowsBetween(Window.unboundedPreceding, -1)
        )
        offsets = blocks.select(
            "source_file",
            "_block",
            "_first",
            F.coalesce(F.sum("_rows").over(earlier), F.lit(0)).alias("_before"),
        )
    return (
        df.join(F.broadcast(offsets), ["source_file", "_block"])
        .withColumn("line", F.col("_before") + F.col("_mid") - F.col("_first") + 1)
        .drop("_mid", "_first", "_before", "_block")
    )


def capped(raw: Column, max_chars: int | None) -> tuple[Column, Column]:
    """``raw`` cut to ``max_chars`` characters, and why it was cut (null when it was not)."""
    if max_chars is None:
        return raw, F.lit(None).cast("string")
    # A character is one to four bytes: the characters are counted (a scan of the text) only where the
    # bytes (known without a scan) exceed the cap, which no real record does.
    over = (F.octet_length(raw) > max_chars) & (F.length(raw) > max_chars)
    message = F.format_string(
        f"the record has %d characters, over quality.max_line_chars ({max_chars}): its first ones are kept",
        F.length(raw),
    )
    return F.when(over, F.substring(raw, 1, max_chars)).otherwise(raw), F.when(over, message)


def _read_folders(spark: SparkSession, paths: Sequence[Path], wholetext: bool = False) -> DataFrame:
    """The text of ``paths``, read by listing each of their folders once (a glob of their file names' kinds)
    rather than by naming every file: Spark lists a long list of paths with a job of one task per path (4,764
    offer pages at M), and a folder with one call. Files of the folder that are not in ``paths`` (refused,
    or of another kind) are filtered out by name."""
    folders: dict[Path, list[str]] = {}
    for path in paths:
        folders.setdefault(path.parent, []).append(path.name)
    parts = []
    for folder, names in folders.items():
        if len(names) < LIST_FOLDER_FROM:
            parts.append(spark.read.text([str(folder / n) for n in names], wholetext=wholetext))
            continue
        glob = "{" + ",".join(sorted({_glob_of(n) for n in names})) + "}"
        read = spark.read.option("pathGlobFilter", glob).text(str(folder), wholetext=wholetext)
        parts.append(read.where(F.col("_metadata.file_name").isin(names)))
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def _glob_of(name: str) -> str:
    """The pattern of the kind a file name has (``offers*.json`` for ``offers_2021-01_001.json``), with its
    ``.gz`` when compressed."""
    plain = name.removesuffix(GZIP_SUFFIX)
    pattern = next(p for p in (*formats.OFFERS_PATTERNS, *(c.pattern for c in formats.CSV_LAYOUTS.values()))
                   if fnmatch(plain, p))  # fmt: skip
    return pattern + (GZIP_SUFFIX if name.endswith(GZIP_SUFFIX) else "")


def read_text(spark: SparkSession, paths: Sequence[Path], max_chars: int | None = None) -> DataFrame:
    """Every line of ``paths``, unnumbered: ``source_file``, ``_block``, ``_mid`` (see ``positions``),
    ``raw`` cut to ``max_chars`` and ``read_error`` (why it was cut, else null)."""
    raw, error = capped(F.col("value"), max_chars)
    return spark.read.text([str(p) for p in paths]).select(
        *(column.alias(name) for name, column in positions().items()),
        raw.alias("raw"),
        error.alias("read_error"),
    )


def read_lines(
    spark: SparkSession, files: Sequence[SourceFile], staging: Path, max_chars: int | None = None
) -> DataFrame:
    """Every line of ``files``: ``source_file``, ``line`` (1-based), ``raw`` and ``read_error`` (why the
    line was cut to ``max_chars``, else null); blank lines dropped. Reads the files twice (see
    ``number_lines``): for small files and tests; the batch stages ``csv_records`` and numbers them."""
    lines = read_text(spark, [path for _, path in _staged(files, staging)], max_chars)
    return number_lines(lines).where(F.trim("raw") != "")


def fields_count(raw: Column) -> Column:
    """Number of fields of a CSV line: separators outside quoted sections, plus one."""
    unquoted = F.regexp_replace(raw, '"[^"]*"', "")
    return F.size(F.split(unquoted, F.lit(formats.CSV_SEPARATOR)))


def protect_id(raw: Column, position: int, seeker_id: Column) -> Column:
    """``raw`` with its field at ``position`` (IDX) replaced by ``seeker_id``, even in a ragged line."""
    parts = F.split(raw, F.lit(formats.CSV_SEPARATOR), -1)
    swapped = F.transform(
        parts, lambda value, i: F.when((i == position) & (F.trim(value) != ""), seeker_id).otherwise(value)
    )
    return F.array_join(swapped, formats.CSV_SEPARATOR)


def _header_group(
    spark: SparkSession, paths: Sequence[Path], header: tuple[str, ...], layout: formats.CsvLayout,
    key: bytes, max_chars: int | None,
) -> DataFrame:  # fmt: skip
    """The lines of files sharing one header, split once into the layout's columns, IDX pseudonymised once.

    Three projections, each computed once per row: the split (``from_csv``), the pseudonym, then the
    columns and the protected raw line that both use it."""
    ddl = ", ".join(f"`c{i}` string" for i in range(len(header)))
    parsed = F.from_csv(F.col("raw"), ddl, {"sep": formats.CSV_SEPARATOR, "mode": "PERMISSIVE"})
    lines = read_text(spark, paths, max_chars).withColumn("_p", parsed)

    def value(name: str) -> Column:
        if name not in header:
            return F.lit(None).cast("string")
        trimmed = F.trim(F.col("_p")[f"c{header.index(name)}"])
        return F.when(trimmed != "", trimmed)

    at = header.index("IDX") if "IDX" in header else None
    seeker_id = pseudonym(value("IDX"), key) if at is not None else F.lit(None).cast("string")
    lines = lines.select(
        "source_file", "_block", "_mid", "raw", "read_error",
        *(value(c).alias(c) for c in layout.columns if c != "IDX"),
        seeker_id.alias("IDX"),
    )  # fmt: skip
    raw = protect_id(F.col("raw"), at, F.col("IDX")) if at is not None else F.col("raw")
    absent = [c for c in layout.mandatory if c not in header]
    return lines.select(
        "source_file", "_block", "_mid",
        raw.alias("raw"),
        *layout.columns,
        fields_count(F.col("raw")).alias("n_fields"),
        F.lit(len(header)).alias("n_columns"),
        F.lit(", ".join(absent) if absent else None).cast("string").alias("missing_columns"),
        "read_error",
    )  # fmt: skip


def csv_records(
    spark: SparkSession, files: Sequence[SourceFile], staging: Path, key: bytes, max_chars: int | None = None
) -> DataFrame:
    """The lines of CSV files of one kind, unnumbered (``csv_lines`` numbers them), IDX pseudonymised.

    Columns: ``source_file``, ``_block``, ``_mid``, ``raw`` (the line as read, but for IDX replaced by its
    pseudonym), one trimmed string column per column of the layout (null when empty or absent from the
    file; ``IDX`` holds the pseudonym), ``n_fields`` and ``n_columns`` (to spot ragged lines),
    ``missing_columns`` (mandatory columns the file's header lacks, null when none) and ``read_error``
    (see ``read_text``). Files are read once per distinct header (usually once per kind).
    """
    if not files:
        raise InputError("csv_records needs at least one file")
    layout = formats.CSV_LAYOUTS[files[0].kind]
    staged = _staged(files, staging)
    groups = []
    for header in sorted({f.header for f in files}):
        paths = [path for source, path in staged if source.header == header]
        groups.append(_header_group(spark, paths, header, layout, key, max_chars))
    result = groups[0]
    for group in groups[1:]:
        result = result.unionByName(group)
    return result


def csv_lines(records: DataFrame, offsets: DataFrame | None = None) -> DataFrame:
    """``csv_records`` (or rows derived from them) numbered, without header lines and blank lines: the
    records of the files."""
    return number_lines(records, offsets).where((F.col("line") > 1) & (F.trim("raw") != ""))


PAGE_SCHEMA = "resultats array<string>, _corrupt string"


def offer_records(
    spark: SparkSession, files: Sequence[SourceFile], staging: Path, max_chars: int | None = None
) -> DataFrame:
    """The offers of ``offers*.json`` files (an API response or a JSON list of offers) and of JSON Lines
    files (``offers*.jsonl``).

    Columns: ``source_file``, ``line`` (position in the page or list, or line of a .jsonl file; 0 for a
    file that does not parse, which is one record), ``raw`` (the offer's JSON text, or the unparsable file,
    cut to ``max_chars``), and ``page_error`` (why a file or a record could not be read, else null). A page
    is read and parsed once; JSON Lines files are numbered by ``read_lines`` (read twice).
    """
    pages = [f for f in files if f.kind == "offers"]
    lines = [f for f in files if f.kind == "offers_lines"]
    parts = []
    if pages:
        page = F.from_json(F.col("value"), PAGE_SCHEMA, {"columnNameOfCorruptRecord": "_corrupt"})
        read = (
            _read_folders(spark, [path for _, path in _staged(pages, staging)], wholetext=True)
            .select(
                F.col("_metadata.file_name").alias("source_file"),
                "value",
                F.ltrim("value").startswith("[").alias("_list"),
            )
            .withColumn("_page", F.when(~F.col("_list"), page))
            .withColumn(
                "offers",
                F.when(F.col("_list"), F.from_json(F.col("value"), "array<string>")).otherwise(
                    F.col("_page.resultats")
                ),
            )
        )
        error = (
            F.when(F.col("_list") | F.col("_page._corrupt").isNotNull(),
                   "the file is not valid JSON (truncated or malformed)")
            .otherwise('the file has no "resultats" list of offers')
        )  # fmt: skip
        # One row per offer; a file without offers to read is one record holding its text.
        items = F.when(
            F.col("offers").isNotNull(),
            F.transform("offers", lambda o: F.struct(o.alias("raw"), F.lit(None).cast("string").alias("e"))),
        ).otherwise(F.array(F.struct(F.col("value").alias("raw"), error.alias("e"))))
        exploded = read.select("source_file", F.posexplode(items).alias("pos", "item"))
        parts.append(
            exploded.select(
                "source_file",
                F.when(F.col("item.e").isNull(), F.col("pos") + 1).otherwise(0).cast("long").alias("line"),
                F.col("item.raw").alias("raw"),
                F.col("item.e").alias("page_error"),
            )
        )
    if lines:
        parts.append(read_lines(spark, lines, staging).withColumnRenamed("read_error", "page_error"))
    if not parts:
        raise InputError("offer_records needs at least one file")
    result = parts[0]
    for part in parts[1:]:
        result = result.unionByName(part)
    raw, error = capped(F.col("raw"), max_chars)
    return result.select(
        "source_file", "line", raw.alias("raw"), F.coalesce("page_error", error).alias("page_error")
    )

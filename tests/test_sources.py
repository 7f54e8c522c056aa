"""Reading input files: line numbers exact across file splits, encodings, kinds of files."""

import gzip
import json
import random
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from mobility.ingest.readers import (
    LATIN1,
    UTF8,
    InputError,
    detect_encoding,
    discover,
    fields_count,
    kind_of,
    offer_records,
    protect_id,
    read_lines,
)


def test_line_numbers_are_exact_when_files_are_split_and_packed_together(spark, tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    sizes = {"de_a.csv": 3000, "de_b.csv": 7, "de_c.csv": 1200}
    for name, n in sizes.items():
        lines = ["IDX;DATINS"] + [f"{i};line {i} of {name}" for i in range(2, n + 1)]
        lines.insert(5, "")  # a blank line counts as a line but is not a record
        (folder / name).write_text("\n".join(lines) + "\n")
    files, _ = discover(folder)
    conf = spark.conf
    saved = conf.get("spark.sql.files.maxPartitionBytes"), conf.get("spark.sql.files.openCostInBytes")
    conf.set("spark.sql.files.maxPartitionBytes", "4096")  # many splits per file
    conf.set("spark.sql.files.openCostInBytes", "0")  # several files per partition
    try:
        df = read_lines(spark, files, tmp_path / "staging")
        assert df.rdd.getNumPartitions() > 3
        rows = df.where(F.col("line") > 1).select("source_file", "line", "raw").collect()
    finally:
        conf.set("spark.sql.files.maxPartitionBytes", saved[0])
        conf.set("spark.sql.files.openCostInBytes", saved[1])
    wrong = [r for r in rows if not r["raw"].endswith(f"of {r['source_file']}") or
             int(r["raw"].split(";")[0]) != (r["line"] if r["line"] < 6 else r["line"] - 1)]  # fmt: skip
    assert not wrong[:5]
    assert len(rows) == sum(n - 1 for n in sizes.values())


def test_encoding_is_utf8_unless_a_byte_says_otherwise(tmp_path: Path):
    utf8 = tmp_path / "a.csv"
    utf8.write_text("IDX;LIBCOM\n1;Évry\n", encoding="utf-8")
    latin = tmp_path / "b.csv"
    latin.write_bytes("IDX;LIBCOM\n1;Évry\n".encode("latin-1"))
    assert detect_encoding(utf8) == UTF8
    assert detect_encoding(latin) == LATIN1


def test_file_kinds_come_from_their_names():
    assert [kind_of(n) for n in ("de.csv", "de_2023-01.csv", "rome_x.csv", "hires.csv")] == [
        "de", "de", "rome", "hires"
    ]  # fmt: skip
    assert [kind_of(n) for n in ("offers_1.json", "offers.jsonl", "notes.txt", "de.txt")] == [
        "offers", "offers_lines", None, None
    ]  # fmt: skip


def test_gzipped_inputs_have_the_kind_of_their_name_without_gz():
    assert [kind_of(n) for n in ("de_2024-01.csv.gz", "offers_1.json.gz", "offers.jsonl.gz", "de.gz")] == [
        "de", "offers", "offers_lines", None
    ]  # fmt: skip


def test_a_file_that_cannot_be_read_at_all_says_why(tmp_path: Path):
    text = "IDX;LIBCOM\n" + "".join(f"{i};Évry\n" for i in range(5000))
    whole = gzip.compress(text.encode("utf-8"))
    files = {
        "de_ok.csv.gz": whole,
        "de_truncated.csv.gz": whole[: len(whole) // 2],
        "de_not_gzip.csv.gz": text.encode("utf-8"),
        "de_garbage.csv": random.Random(1).randbytes(100_000),
        "de_empty.csv": b"",
        "de_empty.csv.gz": gzip.compress(b""),
        "de_latin1.csv": text.encode("latin-1"),
        "de_stray_control.csv": text.replace("4999;", "4\x01999;").encode("utf-8"),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    found = {f.name: (f.encoding, f.defect) for f in discover(tmp_path)[0]}
    assert found["de_ok.csv.gz"] == (UTF8, None)
    assert found["de_latin1.csv"] == (LATIN1, None)
    assert found["de_stray_control.csv"] == (UTF8, None)  # one odd byte in a text: its line, not its file
    assert found["de_truncated.csv.gz"][1].startswith("the gzip file is truncated or corrupt: ")
    assert found["de_not_gzip.csv.gz"][1].startswith("the gzip file is truncated or corrupt: ")
    assert found["de_garbage.csv"][1] == "binary content (control bytes), not a text file"
    assert found["de_empty.csv"][1] == found["de_empty.csv.gz"][1] == "the file is empty"
    assert {f.name: f.header for f in discover(tmp_path)[0]}["de_ok.csv.gz"] == ("IDX", "LIBCOM")


def test_a_link_whose_target_climbs_out_with_dot_dot_is_refused_with_its_name(tmp_path: Path):
    batch, outside = tmp_path / "batch", tmp_path / "elsewhere"
    batch.mkdir()
    outside.mkdir()
    (outside / "de.csv").write_text("IDX;DATINS\n1;2022-01-01\n")
    (batch / "de_x.csv").symlink_to(Path("..") / "elsewhere" / "de.csv")
    with pytest.raises(InputError, match=r"de_x\.csv: points outside the input folder"):
        discover(batch)


def test_lines_over_the_limit_are_cut_and_say_so(spark, tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "offers_x.jsonl").write_text('{"id": "a"}\n{"id": "' + "x" * 5000 + "\n" + '{"id": "b"}')
    files, _ = discover(folder)
    rows = read_lines(spark, files, tmp_path / "staging", max_chars=100).orderBy("line").collect()
    assert [(r["line"], len(r["raw"]), r["read_error"] is None) for r in rows] == [
        (1, 11, True), (2, 100, False), (3, 11, True)
    ]  # fmt: skip
    assert rows[1]["read_error"].startswith(
        "the record has 5008 characters, over quality.max_line_chars (100)"
    )


def test_the_line_cap_counts_characters_not_bytes(spark, tmp_path: Path):
    """80 two-byte characters (160 bytes) stay whole under a cap of 100 characters; 101 are cut to 100."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "offers_x.jsonl").write_text("é" * 80 + "\n" + "é" * 101 + "\n", encoding="utf-8")
    files, _ = discover(folder)
    rows = read_lines(spark, files, tmp_path / "staging", max_chars=100).orderBy("line").collect()
    assert [(r["raw"], r["read_error"] is None) for r in rows] == [("é" * 80, True), ("é" * 100, False)]
    assert rows[1]["read_error"].startswith("the record has 101 characters")


def test_a_folder_of_many_pages_is_listed_once_and_keeps_only_the_files_given(spark, tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(40):
        page = {"resultats": [{"id": f"{i}-{j}"} for j in range(3)]}
        (folder / f"offers_{i:03d}.json").write_text(json.dumps(page))
    with gzip.open(folder / "offers_gz.json.gz", "wt") as out:
        out.write(json.dumps([{"id": "gz-0"}]))
    (folder / "offers_empty.json").write_bytes(b"")  # refused by discover: not read again
    cut = gzip.compress(json.dumps({"resultats": [{"id": "cut"}] * 50}).encode())
    (folder / "offers_cut.json.gz").write_bytes(cut[: len(cut) // 2])  # would fail the read if it were read
    files, _ = discover(folder)
    readable = [f for f in files if f.defect is None]
    assert len(readable) == 41
    rows = offer_records(spark, readable, tmp_path / "staging").collect()
    assert len(rows) == 40 * 3 + 1
    assert {r["source_file"] for r in rows} == {f.name for f in readable}
    assert {r["page_error"] for r in rows} == {None}


@pytest.mark.parametrize(
    ("position", "raw", "protected", "fields"),
    [
        (0, "123;a;b", "ID;a;b", 3),
        (0, "123", "ID", 1),
        (0, ";a;b", ";a;b", 3),  # blank IDX: nothing to swap
        (1, "a;123;b", "a;ID;b", 3),
        (1, "a;123", "a;ID", 2),
        (1, "a;123;", "a;ID;", 3),
        (1, "a", "a", 1),  # too short to hold the field
        (1, "a; ;b", "a; ;b", 3),
        (2, "é;ü;123", "é;ü;ID", 3),  # non-ASCII fields before IDX
        (2, "a;123", "a;123", 2),
        (0, 'x;"q;q";4', 'ID;"q;q";4', 3),  # fields_count: a quoted separator separates nothing
    ],
)
def test_the_idx_field_is_swapped_in_place_and_fields_are_counted_outside_quotes(
    spark, position: int, raw: str, protected: str, fields: int
):
    df = spark.createDataFrame([(raw,)], "raw string")
    row = df.select(
        protect_id(F.col("raw"), position, F.lit("ID")).alias("p"), fields_count(F.col("raw")).alias("n")
    ).first()
    assert (row["p"], row["n"]) == (protected, fields)

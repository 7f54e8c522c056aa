"""Reading input files: line numbers exact across file splits, encodings, kinds of files."""

from pathlib import Path

from pyspark.sql import functions as F

from mobility.sources import LATIN1, UTF8, detect_encoding, discover, kind_of, read_lines


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

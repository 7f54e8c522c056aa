"""The checks across records on five-row frames, without a lake: duplicates found on keys, one flag kept
per record, and a reason found before never replaced."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from mobility.ingest.checks import apply_flags, duplicate_flags, first_flags, flag

POSITIONS = ["source_file", "line"]


def _records(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [("a.csv", 1, "s1", None, None), ("a.csv", 2, "s1", None, None), ("a.csv", 3, "s2", None, None),
         ("b.csv", 1, "s1", "bad_date", "DATINS is not a date"), ("b.csv", 2, "s3", None, None)],
        "source_file string, line long, seeker_id string, _reason string, _message string",
    )  # fmt: skip


def test_duplicates_flag_every_valid_record_of_a_key_but_the_first_read(spark: SparkSession):
    got = duplicate_flags(_records(spark), ["seeker_id"], [("source_file", False), ("line", False)],
                          "IDX", POSITIONS)  # fmt: skip
    # b.csv line 1 repeats s1 but is already rejected: it is not a record of the key any more.
    assert [(r["source_file"], r["line"], r["_flag"]) for r in got.collect()] == [("a.csv", 2, "duplicate")]


def test_a_record_flagged_twice_keeps_the_first_flag_and_a_reason_found_before_stays(spark: SparkSession):
    records = _records(spark)
    unknown = flag(records.where(F.col("seeker_id") != "s2"), POSITIONS, "unknown_seeker", F.lit("no spell"))
    duplicate = flag(records.where(F.col("line") == 2), POSITIONS, "duplicate", F.lit("twice"))

    got = apply_flags(records, first_flags([unknown, duplicate], POSITIONS), POSITIONS)

    expected = records.sparkSession.createDataFrame(
        [("a.csv", 1, "s1", "unknown_seeker", "no spell"), ("a.csv", 2, "s1", "duplicate", "twice"),
         ("a.csv", 3, "s2", None, None), ("b.csv", 1, "s1", "bad_date", "DATINS is not a date"),
         ("b.csv", 2, "s3", "duplicate", "twice")],
        records.schema,
    )  # fmt: skip
    assertDataFrameEqual(got, expected)


def test_a_duplicate_needs_every_key_column_equal_and_the_newest_version_is_kept(spark: SparkSession):
    records = spark.createDataFrame(
        [("a.json", 1, "o1", "2023-01-01", "2023-01-05"), ("a.json", 2, "o1", "2023-01-01", "2023-02-01"),
         ("a.json", 3, "o1", "2023-01-02", "2023-01-03"), ("b.json", 1, "o2", "2023-01-01", "2023-01-01"),
         ("b.json", 2, "o1", "2023-01-01", "2023-01-20")],
        "source_file string, line long, offer_id string, created string, updated string",
    ).withColumns({"_reason": F.lit(None).cast("string")})  # fmt: skip
    order = [("updated", True), ("source_file", False), ("line", False)]

    got = duplicate_flags(records, ["offer_id", "created"], order, "offer id", POSITIONS)

    # (o1, 2023-01-01) three times: a.json line 2 is the newest; (o1, 2023-01-02) and o2 are alone.
    assert sorted((r["source_file"], r["line"]) for r in got.collect()) == [("a.json", 1), ("b.json", 2)]


def test_a_record_with_a_null_in_its_key_repeats_no_key(spark: SparkSession):
    records = spark.createDataFrame(
        [("a.csv", 1, None, "2023-01-01"), ("a.csv", 2, None, "2023-01-01"), ("a.csv", 3, "s1", None),
         ("a.csv", 4, "s1", None), ("a.csv", 5, "s1", "2023-01-01"), ("a.csv", 6, "s1", "2023-01-01")],
        "source_file string, line long, seeker_id string, start string",
    ).withColumn("_reason", F.lit(None).cast("string"))  # fmt: skip
    got = duplicate_flags(records, ["seeker_id", "start"], [("line", False)], "IDX and JOURDV", POSITIONS)
    assert [(r["line"], r["_flag"]) for r in got.collect()] == [(6, "duplicate")]

"""Delta writes: overwrite, overwrite of partitions, MERGE on keys, versions and time travel."""

import json
from pathlib import Path

import pyarrow as pa
import pytest
from delta.tables import DeltaTable
from pyspark.sql.types import IntegerType, StringType, StructField, StructType
from pyspark.testing import assertDataFrameEqual

from mobility.lake import Lake, LakeError

SCHEMA = "month string, rome string, n long"


def test_table_names_map_to_zone_folders(lake: Lake):
    assert lake.path("gold.flows") == str(lake.root / "gold" / "flows")
    for bad in ("flows", "platinum.flows", "gold.Flows", "gold.", "gold.a/b"):
        with pytest.raises(LakeError, match="expected zone.name"):
            lake.path(bad)


def test_reading_a_table_no_step_wrote_says_so(lake: Lake):
    with pytest.raises(LakeError, match="gold.never does not exist"):
        lake.read("gold.never")


def test_overwrite_replaces_rows_and_versions_allow_time_travel(lake: Lake):
    spark = lake.spark
    first = spark.createDataFrame([("2024-01", "A1101", 3)], SCHEMA)
    second = spark.createDataFrame([("2024-02", "M1805", 7)], SCHEMA)
    assert lake.overwrite(first, "gold.t_overwrite") == 0
    assert lake.overwrite(second, "gold.t_overwrite") == 1
    assert lake.version("gold.t_overwrite") == 1
    assertDataFrameEqual(lake.read("gold.t_overwrite"), second)
    assertDataFrameEqual(lake.read("gold.t_overwrite", version=0), first)
    assert "gold.t_overwrite" in lake.tables("gold")


def test_read_arrow_reads_the_version_asked_from_the_files_and_refuses_what_it_cannot_read(lake: Lake):
    spark = lake.spark
    first = spark.createDataFrame([("2024-01", "A1101", 3), ("2024-01", "M1805", None)], SCHEMA)
    second = spark.createDataFrame([("2024-02", "M1805", 7)], SCHEMA)
    lake.overwrite(first, "gold.t_arrow", partition_by=("month",))
    lake.overwrite(second, "gold.t_arrow", partition_by=("month",))
    old = lake.read_arrow("gold.t_arrow", 0)
    assert old.schema.names == ["month", "rome", "n"]  # the partition column in its place
    assert sorted(old.to_pylist(), key=str) == sorted(
        lake.read("gold.t_arrow", 0).toArrow().to_pylist(), key=str
    )
    assert lake.read_arrow("gold.t_arrow", 1).to_pylist() == [{"month": "2024-02", "rome": "M1805", "n": 7}]
    with pytest.raises(LakeError, match="gold.t_arrow version 5 .* cannot be read as Arrow"):
        lake.read_arrow("gold.t_arrow", 5)
    # Rows deleted through a deletion vector must not come back: delta-rs refuses such a table.
    lake.overwrite(first, "gold.t_arrow_dv", properties={"delta.enableDeletionVectors": "true"})
    DeltaTable.forPath(spark, lake.path("gold.t_arrow_dv")).delete("rome = 'A1101'")
    with pytest.raises(LakeError, match="cannot be read as Arrow.*deletionVectors"):
        lake.read_arrow("gold.t_arrow_dv", lake.version("gold.t_arrow_dv"))


def test_arrow_writes_are_delta_commits_spark_reads_with_their_schema_and_versions(lake: Lake):
    first = pa.table({"rome": ["A1101", "M1805"], "n": pa.array([3, None], pa.int64())})
    assert lake.overwrite_arrow(first, "gold.t_arrow_w") == 0
    tags = pa.list_(pa.field("x", pa.string(), nullable=False))
    again = pa.table({"rome": ["K2111"], "tags": pa.array([["a"]], tags)})
    assert lake.overwrite_arrow(again, "gold.t_arrow_w") == 1  # a new schema replaces the old one
    got = lake.read("gold.t_arrow_w")
    assert got.schema.simpleString() == "struct<rome:string,tags:array<string>>"
    assert not got.schema["tags"].dataType.containsNull
    assert [r.asDict() for r in got.collect()] == [{"rome": "K2111", "tags": ["a"]}]
    assert sorted(lake.read("gold.t_arrow_w", 0).collect()) == sorted([("A1101", 3), ("M1805", None)])
    more = pa.table({"rome": ["B1101"], "tags": pa.array([["b", "c"]], tags)})
    assert lake.append_arrow(more, "gold.t_arrow_w") == 2
    assert lake.read("gold.t_arrow_w").count() == 2
    # A table Spark created takes Arrow rows, and Spark writes after delta-rs.
    lake.overwrite(lake.spark.createDataFrame([("a", 1)], "k string, n bigint"), "gold.t_mixed")
    lake.append_arrow(pa.table({"k": ["b"], "n": pa.array([2], pa.int64())}), "gold.t_mixed")
    lake.append(lake.spark.createDataFrame([("c", 3)], "k string, n bigint"), "gold.t_mixed")
    assert sorted(lake.read("gold.t_mixed").collect()) == [("a", 1), ("b", 2), ("c", 3)]
    assert lake.rows_written("gold.t_mixed", 0) == 1


def test_arrow_overwrite_keeps_partitions_and_properties_and_spark_replaces_a_partition_after(lake: Lake):
    """A full build writes its small gold tables from Arrow; a refresh then replaces periods with Spark."""
    spark = lake.spark
    only_rome = {"delta.dataSkippingStatsColumns": "rome"}
    rows = [("2024-01", "A1101", 1), ("2024-02", "A1101", 2)]
    lake.overwrite(spark.createDataFrame(rows, SCHEMA), "gold.t_arrow_parts", ["month"], only_rome)
    fresh = pa.table({"month": ["2024-01", "2024-02", "2024-03"], "rome": ["M1805"] * 3, "n": [10, 20, 30]})
    version = lake.overwrite_arrow(fresh, "gold.t_arrow_parts", ["month"], only_rome)
    written = lake.root / "gold" / "t_arrow_parts"
    assert {p.parent.name for p in written.glob("month=*/*.parquet") if p.stat().st_size} >= {
        "month=2024-01", "month=2024-02", "month=2024-03"
    }  # fmt: skip
    assert {tuple(s["minValues"]) for s in _file_stats(lake, "gold.t_arrow_parts", version)} == {("rome",)}
    assert DeltaTable.forPath(spark, str(written)).detail().first()["partitionColumns"] == ["month"]
    lake.replace_where(
        spark.createDataFrame([("2024-02", "K2111", 5)], SCHEMA), "gold.t_arrow_parts", "month = '2024-02'",
        ["month"],
    )  # fmt: skip
    expected = [("2024-01", "M1805", 10), ("2024-02", "K2111", 5), ("2024-03", "M1805", 30)]
    assertDataFrameEqual(lake.read("gold.t_arrow_parts"), spark.createDataFrame(expected, SCHEMA))
    assert DeltaTable.forPath(spark, str(written)).detail().first()["properties"] == only_rome
    # A table delta-rs creates has them too, and a table that exists takes new ones.
    lake.overwrite_arrow(fresh, "gold.t_arrow_new", ["month"], only_rome)
    detail = DeltaTable.forPath(spark, lake.path("gold.t_arrow_new")).detail().first()
    assert (detail["partitionColumns"], detail["properties"]) == (["month"], only_rome)
    only_n = {"delta.dataSkippingStatsColumns": "n"}
    version = lake.overwrite_arrow(fresh, "gold.t_arrow_new", ["month"], only_n)
    assert DeltaTable.forPath(spark, lake.path("gold.t_arrow_new")).detail().first()["properties"] == only_n
    assert {tuple(s["minValues"]) for s in _file_stats(lake, "gold.t_arrow_new", version)} == {("n",)}


def test_overwrite_accepts_a_new_schema(lake: Lake):
    spark = lake.spark
    lake.overwrite(spark.createDataFrame([("a",)], "x string"), "gold.t_schema")
    lake.overwrite(spark.createDataFrame([(1, 2)], "y int, z int"), "gold.t_schema")
    assert lake.read("gold.t_schema").columns == ["y", "z"]


def _file_stats(lake: Lake, table: str, version: int) -> list[dict]:
    """The statistics of the files a version added, from its commit file."""
    path = lake.root / table.replace(".", "/") / "_delta_log" / f"{version:020d}.json"
    actions = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [json.loads(a["add"]["stats"]) for a in actions if "add" in a]


def test_overwrite_keeps_statistics_of_the_columns_named_even_on_a_table_created_without(lake: Lake):
    rows = lake.spark.createDataFrame([("2024-01", "A1101", 3), ("2024-02", "M1805", 7)], SCHEMA)
    only_rome = {"delta.dataSkippingStatsColumns": "rome"}
    assert lake.overwrite(rows, "gold.t_stats") == 0  # Delta's default: statistics of every column
    every = {tuple(sorted(s["minValues"])) for s in _file_stats(lake, "gold.t_stats", 0)}
    assert every == {("month", "n", "rome")}
    version = lake.overwrite(rows, "gold.t_stats", properties=only_rome)
    assert {tuple(s["minValues"]) for s in _file_stats(lake, "gold.t_stats", version)} == {("rome",)}
    table = DeltaTable.forPath(lake.spark, lake.path("gold.t_stats"))
    assert table.detail().first()["properties"] == only_rome
    # set once: a later overwrite with the same properties commits nothing more than its rows
    again = lake.overwrite(rows, "gold.t_stats", properties=only_rome)
    assert again == version + 1
    assert lake.rows_written("gold.t_stats", again) == 2
    assert lake.overwrite(rows, "gold.t_stats_new", properties=only_rome) == 0  # created with them
    assert {tuple(s["minValues"]) for s in _file_stats(lake, "gold.t_stats_new", 0)} == {("rome",)}


def test_overwrite_partitions_replaces_only_the_months_given(lake: Lake):
    spark = lake.spark
    rows = [("2024-01", "A1101", 1), ("2024-02", "A1101", 2), ("2024-03", "A1101", 3)]
    lake.overwrite_partitions(spark.createDataFrame(rows, SCHEMA), "gold.t_parts", ["month"])
    update = spark.createDataFrame([("2024-02", "A1101", 20), ("2024-02", "M1805", 5)], SCHEMA)
    lake.overwrite_partitions(update, "gold.t_parts", ["month"])
    expected = [
        ("2024-01", "A1101", 1),
        ("2024-02", "A1101", 20),
        ("2024-02", "M1805", 5),
        ("2024-03", "A1101", 3),
    ]
    assertDataFrameEqual(lake.read("gold.t_parts"), spark.createDataFrame(expected, SCHEMA))


def test_merge_inserts_new_keys_and_updates_matched_rows_only_when_newer(lake: Lake):
    spark = lake.spark
    schema = "id string, updated int, value string"
    lake.merge(spark.createDataFrame([("o1", 1, "a"), ("o2", 1, "b")], schema), "silver.t_merge", ["id"])
    batch = spark.createDataFrame([("o1", 2, "a2"), ("o2", 0, "stale"), ("o3", 1, "c")], schema)
    version = lake.merge(batch, "silver.t_merge", ["id"], update_when="s.updated > t.updated")
    assert version == 1
    expected = [("o1", 2, "a2"), ("o2", 1, "b"), ("o3", 1, "c")]
    assertDataFrameEqual(lake.read("silver.t_merge"), spark.createDataFrame(expected, schema))


def test_merging_the_same_batch_twice_changes_no_row(lake: Lake):
    spark = lake.spark
    batch = spark.createDataFrame([("k1", 1), ("k2", 2)], "k string, v int")
    lake.merge(batch, "silver.t_idem", ["k"], update_when="s.v <> t.v")
    lake.merge(batch, "silver.t_idem", ["k"], update_when="s.v <> t.v")
    assertDataFrameEqual(lake.read("silver.t_idem"), batch)
    metrics = DeltaTable.forPath(spark, lake.path("silver.t_idem")).history(1).first()["operationMetrics"]
    assert (metrics["numTargetRowsUpdated"], metrics["numTargetRowsInserted"]) == ("0", "0")


def test_replace_groups_swaps_the_rows_of_the_groups_named_and_leaves_the_others(lake: Lake):
    spark = lake.spark
    schema = "seeker string, n int, value string"
    rows = [("a", 1, "a1"), ("b", 1, "b1"), ("b", 2, "b2"), ("b", 4, None), ("c", 1, "c1")]
    lake.overwrite(spark.createDataFrame(rows, schema), "gold.t_groups")
    # b: row 1 changes, row 2 is gone, row 3 is new, row 4 stays equal; d: a new group; a, c: not named
    new = spark.createDataFrame([("b", 1, "B1"), ("b", 3, "b3"), ("b", 4, None), ("d", 1, "d1")], schema)
    groups = spark.createDataFrame([("b",), ("d",)], "seeker string")
    version = lake.replace_groups(new, "gold.t_groups", groups, ["seeker", "n"])
    expected = [
        ("a", 1, "a1"),
        ("b", 1, "B1"),
        ("b", 3, "b3"),
        ("b", 4, None),
        ("c", 1, "c1"),
        ("d", 1, "d1"),
    ]
    assertDataFrameEqual(lake.read("gold.t_groups"), spark.createDataFrame(expected, schema))
    metrics = lake.commit_info("gold.t_groups", version)["operationMetrics"]
    assert (metrics["numTargetRowsUpdated"], metrics["numTargetRowsInserted"]) == ("1", "2")
    assert metrics["numTargetRowsDeleted"] == "1"


class _LateLake(Lake):
    """A lake whose first existence check of a table comes too late: another writer created the table
    between the check and the write, as two ingests loading at once do."""

    def __init__(self, lake: Lake) -> None:
        super().__init__(lake.spark, lake.root)
        self.stale: set[str] = set()

    def exists(self, table: str) -> bool:
        if table in self.stale:
            self.stale.discard(table)
            return False
        return super().exists(table)


def test_a_first_merge_into_a_table_another_writer_just_created_merges_instead_of_doubling_keys(lake: Lake):
    spark = lake.spark
    schema = "k string, v int"
    other = spark.createDataFrame([("k1", 1), ("k2", 2)], schema)
    lake.merge(other, "silver.t_race", ["k"])  # the other writer, first
    late = _LateLake(lake)
    late.stale.add("silver.t_race")

    late.merge(spark.createDataFrame([("k2", 20), ("k3", 3)], schema), "silver.t_race", ["k"])

    expected = spark.createDataFrame([("k1", 1), ("k2", 20), ("k3", 3)], schema)
    assertDataFrameEqual(lake.read("silver.t_race"), expected)


@pytest.mark.parametrize("log_folder", [False, True])
def test_create_lands_where_another_writer_has_files_but_no_commit_yet(lake: Lake, log_folder: bool):
    """Two ingests creating ``silver.quarantine`` at once: the first has written its files, not its commit
    (or was killed there). Delta's CREATE TABLE IF NOT EXISTS refuses such a location."""
    schema = StructType([StructField("k", StringType()), StructField("v", IntegerType())])
    other = lake.spark.createDataFrame([("k1", 1)], schema)
    name = f"silver.t_half_{log_folder:d}"
    other.write.parquet(lake.path(name))  # the files of a write not committed
    if log_folder:  # and its log folder, still empty
        Path(lake.path(name), "_delta_log").mkdir()
    properties = {"delta.enableDeletionVectors": "true"}

    assert lake.create(name, schema, properties=properties) == 0

    assert lake.read(name).count() == 0
    assert DeltaTable.forPath(lake.spark, lake.path(name)).detail().first()["properties"] == properties
    assert lake.create(name, schema) == 0  # exists: nothing more committed


def test_writes_without_keys_or_partitions_are_refused(lake: Lake):
    df = lake.spark.createDataFrame([(1,)], "x int")
    with pytest.raises(LakeError, match="needs key columns"):
        lake.merge(df, "silver.t_nokeys", [])
    with pytest.raises(LakeError, match="needs partition columns"):
        lake.overwrite_partitions(df, "silver.t_noparts", [])

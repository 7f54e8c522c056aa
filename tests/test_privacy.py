import hashlib
import hmac

from pyspark.sql import functions as F

from mobility.ingest.pseudonyms import pseudonym


def test_pseudonym_is_the_rfc_2104_hmac_sha256_of_the_id(spark):
    ids = ["0000000001", "123456789", "Élodie", ""]
    for key in (b"short", b"k" * 64, b"a-key-longer-than-the-sha256-block-" * 3):
        df = spark.createDataFrame([(i,) for i in ids], "idx string")
        got = {r["idx"]: r["p"] for r in df.select("idx", pseudonym(F.col("idx"), key).alias("p")).collect()}
        assert got == {i: hmac.new(key, i.encode(), hashlib.sha256).hexdigest() for i in ids}


def test_pseudonym_depends_on_the_key_and_keeps_nulls(spark):
    df = spark.createDataFrame([("42",), (None,)], "idx string")
    a = [r[0] for r in df.select(pseudonym(F.col("idx"), b"key-a")).collect()]
    b = [r[0] for r in df.select(pseudonym(F.col("idx"), b"key-b")).collect()]
    assert a[0] != b[0] and len(a[0]) == 64
    assert a[1] is None

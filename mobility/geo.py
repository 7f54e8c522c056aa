"""Distances between places, as Spark expressions.

``distance_km`` of a move is the great-circle (haversine) distance between the centroids of the origin and
destination communes (``ref.commune``: Paris, Lyon and Marseille as a whole are their arrondissements'
population-weighted centroid) when both are known, else between the centroids of their départements
(``ref.departement``), else null. The Earth is a sphere of radius 6,371 km (the generator uses the same).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

EARTH_RADIUS_KM = 6371.0


def haversine_km(lat1: Column, lng1: Column, lat2: Column, lng2: Column) -> Column:
    """Great-circle distance in km between two points in degrees (null when a coordinate is)."""
    phi1, phi2 = F.radians(lat1), F.radians(lat2)
    d_phi = phi2 - phi1
    d_lambda = F.radians(lng2) - F.radians(lng1)
    a = F.pow(F.sin(d_phi / 2), 2) + F.cos(phi1) * F.cos(phi2) * F.pow(F.sin(d_lambda / 2), 2)
    # least(): rounding can push ``a`` a hair above 1 for antipodes.
    return 2 * EARTH_RADIUS_KM * F.asin(F.sqrt(F.least(a, F.lit(1.0))))


def with_distance(
    df: DataFrame,
    commune: DataFrame,
    departement: DataFrame,
    *,
    from_commune: str = "from_commune",
    to_commune: str = "to_commune",
    from_dept: str = "from_dept",
    to_dept: str = "to_dept",
    out: str = "distance_km",
) -> DataFrame:
    """Add ``out``: commune centroids when both are known, else département centroids.

    ``commune`` needs ``code_commune, lat, lng``; ``departement`` needs ``code_departement, lat, lng``.
    Both are reference tables of fixed size and are broadcast.
    """

    def coords(ref: DataFrame, key: str, on: str, prefix: str) -> tuple[DataFrame, Column]:
        side = ref.select(
            F.col(key).alias(f"{prefix}key"),
            F.col("lat").alias(f"{prefix}lat"),
            F.col("lng").alias(f"{prefix}lng"),
        )
        return F.broadcast(side), F.col(on) == F.col(f"{prefix}key")

    joined = df
    names = []
    for ref, key, on, prefix in (
        (commune, "code_commune", from_commune, "_gfc_"),
        (commune, "code_commune", to_commune, "_gtc_"),
        (departement, "code_departement", from_dept, "_gfd_"),
        (departement, "code_departement", to_dept, "_gtd_"),
    ):
        side, condition = coords(ref, key, on, prefix)
        joined = joined.join(side, condition, "left")
        names += [f"{prefix}key", f"{prefix}lat", f"{prefix}lng"]

    def between(a: str, b: str) -> Column:
        return haversine_km(F.col(f"{a}lat"), F.col(f"{a}lng"), F.col(f"{b}lat"), F.col(f"{b}lng"))

    communes_known = (
        F.col("_gfc_lat").isNotNull()
        & F.col("_gfc_lng").isNotNull()
        & F.col("_gtc_lat").isNotNull()
        & F.col("_gtc_lng").isNotNull()
    )
    distance = F.when(communes_known, between("_gfc_", "_gtc_")).otherwise(between("_gfd_", "_gtd_"))
    return joined.withColumn(out, distance).drop(*names)

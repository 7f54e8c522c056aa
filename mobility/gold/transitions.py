"""``gold.transitions``: every observed move of a job seeker from an origin state (occupation, place) to a
destination state, built from ``silver.spells``, ``silver.sought_changes``, ``silver.hires`` and
``silver.offers``.

Definitions
-----------
Occupation level
    Occupations are compared on ``level``: ``rome_v3`` (default), the common v3 level (a ROME 4.0 code's
    official parent), so that a v3 origin and a v4 destination of the same fiche count as staying; or
    ``rome``, the code as received. ``rome`` compares codes alone and is meant for periods where every record
    carries ROME 4.0 codes (from ``reference.rome_v4_from``): 4.0 reuses some v3 codes with another meaning.
    ``from_rome``/``to_rome`` hold the code at the level; ``from_rome_code``/``to_rome_code`` and their
    ``*_rome_version`` the codes as received.
Occupation segments of a spell
    A spell starts with the occupation of its registration (ROME). A change of ``silver.sought_changes``
    belongs to the seeker's most recent spell with ``registration_date <= start_date <= end_date`` (an open
    spell has no end; no grace period: the seeker must still be registered); a change outside every spell is
    counted (``sought_changes_without_spell``) and otherwise ignored. From a change's ``start_date`` on, the
    spell seeks its occupation, until the next change; a change's own ``end_date`` (JOURFV) is not used.
    Two records of one day are ordered registration first, so a change on the registration day wins; two
    changes of one day, by their codes. Identical changes (same day and codes) count once.
Hire -> spell
    A hire belongs to the seeker's most recent spell (latest ``registration_date``) with
    ``registration_date <= hire_date <= end_date + grace_days`` (31 by default; an open spell has no end).
    A hire with no such spell is not a transition; it is counted (``hires_without_spell``). A seeker's
    hires of one day count as one: the first in the order of their codes, place, contract and offer.
Transition of kind ``hire``
    Origin: the occupation sought on the hire date (the last segment starting on or before it: a change on
    the hire day counts), in the spell's commune, département and region. Destination: the hire's ROME and
    workplace commune, département, region. ``start_date`` is the spell's registration date, ``move_date``
    the hire date, ``days_to_move`` the days between them (it includes the grace period when the hire came
    after the end of the spell). ``contract`` and ``offer_id`` are the hire's.
Transition of kind ``reorientation``
    Each change of the occupation sought inside a spell that changes the occupation at ``level`` (a change
    to the same code, or at ``rome_v3`` level to a code of the same v3 fiche, is not a move): from the
    occupation sought before to the new one, the place staying the spell's. ``start_date`` is the spell's
    registration date, ``move_date`` the change's start. No contract, offer, nor ``via_offer``.
``via_offer``
    The hire names an ``offer_id`` that exists in ``silver.offers``. A named offer that does not exist
    gives ``false`` and is counted (``hires_unknown_offer``). Offers of another occupation (at ``level``) or
    another département than the hire are kept (``via_offer`` true) and counted
    (``hires_offer_other_occupation``, ``hires_offer_other_departement``; an offer placed at region level or
    coarser has no département and is not counted there).
``mobility``
    ``occupational`` when ``from_rome != to_rome``, ``geographic`` when the place changes at ``geo_level``
    (``departement`` by default, or ``region``), ``both``, or ``none``.
``rome_link`` (directed: the official links go from a fiche to its targets)
    In order: ``same`` (same occupation at ``level``); when both codes as received are ROME 4.0 and 4.0
    lists the destination among the origin's mobilities (ranked, 1 = closest): ``proche`` for a rank up to
    ``v4_proche_max_rank`` (5: half of the 10 links each 4.0 fiche has, as v3 splits its links roughly half
    and half), ``evolution`` beyond; else a v3 typed link between the two ``rome_v3`` codes (``proche``
    wins when the file has both types for a pair, as some job-title level links do); else the code
    structure of the compared codes: ``same_domaine`` (first three characters), ``same_grand_domaine``
    (first letter), ``other``. Null when either occupation is unknown.
``distance_km``
    See ``mobility.geo``: commune centroids when both are known, else département centroids. A
    reorientation stays in place: 0.

Quality figures (one row, ``Transitions.quality``): hires, hires_matched, hires_without_spell,
hires_naming_offer, hires_via_offer, hires_unknown_offer, hires_offer_other_occupation,
hires_offer_other_departement, sought_changes, sought_changes_without_spell, reorientations, transitions.
The caller logs them; by construction ``transitions = hires_matched + reorientations``.

All of it is Spark expressions, in one ordered pass per seeker (``seeker_pass``): spells, sought changes
and hires are shuffled once by seeker; in date order, each change and hire finds its spell among the
seeker's spells so far; then in each spell's date order, the segments are numbered and each hire takes its
origin segment. No range join, nothing joined back; the offers and the (broadcast) reference tables are
joined to the moves afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from mobility.geo import with_distance
from mobility.lake import Lake

LEVELS = ("rome_v3", "rome")
GEO_LEVELS = ("departement", "region")
GRACE_DAYS = 31
V4_PROCHE_MAX_RANK = 5

KINDS = ("hire", "reorientation")
MOBILITY = ("none", "occupational", "geographic", "both")
ROME_LINKS = ("same", "proche", "evolution", "same_domaine", "same_grand_domaine", "other")

TRANSITION_COLUMNS = (
    "seeker_id", "kind", "from_rome", "from_dept", "from_region", "to_rome", "to_dept", "to_region",
    "start_date", "move_date", "days_to_move", "contract", "offer_id", "via_offer", "mobility", "rome_link",
    "distance_km", "from_commune", "to_commune", "from_rome_code", "from_rome_version", "to_rome_code",
    "to_rome_version",
)  # fmt: skip

_SPELL_ATTRIBUTES = (
    "seeker_id", "registration_date", "end_date", "next_registration", "category", "end_reason",
    "code_commune", "code_departement", "code_region", "education",
)  # fmt: skip
_CODES = ("rome", "rome_version", "rome_v3")
# What a hire brings, beside its seeker, date and codes, to its transition and to the quality figures: the
# rest of silver.hires (its lineage, ``_source_file`` and ``_row_hash`` among them) would only ride through
# the pass's shuffle and sorts.
_HIRE_PLACE = ("code_commune", "code_departement", "code_region", "contract", "offer_id")


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise ValueError(f"level {level!r}: expected one of {', '.join(LEVELS)}")
    return level


def check_geo_level(geo_level: str) -> str:
    if geo_level not in GEO_LEVELS:
        raise ValueError(f"geo_level {geo_level!r}: expected one of {', '.join(GEO_LEVELS)}")
    return geo_level


@dataclass(frozen=True)
class RefTables:
    """The reference tables transitions read (all of fixed size, broadcast in joins)."""

    rome_mobility: DataFrame  # version, code_rome, code_rome_cible, link_type, rank
    commune: DataFrame  # code_commune, lat, lng
    departement: DataFrame  # code_departement, lat, lng

    @classmethod
    def from_lake(cls, lake: Lake) -> RefTables:
        return cls(lake.read("ref.rome_mobility"), lake.read("ref.commune"), lake.read("ref.departement"))


@dataclass(frozen=True)
class Transitions:
    """``gold.transitions`` and its quality figures (a one-row DataFrame, for the caller to log)."""

    transitions: DataFrame
    quality: DataFrame


# ------------------------------------------------------------------------- one ordered pass per seeker

_SPELL, _CHANGE, _HIRE = 0, 1, 2  # the order of a seeker's records of one day


@dataclass(frozen=True)
class SeekerPass:
    """The spells' occupation segments and the hires with their origin, from one ordered pass per seeker.

    ``segments``: see ``occupation_segments``. ``hires``: one row per seeker and hire date (``seeker_id``,
    ``hire_date``, the codes and ``_HIRE_PLACE``; of two hires of one seeker on one day, the first in the
    order of their codes and place is kept) with ``_origin``, a struct of the origin segment
    (``registration_date``, ``occupation``, the codes and the spell's place), null when the hire belongs to
    no spell.
    """

    segments: DataFrame
    hires: DataFrame


def seeker_pass(
    spells: DataFrame,
    sought_changes: DataFrame,
    hires: DataFrame | None = None,
    *,
    level: str = "rome_v3",
    grace_days: int = GRACE_DAYS,
    persist: bool = False,
) -> SeekerPass:
    """Segments and hire origins (see the module docstring) from one shuffle of the seeker's records.

    Spells, sought changes and hires go through one shuffle by seeker and two sorts: in date order per
    seeker, each change and hire finds the most recent spell covering its date (the seeker's spells so far,
    the last that still covers it); then per spell in date order, the segments are numbered and each hire
    takes the last segment started on or before its date. No range join, no join back. ``persist``: keep the
    pass (memory and disk) so that the segments and the hires read it once; the caller releases it.
    """
    check_level(level)
    attributes = [
        c for c in _SPELL_ATTRIBUTES if c not in ("seeker_id", "registration_date", "next_registration")
    ]
    spell_rows = spells.select(
        "seeker_id",
        F.col("registration_date").alias("_date"),
        F.lit(_SPELL).alias("_kind"),
        *_CODES,
        F.struct(*attributes).alias("_spell"),
    )
    spell_type = spell_rows.schema["_spell"].dataType
    change_rows = sought_changes.select(
        "seeker_id",
        F.col("start_date").alias("_date"),
        F.lit(_CHANGE).alias("_kind"),
        *_CODES,
        F.lit(None).cast(spell_type).alias("_spell"),
    )
    records = spell_rows.unionByName(change_rows)
    if hires is not None:
        hire_rows = hires.select(
            "seeker_id",
            F.col("hire_date").alias("_date"),
            F.lit(_HIRE).alias("_kind"),
            *_CODES,
            F.lit(None).cast(spell_type).alias("_spell"),
            F.struct(*_HIRE_PLACE).alias("_hire"),
        )
        records = records.unionByName(hire_rows, allowMissingColumns=True)
    else:
        no_hire = "struct<" + ",".join(f"{c}:string" for c in _HIRE_PLACE) + ">"
        records = records.withColumn("_hire", F.lit(None).cast(no_hire))
    kind = F.col("_kind")

    # 1. By seeker in date order (a spell before a change before a hire of the same day; identical records
    # side by side): the spell a change or hire belongs to, the seeker's next registration.
    by_seeker = Window.partitionBy("seeker_id").orderBy("_date", "_kind", *_CODES, "_hire")
    spells_so_far = F.collect_list(
        F.when(kind == _SPELL, F.struct(F.col("_date").alias("reg"), F.col("_spell.end_date").alias("end")))
    ).over(by_seeker.rowsBetween(Window.unboundedPreceding, Window.currentRow))
    late = F.when(kind == _HIRE, F.lit(grace_days)).otherwise(F.lit(0))
    covering = F.filter(
        spells_so_far, lambda s: s["end"].isNull() | (F.col("_date") <= F.date_add(s["end"], late))
    )
    same_day = F.lag("_date").over(by_seeker).eqNullSafe(F.col("_date")) & F.lag("_kind").over(
        by_seeker
    ).eqNullSafe(kind)
    same_codes = [F.lag(c).over(by_seeker).eqNullSafe(F.col(c)) for c in _CODES]
    same_change = same_day & same_codes[0] & same_codes[1] & same_codes[2]
    repeated = ((kind == _HIRE) & same_day) | ((kind == _CHANGE) & same_change)
    owned = records.withColumns(
        {
            "_owner": F.when(kind == _SPELL, F.col("_date")).otherwise(
                F.try_element_at(covering, F.lit(-1))["reg"]
            ),
            "_repeated": repeated,
            "_next_registration": F.first(F.when(kind == _SPELL, F.col("_date")), ignorenulls=True).over(
                by_seeker.rowsBetween(1, Window.unboundedFollowing)
            ),
        }
    ).where(~F.col("_repeated") & (F.col("_owner").isNotNull() | (kind == _HIRE)))

    # 2. By spell in date order: the segments (the registration, then each change) and each hire's origin.
    in_spell = Window.partitionBy("seeker_id", "_owner").orderBy("_date", "_kind", *_CODES)
    so_far = in_spell.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    is_segment = kind != _HIRE
    segment = F.when(is_segment, F.struct(*_CODES, F.col(level).alias("occupation")))
    passed = owned.withColumns(
        {
            "_spell": F.first("_spell", ignorenulls=True).over(so_far),
            "next_registration": F.first(
                F.when(kind == _SPELL, F.col("_next_registration")), ignorenulls=True
            ).over(so_far),
            "seg_index": F.count(F.when(is_segment, 1)).over(so_far).cast("int"),
            "seg_next": F.first(F.when(is_segment, F.col("_date")), ignorenulls=True).over(
                in_spell.rowsBetween(1, Window.unboundedFollowing)
            ),
            "_prev": F.last(segment, ignorenulls=True).over(
                in_spell.rowsBetween(Window.unboundedPreceding, -1)
            ),
            "_last": F.last(segment, ignorenulls=True).over(so_far),
        }
    )
    if persist:
        passed = passed.persist(StorageLevel.MEMORY_AND_DISK)

    segments = passed.where(is_segment).select(
        "seeker_id",
        F.col("_owner").alias("registration_date"),
        F.col("_spell.end_date").alias("end_date"),
        "next_registration",
        *(F.col(f"_spell.{c}").alias(c) for c in attributes if c != "end_date"),
        F.col("_date").alias("seg_start"),
        *_CODES,
        F.col(level).alias("occupation"),
        "seg_index",
        "seg_next",
        *(F.col(f"_prev.{c}").alias(f"prev_{c}") for c in (*_CODES, "occupation")),
        F.least(F.col("seg_next"), F.col("_spell.end_date"), F.col("next_registration")).alias("stock_until"),
    )
    origin = F.struct(
        F.col("_owner").alias("registration_date"),
        F.col("_last.occupation").alias("occupation"),
        *(F.col(f"_last.{c}").alias(c) for c in _CODES),
        *(F.col(f"_spell.{c}").alias(c) for c in ("code_commune", "code_departement", "code_region")),
    )
    matched = passed.where(kind == _HIRE).select(
        "seeker_id",
        F.col("_date").alias("hire_date"),
        *_CODES,
        *(F.col(f"_hire.{c}").alias(c) for c in _HIRE_PLACE),
        F.when(F.col("_owner").isNotNull(), origin).alias("_origin"),
    )
    return SeekerPass(segments, matched)


def occupation_segments(spells: DataFrame, sought_changes: DataFrame, *, level: str = "rome_v3") -> DataFrame:
    """One row per stretch of a spell during which one occupation is sought (see the module docstring).

    Columns: the spell's ``seeker_id, registration_date, end_date, category, end_reason, code_commune,
    code_departement, code_region, education`` and ``next_registration`` (the seeker's next spell, if any);
    ``seg_start``, ``seg_index`` (1 = the registration's occupation), the codes ``rome, rome_version,
    rome_v3`` and ``occupation`` (at ``level``); ``prev_*`` the same of the segment before (null for the
    first); ``seg_next`` the next segment's start (null for the last); ``stock_until``, the first day the
    segment no longer counts in the stock: the next segment's start, the spell's end or the start of the
    seeker's next spell, whichever comes first (null: open). A later spell ends an earlier one for the stock,
    so that overlapping spells count a seeker once (the most recent wins).
    """
    return seeker_pass(spells, sought_changes, level=level).segments


# ------------------------------------------------------------------------------------------ links


def rome_links(rome_mobility: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(v3 typed links ``_l3_from, _l3_to, _l3_type``, v4 ranked links ``_l4_from, _l4_to, _l4_rank``),
    one row per ordered pair of fiches."""
    v3 = (
        rome_mobility.where(F.col("version") == "v3")
        .groupBy("code_rome", "code_rome_cible")
        .agg(
            F.min(F.when(F.col("link_type") == "proche", 1).when(F.col("link_type") == "evolution", 2)).alias(
                "_p"
            )
        )
        .select(
            F.col("code_rome").alias("_l3_from"),
            F.col("code_rome_cible").alias("_l3_to"),
            F.when(F.col("_p") == 1, "proche").when(F.col("_p") == 2, "evolution").alias("_l3_type"),
        )
    )
    v4 = (
        rome_mobility.where(F.col("version") == "v4")
        .groupBy("code_rome", "code_rome_cible")
        .agg(F.min("rank").alias("_l4_rank"))
        .select(F.col("code_rome").alias("_l4_from"), F.col("code_rome_cible").alias("_l4_to"), "_l4_rank")
    )
    return v3, v4


def with_rome_link(
    df: DataFrame, rome_mobility: DataFrame, *, v4_proche_max_rank: int = V4_PROCHE_MAX_RANK
) -> DataFrame:
    """Add ``rome_link`` to rows holding ``from_rome``/``to_rome`` (at the level), the codes as received
    ``from_rome_code``/``to_rome_code`` with their ``*_rome_version``, and ``_from_v3``/``_to_v3``."""
    v3, v4 = rome_links(rome_mobility)
    both_v4 = (F.col("from_rome_version") == "v4") & (F.col("to_rome_version") == "v4")
    joined = df.join(
        F.broadcast(v3),
        (F.col("_from_v3") == F.col("_l3_from")) & (F.col("_to_v3") == F.col("_l3_to")),
        "left",
    ).join(
        F.broadcast(v4),
        both_v4 & (F.col("from_rome_code") == F.col("_l4_from")) & (F.col("to_rome_code") == F.col("_l4_to")),
        "left",
    )
    origin, destination = F.col("from_rome"), F.col("to_rome")
    link = (
        F.when(origin.isNull() | destination.isNull(), F.lit(None).cast("string"))
        .when(origin == destination, "same")
        .when(
            F.col("_l4_rank").isNotNull(),
            F.when(F.col("_l4_rank") <= v4_proche_max_rank, "proche").otherwise("evolution"),
        )
        .when(F.col("_l3_type").isNotNull(), F.col("_l3_type"))
        .when(F.substring(origin, 1, 3) == F.substring(destination, 1, 3), "same_domaine")
        .when(F.substring(origin, 1, 1) == F.substring(destination, 1, 1), "same_grand_domaine")
        .otherwise("other")
    )
    return joined.withColumn("rome_link", link).drop(
        "_l3_from", "_l3_to", "_l3_type", "_l4_from", "_l4_to", "_l4_rank"
    )


def mobility_kind(geo_level: str = "departement") -> Column:
    """``none``, ``occupational``, ``geographic`` or ``both`` (null-safe comparisons)."""
    place = {"departement": "dept", "region": "region"}[check_geo_level(geo_level)]
    occupational = ~F.col("from_rome").eqNullSafe(F.col("to_rome"))
    geographic = ~F.col(f"from_{place}").eqNullSafe(F.col(f"to_{place}"))
    return (
        F.when(occupational & geographic, "both")
        .when(occupational, "occupational")
        .when(geographic, "geographic")
        .otherwise("none")
    )


# ------------------------------------------------------------------------------------ transitions


def with_offer(matched: DataFrame, offers: DataFrame, *, level: str = "rome_v3") -> DataFrame:
    """The matched hires with their offer's flags ``via_offer``, ``_offer_other_occupation``,
    ``_offer_other_departement``."""
    offer = offers.select(
        F.col("offer_id").alias("_offer_id"),
        F.col(level).alias("_offer_occupation"),
        F.col("code_departement").alias("_offer_dept"),
    )
    found = F.col("_offer_id").isNotNull()
    return (
        matched.join(offer, F.col("offer_id") == F.col("_offer_id"), "left")
        .withColumns(
            {
                "via_offer": found,
                "_offer_other_occupation": found & ~F.col("_offer_occupation").eqNullSafe(F.col(level)),
                "_offer_other_departement": found
                & F.col("_offer_dept").isNotNull()
                & (F.col("_offer_dept") != F.col("code_departement")),
            }
        )
        .drop("_offer_id", "_offer_occupation", "_offer_dept")
    )


def _hire_moves(matched: DataFrame, level: str) -> DataFrame:
    o = F.col("_origin")
    return matched.where(o.isNotNull()).select(
        "seeker_id",
        F.lit("hire").alias("kind"),
        o["occupation"].alias("from_rome"),
        o["code_departement"].alias("from_dept"),
        o["code_region"].alias("from_region"),
        F.col(level).alias("to_rome"),
        F.col("code_departement").alias("to_dept"),
        F.col("code_region").alias("to_region"),
        o["registration_date"].alias("start_date"),
        F.col("hire_date").alias("move_date"),
        "contract",
        "offer_id",
        "via_offer",
        o["code_commune"].alias("from_commune"),
        F.col("code_commune").alias("to_commune"),
        o["rome"].alias("from_rome_code"),
        o["rome_version"].alias("from_rome_version"),
        F.col("rome").alias("to_rome_code"),
        F.col("rome_version").alias("to_rome_version"),
        o["rome_v3"].alias("_from_v3"),
        F.col("rome_v3").alias("_to_v3"),
    )


def _changes_occupation() -> Column:
    """A segment after its spell's first that changes the occupation sought: a reorientation."""
    return (F.col("seg_index") > 1) & ~F.col("occupation").eqNullSafe(F.col("prev_occupation"))


def _reorientations(segments: DataFrame) -> DataFrame:
    return segments.where(_changes_occupation()).select(
        "seeker_id",
        F.lit("reorientation").alias("kind"),
        F.col("prev_occupation").alias("from_rome"),
        F.col("code_departement").alias("from_dept"),
        F.col("code_region").alias("from_region"),
        F.col("occupation").alias("to_rome"),
        F.col("code_departement").alias("to_dept"),
        F.col("code_region").alias("to_region"),
        F.col("registration_date").alias("start_date"),
        F.col("seg_start").alias("move_date"),
        F.lit(None).cast("string").alias("contract"),
        F.lit(None).cast("string").alias("offer_id"),
        F.lit(False).alias("via_offer"),
        F.col("code_commune").alias("from_commune"),
        F.col("code_commune").alias("to_commune"),
        F.col("prev_rome").alias("from_rome_code"),
        F.col("prev_rome_version").alias("from_rome_version"),
        F.col("rome").alias("to_rome_code"),
        F.col("rome_version").alias("to_rome_version"),
        F.col("prev_rome_v3").alias("_from_v3"),
        F.col("rome_v3").alias("_to_v3"),
    )


def build_transitions(
    spells: DataFrame,
    sought_changes: DataFrame,
    hires: DataFrame,
    offers: DataFrame,
    refs: RefTables,
    *,
    level: str = "rome_v3",
    grace_days: int = GRACE_DAYS,
    geo_level: str = "departement",
    v4_proche_max_rank: int = V4_PROCHE_MAX_RANK,
    passed: SeekerPass | None = None,
    persist: bool = False,
) -> Transitions:
    """``gold.transitions`` (columns ``TRANSITION_COLUMNS``) and its quality figures, from silver tables.

    ``level``: occupation level compared, ``rome_v3`` (default) or ``rome``. ``grace_days``: a hire up to
    this many days after a spell's end still belongs to it (31). ``geo_level``: the place level of a
    ``geographic`` mobility, ``departement`` (default) or ``region``. ``v4_proche_max_rank``: ROME 4.0
    ranked links up to this rank count as ``proche``, beyond as ``evolution`` (5). ``passed``: the
    ``seeker_pass`` of these records at ``level`` and ``grace_days``, when the caller made it already (the
    market reads its segments too). ``persist``: keep the pass and the matched hires (memory and disk), which
    the quality figures and the transitions both read; the caller releases them. The transitions themselves
    are left lazy: a caller that reads them twice reads them from where it wrote them (at 6M seekers,
    caching them cost more than scanning the written table).
    """
    check_level(level)
    check_geo_level(geo_level)
    if passed is None:
        passed = seeker_pass(
            spells, sought_changes, hires, level=level, grace_days=grace_days, persist=persist
        )
    segments = passed.segments
    matched = with_offer(passed.hires, offers, level=level)
    if persist:
        matched = matched.persist(StorageLevel.MEMORY_AND_DISK)
    moves = _hire_moves(matched, level).unionByName(_reorientations(segments))
    moves = with_rome_link(moves, refs.rome_mobility, v4_proche_max_rank=v4_proche_max_rank)
    moves = with_distance(moves, refs.commune, refs.departement)
    moves = moves.withColumns(
        {
            "days_to_move": F.datediff("move_date", "start_date"),
            "mobility": mobility_kind(geo_level),
            "distance_km": F.when(F.col("kind") == "reorientation", F.lit(0.0)).otherwise(
                F.col("distance_km")
            ),
        }
    ).select(*TRANSITION_COLUMNS)

    has_spell = F.col("_origin").isNotNull()
    hire_figures = matched.agg(
        F.count(F.lit(1)).alias("hires"),
        F.count(F.when(has_spell, 1)).alias("hires_matched"),
        F.count(F.when(~has_spell, 1)).alias("hires_without_spell"),
        F.count("offer_id").alias("hires_naming_offer"),
        F.count(F.when(F.col("via_offer"), 1)).alias("hires_via_offer"),
        F.count(F.when(F.col("offer_id").isNotNull() & ~F.col("via_offer"), 1)).alias("hires_unknown_offer"),
        F.count(F.when(F.col("_offer_other_occupation"), 1)).alias("hires_offer_other_occupation"),
        F.count(F.when(F.col("_offer_other_departement"), 1)).alias("hires_offer_other_departement"),
    )
    # A change inside a spell is a segment after the spell's first (spells are unique per seeker and day):
    # the changes outside every spell are the others, with no second range join to find them. The figures
    # read the pass, not the transitions: a transition is a matched hire or a reorientation.
    in_spell = segments.agg(
        F.count(F.when(F.col("seg_index") > 1, 1)).alias("_in_spell"),
        F.count(F.when(_changes_occupation(), 1)).alias("reorientations"),
    )
    change_figures = (
        sought_changes.agg(F.count(F.lit(1)).alias("sought_changes"))
        .crossJoin(in_spell)
        .select(
            "sought_changes",
            (F.col("sought_changes") - F.col("_in_spell")).alias("sought_changes_without_spell"),
            "reorientations",
        )
    )
    quality = hire_figures.crossJoin(change_figures).withColumn(
        "transitions", F.col("hires_matched") + F.col("reorientations")
    )
    return Transitions(moves, quality)

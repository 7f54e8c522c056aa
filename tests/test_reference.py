"""The ref.* tables from the real official files in reference.dir, and clear errors for broken files."""

from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from mobility import reference
from mobility.config import Settings
from mobility.lake import Lake
from mobility.reference import CsvFormat, ReferenceFileError, check_csv


@pytest.fixture(scope="module")
def ref(ref_lake: Lake) -> Lake:
    return ref_lake


def one(df, column):
    rows = df.select(column).collect()
    assert len(rows) == 1, rows
    return rows[0][0]


def test_summary_has_the_official_counts(ref: Lake):
    counts = reference.summary(ref)
    assert {k: counts[k] for k in list(counts)[:9]} == {
        "rome v3 fiches": 531,
        "rome v4 fiches": 1584,
        "rome v4 fiches with a v3 parent": 1584,
        "grands domaines": 14,
        "domaines": 110,
        "v3 typed links": 4218,
        "v4 ranked links": 14912,
        "regions": 18,
        "departements": 101,
    }
    # 34,976 INSEE codes plus Paris, Lyon and Marseille built from their arrondissements.
    assert counts["communes"] == 34976 + 3


def test_v3_label_of_a1101_has_its_apostrophe_unescaped(ref: Lake):
    rome = ref.read("ref.rome").where((F.col("code_rome") == "A1101") & (F.col("version") == "v3"))
    assert one(rome, "label") == "Conduite d'engins agricoles et forestiers"
    assert one(rome, "release") == "347"


def test_a_code_reused_by_rome_4_keeps_both_labels_apart(ref: Lake):
    m1805 = ref.read("ref.rome").where(F.col("code_rome") == "M1805")
    labels = {r["version"]: r["label"] for r in m1805.collect()}
    assert labels == {
        "v3": "Études et développement informatique",
        "v4": "Développeur / Développeuse informatique",
    }


def test_m1805_is_in_grand_domaine_m_support_a_l_entreprise(ref: Lake):
    m1805 = ref.read("ref.rome").where((F.col("code_rome") == "M1805") & (F.col("version") == "v3"))
    assert one(m1805, "grand_domaine") == "M"
    assert one(m1805, "domaine") == "M18"
    tree = ref.read("ref.rome_tree")
    assert one(tree.where(F.col("code") == "M"), "label") == "Support à l'entreprise"
    assert one(tree.where(F.col("code") == "M18"), "parent") == "M"


def test_v4_m1855_descends_from_v3_m1805(ref: Lake):
    m1855 = ref.read("ref.rome").where(F.col("code_rome") == "M1855")
    assert one(m1855, "version") == "v4"
    assert one(m1855, "rome_v3") == "M1805"


def test_every_v4_parent_is_a_v3_fiche_or_its_tree(ref: Lake):
    rome = ref.read("ref.rome")
    v3 = rome.where(F.col("version") == "v3").select(F.col("code_rome").alias("rome_v3"))
    orphans = rome.where(F.col("version") == "v4").join(v3, "rome_v3", "left_anti")
    # ROME 4.0 names 532 parents, the 531 fiches of release 347 plus one retired since.
    assert orphans.select("rome_v3").distinct().count() <= 1


def test_links_are_typed_in_v3_and_ranked_in_v4(ref: Lake):
    links = ref.read("ref.rome_mobility")
    v3_types = {r[0] for r in links.where(F.col("version") == "v3").select("link_type").distinct().collect()}
    assert v3_types == {"proche", "evolution"}
    v4 = links.where(F.col("version") == "v4")
    assert v4.where(F.col("rank").isNull()).count() == 0
    assert one(v4.agg(F.min("rank")), "min(rank)") == 1
    first = v4.where((F.col("code_rome") == "A1101") & (F.col("code_rome_cible") == "A1102"))
    assert one(first, "rank") == 6


def test_ain_is_in_auvergne_rhone_alpes(ref: Lake):
    ain = ref.read("ref.departement").where(F.col("code_departement") == "01")
    assert one(ain, "code_region") == "84"
    region = ref.read("ref.region").where(F.col("code_region") == "84")
    assert one(region, "name") == "Auvergne-Rhône-Alpes"


def test_paris_75056_resolves_to_the_sum_of_its_arrondissements(ref: Lake):
    communes = ref.read("ref.commune")
    paris = communes.where(F.col("code_commune") == "75056").collect()
    assert len(paris) == 1
    paris = paris[0]
    assert (paris["name"], paris["code_departement"], paris["code_region"]) == ("Paris", "75", "11")
    arrondissements = communes.where(F.col("parent_code") == "75056")
    assert arrondissements.count() == 20
    assert paris["population"] == one(arrondissements.agg(F.sum("population")), "sum(population)")
    assert 48.81 < paris["lat"] < 48.91 and 2.22 < paris["lng"] < 2.47
    assert {r["code_commune"] for r in communes.where(F.col("name").isin("Lyon", "Marseille")).collect()} == {
        "69123",
        "13055",
    }


def test_communes_are_unique_and_postal_codes_point_to_them(ref: Lake):
    communes = ref.read("ref.commune")
    assert communes.select("code_commune").distinct().count() == communes.count()
    corsica = communes.where(F.col("code_commune") == "2A004")  # Ajaccio
    assert one(corsica, "code_departement") == "2A"
    ajaccio = ref.read("ref.postal_code").where(F.col("code_postal") == "20000")
    assert [r["code_commune"] for r in ajaccio.collect()] == ["2A004"]


def test_tension_region_codes_are_insee_codes(ref: Lake):
    tension = ref.read("ref.tension")
    regions = tension.where(F.col("geo_level") == "reg").select("code_region").distinct()
    unknown = regions.join(ref.read("ref.region"), "code_region", "left_anti")
    assert unknown.count() == 0
    assert {r[0] for r in tension.select("geo_level").distinct().collect()} == {"nat", "reg", "dep"}
    assert {r[0] for r in tension.select("fap_level").distinct().collect()} == {"fap225", "fap87"}


def test_fap_rome_drops_families_without_a_fiche(ref: Lake):
    fap = ref.read("ref.fap_rome")
    assert fap.where(~F.col("code_rome").rlike(reference.ROME_CODE)).count() == 0
    assert fap.where(F.col("fap") == "B7Z90").select("code_rome").count() >= 2


def test_reloading_the_same_files_gives_the_same_rows(ref: Lake, settings: Settings):
    rebuilt = reference.build(reference.read_sources(ref.spark, settings.reference), settings.reference)
    assertDataFrameEqual(rebuilt["ref.commune"], ref.read("ref.commune"))
    assertDataFrameEqual(rebuilt["ref.rome"], ref.read("ref.rome"))


# ------------------------------------------------------------------------------------------ bad files

FMT = CsvFormat(("code_rome", "libelle_rome"))


def write(tmp_path: Path, text: str | bytes, name: str = "fiches.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_missing_file_is_named(tmp_path: Path):
    with pytest.raises(ReferenceFileError, match=r"fiches.csv: file not found"):
        check_csv(tmp_path / "fiches.csv", FMT)


def test_missing_column_is_named(tmp_path: Path):
    path = write(tmp_path, '"code_rome","label"\n"A1101","x"\n')
    with pytest.raises(ReferenceFileError, match=r"fiches.csv: missing column\(s\) libelle_rome"):
        check_csv(path, FMT)


def test_wrong_separator_is_named(tmp_path: Path):
    path = write(tmp_path, "code_rome;libelle_rome\nA1101;x\n")
    with pytest.raises(
        ReferenceFileError, match=r"wrong separator: expected ',' but the header is separated by ';'"
    ):
        check_csv(path, FMT)


def test_unknown_encoding_is_named(tmp_path: Path):
    path = write(
        tmp_path, "code_rome,libelle_rome\nA1204,Protection du patrimoine naturel é\n".encode("utf-16")
    )
    with pytest.raises(ReferenceFileError, match=r"fiches.csv: not utf-8 text \(byte 0xff at offset 0\)"):
        check_csv(path, FMT)
    latin1 = write(tmp_path, "code_rome,libelle_rome\nM1805,Études\n".encode("latin-1"))
    with pytest.raises(ReferenceFileError, match=r"not utf-8 text \(byte 0xc9 at offset 29\)"):
        check_csv(latin1, FMT)


def test_ragged_row_is_named_with_its_line(tmp_path: Path):
    path = write(tmp_path, "code_rome,libelle_rome\nA1101,x\nA1102,y,extra\n")
    with pytest.raises(ReferenceFileError, match=r"fiches.csv: line 3 has 3 fields, the header has 2"):
        check_csv(path, FMT)


def test_empty_file_is_refused(tmp_path: Path):
    with pytest.raises(ReferenceFileError, match="empty file"):
        check_csv(write(tmp_path, ""), FMT)


@pytest.fixture
def reference_copy(tmp_path: Path, settings: Settings) -> Path:
    """reference.dir rebuilt from links to the real files, so that a test can break one."""
    folder = tmp_path / "reference"
    for source in settings.reference.dir.rglob("*"):
        if source.is_file():
            target = folder / source.relative_to(settings.reference.dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source)
    return folder


def test_loading_a_folder_with_one_broken_file_names_that_file(
    reference_copy: Path, settings: Settings, spark, tmp_path: Path
):
    lake = Lake(spark, tmp_path / "lake")
    communes = reference_copy / "geo" / "communes.csv"
    text = communes.read_text(encoding="utf-8")
    communes.unlink()
    communes.write_text(text.replace("insee_dep,", "dep,", 1), encoding="utf-8")
    config = settings.reference.model_copy(update={"dir": reference_copy})
    with pytest.raises(ReferenceFileError, match=r"geo/communes.csv: missing column\(s\) insee_dep"):
        reference.load(lake.spark, lake, config)
    assert not lake.exists("ref.rome"), "nothing is written when a file is broken"


def test_a_rome_code_outside_the_code_pattern_names_the_file(
    reference_copy: Path, settings: Settings, spark, tmp_path: Path
):
    lake = Lake(spark, tmp_path / "lake")
    fiches = reference_copy / settings.reference.files.rome_v3
    text = fiches.read_text(encoding="utf-8")
    fiches.unlink()
    fiches.write_text(text.replace('"A1101"', '"Z1101"', 1), encoding="utf-8")
    config = settings.reference.model_copy(update={"dir": reference_copy})
    with pytest.raises(
        ReferenceFileError, match=r"unix_referentiel_code_rome_v347_utf8.csv.*code_rome='Z1101'"
    ):
        reference.load(lake.spark, lake, config)

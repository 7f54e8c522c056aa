"""The generator: real formats, a consistent synthetic France, calibration on the real reference data, a
ground truth the hires follow, and defects that each produce exactly their quarantine reason.

The reference tables are read from the session's ``ref_lake`` once per module; the datasets are generated
once per module (numpy only, a few seconds each) and shared by the tests.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mobility.config import Settings
from mobility.ingest import formats
from mobility.lake import Lake
from mobility.synth import SynthParams, generate, generate_from_reference, read_reference
from mobility.synth.model import grouped_sampler

SEP = formats.CSV_SEPARATOR
DE_HEADER = (*formats.DE.columns, "LIBCOM")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PAGE_NAME = re.compile(r"^offers_(\d{4}-\d{2})_(\d{3})\.json$")
RECORD_KINDS = {
    "bad_date", "date_order", "unknown_rome", "unknown_commune", "missing_field", "duplicate",
    "unknown_seeker", "offer_after_hire", "unknown_place",
}  # fmt: skip
ALL_KINDS = RECORD_KINDS | {"malformed_json", "truncated_line", "latin1"}


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def frames(ref_lake: Lake) -> dict[str, pd.DataFrame]:
    return read_reference(ref_lake)


@pytest.fixture(scope="module")
def cutover(settings: Settings) -> date:
    return settings.reference.rome_v4_from


@pytest.fixture(scope="module")
def make(frames, cutover, tmp_path_factory):
    """Generate (once per distinct arguments) into a fresh folder; returns the folder."""
    made: dict[tuple, Path] = {}

    def run(seekers: int, seed: int, dirty_rate: float = 0.0, chunk: int = 5000, months: int = 36,
            start: str = "2021-01", tag: str = "") -> Path:  # fmt: skip
        key = (seekers, seed, dirty_rate, chunk, months, start, tag)
        if key not in made:
            out = tmp_path_factory.mktemp("synth")
            generate_from_reference(
                frames, seekers=seekers, months=months, start=start, seed=seed, out=out,
                dirty_rate=dirty_rate, chunk_seekers=chunk, cutover=cutover,
            )  # fmt: skip
            made[key] = out
        return made[key]

    return run


@pytest.fixture(scope="module")
def clean(make) -> Path:
    """20,000 seekers over 2021-2023 in chunks of 5,000."""
    return make(20_000, seed=3)


@pytest.fixture(scope="module")
def dirty(make) -> Path:
    """The same run with 2% of defective records."""
    return make(20_000, seed=3, dirty_rate=0.02)


@pytest.fixture(scope="module")
def big(make) -> Path:
    """40,000 seekers: enough hires per origin for the calibration and truth tests."""
    return make(40_000, seed=2024, chunk=20_000)


class Ref:
    """What the tests check records against, from the ref.* tables."""

    def __init__(self, frames: dict[str, pd.DataFrame], cutover: date):
        rome = frames["ref.rome"]
        self.cutover = pd.Timestamp(cutover)
        self.v3 = set(rome.loc[rome["version"] == "v3", "code_rome"])
        self.v4 = set(rome.loc[rome["version"] == "v4", "code_rome"])
        self.parent = {
            v: dict(zip(g["code_rome"], g["rome_v3"], strict=True)) for v, g in rome.groupby("version")
        }
        self.label = {(r.version, r.code_rome): r.label for r in rome.itertuples()}
        com = frames["ref.commune"]
        self.communes = set(com["code_commune"])
        self.dep_of = dict(zip(com["code_commune"], com["code_departement"], strict=True))
        self.region_of = dict(zip(com["code_commune"], com["code_region"], strict=True))
        self.deps = set(frames["ref.departement"]["code_departement"])
        self.regions = set(frames["ref.region"]["name"])
        self.postal = set(frames["ref.postal_code"]["code_postal"])

    def v3_of(self, codes: pd.Series, days: pd.Series) -> np.ndarray:
        """The v3 occupation of codes read in the version in force on their day."""
        after = pd.to_datetime(days) >= self.cutover
        return np.where(after, codes.map(self.parent["v4"]), codes.map(self.parent["v3"]))


@pytest.fixture(scope="module")
def ref(frames, cutover) -> Ref:
    return Ref(frames, cutover)


def read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / name, sep=SEP, dtype=str, keep_default_na=False)


def offers_of(folder: Path) -> pd.DataFrame:
    """Every offer of the pages that parse, with its page and 1-based position."""
    rows = []
    for path in sorted(folder.glob("offers_*.json")):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            continue
        for position, offer in enumerate(body["resultats"], 1):
            rows.append({"file": path.name, "position": position, "offer": offer})
    return pd.DataFrame(rows)


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def place_departement(lieu: dict, ref: Ref) -> str | None:
    """The département an offer's place names (commune, else the "NN - " of its label)."""
    if lieu.get("commune") in ref.dep_of:
        return ref.dep_of[lieu["commune"]]
    code = lieu.get("libelle", "").split(" - ")[0]
    return code if code in ref.deps else None


# ---------------------------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_bytes_and_another_seed_different_ones(make):
    args = {"seekers": 3000, "dirty_rate": 0.02, "chunk": 1000, "months": 24, "start": "2022-06"}
    first, again = make(seed=9, **args), make(seed=9, tag="again", **args)
    other = make(seed=10, **args)
    hashes = digest(first)
    assert len(hashes) > 20 and "truth/destinations.csv" in hashes and "truth/defects.csv" in hashes
    assert digest(again) == hashes
    changed = {k for k, v in digest(other).items() if hashes.get(k) != v}
    assert {"de.csv", "rome.csv", "hires.csv", "truth/defects.csv"} <= changed


def test_generate_reads_the_lake_and_matches_the_numpy_entry_point(
    spark, ref_lake, settings, frames, tmp_path
):
    args = {"seekers": 2000, "months": 6, "start": "2023-01", "seed": 1, "dirty_rate": 0.0}
    counts = generate(spark, ref_lake, settings, out=tmp_path / "a", chunk_seekers=2000, **args)
    cutover = settings.reference.rome_v4_from
    generate_from_reference(frames, out=tmp_path / "b", chunk_seekers=2000, cutover=cutover, **args)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert counts["seekers"] == 2000 and counts["de"] == len(read(tmp_path / "a", "de.csv"))
    params = json.loads((tmp_path / "a" / "truth" / "params.json").read_text())
    assert params["seed"] == 1 and params["arguments"]["rome_v4_from"] == "2023-03-01"
    assert SynthParams.from_json(params["params"]) == SynthParams()


def test_a_dirty_rate_outside_zero_to_one_is_refused(frames, cutover, tmp_path):
    with pytest.raises(ValueError, match="dirty_rate"):
        generate_from_reference(
            frames, seekers=10, months=1, start="2021-01", seed=1, out=tmp_path, dirty_rate=1.5,
            chunk_seekers=10, cutover=cutover,
        )  # fmt: skip


def test_generate_refuses_to_overwrite_input_files_it_did_not_write(frames, cutover, tmp_path):
    (tmp_path / "de.csv").write_text("real data\n")
    with pytest.raises(FileExistsError, match="not written by the generator"):
        generate_from_reference(
            frames, seekers=10, months=1, start="2021-01", seed=1, out=tmp_path, dirty_rate=0.0,
            chunk_seekers=10, cutover=cutover,
        )  # fmt: skip
    assert (tmp_path / "de.csv").read_text() == "real data\n"


def test_grouped_sampler_draws_by_weight_within_each_group_and_never_a_zero_weight_item():
    sampler = grouped_sampler(
        np.array([0, 0, 0, 1, 1]), np.array([7, 8, 9, 7, 8]), np.array([1.0, 0, 3, 0, 2])
    )
    rng = np.random.default_rng(0)
    draws = sampler.sample(np.repeat([0, 1], 20_000), rng.random(40_000))
    first, second = Counter(draws[:20_000].tolist()), Counter(draws[20_000:].tolist())
    assert set(first) == {7, 9} and abs(first[9] / 20_000 - 0.75) < 0.01
    assert set(second) == {8}


# ---------------------------------------------------------------------------------------------- formats


def test_csv_files_have_the_formats_headers_iso_dates_and_coded_values(clean):
    for name, header in (
        ("de.csv", DE_HEADER),
        ("rome.csv", formats.ROME.columns),
        ("hires.csv", formats.HIRES.columns),
    ):
        lines = (clean / name).read_text(encoding="utf-8").splitlines()
        assert lines[0] == SEP.join(header)
        assert {line.count(SEP) for line in lines} == {len(header) - 1}, name
    de, rome, hires = read(clean, "de.csv"), read(clean, "rome.csv"), read(clean, "hires.csv")
    for df, dates in ((de, ["DATINS", "DATANN"]), (rome, ["JOURDV", "JOURFV"]), (hires, ["DATEMB"])):
        assert df["IDX"].str.fullmatch(r"[0-9]+").all()
        for column in dates:
            filled = df.loc[df[column] != "", column]
            pd.to_datetime(filled, format="%Y-%m-%d", errors="raise")
            assert filled.str.fullmatch(ISO_DATE.pattern).all()
    assert set(de["MOTANN"]) == set(formats.END_REASONS) | {""}
    assert set(de["CATREGR"]) <= set(formats.CATEGORIES) and set(de["SEXE"]) == set(formats.SEXES)
    assert set(de["NIVFOR"]) == set(formats.EDUCATION_LEVELS)
    assert de["ANNAIS"].astype(int).between(1940, 2010).all()
    assert de["ROMEAPL"].str.fullmatch(r"[0-9]+").all()
    assert de["LIBCOM"].str.contains("é").any()  # UTF-8 names with their accents
    assert set(hires["TYPCTR"]) <= set(formats.CONTRACT_TYPES)
    assert hires["DUREE"].str.fullmatch(r"[0-9]*").all()
    assert (hires.loc[hires["TYPCTR"] == "CDI", "DUREE"] == "").all()


def test_offer_pages_are_api_responses_of_at_most_150_offers_named_by_creation_month(clean, ref):
    pages = sorted(clean.glob("offers_*.json"))
    assert pages
    ids, places = [], Counter()
    for path in pages:
        month, _ = PAGE_NAME.match(path.name).groups()
        body = json.loads(path.read_text(encoding="utf-8"))
        assert list(body) == ["resultats"] and 0 < len(body["resultats"]) <= formats.OFFERS_PAGE_SIZE
        for offer in body["resultats"]:
            ids.append(offer["id"])
            assert re.fullmatch(r"[0-9A-Z]{7}", offer["id"])
            assert TIMESTAMP.match(offer["dateCreation"]) and offer["dateCreation"][:7] == month
            assert TIMESTAMP.match(offer["dateActualisation"])
            assert offer["dateActualisation"] >= offer["dateCreation"]
            assert offer["typeContrat"] in formats.CONTRACT_TYPES
            assert isinstance(offer["nombrePostes"], int) and offer["nombrePostes"] >= 1
            assert offer["qualificationCode"] in "123456789" and offer["secteurActivite"].isdigit()
            assert offer["entreprise"]["nom"] and offer["intitule"] and offer["appellationlibelle"]
            lieu = offer["lieuTravail"]
            places[tuple(sorted(lieu))] += 1
            if "commune" in lieu:
                assert lieu["commune"] in ref.communes
                assert lieu["libelle"].startswith(ref.dep_of[lieu["commune"]] + " - ")
            elif "codePostal" in lieu:
                assert lieu["codePostal"] in ref.postal
            else:
                label = lieu["libelle"]
                assert (
                    label == "France"
                    or label in ref.regions
                    or label.startswith("99 - ")
                    or label.split(" - ")[0] in ref.deps
                ), label
    assert len(ids) == len(set(ids))
    # every shape of the real API: commune with or without coordinates, postal code, label only
    assert set(places) == {
        ("codePostal", "commune", "latitude", "libelle", "longitude"),
        ("codePostal", "commune", "libelle"),
        ("codePostal", "libelle"),
        ("libelle",),
    }
    labels = Counter()
    for offer in offers_of(clean)["offer"]:
        lieu = offer["lieuTravail"]
        if list(lieu) == ["libelle"]:
            label = lieu["libelle"]
            kind = "national" if label == "France" else "abroad" if label.startswith("99 - ") else (
                "region" if label in ref.regions else "departement")  # fmt: skip
            labels[kind] += 1
    assert set(labels) == {"national", "abroad", "region", "departement"}


def test_codes_switch_from_rome_v3_to_rome_4_at_the_cutover(clean, ref):
    de, rome, hires = read(clean, "de.csv"), read(clean, "rome.csv"), read(clean, "hires.csv")
    offers = offers_of(clean)["offer"]
    offer_codes = pd.DataFrame(
        {"code": [o["romeCode"] for o in offers], "day": [o["dateCreation"][:10] for o in offers]}
    )
    for df, code, day in ((de, "ROME", "DATINS"), (rome, "ROME", "JOURDV"), (hires, "ROME", "DATEMB"),
                          (offer_codes, "code", "day")):  # fmt: skip
        after = pd.to_datetime(df[day]) >= ref.cutover
        assert after.any() and (~after).any()
        assert df.loc[after, code].isin(ref.v4).all()
        assert df.loc[~after, code].isin(ref.v3).all()
        # ROME 4.0 brought codes v3 never had: they show up after the cutover only
        assert (~df.loc[after, code].isin(ref.v3)).any()
    for offer in offers:
        version = "v4" if pd.Timestamp(offer["dateCreation"][:10]) >= ref.cutover else "v3"
        assert offer["romeLibelle"] == ref.label[(version, offer["romeCode"])]


# ---------------------------------------------------------------------------------------------- consistency


def test_clean_data_has_unique_keys_and_every_record_fits_a_spell_of_its_seeker(clean):
    de, rome, hires = read(clean, "de.csv"), read(clean, "rome.csv"), read(clean, "hires.csv")
    assert not de.duplicated(["IDX", "DATINS"]).any()
    assert not rome.duplicated(["IDX", "JOURDV"]).any()
    assert not hires.duplicated(["IDX", "DATEMB"]).any()
    assert de["IDX"].nunique() == 20_000
    closed = de[de["DATANN"] != ""]
    assert (closed["DATANN"] >= closed["DATINS"]).all()
    assert ((de["MOTANN"] == "") == (de["DATANN"] == "")).all()
    spells = de[["IDX", "DATINS", "DATANN"]].assign(
        DATINS=pd.to_datetime(de["DATINS"]), DATANN=pd.to_datetime(de["DATANN"].replace("", None))
    )
    # a seeker's spells do not overlap
    ordered = spells.sort_values(["IDX", "DATINS"])
    same = ordered["IDX"].eq(ordered["IDX"].shift(-1))
    assert (ordered["DATANN"][same] < ordered["DATINS"].shift(-1)[same]).all()

    def spell_of(df: pd.DataFrame, day: str) -> pd.DataFrame:
        df = df.assign(_day=pd.to_datetime(df[day])).sort_values("_day")
        return pd.merge_asof(df, spells.sort_values("DATINS"), left_on="_day", right_on="DATINS", by="IDX")

    h = spell_of(hires, "DATEMB")
    assert h["DATINS"].notna().all()
    assert (h["DATANN"].isna() | (h["_day"] <= h["DATANN"] + pd.Timedelta(days=31))).all()
    r = spell_of(rome, "JOURDV")
    assert (r["_day"] > r["DATINS"]).all()
    assert (r["DATANN"].isna() | (r["_day"] <= r["DATANN"])).all()
    ends = pd.to_datetime(r["JOURFV"].replace("", None))
    assert (ends.isna() | (ends >= r["_day"])).all()
    assert (ends.isna() | r["DATANN"].isna() | (ends <= r["DATANN"])).all()
    assert r.loc[ends.isna(), "DATANN"].isna().all()  # an open sought period belongs to an open spell


def test_hires_through_an_offer_name_an_earlier_offer_of_their_occupation_and_departement(clean, ref):
    hires = read(clean, "hires.csv")
    linked = hires[hires["OFFRE_ID"] != ""]
    assert 0.2 < len(linked) / len(hires) < 0.45
    offers = {o["id"]: o for o in offers_of(clean)["offer"]}
    offer = [offers[i] for i in linked["OFFRE_ID"]]
    created = pd.Series([o["dateCreation"][:10] for o in offer], index=linked.index)
    assert (created < linked["DATEMB"]).all()
    offer_v3 = ref.v3_of(pd.Series([o["romeCode"] for o in offer], index=linked.index), created)
    assert (offer_v3 == ref.v3_of(linked["ROME"], linked["DATEMB"])).all()
    offer_dep = [place_departement(o["lieuTravail"], ref) for o in offer]
    assert offer_dep == linked["DEPCOM"].map(ref.dep_of).tolist()


def test_volumes_are_those_of_a_realistic_register(big):
    de, rome, hires = read(big, "de.csv"), read(big, "rome.csv"), read(big, "hires.csv")
    seekers = de["IDX"].nunique()
    closed = de[de["MOTANN"] != ""]
    assert 1.0 <= len(de) / seekers <= 2.0
    assert 0.4 <= (closed["MOTANN"] == formats.MOTANN_BACK_TO_WORK).mean() <= 0.6
    assert 0.05 <= len(rome) / len(de) <= 0.3
    assert 0.3 <= len(offers_of(big)) / seekers <= 1.0
    # every spell closed by a return to work has its hire; a hire near the window's end may close later
    back_to_work = (de["MOTANN"] == formats.MOTANN_BACK_TO_WORK).sum()
    assert back_to_work <= len(hires) <= back_to_work + (de["MOTANN"] == "").sum()
    assert 0.5 <= len(hires) / seekers <= 1.0


# ---------------------------------------------------------------------------------------------- calibration


def test_seekers_per_region_follow_the_real_unemployed_population(big, frames, ref):
    com = frames["ref.commune"]
    parents = set(com.loc[com["commune_type"] == "ARM", "parent_code"])
    unemployed = com[~com["code_commune"].isin(parents)].groupby("code_region")["unemployed_15_64"].sum()
    seekers = read(big, "de.csv").drop_duplicates("IDX")["DEPCOM"].map(ref.region_of).value_counts()
    both = pd.concat([seekers.rename("seekers"), unemployed.rename("unemployed")], axis=1).fillna(0)
    assert both["seekers"].rank().corr(both["unemployed"].rank()) > 0.9


def test_offers_per_seeker_by_fap_follow_the_dares_tension_ranking(big, frames, ref):
    """The model publishes offers per seeker proportional to exp(0.8 x tension) of the occupation in the
    region, and hires (and the offers they fill) come faster where tension is high: the ranking of offers
    per seeker across FAP families must follow DARES's national tension ranking, up to the regional mix,
    the fiches a family shares with others and sampling noise. Each fiche counts in its main family (the
    one whose national employment per fiche is largest); families with fewer than 30 seekers are left out.
    """
    tension = frames["ref.tension"]
    national = tension[(tension["geo_level"] == "nat") & (tension["fap_level"] == "fap225")].set_index("fap")
    fap = frames["ref.fap_rome"].merge(national[["employment"]], left_on="fap", right_index=True)
    fap = fap.assign(per_fiche=fap["employment"] / fap.groupby("fap")["code_rome"].transform("size"))
    main = fap.sort_values(["code_rome", "per_fiche"], ascending=[True, False]).drop_duplicates("code_rome")
    family = main.set_index("code_rome")["fap"]
    de = read(big, "de.csv")
    seekers = pd.Series(ref.v3_of(de["ROME"], de["DATINS"])).map(family).value_counts()
    offers = offers_of(big)["offer"]
    codes = pd.Series([o["romeCode"] for o in offers])
    days = pd.Series([o["dateCreation"][:10] for o in offers])
    published = pd.Series(ref.v3_of(codes, days)).map(family).value_counts()
    table = pd.concat([seekers.rename("seekers"), published.rename("offers"), national["tension"]], axis=1)
    table = table[table["seekers"] >= 30].fillna({"offers": 0}).dropna()
    assert len(table) > 100
    per_seeker = table["offers"] / table["seekers"]
    assert per_seeker.rank().corr(table["tension"].rank()) > 0.5


# ---------------------------------------------------------------------------------------------- truth


@pytest.fixture(scope="module")
def truth(big) -> pd.DataFrame:
    return pd.read_csv(
        big / "truth" / "destinations.csv", sep=SEP, dtype={"from_region": str, "to_region": str}
    )


@pytest.fixture(scope="module")
def observed(big, ref) -> pd.DataFrame:
    """Each hire with its origin (occupation sought on the hire day, region of residence) and destination."""
    de, rome, hires = read(big, "de.csv"), read(big, "rome.csv"), read(big, "hires.csv")
    spells = pd.DataFrame(
        {
            "IDX": de["IDX"],
            "DATINS": pd.to_datetime(de["DATINS"]),
            "spell_v3": ref.v3_of(de["ROME"], de["DATINS"]),
            "from_region": de["DEPCOM"].map(ref.region_of),
        }  # fmt: skip
    ).sort_values("DATINS")
    changes = pd.DataFrame(
        {
            "IDX": rome["IDX"],
            "JOURDV": pd.to_datetime(rome["JOURDV"]),
            "change_v3": ref.v3_of(rome["ROME"], rome["JOURDV"]),
        }
    ).sort_values("JOURDV")
    h = pd.DataFrame(
        {
            "IDX": hires["IDX"],
            "DATEMB": pd.to_datetime(hires["DATEMB"]),
            "to_rome_v3": ref.v3_of(hires["ROME"], hires["DATEMB"]),
            "to_region": hires["DEPCOM"].map(ref.region_of),
        }  # fmt: skip
    ).sort_values("DATEMB")
    h = pd.merge_asof(h, spells, left_on="DATEMB", right_on="DATINS", by="IDX")
    h = pd.merge_asof(h, changes, left_on="DATEMB", right_on="JOURDV", by="IDX", allow_exact_matches=False)
    changed = h["JOURDV"].notna() & (h["JOURDV"] > h["DATINS"])
    return h.assign(from_rome_v3=np.where(changed, h["change_v3"], h["spell_v3"]))


def test_true_destinations_are_a_distribution_for_every_origin(truth, big):
    sums = truth.groupby(["from_rome_v3", "from_region"])["probability"].sum()
    assert np.allclose(sums, 1.0, atol=1e-6)
    params = json.loads((big / "truth" / "params.json").read_text())
    assert len(sums) == params["model"]["occupations_v3"] * len(params["model"]["regions"])
    assert (truth["probability"] > 0).all()
    # the model's neighbourhoods: staying in the occupation is the most likely single move
    stay = truth[truth["from_rome_v3"] == truth["to_rome_v3"]].groupby(["from_rome_v3", "from_region"])
    assert stay["probability"].sum().between(0.4, 0.9).all()


def test_hires_of_the_biggest_origins_follow_the_true_destinations(observed, truth):
    """Total variation between the observed and true destinations of the five origins with most hires,
    weighted by their hires; destinations under 2% are pooled (a few dozen hires cannot estimate them)."""
    assert observed["from_rome_v3"].notna().all() and observed["to_rome_v3"].notna().all()
    top = observed.groupby(["from_rome_v3", "from_region"]).size().nlargest(5)
    assert top.min() >= 50
    distances = []
    for (occ, region), n in top.items():
        seen = observed[(observed["from_rome_v3"] == occ) & (observed["from_region"] == region)]
        shares = seen.groupby(["to_rome_v3", "to_region"]).size() / n
        true = truth[(truth["from_rome_v3"] == occ) & (truth["from_region"] == region)]
        true = true.set_index(["to_rome_v3", "to_region"])["probability"]
        assert set(shares.index) <= set(true.index)  # no hire goes where the model sends nobody
        both = pd.concat([shares.rename("seen"), true.rename("true")], axis=1).fillna(0)
        big_cells = both["true"] >= 0.02
        pooled = pd.concat([both[big_cells], both[~big_cells].sum().to_frame("rest").T])
        distances.append(0.5 * (pooled["seen"] - pooled["true"]).abs().sum())
    assert np.average(distances, weights=top.to_numpy()) < 0.15


def test_all_hires_stay_in_their_occupation_and_region_as_often_as_the_truth_says(observed, truth):
    expected = (
        truth.assign(
            stay_occupation=truth["probability"] * (truth["from_rome_v3"] == truth["to_rome_v3"]),
            stay_region=truth["probability"] * (truth["from_region"] == truth["to_region"]),
        )
        .groupby(["from_rome_v3", "from_region"])[["stay_occupation", "stay_region"]]
        .sum()
    )
    per_hire = expected.reindex(pd.MultiIndex.from_frame(observed[["from_rome_v3", "from_region"]]))
    assert per_hire.notna().all().all()
    stay_occupation = (observed["from_rome_v3"] == observed["to_rome_v3"]).mean()
    stay_region = (observed["from_region"] == observed["to_region"]).mean()
    assert abs(stay_occupation - per_hire["stay_occupation"].mean()) < 0.02
    assert abs(stay_region - per_hire["stay_region"].mean()) < 0.02


# ---------------------------------------------------------------------------------------------- defects


class Checker:
    """The quarantine reasons a record would get, computed independently of the generator."""

    def __init__(self, ref: Ref, folder: Path):
        self.ref = ref
        self.codes = ref.v3 | ref.v4
        self.seekers = set()
        for path in sorted(folder.glob("de*.csv")):
            encoding = "iso-8859-1" if path.name == "de_latin1.csv" else "utf-8"
            lines = path.read_text(encoding=encoding).split("\n")[1:]
            self.seekers |= {line.split(SEP)[0] for line in lines if line.split(SEP)[0]}
        self.offer_day = {}
        for path in sorted(folder.glob("offers_*.json")):
            try:
                body = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                continue
            for offer in body["resultats"]:
                if "id" in offer and self.timestamp(offer.get("dateCreation") or ""):
                    self.offer_day.setdefault(offer["id"], offer["dateCreation"][:10])

    @staticmethod
    def _date(value: str) -> date | None:
        if not ISO_DATE.match(value):
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None

    @classmethod
    def timestamp(cls, value: str) -> bool:
        return bool(TIMESTAMP.match(value)) and cls._date(value[:10]) is not None

    def csv(self, kind: str, row: dict[str, str]) -> set[str]:
        layout = formats.CSV_LAYOUTS[kind]
        found = set()
        if any(row[c] == "" for c in layout.mandatory):
            found.add("missing_field")
        start_col, end_col = {
            "de": ("DATINS", "DATANN"),
            "rome": ("JOURDV", "JOURFV"),
            "hires": ("DATEMB", None),
        }[kind]
        start = self._date(row[start_col]) if row[start_col] else None
        end = self._date(row[end_col]) if end_col and row[end_col] else None
        if (row[start_col] and start is None) or (end_col and row[end_col] and end is None):
            found.add("bad_date")
        if start and end and end < start:
            found.add("date_order")
        if row["ROME"] and row["ROME"] not in self.codes:
            found.add("unknown_rome")
        if row.get("DEPCOM") and row["DEPCOM"] not in self.ref.communes:
            found.add("unknown_commune")
        if kind != "de" and row["IDX"] and row["IDX"] not in self.seekers:
            found.add("unknown_seeker")
        if kind == "hires" and row["OFFRE_ID"] and start and self.offer_day[row["OFFRE_ID"]] > row["DATEMB"]:
            found.add("offer_after_hire")
        return found

    def offer(self, offer: dict) -> set[str]:
        found = set()
        if any(not offer.get(field) for field in formats.OFFER_MANDATORY):
            found.add("missing_field")
        if offer.get("dateCreation") and not self.timestamp(offer["dateCreation"]):
            found.add("bad_date")
        if offer.get("romeCode") and offer["romeCode"] not in self.codes:
            found.add("unknown_rome")
        lieu = offer["lieuTravail"]
        label = lieu.get("libelle", "")
        readable = (
            lieu.get("commune") in self.ref.communes
            or lieu.get("codePostal") in self.ref.postal
            or label.split(" - ")[0] in self.ref.deps | {"99"}
            or label in self.ref.regions
            or label == "France"
        )
        if not readable:
            found.add("unknown_place")
        return found


@pytest.fixture(scope="module")
def defects(dirty) -> pd.DataFrame:
    return pd.read_csv(dirty / "truth" / "defects.csv", sep=SEP, dtype=str, keep_default_na=False)


def test_a_dirty_run_injects_every_kind_of_defect_at_about_the_dirty_rate(defects, clean):
    assert list(defects.columns) == ["file", "line", "kind", "reason", "key"]
    assert set(defects["kind"]) == ALL_KINDS
    assert set(defects["reason"]) - {""} <= set(formats.REASONS)
    assert (defects.loc[defects["kind"] == "latin1", "reason"] == "").all()
    assert (
        defects.loc[defects["kind"].isin(["malformed_json", "truncated_line"]), "reason"] == "malformed"
    ).all()
    records = sum(len(read(clean, n)) for n in ("de.csv", "rome.csv", "hires.csv")) + len(offers_of(clean))
    share = defects["kind"].isin(RECORD_KINDS).sum() / records
    assert 0.015 < share < 0.025
    for kind in ("de", "rome", "hires"):
        kinds = set(defects.loc[defects["file"] == f"{kind}.csv", "kind"])
        assert {"bad_date", "missing_field", "duplicate", "unknown_rome", "truncated_line"} <= kinds


def test_each_listed_csv_defect_is_exactly_its_reason_and_no_other_row_has_any(dirty, defects, ref):
    checker = Checker(ref, dirty)
    for kind, name in (("de", "de.csv"), ("rome", "rome.csv"), ("hires", "hires.csv")):
        header = DE_HEADER if kind == "de" else formats.CSV_LAYOUTS[kind].columns
        raw = (dirty / name).read_bytes()
        assert not raw.endswith(b"\n")  # the truncated last line
        lines = raw.decode("utf-8").split("\n")
        listed = {int(r.line): r for r in defects[defects["file"] == name].itertuples()}
        seen_keys = set()
        key_cols = {"de": ("IDX", "DATINS"), "rome": ("IDX", "JOURDV"), "hires": ("IDX", "DATEMB")}[kind]
        for number, line in enumerate(lines[1:], start=2):
            fields = line.split(SEP)
            if len(fields) != len(header):
                assert listed[number].kind == "truncated_line" and number == len(lines)
                continue
            row = dict(zip(header, fields, strict=True))
            found = checker.csv(kind, row)
            key = tuple(row[c] for c in key_cols)
            if not found and all(key):
                if key in seen_keys:
                    found.add("duplicate")
                seen_keys.add(key)
            expected = {listed[number].reason} if number in listed else set()
            assert found == expected, (name, number, line, found, expected)
            if number in listed:
                assert listed[number].key == row["IDX"]
        assert set(listed) <= set(range(2, len(lines) + 1))


def test_each_listed_offer_defect_is_exactly_its_reason_and_unreadable_pages_do_not_parse(
    dirty, defects, ref
):
    checker = Checker(ref, dirty)
    listed = {
        (r.file, int(r.line)): r for r in defects[defects["file"].str.startswith("offers_")].itertuples()
    }
    seen_ids = set()
    for path in sorted(dirty.glob("offers_*.json")):
        try:
            offers = json.loads(path.read_text(encoding="utf-8"))["resultats"]
        except json.JSONDecodeError:
            assert listed[(path.name, 0)].kind == "malformed_json"
            assert int(PAGE_NAME.match(path.name).group(2)) >= 900
            continue
        assert len(offers) <= formats.OFFERS_PAGE_SIZE
        for position, offer in enumerate(offers, start=1):
            found = checker.offer(offer)
            if not found:
                if offer["id"] in seen_ids:
                    found.add("duplicate")
                seen_ids.add(offer["id"])
            entry = listed.get((path.name, position))
            assert found == ({entry.reason} if entry else set()), (path.name, position, found)
            if entry:
                assert entry.key == offer["id"]


def test_the_latin1_file_holds_valid_records_whose_communes_have_accents(dirty, defects, ref):
    raw = (dirty / "de_latin1.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    lines = raw.decode("iso-8859-1").splitlines()
    assert lines[0] == SEP.join(DE_HEADER)
    listed = defects[defects["file"] == "de_latin1.csv"]
    assert sorted(listed["line"].astype(int)) == list(range(2, len(lines) + 1))
    checker = Checker(ref, dirty)
    for line in lines[1:]:
        row = dict(zip(DE_HEADER, line.split(SEP), strict=True))
        assert checker.csv("de", row) == set()
        assert not row["LIBCOM"].isascii()
    assert set(listed["key"]) == {line.split(SEP)[0] for line in lines[1:]}


def test_a_dirty_run_keeps_every_clean_record_of_the_clean_run(clean, dirty, defects):
    for name in ("de.csv", "rome.csv", "hires.csv"):
        clean_lines = (clean / name).read_text(encoding="utf-8").split("\n")
        dirty_lines = (dirty / name).read_text(encoding="utf-8").split("\n")
        listed = set(defects.loc[defects["file"] == name, "line"].astype(int))
        kept = [line for number, line in enumerate(dirty_lines, start=1) if number not in listed]
        assert Counter(kept) == Counter(line for line in clean_lines if line), name

    def texts(folder: Path, skip: set[tuple[str, int]]) -> Counter:
        found = Counter()
        for row in offers_of(folder).itertuples():
            if (row.file, row.position) not in skip:
                found[json.dumps(row.offer, sort_keys=True)] += 1
        return found

    offer_defects = {(r.file, int(r.line)) for r in defects.itertuples() if r.file.startswith("offers_")}
    assert texts(dirty, offer_defects) == texts(clean, set())
    # the truth does not depend on the dirty rate
    assert (dirty / "truth" / "destinations.csv").read_bytes() == (
        clean / "truth" / "destinations.csv"
    ).read_bytes()

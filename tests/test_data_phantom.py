"""The atlas-based synthetic head CT: deterministic per seed, real anatomy, CT-like HU, the subtypes
where anatomy puts them, sizes from tiny to large, domains differ."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ichseg.cli import main
from ichseg.data import atlas as atlas_mod
from ichseg.data import phantom as phantom_mod
from ichseg.data.phantom import BLOOD_HU, DOMAINS, SUBTYPE_CODE, VISIBLE_BLOOD_MAX_HU, make_volume, write_phantom
from ichseg.errors import IchsegError
from ichseg.utils.hashing import file_sha256


def test_deterministic_per_seed(tmp_path):
    for d in ("a", "b", "c"):
        write_phantom(tmp_path / d, "bhsd", cases=3, seed=0 if d != "c" else 1, in_plane=32, slices=(4, 6))
    files = lambda d: {p.relative_to(tmp_path / d): file_sha256(p) for p in (tmp_path / d).rglob("*.nii.gz")}
    assert files("a") == files("b")
    assert files("a") != files("c")


def test_atlas_is_the_mni_template_from_the_nilearn_package():
    a = atlas_mod.load_atlas()
    assert a.shape == (197, 233, 189)
    assert "nilearn" in str(atlas_mod.atlas_folder())
    brain = (a.gm + a.wm + a.csf) > 0.5
    assert 1.1e6 < brain.sum() < 2.2e6  # ~1.1-2.2 L of brain at 1 mm
    assert 15_000 < (a.vent > 0.5).sum() < 60_000  # lateral ventricles, 15-60 mL
    # the lateral ventricles lie on both sides of the midline, above the basal ganglia
    vx = np.argwhere(a.vent > 0.5)[:, 0] + atlas_mod.ORIGIN_MM[0]
    assert (vx < -3).sum() > 0.3 * len(vx) and (vx > 3).sum() > 0.3 * len(vx)


def test_missing_nilearn_is_one_line_error(monkeypatch):
    monkeypatch.setattr(atlas_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(IchsegError, match="pip install nilearn"):
        atlas_mod.atlas_folder()


def _volume(subtype, seed=0, in_plane=96, domain="instance2022"):
    dom = DOMAINS[domain]
    only = type(dom)(**{**dom.__dict__, "subtype_mix": {subtype: 1.0}, "noise_hu": 0.0})
    for s in range(seed, seed + 20):  # a lesion can fall outside the slab; draw again
        v = make_volume(np.random.default_rng(s), only, in_plane, 20, positive=True, with_tissue=True)
        if v.lesions:
            return v
    raise AssertionError(f"no {subtype} lesion drawn")


def test_tissue_hu_ranges():
    v = make_volume(np.random.default_rng(0), DOMAINS["instance2022"], 96, 20, positive=False, with_tissue=True)
    assert not v.labels.any() and not v.lesions
    assert np.median(v.hu[:4, :4]) == pytest.approx(-1000, abs=15)  # air
    t = v.tissue
    assert 500 <= np.median(v.hu[t["skull"]]) <= 2400  # bone (partial volume at 2.3 mm pixels)
    par = ndimage.binary_erosion(t["parenchyma"], structure=np.ones((3, 3, 1)))
    assert 22 <= np.median(v.hu[par]) <= 42  # grey/white matter
    vent = ndimage.binary_erosion(t["ventricles"], structure=np.ones((3, 3, 1)))
    assert vent.sum() > 20 and -5 <= np.median(v.hu[vent]) <= 18  # CSF
    # real anatomy: the brain's outline is not an ellipse: the slab through the ventricles has
    # sulci (CSF inside the brain outline, away from the ventricles)
    sulci = t["csf"] & ~ndimage.binary_dilation(t["ventricles"], iterations=2) & t["brain"]
    assert sulci.sum() > 0.03 * t["brain"].sum()


def test_grey_brighter_than_white():
    """In the same patient, grey matter (cortex, deep nuclei) is denser than white matter."""
    v = make_volume(np.random.default_rng(2), DOMAINS["instance2022"], 128, 20, positive=False, with_tissue=True)
    t = v.tissue
    assert t["grey"].sum() > 1000 and t["white"].sum() > 1000
    assert np.median(v.hu[t["grey"]]) > np.median(v.hu[t["white"]]) + 2


@pytest.mark.parametrize("subtype", list(SUBTYPE_CODE))
def test_hemorrhage_hu_and_place(subtype):
    v = _volume(subtype)
    blood = v.labels == SUBTYPE_CODE[subtype]
    assert blood.any()
    assert BLOOD_HU[0] - 12 <= np.median(v.hu[blood]) <= BLOOD_HU[1]  # acute blood (partial volume at edges)
    near_skull = ndimage.binary_dilation(v.tissue["skull"], structure=np.ones((3, 3, 1)), iterations=2)
    touching = (blood & near_skull).sum() / blood.sum()
    if subtype in ("subdural", "epidural"):  # extra-axial: against the inner table in (nearly) every slice it shows in
        assert touching > 0.15
        ks = np.flatnonzero(blood.any(axis=(0, 1)))
        assert np.mean([(blood[:, :, k] & near_skull[:, :, k]).any() for k in ks]) >= 0.7
        area = blood.sum(axis=(0, 1))
        assert any((blood & near_skull)[:, :, k].any() for k in np.flatnonzero(area >= 0.8 * area.max()))  # the bulk too
    if subtype == "intraparenchymal":
        assert touching < 0.2
        assert v.lesions[0]["site"] in ("putamen", "thalamus", "lobar", "cerebellum")
    if subtype == "intraventricular":  # in (the dilated) ventricles
        vent = ndimage.binary_dilation(v.tissue["ventricles"], structure=np.ones((3, 3, 1)), iterations=2)
        assert (blood & vent).sum() >= 0.8 * blood.sum()
    if subtype == "subarachnoid":  # in CSF spaces (sulci, cisterns, the extra-axial space)
        csf = ndimage.binary_dilation(v.tissue["csf"], structure=np.ones((3, 3, 1)), iterations=1)
        assert (blood & csf).sum() >= 0.7 * blood.sum()


def test_sizes_vary_and_negatives_exist():
    vols = [make_volume(np.random.default_rng(s), DOMAINS["physionet"], 48, 12) for s in range(30)]
    ml = [les["ml"] for v in vols for les in v.lesions]
    assert min(ml) < 3 and max(ml) > 30  # tiny to large
    assert 0 < sum(not v.lesions for v in vols) < 30


def test_domains_differ():
    stds = {}
    for name, dom in DOMAINS.items():
        v = make_volume(np.random.default_rng(0), dom, 64, 8, positive=False)
        stds[name] = v.hu[:6, :6].std()
        assert v.spacing[2] == dom.thickness_mm
        assert v.spacing[0] == pytest.approx(dom.fov_mm / 64)
    assert stds["physionet"] > stds["bhsd"] > stds["instance2022"]


def test_phantom_cli(tmp_path, capsys):
    rc = main(["phantom", str(tmp_path / "p"), "--layout", "physionet", "--cases", "2", "--seed", "3",
               "--in-plane", "32", "--slices", "4"])
    assert rc == 0 and "wrote 2 physionet" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "p" / "ct_scans").iterdir()) == ["049.nii", "050.nii"]
    csv = (tmp_path / "p" / "hemorrhage_diagnosis_raw_ct.csv").read_text().splitlines()
    assert csv[0].startswith("PatientNumber,SliceNumber") and len(csv) == 1 + 8


def test_blood_is_labelled_only_where_it_shows(monkeypatch):
    """Cisternal blood at the skull base shares its 5 mm slabs with bone: those slabs read as bone,
    and an annotator does not outline blood there. Without the rule the labels reach into bone."""
    dom = DOMAINS["instance2022"]
    only = type(dom)(**{**dom.__dict__, "subtype_mix": {"subarachnoid": 1.0}, "noise_hu": 0.0})

    def draw(rule_hu):
        monkeypatch.setattr(phantom_mod.lesions, "VISIBLE_BLOOD_MAX_HU", rule_hu)
        for s in range(40):
            v = make_volume(np.random.default_rng(s), only, 96, 24, positive=True)
            if any(les["site"] == "basal_cisterns" for les in v.lesions):
                return v
        raise AssertionError("no basal-cistern blood drawn")

    unruled, ruled = draw(np.inf), draw(VISIBLE_BLOOD_MAX_HU)
    assert np.percentile(unruled.hu[unruled.labels > 0], 99) > 150  # labelled bone
    blood = ruled.labels > 0
    assert blood.any() and blood.sum() < (unruled.labels > 0).sum()
    assert ruled.hu[blood].max() <= VISIBLE_BLOOD_MAX_HU + 10  # kernel and cupping move a slab by a few HU
    assert np.array_equal(ruled.hu, unruled.hu)  # the image is the same; only its labels changed


def test_phantom_cases_per_dataset_name_the_folder_and_a_missing_count_is_named(tmp_path, monkeypatch):
    from ichseg.engine import data as engine_data

    calls = []
    monkeypatch.setattr(phantom_mod, "write_phantom", lambda out, layout, cases, seed, **kw: calls.append((layout, cases)) or out.mkdir(parents=True))
    cfg = {"data": {"phantom": {"cases": {"instance2022": 20, "bhsd": 10}, "seed": 0, "in_plane": 32}}}
    a = engine_data.raw_folder(cfg, "instance2022", tmp_path)
    b = engine_data.raw_folder(cfg, "bhsd", tmp_path)
    assert calls == [("instance2022", 20), ("bhsd", 10)]
    assert "-n20-" in a.name and "-n10-" in b.name
    with pytest.raises(IchsegError, match="names no count for physionet"):
        engine_data.raw_folder(cfg, "physionet", tmp_path)


def test_package_layout_and_public_names():
    from ichseg.data.phantom import anatomy, lesions, scanner, volume, writing  # noqa: F401 (one module per job)

    for name in ("BLOOD_HU", "DOMAINS", "GENERATOR_VERSION", "SUBTYPE_CODE", "VISIBLE_BLOOD_MAX_HU", "make_volume",
                 "phantom_case", "write_phantom"):
        assert hasattr(phantom_mod, name), name


def test_subtype_codes_and_csv_columns_are_by_name_not_by_order(tmp_path, monkeypatch):
    """Reordering the subtype tuple changes nothing written: codes come from BHSD's labels, CSV flags
    from the column names."""
    from ichseg.data import layouts

    assert SUBTYPE_CODE == {"epidural": 1, "intraparenchymal": 2, "intraventricular": 3, "subarachnoid": 4, "subdural": 5}
    write_phantom(tmp_path / "a", "physionet", cases=2, seed=3, in_plane=32, slices=(6, 6))
    monkeypatch.setattr(layouts, "SUBTYPES", tuple(reversed(layouts.SUBTYPES)))
    write_phantom(tmp_path / "b", "physionet", cases=2, seed=3, in_plane=32, slices=(6, 6))
    files = lambda d: {p.relative_to(tmp_path / d): file_sha256(p) for p in (tmp_path / d).rglob("*") if p.is_file()}
    assert files("a") == files("b")


def test_physionet_csv_flags_match_the_labels_by_name(tmp_path):
    import pandas as pd

    from ichseg.data import load_pair

    write_phantom(tmp_path / "p", "physionet", cases=4, seed=5, in_plane=32, slices=(8, 8))
    table = pd.read_csv(tmp_path / "p" / "hemorrhage_diagnosis_raw_ct.csv")
    # the phantom's PhysioNet masks are binary: the CSV flags say which subtypes, the mask where
    for num, rows in table.groupby("PatientNumber"):
        _, mask = load_pair(tmp_path / "p" / "ct_scans" / f"{num:03d}.nii", tmp_path / "p" / "masks" / f"{num:03d}.nii")
        has_blood = (mask.data > 0).any(axis=(0, 1))
        rows = rows.sort_values("SliceNumber")
        assert np.array_equal(rows.No_Hemorrhage.to_numpy() == 0, has_blood)
    assert table.No_Hemorrhage.min() == 0  # some slice with blood among these seeds


def test_layout_writer_names_an_unknown_subtype(tmp_path):
    from ichseg.data.layouts import get_layout

    w = get_layout("physionet").writer(tmp_path, np.random.default_rng(0))
    with pytest.raises(Exception, match="no CSV column for subtype"):
        w.add(0, [{"contusion"}])

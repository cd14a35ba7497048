"""The ICH phantom: deterministic per seed, realistic HU, the subtypes' shapes, domains differ."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ichseg.cli import main
from ichseg.data.phantom import BLOOD_HU, DOMAINS, SUBTYPE_CODE, make_volume, write_phantom
from ichseg.utils.hashing import file_sha256


def test_deterministic_per_seed(tmp_path):
    for d in ("a", "b", "c"):
        write_phantom(tmp_path / d, "bhsd", cases=3, seed=0 if d != "c" else 1, in_plane=32, slices=(4, 6))
    files = lambda d: {p.relative_to(tmp_path / d): file_sha256(p) for p in (tmp_path / d).rglob("*.nii.gz")}
    assert files("a") == files("b")
    assert files("a") != files("c")


def _volume(subtype, seed=0, in_plane=96, domain="instance2022"):
    dom = DOMAINS[domain]
    only = type(dom)(**{**dom.__dict__, "subtype_mix": {subtype: 1.0}, "noise_hu": 0.0})
    for s in range(seed, seed + 20):  # a lesion can fall outside the slab; draw again
        v = make_volume(np.random.default_rng(s), only, in_plane, 24, positive=True)
        if v.lesions:
            return v
    raise AssertionError(f"no {subtype} lesion drawn")


def test_tissue_hu_ranges():
    v = make_volume(np.random.default_rng(0), DOMAINS["instance2022"], 96, 20, positive=False)
    assert not v.labels.any() and not v.lesions
    assert np.median(v.hu[:4, :4]) == pytest.approx(-1000, abs=15)  # air
    skull = v.hu[v.tissue["skull"]]
    assert 650 <= np.percentile(skull, 10) and np.percentile(skull, 90) <= 1550
    brain = v.hu[v.tissue["brain"] & ~v.tissue["ventricles"]]
    assert 15 <= np.median(brain) <= 40
    vent = ndimage.binary_erosion(v.tissue["ventricles"], iterations=1)
    assert -10 <= np.median(v.hu[vent]) <= 20  # CSF


@pytest.mark.parametrize("subtype", list(SUBTYPE_CODE))
def test_hemorrhage_hu_and_shape(subtype):
    v = _volume(subtype)
    blood = v.labels == SUBTYPE_CODE[subtype]
    assert blood.any()
    assert BLOOD_HU[0] - 10 <= np.median(v.hu[blood]) <= BLOOD_HU[1]  # acute blood (partial volume at edges)
    near_skull = ndimage.binary_dilation(v.tissue["skull"], structure=np.ones((3, 3, 1)), iterations=2)
    core = ndimage.binary_erosion(blood, structure=np.ones((3, 3, 1)))
    inner = core & ~near_skull  # away from edges and from the bone the reconstruction kernel smears in
    if inner.sum() >= 5:
        assert BLOOD_HU[0] <= np.median(v.hu[inner]) <= BLOOD_HU[1]
    touching = (blood & near_skull).sum() / blood.sum()
    if subtype in ("subdural", "epidural"):  # extra-axial, against the inner table
        assert touching > 0.3
    if subtype == "intraparenchymal":
        assert touching < 0.2
    if subtype == "intraventricular":
        assert (blood & ~v.tissue["ventricles"]).sum() == 0  # inside the ventricles
    if subtype == "subarachnoid":  # thin: an in-plane erosion by one pixel removes most of it
        assert core.sum() < 0.35 * blood.sum()
    if subtype in ("subdural", "epidural"):  # crescent is long and thin, lens short and thick
        areas = blood.sum(axis=(0, 1))
        k = int(np.argmax(areas))
        sl = blood[:, :, k]
        thick = ndimage.distance_transform_edt(sl).max() * 2
        length = np.sqrt(sl.sum())
        ratio = length / max(thick, 1)
        assert (ratio > 1.2) if subtype == "subdural" else (ratio > 0.5)


def test_sizes_vary_and_negatives_exist():
    rng_vols = [make_volume(np.random.default_rng(s), DOMAINS["physionet"], 48, 12) for s in range(30)]
    sizes = [les["voxels"] for v in rng_vols for les in v.lesions]
    assert min(sizes) * 20 < max(sizes)  # tiny to large
    assert 0 < sum(not v.lesions for v in rng_vols) < 30


def test_domains_differ():
    stds = {}
    for name, dom in DOMAINS.items():
        v = make_volume(np.random.default_rng(0), dom, 64, 12, positive=False)
        air = v.hu[:6, :6]
        stds[name] = air.std()
        assert v.spacing[2] == dom.thickness_mm
    assert stds["physionet"] > stds["bhsd"] > stds["instance2022"]


def test_phantom_cli(tmp_path, capsys):
    rc = main(["phantom", str(tmp_path / "p"), "--layout", "physionet", "--cases", "2", "--seed", "3",
               "--in-plane", "32", "--slices", "4"])
    assert rc == 0 and "wrote 2 physionet" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "p" / "ct_scans").iterdir()) == ["049.nii", "050.nii"]
    csv = (tmp_path / "p" / "hemorrhage_diagnosis_raw_ct.csv").read_text().splitlines()
    assert csv[0].startswith("PatientNumber,SliceNumber") and len(csv) == 1 + 8

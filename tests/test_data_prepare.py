"""prepare_dataset: split, balance, accounting, caching, SliceDataset, config validation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from ichseg.data import PrepConfig, SliceDataset, prepare_dataset
from ichseg.data.phantom import write_phantom
from ichseg.data.preparation import REASON_DOWNSAMPLED, downsample_negatives, split_patients

CFG = PrepConfig(size=32)


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    raw = tmp_path_factory.mktemp("instance")
    write_phantom(raw, "instance2022", cases=12, seed=1, in_plane=48, slices=(8, 12))
    out = tmp_path_factory.mktemp("prepared")
    return raw, out, prepare_dataset("instance2022", raw, out, CFG)


def _table(prepared):
    return pd.read_csv(prepared / "slices.csv", keep_default_na=False, na_values=[""], dtype={"patient": str})


def test_split_is_patient_disjoint_train_balanced_counts_reconcile(instance):
    raw, out, prepared = instance
    t = _table(prepared)
    train, val, test = (set(t.loc[t.split == s, "patient"]) for s in ("train", "val", "test"))
    assert train and val and test and not train & test and not val & (train | test)
    assert set(t.split) == {"train", "val", "test"}
    kept_train = t[(t.split == "train") & (t.kept == 1)]
    assert (kept_train.positive == 1).sum() == (kept_train.positive == 0).sum() > 0  # 1:1
    assert (t[t.split.isin(["val", "test"])].kept == 1).all()  # validation and test keep every slice
    m = json.loads((prepared / "manifest.json").read_text())
    assert {s: set(m["patients"][s]) for s in ("train", "val", "test")} == {"train": train, "val": val, "test": test}
    assert m["counts"]["splits"]["val"]["patients"] == len(val) == 1  # 10% of the 11 training patients
    c = m["counts"]
    assert c["source_slices"] == len(t) == c["kept"] + sum(c["dropped"].values())
    assert c["dropped"] == {REASON_DOWNSAMPLED: int((t.kept == 0).sum())}
    images, masks = np.load(prepared / "images.npy", mmap_mode="r"), np.load(prepared / "masks.npy", mmap_mode="r")
    assert images.shape == (c["kept"], 1, 32, 32) and images.dtype == np.float32
    assert masks.shape == (c["kept"], 32, 32) and masks.dtype == np.uint8
    kept = t[t.kept == 1]
    assert sorted(kept.row) == list(range(c["kept"]))
    # positive flag matches the stored mask, spacing columns are filled
    assert ((masks[kept.row.to_numpy()].reshape(len(kept), -1).max(1) > 0) == (kept.positive == 1)).all()
    assert (t.thickness_mm == 5.0).all() and (t.spacing_row_mm > 0).all()
    # lesion slices have their contrast (acute blood over the tissue around it), no other slice
    assert not t.lesion_contrast_hu[t.positive == 0].notna().any() and t.lesion_contrast_hu[t.positive == 1].notna().mean() > 0.9
    assert t.lesion_contrast_hu.median() > 0
    total = sum(int(__import__("nibabel").load(str(p)).shape[2]) for p in (raw / "train_2" / "data").iterdir())
    assert total == len(t)  # every source slice is accounted for
    assert m["fingerprint"] and m["config"] == CFG.to_dict() and len(m["sources"]) == 24


def test_rerun_is_a_noop(instance):
    raw, out, prepared = instance
    before = (prepared / "manifest.json").stat().st_mtime_ns
    assert prepare_dataset("instance2022", raw, out, CFG) == prepared
    assert (prepared / "manifest.json").stat().st_mtime_ns == before
    # touched but unchanged sources: hashed again, same fingerprint, still nothing written
    src = next((raw / "train_2" / "data").iterdir())
    src.touch()
    assert prepare_dataset("instance2022", raw, out, CFG) == prepared
    assert (prepared / "manifest.json").stat().st_mtime_ns == before
    # a different config goes to its own folder
    other = prepare_dataset("instance2022", raw, out, PrepConfig(size=32, negative_ratio=None))
    assert other != prepared and (other / "manifest.json").is_file()


def test_slice_dataset(instance):
    _, _, prepared = instance
    ds = SliceDataset(prepared, split="train")
    item = ds[0]
    assert item["image"].shape == (1, 32, 32) and item["image"].dtype == torch.float32
    assert item["mask"].shape == (1, 32, 32) and set(item["mask"].unique().tolist()) <= {0.0, 1.0}
    assert item["index"] == int(ds.table.index[0]) and ds.manifest["fingerprint"]
    test, val = SliceDataset(prepared, split="test"), SliceDataset(prepared, split="val")
    assert len(ds) + len(val) + len(test) == ds.manifest["counts"]["kept"] and len(val)
    assert set(val.table["patient"]).isdisjoint(set(ds.table["patient"]) | set(test.table["patient"]))
    aug = SliceDataset(prepared, split="train", augment=True, seed=5)
    a, b = aug[3], aug[3]
    assert torch.equal(a["image"], b["image"])  # seeded: same draw for the same (seed, epoch, index)
    assert set(a["mask"].unique().tolist()) <= {0.0, 1.0}
    changed = any(not torch.equal(aug[i]["image"], ds[i]["image"]) for i in range(4))
    assert changed
    with pytest.raises(ValueError, match="split"):
        SliceDataset(prepared, split="validation")


@pytest.mark.parametrize("layout", ["bhsd", "physionet"])
def test_external_datasets_are_a_seeded_patient_sample(tmp_path, layout):
    write_phantom(tmp_path / "raw", layout, cases=10, seed=2, in_plane=40, slices=(6, 8))
    prepared = prepare_dataset(layout, tmp_path / "raw", tmp_path / "out", CFG)
    t = _table(prepared)
    assert set(t.split) == {"test", "unused"} and t.loc[t.split == "test", "kept"].all()
    m = json.loads((prepared / "manifest.json").read_text())
    assert len(m["patients"]["test"]) == 1  # 10% of ~10 patients
    assert m["counts"]["kept"] + m["counts"]["unused_slices"] == len(t)
    if layout == "bhsd":  # patient = first RSNA id
        assert all(v.startswith(p + "_ID_") for p, v in zip(t.patient, t.volume))
    pos = t[(t.kept == 1) & (t.positive == 1)]
    if len(pos):
        assert pos.subtype.str.len().gt(0).all()  # subtypes from labels (BHSD) or the CSV (PhysioNet)


def test_lesion_contrast_is_blood_over_the_soft_tissue_around_it_on_the_source_grid():
    """70 HU blood in 30 HU brain with bone next to it: 40 HU (bone and air left out of the ring);
    a slice without lesion, or whose lesion touches nothing but bone, has no contrast."""
    from ichseg.data.slices import lesion_contrast_hu
    from ichseg.data.volumes import Volume

    hu = np.full((40, 40, 3), 30.0, np.float32)
    hu[:, :3, :] = 1000.0  # skull along one edge
    hu[:3, :, :] = -1000.0  # air
    lab = np.zeros(hu.shape, np.uint8)
    lab[10:20, 3:8, 0] = 1  # against the skull
    hu[10:20, 3:8, 0] = 70.0
    lab[:, :3, 2] = 1  # "lesion" inside the bone only: its ring holds no soft tissue within 1 mm
    hu[:, 3:, 2] = -1000.0

    def vol(a):
        return Volume(None, a, np.eye(4), np.eye(4), a.shape, np.zeros((3, 2)), (0.5, 0.5, 5.0))

    got = lesion_contrast_hu(vol(hu), vol(lab), ring_mm=1.0)
    assert got[0] == pytest.approx(40.0) and np.isnan(got[1]) and np.isnan(got[2])


def test_split_helpers():
    s = split_patients([f"p{i}" for i in range(100)], "train_test", 0.1, seed=0)
    assert list(s.values()).count("test") == 10
    assert s == split_patients([f"p{i}" for i in reversed(range(100))], "train_test", 0.1, seed=0)
    # validation: carved from the training patients only, seeded; the test patients do not move
    v = split_patients([f"p{i}" for i in range(100)], "train_test", 0.1, seed=0, val_fraction=0.2)
    assert list(v.values()).count("val") == 18 and list(v.values()).count("train") == 72
    assert {p for p, x in v.items() if x == "test"} == {p for p, x in s.items() if x == "test"}
    assert {p for p, x in v.items() if x == "val"} <= {p for p, x in s.items() if x == "train"}
    assert v == split_patients([f"p{i}" for i in reversed(range(100))], "train_test", 0.1, seed=0, val_fraction=0.2)
    assert v != split_patients([f"p{i}" for i in range(100)], "train_test", 0.1, seed=1, val_fraction=0.2)
    # a test-only dataset keeps every sampled patient in test
    assert "val" not in split_patients([f"p{i}" for i in range(30)], "test_sample", 0.1, seed=0, val_fraction=0.5).values()
    assert list(split_patients(["a", "b", "c"], "train_test", 0.3, 0, val_fraction=0.9).values()).count("train") == 1
    keep = downsample_negatives(np.array([1, 0, 0, 0, 1, 0, 0], bool), 1.0, 0)
    assert keep.sum() == 4 and keep[[0, 4]].all()


def test_config_validation():
    assert PrepConfig.from_dict(PrepConfig(window="multi").to_dict()) == PrepConfig(window="multi")
    with pytest.raises(ValueError, match="colour"):
        PrepConfig.from_dict({"colour": 1})
    with pytest.raises(ValueError, match="window"):
        PrepConfig(window="soft")
    with pytest.raises(ValueError, match="mask_resize"):
        PrepConfig(mask_resize="bicubic")
    with pytest.raises(ValueError, match="test_fraction"):
        PrepConfig(test_fraction=1.5)
    with pytest.raises(ValueError, match="val_fraction"):
        PrepConfig(val_fraction=1.0)
    assert PrepConfig(val_fraction=0).val_fraction == 0
    assert PrepConfig(size=64).hash() != PrepConfig().hash()


def test_parallel_workers_give_identical_output(instance, tmp_path):
    raw, _, prepared = instance
    other = prepare_dataset("instance2022", raw, tmp_path, CFG, workers=2)
    a, b = json.loads((prepared / "manifest.json").read_text()), json.loads((other / "manifest.json").read_text())
    assert a["fingerprint"] == b["fingerprint"] and a["counts"] == b["counts"]
    for name in ("images.npy", "masks.npy"):
        np.testing.assert_array_equal(np.load(prepared / name), np.load(other / name))
    assert (prepared / "slices.csv").read_text() == (other / "slices.csv").read_text()


# -- physical units on the prepared grid ---------------------------------------------------------
NATIVE_SPACING = (0.45, 0.5, 5.0)  # (x, y, z) mm: anisotropic in-plane, thick slices
NATIVE_SHAPE = (96, 80, 12)
SEMI_MM, CENTER_MM, SHIFT_MM = (12.0, 10.0, 15.0), (21.0, 20.0, 30.0), 3.0


def _ellipsoid(center_mm) -> np.ndarray:
    grids = np.meshgrid(*[(np.arange(n) + 0.5) * s for n, s in zip(NATIVE_SHAPE, NATIVE_SPACING)], indexing="ij")
    return sum(((g - c) / a) ** 2 for g, c, a in zip(grids, center_mm, SEMI_MM)) <= 1.0


@pytest.fixture(scope="module")
def ellipsoid_raw(tmp_path_factory):
    """One INSTANCE-layout volume holding an ellipsoid lesion of known volume, plus a second mask
    with the same lesion shifted by SHIFT_MM along x (a "prediction")."""
    from ichseg.data import write_nifti

    raw = tmp_path_factory.mktemp("ellipsoid")
    affine = np.diag([*NATIVE_SPACING, 1.0])
    lesion = _ellipsoid(CENTER_MM)
    hu = np.where(lesion, 70.0, 30.0)
    hu[:, :2] = -1000.0  # air in the field of view, as in any head CT (preparation checks the HU)
    write_nifti(raw / "train_2" / "data" / "001.nii.gz", hu, affine)
    write_nifti(raw / "train_2" / "label" / "001.nii.gz", lesion.astype(np.uint8), affine, dtype=np.uint8)
    write_nifti(raw / "shifted.nii.gz", _ellipsoid((CENTER_MM[0] + SHIFT_MM, *CENTER_MM[1:])).astype(np.uint8),
                affine, dtype=np.uint8)
    return raw, lesion


def _prepared_units(raw, out, size: int) -> dict:
    """Lesion volume (mL) and 3D HD95 (mm) of the shifted mask, measured on the prepared slices."""
    from ichseg.data import load_volume, prepared_spacing, preprocess_mask
    from ichseg.metrics import lesion_volume_ml, strict_protocol

    cfg = PrepConfig(size=size)
    prepared = prepare_dataset("instance2022", raw, out, cfg)
    ds = SliceDataset(prepared, "test")
    t = ds.table
    gt = np.load(prepared / "masks.npy")[t["row"].to_numpy()]
    pred = preprocess_mask(load_volume(raw / "shifted.nii.gz", mask=True), cfg)
    spacing = prepared_spacing(t)
    r = strict_protocol(pred.astype(float), gt.astype(float), volume_ids=t["volume"].to_numpy(), spacing=spacing,
                        slice_index=t["slice_index"].to_numpy())
    native = t[["spacing_row_mm", "spacing_col_mm", "thickness_mm"]].to_numpy(float)
    return {"ml": float(r["per_volume"]["gt_ml"][0]), "hd95": r["hd95_mm"], "pixel": spacing[0],
            "ml_native_spacing": float(lesion_volume_ml(gt, native).sum())}


def test_prepared_pixel_size_gives_physical_units_at_any_size(ellipsoid_raw, tmp_path):
    """The lesion volume in mL and the 3D HD95 in mm of a prepared volume do not depend on
    ``prep.size``: they use the prepared pixel (native spacing x native size / size), not the
    scanner's spacing (which is off by the resize factor: x(size/native)² in mL)."""
    from ichseg.metrics import hd95

    raw, lesion = ellipsoid_raw
    exact_ml = 4 / 3 * np.pi * np.prod(SEMI_MM) / 1000  # 7.54 mL
    voxel_ml = lesion.sum() * np.prod(NATIVE_SPACING) / 1000
    shifted = _ellipsoid((CENTER_MM[0] + SHIFT_MM, *CENTER_MM[1:]))
    # 3D HD95 on the native grid, (z, row = y, col = x) axes
    native_hd = hd95(lesion.transpose(2, 1, 0), shifted.transpose(2, 1, 0), NATIVE_SPACING[::-1])
    assert 0.5 * SHIFT_MM < native_hd <= SHIFT_MM + 1e-9
    sizes = {}
    for size in (40, 128):  # a downsampled and an upsampled grid (native 96 x 80)
        u = sizes[size] = _prepared_units(raw, tmp_path, size)
        np.testing.assert_allclose(u["pixel"], [0.5 * 80 / size, 0.45 * 96 / size, 5.0])
        assert u["ml"] == pytest.approx(voxel_ml, rel=0.04) and u["ml"] == pytest.approx(exact_ml, rel=0.05)
        # the scanner's spacing on the resized pixels is wrong by the area ratio of the resize
        assert u["ml_native_spacing"] == pytest.approx(u["ml"] * size**2 / (80 * 96), rel=1e-9)
        assert u["hd95"] == pytest.approx(native_hd, abs=max(u["pixel"][:2]))
    assert sizes[40]["hd95"] == pytest.approx(sizes[128]["hd95"], abs=0.5 * 96 / 40)


def test_two_sources_with_one_config_never_share_a_prepared_folder(instance, tmp_path):
    """Two profiles with the same preparation settings but different phantom cohorts (or the
    phantom and real data) share a data root: preparing one must leave the other's slices alone,
    so a run reading them in parallel keeps reading what its stamp recorded."""
    raw, out, prepared = instance
    before = (prepared / "manifest.json").read_text()
    other_raw = tmp_path / "other"
    write_phantom(other_raw, "instance2022", cases=6, seed=2, in_plane=48, slices=(8, 10))
    other = prepare_dataset("instance2022", other_raw, out, CFG)
    assert other != prepared and other.parent == prepared.parent
    assert (prepared / "manifest.json").read_text() == before  # untouched
    assert json.loads((other / "manifest.json").read_text())["raw"] == str(other_raw.resolve())
    assert prepare_dataset("instance2022", raw, out, CFG) == prepared  # and still current
    assert (prepared / "manifest.json").read_text() == before

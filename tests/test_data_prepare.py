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
    return pd.read_csv(prepared / "slices.csv", keep_default_na=False, na_values=[""])


def test_split_is_patient_disjoint_train_balanced_counts_reconcile(instance):
    raw, out, prepared = instance
    t = _table(prepared)
    train, test = set(t.loc[t.split == "train", "patient"]), set(t.loc[t.split == "test", "patient"])
    assert train and test and not train & test
    kept_train = t[(t.split == "train") & (t.kept == 1)]
    assert (kept_train.positive == 1).sum() == (kept_train.positive == 0).sum() > 0  # 1:1
    assert (t[t.split == "test"].kept == 1).all()  # test keeps every slice
    m = json.loads((prepared / "manifest.json").read_text())
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
    test = SliceDataset(prepared, split="test")
    assert len(ds) + len(test) == ds.manifest["counts"]["kept"]
    aug = SliceDataset(prepared, split="train", augment=True, seed=5)
    a, b = aug[3], aug[3]
    assert torch.equal(a["image"], b["image"])  # seeded: same draw for the same (seed, epoch, index)
    assert set(a["mask"].unique().tolist()) <= {0.0, 1.0}
    changed = any(not torch.equal(aug[i]["image"], ds[i]["image"]) for i in range(4))
    assert changed
    with pytest.raises(ValueError, match="split"):
        SliceDataset(prepared, split="val")


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


def test_split_helpers():
    s = split_patients([f"p{i}" for i in range(100)], "train_test", 0.1, seed=0)
    assert list(s.values()).count("test") == 10
    assert s == split_patients([f"p{i}" for i in reversed(range(100))], "train_test", 0.1, seed=0)
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
    assert PrepConfig(size=64).hash() != PrepConfig().hash()


def test_parallel_workers_give_identical_output(instance, tmp_path):
    raw, _, prepared = instance
    other = prepare_dataset("instance2022", raw, tmp_path, CFG, workers=2)
    a, b = json.loads((prepared / "manifest.json").read_text()), json.loads((other / "manifest.json").read_text())
    assert a["fingerprint"] == b["fingerprint"] and a["counts"] == b["counts"]
    for name in ("images.npy", "masks.npy"):
        np.testing.assert_array_equal(np.load(prepared / name), np.load(other / name))
    assert (prepared / "slices.csv").read_text() == (other / "slices.csv").read_text()

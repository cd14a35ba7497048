"""nnU-Net v2 baseline through the real nnunetv2 package, on tiny phantom data (CPU).

One module-scoped run exports a 6-patient 32x32 phantom INSTANCE 2022 preparation, plans and
preprocesses it (2d, with --verify_dataset_integrity) and trains nnU-Net for one epoch of two
iterations; the tests check the export, the split, prediction, scoring and the error paths.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("nnunetv2", reason="nnunetv2 is not installed (pip install nnunetv2==2.8.1)")

from ichseg.data import PrepConfig, SliceDataset, prepare_dataset  # noqa: E402
from ichseg.data.phantom import write_phantom  # noqa: E402
from ichseg.engine.config import EvalConfig  # noqa: E402
from ichseg.engine.nnunet import (  # noqa: E402
    CASES, NnunetConfig, case_table, evaluate_nnunet, export_raw_dataset, predict, train_nnunet,
)
from ichseg.engine.nnunet.prediction import _collect_probabilities  # noqa: E402
from ichseg.errors import IchsegError  # noqa: E402

PREP = PrepConfig(size=32)
TINY = NnunetConfig(trainer="nnUNetTrainerIchseg", epochs=1, iterations_per_epoch=2, val_iterations=1, device="cpu",
                    processes=1, threads=1, da_workers=0, tta=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("nnunet-data")
    raw = write_phantom(root / "raw", "instance2022", cases=6, seed=3, in_plane=48, slices=(6, 8))
    prepared = prepare_dataset("instance2022", raw, root / "prepared", PREP)
    bhsd_raw = write_phantom(root / "bhsd-raw", "bhsd", cases=8, seed=4, in_plane=48, slices=(6, 8))
    bhsd = prepare_dataset("bhsd", bhsd_raw, root / "prepared", PrepConfig(size=32, test_fraction=0.3))
    return prepared, bhsd


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    prepared, _ = data
    work = tmp_path_factory.mktemp("nnunet-work")
    model_dir = train_nnunet(prepared, work, TINY)
    return prepared, work, model_dir


def _read(path):
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    img, props = SimpleITKIO().read_images([str(path)])
    return img[0], props


def test_export_is_the_prepared_slices_one_case_per_patient(trained):
    prepared, work, _ = trained
    raw = work / "nnUNet_raw" / "Dataset501_ICHinstance2022"
    ds_json = json.loads((raw / "dataset.json").read_text())
    assert ds_json["channel_names"] == {"0": "noNorm"} and ds_json["labels"] == {"background": 0, "hemorrhage": 1}
    cases = pd.read_csv(raw / CASES, dtype={"case": str, "patient": str})
    train, val, test = (SliceDataset(prepared, s).table for s in ("train", "val", "test"))
    assert len(cases) == len(train) + len(val) + len(test)
    assert ds_json["numTraining"] == cases.loc[cases["split"] != "test", "case"].nunique()
    assert cases.groupby("case")["patient"].nunique().eq(1).all()  # a case is one patient
    images = np.load(prepared / "images.npy")
    masks = np.load(prepared / "masks.npy")
    for case, part in cases.groupby("case"):
        is_test = part["split"].iloc[0] == "test"
        assert (raw / "imagesTs" / f"{case}_0000.nii.gz").is_file() == is_test
        assert (raw / "labelsTr" / f"{case}.nii.gz").is_file() == (not is_test)  # no test label for nnU-Net
        if is_test:
            continue
        img, props = _read(raw / "imagesTr" / f"{case}_0000.nii.gz")
        lab, _ = _read(raw / "labelsTr" / f"{case}.nii.gz")
        rows = part.sort_values("z")["row"].to_numpy()
        assert np.array_equal(img, images[rows, 0]) and np.array_equal(lab, masks[rows])  # same slices, same pixels
        assert props["spacing"][1:] == [1.0, 1.0]  # one prepared pixel: nnU-Net resamples nothing
    before = (raw / "dataset.json").stat().st_mtime_ns
    assert export_raw_dataset(prepared, work / "nnUNet_raw") == raw  # same input: a no-op
    assert (raw / "dataset.json").stat().st_mtime_ns == before


def test_plan_preprocess_accepts_export_and_split_is_ours(trained):
    prepared, work, _ = trained
    pre = work / "nnUNet_preprocessed" / "Dataset501_ICHinstance2022"
    assert "2d" in json.loads((pre / "nnUNetPlans.json").read_text())["configurations"]
    assert "verify_dataset_integrity Done" in (work / "logs" / "plan_and_preprocess.log").read_text()
    assert not (pre / "nnUNetPlans_3d_fullres").exists()  # 2d only
    splits = json.loads((pre / "splits_final.json").read_text())
    assert len(splits) == 1 and not set(splits[0]["train"]) & set(splits[0]["val"])
    cases = pd.read_csv(work / "nnUNet_raw" / "Dataset501_ICHinstance2022" / CASES, dtype={"case": str, "patient": str})
    patient_of = dict(zip(cases["case"], cases["patient"]))
    for key, split in (("train", "train"), ("val", "val")):
        assert {patient_of[c] for c in splits[0][key]} == set(SliceDataset(prepared, split).table["patient"])


def test_train_predict_evaluate_and_rerun_is_noop(trained, tmp_path):
    prepared, work, model_dir = trained
    ckpt = model_dir / "fold_0" / "checkpoint_final.pth"
    assert ckpt.is_file() and (model_dir / "ichseg_nnunet.json").is_file()
    before = ckpt.stat().st_mtime_ns
    assert train_nnunet(prepared, work, TINY) == model_dir and ckpt.stat().st_mtime_ns == before
    with pytest.raises(IchsegError, match="other settings"):
        train_nnunet(prepared, work, NnunetConfig.from_dict({**TINY.to_dict(), "epochs": 2}))

    summary = evaluate_nnunet(model_dir, prepared, tmp_path / "eval", EvalConfig(), dataset="instance2022",
                              cfg=TINY, meta={"profile": "test"})
    n_test = len(SliceDataset(prepared, "test"))
    per_slice = pd.read_csv(tmp_path / "eval" / "slices.csv")
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert len(per_slice) == n_test == metrics["n_slices"] and summary["method"] == "nnunet"
    assert {"dice", "iou"} <= set(metrics["paper"]) and "positive_slice_dice" in metrics["strict"]
    assert metrics["profile"] == "test" and metrics["nnunet"]["trainer"] == "nnUNetTrainerIchseg"
    prob = predict(model_dir, prepared, "test", TINY)  # cached: same checkpoint, same data
    assert prob.shape == (n_test, 32, 32) and prob.dtype == np.float32 and 0 <= prob.min() <= prob.max() <= 1


def test_cross_dataset_prediction_in_table_order(trained, data):
    _, _, model_dir = trained
    _, bhsd = data
    prob = predict(model_dir, bhsd, "test", TINY)
    assert prob.shape == (len(SliceDataset(bhsd, "test")), 32, 32) and np.isfinite(prob).all()


def test_export_and_splits_final_use_our_validation_patients(data, tmp_path):
    """nnU-Net's fold 0: train = our train patients, val = our validation patients (the ones every
    other model chooses its checkpoint on); the test patients are in neither and have no label."""
    from ichseg.engine.nnunet import write_splits

    prepared, _ = data
    raw = export_raw_dataset(prepared, tmp_path / "raw")
    splits = json.loads(write_splits(raw, tmp_path).read_text())
    cases = pd.read_csv(raw / CASES, dtype={"case": str, "patient": str})
    patient_of = dict(zip(cases["case"], cases["patient"]))
    ours = {s: set(SliceDataset(prepared, s).table["patient"]) for s in ("train", "val", "test")}
    assert len(splits) == 1 and ours["val"] and ours["train"]
    assert {patient_of[c] for c in splits[0]["val"]} == ours["val"]
    assert {patient_of[c] for c in splits[0]["train"]} == ours["train"]
    labelled = {p.name.split(".")[0] for p in (raw / "labelsTr").iterdir()}
    assert labelled == set(splits[0]["train"]) | set(splits[0]["val"])
    assert not {patient_of[c] for c in labelled} & ours["test"]


def test_probabilities_map_back_to_table_rows(data, tmp_path):
    prepared, _ = data
    cases = case_table(prepared, ("test",))
    images = np.load(prepared / "images.npy")
    for case, part in cases.groupby("case"):  # a fake nnU-Net output: class-1 "probability" = the image
        img = images[part["row"].to_numpy(), 0]
        np.savez(tmp_path / f"{case}.npz", probabilities=np.stack([1 - img, img]))
    prob = _collect_probabilities(tmp_path, cases, [32, 32], "predict", tmp_path / "log")
    rows = SliceDataset(prepared, "test").table["row"].to_numpy()
    assert np.allclose(prob, np.clip(images[rows, 0], 0, 1))


def test_missing_nnunetv2_is_one_line(data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "nnunetv2", None)  # import nnunetv2 now fails, find_spec says missing
    with pytest.raises(IchsegError) as err:
        train_nnunet(data[0], tmp_path, TINY)
    msg = str(err.value)
    assert "nnunetv2 is not installed" in msg and "pip install nnunetv2" in msg and "\n" not in msg


def test_failed_step_names_command_and_log(trained, tmp_path):
    prepared, work, _ = trained
    raw = tmp_path / "nnUNet_raw"
    shutil.copytree(work / "nnUNet_raw", raw)
    labels = sorted((raw / "Dataset501_ICHinstance2022" / "labelsTr").iterdir())
    labels[0].unlink()  # a corrupted raw dataset: one label missing
    with pytest.raises(IchsegError) as err:
        train_nnunet(prepared, tmp_path, TINY)
    msg, log = str(err.value), tmp_path / "logs" / "plan_and_preprocess.log"
    assert "nnUNetv2_plan_and_preprocess -d 501 -c 2d --verify_dataset_integrity" in msg and str(log) in msg
    assert "\n" not in msg and log.is_file() and "Traceback" in log.read_text()


@pytest.mark.parametrize("bad, field", [
    ({"trainer": "nnUNetTrainer", "epochs": 5}, "nnunet.epochs"),
    ({"trainer": "nnUNetTrainerX"}, "nnunet.trainer"),
    ({"configuration": "3d_fullres"}, "nnunet.configuration"),
    ({"fold": 1}, "nnunet.fold"),
    ({"dataset_id": 1000}, "nnunet.dataset_id"),
    ({"channel_name": "MRI"}, "nnunet.channel_name"),
    ({"trainer": "nnUNetTrainerIchseg", "iterations_per_epoch": 0}, "nnunet.iterations_per_epoch"),
    ({"da_workers": -1}, "nnunet.da_workers"),
    ({"epoch": 3}, "unknown key"),
])
def test_config_errors_name_the_field(bad, field):
    with pytest.raises(ValueError, match=field):
        NnunetConfig.from_dict(bad)

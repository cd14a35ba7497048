"""bench/predict_vs_nnunet.py: the study table it records beside its timings comes from the committed
evaluations (each seed's lesion-slice Dice, their mean, the evaluations' seconds a slice), and a run
with no trained nnU-Net model is refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _study_helpers import write_study
from tests._bench_helpers import load_bench

bench = load_bench("predict_vs_nnunet")


def test_study_scores_are_the_committed_evaluations(tmp_path):
    write_study(tmp_path, methods=("medsegdiffv2", "full", "unet"), seeds=(0, 1), datasets=("instance2022", "bhsd"))
    got = bench.study_scores(tmp_path)
    assert set(got) == {"full", "medsegdiffv2"}  # the headline rows present; nnU-Net has no run here
    for m, row in got.items():
        recs = [json.loads((tmp_path / "eval" / f"{m}-s{s}" / "instance2022" / "metrics.json").read_text()) for s in (0, 1)]
        assert row["seeds"] == [0, 1]
        assert row["lesion_slice_dice"] == [r["strict"]["positive_slice_dice"] for r in recs]
        assert row["lesion_slice_dice_mean"] == pytest.approx(np.mean(row["lesion_slice_dice"]))
        assert row["evaluation_seconds_per_slice_median"] == pytest.approx(np.median([r["seconds_per_slice"] for r in recs]))
    assert bench.study_scores(tmp_path, dataset="physionet") == {}


def test_a_run_without_a_trained_model_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="no trained nnU-Net model"):
        bench.nnunet_model_dir(tmp_path)
    fold = tmp_path / "nnunet" / "nnUNet_results" / "Dataset501_ICH" / "nnUNetTrainerIchseg__nnUNetPlans__2d" / "fold_0"
    fold.mkdir(parents=True)
    (fold / "checkpoint_final.pth").write_bytes(b"")
    assert bench.nnunet_model_dir(tmp_path) == fold.parent


def test_a_stand_in_may_differ_from_the_run_in_its_length_only(tmp_path):
    import yaml

    cfg = {"method": "nnunet", "nnunet": {"epochs": 14, "iterations_per_epoch": 25, "val_iterations": 4, "tta": True},
           "data": {"prep": {"size": 128}}}
    run, stand_in = tmp_path / "run", tmp_path / "stand_in"
    for d, c in ((run, cfg), (stand_in, {**cfg, "nnunet": {**cfg["nnunet"], "epochs": 1, "iterations_per_epoch": 5}})):
        d.mkdir()
        (d / "config.yaml").write_text(yaml.safe_dump(c))
    assert bench.stand_in_differences(stand_in, run) == []
    (stand_in / "config.yaml").write_text(yaml.safe_dump({**cfg, "data": {"prep": {"size": 64}},
                                                          "nnunet": {**cfg["nnunet"], "tta": False}}))
    assert bench.stand_in_differences(stand_in, run) == ["data.prep.size", "nnunet.tta"]

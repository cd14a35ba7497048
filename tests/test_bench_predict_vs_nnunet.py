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

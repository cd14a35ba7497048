"""The real-anatomy measurement's scoring (bench/real_anatomy.py): per-slice Dice on lesion slices,
3D detection, signed volume error, false-positive mL on a clean head, summaries by subtype and size."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location("real_anatomy", Path(__file__).resolve().parents[1] / "bench" / "real_anatomy.py")
real_anatomy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(real_anatomy)


def test_score_case_on_a_lesion_and_on_a_clean_head():
    gt = np.zeros((10, 10, 4), bool)
    gt[2:6, 2:6, 1:3] = True  # 32 voxels on two slices
    pred = np.zeros_like(gt)
    pred[2:6, 2:4, 1] = True  # half of slice 1, nothing on slice 2
    s = real_anatomy.score_case(pred, gt, voxel_ml=0.5)
    assert s["slice_dice"] == pytest.approx([2 * 8 / (8 + 16), 0.0])
    assert s["detected"] and s["gt_ml"] == 16.0 and s["pred_ml"] == 4.0
    assert s["volume_error"] == pytest.approx(-0.75)
    miss = real_anatomy.score_case(np.zeros_like(gt), gt, 0.5)
    assert not miss["detected"] and miss["volume_error"] == -1.0
    clean = real_anatomy.score_case(pred, np.zeros_like(gt), 0.5)
    assert clean == {"fp_ml": 4.0, "pred_ml": 4.0}


def test_summary_pools_lesion_slices_and_classes_sizes():
    rows = [{"subtype": "", "fp_ml": 0.7},
            {"subtype": "subdural", "slice_dice": [0.2, 0.4], "detected": True, "gt_ml": 0.5, "volume_error": -0.5},
            {"subtype": "subdural", "slice_dice": [1.0], "detected": False, "gt_ml": 40.0, "volume_error": 0.1},
            {"subtype": "epidural", "slice_dice": [0.6], "detected": True, "gt_ml": 12.0, "volume_error": -0.2}]
    s = real_anatomy.summarise(rows)
    assert s["clean_head_fp_ml"] == [0.7]
    assert s["overall"]["lesion_slices"] == 4 and s["overall"]["lesion_slice_dice"] == pytest.approx(0.55)
    assert s["per_subtype"]["subdural"]["detected"] == 0.5
    assert s["per_subtype"]["subdural"]["volume_error_abs_mean"] == pytest.approx(0.3)
    assert s["per_size"]["0.3-1 mL"]["cases"] == 1 and s["per_size"]["> 30 mL"]["cases"] == 1
    assert s["per_size"]["10-30 mL"]["cases"] == 1 and s["per_size"]["1-10 mL"]["cases"] == 0

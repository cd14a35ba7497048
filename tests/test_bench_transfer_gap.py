"""bench/transfer_gap.py: a real insert's matches are the validation lesion slices within its size
factor and contrast window, and a run's row averages over inserts, not over matches."""

from __future__ import annotations

import pandas as pd
import pytest
from _bench_helpers import load_bench

gap = load_bench("transfer_gap")


def _slices(rows):
    t = pd.DataFrame(rows, columns=["gt_pixels", "lesion_contrast_hu", "strict_dice", "pred_pixels"])
    t["area_ratio"] = t.pred_pixels / t.gt_pixels
    return t


def test_matches_keep_size_and_contrast_windows():
    val = _slices([(100, 30, 0.8, 100), (150, 34, 0.6, 150), (151, 30, 0.1, 1), (100, 35.1, 0.1, 1), (67, 25, 0.4, 60), (66, 30, 0.3, 60)])
    insert = pd.Series({"gt_pixels": 100, "lesion_contrast_hu": 30})
    m = gap.matches(insert, val)
    # 150 = 100 x 1.5, 67 > 100 / 1.5 and 34 HU are inside; 151 and 66 pixels and 35.1 HU are outside
    assert list(m.strict_dice) == [0.8, 0.6, 0.4]


def test_a_runs_matched_dice_weighs_each_insert_once():
    val = _slices([(100, 30, 0.9, 90), (100, 31, 0.7, 70), (100, 29, 0.8, 80), (400, 60, 0.2, 400)])
    real = _slices([(100, 30, 0.5, 200), (400, 60, 0.1, 800), (5, 0, 0.0, 0)])  # the last has no match
    row = gap.gap_row(real, val)
    assert row["matched_validation_dice"] == pytest.approx((0.8 + 0.2) / 2)  # not (0.9 + 0.7 + 0.8 + 0.2) / 4
    assert row["inserts_unmatched"] == 1 and row["matches_per_insert_median"] == 1
    assert row["real_area_ratio"] == pytest.approx(2.0) and row["real_dice"] == pytest.approx(0.2)

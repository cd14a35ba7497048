"""bench/real_head_negatives.py: false-positive mL per slice with its height, the thirds of the head,
and the share of marked voxels outside the cranial cavity."""

from __future__ import annotations

import numpy as np
import pytest
from _bench_helpers import load_bench

neg = load_bench("real_head_negatives")


def test_per_slice_heights_and_thirds():
    pred = np.zeros((4, 4, 6), bool)
    pred[0, 0, 0] = pred[:2, :2, 5] = True  # 1 voxel at the bottom, 4 at the top
    rows = neg.per_slice(pred, voxel_ml=0.5, slice_mm=4.5)
    assert [r["height_mm"] for r in rows] == [0.0, 4.5, 9.0, 13.5, 18.0, 22.5]
    assert rows[0]["fp_ml"] == pytest.approx(0.5) and rows[5]["fp_ml"] == pytest.approx(2.0)
    assert list(neg.by_third(rows).values()) == pytest.approx([0.5, 0.0, 2.0])
    kept = pred.copy()
    kept[:, :, 5] = False  # predict's rule drops the top slice's marks
    rows = neg.per_slice(pred, voxel_ml=0.5, slice_mm=4.5, kept=kept)
    assert [r["kept_ml"] for r in rows] == pytest.approx([0.5, 0, 0, 0, 0, 0])
    assert list(neg.by_third(rows, "kept_ml").values()) == pytest.approx([0.5, 0.0, 0.0])


def test_outside_share():
    pred, inside = np.zeros((3, 3, 1), bool), np.zeros((3, 3, 1), bool)
    assert neg.outside_share(pred, inside) == 0.0  # nothing marked
    pred[:, 0] = True
    inside[0, 0] = True
    assert neg.outside_share(pred, inside) == pytest.approx(2 / 3)

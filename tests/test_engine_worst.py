"""``worst.npz``: the evaluation keeps the lesion slices it scored worst and the lesion-free slices
it marked most, picked from its own per-slice scores, in a file small enough to commit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _study_helpers import synthetic_split, write_eval

from ichseg.engine.worst import WORST_K, read_worst, worst_rows, write_worst
from ichseg.errors import IchsegError
from ichseg.utils.layout import SLICE_SCORES, WORST


def _fabricated_prediction(masks: np.ndarray) -> np.ndarray:
    """Lesion slice i covers a share of its lesion that grows with i (slice 0 missed entirely);
    lesion-free slice i gets i false-positive pixels."""
    prob = np.zeros_like(masks)
    for i, m in enumerate(masks):
        if m.any():
            rows = np.flatnonzero(m.any(axis=1))
            prob[i][rows[: (i * len(rows)) // len(masks)]] = m[rows[: (i * len(rows)) // len(masks)]] * 0.9
        else:
            prob[i].ravel()[:i] = 0.9
    return prob


def test_the_evaluation_keeps_the_worst_slices_of_its_own_scores(tmp_path):
    images, masks, _ = synthetic_split(n=30, size=32)
    prob = _fabricated_prediction(masks)
    write_eval(tmp_path, "full", "instance2022", "h", prob=prob, n=30, size=32)
    table = pd.read_csv(tmp_path / SLICE_SCORES, dtype={"volume": str})
    w = read_worst(tmp_path / WORST)
    lesion, empty = w.of("lesion"), w.of("empty")
    assert len(lesion) == len(empty) == WORST_K
    # lesion slices 0, 2, 4, ... cover a growing share: the first K of them are the worst, in order
    assert list(w.row[lesion]) == [0, 2, 4, 6, 8, 10]
    assert list(w.dice[lesion]) == pytest.approx(list(table["strict_dice"].iloc[w.row[lesion]]))
    assert w.dice[lesion][0] == 0 and np.all(np.diff(w.dice[lesion]) >= 0)
    # lesion-free slice i has i predicted pixels: the largest counts first
    assert list(w.row[empty]) == [29, 27, 25, 23, 21, 19]
    assert list(w.pred_pixels[empty]) == [29, 27, 25, 23, 21, 19]
    # the slice-table keys and the arrays belong to the picked rows
    assert list(w.volume) == list(table["volume"].astype(str).iloc[w.row])
    assert list(w.slice_index) == list(table["slice_index"].iloc[w.row])
    assert np.array_equal(w.mask, masks[w.row] > 0.5) and np.array_equal(w.pred, prob[w.row] > 0.5)
    assert np.abs(w.image - images[w.row, 0]).max() <= 0.5 / 255 + 1e-6
    assert list(w.gt_pixels) == list(table["gt_pixels"].iloc[w.row])


def test_ties_put_the_larger_missed_lesion_first_and_clean_slices_are_not_kept():
    per_slice = pd.DataFrame({"gt_pixels": [5, 50, 20, 0, 0, 0], "pred_pixels": [0, 0, 3, 0, 7, 0],
                              "strict_dice": [0.0, 0.0, 0.3, np.nan, 0.0, np.nan]})
    picks = worst_rows(per_slice, k=6)
    assert list(picks["lesion"]) == [1, 0, 2]  # both missed (Dice 0): the 50-pixel lesion before the 5-pixel one
    assert list(picks["empty"]) == [4]  # lesion-free slices with nothing predicted show no error


def test_the_file_stays_small_at_128_pixels_even_for_noisy_images(tmp_path):
    """A noisy CT compresses worst; twelve 128² slices still stay under 300 kB."""
    rng = np.random.default_rng(0)
    n, size = 40, 128
    images = rng.random((n, 1, size, size), dtype=np.float32)
    gt = (rng.random((n, size, size)) < 0.05).astype(np.float32)
    gt[1::2] = 0
    prob = rng.random((n, size, size)).astype(np.float32)
    per_slice = pd.DataFrame({"volume": [f"{i // 10:03d}" for i in range(n)], "slice_index": np.arange(n) % 10,
                              "gt_pixels": gt.reshape(n, -1).sum(axis=1).astype(int),
                              "pred_pixels": (prob > 0.5).reshape(n, -1).sum(axis=1),
                              "strict_dice": rng.random(n)})
    path = write_worst(tmp_path / WORST, per_slice, images, gt, prob, 0.5)
    assert len(read_worst(path).row) == 2 * WORST_K
    assert path.stat().st_size < 300_000


def test_a_file_that_is_not_a_worst_slice_file_is_refused_by_name(tmp_path):
    bad = tmp_path / WORST
    np.savez_compressed(bad, rows=np.arange(3))
    with pytest.raises(IchsegError, match=f"{bad}: not a worst-slice file"):
        read_worst(bad)
    with pytest.raises(IchsegError, match="cannot read"):
        read_worst(tmp_path / "absent.npz")

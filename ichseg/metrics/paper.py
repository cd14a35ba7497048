"""The paper's evaluation protocol: MedSegDiff's ``eval_seg`` (paper §4.1; its released code).

For each 2D slice: the prediction is divided by its own maximum, prediction **and** ground truth
are binarised at each threshold (> th), Dice = (2|A∩B| + 1e-4) / (|A| + |B| + 1e-4) and
IoU = (|A∩B| + 1e-6) / (|A∪B| + 1e-6) (the code's smoothing constants), averaged over the five
thresholds; the study-level number is the mean over slices.

Consequences this module reproduces on purpose (tests pin them):
- an empty prediction on an empty slice scores 1.0 (the smoothing terms divide into themselves);
- max-normalisation turns any faint positive value on an empty slice into a full false positive
  (Dice ≈ 0 on that slice).
An all-zero prediction has no max; it is left at zero (the code would divide by zero and every
NaN comparison is false, which gives the same empty mask).
"""

from __future__ import annotations

import numpy as np

from ._arrays import pair

PAPER_THRESHOLDS = (0.1, 0.3, 0.5, 0.7, 0.9)
DICE_SMOOTH = 1e-4
IOU_SMOOTH = 1e-6


def normalise_by_max(pred: np.ndarray) -> np.ndarray:
    """Divide each slice by its maximum (slices whose max is 0 stay 0). (N,H,W) -> (N,H,W)."""
    peak = pred.reshape(len(pred), -1).max(axis=1)
    safe = np.where(peak > 0, peak, 1.0)
    return pred / safe[:, None, None]


def paper_slice_scores(pred, gt, thresholds=PAPER_THRESHOLDS, *, normalise: bool = True) -> dict[str, np.ndarray]:
    """Per-slice Dice and IoU under the paper protocol.

    pred: (N, H, W) or (N, 1, H, W) non-negative soft prediction: the map a fusion of
          ``ichseg.metrics.fusion`` made (the released code's is an 8-bit image divided by 255).
    gt:   same shape, ground-truth mask (binary or soft; binarised at each threshold too).
    normalise: divide each slice by its maximum first (``eval_seg`` does; ``False`` only to
          measure what that step changes).
    Returns {"dice": (N,), "iou": (N,)} float64.
    """
    p, g = pair(pred, gt)
    if (p < 0).any():
        raise ValueError("pred: the paper protocol expects non-negative predictions")
    th = np.asarray(thresholds, dtype=np.float64)
    if th.ndim != 1 or th.size == 0:
        raise ValueError("thresholds: expected a non-empty sequence of floats")
    if normalise:
        p = normalise_by_max(p)
    n = len(p)
    dice = np.zeros(n)
    iou = np.zeros(n)
    for k in th:  # 5 thresholds; everything inside is vectorised over slices and pixels
        pb = (p > k).reshape(n, -1)
        gb = (g > k).reshape(n, -1)
        inter = np.count_nonzero(pb & gb, axis=1)
        sp = np.count_nonzero(pb, axis=1)
        sg = np.count_nonzero(gb, axis=1)
        dice += (2 * inter + DICE_SMOOTH) / (sp + sg + DICE_SMOOTH)
        iou += (inter + IOU_SMOOTH) / (sp + sg - inter + IOU_SMOOTH)
    return {"dice": dice / th.size, "iou": iou / th.size}


def paper_protocol(pred, gt, thresholds=PAPER_THRESHOLDS) -> dict:
    """Study-level paper-protocol Dice and IoU: means over slices of ``paper_slice_scores``."""
    s = paper_slice_scores(pred, gt, thresholds)
    return {"dice": float(s["dice"].mean()), "iou": float(s["iou"].mean()), "n_slices": int(len(s["dice"])), "per_slice": s}

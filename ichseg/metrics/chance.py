"""Chance level for Dice: what a prediction that knows *how much* to segment, but not *where*, scores.

A prediction of |P| pixels placed uniformly at random on an N-pixel slice overlaps a ground truth
of |G| pixels in |P|·|G|/N pixels on average, so its expected overlap-based Dice is

    E[Dice] ≈ 2·(|P|·|G|/N) / (|P| + |G|)            (ratio of expectations)

(exact in expectation for the intersection; the ratio is the usual first-order approximation).
A model whose positive-slice Dice does not clear this level has learned the lesion *amount* at best,
not its location: the study reports it beside the measured Dice so a small-scale (smoke) result
can be read honestly.
"""

from __future__ import annotations

import numpy as np


def chance_dice(gt_pixels, pred_pixels, total_pixels) -> np.ndarray:
    """Per-slice expected Dice of a random placement of ``pred_pixels`` foreground pixels.

    Slices where both counts are 0 give NaN (Dice is undefined there, as in the strict protocol).
    """
    g = np.asarray(gt_pixels, dtype=np.float64)
    p = np.asarray(pred_pixels, dtype=np.float64)
    n = np.broadcast_to(np.asarray(total_pixels, dtype=np.float64), g.shape)
    if g.shape != p.shape:
        raise ValueError(f"pred_pixels: shape {p.shape} differs from gt_pixels {g.shape}")
    if (g < 0).any() or (p < 0).any() or (n <= 0).any() or (g > n).any() or (p > n).any():
        raise ValueError("pixel counts must lie in [0, total_pixels] with total_pixels > 0")
    denom = g + p
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(denom > 0, 2.0 * (g * p / n) / denom, np.nan)
    return out


def all_foreground_dice(gt_pixels, total_pixels) -> np.ndarray:
    """Per-slice Dice of predicting every pixel as hemorrhage: 2|G| / (|G| + N)."""
    g = np.asarray(gt_pixels, dtype=np.float64)
    n = np.asarray(total_pixels, dtype=np.float64)
    return 2.0 * g / (g + n)


__all__ = ["all_foreground_dice", "chance_dice"]

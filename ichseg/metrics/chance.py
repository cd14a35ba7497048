"""Chance level for Dice: what a prediction that knows *how much* to segment, but not *where*, scores.

A prediction of |P| pixels placed uniformly at random on an N-pixel slice overlaps a ground truth
of |G| pixels in |P|·|G|/N pixels on average, so its expected overlap-based Dice is

    E[Dice] ≈ 2·(|P|·|G|/N) / (|P| + |G|)            (ratio of expectations)

(exact in expectation for the intersection; the ratio is the usual first-order approximation).
A model whose positive-slice Dice does not clear this level has learned the lesion *amount* at best,
not its location: the study reports it beside the measured Dice so a small-scale (smoke) result
can be read honestly.

Placed over the whole slice, the random pixels mostly land in the air around the head, where no
lesion can be; that makes the chance level needlessly easy to beat. ``chance_dice_in_head``
places them inside the head instead (``head_mask``: a mask of the head computed from the prepared
image alone), the stricter reference for a model that has at least learned where the brain is.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


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


def chance_dice_in_head(gt_pixels, pred_pixels, head_pixels) -> np.ndarray:
    """Per-slice expected Dice of ``pred_pixels`` foreground pixels placed at random *inside the head*.

    ``chance_dice`` with the head's pixel count as the slice size. A model may predict more pixels
    than the head holds (or a lesion may reach past the head mask): a random placement then covers
    the whole head and, as the lesion lies in it, all of the lesion, which is what the formula gives
    with the size raised to ``max(head, gt, pred)``; a slice without head (all air) gets size 1.
    """
    g = np.asarray(gt_pixels, dtype=np.float64)
    p = np.asarray(pred_pixels, dtype=np.float64)
    if g.shape != p.shape:
        raise ValueError(f"pred_pixels: shape {p.shape} differs from gt_pixels {g.shape}")
    h = np.broadcast_to(np.asarray(head_pixels, dtype=np.float64), g.shape)
    if (h < 0).any():
        raise ValueError("head_pixels: counts must be >= 0")
    return chance_dice(g, p, np.maximum.reduce([h, g, p, np.ones_like(h)]))


def head_mask(image, air_fraction: float = 0.01) -> np.ndarray:
    """Head mask of prepared slices: (N, C, H, W), (N, H, W) or (H, W) -> bool (N, H, W) / (H, W).

    The HU window clips air to its floor, which is each slice's minimum under every normalisation of
    the preparation (unit, symmetric, z-score). A pixel is *not air* when some channel lies more than
    ``air_fraction`` of that channel's range above its minimum; the head is the largest connected
    component (4-connected) of such pixels with its holes filled (CSF and fat inside the skull sit
    at the floor of a brain window). A slice without any such pixel gets an empty mask.
    """
    img = np.asarray(image, dtype=np.float32)
    single = img.ndim == 2
    if img.ndim == 2:
        img = img[None, None]
    elif img.ndim == 3:
        img = img[:, None]
    if img.ndim != 4:
        raise ValueError(f"image: expected (H, W), (N, H, W) or (N, C, H, W), got shape {img.shape}")
    if not 0.0 <= air_fraction < 1.0:
        raise ValueError(f"air_fraction: must lie in [0, 1), got {air_fraction!r}")
    lo = img.min(axis=(2, 3), keepdims=True)
    hi = img.max(axis=(2, 3), keepdims=True)
    tissue = ((img > lo + air_fraction * (hi - lo)) & (hi > lo)).any(axis=1)  # (N, H, W)
    out = np.zeros_like(tissue)
    for i, t in enumerate(tissue):
        labels, count = ndimage.label(t)
        if count == 0:
            continue
        sizes = np.bincount(labels.ravel())[1:]
        out[i] = ndimage.binary_fill_holes(labels == 1 + int(np.argmax(sizes)))
    return out[0] if single else out


def all_foreground_dice(gt_pixels, total_pixels) -> np.ndarray:
    """Per-slice Dice of predicting every pixel as hemorrhage: 2|G| / (|G| + N)."""
    g = np.asarray(gt_pixels, dtype=np.float64)
    n = np.asarray(total_pixels, dtype=np.float64)
    return 2.0 * g / (g + n)


__all__ = ["all_foreground_dice", "chance_dice", "chance_dice_in_head", "head_mask"]

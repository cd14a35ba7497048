"""8-bit images for figures and stored previews: one quantiser and one percentile CT window."""

from __future__ import annotations

import numpy as np


def to_u8(a: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (clipped; NaN as 0) as uint8 0-255, rounded to the nearest step."""
    return (np.clip(np.nan_to_num(np.asarray(a, dtype=np.float32)), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def percentile_window(img: np.ndarray, low: float = 1.0, high: float = 99.5) -> np.ndarray:
    """``img`` scaled so that its ``low``-th percentile is 0 and its ``high``-th is 1 (not clipped)."""
    img = np.asarray(img, dtype=np.float32)
    lo, hi = np.percentile(img, [low, high])
    return (img - lo) / (hi - lo if hi > lo else 1.0)


__all__ = ["percentile_window", "to_u8"]

"""Input checks shared by the metric functions: numpy/torch in, float64/bool numpy out."""

from __future__ import annotations

import numpy as np


def as_slices(x, name: str, *, allow_nan: bool = False) -> np.ndarray:
    """Accept (N, H, W) or (N, 1, H, W) arrays or tensors; return a (N, H, W) numpy array."""
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().float().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected shape (N, H, W) or (N, 1, H, W), got {arr.shape}")
    if arr.dtype == bool:
        return arr
    arr = arr.astype(np.float64, copy=False)
    if not allow_nan and not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def pair(pred, gt, pred_name: str = "pred", gt_name: str = "gt"):
    p = as_slices(pred, pred_name)
    g = as_slices(gt, gt_name)
    if p.shape != g.shape:
        raise ValueError(f"{pred_name}: shape {p.shape} differs from {gt_name} shape {g.shape}")
    return p, g


def spacing_per_slice(spacing, n: int) -> np.ndarray:
    """(row mm, column mm, slice thickness mm) per slice: accepts one triple or an (N, 3) array."""
    sp = np.asarray(spacing, dtype=np.float64)
    if sp.shape == (3,):
        sp = np.broadcast_to(sp, (n, 3))
    if sp.shape != (n, 3):
        raise ValueError(f"spacing: expected (3,) or ({n}, 3) as (row mm, col mm, thickness mm), got {sp.shape}")
    if not np.isfinite(sp).all() or (sp <= 0).any():
        raise ValueError("spacing: must be finite and positive")
    return sp

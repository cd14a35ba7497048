"""Strict metrics the paper does not report (scored like nnU-Net's evaluator): an empty/empty case is
"not applicable" (NaN, counted separately), never a perfect score.

- Dice / IoU at one threshold on slices whose ground truth is positive;
- per-volume 3D Dice (slices regrouped by volume id);
- HD95 in mm per slice (both masks non-empty), from pixel spacing;
- lesion volume in mL per volume and its error (prediction - ground truth).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._arrays import as_slices, pair, spacing_per_slice


def _binarise(p: np.ndarray, threshold: float) -> np.ndarray:
    return p if p.dtype == bool else p > threshold


def overlap_scores(pred_bin: np.ndarray, gt_bin: np.ndarray, axis=None) -> tuple[np.ndarray, np.ndarray]:
    """Unsmoothed Dice and IoU of boolean arrays reduced over ``axis``; NaN where both are empty."""
    inter = np.count_nonzero(pred_bin & gt_bin, axis=axis).astype(np.float64)
    sp = np.count_nonzero(pred_bin, axis=axis).astype(np.float64)
    sg = np.count_nonzero(gt_bin, axis=axis).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(sp + sg > 0, 2 * inter / (sp + sg), np.nan)
        iou = np.where(sp + sg > 0, inter / (sp + sg - inter), np.nan)
    return dice, iou


def slice_scores(pred, gt, threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Per-slice unsmoothed Dice/IoU at one threshold. (N,H,W) -> {"dice","iou","gt_positive"} (N,)."""
    p, g = pair(pred, gt)
    pb = _binarise(p, threshold).reshape(len(p), -1)
    gb = _binarise(g, 0.5).reshape(len(g), -1)
    dice, iou = overlap_scores(pb, gb, axis=1)
    return {"dice": dice, "iou": iou, "gt_positive": gb.any(axis=1)}


def hd95_slice(pred_bin: np.ndarray, gt_bin: np.ndarray, spacing_rc=(1.0, 1.0)) -> float:
    """95th percentile of the symmetric surface distances (mm) of two 2D boolean masks.

    Distances from every boundary pixel of one mask to the other's boundary, both directions
    pooled, then the 95th percentile (the usual "HD95"). NaN when either mask is empty.
    """
    if not pred_bin.any() or not gt_bin.any():
        return float("nan")
    structure = ndimage.generate_binary_structure(2, 1)

    def border(m):
        return m & ~ndimage.binary_erosion(m, structure=structure, border_value=0)

    bp, bg = border(pred_bin), border(gt_bin)
    dist_to_g = ndimage.distance_transform_edt(~bg, sampling=spacing_rc)
    dist_to_p = ndimage.distance_transform_edt(~bp, sampling=spacing_rc)
    d = np.concatenate([dist_to_g[bp], dist_to_p[bg]])
    return float(np.percentile(d, 95))


def lesion_volume_ml(mask_bin: np.ndarray, spacing) -> np.ndarray:
    """Per-slice lesion volume in mL: pixels × row mm × col mm × thickness mm / 1000. (N,) float."""
    m = as_slices(mask_bin, "mask")
    m = _binarise(m, 0.5)
    sp = spacing_per_slice(spacing, len(m))
    return np.count_nonzero(m.reshape(len(m), -1), axis=1) * sp.prod(axis=1) / 1000.0


def strict_protocol(pred, gt, *, threshold: float = 0.5, volume_ids=None, spacing=None) -> dict:
    """Strict evaluation of a soft prediction against the ground truth.

    pred, gt:   (N, H, W) or (N, 1, H, W); pred is binarised at ``threshold`` (no max-normalising).
    volume_ids: (N,) ids regrouping slices into volumes for 3D Dice and lesion volume (optional).
    spacing:    (row mm, col mm, thickness mm), one triple or (N, 3), for HD95 and mL (optional).
    Returns means over the cases where each metric applies, the per-case arrays and how many
    cases were not applicable.
    """
    p, g = pair(pred, gt)
    n = len(p)
    pb = _binarise(p, threshold)
    gb = _binarise(g, 0.5)
    per_slice = slice_scores(pb, gb)
    pos = per_slice["gt_positive"]
    out: dict = {
        "threshold": float(threshold),
        "n_slices": n,
        "n_positive_slices": int(pos.sum()),
        "positive_slice_dice": float(np.mean(per_slice["dice"][pos])) if pos.any() else float("nan"),
        "positive_slice_iou": float(np.mean(per_slice["iou"][pos])) if pos.any() else float("nan"),
        "n_empty_empty_slices": int(np.isnan(per_slice["dice"]).sum()),
        "per_slice": per_slice,
    }
    if spacing is not None:
        sp = spacing_per_slice(spacing, n)
        hd = np.array([hd95_slice(pb[i], gb[i], tuple(sp[i, :2])) for i in range(n)])
        out["hd95_mm"] = float(np.nanmean(hd)) if np.isfinite(hd).any() else float("nan")
        out["hd95_n_not_applicable"] = int(np.isnan(hd).sum())
        per_slice["hd95_mm"] = hd
    if volume_ids is not None:
        ids = np.asarray(volume_ids)
        if ids.shape != (n,):
            raise ValueError(f"volume_ids: expected shape ({n},), got {ids.shape}")
        uniq, inverse = np.unique(ids, return_inverse=True)
        inter = np.bincount(inverse, weights=np.count_nonzero((pb & gb).reshape(n, -1), axis=1), minlength=len(uniq))
        sp_ = np.bincount(inverse, weights=np.count_nonzero(pb.reshape(n, -1), axis=1), minlength=len(uniq))
        sg_ = np.bincount(inverse, weights=np.count_nonzero(gb.reshape(n, -1), axis=1), minlength=len(uniq))
        with np.errstate(invalid="ignore", divide="ignore"):
            vdice = np.where(sp_ + sg_ > 0, 2 * inter / (sp_ + sg_), np.nan)
        per_volume: dict = {"volume_id": uniq, "dice": vdice}
        out["volume_dice"] = float(np.nanmean(vdice)) if np.isfinite(vdice).any() else float("nan")
        out["volume_dice_n_not_applicable"] = int(np.isnan(vdice).sum())
        if spacing is not None:
            vp = np.bincount(inverse, weights=lesion_volume_ml(pb, sp), minlength=len(uniq))
            vg = np.bincount(inverse, weights=lesion_volume_ml(gb, sp), minlength=len(uniq))
            per_volume.update(pred_ml=vp, gt_ml=vg, error_ml=vp - vg)
            out["volume_abs_error_ml"] = float(np.mean(np.abs(vp - vg)))
        out["per_volume"] = per_volume
    return out

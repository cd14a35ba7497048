"""Strict metrics the paper does not report (scored like nnU-Net's evaluator): an empty/empty case is
"not applicable" (NaN, counted separately), never a perfect score.

- Dice / IoU at one threshold on slices whose ground truth is positive;
- per-volume 3D Dice (slices regrouped by volume id);
- HD95 in mm per volume in 3D (``hd95_mm``: slices restacked by volume id and slice index,
  anisotropic voxels incl. the slice thickness; medpy's definition), and the 2D one of each
  slice on its own (``hd95_per_slice_mm``, both masks non-empty);
- lesion volume in mL per volume and its error (prediction - ground truth).

Lengths and volumes use the size of the pixels being scored: for prepared slices that is the
prepared pixel (``pixel_row_mm`` / ``pixel_col_mm`` of ``slices.csv``), not the scanner's.
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


def surface(mask: np.ndarray, connectivity: int = 1) -> np.ndarray:
    """Boundary voxels of a boolean mask: the mask minus its erosion by the ``connectivity``
    structuring element (1: face neighbours), outside the array counting as background."""
    structure = ndimage.generate_binary_structure(mask.ndim, connectivity)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def hd95(pred_bin: np.ndarray, gt_bin: np.ndarray, spacing, connectivity: int = 1) -> float:
    """HD95 (mm) of two boolean masks of any dimension with voxel size ``spacing`` (mm per axis).

    The definition of medpy's ``metric.binary.hd95``: the surface voxels of each mask
    (``surface``), the Euclidean distance in mm from every surface voxel of one mask to the
    nearest surface voxel of the other (``distance_transform_edt`` with ``sampling=spacing``,
    so anisotropic voxels count in mm), both directed sets pooled, then the 95th percentile.
    NaN when either mask is empty (medpy raises there).
    """
    pred_bin, gt_bin = np.asarray(pred_bin, bool), np.asarray(gt_bin, bool)
    if pred_bin.shape != gt_bin.shape:
        raise ValueError(f"hd95: shapes differ, {pred_bin.shape} vs {gt_bin.shape}")
    if not pred_bin.any() or not gt_bin.any():
        return float("nan")
    spacing = tuple(float(s) for s in np.broadcast_to(np.asarray(spacing, float), (pred_bin.ndim,)))
    bp, bg = surface(pred_bin, connectivity), surface(gt_bin, connectivity)
    d = np.concatenate([ndimage.distance_transform_edt(~bg, sampling=spacing)[bp],
                        ndimage.distance_transform_edt(~bp, sampling=spacing)[bg]])
    return float(np.percentile(d, 95))


def hd95_slice(pred_bin: np.ndarray, gt_bin: np.ndarray, spacing_rc=(1.0, 1.0)) -> float:
    """``hd95`` of two 2D masks (one slice) with pixel size (row mm, column mm)."""
    return hd95(pred_bin, gt_bin, spacing_rc)


def volume_stacks(ids: np.ndarray, slice_index=None) -> list[tuple[object, np.ndarray, np.ndarray]]:
    """Regroup slices into volumes: [(volume id, rows of the slices, their z positions)], ids sorted.

    ``slice_index`` (N,): each slice's axial index in its volume; the rows are ordered by it and
    a missing index leaves an empty plane (so the z distances stay true). Without it, the
    slices of a volume are taken in the order given, one plane each.
    """
    ids = np.asarray(ids)
    uniq, inverse = np.unique(ids, return_inverse=True)
    z_all = None if slice_index is None else np.asarray(slice_index, dtype=np.int64)
    if z_all is not None and z_all.shape != ids.shape:
        raise ValueError(f"slice_index: expected shape {ids.shape}, got {z_all.shape}")
    out = []
    for k, vid in enumerate(uniq):
        rows = np.flatnonzero(inverse == k)
        if z_all is None:
            z = np.arange(len(rows))
        else:
            rows = rows[np.argsort(z_all[rows], kind="stable")]
            z = z_all[rows] - z_all[rows].min()
            if len(np.unique(z)) != len(z):
                raise ValueError(f"slice_index: volume {vid!r} has two slices with the same index")
        out.append((vid, rows, z))
    return out


def volume_hd95(pred_bin: np.ndarray, gt_bin: np.ndarray, volume_ids, spacing, slice_index=None) -> np.ndarray:
    """3D HD95 (mm) per volume, ids sorted: each volume's slices stacked along z (by
    ``slice_index``) with voxel size (thickness, row, col) mm; NaN where either mask is empty."""
    n = len(pred_bin)
    sp = spacing_per_slice(spacing, n)
    out = []
    for _, rows, z in volume_stacks(volume_ids, slice_index):
        shape = (int(z.max()) + 1,) + pred_bin.shape[1:]
        p3, g3 = np.zeros(shape, bool), np.zeros(shape, bool)
        p3[z], g3[z] = pred_bin[rows], gt_bin[rows]
        row_mm, col_mm, thick_mm = np.median(sp[rows], axis=0)
        out.append(hd95(p3, g3, (thick_mm, row_mm, col_mm)))
    return np.asarray(out, dtype=np.float64)


def lesion_volume_ml(mask_bin: np.ndarray, spacing) -> np.ndarray:
    """Per-slice lesion volume in mL: pixels × row mm × col mm × thickness mm / 1000. (N,) float."""
    m = as_slices(mask_bin, "mask")
    m = _binarise(m, 0.5)
    sp = spacing_per_slice(spacing, len(m))
    return np.count_nonzero(m.reshape(len(m), -1), axis=1) * sp.prod(axis=1) / 1000.0


def strict_protocol(pred, gt, *, threshold: float = 0.5, volume_ids=None, spacing=None, slice_index=None) -> dict:
    """Strict evaluation of a soft prediction against the ground truth.

    pred, gt:   (N, H, W) or (N, 1, H, W); pred is binarised at ``threshold`` (no max-normalising).
    volume_ids: (N,) ids regrouping slices into volumes for 3D Dice, 3D HD95 and lesion volume (optional).
    spacing:    (row mm, col mm, thickness mm) of the pixels *as scored* (for prepared slices the
                prepared pixel size, not the scanner's), one triple or (N, 3), for HD95 and mL (optional).
    slice_index: (N,) axial index of each slice in its volume, to stack volumes in order (optional).
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
        # 2D HD95 of each slice on its own (both masks non-empty): not the usual 3D metric
        hd = np.array([hd95_slice(pb[i], gb[i], tuple(sp[i, :2])) for i in range(n)])
        out["hd95_per_slice_mm"] = float(np.nanmean(hd)) if np.isfinite(hd).any() else float("nan")
        out["hd95_per_slice_n_not_applicable"] = int(np.isnan(hd).sum())
        per_slice["hd95_per_slice_mm"] = hd
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
            vhd = volume_hd95(pb, gb, ids, sp, slice_index)
            per_volume.update(pred_ml=vp, gt_ml=vg, error_ml=vp - vg, hd95_mm=vhd)
            out["hd95_mm"] = float(np.nanmean(vhd)) if np.isfinite(vhd).any() else float("nan")
            out["hd95_n_not_applicable"] = int(np.isnan(vhd).sum())
            out["volume_abs_error_ml"] = float(np.mean(np.abs(vp - vg)))
        out["per_volume"] = per_volume
    return out

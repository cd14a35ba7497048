"""Hemorrhage volume of a mask: voxel count, the spread over an ensemble, and the bedside ABC/2.

ABC/2 (Kothari et al., Stroke 1996) is how a clinician estimates a bleed's volume at the bedside,
treating it as an ellipsoid (4/3·π·(A/2)(B/2)(C/2) ≈ ABC/2):

- A: the largest diameter of the hemorrhage on the axial slice where its area is largest;
- B: the largest diameter perpendicular to A on that slice;
- C: the slices with hemorrhage times the slice thickness, each slice counted by its area against
  the largest one: ≥ 75 % counts as one slice, 25-75 % as half a slice, < 25 % not at all.

Here A and B are measured on the pixel squares themselves (their corners), edge to edge as a
reader's calipers would, and B is the bleed's extent across A's direction. Lengths in mm,
volumes in mL (1 mL = 1000 mm³).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Kothari et al. 1996: a slice counts fully from 75 % of the largest slice's area, half from 25 %.
FULL_SLICE, HALF_SLICE = 0.75, 0.25


def mask_volume_ml(mask: np.ndarray, voxel_ml: float) -> float:
    """Volume of the non-zero voxels of ``mask``, in mL (``voxel_ml``: one voxel's volume)."""
    return float(np.count_nonzero(mask)) * float(voxel_ml)


def volume_spread(volumes_ml: Sequence[float]) -> dict:
    """The spread of per-sample volumes (one per ensemble member): min, max, median and their
    count; an empty sequence gives None for each (a direct segmenter has no members)."""
    v = np.asarray(list(volumes_ml), dtype=np.float64)
    if v.size == 0:
        return {"min_ml": None, "max_ml": None, "median_ml": None, "samples": 0}
    return {"min_ml": float(v.min()), "max_ml": float(v.max()), "median_ml": float(np.median(v)), "samples": int(v.size)}


def _corners(mask2d: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """The corners (mm) of a 2D mask's pixel squares that can lie on its outline."""
    ii, jj = np.nonzero(mask2d)
    pts = np.concatenate([np.stack([ii + di, jj + dj], axis=1) for di in (0.0, 1.0) for dj in (0.0, 1.0)])
    pts = np.unique(pts, axis=0) * np.asarray(spacing, dtype=np.float64)
    if len(pts) > 64:  # only the convex hull's vertices can be farthest apart
        from scipy.spatial import ConvexHull

        pts = pts[ConvexHull(pts).vertices]
    return pts


def largest_diameters(mask2d: np.ndarray, spacing: tuple[float, float]) -> tuple[float, float]:
    """(A, B) in mm of one slice's mask: its largest diameter, and its extent perpendicular to it.

    ``spacing``: the pixel size (mm) along the array's two axes. A mask with no pixel gives (0, 0)."""
    if not np.any(mask2d):
        return 0.0, 0.0
    pts = _corners(np.asarray(mask2d, bool), spacing)
    d = pts[:, None, :] - pts[None, :, :]
    dist = np.sqrt((d**2).sum(-1))
    i, j = np.unravel_index(int(np.argmax(dist)), dist.shape)
    a = float(dist[i, j])
    u = d[i, j] / a
    proj = pts @ np.array([-u[1], u[0]])  # across A's direction
    return a, float(proj.max() - proj.min())


def abc2(mask: np.ndarray, spacing: tuple[float, float, float]) -> dict:
    """The ABC/2 estimate of an (X, Y, Z) mask with axial slices along Z (``spacing``: mm per
    voxel along X, Y, Z; Z's is the slice thickness): A, B, C in mm, the weighted slice count and
    the volume in mL. An empty mask gives zeros."""
    mask = np.asarray(mask) > 0
    if mask.ndim != 3:
        raise ValueError(f"abc2: expected an (X, Y, Z) mask, got shape {mask.shape}")
    area = mask.sum(axis=(0, 1)).astype(np.float64)
    if area.max() == 0:
        return {"a_mm": 0.0, "b_mm": 0.0, "c_mm": 0.0, "slices_counted": 0.0, "largest_slice": None, "volume_ml": 0.0}
    k = int(np.argmax(area))
    a, b = largest_diameters(mask[:, :, k], (spacing[0], spacing[1]))
    share = area / area[k]
    counted = float(np.sum(np.where(share >= FULL_SLICE, 1.0, np.where(share >= HALF_SLICE, 0.5, 0.0))))
    c = counted * float(spacing[2])
    return {"a_mm": a, "b_mm": b, "c_mm": c, "slices_counted": counted, "largest_slice": k,
            "volume_ml": a * b * c / 2.0 / 1000.0}

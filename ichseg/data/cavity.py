"""Inside the skull: where an intracranial hemorrhage can be, on a head CT's axial slices.

An intracranial hemorrhage lies inside the skull by definition; the temporal muscles, the scalp and
the soft tissue of the face lie outside it and read 40-60 HU, like fresh blood. A pixel is *inside*
when bone (HU above ``BONE_HU``) lies ahead of it along most in-plane directions: of ``RAYS`` rays,
at least ``MIN_HITS`` meet bone within ``REACH_MM``. Inside the cranial vault every ray meets the
skull; a pixel outside a convex skull sees it across less than half of its view, along at most 9 of
16 rays right beside it and 7 a few millimetres out. Only the head's own bone counts (``head_of``:
the head rest and the table are not skull). Where a slice holds too little bone to decide (below or
above the skull, a scan cropped to the brain) every pixel is inside: nothing is taken away where the
rule cannot see the skull.

No parameter is fitted to any scan: the HU of cortical bone (> 300 HU, the realism page's rule), a
reach longer than any adult head's half-width, and the most rays a pixel beside a convex skull can
see it along, plus one. An opening in the bone of 30 degrees of arc (3 cm; foramina, sutures and a
thin temporal squama lost to partial volume are smaller) costs only the last 2 mm of brain before
it. A skull opened by surgery (craniectomy) leaves the brain near the defect outside by this rule;
``ichseg predict --keep-outside-skull`` keeps everything there.

Computed on a grid of about ``GRID_MM`` pixels (a coarse pixel is bone when any of its pixels is,
so a thin table is kept), then mapped back to the slice's own pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

BONE_HU = 300.0
RAYS, MIN_HITS = 16, 10
REACH_MM = 150.0
GRID_MM = 2.0
MIN_BONE_MM2 = 200.0  # less bone than this on a slice: the skull is not there to decide by


def _blocks(a: np.ndarray, factor: tuple[int, int], fill) -> np.ndarray:
    """``a`` padded with ``fill`` to whole blocks of ``factor`` pixels: (rows, fy, columns, fx)."""
    fy, fx = factor
    h, w = -(-a.shape[0] // fy) * fy, -(-a.shape[1] // fx) * fx
    padded = np.full((h, w), fill, a.dtype)
    padded[: a.shape[0], : a.shape[1]] = a
    return padded.reshape(h // fy, fy, w // fx, fx)


def _shifted(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``a`` moved so that out[y, x] = a[y + dy, x + dx] (False beyond the edge)."""
    out = np.zeros_like(a)
    h, w = a.shape
    if abs(dy) >= h or abs(dx) >= w:
        return out
    ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
    xs, xd = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx), slice(-dx, w))
    out[yd, xd] = a[ys, xs]
    return out


def ray_hits(bone: np.ndarray, pixel_mm: tuple[float, float], rays: int = RAYS, reach_mm: float = REACH_MM) -> np.ndarray:
    """Per pixel, how many of ``rays`` evenly spaced in-plane directions meet bone within ``reach_mm``
    or a little more (the pixel's own bone counts for every direction). Each ray is built by
    doubling: what is seen within length L, or within L from the point L ahead, is what is seen
    within 2L (offsets rounded to whole pixels), so a ray costs a few shifts, not one per pixel."""
    hits = np.zeros(bone.shape, np.int16)
    step = min(pixel_mm)
    for theta in np.arange(rays) * (2 * np.pi / rays):
        per_mm = (np.sin(theta) / pixel_mm[0], np.cos(theta) / pixel_mm[1])
        seen, covered = bone, step  # seen: bone at an offset of 0 .. covered - step along the ray
        while covered - step < reach_mm:
            seen = seen | _shifted(seen, int(round(covered * per_mm[0])), int(round(covered * per_mm[1])))
            covered *= 2
        hits += seen
    return hits


def head_of(hu: np.ndarray) -> np.ndarray:
    """The head on one axial slice: the largest component denser than fat-and-air (HU > -300),
    holes filled; the head rest and the table, apart from it across air, are left out."""
    lab, n = ndimage.label(hu > -300)
    if not n:
        return np.zeros(hu.shape, bool)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return ndimage.binary_fill_holes(lab == sizes.argmax())


def inside_skull_slice(hu: np.ndarray, pixel_mm: tuple[float, float]) -> np.ndarray:
    """One axial slice (HU, rows x columns of ``pixel_mm``): True where a hemorrhage can be."""
    factor = tuple(max(1, int(GRID_MM // p)) for p in pixel_mm)
    blocks = _blocks(np.asarray(hu, np.float32), factor, -1000.0)
    head = head_of(blocks.mean(axis=(1, 3)))
    bone = (blocks > BONE_HU).any(axis=(1, 3)) & head  # a coarse pixel is bone when any of its pixels is
    coarse_mm = (pixel_mm[0] * factor[0], pixel_mm[1] * factor[1])
    if bone.sum() * coarse_mm[0] * coarse_mm[1] < MIN_BONE_MM2:
        return np.ones(hu.shape, bool)
    inside = ndimage.binary_fill_holes(ray_hits(bone, coarse_mm) >= MIN_HITS) & head
    return np.repeat(np.repeat(inside, factor[0], axis=0), factor[1], axis=1)[: hu.shape[0], : hu.shape[1]]


def inside_skull(slices: np.ndarray, pixel_mm: tuple[float, float]) -> np.ndarray:
    """(Z, H, W) axial slices in HU -> (Z, H, W) bool, slice by slice (``inside_skull_slice``)."""
    return np.stack([inside_skull_slice(s, pixel_mm) for s in slices]) if len(slices) else np.zeros(slices.shape, bool)


__all__ = ["BONE_HU", "MIN_HITS", "RAYS", "head_of", "inside_skull", "inside_skull_slice", "ray_hits"]

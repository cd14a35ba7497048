"""From a canonical volume to 2D slices and back (paper §4.1: axial slices, window, resize,
normalise).

Slice layout: a volume in RAS+ (X, Y, Z) gives Z axial slices, inferior to superior; each slice is
shown the radiological way, rows anterior -> posterior and columns patient right -> left (as a
PACS viewer shows head CT). ``volume_from_slices`` undoes every step, so a per-slice prediction
lands on the original file's voxel grid and can be saved with the file's own affine.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from nibabel import orientations as ornt_mod

from .config import PrepConfig
from .volumes import Volume


def axial_slices(data: np.ndarray) -> np.ndarray:
    """(X, Y, Z) RAS+ -> (Z, H=Y, W=X) radiological slices (a view where possible)."""
    return data.transpose(2, 1, 0)[:, ::-1, ::-1]


def from_axial_slices(slices: np.ndarray) -> np.ndarray:
    """Inverse of ``axial_slices``: (Z, H, W) -> (X, Y, Z)."""
    return slices[:, ::-1, ::-1].transpose(2, 1, 0)


def prepared_pixel_mm(spacing, shape, size: int) -> tuple[float, float]:
    """(row mm, column mm) of one pixel of the prepared ``size`` x ``size`` slice.

    ``spacing`` and ``shape`` are the canonical (x, y, z) voxel size in mm and (X, Y, Z) shape of
    the volume. ``preprocess_volume`` resizes the whole (Y, X) slice to (size, size) with no crop
    or pad, so each prepared pixel covers ``Y / size`` source rows and ``X / size`` source columns
    (the field of view is unchanged); a non-square slice gets a non-square prepared pixel.
    """
    return float(spacing[1]) * int(shape[1]) / size, float(spacing[0]) * int(shape[0]) / size


def window(hu: np.ndarray, windows) -> np.ndarray:
    """HU (...) -> (C, ...) in [0, 1], one channel per (level, width) window."""
    out = np.empty((len(windows),) + hu.shape, dtype=np.float32)
    for c, (level, width) in enumerate(windows):
        lo = level - width / 2.0
        np.subtract(hu, lo, out=out[c])
        out[c] *= 1.0 / width
        np.clip(out[c], 0.0, 1.0, out=out[c])
    return out


def _resize(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """Resize (N, C, H, W) to (N, C, size, size)."""
    if tuple(x.shape[-2:]) == (size, size):
        return x
    if mode == "bilinear_aa":
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    if mode == "nearest":
        return F.interpolate(x, size=(size, size), mode="nearest-exact")
    if mode == "area":
        return F.interpolate(x, size=(size, size), mode="area")
    if mode == "bilinear":
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    raise ValueError(f"resize: unknown mode {mode!r}")


def normalize(img: np.ndarray, how: str) -> np.ndarray:
    """Normalise windowed (Z, C, H, W) images in [0, 1] in place and return them."""
    if how == "unit":
        return img
    if how == "symmetric":
        img *= 2.0
        img -= 1.0
        return img
    if how == "zscore":  # per slice and channel, statistics over the head (above the window floor)
        inside = img > 0
        n = np.maximum(inside.sum(axis=(2, 3), keepdims=True), 1)
        mean = (img * inside).sum(axis=(2, 3), keepdims=True) / n
        var = (((img - mean) * inside) ** 2).sum(axis=(2, 3), keepdims=True) / n
        img -= mean
        img /= np.sqrt(var) + 1e-6
        return img
    raise ValueError(f"normalize: unknown value {how!r}")


#: slices windowed and resized at a time: a 512² volume is never held again at full resolution
#: in float32 beside its HU (each slice is windowed and resized on its own, so the result does not
#: depend on it)
SLICE_CHUNK = 16


def preprocess_volume(vol: Volume, config: PrepConfig | None = None) -> np.ndarray:
    """Image volume -> (Z, C, size, size) float32 slices, exactly as ``prepare_dataset`` stores them.

    Order (paper §4.1): axial slices -> HU window(s) to [0, 1] -> antialiased bilinear resize
    -> normalisation. Windowing before resizing keeps out-of-window values (bone, air) from
    bleeding into the brain through the interpolation. ``SLICE_CHUNK`` slices at a time.
    """
    config = config or PrepConfig()
    hu = axial_slices(vol.data)  # (Z, H, W), a view
    out = None
    for z0 in range(0, hu.shape[0], SLICE_CHUNK):
        img = window(hu[z0 : z0 + SLICE_CHUNK], config.windows)  # (C, z, H, W)
        t = torch.from_numpy(img).transpose(0, 1)  # (z, C, H, W)
        chunk = _resize(t.contiguous(), config.size, config.image_resize).numpy()
        if out is None:
            out = np.empty((hu.shape[0],) + chunk.shape[1:], dtype=np.float32)
        out[z0 : z0 + len(chunk)] = chunk
    if out is None:  # no slice: nothing to resize
        out = np.empty((0, len(config.windows), config.size, config.size), dtype=np.float32)
    return with_context(normalize(out, config.normalize), config.context)


def with_context(slices: np.ndarray, k: int) -> np.ndarray:
    """(Z, C, H, W) -> (Z, C (2k + 1), H, W): each slice's own channels, then those of the slices
    k below to k above it (without itself), the volume's end slices repeated past its ends."""
    if not k:
        return slices
    z = slices.shape[0]
    offsets = [d for d in range(-k, k + 1) if d]
    parts = [slices] + [slices[np.clip(np.arange(z) + d, 0, z - 1)] for d in offsets]
    return np.ascontiguousarray(np.concatenate(parts, axis=1))


def preprocess_mask(mask: Volume, config: PrepConfig | None = None) -> np.ndarray:
    """Mask volume (labels) -> (Z, size, size) uint8 in {0, 1}: any label > 0 is hemorrhage."""
    config = config or PrepConfig()
    binary = np.ascontiguousarray(axial_slices(mask.data) > 0, dtype=np.float32)
    t = torch.from_numpy(binary)[:, None]
    out = _resize(t, config.size, config.mask_resize)[:, 0]
    return (out >= 0.5).numpy().astype(np.uint8)


#: HU range of the soft tissue a lesion is seen against (CSF to blood and calcification-free brain);
#: bone, air and fat in the ring around a lesion are left out of its contrast
SOFT_TISSUE_HU = (-50.0, 150.0)


def lesion_contrast_hu(image: Volume, mask: Volume, ring_mm: float = 3.0) -> np.ndarray:
    """Per axial slice of the source volume: mean HU inside the lesion minus mean HU of the soft
    tissue (``SOFT_TISSUE_HU``) in a ring ``ring_mm`` wide around it; NaN where the slice holds no
    lesion or the ring holds no soft tissue. On the source grid, so the number is a property of the
    scan (how visible the annotated blood is), the same at every prepared size."""
    from scipy.ndimage import binary_dilation

    hu = axial_slices(image.data)
    lesion = axial_slices(mask.data) > 0
    steps = max(1, int(round(ring_mm / max(min(image.spacing[0], image.spacing[1]), 1e-6))))
    out = np.full(hu.shape[0], np.nan)
    for z in np.flatnonzero(lesion.any(axis=(1, 2))):
        soft = (hu[z] > SOFT_TISSUE_HU[0]) & (hu[z] < SOFT_TISSUE_HU[1])
        ring = binary_dilation(lesion[z], iterations=steps) & ~lesion[z] & soft
        if ring.any():
            out[z] = float(hu[z][lesion[z]].mean() - hu[z][ring].mean())
    return out


def slices_of_file_grid(array: np.ndarray, vol: Volume) -> np.ndarray:
    """A (Z, H, W) view, in ``axial_slices`` layout, of an array on ``vol``'s file grid (its
    original shape and voxel order): writing a slice of the view writes the file's voxels."""
    return axial_slices(ornt_mod.apply_orientation(array, vol.ornt))


def slices_on_file_grid(pred: np.ndarray, vol: Volume, order: int = 0, chunk: int | None = None):
    """``pred`` (Z, size, size) resized to ``vol``'s in-plane grid, ``chunk`` slices at a time
    (default ``SLICE_CHUNK``): yields (first slice index, (z, H, W) float32 slices in
    ``axial_slices`` layout)."""
    pred = np.asarray(pred)
    z, h, w = vol.n_slices, vol.data.shape[1], vol.data.shape[0]
    if pred.ndim != 3 or pred.shape[0] != z or pred.shape[1] != pred.shape[2]:
        raise ValueError(f"volume_from_slices: expected ({z}, S, S) slices for {vol.path.name}, got {pred.shape}")
    if order not in (0, 1):
        raise ValueError(f"volume_from_slices: order must be 0 or 1, got {order!r}")
    chunk = chunk or SLICE_CHUNK
    for z0 in range(0, z, chunk):
        t = torch.from_numpy(np.ascontiguousarray(pred[z0 : z0 + chunk], dtype=np.float32))[:, None]
        if (h, w) != tuple(t.shape[-2:]):
            if order == 0:
                t = F.interpolate(t, size=(h, w), mode="nearest-exact")
            else:
                t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False,
                                  antialias=h < t.shape[-2] or w < t.shape[-1])
        yield z0, t[:, 0].numpy()


def volume_from_slices(pred: np.ndarray, vol: Volume, order: int = 0) -> np.ndarray:
    """Map a per-slice prediction (Z, size, size) back onto ``vol``'s original file grid.

    ``order=0`` (nearest, for binary masks) or ``1`` (bilinear, for probabilities). Returns an
    array with the file's original shape and voxel order: save it with ``vol.original_affine``
    and it overlays the input scan. Made ``SLICE_CHUNK`` slices at a time straight into the
    result, so no other full-size copy is made.
    """
    pred = np.asarray(pred)
    out = np.empty(vol.original_shape, dtype=pred.dtype if order == 0 else np.float32)
    view = slices_of_file_grid(out, vol)
    for z0, chunk in slices_on_file_grid(pred, vol, order):
        view[z0 : z0 + len(chunk)] = chunk
    return out

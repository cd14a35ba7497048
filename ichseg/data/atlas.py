"""Brain anatomy for the synthetic head CT: the MNI ICBM152 2009a template that ships with nilearn.

The ``nilearn`` wheel (BSD-3) carries the ICBM152 2009a nonlinear symmetric template at 1 mm
(197 x 233 x 189 voxels, RAS+, MNI millimetres) inside its package folder: a skull-stripped T1 image
and grey- and white-matter probability maps (Fonov et al., NeuroImage 2011; the template's licence
permits use, copying and distribution with its copyright notice). They are read from the installed
package, never downloaded, and nothing heavier than ``nibabel`` is imported.

``load_atlas()`` (cached per process) derives what the CT synthesis needs, all on the template's
1 mm grid: tissue fractions (grey, white, CSF = brain mask minus grey and white), the ventricles
(deep CSF near the midline), distances outside and inside the brain surface (for the extra-axial
space, the skull, the scalp and extra-axial hemorrhage), and a closed "cranial cavity" whose
outside distance shapes the skull, so that bone fills the gaps under the temporal lobes and around
the cerebellum: the skull base.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import IchsegError

ATLAS_FILES = {k: f"mni_icbm152_{k}_tal_nlin_sym_09a_converted.nii.gz" for k in ("t1", "gm", "wm")}
#: MNI mm of voxel (0, 0, 0) of the template (its affine is diag(1, 1, 1) plus this offset)
ORIGIN_MM = np.array([-98.0, -134.0, -72.0])


def atlas_folder() -> Path:
    """The folder of the installed nilearn package that holds the template files."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise IchsegError("nilearn: not installed; the synthetic head CT needs its MNI template "
                          "(pip install nilearn)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    missing = [f for f in ATLAS_FILES.values() if not (folder / f).is_file()]
    if missing:
        raise IchsegError(f"{folder}: MNI ICBM152 template file(s) missing from the nilearn package: "
                          f"{', '.join(missing)} (reinstall nilearn)")
    return folder


@dataclass(frozen=True)
class Atlas:
    """Template-derived maps on the 1 mm grid (X, Y, Z) = MNI mm - ORIGIN_MM."""

    gm: np.ndarray  # grey-matter fraction, float32
    wm: np.ndarray  # white-matter fraction
    csf: np.ndarray  # CSF fraction inside the brain mask (sulci, fissures, cisterns, ventricles)
    vent: np.ndarray  # ventricular CSF fraction (subset of csf)
    d_out: np.ndarray  # mm outside the brain mask (0 inside)
    d_in: np.ndarray  # mm inside the brain mask (0 outside)
    d_cav: np.ndarray  # mm outside the closed cranial cavity (0 inside)
    surface: np.ndarray  # (n, 3) voxel indices of the upper convexity surface (extra-axial lesion anchors)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.gm.shape


def mni_to_voxel(mm) -> np.ndarray:
    return np.asarray(mm, dtype=float) - ORIGIN_MM


def deep_csf(csf: np.ndarray, d_in: np.ndarray, box: tuple[slice, ...], csf_min: float, depth_mm: float) -> np.ndarray:
    """The ventricles: CSF (probability > ``csf_min``) deeper than ``depth_mm`` inside the brain
    (``d_in``: distance to its surface) within ``box``, without specks under 30 voxels, dilated by
    one voxel and weighted by the CSF probability; zero outside ``box``."""
    vmask = (csf[box] > csf_min) & (d_in[box] > depth_mm)
    lab, n = ndimage.label(vmask)
    if n:
        sizes = np.bincount(lab.ravel(), minlength=n + 1)
        vmask = (sizes >= 30)[lab] & (lab > 0)
    vent = np.zeros_like(csf)
    vent[box] = ndimage.binary_dilation(vmask, iterations=1) * csf[box]
    return vent


@functools.lru_cache(maxsize=1)
def load_atlas() -> Atlas:
    import nibabel as nib

    folder = atlas_folder()
    arr = {}
    for key, name in ATLAS_FILES.items():
        img = nib.load(str(folder / name))
        arr[key] = np.asarray(img.dataobj, dtype=np.float32)
        if not np.allclose(img.affine[:3, :3], np.eye(3)) or not np.allclose(img.affine[:3, 3], ORIGIN_MM):
            raise IchsegError(f"{folder / name}: unexpected template grid (affine {img.affine.tolist()})")
    gm, wm = arr["gm"] / 255.0, arr["wm"] / 255.0
    brain = (arr["t1"] > 0) | (gm + wm > 0.3)
    b = brain.astype(np.float32)
    gm, wm = gm * b, wm * b
    tot = gm + wm
    over = tot > 1
    gm[over] /= tot[over]
    wm[over] /= tot[over]
    csf = np.clip(b - gm - wm, 0, 1).astype(np.float32)
    # distances on a 2 mm grid (exact transforms at 1 mm cost seconds each), interpolated back to 1 mm
    b2 = _block_mean(b) >= 0.5
    sd = _signed_distance(b2)
    d_in = _upsample(np.maximum(-sd, 0), brain.shape)
    d_out = _upsample(np.maximum(sd, 0), brain.shape)
    # ventricles: CSF deep inside the brain, near the midline, from the temporal horns to the roofs
    lo, hi = mni_to_voxel([-36, -58, -22]).astype(int), mni_to_voxel([36, 32, 38]).astype(int)
    vent = deep_csf(csf, d_in, tuple(slice(a, b) for a, b in zip(lo, hi)), csf_min=0.55, depth_mm=7)
    # closed cranial cavity: the brain closed with a 12 mm ball, so bone fills the gaps under the
    # temporal lobes and around the cerebellum (the skull base) instead of scalp
    r = 6.0  # in 2 mm voxels
    dil = ndimage.distance_transform_edt(~b2) <= r
    cavity = ndimage.distance_transform_edt(dil) > r
    d_cav = _upsample(np.maximum(_signed_distance(cavity | b2), 0), brain.shape)
    # convexity surface (above the skull base, on the 2 mm grid): anchors for subdural and epidural hematomas
    surf = b2 & ~ndimage.binary_erosion(b2)
    surf[:, :, : int(mni_to_voxel([0, 0, 5])[2]) // 2] = False
    surface = np.argwhere(surf) * 2 + 1
    return Atlas(gm.astype(np.float32), wm.astype(np.float32), csf, vent, d_out, d_in, d_cav, surface)


def _block_mean(a: np.ndarray) -> np.ndarray:
    """Mean over 2 x 2 x 2 blocks (the array padded to even sizes)."""
    pad = [(0, n % 2) for n in a.shape]
    a = np.pad(a, pad, mode="edge")
    nx, ny, nz = (n // 2 for n in a.shape)
    return a.reshape(nx, 2, ny, 2, nz, 2).mean(axis=(1, 3, 5))


def _signed_distance(mask: np.ndarray) -> np.ndarray:
    """Signed distance (mm, + outside) to the surface of a 2 mm mask."""
    out = ndimage.distance_transform_edt(~mask)
    inn = ndimage.distance_transform_edt(mask)
    return (np.where(mask, -(inn - 0.5), out - 0.5) * 2.0).astype(np.float32)


def _upsample(a2: np.ndarray, shape) -> np.ndarray:
    """2 mm block grid -> 1 mm grid, linear (each fine voxel: 3/4 its block, 1/4 the neighbour)."""
    a = a2.astype(np.float32)
    for axis in range(3):
        a = np.moveaxis(a, axis, 0)
        prev = np.concatenate([a[:1], a[:-1]])
        nxt = np.concatenate([a[1:], a[-1:]])
        up = np.empty((2 * a.shape[0],) + a.shape[1:], np.float32)
        up[0::2] = 0.75 * a + 0.25 * prev
        up[1::2] = 0.75 * a + 0.25 * nxt
        a = np.moveaxis(up, 0, axis)
    return np.ascontiguousarray(a[: shape[0], : shape[1], : shape[2]])

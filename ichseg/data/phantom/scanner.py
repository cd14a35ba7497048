"""The "scanners": acquisition, reconstruction, population and storage of each dataset layout, and
the CT formation of a composed 1 mm HU volume on a scanner's grid.

CT formation: the composed 1 mm HU volume is resampled once onto the scanner grid (in-plane at up to
1 mm, then interpolated to 512 x 512 at 0.4-0.5 mm), slabs of the slice thickness are averaged from
1 mm samples (partial volume along z), then reconstruction kernel, cupping, calibration offset and
correlated noise. Each layout is its own "scanner" (``DOMAINS``), so training on one and testing on
another measures generalisation across domains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .anatomy import F32, _level


@dataclass(frozen=True)
class Domain:
    """One 'scanner': acquisition, reconstruction, population and file storage of a layout."""

    fov_mm: float  # in-plane field of view; pixel size = fov / in_plane
    thickness_mm: float
    slices: tuple[int, int]  # range of slice counts per volume
    noise_hu: float  # standard deviation of the added (correlated) noise
    hu_offset: float  # calibration offset of the whole image
    cupping_hu: float  # beam-hardening-like darkening of the centre
    kernel_mm: float  # Gaussian reconstruction blur (sigma, in-plane)
    subtype_mix: dict[str, float]
    negative_share: float
    flips: tuple[bool, bool, bool]  # stored axis flips relative to RAS+
    dtype: str
    slope: float
    inter: float
    labels: str  # "binary" or "subtype" (BHSD codes 1-5)
    suffix: str = ".nii.gz"


DOMAINS: dict[str, Domain] = {
    # INSTANCE 2022: ~0.43 mm pixels at 512, 5 mm slices, DICOM-like (LPS) storage, labels 0/1
    "instance2022": Domain(220.0, 5.0, (24, 34), 4.5, 0.0, 4.0, 0.35,
                           {"intraparenchymal": .40, "subdural": .15, "epidural": .10, "intraventricular": .15,
                            "subarachnoid": .20}, 0.30, (True, True, False), "int16", 1.0, 0.0, "binary"),
    # BHSD: larger field of view, thinner slices, noisier, +5 HU, stored unsigned with an intercept,
    # labels carry the subtype; its voxel-labelled volumes are nearly all positive
    "bhsd": Domain(240.0, 4.5, (26, 36), 6.0, 5.0, 8.0, 0.3,
                   {"epidural": .2, "intraparenchymal": .2, "intraventricular": .2, "subarachnoid": .2,
                    "subdural": .2}, 0.10, (False, False, True), "uint16", 1.0, -1024.0, "subtype"),
    # PhysioNet CT-ICH: a traumatic-injury cohort (more extra-axial blood), ~half without hemorrhage,
    # older-looking images (smoother kernel, more noise and cupping, -4 HU), uncompressed .nii
    "physionet": Domain(205.0, 5.0, (24, 32), 8.0, -4.0, 12.0, 0.55,
                        {"subdural": .30, "epidural": .20, "intraparenchymal": .20, "subarachnoid": .20,
                         "intraventricular": .10}, 0.50, (False, False, False), "int16", 1.0, 0.0, "binary",
                        ".nii"),
}


#: each layout's own stream of random numbers (``phantom_case``), by name
DOMAIN_STREAM = {"instance2022": 0, "bhsd": 1, "physionet": 2}


@dataclass(frozen=True)
class ScanGrid:
    """Where a volume is sampled: ``n`` x ``n`` pixels of ``sp`` mm (computed on ``m`` x ``m`` of ``h`` mm,
    then upsampled ``up`` times by 2), ``nz`` slices of ``th`` mm from ``z0`` (scanner mm), each the mean
    of ``sub`` sub-slices; ``lv`` the atlas level the head is composed on."""

    n: int
    nz: int
    sp: float
    th: float
    up: int
    m: int
    h: float
    lv: object
    sub: int
    z0: float

    def affine(self) -> np.ndarray:
        affine = np.diag([self.sp, self.sp, self.th, 1.0])
        affine[:3, 3] = [-(self.n - 1) / 2 * self.sp, -(self.n - 1) / 2 * self.sp, self.z0 + self.th / 2]
        return affine

    def slab(self, a: np.ndarray) -> np.ndarray:
        """1 mm sub-slices -> slices of the grid's thickness, then the in-plane size."""
        return _up(a.reshape(self.m, self.m, self.nz, self.sub).mean(axis=3, dtype=F32), self.up)


def scan_grid(rng: np.random.Generator, domain: Domain, n: int, nz: int) -> ScanGrid:
    """The scanner grid: in-plane at >= ~0.8 mm (then upsampled by powers of two), 1 mm sub-slices,
    a stack from the skull base to the vertex (its top drawn from ``rng``)."""
    sp, th = domain.fov_mm / n, domain.thickness_mm
    up = 0
    while n % (2 ** (up + 1)) == 0 and sp * 2 ** (up + 1) <= 1.0:
        up += 1
    m, h = n >> up, sp * 2**up
    lv = _level(1 if h < 1.5 else 2)  # compose at 1 mm, or at 2 mm when the scan's pixels are coarse
    sub = max(1, int(math.ceil(th / (1.25 * lv.step) - 0.01)))  # sub-slices averaged into each slice
    span = nz * th
    z_top = min(95.0, 22.0 + span / 2) + rng.uniform(-4, 4)  # head CT: skull base to vertex
    return ScanGrid(n, nz, sp, th, up, m, h, lv, sub, z_top - span)


def sample_points(grid: ScanGrid, domain: Domain) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scanner mm (broadcastable x, y, z) of every sub-sample of the grid."""
    xs = ((np.arange(grid.m, dtype=F32) + F32(0.5)) * F32(grid.h) - F32(domain.fov_mm / 2)).reshape(-1, 1, 1)
    zs = (grid.z0 + (np.arange(grid.nz * grid.sub, dtype=F32) + F32(0.5)) * F32(grid.th / grid.sub)).reshape(1, 1, -1)
    return xs, xs.reshape(1, -1, 1), zs


def reconstruct(img: np.ndarray, domain: Domain, grid: ScanGrid, rng: np.random.Generator) -> np.ndarray:
    """Reconstruction kernel, cupping, offset, noise (on the working grid), then interpolation to n x n."""
    h, m, sp = grid.h, grid.m, grid.sp
    img = ndimage.gaussian_filter(img, sigma=(domain.kernel_mm / h, domain.kernel_mm / h, 0), mode="nearest")
    head = img > -300
    cx = (np.arange(m, dtype=F32) - F32((m - 1) / 2)) * F32(h / 85.0)
    rho2 = cx[:, None] ** 2 + cx[None, :] ** 2
    img += F32(domain.hu_offset) - F32(domain.cupping_hu) * np.clip(1 - rho2, 0, 1)[:, :, None] * head
    noise = rng.standard_normal(img.shape, dtype=F32)
    if grid.up:  # linear 2x interpolation correlates the noise over ~2 pixels (~0.9 mm, a CT-like grain) and
        noise *= F32(1.0 / 0.625**grid.up)  # scales its standard deviation by 0.625 per step: undone here
    elif 0.45 / sp > 0.3:
        noise = ndimage.gaussian_filter(noise, sigma=(0.45 / sp, 0.45 / sp, 0), mode="wrap")
        noise *= F32(1.0 / max(float(noise.std()), 1e-6))
    img += noise * F32(domain.noise_hu)
    del noise
    return np.clip(_up(img, grid.up), -1024, 3071).astype(F32, copy=False)


def _upsample2(a: np.ndarray, axes=(0, 1)) -> np.ndarray:
    """Linear 2x upsampling along ``axes`` (pixel areas kept: each new pixel 3/4 its own, 1/4 the neighbour)."""
    for axis in axes:
        a = np.moveaxis(a, axis, 0)
        prev = np.concatenate([a[:1], a[:-1]])
        nxt = np.concatenate([a[1:], a[-1:]])
        up = np.empty((2 * a.shape[0],) + a.shape[1:], a.dtype)
        up[0::2] = F32(0.75) * a + F32(0.25) * prev
        up[1::2] = F32(0.75) * a + F32(0.25) * nxt
        a = np.moveaxis(up, 0, axis)
    return a



def _up(a: np.ndarray, times: int) -> np.ndarray:
    for _ in range(times):
        a = _upsample2(a)
    return np.ascontiguousarray(a)


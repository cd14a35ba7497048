"""CT formation with the scanner side randomised (``data.phantom.randomise``): kernel, cupping,
beam-hardening streaks, soft-tissue contrast, a smooth bias field and band-pass noise.

Beam hardening: a polychromatic beam hardens along a ray, so the log attenuation of a ray through
bone falls short of its line integral by about the square of the bone it crossed; filtered back
projection turns that error into cupping and into dark streaks along the rays that cross two dense
bones, between the petrous bones at the skull base above all (``joseph1978bone``,
``barrett2004artifacts``). It is modelled here by exactly that: the bone-equivalent line integrals
of each slice (parallel beam, on a coarse grid), their squares filtered and back-projected.

Noise: filtered back projection weights noise by the ramp filter, so CT noise has little power at
low frequencies and a peak set by the kernel (``boedeker2007nps``): white noise filtered by a
difference of Gaussians, on the output grid.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .anatomy import F32
from .scanner import _up

#: coarse grid of the beam-hardening model (pixels per side) and its projection angles
BH_PIXELS, BH_ANGLES = 96, 96


def bias_field(rng: np.random.Generator, shape, spacing_mm, n_waves: int = 4, min_wavelength_mm: float = 120.0) -> np.ndarray:
    """A smooth field in [-1, 1] (its largest magnitude exactly 1): a sum of ``n_waves`` plane
    cosines with wavelengths of at least ``min_wavelength_mm``."""
    axes = [(np.arange(n, dtype=F32) - F32((n - 1) / 2)) * F32(s) for n, s in zip(shape, spacing_mm)]
    grids = [a.reshape([-1 if j == i else 1 for j in range(len(shape))]) for i, a in enumerate(axes)]
    out = np.zeros(shape, F32)
    for _ in range(n_waves):
        u = rng.normal(size=len(shape))
        u /= np.linalg.norm(u)
        k = 2 * math.pi / (min_wavelength_mm * rng.uniform(1.0, 3.0))
        phase = sum(g * F32(k * c) for g, c in zip(grids, u))
        out += F32(rng.normal()) * np.cos(phase + F32(rng.uniform(0, 2 * math.pi)))
    return out / F32(max(float(np.abs(out).max()), 1e-6))


def band_noise(rng: np.random.Generator, shape, pixel_mm: float, grain_mm: float) -> np.ndarray:
    """In-plane band-pass noise of unit standard deviation: white noise filtered by a difference of
    Gaussians (sigma ``grain_mm`` minus 0.85 times sigma 2.5 ``grain_mm``), slices independent."""
    white = rng.standard_normal(shape, dtype=F32)
    s = max(grain_mm / pixel_mm, 0.3)
    fine = ndimage.gaussian_filter(white, sigma=(s, s, 0), mode="wrap")
    coarse = ndimage.gaussian_filter(white, sigma=(2.5 * s, 2.5 * s, 0), mode="wrap")
    out = fine - F32(0.85) * coarse
    return out / F32(max(float(out.std()), 1e-6))


def _project(img: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Parallel-beam line integrals (pixel units) of a square image: (angles, detector bins)."""
    n = img.shape[0]
    c = (n - 1) / 2
    s = np.arange(n, dtype=F32) - F32(c)
    sino = np.empty((len(angles), n), F32)
    for i, a in enumerate(angles):
        ca, sa = F32(math.cos(a)), F32(math.sin(a))
        rows = c + s[:, None] * ca - s[None, :] * sa
        cols = c + s[:, None] * sa + s[None, :] * ca
        sino[i] = ndimage.map_coordinates(img, [rows, cols], order=1, mode="constant", cval=0.0).sum(axis=1)
    return sino


def _back_project(sino: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Ramp-filtered back projection of ``_project``'s sinogram (same pixel grid)."""
    n = sino.shape[1]
    pad = 2 * n
    ramp = np.abs(np.fft.rfftfreq(pad)).astype(F32)
    q = np.fft.irfft(np.fft.rfft(sino, n=pad, axis=1) * ramp, n=pad, axis=1)[:, :n].astype(F32)
    c = (n - 1) / 2
    y, x = np.mgrid[0:n, 0:n].astype(F32) - F32(c)
    out = np.zeros((n, n), F32)
    s = np.arange(n, dtype=F32) - F32(c)
    for i, a in enumerate(angles):
        t = y * F32(math.cos(a)) + x * F32(math.sin(a))
        out += np.interp(t.ravel(), s, q[i], left=0.0, right=0.0).reshape(n, n).astype(F32)
    return out * F32(math.pi / len(angles))


def beam_hardening(img: np.ndarray) -> np.ndarray:
    """Unscaled beam-hardening error of each slice of an (X, Y, Z) HU volume: minus the filtered back
    projection of the squared bone-equivalent line integrals (0 where no bone)."""
    m = img.shape[0]
    f = BH_PIXELS / m
    angles = np.linspace(0.0, math.pi, BH_ANGLES, endpoint=False)
    out = np.zeros(img.shape, F32)
    for k in range(img.shape[2]):
        bone = np.clip((img[:, :, k] - F32(200.0)) / F32(1500.0), 0, None)
        if not bone.any():
            continue
        small = ndimage.zoom(bone, f, order=1) / F32(f)  # keep line integrals in full-grid pixels
        err = ndimage.gaussian_filter(-_back_project(_project(small, angles) ** 2, angles), 0.7)  # no view aliasing
        out[:, :, k] = ndimage.zoom(err, m / err.shape[0], order=1)[:m, :m]
    return out


def streaks(img: np.ndarray, head: np.ndarray, pixel_mm: float, depth_hu: float, smooth_mm: float = 12.0) -> np.ndarray:
    """The streaks of ``beam_hardening`` in the soft tissue of the head: its error less its local
    mean over ``smooth_mm`` (the cupping is drawn on its own), scaled so that the darkest 0.5 % of
    the soft tissue of the volume lies ``depth_hu`` below it; slices with less dense bone get fainter
    streaks. Zero in bone, air and the 3 mm of soft tissue next to bone."""
    soft = head & (img < 150)
    near = max(1, int(round(3.0 / pixel_mm)))  # bone's own error, smeared by the coarse grid, left out
    soft = (soft & ~ndimage.binary_dilation(img >= 150, np.ones((3, 3, 1), bool), iterations=near)).astype(F32)
    err = beam_hardening(img)
    sig = (smooth_mm / pixel_mm, smooth_mm / pixel_mm, 0)
    local = ndimage.gaussian_filter(err * soft, sig) / np.maximum(ndimage.gaussian_filter(soft, sig), F32(1e-3))
    hp = (err - local) * soft * ndimage.gaussian_filter(soft, (1.5 / pixel_mm, 1.5 / pixel_mm, 0))  # no edge at the margin
    low = float(np.percentile(hp[soft > 0], 0.5)) if soft.any() else 0.0
    return hp * F32(depth_hu / -low) if low < 0 else np.zeros_like(img)


def soft_contrast(img: np.ndarray, factor: float) -> np.ndarray:
    """Soft-tissue HU scaled by ``factor`` about 30 HU, continuously (-100 to 150 HU scaled, the rest shifted)."""
    return img + F32(factor - 1.0) * (np.clip(img, -100.0, 150.0) - F32(30.0))


def reconstruct_varied(img: np.ndarray, domain, grid, draw, rng: np.random.Generator) -> np.ndarray:
    """``scanner.reconstruct`` with the scanner's draws (``randomise.ScannerDraw``) and the
    artefacts above, then interpolation to n x n and noise on the output grid."""
    streams = rng.spawn(3)
    h = grid.h
    img = ndimage.gaussian_filter(img, sigma=(domain.kernel_mm / h, domain.kernel_mm / h, 0), mode="nearest")
    head = img > -300
    if draw.streaks_hu > 0:
        img += streaks(img, head, h, draw.streaks_hu)
    cx = (np.arange(grid.m, dtype=F32) - F32((grid.m - 1) / 2)) * F32(h / 85.0)
    rho2 = cx[:, None] ** 2 + cx[None, :] ** 2
    img += F32(domain.hu_offset) - F32(draw.cupping_hu) * np.clip(1 - rho2, 0, 1)[:, :, None] * head
    img = soft_contrast(img, draw.contrast)
    spacing = (h, h, grid.th)
    gain = bias_field(streams[0], img.shape, spacing) * F32(draw.bias_gain)
    add = bias_field(streams[1], img.shape, spacing) * F32(draw.bias_hu)
    img = (img + F32(1000.0)) * (F32(1.0) + gain) - F32(1000.0) + add * head
    img = _up(img, grid.up)
    img += band_noise(streams[2], img.shape, grid.sp, draw.grain_mm) * F32(draw.noise_hu)
    return np.clip(img, -1024, 3071).astype(F32, copy=False)

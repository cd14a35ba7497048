"""Heterogeneous bleeds (``data.phantom.randomise``): HU maps on a lesion's box of the atlas grid.

- swirl: hyperacute, still-liquid blood reads lower (30-50 HU) than the retracted clot around it, in
  irregular swirls inside the bleed (``selariu2012swirl``);
- fluid-blood level: in a bleed that does not clot, cells settle to the dependent side (posterior in a
  supine patient) under serum, with a sharp horizontal level (``pfleger1994fluid``);
- perihematomal oedema: a hypodense rim of parenchyma around an intraparenchymal bleed, 0.3-1x its
  volume in the first days (``gebel2002edema``).

The blood fraction, and so the label, is the generator's own; only the HU of the blood and of the
parenchyma around it change.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .anatomy import F32, _grid, _ramp
from .randomise import DILUTED, Randomise, blood_hu_by_age

#: subtypes that can swirl or layer (blood not mixed with CSF)
SOLID = ("intraparenchymal", "subdural", "epidural")


def swirl_map(rng: np.random.Generator, blood_hu: float, shape, step: float) -> np.ndarray:
    """Blood HU with 20-45 % of it in smooth swirls 15-35 HU less dense."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(F32), sigma=2.5 / step, mode="wrap")
    field /= max(float(field.std()), 1e-6)
    share, drop = rng.uniform(0.2, 0.45), rng.uniform(15.0, 35.0)
    thr = float(np.quantile(field, 1.0 - share))
    return (F32(blood_hu) - F32(drop) * _ramp((field - F32(thr)) * F32(4.0), 1.0)).astype(F32)


def fluid_level_map(rng: np.random.Generator, blood: np.ndarray, frac: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Blood HU with cells (65-85 HU) below a level and serum (20-35 HU) above it; ``depth`` grows
    towards the dependent side (mm), the level is at 30-70 % of the bleed's extent along it."""
    inside = frac >= 0.5
    if not inside.any():
        return blood
    level = float(np.quantile(depth[inside], rng.uniform(0.3, 0.7)))
    cells, serum = rng.uniform(65.0, 85.0), rng.uniform(20.0, 35.0)
    below = _ramp(depth - F32(level), 1.0)  # a sharp (1 mm) level
    return (F32(serum) * (1 - below) + np.maximum(blood, F32(cells)) * below).astype(F32)


def oedema_rim(rng: np.random.Generator, frac: np.ndarray, parenchyma: np.ndarray, step: float) -> np.ndarray:
    """HU to subtract around a bleed: 6-14 HU in a rim of parenchyma whose volume is 0.3-1x the bleed's."""
    inside = frac >= 0.5
    n = int(inside.sum())
    if not n:
        return np.zeros(frac.shape, F32)
    radius = (3 * n * step**3 / (4 * math.pi)) ** (1 / 3)
    width = radius * ((1 + rng.uniform(0.3, 1.0)) ** (1 / 3) - 1)
    dist = ndimage.distance_transform_edt(~inside, sampling=step).astype(F32)
    rim = _ramp(F32(width) - dist, 2.0) * np.clip(parenchyma * 1.5, 0, 1) * (1 - frac)
    return (F32(rng.uniform(6.0, 14.0)) * rim).astype(F32)


def vary_lesion(rng: np.random.Generator, les, lv, r: Randomise, normal: np.ndarray) -> None:
    """Blood HU by age and the heterogeneous-bleed options, on one lesion (in place).

    Draws a fixed count from ``rng`` before any option acts, and each option uses its own child
    stream, so turning one option on or off leaves the others' draws as they were."""
    u = rng.random(3)
    streams = rng.spawn(4)
    if les.subtype not in DILUTED and r.blood_age:
        les.blood_hu = blood_hu_by_age(streams[0])[1]
    if les.subtype not in SOLID:
        return
    blood = None
    if u[0] < r.swirl:
        blood = swirl_map(streams[1], les.blood_hu, les.frac.shape, lv.step)
    if u[1] < r.fluid_level:
        x, y, z = _grid(les.box, lv)
        depth = x * F32(normal[0]) + y * F32(normal[1]) + z * F32(normal[2])
        base = np.full(les.frac.shape, F32(les.blood_hu)) if blood is None else blood
        blood = fluid_level_map(streams[2], base, les.frac, depth)
    les.blood_map = blood
    if les.subtype == "intraparenchymal" and u[2] < r.oedema:
        les.rim = oedema_rim(streams[3], les.frac, lv.gm[les.box] + lv.wm[les.box], lv.step)

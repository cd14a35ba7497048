"""The patient's head before any lesion: per-patient draws, the atlas at the composition step, and
the HU of brain, CSF, skull, scalp, face, air cells, falx and calcifications on a box of it.

Anatomy (``ichseg.data.atlas``): the MNI ICBM152 2009a template's grey/white/CSF fractions. Per
patient: tissue HU with partial volumes (grey 36-42, white 24-30, CSF 2-10 HU), a random affine
(head size, yaw, roll, the tilt of the scan plane) and a smooth elastic deformation, ventricle
enlargement and widened sulci for the atrophic part of the cohort; outside the brain an
extra-axial CSF space, a skull with inner and outer tables and a lighter diploe whose thickness
varies, bone filling the skull base around the temporal lobes and the posterior fossa with air cells
(mastoid, sphenoid, frontal sinus), a scalp with its fat layer; physiological calcifications
(pineal, choroid plexus, falx) as hyperdense distractors and the falx as a thin dense line.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..atlas import ORIGIN_MM, _block_mean, load_atlas

AIR_HU = -1000.0
F32 = np.float32


def _ramp(x, width: float = 1.0):
    """Partial-volume membership: 1 well inside (x > 0), 0 well outside, linear over ``width`` mm."""
    out = np.asarray(x, dtype=F32) * F32(1.0 / width)
    out = out + F32(0.5)
    return np.clip(out, 0.0, 1.0, out=out)



# -- per-patient draws -------------------------------------------------------------------------------
@dataclass
class _Patient:
    grey: float
    white: float
    csf: float
    atrophy: float
    rot: np.ndarray  # 3x3, scanner mm -> atlas mm (inverse of the head's pose and size)
    shift: np.ndarray  # atlas mm of the scanner origin
    elastic: list  # (component, amplitude, (wx, wy, wz), (px, py, pz))
    skull_mm: float
    scalp_mm: float
    diploe_hu: float
    table_hu: float
    scalp_hu: float
    calcs: list  # (centre atlas mm, radius, HU)
    bone_band_hu: float = 0.0  # brain brightened beside skull-base bone (``randomise.bone_band_hu``); 0: none
    bone_band_mm: float = 3.0
    bone_band_calvarium: float = 0.2


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cz, sz, cx, sx, cy, sy = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch), math.cos(roll), math.sin(roll)
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    return rz @ rx @ ry


def _draw_patient(rng: np.random.Generator) -> _Patient:
    grey = rng.uniform(36, 42)
    white = min(rng.uniform(24, 30), grey - 7)
    csf = rng.uniform(2, 10)
    atrophy = rng.uniform(0.35, 1.0) if rng.random() < 0.35 else rng.uniform(0.0, 0.2)
    scale = rng.uniform(0.86, 1.0) * rng.uniform(0.96, 1.04, 3)  # head size, per axis (the template is a large brain)
    deg = math.pi / 180
    rot = _rotation(rng.uniform(-8, 8) * deg, rng.uniform(-5, 20) * deg, rng.uniform(-5, 5) * deg)
    inv = np.linalg.inv(rot * scale[None, :])
    shift = np.array([rng.uniform(-6, 6), rng.uniform(-6, 6) - 17.0, 0.0])  # MNI y of the head's centre
    elastic = []
    for comp in range(3):
        for _ in range(2):
            w = 2 * math.pi / rng.uniform(50, 140, 3)
            elastic.append((comp, rng.uniform(0.8, 2.2), w, rng.uniform(0, 2 * math.pi, 3)))
    calcs = []
    if rng.random() < 0.6:  # pineal
        calcs.append(((0.0, -30.0, 2.0) + rng.normal(0, 1.0, 3), rng.uniform(1.2, 3.0), rng.uniform(150, 500)))
    if rng.random() < 0.5:  # choroid plexus glomera, in the atria of the lateral ventricles
        for side in (-1, 1):
            calcs.append(((side * 27.0, -40.0, 15.0) + rng.normal(0, 1.5, 3), rng.uniform(1.2, 2.8), rng.uniform(80, 250)))
    if rng.random() < 0.3:  # falx plaque
        calcs.append(((0.0, rng.uniform(-30, 40), rng.uniform(35, 60)), rng.uniform(1.5, 4), rng.uniform(150, 600)))
    return _Patient(grey, white, csf, atrophy, inv, shift, elastic, rng.uniform(3.5, 5.5), rng.uniform(4.0, 7.0),
                    rng.uniform(550, 950), rng.uniform(1900, 2500), rng.uniform(25, 45), calcs)



# -- the atlas at the composition step (1 mm, or 2 mm for coarse outputs), with what no patient changes --
@dataclass(frozen=True)
class _Level:
    step: int
    origin: np.ndarray  # MNI mm of voxel (0, 0, 0)
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    vent: np.ndarray
    brain: np.ndarray
    d_out: np.ndarray
    d_in: np.ndarray
    d_cav: np.ndarray
    surface: np.ndarray  # voxel indices
    skull_pattern: np.ndarray  # skull thickness (mm) added to the patient's base thickness
    scalp_pattern: np.ndarray  # temporalis muscles: thicker soft tissue laterally and low
    air: tuple  # (box, fraction): air cells of the skull base and the frontal sinus (where bone is)
    face: tuple  # (box, HU, fraction): orbits (globes, fat, walls), ethmoid cells, soft tissue of the face
    falx: tuple  # (box, fraction)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.gm.shape


AIR_CELLS = (((45.0, -38.0, -38.0), (11.0, 14.0, 12.0), True), ((-45.0, -38.0, -38.0), (11.0, 14.0, 12.0), True),
             ((0.0, 12.0, -30.0), (11.0, 10.0, 9.0), False), ((0.0, 64.0, 8.0), (13.0, 6.0, 10.0), False))


@functools.lru_cache(maxsize=2)
def _level(step: int) -> _Level:
    a = load_atlas()
    if step == 1:
        maps = [a.gm, a.wm, a.csf, a.vent, a.d_out, a.d_in, a.d_cav]
        surface = a.surface
    else:
        maps = [_block_mean(m).astype(F32) for m in (a.gm, a.wm, a.csf, a.vent, a.d_out, a.d_in, a.d_cav)]
        surface = np.unique(a.surface // 2, axis=0)
    gm, wm, csf, vent, d_out, d_in, d_cav = maps
    # the template is an average of 152 brains, so its sulci are shallower and blurrier than one
    # patient's: stretch the CSF fraction (0.1 -> 0, 0.7 -> 1), taking the difference from grey matter
    delta = np.clip((csf - F32(0.1)) / F32(0.6), 0, 1) - csf
    more, less = np.clip(delta, 0, None), np.clip(-delta, 0, None)
    take_gm = np.minimum(more, gm)
    take_wm = np.minimum(more - take_gm, wm)
    gm, wm, csf = gm - take_gm + less, wm - take_wm, csf + take_gm + take_wm - less
    origin = ORIGIN_MM + (step - 1) / 2.0
    lv = dict(step=step, origin=origin)
    full = tuple(slice(0, n) for n in gm.shape)
    x, y, z = _grid(full, lv)
    skull_pattern = (F32(3.0) * np.clip((F32(10.0) - z) / F32(40.0), 0, 1) + F32(1.2) * np.abs(y) / F32(90.0)
                     + F32(0.8) * np.cos(x / F32(23.0)) * np.cos(y / F32(31.0))).astype(F32)
    scalp_pattern = np.broadcast_to(F32(5.0) * np.clip((F32(25.0) - z) / F32(35.0), 0, 1)
                                    * np.clip((np.abs(x) - F32(35.0)) / F32(20.0), 0, 1), gm.shape).astype(F32)
    air_box = _box((0, 13, -20), 60, gm.shape, lv)
    ax, ay, az = _grid(air_box, lv)
    air = np.zeros([sl.stop - sl.start for sl in air_box], F32)
    for centre, radii, cells in AIR_CELLS:
        e = ((ax - F32(centre[0])) / F32(radii[0])) ** 2 + ((ay - F32(centre[1])) / F32(radii[1])) ** 2 \
            + ((az - F32(centre[2])) / F32(radii[2])) ** 2
        frac = _ramp((F32(1) - e) * F32(min(radii)), 2.0) * (d_out[air_box] > 5.0)
        if cells:  # honeycomb of small cells separated by thin septa
            cell = np.cos(ax * F32(1.3)) * np.cos(ay * F32(1.1) + F32(0.7)) * np.cos(az * F32(1.2) + F32(1.9))
            frac = frac * _ramp(F32(0.75) - np.abs(cell) * F32(3.0))
        air = np.maximum(air, frac)
    falx_box = _box((0, -20, 40), (3, 90, 50), gm.shape, lv)
    fx, fy, fz = _grid(falx_box, lv)
    falx = (_ramp(F32(0.6) - np.abs(fx), float(step)) * (fz > -5) * np.clip(csf[falx_box] * 2, 0, 1)
            * (vent[falx_box] < 0.2)).astype(F32)
    return _Level(step, origin, gm, wm, csf, vent, gm + wm + csf, d_out, d_in, d_cav, surface, skull_pattern,
                  scalp_pattern, (air_box, air), _face(gm.shape, lv, d_out), (falx_box, falx))


def _face(shape, lv, d_out) -> tuple:
    """Orbits and the ethmoid labyrinth in front of the anterior cranial fossa (MNI mm, approximate)."""
    box = _box((0, 58, -34), (50, 38, 20), shape, lv)
    x, y, z = _grid(box, lv)
    ell = lambda c, r: ((x - F32(c[0])) / F32(r[0])) ** 2 + ((y - F32(c[1])) / F32(r[1])) ** 2 + ((z - F32(c[2])) / F32(r[2])) ** 2
    w = float(lv["step"])
    soft = _ramp((F32(1) - ell((0, 52, -36), (50, 36, 18))) * F32(15), w)
    hu = np.full(soft.shape, 35.0, F32)
    for side in (-1, 1):
        wall = _ramp((F32(1) - ell((side * 28, 46, -32), (17, 26, 15))) * F32(15), w)
        fat = _ramp((F32(1) - ell((side * 28, 46, -32), (14.5, 23, 12.5))) * F32(13), w)
        globe = _ramp((F32(1) - ell((side * 32, 62, -31), (11.5, 11.5, 11.5))) * F32(11.5), w)
        lens = _ramp((F32(1) - ell((side * 32, 72.5, -31), (4, 1.8, 4))) * F32(2), w)
        hu = hu * (1 - wall) + F32(1000.0) * wall
        hu = hu * (1 - fat) + F32(-85.0) * fat
        hu = hu * (1 - globe) + F32(12.0) * globe
        hu = hu * (1 - lens) + F32(95.0) * lens
        soft = np.maximum(soft, wall)
    eth = _ramp((F32(1) - ell((0, 44, -34), (9, 20, 11))) * F32(9), w)
    cells = _ramp(F32(0.7) - np.abs(np.cos(x * F32(1.4)) * np.cos(y * F32(1.2)) * np.cos(z * F32(1.3) + F32(0.4))) * F32(3), w)
    hu = hu * (1 - eth) + (F32(-950.0) * cells + F32(700.0) * (1 - cells)) * eth
    frac = soft * (d_out[box] > 4.0)
    return box, hu.astype(F32), frac.astype(F32)



def _grid(box, lv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MNI mm coordinates (broadcastable) of a box of the level grid ``lv`` (a _Level or a dict)."""
    step, origin = (lv["step"], lv["origin"]) if isinstance(lv, dict) else (lv.step, lv.origin)
    return tuple((np.arange(sl.start, sl.stop, dtype=F32) * F32(step) + F32(origin[i])).reshape([-1 if j == i else 1 for j in range(3)])
                 for i, sl in enumerate(box))


def _box(centre, radius, shape, lv) -> tuple:
    step, origin = (lv["step"], lv["origin"]) if isinstance(lv, dict) else (lv.step, lv.origin)
    c = (np.asarray(centre, float) - origin) / step
    r = np.asarray(radius, float) / step
    lo = np.clip(np.floor(c - r), 0, np.array(shape) - 1).astype(int)
    hi = np.clip(np.ceil(c + r) + 1, 1, np.array(shape)).astype(int)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))



def _bone_geometry(lv: _Level, box, pat: _Patient, c_ea: float):
    """Per voxel of ``box``: skull thickness (mm) and the partial-volume fractions of the layers."""
    T = lv.skull_pattern[box] + F32(pat.skull_mm)  # thicker over the skull base, frontal and occipital bone
    scalp_t = lv.scalp_pattern[box] + F32(pat.scalp_mm)
    d_out, d_cav = lv.d_out[box], lv.d_cav[box]
    head = _ramp(T + scalp_t - d_cav, lv.step)
    skull = _ramp(T - d_cav, lv.step)  # inside the outer table
    inner = _ramp(F32(c_ea) - d_out, lv.step)  # inside the inner table
    return T, d_out, d_cav, scalp_t, head, skull, inner


def _sub_box(inner_box, outer_box):
    """(slices into the outer box, slices into the inner box's own array) of their overlap, or None."""
    a = tuple(slice(max(i.start, o.start) - o.start, min(i.stop, o.stop) - o.start) for i, o in zip(inner_box, outer_box))
    b = tuple(slice(max(i.start, o.start) - i.start, min(i.stop, o.stop) - i.start) for i, o in zip(inner_box, outer_box))
    return None if any(s.stop <= s.start for s in a) else (a, b)


def _compose(lv: _Level, box, pat: _Patient, c_ea: float) -> np.ndarray:
    """HU of the patient's head on a box of the level grid, before lesions."""
    gm, wm, csf = lv.gm[box], lv.wm[box], lv.csf[box]
    if pat.atrophy > 0:  # widened sulci: cortex next to sulcal CSF gives way to CSF
        give = F32(0.5 * pat.atrophy) * gm * np.clip((csf - lv.vent[box]) * 3, 0, 1)
        gm, csf = gm - give, csf + give
    brain = lv.brain[box]
    T, d_out, d_cav, scalp_t, head, skull, inner = _bone_geometry(lv, box, pat, c_ea)
    # bone: dense tables at both surfaces, lighter diploe between
    depth_in = np.maximum(d_out - F32(c_ea), 0)
    depth_out = np.maximum(T - d_cav, 0)
    u = F32(2) * depth_in / (depth_in + depth_out + F32(1e-3)) - F32(1)
    bone = F32(pat.diploe_hu) + F32(pat.table_hu - pat.diploe_hu) * (u * u)
    # scalp: skin and galea over a fat layer
    v = np.clip((d_cav - T) / scalp_t, 0, 1) - F32(0.55)
    scalp = F32(pat.scalp_hu) - F32(110.0) * np.exp(v * v * F32(-1 / 0.18**2))
    out = F32(AIR_HU) * (1 - head) + scalp * (head - skull) + bone * (skull - inner) + F32(pat.csf) * inner
    face_box, face_hu, face = lv.face
    ov = _sub_box(face_box, box)
    if ov is not None:  # the face in front of the skull base, outside the cranial cavity
        f = face[ov[1]] * (1 - inner[ov[0]])
        out[ov[0]] = out[ov[0]] * (1 - f) + face_hu[ov[1]] * f
    air_box, air = lv.air
    ov = _sub_box(air_box, box)
    if ov is not None:  # air cells, only where there is bone
        a = air[ov[1]] * np.clip((skull - inner)[ov[0]] * 2, 0, 1)
        out[ov[0]] = out[ov[0]] * (1 - a) + F32(AIR_HU + 50) * a
    hu = (gm * F32(pat.grey) + wm * F32(pat.white) + csf * F32(pat.csf)) + (1 - brain) * out
    if pat.bone_band_hu > 0:
        hu += _bone_band(lv, box, pat, c_ea) * np.maximum(brain, inner)
    falx_box, falx = lv.falx  # a thin dense dural line in the interhemispheric fissure
    ov = _sub_box(falx_box, box)
    if ov is not None:
        f = falx[ov[1]]
        hu[ov[0]] = hu[ov[0]] * (1 - f) + F32(48.0) * f
    for c, r, val in pat.calcs:  # physiological calcifications
        cb = _box(c, r + 2, lv.shape, lv)
        ov = _sub_box(cb, box)
        if ov is None:
            continue
        x, y, z = _grid(cb, lv)
        xb, yb, zb = x - F32(c[0]), y - F32(c[1]), z - F32(c[2])
        blob = _ramp(F32(r) - np.sqrt(xb * xb + yb * yb + zb * zb), lv.step)[ov[1]]
        hu[ov[0]] = hu[ov[0]] * (1 - blob) + F32(val) * blob
    return hu.astype(F32, copy=False)


#: MNI z (mm) above which the brightening beside bone is the calvarium's, and below which the skull
#: base's in full: the floors of the anterior and middle cranial fossae and the petrous ridges lie
#: below the first, the posterior fossa below the second
BAND_Z_CALVARIUM, BAND_Z_BASE = 0.0, -30.0


def _bone_band(lv: _Level, box, pat: _Patient, c_ea: float) -> np.ndarray:
    """HU added inside the skull beside bone (``randomise.bone_band_hu``): the patient's amplitude
    at the inner table, fading with the distance from it (extra-axial CSF ``c_ea - d_out``, brain
    ``c_ea + d_in``) over ``bone_band_mm``, in full at the skull base and ``bone_band_calvarium`` of it
    above (``BAND_Z_*``)."""
    d_out, d_in = lv.d_out[box], lv.d_in[box]
    dist = np.where(d_out > 0, np.maximum(F32(c_ea) - d_out, 0), F32(c_ea) + d_in)
    z = _grid(box, lv)[2]
    base = np.clip((F32(BAND_Z_CALVARIUM) - z) / F32(BAND_Z_CALVARIUM - BAND_Z_BASE), 0, 1)
    weight = F32(pat.bone_band_calvarium) + F32(1 - pat.bone_band_calvarium) * base
    return (F32(pat.bone_band_hu) * weight * np.exp(-dist / F32(pat.bone_band_mm))).astype(F32)


def _tissue_maps(lv: _Level, box, c_ea: float, pat: _Patient) -> dict[str, np.ndarray]:
    """Fractions of the tissue classes on a level box (sampled like the image, thresholded at 0.5)."""
    *_, head, skull, inner = _bone_geometry(lv, box, pat, c_ea)
    brain = lv.brain[box]
    return {"grey": lv.gm[box], "white": lv.wm[box], "parenchyma": lv.gm[box] + lv.wm[box], "csf": lv.csf[box] + (inner - brain).clip(0, 1),
            "ventricles": lv.vent[box], "bone": (skull - inner) * (1 - brain), "skull": (skull - inner) * (1 - brain),
            "brain": np.maximum(brain, inner), "head": head}



def template_brain_box() -> tuple[np.ndarray, np.ndarray]:
    """MNI mm of the lowest and highest corner of the template brain's bounding box."""
    lv = _level(1)
    idx = np.argwhere(lv.brain > 0.5)
    return idx.min(axis=0) * lv.step + lv.origin, idx.max(axis=0) * lv.step + lv.origin


def template_ventricle_centre() -> np.ndarray:
    """MNI mm of the template's ventricular CSF centroid."""
    lv = _level(1)
    return np.argwhere(lv.vent > 0.5).mean(axis=0) * lv.step + lv.origin

"""Synthetic head CT with hemorrhage, built on a real brain atlas, in a real dataset's folder layout.

The real datasets cannot be fetched here, so the pipeline is exercised on synthetic volumes that go
through the same ingestion path: NIfTI files in the Instance2022, BHSD or PhysioNet layout, read
back by ``prepare_dataset``. Synthesising images from anatomical maps with randomised geometry and
intensities is an established way to train models that must transfer to real scans (SynthSeg,
Billot et al., Medical Image Analysis 2023).

Anatomy (``ichseg.data.atlas``): the MNI ICBM152 2009a template's grey/white/CSF fractions
(gyri, sulci, deep grey nuclei, ventricles, cerebellum, brainstem as they are in a real brain).
Per patient: tissue HU with partial volumes (grey 36-42, white 24-30, CSF 2-10 HU), a random affine
(head size, yaw, roll, the tilt of the scan plane) and a smooth elastic deformation, ventricle
enlargement and widened sulci for the atrophic part of the cohort; outside the brain an
extra-axial CSF space, a skull with inner and outer tables and a lighter diploe whose thickness
varies, bone filling the skull base around the temporal lobes and the posterior fossa with air cells
(mastoid, sphenoid, frontal sinus), a scalp with its fat layer; physiological calcifications
(pineal, choroid plexus, falx) as hyperdense distractors and the falx as a thin dense line.

Hemorrhage (acute blood 50-90 HU), placed by anatomy, the subtype deciding where:
intraparenchymal - basal ganglia, thalamus, lobar white matter or cerebellum, lobulated, with a faint
oedema rim and mass effect (the neighbours pushed away); intraventricular - blood layering in the
dependent (posterior) part of the ventricles; subarachnoid - blood filling sulcal and cisternal CSF
of a region; subdural - a crescent between the inner table and the brain surface, following it;
epidural - a biconvex lens against the inner table. Volumes range from < 1 mL to > 60 mL.

CT formation: the composed 1 mm HU volume is resampled once onto the scanner grid (in-plane at up to
1 mm, then interpolated to 512 x 512 at 0.4-0.5 mm), slabs of the slice thickness are averaged from
1 mm samples (partial volume along z), then reconstruction kernel, cupping, calibration offset and
correlated noise. Each layout is its own "scanner" (``DOMAINS``), so training on one and testing on
another measures generalisation across domains. Everything is determined by the seed.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import ConfigError
from .atlas import ORIGIN_MM, _block_mean, load_atlas
from .layouts import SUBTYPES
from .volumes import write_nifti

#: bumped whenever the same seed would draw other volumes or labels (names the generated raw folders)
GENERATOR_VERSION = 2
#: label codes as BHSD's dataset.json
SUBTYPE_CODE = {"epidural": 1, "intraparenchymal": 2, "intraventricular": 3, "subarachnoid": 4, "subdural": 5}
BLOOD_HU = (50.0, 90.0)  # acute blood
#: a noise-free slab reading above this holds bone: no mixture of blood with brain or CSF reaches it
VISIBLE_BLOOD_MAX_HU = 180.0
AIR_HU = -1000.0
F32 = np.float32


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
                   {s: .2 for s in SUBTYPES}, 0.10, (False, False, True), "uint16", 1.0, -1024.0, "subtype"),
    # PhysioNet CT-ICH: a traumatic-injury cohort (more extra-axial blood), ~half without hemorrhage,
    # older-looking images (smoother kernel, more noise and cupping, -4 HU), uncompressed .nii
    "physionet": Domain(205.0, 5.0, (24, 32), 8.0, -4.0, 12.0, 0.55,
                        {"subdural": .30, "epidural": .20, "intraparenchymal": .20, "subarachnoid": .20,
                         "intraventricular": .10}, 0.50, (False, False, False), "int16", 1.0, 0.0, "binary",
                        ".nii"),
}


@dataclass
class PhantomVolume:
    """One generated volume in RAS+ voxel order (X, Y, Z)."""

    hu: np.ndarray  # float32 HU, noise and all
    labels: np.ndarray  # uint8, SUBTYPE_CODE per voxel (0 background)
    affine: np.ndarray  # RAS+ voxel -> mm
    spacing: tuple[float, float, float]
    lesions: list[dict] = field(default_factory=list)  # subtype, site, blood_hu, voxels, ml
    tissue: dict[str, np.ndarray] = field(default_factory=dict)  # with_tissue: boolean maps per class


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


# -- lesions -----------------------------------------------------------------------------------------
IPH_SITES = {  # MNI mm, weight (hypertensive sites first, then lobar and cerebellar)
    "putamen": ((25.0, 3.0, 2.0), 0.35), "thalamus": ((12.0, -18.0, 7.0), 0.2),
    "lobar": (None, 0.3), "cerebellum": ((22.0, -62.0, -32.0), 0.15),
}
SAH_SITES = {"sylvian": (44.0, 5.0, -4.0), "basal_cisterns": (0.0, -8.0, -18.0), "interhemispheric": (0.0, 25.0, 30.0),
             "convexity": None}


@dataclass
class _Lesion:
    subtype: str
    site: str
    box: tuple  # slices into the atlas grid
    frac: np.ndarray  # blood fraction inside box
    blood_hu: float
    edema: np.ndarray | None = None
    push: tuple | None = None  # (centre atlas mm, sigma mm, strength) of the mass effect


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


def _draw_lesion(sub: str, rng: np.random.Generator, lv: _Level, z_range: tuple[float, float], c_ea: float) -> _Lesion | None:
    zlo, zhi = z_range
    if sub == "intraparenchymal":
        names = list(IPH_SITES)
        w = np.array([IPH_SITES[k][1] for k in names])
        site = str(rng.choice(names, p=w / w.sum()))
        vol_ml = math.exp(rng.uniform(math.log(0.4), math.log(80.0)))
        R = (3 * vol_ml * 1000 / (4 * math.pi)) ** (1 / 3) / 1.25  # the mass effect enlarges it by ~1.25
        if site == "lobar":
            k = 3 if lv.step == 1 else 2
            cand = np.argwhere((lv.wm[::k, ::k, ::k] > 0.8) & (lv.d_in[::k, ::k, ::k] > min(R, 20) + 4)) * k * lv.step + lv.origin
            cand = cand[(cand[:, 2] > zlo + 5) & (cand[:, 2] < zhi - 5)]
            if not len(cand):
                return None
            c = cand[rng.integers(len(cand))]
        else:
            c = np.array(IPH_SITES[site][0]) * np.array([rng.choice([-1, 1]), 1, 1]) + rng.normal(0, 3, 3)
        box = _box(c, 1.5 * R + 8, lv.shape, lv)
        x, y, z = _grid(box, lv)
        dx, dy, dz = x - F32(c[0]), y - F32(c[1]), z - F32(c[2])
        dist = np.sqrt(dx * dx + dy * dy + dz * dz) + F32(1e-3)
        r_eff = F32(R)
        for _ in range(4):  # lobulation: low-order bumps on the sphere
            u = rng.normal(size=3)
            u /= np.linalg.norm(u)
            r_eff = r_eff + F32(R * rng.uniform(0.08, 0.2)) * np.cos(F32(rng.integers(2, 5)) * (dx * F32(u[0]) + dy * F32(u[1]) + dz * F32(u[2])) / dist * F32(math.pi / 2) + F32(rng.uniform(0, 2 * math.pi)))
        par = lv.gm[box] + lv.wm[box]
        frac = _ramp(r_eff - dist, lv.step) * np.clip(par * 1.5, 0, 1)
        edema = _ramp(r_eff * F32(1.2) + F32(2.5) - dist, 3.0) * par
        return _Lesion(sub, site, box, frac, rng.uniform(55, 85), edema, (c, 1.3 * R + 2, 0.3))
    if sub == "intraventricular":
        fill = rng.uniform(0.08, 0.6)
        side = int(rng.choice([-1, 1, 0]))
        box = _box((0, -13, 8), (36, 46, 31), lv.shape, lv)
        x, y, z = _grid(box, lv)
        v = lv.vent[box]
        ys = np.broadcast_to(y, v.shape)[v > 0.3]
        level = float(np.quantile(ys, fill))  # fluid level along the posterior (dependent) axis
        sel = 1.0 if side == 0 else _ramp(x * F32(side), lv.step)
        frac = np.clip(v * 1.6, 0, 1) * _ramp(F32(level) - y, lv.step) * sel
        return _Lesion(sub, "ventricles", box, frac.astype(F32), rng.uniform(55, 80))
    if sub == "subarachnoid":
        site = str(rng.choice(list(SAH_SITES)))
        Rs = math.exp(rng.uniform(math.log(10), math.log(40)))
        if site == "convexity":
            surf = lv.surface * lv.step + lv.origin
            surf = surf[(surf[:, 2] > zlo) & (surf[:, 2] < zhi)]
            if not len(surf):
                return None
            c = surf[rng.integers(len(surf))]
        else:
            c = np.array(SAH_SITES[site]) * np.array([rng.choice([-1, 1]), 1, 1]) + rng.normal(0, 3, 3)
        box = _box(c, Rs + 3, lv.shape, lv)
        x, y, z = _grid(box, lv)
        dist = np.sqrt((x - F32(c[0])) ** 2 + (y - F32(c[1])) ** 2 + (z - F32(c[2])) ** 2)
        space = np.clip((lv.csf[box] - lv.vent[box]) * 2.5, 0, 1) + _ramp(F32(c_ea) - lv.d_out[box], lv.step) * (lv.brain[box] < 0.5)
        frac = np.clip(space, 0, 1) * _ramp(F32(Rs) - dist, 4.0)
        return _Lesion(sub, site, box, frac.astype(F32), rng.uniform(50, 70))
    if sub in ("subdural", "epidural"):
        surf = lv.surface * lv.step + lv.origin
        surf = surf[(surf[:, 2] > max(zlo, 0) + 5) & (surf[:, 2] < zhi - 5) & (np.abs(surf[:, 0]) > 25)]  # lateral convexity
        if not len(surf):
            return None
        c = surf[rng.integers(len(surf))]
        if sub == "subdural":
            T, L = math.exp(rng.uniform(math.log(2.0), math.log(12.0))), rng.uniform(35, 70)
        else:
            T, L = math.exp(rng.uniform(math.log(4.0), math.log(22.0))), rng.uniform(18, 36)
        box = _box(c, L + 2, lv.shape, lv)
        x, y, z = _grid(box, lv)
        s = np.sqrt((x - F32(c[0])) ** 2 + (y - F32(c[1])) ** 2 + ((z - F32(c[2])) * F32(1.8)) ** 2) / F32(L)  # longer than tall
        if sub == "subdural":  # thin and long: nearly uniform thickness, tapering at the ends
            t = F32(T) * np.sqrt(np.clip(1 - s**4, 0, 1))
        else:  # lens: thickest in the middle
            t = F32(T) * np.sqrt(np.clip(1 - s**2, 0, 1))
        side = math.copysign(1.0, c[0])
        frac = _ramp(t - lv.d_in[box], lv.step) * _ramp(F32(c_ea + 0.5) - lv.d_out[box], lv.step) * (t > 0.5) * _ramp(x * F32(side) - 12, 8.0)  # lateral: off the vertex and the falx
        return _Lesion(sub, "convexity", box, frac.astype(F32), rng.uniform(58, 88))
    raise ConfigError(f"phantom: unknown subtype {sub!r}")


# -- the volume --------------------------------------------------------------------------------------
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


def make_volume(rng: np.random.Generator, domain: Domain, in_plane: int = 512, n_slices: int | None = None,
                positive: bool | None = None, with_tissue: bool = False) -> PhantomVolume:
    """Generate one head CT volume of ``domain``; ``positive`` forces a patient with/without blood.

    ``with_tissue``: also return boolean maps of the tissue classes (brain parenchyma, csf,
    ventricles, bone, skull) on the output grid, for tests and the realism statistics.
    """
    n = int(in_plane)
    nz = int(n_slices if n_slices is not None else rng.integers(domain.slices[0], domain.slices[1] + 1))
    sp, th = domain.fov_mm / n, domain.thickness_mm
    pat = _draw_patient(rng)
    c_ea = 1.0 + 2.5 * pat.atrophy  # extra-axial CSF (wider with atrophy)

    # -- scanner grid: in-plane at >= ~0.8 mm (then upsampled by powers of two), 1 mm sub-slices --------
    up = 0
    while n % (2 ** (up + 1)) == 0 and sp * 2 ** (up + 1) <= 1.0:
        up += 1
    m, h = n >> up, sp * 2**up
    lv = _level(1 if h < 1.5 else 2)  # compose at 1 mm, or at 2 mm when the scan's pixels are coarse
    sub = max(1, int(math.ceil(th / (1.25 * lv.step) - 0.01)))  # sub-slices averaged into each slice
    span = nz * th
    z_top = min(95.0, 22.0 + span / 2) + rng.uniform(-4, 4)  # head CT: skull base to vertex
    z0 = z_top - span  # bottom edge of the slab stack (scanner mm)
    xs = ((np.arange(m, dtype=F32) + F32(0.5)) * F32(h) - F32(domain.fov_mm / 2)).reshape(-1, 1, 1)
    zs = (z0 + (np.arange(nz * sub, dtype=F32) + F32(0.5)) * F32(th / sub)).reshape(1, 1, -1)
    ys = xs.reshape(1, -1, 1)
    R, t = pat.rot.astype(F32), pat.shift
    q = [R[c, 0] * xs + R[c, 1] * ys + (R[c, 2] * zs + F32(t[c])) for c in range(3)]  # atlas MNI mm
    for comp, amp, w, ph in pat.elastic:  # smooth elastic deformation (separable products)
        q[comp] = q[comp] + F32(amp) * np.cos(F32(w[0]) * xs + F32(ph[0])) * np.cos(F32(w[1]) * ys + F32(ph[1])) * np.cos(F32(w[2]) * zs + F32(ph[2]))
    q = [np.broadcast_to(a, (m, m, nz * sub)) for a in q]

    # -- lesions (drawn in atlas space, where the slab reaches) ----------------------------------------
    z_range = (float(q[2][m // 2, m // 2, 0]), float(q[2][m // 2, m // 2, -1]))
    if positive is None:
        positive = rng.random() >= domain.negative_share
    names = list(domain.subtype_mix)
    probs = np.array([domain.subtype_mix[s] for s in names], float)
    lesions: list[_Lesion] = []
    for _ in range(int(rng.choice([1, 1, 1, 2, 2, 3])) if positive else 0):
        sub_t = str(rng.choice(names, p=probs / probs.sum()))
        les = _draw_lesion(sub_t, rng, lv, z_range, c_ea)
        if les is not None and les.frac.max() >= 0.5:
            lesions.append(les)

    # -- radial magnifications: enlarged ventricles (atrophy), mass effect of parenchymal hematomas -----
    pushes = [(np.array([0.0, -10.0, 14.0]), 24.0, 0.4 * pat.atrophy)] if pat.atrophy > 0.3 else []
    pushes += [les.push for les in lesions if les.push is not None]
    for c, sigma, k in pushes:
        d = [q[i] - F32(c[i]) for i in range(3)]
        f = F32(k) * np.exp((d[0] * d[0] + d[1] * d[1] + d[2] * d[2]) * F32(-0.5 / sigma**2))
        q = [q[i] - d[i] * f for i in range(3)]
    idx = [(q[i] - F32(lv.origin[i])) * F32(1.0 / lv.step) for i in range(3)]  # level voxel coordinates

    # -- compose HU on the atlas box the scan reaches -------------------------------------------------
    lo = [max(int(math.floor(float(a.min()))) - 2, 0) for a in idx]
    hi = [min(int(math.ceil(float(a.max()))) + 3, s) for a, s in zip(idx, lv.shape)]
    box = tuple(slice(a, max(b, a + 2)) for a, b in zip(lo, hi))
    hu = _compose(lv, box, pat, c_ea)
    for les in lesions:
        ov = _sub_box(les.box, box)
        if ov is None:
            continue
        bb, lb = ov
        f = les.frac[lb]
        if les.edema is not None:
            hu[bb] -= F32(rng.uniform(5, 9)) * np.clip(les.edema[lb] - f, 0, 1)
        hu[bb] = hu[bb] * (1 - f) + F32(les.blood_hu) * f
    coords = np.stack([idx[i] - F32(box[i].start) for i in range(3)])
    vol = ndimage.map_coordinates(hu, coords, order=1, mode="constant", cval=AIR_HU, prefilter=False)

    def slab(a: np.ndarray) -> np.ndarray:  # 1 mm sub-slices -> slices of the dataset's thickness, then in-plane size
        a = a.reshape(m, m, nz, sub).mean(axis=3, dtype=F32)
        return _up(a, up)

    img = vol.reshape(m, m, nz, sub).mean(axis=3, dtype=F32)
    del vol
    # an annotator outlines blood where it shows: a slab whose mean reads above any blood (bone in its
    # partial volume, at the skull base) shows bone, so it is not labelled even when half of it is blood
    visible = _up(img, up) <= F32(VISIBLE_BLOOD_MAX_HU)
    labels = np.zeros((n, n, nz), np.uint8)
    best = np.zeros((n, n, nz), F32)
    info = []
    for les in lesions:
        fr = np.zeros(coords.shape[1:], F32)
        lo_b = np.array([s.start for s in les.box], F32) - np.array([s.start for s in box], F32)
        hi_b = np.array([s.stop for s in les.box], F32) - np.array([s.start for s in box], F32) - 1
        inside = np.ones(coords.shape[1:], bool)
        for i in range(3):
            inside &= (coords[i] >= lo_b[i]) & (coords[i] <= hi_b[i])
        if inside.any():
            pts = coords[:, inside] - lo_b[:, None]
            fr[inside] = ndimage.map_coordinates(les.frac, pts, order=1, mode="nearest", prefilter=False)
        fr = slab(fr)
        code = SUBTYPE_CODE[les.subtype]
        fr = np.where(visible, fr, F32(0.0))
        take = (fr >= 0.5) & (fr > best)
        labels[take] = code
        best = np.maximum(best, fr)
        vox = int((fr >= 0.5).sum())
        if vox:
            info.append({"subtype": les.subtype, "site": les.site, "blood_hu": float(les.blood_hu), "voxels": vox,
                         "ml": round(vox * sp * sp * th / 1000.0, 3)})
    for i in info:  # a later lesion can cover an earlier one: count what the labels show
        i["voxels"] = int((labels == SUBTYPE_CODE[i["subtype"]]).sum()) if sum(j["subtype"] == i["subtype"] for j in info) == 1 else i["voxels"]

    # -- reconstruction kernel, cupping, offset, noise (on the working grid), then interpolation to n x n --
    img = ndimage.gaussian_filter(img, sigma=(domain.kernel_mm / h, domain.kernel_mm / h, 0), mode="nearest")
    head = img > -300
    cx = (np.arange(m, dtype=F32) - F32((m - 1) / 2)) * F32(h / 85.0)
    rho2 = cx[:, None] ** 2 + cx[None, :] ** 2
    img += F32(domain.hu_offset) - F32(domain.cupping_hu) * np.clip(1 - rho2, 0, 1)[:, :, None] * head
    noise = rng.standard_normal(img.shape, dtype=F32)
    if up:  # linear 2x interpolation correlates the noise over ~2 pixels (~0.9 mm, a CT-like grain) and
        noise *= F32(1.0 / 0.625**up)  # scales its standard deviation by 0.625 per step: undone here
    elif 0.45 / sp > 0.3:
        noise = ndimage.gaussian_filter(noise, sigma=(0.45 / sp, 0.45 / sp, 0), mode="wrap")
        noise *= F32(1.0 / max(float(noise.std()), 1e-6))
    img += noise * F32(domain.noise_hu)
    del noise
    img = np.clip(_up(img, up), -1024, 3071).astype(F32, copy=False)

    affine = np.diag([sp, sp, th, 1.0])
    affine[:3, 3] = [-(n - 1) / 2 * sp, -(n - 1) / 2 * sp, z0 + th / 2]
    tissue = {}
    if with_tissue:
        maps = _tissue_maps(lv, box, c_ea, pat)
        for name, a in maps.items():
            tissue[name] = slab(ndimage.map_coordinates(a, coords, order=1, mode="constant", cval=0.0, prefilter=False)) >= 0.5
        tissue["blood"] = labels > 0
    return PhantomVolume(img, labels, affine, (sp, sp, th), info, tissue)


def _up(a: np.ndarray, times: int) -> np.ndarray:
    for _ in range(times):
        a = _upsample2(a)
    return np.ascontiguousarray(a)


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


def _tissue_maps(lv: _Level, box, c_ea: float, pat: _Patient) -> dict[str, np.ndarray]:
    """Fractions of the tissue classes on a level box (sampled like the image, thresholded at 0.5)."""
    *_, head, skull, inner = _bone_geometry(lv, box, pat, c_ea)
    brain = lv.brain[box]
    return {"grey": lv.gm[box], "white": lv.wm[box], "parenchyma": lv.gm[box] + lv.wm[box], "csf": lv.csf[box] + (inner - brain).clip(0, 1),
            "ventricles": lv.vent[box], "bone": (skull - inner) * (1 - brain), "skull": (skull - inner) * (1 - brain),
            "brain": np.maximum(brain, inner), "head": head}


def _store(vol: PhantomVolume, domain: Domain) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RAS+ arrays -> the layout's stored voxel order and affine."""
    hu, lab, aff = vol.hu, vol.labels, vol.affine.copy()
    for axis, flip in enumerate(domain.flips):
        if flip:
            hu, lab = np.flip(hu, axis), np.flip(lab, axis)
            aff[:3, 3] += aff[:3, axis] * (hu.shape[axis] - 1)
            aff[:3, axis] *= -1
    return np.ascontiguousarray(hu), np.ascontiguousarray(lab), aff


def phantom_case(layout: str, seed: int, index: int, in_plane: int = 512,
                 slices: tuple[int, int] | None = None, with_tissue: bool = False) -> PhantomVolume:
    """The ``index``-th volume ``write_phantom(out, layout, cases, seed, ...)`` writes (RAS+, before storage)."""
    domain = DOMAINS[layout]
    lo, hi = slices or domain.slices
    rng = np.random.default_rng([seed, list(DOMAINS).index(layout), index])
    return make_volume(rng, domain, in_plane, int(rng.integers(lo, hi + 1)), with_tissue=with_tissue)


def _hex(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(list("0123456789abcdef"), size=n))


def write_phantom(out: str | Path, layout: str, cases: int = 10, seed: int = 0, *, in_plane: int = 512,
                  slices: int | tuple[int, int] | None = None) -> Path:
    """Write ``cases`` phantom volumes into ``out`` in ``layout``'s folder structure; return ``out``.

    ``in_plane``: pixels per side (the real datasets are 512); ``slices``: a fixed count or a
    (min, max) range (default: the layout's own range, 24-36).
    """
    if layout not in DOMAINS:
        raise ConfigError(f"layout: unknown value {layout!r}; known: {', '.join(DOMAINS)}")
    if isinstance(cases, bool) or not isinstance(cases, (int, np.integer)) or cases < 1:
        raise ConfigError(f"cases: must be an integer >= 1, got {cases!r}")
    if not 16 <= int(in_plane) <= 1024:
        raise ConfigError(f"in_plane: must be in [16, 1024], got {in_plane!r}")
    domain = DOMAINS[layout]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids_rng = np.random.default_rng([seed, 7])
    lo, hi = (slices, slices) if isinstance(slices, (int, np.integer)) else (slices or domain.slices)
    if not 2 <= lo <= hi <= 512:
        raise ConfigError(f"slices: need 2 <= min <= max <= 512, got {slices!r}")
    csv_rows = []
    patient = None
    for i in range(int(cases)):
        vol = phantom_case(layout, seed, i, in_plane, (lo, hi))
        hu, lab, aff = _store(vol, domain)
        if domain.labels == "binary":
            lab = (lab > 0).astype(np.uint8)
        if layout == "instance2022":
            img_p, msk_p = out / "train_2" / "data" / f"{i + 1:03d}.nii.gz", out / "train_2" / "label" / f"{i + 1:03d}.nii.gz"
        elif layout == "bhsd":
            # about one patient in five has a second series (BHSD groups series by the first RSNA id)
            if patient is None or ids_rng.random() > 0.2:
                patient = f"ID_{_hex(ids_rng, 9)}"
            name = f"{patient}_ID_{_hex(ids_rng, 10)}.nii.gz"
            part = "Tr" if i % 2 == 0 else "Ts"
            img_p, msk_p = out / f"images{part}" / name, out / f"labels{part}" / name
        else:
            num = 49 + i
            img_p, msk_p = out / "ct_scans" / f"{num:03d}.nii", out / "masks" / f"{num:03d}.nii"
            present = np.stack([(vol.labels == SUBTYPE_CODE[s]).any(axis=(0, 1)) for s in SUBTYPES], 1)
            if domain.flips[2]:
                present = present[::-1]
            for s_idx, flags in enumerate(present):
                csv_rows.append([num, s_idx + 1, *map(int, flags[[2, 1, 3, 0, 4]]), int(not flags.any()), 0])
        write_nifti(img_p, hu, aff, dtype=domain.dtype, slope=domain.slope, inter=domain.inter)
        write_nifti(msk_p, lab, aff, dtype=np.uint8)
    if layout == "bhsd":
        from ..utils.atomic import atomic_write_json

        atomic_write_json(out / "dataset.json", {
            "name": "BHSD phantom", "channel_names": {"0": "CT"}, "file_ending": ".nii.gz",
            "labels": {"background": 0, **SUBTYPE_CODE}, "numTraining": (int(cases) + 1) // 2,
        })
    if layout == "physionet":
        import pandas as pd

        from ..utils.atomic import atomic_write_text

        cols = ["PatientNumber", "SliceNumber", "Intraventricular", "Intraparenchymal", "Subarachnoid",
                "Epidural", "Subdural", "No_Hemorrhage", "Fracture_Yes_No"]
        atomic_write_text(out / "hemorrhage_diagnosis_raw_ct.csv", pd.DataFrame(csv_rows, columns=cols).to_csv(index=False))
    return out

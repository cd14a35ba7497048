"""Hemorrhage (acute blood 50-90 HU), placed by anatomy, the subtype deciding where.

intraparenchymal - basal ganglia, thalamus, lobar white matter or cerebellum, lobulated, with a faint
oedema rim and mass effect (the neighbours pushed away); intraventricular - blood layering in the
dependent (posterior) part of the ventricles; subarachnoid - blood filling sulcal and cisternal CSF
of a region; subdural - a crescent between the inner table and the brain surface, following it;
epidural - a biconvex lens against the inner table. Volumes range from < 1 mL to > 60 mL.

``draw_lesion`` reads only tissue maps on a grid in MNI millimetres (``step``, ``origin``, ``gm``,
``wm``, ``csf``, ``vent``, ``brain``, ``d_in``, ``d_out``, ``surface``): the atlas level of the
phantom, or the maps of a real head (``ichseg.data.realvolume``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError
from ..layouts import BHSD
from .anatomy import F32, _box, _grid, _ramp

#: label codes as BHSD's dataset.json
SUBTYPE_CODE = {name: code for code, name in sorted(BHSD.DEFAULT_LABELS.items())}
BLOOD_HU = (50.0, 90.0)  # acute blood
#: a noise-free slab reading above this holds bone: no mixture of blood with brain or CSF reaches it
VISIBLE_BLOOD_MAX_HU = 180.0


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
    blood_map: np.ndarray | None = None  # HU of the blood per box voxel (heterogeneous bleeds), else blood_hu
    rim: np.ndarray | None = None  # HU subtracted around the bleed (perihematomal oedema), per box voxel



def _intraparenchymal(rng: np.random.Generator, lv, z_range: tuple[float, float], c_ea: float) -> _Lesion | None:
    zlo, zhi = z_range
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
    return _Lesion("intraparenchymal", site, box, frac, rng.uniform(55, 85), edema, (c, 1.3 * R + 2, 0.3))


def _intraventricular(rng: np.random.Generator, lv, z_range: tuple[float, float], c_ea: float) -> _Lesion | None:
    fill = rng.uniform(0.08, 0.6)
    side = int(rng.choice([-1, 1, 0]))
    box = _box((0, -13, 8), (36, 46, 31), lv.shape, lv)
    x, y, z = _grid(box, lv)
    v = lv.vent[box]
    ys = np.broadcast_to(y, v.shape)[v > 0.3]
    if not ys.size:
        return None
    level = float(np.quantile(ys, fill))  # fluid level along the posterior (dependent) axis
    sel = 1.0 if side == 0 else _ramp(x * F32(side), lv.step)
    frac = np.clip(v * 1.6, 0, 1) * _ramp(F32(level) - y, lv.step) * sel
    return _Lesion("intraventricular", "ventricles", box, frac.astype(F32), rng.uniform(55, 80))


def _subarachnoid(rng: np.random.Generator, lv, z_range: tuple[float, float], c_ea: float) -> _Lesion | None:
    zlo, zhi = z_range
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
    return _Lesion("subarachnoid", site, box, frac.astype(F32), rng.uniform(50, 70))


#: thickness T (mm, log-uniform range) and half-length L (mm) of the extra-axial collections
EXTRA_AXIAL = {"subdural": ((2.0, 12.0), (35.0, 70.0), 4, (58.0, 88.0)),  # thin and long: nearly uniform, tapering ends
               "epidural": ((4.0, 22.0), (18.0, 36.0), 2, (58.0, 88.0))}  # lens: thickest in the middle


def _extra_axial(sub: str, rng: np.random.Generator, lv, z_range: tuple[float, float], c_ea: float) -> _Lesion | None:
    zlo, zhi = z_range
    surf = lv.surface * lv.step + lv.origin
    surf = surf[(surf[:, 2] > max(zlo, 0) + 5) & (surf[:, 2] < zhi - 5) & (np.abs(surf[:, 0]) > 25)]  # lateral convexity
    if not len(surf):
        return None
    c = surf[rng.integers(len(surf))]
    (t_lo, t_hi), (l_lo, l_hi), power, blood = EXTRA_AXIAL[sub]
    T, L = math.exp(rng.uniform(math.log(t_lo), math.log(t_hi))), rng.uniform(l_lo, l_hi)
    box = _box(c, L + 2, lv.shape, lv)
    x, y, z = _grid(box, lv)
    s = np.sqrt((x - F32(c[0])) ** 2 + (y - F32(c[1])) ** 2 + ((z - F32(c[2])) * F32(1.8)) ** 2) / F32(L)  # longer than tall
    t = F32(T) * np.sqrt(np.clip(1 - s**power, 0, 1))
    side = math.copysign(1.0, c[0])
    frac = _ramp(t - lv.d_in[box], lv.step) * _ramp(F32(c_ea + 0.5) - lv.d_out[box], lv.step) * (t > 0.5) * _ramp(x * F32(side) - 12, 8.0)  # lateral: off the vertex and the falx
    return _Lesion(sub, "convexity", box, frac.astype(F32), rng.uniform(*blood))


DRAW = {"intraparenchymal": _intraparenchymal, "intraventricular": _intraventricular, "subarachnoid": _subarachnoid,
        "subdural": lambda *a: _extra_axial("subdural", *a), "epidural": lambda *a: _extra_axial("epidural", *a)}


def draw_lesion(sub: str, rng: np.random.Generator, lv, z_range: tuple[float, float], c_ea: float) -> _Lesion | None:
    """One lesion of subtype ``sub`` on the tissue maps ``lv`` (see the module docstring), reaching the
    MNI z range ``z_range``; ``c_ea``: width (mm) of the extra-axial CSF. None when nothing fits."""
    if sub not in DRAW:
        raise ConfigError(f"phantom: unknown subtype {sub!r}")
    return DRAW[sub](rng, lv, z_range, c_ea)

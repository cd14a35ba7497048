"""One synthetic head CT volume, phase by phase: draw the patient and the scanner grid, sample the
atlas where the slabs reach, draw the lesions, deform (atrophy, mass effect), compose and blend the
HU, average the slabs, label the blood that shows, reconstruct. Everything is determined by the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from . import lesions as lesions_mod
from .anatomy import AIR_HU, F32, _compose, _draw_patient, _Patient, _sub_box, _tissue_maps
from .artefacts import reconstruct_varied
from .bleeds import vary_lesion
from .lesions import SUBTYPE_CODE, _Lesion, draw_lesion
from .randomise import Randomise, gravity_normal, vary_domain, vary_patient
from .scanner import DOMAIN_STREAM, DOMAINS, Domain, ScanGrid, _up, reconstruct, sample_points, scan_grid


@dataclass
class PhantomVolume:
    """One generated volume in RAS+ voxel order (X, Y, Z)."""

    hu: np.ndarray  # float32 HU, noise and all
    labels: np.ndarray  # uint8, SUBTYPE_CODE per voxel (0 background)
    affine: np.ndarray  # RAS+ voxel -> mm
    spacing: tuple[float, float, float]
    lesions: list[dict] = field(default_factory=list)  # subtype, site, blood_hu, voxels, ml
    tissue: dict[str, np.ndarray] = field(default_factory=dict)  # with_tissue: boolean maps per class



def _atlas_points(grid: ScanGrid, domain: Domain, pat: _Patient) -> list[np.ndarray]:
    """Atlas MNI mm of every sub-sample: the head's pose and size, then a smooth elastic deformation."""
    xs, ys, zs = sample_points(grid, domain)
    R, t = pat.rot.astype(F32), pat.shift
    q = [R[c, 0] * xs + R[c, 1] * ys + (R[c, 2] * zs + F32(t[c])) for c in range(3)]
    for comp, amp, w, ph in pat.elastic:  # separable products of cosines
        q[comp] = q[comp] + F32(amp) * np.cos(F32(w[0]) * xs + F32(ph[0])) * np.cos(F32(w[1]) * ys + F32(ph[1])) * np.cos(F32(w[2]) * zs + F32(ph[2]))
    return [np.broadcast_to(a, (grid.m, grid.m, grid.nz * grid.sub)) for a in q]


def _draw_lesions(rng: np.random.Generator, domain: Domain, grid: ScanGrid, q: list, positive: bool | None,
                  c_ea: float) -> list[_Lesion]:
    """The patient's lesions, drawn in atlas space where the slab stack reaches."""
    m = grid.m
    z_range = (float(q[2][m // 2, m // 2, 0]), float(q[2][m // 2, m // 2, -1]))
    if positive is None:
        positive = rng.random() >= domain.negative_share
    names = list(domain.subtype_mix)
    probs = np.array([domain.subtype_mix[s] for s in names], float)
    out: list[_Lesion] = []
    for _ in range(int(rng.choice([1, 1, 1, 2, 2, 3])) if positive else 0):
        sub_t = str(rng.choice(names, p=probs / probs.sum()))
        les = draw_lesion(sub_t, rng, grid.lv, z_range, c_ea)
        if les is not None and les.frac.max() >= 0.5:
            out.append(les)
    return out


def _deform(q: list, pat: _Patient, lesions: list[_Lesion], lv) -> list[np.ndarray]:
    """Radial magnifications (enlarged ventricles of atrophy, mass effect of parenchymal hematomas);
    returns the level voxel coordinates of every sub-sample."""
    pushes = [(np.array([0.0, -10.0, 14.0]), 24.0, 0.4 * pat.atrophy)] if pat.atrophy > 0.3 else []
    pushes += [les.push for les in lesions if les.push is not None]
    for c, sigma, k in pushes:
        d = [q[i] - F32(c[i]) for i in range(3)]
        f = F32(k) * np.exp((d[0] * d[0] + d[1] * d[1] + d[2] * d[2]) * F32(-0.5 / sigma**2))
        q = [q[i] - d[i] * f for i in range(3)]
    return [(q[i] - F32(lv.origin[i])) * F32(1.0 / lv.step) for i in range(3)]


def _render(rng: np.random.Generator, lv, idx: list, pat: _Patient, c_ea: float, lesions: list[_Lesion]):
    """HU composed on the atlas box the scan reaches, blood blended in, sampled at every sub-sample:
    (samples, their coordinates in the box, the box)."""
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
        if les.rim is not None:
            hu[bb] -= les.rim[lb]
        if les.blood_map is None:
            hu[bb] = hu[bb] * (1 - f) + F32(les.blood_hu) * f
        else:
            hu[bb] = hu[bb] * (1 - f) + les.blood_map[lb] * f
    coords = np.stack([idx[i] - F32(box[i].start) for i in range(3)])
    vol = ndimage.map_coordinates(hu, coords, order=1, mode="constant", cval=AIR_HU, prefilter=False)
    return vol, coords, box


def _lesion_fraction(les: _Lesion, coords: np.ndarray, box) -> np.ndarray:
    """A lesion's blood fraction at every sub-sample (0 outside its box)."""
    fr = np.zeros(coords.shape[1:], F32)
    lo_b = np.array([s.start for s in les.box], F32) - np.array([s.start for s in box], F32)
    hi_b = np.array([s.stop for s in les.box], F32) - np.array([s.start for s in box], F32) - 1
    inside = np.ones(coords.shape[1:], bool)
    for i in range(3):
        inside &= (coords[i] >= lo_b[i]) & (coords[i] <= hi_b[i])
    if inside.any():
        pts = coords[:, inside] - lo_b[:, None]
        fr[inside] = ndimage.map_coordinates(les.frac, pts, order=1, mode="nearest", prefilter=False)
    return fr


def _labels(lesions: list[_Lesion], coords: np.ndarray, box, grid: ScanGrid, visible: np.ndarray):
    """Per output voxel the subtype code of the lesion with the largest blood fraction >= 0.5 where
    blood shows, and per lesion what the labels show: (labels, info)."""
    n, nz = grid.n, grid.nz
    labels = np.zeros((n, n, nz), np.uint8)
    best = np.zeros((n, n, nz), F32)
    info = []
    for les in lesions:
        fr = np.where(visible, grid.slab(_lesion_fraction(les, coords, box)), F32(0.0))
        take = (fr >= 0.5) & (fr > best)
        labels[take] = SUBTYPE_CODE[les.subtype]
        best = np.maximum(best, fr)
        vox = int((fr >= 0.5).sum())
        if vox:
            info.append({"subtype": les.subtype, "site": les.site, "blood_hu": float(les.blood_hu), "voxels": vox,
                         "ml": round(vox * grid.sp * grid.sp * grid.th / 1000.0, 3)})
    for i in info:  # a later lesion can cover an earlier one: count what the labels show
        i["voxels"] = int((labels == SUBTYPE_CODE[i["subtype"]]).sum()) if sum(j["subtype"] == i["subtype"] for j in info) == 1 else i["voxels"]
    return labels, info


def make_volume(rng: np.random.Generator, domain: Domain, in_plane: int = 512, n_slices: int | None = None,
                positive: bool | None = None, with_tissue: bool = False, randomise: Randomise | None = None) -> PhantomVolume:
    """Generate one head CT volume of ``domain``; ``positive`` forces a patient with/without blood.

    ``with_tissue``: also return boolean maps of the tissue classes (brain parenchyma, csf,
    ventricles, bone, skull) on the output grid, for tests and the realism statistics.
    ``randomise``: the per-patient randomisation (``phantom.randomise``); None draws exactly the
    volumes drawn without it. Its draws come from streams spawned from ``rng``, which leaves the
    draws of ``rng`` itself (anatomy, lesion shapes, labels) as they were.
    """
    n = int(in_plane)
    nz = int(n_slices if n_slices is not None else rng.integers(domain.slices[0], domain.slices[1] + 1))
    streams = rng.spawn(4) if randomise is not None else None
    pat = _draw_patient(rng)
    if streams:
        pat = vary_patient(streams[0], pat, randomise)
        domain, draw = vary_domain(streams[1], domain, randomise)
    c_ea = 1.0 + 2.5 * pat.atrophy  # extra-axial CSF (wider with atrophy)
    grid = scan_grid(rng, domain, n, nz)
    q = _atlas_points(grid, domain, pat)
    lesions = _draw_lesions(rng, domain, grid, q, positive, c_ea)
    if streams:
        normal = gravity_normal(pat.rot)
        for les, s in zip(lesions, streams[2].spawn(len(lesions))):
            vary_lesion(s, les, grid.lv, randomise, normal)
    idx = _deform(q, pat, lesions, grid.lv)
    vol, coords, box = _render(rng, grid.lv, idx, pat, c_ea, lesions)
    img = vol.reshape(grid.m, grid.m, nz, grid.sub).mean(axis=3, dtype=F32)
    del vol
    # an annotator outlines blood where it shows: a slab whose mean reads above any blood (bone in its
    # partial volume, at the skull base) shows bone, so it is not labelled even when half of it is blood
    visible = _up(img, grid.up) <= F32(lesions_mod.VISIBLE_BLOOD_MAX_HU)
    labels, info = _labels(lesions, coords, box, grid, visible)
    img = reconstruct(img, domain, grid, rng) if streams is None else reconstruct_varied(img, domain, grid, draw, streams[3])
    tissue = {}
    if with_tissue:
        for name, a in _tissue_maps(grid.lv, box, c_ea, pat).items():
            sampled = ndimage.map_coordinates(a, coords, order=1, mode="constant", cval=0.0, prefilter=False)
            tissue[name] = grid.slab(sampled) >= 0.5
        tissue["blood"] = labels > 0
    return PhantomVolume(img, labels, grid.affine(), (grid.sp, grid.sp, grid.th), info, tissue)


def phantom_case(layout: str, seed: int, index: int, in_plane: int = 512,
                 slices: tuple[int, int] | None = None, with_tissue: bool = False,
                 randomise: Randomise | dict | None = None) -> PhantomVolume:
    """The ``index``-th volume ``write_phantom(out, layout, cases, seed, ...)`` writes (RAS+, before storage)."""
    domain = DOMAINS[layout]
    lo, hi = slices or domain.slices
    rng = np.random.default_rng([seed, DOMAIN_STREAM[layout], index])
    return make_volume(rng, domain, in_plane, int(rng.integers(lo, hi + 1)), with_tissue=with_tissue,
                       randomise=Randomise.from_config(randomise))

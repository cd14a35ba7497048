"""Hemorrhages of every subtype inserted into the real whole-head CT (``ichseg.data.invesalius``).

The lesions come from the synthetic head CT's own generator (``phantom.lesions.draw_lesion``), run on
tissue maps of the real head instead of the atlas: on a 1 mm grid, the cranial cavity (inside the
inner table, segmented slice by slice from bone), parenchyma (smoothed HU 15-50 inside it), CSF
(-30-12 HU), the ventricles (CSF more than 10 mm inside the cavity, near the midline) and the
convexity surface. The grid is shifted (translation only, no scaling or rotation) so that the
cavity's bounding box sits where the template brain's does in MNI millimetres; the generator's
anatomical sites (putamen, thalamus, cerebellum, lobar white matter, the ventricles, sylvian
fissure, basal cisterns, the convexity) then fall on the matching real anatomy within about a
centimetre, and the tissue maps confine each lesion to parenchyma, CSF spaces or the inner table.
Mass effect is not applied: real anatomy is not deformed.

Insertion on the native 1.5 mm slices, in HU: ``(1 - f) hu + f (blood + hu' - smooth(hu'))`` with
``f`` the blood fraction and ``hu'`` the HU clipped to soft tissue (the real noise stays, as for
the real slices of ``ichseg.data.realct``); intraparenchymal lesions darken their oedema rim. Then
every three native slices are averaged into one 4.5 mm slice, the thickness of a routine head CT
reading (and of BHSD), which is also the partial volume along z; a voxel is blood where its 4.5 mm
blood fraction reaches 0.5 and the slice does not read as bone there (the phantom's labelling rule).

Per subtype, one lesion per volume class of ``SIZE_BINS_ML`` (0.3-1 mL to > 30 mL) where the
generator reaches it within ``TRIES`` seeded draws; each lesion copy is stored as the slab of its
slices plus one slice either side. The untouched head (all 36 slices) is the negative: every voxel
predicted there is a false positive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull

from ..errors import IchsegError
from .atlas import deep_csf
from .cavity import head_of
from .invesalius import RealVolume, read_cranium
from .phantom.anatomy import template_brain_box, template_ventricle_centre
from .phantom.lesions import VISIBLE_BLOOD_MAX_HU, draw_lesion

#: native slices averaged into one stored slice (1.5 mm -> 4.5 mm)
SLAB = 3
#: lesion volume classes (mL, as stored): one lesion per subtype and class where the generator reaches it
SIZE_BINS_ML = ((0.3, 1.0), (1.0, 10.0), (10.0, 30.0), (30.0, math.inf))
TRIES = 60  # draws per subtype before a class is given up (the generator's size ranges differ by subtype)
#: each subtype's own stream of random numbers, by name (adding or reordering subtypes changes no other)
STREAM = {"epidural": 0, "intraparenchymal": 1, "intraventricular": 2, "subarachnoid": 3, "subdural": 4}
C_EA_MM = 0.5  # the real cavity already holds the extra-axial CSF: only half a millimetre more
F32 = np.float32


@dataclass(frozen=True)
class HeadMaps:
    """Tissue maps of the real head on a 1 mm grid in MNI-like millimetres (what ``draw_lesion`` reads
    from the atlas level): grey (none: parenchyma counts as white), white, CSF, ventricles, brain
    (the cavity), mm inside and outside it, convexity surface voxels."""

    step: int
    origin: np.ndarray  # MNI-like mm of voxel (0, 0, 0)
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    vent: np.ndarray
    brain: np.ndarray
    d_in: np.ndarray
    d_out: np.ndarray
    surface: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.gm.shape


@dataclass
class Inserted:
    """One lesion copy of the real volume (4.5 mm slices, cropped to ``slices``)."""

    subtype: str
    site: str
    hu: np.ndarray
    mask: np.ndarray
    affine: np.ndarray
    ml: float
    slices: tuple[int, int]  # first and last stored slice of the uncropped 4.5 mm volume


def _hull_2d(points: np.ndarray, shape) -> np.ndarray:
    """Pixels inside the convex hull of ``points`` (pixel indices)."""
    hull = ConvexHull(points)
    grid = np.indices(shape).reshape(2, -1).T.astype(F32)
    return np.all(grid @ hull.equations[:, :2].T.astype(F32) + hull.equations[:, 2].astype(F32) <= 0.5, axis=1).reshape(shape)


def _cavity_2d(hu: np.ndarray) -> np.ndarray:
    """Inside the skull on one axial slice: the convex hull of the head's bone (the calvarium has gaps
    where it is thin: a closed ring cannot be relied on), without bone, air, fat and the outer 4 mm
    of the head, keeping the large compartments of brain-like HU (not the orbits, sinuses or face)."""
    head = head_of(hu)
    bone = (hu > 300) & head
    if head.sum() < 500 or bone.sum() < 50:
        return np.zeros(hu.shape, bool)
    sm = ndimage.gaussian_filter(hu, 1.0)
    cav = _hull_2d(np.argwhere(bone), hu.shape) & ~ndimage.binary_dilation(bone) & (ndimage.distance_transform_edt(head) > 4)
    lab, n = ndimage.label(cav)
    if not n:
        return cav
    sizes = np.bincount(lab.ravel())
    brainy = np.bincount(lab.ravel(), weights=((sm > -30) & (sm < 60)).ravel())
    keep = (sizes >= 300) & (brainy >= 0.85 * sizes)
    keep[0] = False
    return keep[lab] & (sm > -30) & (sm < 90)


def cavity(vol: RealVolume) -> np.ndarray:
    """The cranial cavity on the native grid: per slice (``_cavity_2d``), then the largest 3D compartment."""
    cav = np.stack([_cavity_2d(vol.hu[:, :, k]) for k in range(vol.hu.shape[2])], axis=2)
    lab, n = ndimage.label(cav)
    if not n:
        raise IchsegError(f"{vol.source}: no cranial cavity found (is this a head CT?)")
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == sizes.argmax()


def _resample_1mm(vol: RealVolume, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Arrays of the native grid on a 1 mm grid from the same corner voxel (linear)."""
    sp = np.array(vol.spacing)
    shape = np.floor((np.array(vol.hu.shape) - 1) * sp).astype(int) + 1
    axes = [np.arange(n, dtype=F32) / F32(s) for n, s in zip(shape, sp)]  # native voxel index of each 1 mm step
    coords = np.stack(np.meshgrid(*axes, indexing="ij"))
    return [ndimage.map_coordinates(a.astype(F32), coords, order=1, mode="nearest", prefilter=False) for a in arrays]


_MAPS: dict = {}  # the last head's maps: the set writer and the measurements build them once per process


def head_maps(vol: RealVolume) -> tuple[HeadMaps, np.ndarray]:
    """The tissue maps of ``vol`` and the shift (mm) from its world frame to the MNI-like frame."""
    key = (str(vol.source), vol.hu.shape, float(vol.hu.sum(dtype=np.float64)), tuple(vol.affine.ravel()))
    if key not in _MAPS:
        _MAPS.clear()
        _MAPS[key] = _head_maps(vol)
    return _MAPS[key]


def _head_maps(vol: RealVolume) -> tuple[HeadMaps, np.ndarray]:
    cav_f, sm = _resample_1mm(vol, [cavity(vol), ndimage.gaussian_filter(vol.hu, (1.0, 1.0, 0.7))])
    cav = cav_f >= 0.5
    par = (cav & (sm > 15) & (sm < 50)).astype(F32)
    csf = (cav & (sm <= 12)).astype(F32)
    d_in = ndimage.distance_transform_edt(cav).astype(F32)
    d_out = ndimage.distance_transform_edt(~cav).astype(F32)
    origin = _align(cav, csf, d_in)
    surf = cav & ~ndimage.binary_erosion(cav)
    surf[:, :, : max(0, int(round(5.0 - origin[2])))] = False  # the convexity: above MNI z = 5 mm
    maps = HeadMaps(1, origin, np.zeros_like(par), par, csf, _ventricles(csf, d_in, origin), cav.astype(F32), d_in,
                    d_out, np.argwhere(surf))
    return maps, origin - vol.affine[:3, 3]


def _align(cav: np.ndarray, csf: np.ndarray, d_in: np.ndarray) -> np.ndarray:
    """MNI-like mm of the 1 mm grid's voxel (0, 0, 0): first the cavity's bounding box on the template
    brain's (left-right and front-back from the upper half, the top on the top), then the ventricles'
    centroid on the template's (the deep sites, basal ganglia, thalamus and ventricles, sit around them
    whatever the head's size and the tilt of the scan plane)."""
    lo_t, hi_t = template_brain_box()
    idx = np.argwhere(cav)
    upper = idx[idx[:, 2] >= np.percentile(idx[:, 2], 50)]
    origin = np.array([(lo_t[0] + hi_t[0]) / 2 - (upper[:, 0].min() + upper[:, 0].max()) / 2,
                       (lo_t[1] + hi_t[1]) / 2 - (upper[:, 1].min() + upper[:, 1].max()) / 2,
                       hi_t[2] - idx[:, 2].max()], float)
    vent = np.argwhere(_ventricles(csf, d_in, origin) > 0.5)
    if len(vent) < 1000:  # no ventricles found (1 mL): keep the bounding-box alignment
        return origin
    return template_ventricle_centre() - vent.mean(axis=0)


def _ventricles(csf: np.ndarray, d_in: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Deep CSF near the midline, as the atlas defines the ventricles (``atlas.load_atlas``)."""
    lo = np.clip(np.round(np.array([-36, -58, -22]) - origin).astype(int), 0, None)
    hi = np.clip(np.round(np.array([36, 32, 38]) - origin).astype(int), 0, np.array(csf.shape))
    return deep_csf(csf, d_in, tuple(slice(a, b) for a, b in zip(lo, hi)), csf_min=0.5, depth_mm=10)


def _native_fraction(vol: RealVolume, maps: HeadMaps, shift: np.ndarray, box: tuple, a: np.ndarray) -> tuple:
    """A lesion map ``a`` on the 1 mm box ``box`` of ``maps``, sampled onto the native voxels it covers:
    (native slices, values)."""
    sp = np.array(vol.spacing)
    lo_mm = maps.origin + np.array([s.start for s in box]) - shift - vol.affine[:3, 3]  # world mm -> native offset
    hi_mm = maps.origin + np.array([s.stop - 1 for s in box]) - shift - vol.affine[:3, 3]
    lo = np.clip(np.floor(lo_mm / sp).astype(int), 0, np.array(vol.hu.shape))
    hi = np.clip(np.ceil(hi_mm / sp).astype(int) + 1, 0, np.array(vol.hu.shape))
    nat = tuple(slice(int(a_), int(b_)) for a_, b_ in zip(lo, hi))
    axes = [(np.arange(s.start, s.stop) * sp[i] - lo_mm[i]).astype(F32) for i, s in enumerate(nat)]  # box voxel coords
    coords = np.meshgrid(*axes, indexing="ij")
    return nat, ndimage.map_coordinates(a, coords, order=1, mode="constant", cval=0.0, prefilter=False).astype(F32)


def _texture(vol: RealVolume) -> np.ndarray:
    soft = np.clip(vol.hu, -20, 100)  # the real noise, measured on soft tissue (bone would leak into it)
    return soft - ndimage.gaussian_filter(soft, [1.5 / s for s in vol.spacing])


def thick(a: np.ndarray) -> np.ndarray:
    """Average every ``SLAB`` native slices into one (a trailing remainder is dropped)."""
    nz = a.shape[2] // SLAB
    return a[:, :, : nz * SLAB].reshape(a.shape[0], a.shape[1], nz, SLAB).mean(axis=3, dtype=F32)


def thick_affine(vol: RealVolume) -> np.ndarray:
    aff = vol.affine.copy()
    aff[:3, 3] += aff[:3, 2] * (SLAB - 1) / 2  # the slab's centre
    aff[:3, 2] *= SLAB
    return aff


def insert(vol: RealVolume, maps: HeadMaps, shift: np.ndarray, les, texture: np.ndarray, edema_hu: float) -> Inserted | None:
    """Blend one drawn lesion into the native volume, thicken to 4.5 mm, crop to its slices."""
    nat, f = _native_fraction(vol, maps, shift, les.box, les.frac)
    hu = vol.hu.copy()
    frac = np.zeros(vol.hu.shape, F32)
    frac[nat] = f
    hu[nat] = hu[nat] * (1 - f) + f * (F32(les.blood_hu) + texture[nat])
    if les.edema is not None:
        _, e = _native_fraction(vol, maps, shift, les.box, les.edema)
        hu[nat] -= F32(edema_hu) * np.clip(e - f, 0, 1)
    hu_t, frac_t = thick(hu), thick(frac)
    mask = (frac_t >= 0.5) & (hu_t <= VISIBLE_BLOOD_MAX_HU)
    if not mask.any():
        return None
    ks = np.flatnonzero(mask.any(axis=(0, 1)))
    k0, k1 = max(int(ks[0]) - 1, 0), min(int(ks[-1]) + 1, hu_t.shape[2] - 1)
    aff = thick_affine(vol)
    aff[:3, 3] += aff[:3, 2] * k0
    ml = float(mask.sum() * np.prod(vol.spacing[:2]) * vol.spacing[2] * SLAB / 1000.0)
    return Inserted(les.subtype, les.site, hu_t[:, :, k0:k1 + 1], mask[:, :, k0:k1 + 1], aff, round(ml, 3), (k0, k1))


def _bin_of(ml: float) -> int | None:
    return next((i for i, (lo, hi) in enumerate(SIZE_BINS_ML) if lo <= ml < hi), None)


def lesion_copies(seed: int = 0, vol: RealVolume | None = None) -> list[Inserted]:
    """Per subtype (by name, each from its own seeded stream ``STREAM``), one lesion copy per
    volume class of ``SIZE_BINS_ML`` that the generator reaches within ``TRIES`` draws."""
    vol = vol if vol is not None else read_cranium()
    maps, shift = head_maps(vol)
    texture = _texture(vol)
    z_range = (float(maps.origin[2]), float(maps.origin[2] + maps.shape[2] - 1))
    out = []
    for sub in sorted(STREAM):
        rng = np.random.default_rng([seed, 5151, STREAM[sub]])
        found: dict[int, Inserted] = {}
        for _ in range(TRIES):
            if len(found) == len(SIZE_BINS_ML):
                break
            les = draw_lesion(sub, rng, maps, z_range, C_EA_MM)
            if les is None or les.frac.max() < 0.5:
                continue
            rough = _bin_of(float((les.frac >= 0.5).sum()) / 1000.0)  # 1 mm grid: a cheap first guess
            if rough is None or rough in found:
                continue
            got = insert(vol, maps, shift, les, texture, rng.uniform(5, 9))
            b = _bin_of(got.ml) if got is not None else None
            if b is not None and b not in found:
                found[b] = got
        out += [found[b] for b in sorted(found)]
    return out


def clean_volume(vol: RealVolume | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The untouched head at 4.5 mm: (HU, affine)."""
    vol = vol if vol is not None else read_cranium()
    return thick(vol.hu), thick_affine(vol)

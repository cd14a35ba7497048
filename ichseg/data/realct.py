"""Real head CT with inserted hemorrhages: the evaluation domain ``realct``.

The only real head CT that can be used offline are axial head slices that the MIT-licensed
``pydicom`` and ``pydicom-data`` packages ship as test files. They carry no hemorrhage masks, so
synthetic hematomas are inserted into the real parenchyma (their masks are then known exactly) and
the untouched slices serve as negatives:

- ``J2K_pixelrep_mismatch.dcm`` (pydicom): a slice through the skull base and posterior fossa
  (orbits, ethmoid cells, petrous bones, mastoid air, cerebellum), 512 x 512, 0.431 mm, 5 mm,
  JPEG 2000; used as a negative and as a carrier of inserted lesions.
- ``693_UNCR.dcm`` (pydicom-data): a supratentorial slice, 512 x 512, 0.479 mm, 5 mm, with a large
  *hypodense* extra-axial collection over the patient's left hemisphere (CSF-like, with membranes:
  a chronic collection or hygroma, not acute blood) and midline shift. It is not a normal head, so
  its untouched slice is **not** used as a negative; lesions are inserted only into the patient's
  right hemisphere (the image's left half), away from the collection.

Insertion (in HU, on the real pixels): a lesion's blood fraction ``f`` (partial volume over one
pixel, and through the 5 mm slice for lesions thinner than it) blends the real pixel with blood
plus the real image's own fine texture, ``(1 - f) hu + f (blood + hu' - smooth(hu'))`` with ``hu'``
the HU clipped to soft tissue, so the real noise stays; intraparenchymal lesions
get a faint oedema rim. Subtypes: intraparenchymal (irregular, in parenchyma), subdural (crescent
along the calvarium's inner table), epidural (lens against it); each insert covers at least
``MIN_LESION_MM2`` of its slice.

The whole-head volume (``ichseg.data.invesalius``: Debian's ``invesalius-examples``, read at run
time) joins them: untouched as a negative and with hemorrhages of every subtype inserted by the
synthetic head CT's own lesion generator (``ichseg.data.realvolume``), at 4.5 mm slices.

The files are written in the PhysioNet CT-ICH folder format (``ct_scans/NNN.nii``, ``masks/NNN.nii``,
the per-slice subtype CSV, through the ``realct`` layout's writer) plus ``realct.json`` naming each
case's source: every real image or volume is one patient, so each interval clusters its copies.
They are read by the same ``prepare_dataset`` path under the dataset name ``realct``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import ConfigError, IchsegError
from .volumes import write_nifti

#: name -> (package that ships it, used as a negative, allowed insertion side in image columns: None, "left")
REAL_SLICES = {
    "J2K_pixelrep_mismatch.dcm": ("pydicom", True, None),
    "693_UNCR.dcm": ("pydicom-data", False, "left"),
}
INSTALL_HINT = "pip install 'ichseg[realct]' (pydicom, pydicom-data; Pillow decodes the JPEG 2000 slice)"
INSERTED = ("intraparenchymal", "subdural", "epidural")
#: Subdural and epidural blood collects between the brain and the calvarium, over the convexities:
#: extra-axial inserts lie against bone within this depth of the head's surface (scalp 3-7 mm, the
#: temporalis up to ~10 mm over the squama), not along the deep skull-base bones (orbital roofs,
#: sphenoid wings, petrous ridges, clinoids).
CALVARIUM_MM = 15.0
#: A lesion drawn smaller than this in its slice is drawn again: the smallest intraparenchymal
#: area the generator draws (a ~4 mm focus), so no inserted slice holds a speck no reader would mark.
MIN_LESION_MM2 = 15.0


@dataclass
class RealSlice:
    """One real axial slice: HU in the DICOM pixel frame (rows, columns), its geometry and tissue masks."""

    name: str
    hu: np.ndarray  # float32 (rows, cols)
    affine: np.ndarray  # RAS+ mm of voxel (col, row, 0) of the NIfTI written from it
    pixel_mm: float
    thickness_mm: float
    negative: bool
    side: str | None
    cavity: np.ndarray  # bool: inside the skull
    parenchyma: np.ndarray  # bool: brain tissue (smoothed HU 18-50 inside the cavity)
    csf: np.ndarray  # bool: smoothed HU < 15 inside the cavity
    bone: np.ndarray  # bool: HU > 300
    calvarium: np.ndarray  # bool: bone within CALVARIUM_MM of the head's surface


def _pydicom():
    try:
        import pydicom
        from pydicom.data import get_testdata_file
    except ImportError:
        raise IchsegError(f"realct: needs the real CT test slices of pydicom; {INSTALL_HINT}") from None
    return pydicom, get_testdata_file


def read_real_slice(name: str) -> RealSlice:
    """Read one of ``REAL_SLICES`` (offline, from the installed packages) and segment its tissues."""
    pydicom, get_testdata_file = _pydicom()
    package, negative, side = REAL_SLICES[name]
    try:
        path = get_testdata_file(name, download=False)
    except TypeError:  # older pydicom without the download argument
        path = get_testdata_file(name)
    if path is None:
        raise IchsegError(f"realct: {name} not found (it ships with {package}); {INSTALL_HINT}")
    ds = pydicom.dcmread(path)
    try:
        pix = ds.pixel_array.astype(np.float32)
    except Exception as exc:
        raise IchsegError(f"{path}: cannot decode the pixels ({type(exc).__name__}: {exc}); {INSTALL_HINT}") from None
    hu = pix * np.float32(ds.get("RescaleSlope", 1)) + np.float32(ds.get("RescaleIntercept", 0))
    hu = np.clip(hu, -1024, 3071)
    dr, dc = (float(v) for v in ds.PixelSpacing)
    ori = np.array([float(v) for v in ds.ImageOrientationPatient])
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    thick = float(ds.get("SliceThickness", 5.0))
    row_dir, col_dir = ori[:3], ori[3:]  # LPS: direction of increasing column, of increasing row
    normal = np.cross(row_dir, col_dir)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = row_dir * dc, col_dir * dr, normal * thick, ipp
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # LPS -> RAS
    sm = ndimage.gaussian_filter(hu, 2.0)
    bone = hu > 300
    closed = ndimage.binary_closing(bone, iterations=4)
    cavity = ndimage.binary_fill_holes(closed) & ~ndimage.binary_dilation(closed, iterations=2)
    lab, n = ndimage.label(cavity)
    if n:  # keep the large compartments that hold brain (not the orbits, sinuses or mastoid air)
        sizes = np.bincount(lab.ravel())
        brainy = np.bincount(lab.ravel(), weights=((sm > 0) & (sm < 60)).ravel())
        keep = (sizes >= 2000) & (brainy >= 0.7 * sizes)
        keep[0] = False
        cavity = keep[lab]
    parenchyma = cavity & (sm > 18) & (sm < 50)
    csf = cavity & (sm < 15) & (sm > -30)
    head = ndimage.binary_fill_holes(ndimage.binary_closing(hu > -300, iterations=3))
    calvarium = bone & (ndimage.distance_transform_edt(head) * dc < CALVARIUM_MM)
    return RealSlice(name, hu.astype(np.float32), affine, dc, thick, negative, side, cavity, parenchyma, csf, bone,
                     calvarium)


def available_slices() -> list[RealSlice]:
    return [read_real_slice(name) for name in REAL_SLICES]


def _insert(rs: RealSlice, sub: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """One lesion of subtype ``sub`` inserted into ``rs``: (HU, mask) or None when it does not fit."""
    hu, px = rs.hu, rs.pixel_mm
    rows, cols = np.indices(hu.shape, dtype=np.float32)
    allowed = np.ones(hu.shape, bool)
    if rs.side == "left":
        allowed[:, hu.shape[1] // 2 - 20:] = False
    if sub == "intraparenchymal":
        area_mm2 = math.exp(rng.uniform(math.log(15.0), math.log(1500.0)))  # ~4 mm to ~44 mm across
        r = math.sqrt(area_mm2 / math.pi) / px
        room = ndimage.distance_transform_edt(rs.parenchyma & allowed)
        cand = np.argwhere(room > max(0.5 * r, 3))
        if not len(cand):
            return None
        cy, cx = cand[rng.integers(len(cand))]
        dy, dx = rows - cy, cols - cx
        dist = np.sqrt(dy * dy + dx * dx)
        ang = np.arctan2(dy, dx)
        r_eff = r * (1 + sum(rng.uniform(0.05, 0.18) * np.cos(k * ang + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5)))
        frac = np.clip(r_eff - dist + 0.5, 0, 1) * rs.cavity
        edema = np.clip((r_eff * 1.25 + 2.5 / px - dist) / (3.0 / px), 0, 1) * rs.parenchyma
        depth = min(1.0, 2 * r * px / rs.thickness_mm)  # a lesion thinner than the slice is partial-volumed
    else:
        d_calvarium = ndimage.distance_transform_edt(~rs.calvarium) * px  # mm from the calvarium
        inner = rs.cavity & allowed & (d_calvarium < 4) & (rs.parenchyma | rs.csf)
        cand = np.argwhere(inner)
        if not len(cand):
            return None
        cy, cx = cand[rng.integers(len(cand))]
        s = np.sqrt((rows - cy) ** 2 + (cols - cx) ** 2) * px
        if sub == "subdural":
            T, L = math.exp(rng.uniform(math.log(2.0), math.log(12.0))), rng.uniform(30, 70)
            t = T * np.sqrt(np.clip(1 - (s / L) ** 4, 0, 1))
        else:
            T, L = math.exp(rng.uniform(math.log(4.0), math.log(20.0))), rng.uniform(15, 32)
            t = T * np.sqrt(np.clip(1 - (s / L) ** 2, 0, 1))
        frac = np.clip((t - d_calvarium) / px + 0.5, 0, 1) * (rs.cavity & (rs.parenchyma | rs.csf)) * allowed * (t > 0.5)
        edema = None
        depth = 1.0
    if frac.sum() < 4:
        return None
    blood = rng.uniform(55, 85)
    soft = np.clip(hu, -20, 100)  # the real noise, measured on soft tissue (bone would leak into it)
    texture = soft - ndimage.gaussian_filter(soft, 1.5 / px)
    f = frac * depth
    out = hu * (1 - f) + f * (blood + texture)
    if edema is not None:
        out -= rng.uniform(4, 8) * np.clip(edema - frac, 0, 1)
    mask = (frac * depth >= 0.5) if depth >= 0.5 else (frac >= 0.5)
    if mask.sum() * px * px < MIN_LESION_MM2:
        return None
    return out.astype(np.float32), mask


@dataclass
class RealCase:
    """One volume of the set, RAS+ (X, Y, Z): HU, binary mask, affine, per-slice subtypes, its source."""

    hu: np.ndarray
    mask: np.ndarray
    affine: np.ndarray
    subtype: str  # '' for a negative
    source: str  # the real image or volume it was made from: its cluster (patient) in every interval
    extra: dict


def _slice_cases(draws: int, rng: np.random.Generator) -> list[RealCase]:
    """Per real slice, its untouched copy as a negative (where it is a normal head) and ``draws``
    copies with one inserted lesion each (subtypes in turn)."""
    cases = []
    for rs in available_slices():
        # DICOM pixel frame (rows, cols) -> NIfTI voxel (col, row, 0)
        as_vol = lambda a: a.T[:, :, None]
        if rs.negative:
            cases.append(RealCase(as_vol(rs.hu), as_vol(np.zeros(rs.hu.shape, bool)), rs.affine, "", rs.name, {}))
        for k in range(int(draws)):
            sub = INSERTED[k % len(INSERTED)]
            for _ in range(10):
                got = _insert(rs, sub, rng)
                if got is not None:
                    cases.append(RealCase(as_vol(got[0]), as_vol(got[1]), rs.affine, sub, rs.name, {}))
                    break
    return cases


def _volume_cases(seed: int) -> list[RealCase]:
    """The real whole-head CT (``invesalius``): untouched as a negative, and its lesion copies
    (``realvolume``: every subtype, 0.3 mL to > 30 mL)."""
    from . import realvolume
    from .invesalius import read_cranium

    vol = read_cranium()
    source = vol.source.name
    hu, aff = realvolume.clean_volume(vol)
    cases = [RealCase(hu, np.zeros(hu.shape, bool), aff, "", source, {"slice_mm": float(aff[2, 2])})]
    for c in realvolume.lesion_copies(seed, vol):
        cases.append(RealCase(c.hu, c.mask, c.affine, c.subtype, source,
                              {"site": c.site, "ml": c.ml, "slices_of_the_whole_head": list(c.slices)}))
    return cases


def write_realct(out: str | Path, draws: int = 6, seed: int = 0, whole_head: bool = True) -> Path:
    """Write the ``realct`` test set into ``out`` (PhysioNet folder format): the real slices with
    ``draws`` inserted lesions each (``_slice_cases``) and, with ``whole_head``, the real whole-head
    volume with its lesion copies (``_volume_cases``), seeded; ``realct.json`` names each case's
    source. Returns ``out``."""
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise ConfigError(f"draws: must be an integer >= 1, got {draws!r}")
    from ..utils.atomic import atomic_write_json
    from .layouts import get_layout

    out = Path(out)
    cases = _slice_cases(int(draws), np.random.default_rng([seed, 4242])) + (_volume_cases(seed) if whole_head else [])
    writer = get_layout("realct").writer(out, np.random.default_rng(seed))
    sources = {}
    for i, c in enumerate(cases):
        img_p, msk_p = writer.paths(i)
        write_nifti(img_p, np.rint(c.hu), c.affine, dtype=np.int16)
        write_nifti(msk_p, c.mask.astype(np.uint8), c.affine, dtype=np.uint8)
        writer.add(i, [{c.subtype} if c.subtype and c.mask[:, :, k].any() else set() for k in range(c.mask.shape[2])])
        sources[img_p.name.split(".")[0]] = {"source": c.source, "inserted": c.subtype or None,
                                             "blood_voxels": int(c.mask.sum()), **c.extra}
    writer.finish(len(cases))
    atomic_write_json(out / "realct.json", {
        "what": "real head CT (pydicom / pydicom-data test slices, MIT; InVesalius Cranium.inv3, GPL-2) with "
                "inserted synthetic hemorrhages; each source is one cluster",
        "format": get_layout("realct").FORMAT, "seed": int(seed), "draws": int(draws), "cases": sources,
    })
    return out

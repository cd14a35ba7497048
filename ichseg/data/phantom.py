"""Synthetic head CT with intracerebral hemorrhage, written in a real dataset's folder layout.

The real datasets need registration and may not be redistributed, so the whole pipeline is exercised
on phantoms that go through the same ingestion path: NIfTI files in the Instance2022, BHSD or
PhysioNet layout, read back by ``prepare_dataset``.

Anatomy (all in mm, vectorised over the whole volume): an ellipsoidal head (RAS+), scalp,
a skull of varying thickness with dense tables and a lighter diploe (700-1500 HU), cortex
(grey matter ~35 HU) over white matter (~25 HU), deep grey nuclei, CSF (0-15 HU) in sulci, the
subarachnoid space, the interhemispheric fissure and two lateral ventricles. Tissue edges are
partial-volume ramps one pixel wide, then blurred by a reconstruction kernel; scanner noise and
a beam-hardening-like cupping (darker centre) are added last.

Hemorrhage (acute blood, 50-90 HU), one to three lesions per positive patient, sized from tiny to
large, with the shapes radiologists use to tell the subtypes apart:
intraparenchymal - an irregular lobulated blob in the white matter, with a faint oedema rim;
subdural - a crescent along the inner table, thin and long;  epidural - a biconvex lens against
the inner table, short and thick;  intraventricular - blood layering in the dependent (posterior)
part of a ventricle;  subarachnoid - thin blood filling sulci and the subarachnoid space of a
sector. A share of patients has no hemorrhage.

Each layout is its own "scanner" (``DOMAINS``): field of view (hence pixel size), slice thickness,
noise, HU offset, cupping, kernel sharpness, subtype mix, share of negatives and how the file is
stored (orientation, integer type, scl_slope/scl_inter), so training on one phantom layout and
testing on another measures generalisation across domains. Everything is determined by the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import ConfigError
from .layouts import SUBTYPES
from .volumes import write_nifti

#: label codes as BHSD's dataset.json (Wu et al. 2023: 1 epidural ... 5 subdural)
SUBTYPE_CODE = {"epidural": 1, "intraparenchymal": 2, "intraventricular": 3, "subarachnoid": 4, "subdural": 5}
BLOOD_HU = (50.0, 90.0)  # acute blood
CSF_HU, WHITE_HU, GREY_HU, SCALP_HU, AIR_HU = 7.0, 25.0, 35.0, 30.0, -1000.0


@dataclass(frozen=True)
class Domain:
    """One 'scanner': acquisition, reconstruction, population and file storage of a layout."""

    fov_mm: float  # in-plane field of view; pixel size = fov / in_plane
    thickness_mm: float
    slices: tuple[int, int]  # range of slice counts per volume
    noise_hu: float  # standard deviation of the added noise
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
    # INSTANCE 2022: ~0.42 mm pixels at 512, 5 mm slices, DICOM-like (LPS) storage, labels 0/1
    "instance2022": Domain(220.0, 5.0, (24, 34), 6.0, 0.0, 4.0, 0.6,
                           {"intraparenchymal": .40, "subdural": .15, "epidural": .10, "intraventricular": .15,
                            "subarachnoid": .20}, 0.30, (True, True, False), "int16", 1.0, 0.0, "binary"),
    # BHSD: larger field of view, thinner slices, noisier, +5 HU, stored unsigned with an intercept,
    # labels carry the subtype; its voxel-labelled volumes are nearly all positive
    "bhsd": Domain(240.0, 4.5, (26, 36), 9.0, 5.0, 8.0, 0.5,
                   {s: .2 for s in SUBTYPES}, 0.10, (False, False, True), "uint16", 1.0, -1024.0, "subtype"),
    # PhysioNet CT-ICH: a traumatic-injury cohort (more extra-axial blood), ~half without hemorrhage,
    # older-looking images (smoother kernel, more noise and cupping, -4 HU), uncompressed .nii
    "physionet": Domain(205.0, 5.0, (24, 32), 12.0, -4.0, 12.0, 0.9,
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
    lesions: list[dict] = field(default_factory=list)  # subtype, blood_hu, voxels
    tissue: dict[str, np.ndarray] = field(default_factory=dict)  # boolean maps: brain, skull, ventricles


def _ramp(dist_mm: np.ndarray, width: float) -> np.ndarray:
    """Partial-volume membership: 1 well inside (dist > 0), 0 well outside, linear over one pixel."""
    out = np.asarray(dist_mm, dtype=np.float32) * np.float32(1.0 / width)
    out += np.float32(0.5)
    return np.clip(out, 0.0, 1.0, out=out)


def make_volume(rng: np.random.Generator, domain: Domain, in_plane: int = 128, n_slices: int | None = None,
                positive: bool | None = None) -> PhantomVolume:
    """Generate one head CT volume of ``domain``; ``positive`` forces a patient with/without blood."""
    n = int(in_plane)
    nz = int(n_slices if n_slices is not None else rng.integers(domain.slices[0], domain.slices[1] + 1))
    sp, th = domain.fov_mm / n, domain.thickness_mm
    f32 = np.float32

    # -- head geometry (mm, RAS+): inner-table ellipsoid, yaw, small shift -------------------------
    A, B = rng.uniform(62, 71), rng.uniform(80, 90)
    C = nz * th / 1.65  # the slab covers the head from below the ventricles to the vertex
    yaw, cx, cy = rng.uniform(-0.12, 0.12), rng.uniform(-4, 4), rng.uniform(-4, 4)
    x = ((np.arange(n, dtype=f32) - (n - 1) / 2) * sp)[:, None, None]
    y = ((np.arange(n, dtype=f32) - (n - 1) / 2) * sp)[None, :, None]
    z = (np.linspace(-0.62, 0.98, nz, dtype=f32) * C)[None, None, :]
    cos, sin = math.cos(yaw), math.sin(yaw)  # Python floats keep the arrays float32
    xr = cos * (x - cx) + sin * (y - cy)  # (n, n, 1) head frame
    yr = -sin * (x - cx) + cos * (y - cy)
    theta = np.arctan2(yr, xr)  # in-plane angle
    rho2 = (xr / A) ** 2 + (yr / B) ** 2 + (z / C) ** 2
    grad = 2 * np.sqrt((xr / A**2) ** 2 + (yr / B**2) ** 2 + (z / C**2) ** 2) + 1e-6
    d = ((1 - rho2) / grad).astype(f32)  # ~signed distance to the inner table (mm, + inside)
    pw = sp

    # -- skull, scalp ------------------------------------------------------------------------------
    p = [float(v) for v in rng.uniform(0, 2 * np.pi, 4)]
    t_skull = np.clip(6.0 + 1.6 * np.sin(2 * theta + p[0]) + 1.0 * np.cos(3 * theta + p[1])
                      + 1.5 * (z / C), 3.0, 10.0).astype(f32)  # 3-10 mm, thicker low and frontally/occipitally
    t_scalp = 5.0
    brain = _ramp(d, pw)
    inside_skull_outer = _ramp(d + t_skull, pw)
    head = _ramp(d + t_skull + t_scalp, pw)
    u = np.clip(-d / t_skull, 0, 1)  # 0 at the inner table, 1 at the outer
    skull_hu = 700.0 + 800.0 * np.abs(2 * u - 1) ** 1.5  # dense tables, lighter diploe
    hu = AIR_HU * (1 - head) + SCALP_HU * (head - inside_skull_outer) + skull_hu * (inside_skull_outer - brain)

    # -- brain: cortex, white matter, deep grey, CSF spaces ----------------------------------------
    cortex = 3.0 + 0.8 * np.sin(7 * theta + p[2])
    grey = _ramp(cortex - d, pw)
    for side in (-1, 1):  # basal ganglia / thalami
        r = np.sqrt(((xr - side * 17) / 10) ** 2 + ((yr - 4) / 15) ** 2 + ((z - 0.12 * C) / 12) ** 2)
        grey = np.maximum(grey, _ramp((1 - r) * 10, pw))
    tissue_hu = WHITE_HU + (GREY_HU - WHITE_HU) * grey
    r_xy = np.sqrt(xr**2 + yr**2)
    period = rng.uniform(10, 14)
    u_s = (theta + 0.12 * np.sin(4 * theta + 0.04 * z + p[3])) * r_xy / period + 0.03 * z
    k = np.round(u_s)
    depth = 7.0 + 7.0 * (np.sin(k * 12.9898 + p[3]) * 43758.5453 % 1.0)  # per-sulcus depth 7-14 mm
    sulci = _ramp(0.8 - np.abs(u_s - k) * period, pw) * _ramp(depth - d, pw)
    sas = _ramp(1.2 - d, pw)  # subarachnoid space under the inner table
    fissure = _ramp(1.0 - np.abs(xr), pw) * (z > -0.35 * C) * (np.abs(yr) < 0.85 * B)
    s_v = rng.uniform(0.8, 1.6)  # ventricle size (atrophy)
    vent = np.zeros((n, n, nz), f32)
    for side in (-1, 1):
        xc = side * (6.0 * s_v + 0.0025 * (yr - 2) ** 2)
        r = np.sqrt(((xr - xc) / (4.0 * s_v)) ** 2 + ((yr - 2) / 25.0) ** 2 + ((z - 0.28 * C) / (11.0 * s_v)) ** 2)
        vent = np.maximum(vent, _ramp((1 - r) * 4.0 * s_v, pw))
    csf = np.maximum.reduce([sulci, sas, fissure.astype(f32), vent])
    brain_hu = tissue_hu * (1 - csf) + CSF_HU * csf

    # -- hemorrhage --------------------------------------------------------------------------------
    if positive is None:
        positive = rng.random() >= domain.negative_share
    names = list(domain.subtype_mix)
    probs = np.array([domain.subtype_mix[s] for s in names], float)
    n_les = int(rng.choice([1, 1, 1, 2, 2, 3])) if positive else 0
    blood = np.zeros((n, n, nz), f32)
    labels = np.zeros((n, n, nz), np.uint8)
    lesions = []
    for _ in range(n_les):
        sub = str(rng.choice(names, p=probs / probs.sum()))
        frac, edema = _lesion(sub, rng, xr, yr, z, d, theta, C, B, pw, sulci, sas, vent)
        frac *= brain
        if frac.max() < 0.5:
            continue
        b_hu = rng.uniform(52, 70) if sub == "subarachnoid" else rng.uniform(58, 85)
        if edema is not None:
            brain_hu = brain_hu - 7.0 * np.clip(edema - frac, 0, 1)
        brain_hu = brain_hu * (1 - frac) + b_hu * frac
        labels[frac >= 0.5] = SUBTYPE_CODE[sub]
        blood = np.maximum(blood, frac)
        lesions.append({"subtype": sub, "blood_hu": float(b_hu), "voxels": int((frac >= 0.5).sum())})
    hu = hu + brain_hu * brain

    # -- scanner: kernel, offset, cupping, noise ---------------------------------------------------
    hu = ndimage.gaussian_filter(hu.astype(f32), sigma=(domain.kernel_mm / sp, domain.kernel_mm / sp, 0), mode="nearest")
    hu += domain.hu_offset - domain.cupping_hu * np.clip(1 - rho2, 0, 1) * head
    hu += rng.standard_normal(hu.shape, dtype=f32) * f32(domain.noise_hu)
    hu = np.clip(hu, -1024, 3071).astype(f32)

    affine = np.diag([sp, sp, th, 1.0])
    affine[:3, 3] = [-(n - 1) / 2 * sp, -(n - 1) / 2 * sp, float(z.min())]
    tissue = {"brain": brain >= 0.5, "skull": (inside_skull_outer - brain) >= 0.5, "ventricles": vent >= 0.5}
    return PhantomVolume(hu, labels, affine, (sp, sp, th), lesions, tissue)


def _lesion(sub, rng, xr, yr, z, d, theta, C, B, pw, sulci, sas, vent):
    """Blood fraction (0-1) of one lesion of subtype ``sub`` (and an oedema fraction or None)."""
    size = math.exp(rng.uniform(math.log(0.15), 0.0))  # tiny .. large, log-uniform
    z0 = rng.uniform(-0.15, 0.7) * C
    th0 = rng.uniform(-np.pi, np.pi)
    dth = (theta - th0 + np.float32(np.pi)) % np.float32(2 * np.pi) - np.float32(np.pi)  # wrapped angle
    if sub == "intraparenchymal":  # irregular lobulated blob in the white matter
        R = 3.0 + 22.0 * size
        ang, rad = rng.uniform(-np.pi, np.pi), rng.uniform(0.15, 0.55)
        c = [rad * 60 * math.cos(ang), rad * 75 * math.sin(ang), z0 * 0.8]
        dx, dy, dz = xr - c[0], yr - c[1], z - c[2]
        dist = np.sqrt(dx**2 + dy**2 + dz**2)
        a = np.arctan2(dy, dx)
        e = np.arctan2(dz, np.sqrt(dx**2 + dy**2) + 1e-6)
        q = [float(v) for v in rng.uniform(0, 2 * np.pi, 3)]
        r_eff = R * (1 + 0.22 * np.sin(3 * a + q[0]) + 0.14 * np.sin(5 * a + q[1]) * np.cos(2 * e + q[2])
                     + 0.1 * np.cos(2 * e))
        return _ramp(r_eff - dist, pw), _ramp(r_eff * 1.35 + 2 - dist, pw)
    if sub == "subdural":  # crescent along the inner table: long, thin, concave inner border
        T = 2.0 + 12.0 * size
        half, hz = rng.uniform(0.5, 1.2), rng.uniform(25, 50)
        prof = np.sqrt(np.clip(np.cos(0.5 * np.pi * np.clip(np.abs(dth) / half, 0, 1)), 0, 1)) * np.sqrt(
            np.clip(1 - ((z - z0) / hz) ** 2, 0, 1))
        t = T * prof
        return _ramp(t - d, pw) * (t > 0.3), None
    if sub == "epidural":  # biconvex lens against the inner table: short and thick
        T = 4.0 + 20.0 * size
        half, hz = rng.uniform(0.22, 0.45), rng.uniform(10, 22)
        t = T * np.sqrt(np.clip(1 - (dth / half) ** 2 - ((z - z0) / hz) ** 2, 0, 1))
        return _ramp(t - d, pw) * (t > 0.3), None
    if sub == "intraventricular":  # blood layering in the dependent (posterior, -y) part of a ventricle
        side = int(rng.choice([-1, 1, 0]))  # one ventricle or both
        level = 25.0 - 45.0 * size  # fluid level along y: larger -> fills more
        sel = 1.0 if side == 0 else (np.sign(xr) == side)
        return vent * _ramp(level - yr, pw) * sel, None
    if sub == "subarachnoid":  # thin blood following the sulci of a sector
        half = rng.uniform(0.3, 1.2) * (0.4 + size)
        hz = rng.uniform(15, 40)
        sector = _ramp((half - np.abs(dth)) * 40, pw) * _ramp(hz - np.abs(z - z0), pw)
        return np.maximum(sulci, sas * _ramp(d + 0.5, pw)) * sector, None
    raise ConfigError(f"phantom: unknown subtype {sub!r}")


def _store(vol: PhantomVolume, domain: Domain) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RAS+ arrays -> the layout's stored voxel order and affine."""
    hu, lab, aff = vol.hu, vol.labels, vol.affine.copy()
    for axis, flip in enumerate(domain.flips):
        if flip:
            hu, lab = np.flip(hu, axis), np.flip(lab, axis)
            aff[:3, 3] += aff[:3, axis] * (hu.shape[axis] - 1)
            aff[:3, axis] *= -1
    return np.ascontiguousarray(hu), np.ascontiguousarray(lab), aff


def phantom_case(layout: str, seed: int, index: int, in_plane: int = 128,
                 slices: tuple[int, int] | None = None) -> PhantomVolume:
    """The ``index``-th volume ``write_phantom(out, layout, cases, seed, ...)`` writes (RAS+, before storage)."""
    domain = DOMAINS[layout]
    lo, hi = slices or domain.slices
    rng = np.random.default_rng([seed, list(DOMAINS).index(layout), index])
    return make_volume(rng, domain, in_plane, int(rng.integers(lo, hi + 1)))


def _hex(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(list("0123456789abcdef"), size=n))


def write_phantom(out: str | Path, layout: str, cases: int = 10, seed: int = 0, *, in_plane: int = 128,
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
            # about one patient in five has a second series (RSNA ids: the first id is the patient)
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

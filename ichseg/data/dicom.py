"""Reading a head CT series from a folder of DICOM files, into the same ``Volume`` a NIfTI gives.

Hospital head CT comes as DICOM: one file per axial slice, often several series (thin and thick
reconstructions, bone kernel, scouts) in one folder. ``load_series`` reads exactly one of them
and returns what ``volumes.load_volume`` returns for a NIfTI of the same scan, so nothing
downstream cares where the scan came from:

1. files are found under the folder (recursively), anything that is not a DICOM image (DICOMDIR,
   reports, stray files) is skipped, and the images are grouped by SeriesInstanceUID. Several
   series: a one-line error lists each (UID tail, number, description, slices) and the user picks
   one with ``series=`` (its UID or UID tail, its number or its description). Series whose every
   image is a LOCALIZER (scout) are left out of the automatic choice;
2. only CT is read (Hounsfield units are a CT quantity; the segmenter's windows assume them);
3. HU = stored value x RescaleSlope + RescaleIntercept, slice by slice (each slice may carry its
   own);
4. slices are sorted along the normal of ImageOrientationPatient by ImagePositionPatient, never by
   file name or InstanceNumber (feet-first series and shuffled exports are common);
5. the affine is built from ImagePositionPatient / ImageOrientationPatient / PixelSpacing in
   DICOM's LPS patient space and turned into NIfTI's RAS by negating x and y (what nibabel's
   DICOM support and dcm2niix do); the column index i runs along the row direction (first three
   values of the orientation), the row index j along the column direction;
6. **gantry tilt** (slice positions advancing off the plane normal: a sheared grid) is corrected by
   shifting each slice in its own plane (linear interpolation), up to ``MAX_TILT_DEG``. Head CT is
   routinely acquired tilted along the orbito-meatal line to spare the eye lenses, so refusing
   would turn away many real scans; a sheared affine is not an option, as NIfTI's qform cannot
   hold a shear and viewers that read it would misplace the mask;
7. **uneven slice spacing**: jitter within ``SPACING_RTOL`` is rounding in the headers and the
   median spacing is used; larger differences (a missing slice, a posterior-fossa block at a
   finer spacing) are resampled to the median spacing along the normal (linear, between the two
   nearest slices), so a hemorrhage volume computed as voxels x voxel size stays right. A gap
   wider than ``MAX_GAP_RATIO`` median spacings is refused: interpolating across it would invent
   anatomy over centimetres;
8. the array is then reoriented to RAS+ exactly as a NIfTI is (``nibabel`` orientation, the same
   ``Volume`` fields), so ``to_original_grid`` maps a prediction back to the series' own
   (corrected) grid: column, row, slice in the sorted order.

Patient identifiers are never copied into the metadata (it ends up in shared summaries).
``write_series`` writes a volume as a CT series (used by the tests; also a way to hand a
phantom to DICOM tools).

Use for a user's scan: ``vol, meta = load_scan(path, series=None)`` takes a NIfTI file, a DICOM
file (its series) or a folder holding a DICOM series, and returns the ``Volume`` that
``load_volume`` would (predictions mapped back with ``to_original_grid`` / ``volume_from_slices``
land on the series' grid, saved with ``vol.original_affine``) and a JSON-ready ``meta``
(``format``, ``spacing_mm``; for DICOM also the series UID, number and description, slice
thickness and spacing, measured tilt and the ``corrections`` applied). ``is_dicom_folder`` tells
a folder holding a series from a folder of NIfTI files.
"""

from __future__ import annotations

import copy
import io
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from nibabel import orientations as ornt_mod

from ..errors import IchsegError
from .volumes import MAX_VOLUME_BYTES, Volume, is_nifti_name, load_volume

#: consecutive spacings within this fraction of the median are header rounding, not unevenness
SPACING_RTOL = 0.01
#: a gap wider than this many median spacings is refused (a block of missing slices)
MAX_GAP_RATIO = 2.0
#: scanners tilt the gantry by up to about 30 degrees; a larger shear means positions and
#: orientation disagree (a mixed or corrupt series)
MAX_TILT_DEG = 30.0
#: total in-plane drift over the stack below this fraction of a pixel is position rounding, not tilt
TILT_PIXEL_TOL = 0.1
#: a folder with more files than this is not one scan's export; point at the series folder
MAX_FILES = 20_000
INSTALL_HINT = "pip install 'ichseg[realct]' (pydicom; Pillow decodes compressed pixels)"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _pydicom():
    try:
        import pydicom
    except ImportError:
        raise IchsegError(f"DICOM input needs pydicom; {INSTALL_HINT}") from None
    return pydicom


@dataclass(frozen=True)
class SeriesInfo:
    """One series found in a folder (headers only)."""

    uid: str
    number: str
    description: str
    modality: str
    files: tuple[Path, ...]
    localizer: bool

    @property
    def short_uid(self) -> str:
        return self.uid if len(self.uid) <= 16 else "…" + self.uid[-14:]

    def label(self) -> str:
        desc = self.description or "no description"
        return f"{self.short_uid} #{self.number or '?'} '{desc}' {self.modality or '?'} ({len(self.files)} slices)"


# -- finding the series --------------------------------------------------------------------------------
def _candidate_files(path: Path) -> list[Path]:
    if path.is_file():
        return sorted(p for p in path.parent.iterdir() if p.is_file() and not p.name.startswith("."))
    files = []
    for p in sorted(path.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            files.append(p)
            if len(files) > MAX_FILES:
                raise IchsegError(f"{path}: more than {MAX_FILES} files below it; point at one scan's folder")
    return files


def is_dicom_file(path: str | os.PathLike) -> bool:
    """True when ``path`` starts with the DICOM preamble (128 bytes, then ``DICM``)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def is_dicom_folder(path: str | os.PathLike) -> bool:
    """True when a folder holds at least one DICOM file (looked for recursively, stops at the first)."""
    path = Path(path)
    return path.is_dir() and any(p.is_file() and is_dicom_file(p) for p in path.rglob("*"))


def _image_header(pydicom, f: Path, force: bool):
    """The header of an image file, or None for anything else (DICOMDIR, reports, damaged or foreign files)."""
    try:
        ds = pydicom.dcmread(f, stop_before_pixels=True, force=force)
    except Exception:  # a damaged file among many is skipped like any non-image
        return None
    if "SeriesInstanceUID" not in ds or "Rows" not in ds or "Columns" not in ds:
        return None
    return ds


def list_series(path: str | os.PathLike) -> list[SeriesInfo]:
    """The image series under a folder (or, for a file, in its folder), from headers only."""
    pydicom = _pydicom()
    path = Path(path)
    if not path.exists():
        raise IchsegError(f"{path}: file or folder not found")
    groups: dict[str, list] = defaultdict(list)
    files = _candidate_files(path)
    tagged = [f for f in files if is_dicom_file(f)]
    for f in tagged or files:  # no file with the DICM preamble: try reading them without it (old exports)
        ds = _image_header(pydicom, f, force=not tagged)
        if ds is not None:
            groups[str(ds.SeriesInstanceUID)].append((f, ds))
    out = []
    for uid, members in groups.items():
        ds0 = members[0][1]
        scouts = all("LOCALIZER" in [str(v).upper() for v in (d.get("ImageType") or [])] for _, d in members)
        out.append(SeriesInfo(uid, str(ds0.get("SeriesNumber", "") or ""), str(ds0.get("SeriesDescription", "") or ""),
                              str(ds0.get("Modality", "") or ""), tuple(f for f, _ in members), scouts))
    if path.is_file():
        own = _image_header(pydicom, path, force=True)
        out = [s for s in out if own is not None and s.uid == str(own.SeriesInstanceUID)]
    return sorted(out, key=lambda s: (s.number.zfill(8), s.uid))


def _pick(path: Path, found: list[SeriesInfo], series: str | None) -> SeriesInfo:
    if not found:
        raise IchsegError(f"{path}: no DICOM image found")
    listing = "; ".join(s.label() for s in found)
    if series is not None:
        key = str(series).strip().lstrip("…")
        tiers = ([s for s in found if s.uid == key], [s for s in found if s.number == key],
                 [s for s in found if len(key) >= 4 and s.uid.endswith(key)],
                 [s for s in found if key and s.description.strip().lower() == key.lower()])
        hits = next((t for t in tiers if t), [])
        if len(hits) != 1:
            what = "no series matches" if not hits else f"{len(hits)} series match"
            raise IchsegError(f"{path}: {what} --series {key!r}; series here: {listing}")
        return hits[0]
    images = [s for s in found if not s.localizer] or found
    if len(images) > 1:
        raise IchsegError(f"{path}: {len(images)} series found, pick one with --series UID|NUMBER|DESCRIPTION: {listing}")
    return images[0]


# -- geometry ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Geometry:
    order: np.ndarray  # file indices sorted along the normal
    row_dir: np.ndarray  # LPS unit vector of increasing column index
    col_dir: np.ndarray  # LPS unit vector of increasing row index
    normal: np.ndarray
    pixel: tuple[float, float]  # (between columns, between rows) mm
    z: np.ndarray  # positions along the normal, sorted (mm)
    offsets: np.ndarray  # (K, 2) in-plane offset of each sorted slice from the first, in (column, row) pixels
    origin: np.ndarray  # LPS position of the first sorted slice's first pixel


def _floats(ds, tag: str, n: int, where: Path) -> np.ndarray:
    value = ds.get(tag)
    if value is None or len(value) != n:
        raise IchsegError(f"{where}: {tag} missing or malformed; cannot place the slice in space")
    return np.array([float(v) for v in value], dtype=np.float64)


def _geometry(folder: Path, headers: list) -> _Geometry:
    f0, ds0 = headers[0]
    iop = _floats(ds0, "ImageOrientationPatient", 6, f0)
    ps = _floats(ds0, "PixelSpacing", 2, f0)  # (between rows, between columns)
    size = (int(ds0.Rows), int(ds0.Columns))
    for f, ds in headers[1:]:
        if np.abs(_floats(ds, "ImageOrientationPatient", 6, f) - iop).max() > 1e-4:
            raise IchsegError(f"{f}: slice orientation differs from {f0.name}'s within one series (a scout in the series?)")
        if (int(ds.Rows), int(ds.Columns)) != size or np.abs(_floats(ds, "PixelSpacing", 2, f) - ps).max() > 1e-4:
            raise IchsegError(f"{f}: slice size or pixel spacing differs from {f0.name}'s within one series")
    row, col = iop[:3] / np.linalg.norm(iop[:3]), iop[3:] / np.linalg.norm(iop[3:])
    if abs(float(row @ col)) > 1e-3 or min(ps) <= 0:
        raise IchsegError(f"{f0}: ImageOrientationPatient is not two perpendicular directions "
                          "or PixelSpacing is not positive")
    normal = np.cross(row, col)
    ipp = np.stack([_floats(ds, "ImagePositionPatient", 3, f) for f, ds in headers])
    z_all = ipp @ normal
    order = np.argsort(z_all, kind="stable")
    z, ipp = z_all[order], ipp[order]
    if len(z) > 1 and np.diff(z).min() < 1e-3 * max(float(np.median(np.diff(z))), 1e-6):
        k = int(np.argmin(np.diff(z)))
        raise IchsegError(f"{folder}: {headers[order[k]][0].name} and {headers[order[k + 1]][0].name} lie at the same "
                          "position (two acquisitions in one series?); export each separately")
    rel = ipp - ipp[0]
    inplane = rel - np.outer(rel @ normal, normal)
    offsets = np.stack([inplane @ row / ps[1], inplane @ col / ps[0]], axis=1)
    return _Geometry(order, row, col, normal, (float(ps[1]), float(ps[0])), z, offsets, ipp[0])


def _tilt_degrees(g: _Geometry) -> float:
    mm = np.hypot(g.offsets[:, 0] * g.pixel[0], g.offsets[:, 1] * g.pixel[1])
    dz = np.abs(g.z - g.z[0])
    if len(mm) < 2 or mm.max() <= TILT_PIXEL_TOL * min(g.pixel):
        return 0.0
    return float(np.degrees(np.arctan2(mm[1:], dz[1:])).max())


def _slice_spacing(folder: Path, g: _Geometry, ds0) -> tuple[float, bool]:
    """(median spacing along the normal, whether the slices must be resampled onto it)."""
    if len(g.z) < 2:
        # one slice: it covers its thickness (SpacingBetweenSlices of a lone slice can be anything)
        given = ds0.get("SliceThickness") or ds0.get("SpacingBetweenSlices") or 1.0
        return float(given), False
    d = np.diff(g.z)
    med = float(np.median(d))
    if d.max() > MAX_GAP_RATIO * med * (1 + SPACING_RTOL):
        k = int(np.argmax(d))
        raise IchsegError(f"{folder}: a gap of {d[k]:.2f} mm between slices {k} and {k + 1} (median spacing {med:.2f} mm; "
                          f"over {MAX_GAP_RATIO:g}x): slices are missing, refusing to interpolate across it")
    return med, bool(np.abs(d - med).max() > SPACING_RTOL * med)


# -- voxels --------------------------------------------------------------------------------------------
def _with_transfer_syntax(ds):
    """A bare data set (no file meta) was read in some encoding: name it so the pixels decode."""
    from pydicom.dataset import FileMetaDataset
    from pydicom import uid

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return ds
    implicit, little = getattr(ds, "original_encoding", (True, True))
    ds.file_meta = meta if meta is not None else FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = (uid.ImplicitVRLittleEndian if implicit else
                                      uid.ExplicitVRLittleEndian if little else uid.ExplicitVRBigEndian)
    return ds


def _hu_slice(ds, f: Path) -> np.ndarray:
    ds = _with_transfer_syntax(ds)
    try:
        raw = ds.pixel_array
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IchsegError(f"{f}: cannot decode the pixels ({msg}); {INSTALL_HINT}") from None
    if raw.ndim != 2:
        raise IchsegError(f"{f}: expected one grey-level slice per file, pixels have shape {raw.shape} "
                          "(enhanced multi-frame CT is not supported; export single-frame slices)")
    slope, inter = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    return (raw.astype(np.float64) * slope + inter).astype(np.float32)


def _untilt(stack: np.ndarray, g: _Geometry) -> np.ndarray:
    """Shift each slice (K, rows, cols) in its plane so all share the first slice's in-plane origin."""
    from scipy import ndimage

    fill = float(stack.min())
    out = np.empty_like(stack)
    for k in range(len(stack)):
        dc, dr = g.offsets[k]
        out[k] = ndimage.shift(stack[k], (dr, dc), order=1, mode="constant", cval=fill)
    return out


def _regular_z(stack: np.ndarray, z: np.ndarray, spacing: float) -> np.ndarray:
    """Resample (K, rows, cols) at positions z onto z[0] + spacing * t (linear along the normal)."""
    n = int(round((z[-1] - z[0]) / spacing)) + 1
    idx = np.interp(z[0] + spacing * np.arange(n), z, np.arange(len(z), dtype=np.float64))
    lo = np.floor(idx).astype(int)
    hi = np.minimum(lo + 1, len(z) - 1)
    w = (idx - lo).astype(np.float32)[:, None, None]
    return (1 - w) * stack[lo] + w * stack[hi]


def _read_stack(info: SeriesInfo, g: _Geometry, limit: int) -> np.ndarray:
    pydicom = _pydicom()
    files = [info.files[i] for i in g.order]
    ds0 = pydicom.dcmread(files[0], stop_before_pixels=True, force=True)
    nbytes = len(files) * int(ds0.Rows) * int(ds0.Columns) * 4
    if nbytes > limit:
        raise IchsegError(f"{files[0].parent}: series of {len(files)} x {ds0.Rows} x {ds0.Columns} is "
                          f"{nbytes / 1024**3:.1f} GiB as float32, over the {limit / 1024**3:.1f} GiB limit")
    stack = np.empty((len(files), int(ds0.Rows), int(ds0.Columns)), dtype=np.float32)
    for k, f in enumerate(files):
        stack[k] = _hu_slice(pydicom.dcmread(f, force=True), f)
    return stack


def _optional_float(value) -> float | None:
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def _metadata(info: SeriesInfo, ds0, g: _Geometry, spacing: float, tilt: float, notes: list[str]) -> dict:
    thick = _optional_float(ds0.get("SliceThickness"))
    return {
        "format": "dicom",
        "series_uid": info.uid,
        "series_number": info.number,
        "series_description": info.description,
        "modality": info.modality,
        "n_files": len(info.files),  # the slices as stored; the array may hold more after resampling
        "slice_thickness_mm": thick,
        "slice_spacing_mm": round(spacing, 6),
        "pixel_spacing_mm": [g.pixel[1], g.pixel[0]],  # DICOM order: between rows, between columns
        "gantry_tilt_deg": round(tilt, 3),  # measured from the positions (0 for a single slice)
        "gantry_detector_tilt_deg": _optional_float(ds0.get("GantryDetectorTilt")),  # as the header states
        "convolution_kernel": str(ds0.get("ConvolutionKernel", "") or ""),
        "manufacturer": str(ds0.get("Manufacturer", "") or ""),
        "corrections": notes,
    }


def read_series_grid(path: str | os.PathLike, series: str | None = None, *,
                     max_bytes: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """One CT series -> (HU (columns, rows, slices) float32, RAS affine of that grid, metadata).

    The grid is the series' own: columns and rows as stored, slices sorted along the normal,
    after tilt correction and spacing regularisation (see the module docstring).
    """
    pydicom = _pydicom()
    path = Path(path)
    info = _pick(path, list_series(path), series)
    if info.modality.upper() != "CT":
        raise IchsegError(f"{path}: series {info.short_uid} is modality {info.modality or 'unknown'}, not CT; "
                          "only CT carries Hounsfield units")
    headers = [(f, pydicom.dcmread(f, stop_before_pixels=True, force=True)) for f in info.files]
    g = _geometry(path, headers)
    ds0 = headers[g.order[0]][1]
    spacing, uneven = _slice_spacing(path, g, ds0)
    tilt = _tilt_degrees(g)
    if tilt > MAX_TILT_DEG:
        raise IchsegError(f"{path}: slice positions shear {tilt:.1f}° off the orientation normal (over "
                          f"{MAX_TILT_DEG:g}° of gantry tilt): positions and orientation disagree")
    stack = _read_stack(info, g, MAX_VOLUME_BYTES if max_bytes is None else int(max_bytes))
    notes = []
    if tilt > 0:
        stack = _untilt(stack, g)
        notes.append(f"gantry tilt {tilt:.2f}° corrected by in-plane shifts")
    if uneven:
        d = np.diff(g.z)
        stack = _regular_z(stack, g.z, spacing)
        notes.append(f"uneven slice spacing {d.min():.2f}-{d.max():.2f} mm resampled to {spacing:.3f} mm")
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1] = g.row_dir * g.pixel[0], g.col_dir * g.pixel[1]
    lps[:3, 2], lps[:3, 3] = g.normal * spacing, g.origin
    data = stack.transpose(2, 1, 0)  # (K, rows, cols) -> (cols, rows, K), slices contiguous as NIfTI's
    return data, _LPS_TO_RAS @ lps, _metadata(info, ds0, g, spacing, tilt, notes)


def load_series(path: str | os.PathLike, series: str | None = None, *,
                max_bytes: int | None = None) -> tuple[Volume, dict]:
    """One CT series -> (``Volume`` in RAS+ exactly as ``load_volume`` returns a NIfTI, metadata)."""
    data, affine, meta = read_series_grid(path, series, max_bytes=max_bytes)
    shape = tuple(int(s) for s in data.shape)
    ornt = ornt_mod.io_orientation(affine)
    canon = ornt_mod.apply_orientation(data, ornt)
    canon_affine = affine @ ornt_mod.inv_ornt_aff(ornt, shape)
    spacing = tuple(float(s) for s in np.sqrt((canon_affine[:3, :3] ** 2).sum(axis=0)))
    meta["spacing_mm"] = [round(s, 6) for s in spacing]
    return Volume(Path(path), canon, canon_affine, affine, shape, ornt, spacing), meta  # type: ignore[arg-type]


def read_series(path: str | os.PathLike, series: str | None = None, *,
                max_bytes: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """One CT series -> (HU (X, Y, Z) float32 RAS+, its affine, metadata): ``load_volume``'s convention."""
    vol, meta = load_series(path, series, max_bytes=max_bytes)
    return vol.data, vol.affine, meta


def load_scan(path: str | os.PathLike, series: str | None = None, *,
              max_bytes: int | None = None) -> tuple[Volume, dict]:
    """A NIfTI file, a DICOM file or a folder holding a DICOM series -> (``Volume``, metadata).

    The one entry point for a user's scan: NIfTI goes through ``load_volume`` (``series`` must
    then be None), anything else through ``load_series``.
    """
    path = Path(path)
    if path.is_file() and is_nifti_name(path):
        if series is not None:
            raise IchsegError(f"{path}: --series applies to DICOM input, this is a NIfTI file")
        vol = load_volume(path, max_bytes=max_bytes)
        return vol, {"format": "nifti", "spacing_mm": [round(s, 6) for s in vol.spacing]}
    if path.is_file() and not is_dicom_file(path) and _image_header(_pydicom(), path, force=True) is None:
        raise IchsegError(f"{path}: neither NIfTI (.nii, .nii.gz) nor DICOM")
    return load_series(path, series, max_bytes=max_bytes)


# -- writing -------------------------------------------------------------------------------------------
def _ds(value: float) -> str:
    from pydicom.valuerep import format_number_as_ds

    return format_number_as_ds(float(value))


def _series_dataset(pydicom, affine_lps: np.ndarray, shape: tuple[int, int], uids: dict, opts: dict):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.Modality = opts["modality"]
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uids["study"], uids["series"]
    ds.FrameOfReferenceUID = uids["frame"]
    ds.SeriesDescription, ds.SeriesNumber = opts["description"], int(opts["series_number"])
    ds.PatientName, ds.PatientID, ds.PatientPosition = "Phantom^Ichseg", "PHANTOM", opts["patient_position"]
    ds.ImageType = list(opts["image_type"])
    ds.Rows, ds.Columns = int(shape[1]), int(shape[0])
    cols, rows = np.linalg.norm(affine_lps[:3, 0]), np.linalg.norm(affine_lps[:3, 1])
    iop = np.concatenate([affine_lps[:3, 0] / cols, affine_lps[:3, 1] / rows])
    ds.ImageOrientationPatient = [_ds(v) for v in iop]
    ds.PixelSpacing = [_ds(rows), _ds(cols)]
    ds.SliceThickness = _ds(opts["thickness"])
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = _ds(opts["slope"]), _ds(opts["intercept"]), "HU"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    return ds


def write_series(folder: str | os.PathLike, hu: np.ndarray, affine: np.ndarray, *, description: str = "ichseg phantom",
                 series_number: int = 1, modality: str = "CT", slope: float = 1.0, intercept: float = -1024.0,
                 patient_position: str = "HFS", thickness: float | None = None, shuffle_seed: int | None = None,
                 instances_descending: bool = False, uid_seed: str = "ichseg",
                 image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL")) -> list[Path]:
    """Write ``hu`` (columns, rows, slices), voxel -> RAS mm ``affine``, as a DICOM series (one file a slice).

    Stored int16 = round((hu - intercept) / slope); ImagePositionPatient / ImageOrientationPatient /
    PixelSpacing come from the affine (RAS -> LPS). A sheared affine writes a tilted stack.
    ``shuffle_seed`` names the files in a random order unrelated to position;
    ``instances_descending`` numbers the instances from the last slice (as a feet-first export
    does); ``image_type`` ending in LOCALIZER makes a scout. UIDs are derived from ``uid_seed``
    and the description (reproducible). Files are named ``S<series number>_<k>.dcm``, each
    written atomically; an existing file is never overwritten.
    """
    pydicom = _pydicom()
    from pydicom.uid import generate_uid

    from ..utils.atomic import atomic_write_bytes

    hu = np.asarray(hu, dtype=np.float64)
    lps = _LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)
    key = f"{uid_seed}|{description}|{series_number}"
    uids = {"series": generate_uid(entropy_srcs=[key, "series"]),  # one study and frame per uid_seed
            "study": generate_uid(entropy_srcs=[uid_seed, "study"]), "frame": generate_uid(entropy_srcs=[uid_seed, "frame"])}
    opts = dict(modality=modality, description=description, series_number=series_number, slope=slope,
                intercept=intercept, patient_position=patient_position, image_type=image_type,
                thickness=float(np.linalg.norm(lps[:3, 2])) if thickness is None else thickness)
    base = _series_dataset(pydicom, lps, hu.shape[:2], uids, opts)
    n = hu.shape[2]
    names = np.arange(n) if shuffle_seed is None else np.random.default_rng(shuffle_seed).permutation(n)
    stored = np.clip(np.rint((hu - intercept) / slope), -32768, 32767).astype("<i2")
    targets = [Path(folder) / f"S{int(series_number):03d}_{int(names[k]):05d}.dcm" for k in range(n)]
    clash = next((t for t in targets if t.exists()), None)
    if clash is not None:  # checked before writing anything: no half-written series
        raise IchsegError(f"{clash}: already exists; write the series into another folder")
    written = []
    for k in range(n):
        ds = copy.deepcopy(base)
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[key, "sop", str(k)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = int(n - k if instances_descending else k + 1)
        ds.ImagePositionPatient = [_ds(v) for v in (lps @ np.array([0.0, 0.0, k, 1.0]))[:3]]
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        buf = io.BytesIO()
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
        written.append(atomic_write_bytes(targets[k], buf.getvalue()))
    return written


__all__ = ["MAX_GAP_RATIO", "MAX_TILT_DEG", "SPACING_RTOL", "SeriesInfo", "is_dicom_file", "is_dicom_folder",
           "list_series", "load_scan", "load_series", "read_series", "read_series_grid", "write_series"]

"""Reading CT volumes and masks from NIfTI, checked and in one canonical orientation.

Every volume is read the same way whatever dataset it comes from (all three
datasets ship NIfTI):

1. the header is checked before any voxel is read: a readable NIfTI, 3 dimensions (a 4th of
   length 1 is dropped), and a size (header shape x 4 bytes, the float32 we read into) under a
   limit, so a header claiming absurd dimensions is refused before anything is allocated;
2. the voxels are read with ``scl_slope``/``scl_inter`` applied (nibabel's ``get_fdata``), so
   the image is in Hounsfield units whatever integer type the file stores;
3. the array is reoriented to RAS+ (what ``nibabel.as_closest_canonical`` does; the
   orientation transform is kept so predictions can be mapped back onto the file's grid);
4. non-finite voxels are refused;
5. a scan handed to ``prepare`` or ``predict`` must look like CT in Hounsfield units
   (``check_hounsfield``): a model that has only seen HU windows answers an MR, a normalised
   volume or a CT stored without its rescale intercept with a confident, wrong "no bleed".

Non-NIfTI input gets a hint instead of a bare "not NIfTI": a folder or file of DICOM is named as
such (``dicom_hint``: ``ichseg predict`` reads it through ``ichseg.data.dicom``; a dataset must be
NIfTI), since that is how head CT leaves the scanner.

Masks go through the same path; any label > 0 is hemorrhage, the label values themselves are
kept (BHSD stores the subtype as 1-5, Wu et al. 2023).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import orientations as ornt_mod

from ..errors import IchsegError

#: Largest volume read into memory (float32 voxels); a header claiming more is refused.
MAX_VOLUME_BYTES = int(os.environ.get("ICHSEG_MAX_VOLUME_BYTES", 2 * 1024**3))
#: Image and mask affines must agree to this (mm for the translation, unitless elsewhere).
AFFINE_TOLERANCE = 1e-3
NIFTI_SUFFIXES = (".nii", ".nii.gz")
_CANONICAL = np.array([[0, 1], [1, 1], [2, 1]], dtype=float)  # RAS+: axis i -> i, not flipped


def is_nifti_name(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def volume_id(path: str | os.PathLike) -> str:
    """File name without ``.nii``/``.nii.gz``."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class Volume:
    """A volume in RAS+ orientation, with what is needed to go back to the file's grid.

    data:              (X, Y, Z) float32 (HU for images, label values for masks); Z is axial,
                       inferior to superior. Possibly a strided view of the file's array.
    affine:            voxel -> world (mm) for ``data``.
    original_affine:   the file's affine;   original_shape: the file's (3D) shape.
    ornt:              nibabel orientation transform from the file's axes to ``data``'s.
    spacing:           (x, y, z) voxel size of ``data`` in mm; z is the slice spacing.
    """

    path: Path
    data: np.ndarray
    affine: np.ndarray
    original_affine: np.ndarray
    original_shape: tuple[int, int, int]
    ornt: np.ndarray
    spacing: tuple[float, float, float]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.data.shape)  # type: ignore[return-value]

    @property
    def n_slices(self) -> int:
        return int(self.data.shape[2])

    def source_slice(self, k: np.ndarray | int) -> np.ndarray:
        """Index along the file's own axis of canonical axial slice(s) ``k``."""
        src_axis = int(np.nonzero(self.ornt[:, 0] == 2)[0][0])
        n = self.original_shape[src_axis]
        k = np.asarray(k)
        return np.where(self.ornt[src_axis, 1] < 0, n - 1 - k, k)


@dataclass(frozen=True)
class VolumeHeader:
    """What the header says, read without touching the voxels."""

    path: Path
    shape: tuple[int, int, int]
    affine: np.ndarray
    ornt: np.ndarray
    canonical_shape: tuple[int, int, int]
    canonical_spacing: tuple[float, float, float]

    @property
    def n_slices(self) -> int:
        return int(self.canonical_shape[2])


#: Voxel types a CT volume or a label mask can be stored as (numpy kinds: signed, unsigned
#: integer, floating point); complex, RGB and 1-bit types hold no Hounsfield number.
REAL_KINDS = "iuf"
#: Air in a CT is -1000 HU (water 0); scanners clamp it at -1024. A head CT's field of view always
#: holds some of it around the head; ``check_hounsfield`` asks for this share of voxels in this range.
AIR_HU = (-1100.0, -850.0)
MIN_AIR_FRACTION = 1e-3
#: Above the densest bone (cortical bone ~2000 HU; 12-bit scanners clamp at 3071) only metal lies;
#: more than half a percent of the voxels there is not a head CT in HU (e.g. HU x 10 stored unscaled).
MAX_HU_P995 = 4000.0

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")


def is_dicom_file(path: str | os.PathLike) -> bool:
    """A DICOM Part 10 file (``DICM`` at byte 128) or a file named like one."""
    path = Path(path)
    if str(path).lower().endswith(DICOM_SUFFIXES):
        return True
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def dicom_files(folder: str | os.PathLike) -> list[Path]:
    """The DICOM files directly in ``folder`` (sorted; hidden files skipped)."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".") and is_dicom_file(p))


def dicom_hint(path: Path) -> str | None:
    """The one-line explanation for DICOM handed where a NIfTI volume is read, else None."""
    if path.is_dir():
        n = len(dicom_files(path))
        if n:
            return (f"{path}: a folder of {n} DICOM file(s), not a NIfTI volume; `ichseg predict` reads a DICOM "
                    f"series as it is, a dataset needs NIfTI (e.g. `dcm2niix -z y -o OUT {path}`)")
        return None
    if path.is_file() and is_dicom_file(path):
        return (f"{path}: a DICOM file (one image of a series), not a NIfTI volume; `ichseg predict` reads its "
                f"series as it is, a dataset needs NIfTI (e.g. `dcm2niix -z y -o OUT {path.parent}`)")
    return None


def _open(path: Path) -> nib.Nifti1Image:
    hint = dicom_hint(path)
    if hint:
        raise IchsegError(hint)
    if path.is_dir():
        raise IchsegError(f"{path}: a folder, not a NIfTI file (expected a .nii or .nii.gz volume)")
    if not path.is_file():
        raise IchsegError(f"{path}: file not found")
    if not is_nifti_name(path):
        raise IchsegError(f"{path}: not a NIfTI file (expected .nii or .nii.gz)")
    from nibabel.imageglobals import LoggingOutputSuppressor

    try:
        with LoggingOutputSuppressor():  # nibabel would also log its complaint to stderr: one line is ours
            img = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for garbage input
        if str(exc).startswith("data code"):  # a NIfTI datatype nibabel cannot read, e.g. 1 = 1-bit "binary"
            raise IchsegError(f"{path}: stores its voxels in a data type nibabel cannot read ({_first_line(exc)}); "
                              f"expected an integer or floating-point type (e.g. int16 HU)") from None
        raise IchsegError(f"{path}: not a readable NIfTI file ({type(exc).__name__}: {_first_line(exc)})") from None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise IchsegError(f"{path}: not a NIfTI image (nibabel read it as {type(img).__name__})")
    return img


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else "no message"


def _check_real_dtype(path: Path, img: nib.Nifti1Image) -> None:
    dtype = img.header.get_data_dtype()
    if dtype.kind not in REAL_KINDS or dtype.fields is not None:
        raise IchsegError(f"{path}: stores its voxels as {_dtype_name(dtype)}, which holds no real value per voxel; "
                          f"expected an integer or floating-point type (e.g. int16 HU)")


def _dtype_name(dtype: np.dtype) -> str:
    if dtype.fields is not None:
        return f"a structured type {dtype.descr} (RGB?)" if len(dtype.fields) in (3, 4) else f"a structured type {dtype.descr}"
    return {"c": f"complex ({dtype.name})", "b": "boolean"}.get(dtype.kind, dtype.name)


def read_header(path: str | os.PathLike, *, max_bytes: int | None = None) -> VolumeHeader:
    """Open ``path`` and check its header (dimensions, size, affine) without reading voxels."""
    path = Path(path)
    img = _open(path)
    shape = tuple(int(s) for s in img.header.get_data_shape())
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise IchsegError(f"{path}: expected a 3D volume, the header says {len(shape)}D with shape {shape}")
    if min(shape) < 1:
        raise IchsegError(f"{path}: the header declares an empty dimension {shape}")
    _check_real_dtype(path, img)
    limit = MAX_VOLUME_BYTES if max_bytes is None else int(max_bytes)
    nbytes = int(np.prod(shape, dtype=np.float64)) * 4
    if nbytes > limit:
        raise IchsegError(
            f"{path}: header claims shape {shape} ({nbytes / 1024**3:.1f} GiB as float32), "
            f"over the {limit / 1024**3:.1f} GiB limit; refusing to read it"
        )
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise IchsegError(f"{path}: the header's affine is singular or not finite")
    # A stored file shorter than the header promises is truncated (only checkable uncompressed).
    if not str(path).lower().endswith(".gz"):
        needed = int(img.header.get_data_offset()) + int(np.prod(img.header.get_data_shape())) * img.header.get_data_dtype().itemsize
        if path.stat().st_size < needed:
            raise IchsegError(f"{path}: truncated file ({path.stat().st_size} bytes, the header needs {needed})")
    return VolumeHeader(path, shape, affine, *_geometry(affine, shape))  # type: ignore[arg-type]


def _geometry(affine: np.ndarray, shape: tuple[int, ...]):
    """(orientation transform to RAS+, canonical shape, canonical spacing) of a grid."""
    ornt = ornt_mod.io_orientation(affine)
    canon_affine = affine @ ornt_mod.inv_ornt_aff(ornt, shape)
    canon_shape = tuple(int(shape[int(i)]) for i in np.argsort(ornt[:, 0]))
    spacing = tuple(float(z) for z in np.sqrt((canon_affine[:3, :3] ** 2).sum(axis=0)))
    return ornt, canon_shape, spacing


def load_volume(path: str | os.PathLike, *, mask: bool = False, max_bytes: int | None = None) -> Volume:
    """Read a NIfTI image (in HU) or mask (label values) into RAS+ orientation.

    Raises ``IchsegError`` naming the file for anything unreadable or implausible.
    """
    header = read_header(path, max_bytes=max_bytes)
    path = header.path
    img = nib.load(str(path))
    stored = img.header.get_data_dtype()
    try:
        if mask and stored.kind in "iub" and img.dataobj.slope == 1 and img.dataobj.inter == 0:
            raw = np.asanyarray(img.dataobj)  # integer labels as stored: no float round trip
            data = np.clip(raw, 0, 255).astype(np.float32)
        else:
            data = img.get_fdata(dtype=np.float32)  # applies scl_slope / scl_inter -> HU
    except Exception as exc:
        raise IchsegError(f"{path}: cannot read the voxels, the file is truncated or corrupt "
                          f"({type(exc).__name__}: {_first_line(exc)})") from None
    data = data.reshape(header.shape)
    if stored.kind not in "iub":  # integers (even scaled ones) are always finite
        bad = ~np.isfinite(data)
        if bad.any():
            raise IchsegError(f"{path}: {int(bad.sum())} voxel(s) are NaN or infinite")
    if mask and stored.kind not in "iub":
        # any label > 0 is hemorrhage; keep the label value (BHSD subtypes) as an integer
        data = np.where(data > 0, np.maximum(np.rint(data), 1), 0).astype(np.float32)
    return _canonical(path, data, header.affine, header.shape, header.ornt, header.canonical_spacing)


def _canonical(path: Path, data: np.ndarray, affine: np.ndarray, shape, ornt, spacing) -> Volume:
    # a view, no copy: NIfTI voxels are stored x-fastest, so (X, Y, Z) arrays read in Fortran order
    # and their axial slices (Z, Y, X) are already contiguous in memory
    canon = ornt_mod.apply_orientation(data, ornt)
    canon_affine = affine @ ornt_mod.inv_ornt_aff(ornt, shape)
    return Volume(path, canon, canon_affine, affine, tuple(shape), ornt, spacing)


def volume_from_array(path: str | os.PathLike, data: np.ndarray, affine: np.ndarray) -> Volume:
    """A ``Volume`` from a 3D array of real values (HU) on the grid of ``affine`` (voxel -> mm,
    RAS+ world as NIfTI's): what any reader other than NIfTI's (e.g. a DICOM series) hands on, so
    the scan goes through the very same orientation, checks and mapping back as a NIfTI file.
    ``path`` names the source in messages."""
    path = Path(path)
    data = np.asarray(data)
    if data.dtype.kind not in REAL_KINDS:
        raise IchsegError(f"{path}: voxels of type {_dtype_name(data.dtype)}; expected real numbers")
    if data.ndim != 3 or min(data.shape) < 1:
        raise IchsegError(f"{path}: expected a 3D volume, got shape {data.shape}")
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise IchsegError(f"{path}: the affine is not a finite, invertible 4x4 matrix")
    data = data.astype(np.float32, copy=False)
    bad = ~np.isfinite(data)
    if bad.any():
        raise IchsegError(f"{path}: {int(bad.sum())} voxel(s) are NaN or infinite")
    shape = tuple(int(s) for s in data.shape)
    ornt, _, spacing = _geometry(affine, shape)
    return _canonical(path, data, affine, shape, ornt, spacing)


def check_hounsfield(vol: Volume) -> None:
    """Refuse a volume that does not look like CT in Hounsfield units (values after
    ``scl_slope``/``scl_inter``): some air near -1000 HU (``AIR_HU``, at least ``MIN_AIR_FRACTION``
    of the voxels) and its 99.5th percentile under ``MAX_HU_P995``. An MR (0 to a few thousand),
    a CT stored without its -1024 intercept (air at 0), a normalised volume (-3 to 3) or HU x 10
    all fail it; one line says what was found and what is expected."""
    sample = vol.data[::2, ::2, :]  # every 4th voxel of each slice: the same statistics, 4x faster
    air = float(np.count_nonzero((sample >= AIR_HU[0]) & (sample <= AIR_HU[1]))) / sample.size
    lo, hi = (float(v) for v in np.percentile(sample, [0.5, 99.5]))
    if air >= MIN_AIR_FRACTION and hi <= MAX_HU_P995:
        return
    found = f"values {lo:.4g} to {hi:.4g} (0.5th-99.5th percentile), {100 * air:.2g}% of voxels near air"
    raise IchsegError(
        f"{vol.path}: does not look like CT in Hounsfield units: {found}; expected air near -1000 HU "
        f"(some voxels in {AIR_HU[0]:.0f}..{AIR_HU[1]:.0f}) and bone under {MAX_HU_P995:.0f} HU "
        f"(an MR, a normalised volume, or a CT saved without its rescale slope/intercept?)"
    )


def check_same_grid(image: VolumeHeader | Volume, mask: VolumeHeader | Volume, tol: float = AFFINE_TOLERANCE) -> None:
    """Refuse an image/mask pair whose file shapes or affines differ (beyond ``tol``)."""
    img_shape = image.shape if isinstance(image, VolumeHeader) else image.original_shape
    msk_shape = mask.shape if isinstance(mask, VolumeHeader) else mask.original_shape
    if tuple(img_shape) != tuple(msk_shape):
        raise IchsegError(f"{mask.path}: mask shape {tuple(msk_shape)} differs from image shape {tuple(img_shape)} ({image.path.name})")
    a = image.affine if isinstance(image, VolumeHeader) else image.original_affine
    b = mask.affine if isinstance(mask, VolumeHeader) else mask.original_affine
    diff = float(np.abs(a - b).max())
    if diff > tol:
        raise IchsegError(f"{mask.path}: mask affine differs from the image's ({image.path.name}) by up to {diff:.3g} (tolerance {tol:g})")


def load_pair(image_path: str | os.PathLike, mask_path: str | os.PathLike, *, max_bytes: int | None = None,
              tol: float = AFFINE_TOLERANCE) -> tuple[Volume, Volume]:
    """Read an image and its mask, checking both headers and their agreement before any voxels,
    and that the image is in Hounsfield units (``check_hounsfield``)."""
    check_same_grid(read_header(image_path, max_bytes=max_bytes), read_header(mask_path, max_bytes=max_bytes), tol)
    image = load_volume(image_path, max_bytes=max_bytes)
    check_hounsfield(image)
    return image, load_volume(mask_path, mask=True, max_bytes=max_bytes)


def to_original_grid(canonical: np.ndarray, vol: Volume | VolumeHeader) -> np.ndarray:
    """Inverse of the reorientation: an (X, Y, Z) RAS+ array back to the file's voxel order."""
    back = ornt_mod.ornt_transform(_CANONICAL, vol.ornt)
    out = ornt_mod.apply_orientation(canonical, back)
    shape = vol.original_shape if isinstance(vol, Volume) else vol.shape
    if tuple(out.shape) != tuple(shape):  # pragma: no cover - guards the orientation algebra
        raise IchsegError(f"{vol.path}: internal error mapping back to shape {shape}, got {out.shape}")
    return np.ascontiguousarray(out)


def write_nifti(path: str | os.PathLike, data: np.ndarray, affine: np.ndarray, *, dtype=np.int16,
                slope: float = 1.0, inter: float = 0.0, compresslevel: int = 1) -> Path:
    """Write ``data`` (world values, e.g. HU) as NIfTI-1 storing ``(data - inter) / slope`` as ``dtype``.

    The scaling is written exactly as given (nibabel would otherwise choose its own), so files
    with e.g. ``scl_slope=0.5, scl_inter=-1024`` can be produced on purpose. ``.nii.gz`` paths are
    gzip-compressed. The file appears atomically.
    """
    from ..utils.atomic import atomic_write_bytes  # local: keeps import cost off the read path
    import gzip
    import io

    path = Path(path)
    dtype = np.dtype(dtype)
    data = np.asarray(data)
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(dtype)
    hdr.set_data_shape(data.shape)
    hdr.set_qform(affine, code=1)
    hdr.set_sform(affine, code=1)
    hdr.set_xyzt_units("mm", "sec")
    hdr["scl_slope"] = slope
    hdr["scl_inter"] = inter
    hdr["vox_offset"] = 352
    buf = io.BytesIO()
    out = gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=compresslevel, mtime=0) if str(path).lower().endswith(".gz") else buf
    out.write(hdr.binaryblock + b"\x00" * 4)
    # one slice (last axis) at a time: NIfTI's Fortran order is the slices' Fortran orders in turn,
    # so a large volume is never held again in float64 or as one uncompressed block
    for k in range(data.shape[-1] if data.ndim else 1):
        out.write(_stored(data[..., k] if data.ndim else data, dtype, slope, inter).tobytes(order="F"))
    if out is not buf:
        out.close()
    blob = buf.getvalue()
    return atomic_write_bytes(path, blob)


def _stored(values: np.ndarray, dtype: np.dtype, slope: float, inter: float) -> np.ndarray:
    """World values -> what the file stores: ``(values - inter) / slope`` as ``dtype`` (integers
    rounded and clipped to the type's range)."""
    if slope == 1.0 and inter == 0.0 and dtype.kind == "f":
        return values.astype(dtype, copy=False)
    raw = np.asarray(values, dtype=np.float64)
    if slope != 1.0 or inter != 0.0:
        raw = (raw - inter) / slope
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        raw = np.clip(np.rint(raw), info.min, info.max)
    return raw.astype(dtype)

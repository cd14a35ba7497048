"""A real whole-head CT volume: ``Cranium.inv3`` of Debian's ``invesalius-examples`` package (GPL-2).

The InVesalius project file is a gzipped tar holding ``main.plist`` (the metadata: modality, the
voxel matrix's file name, shape, dtype and spacing) and ``matrix.dat`` (the voxels, raw int16 HU,
C order ``(slice, row, column)``). ``Cranium.inv3`` is a non-contrast head CT without hemorrhage,
108 axial slices of 256 x 256 at 0.957 x 0.957 mm, 1.5 mm apart, from the maxilla to the vertex.
It is read from the installed package at run time and never copied into the repository.

Orientation of the matrix, checked on the anatomy (``tests/test_data_invesalius.py``): slices go
inferior to superior (the first ones hold the maxilla, the last the vertex) and rows go posterior to
anterior (the face is at high row numbers, the scanner's head rest behind the occiput at low ones).
Columns keep DICOM's direction, towards the patient's left (InVesalius flips the image's rows, not
its columns); a normal head is nearly symmetric, so that one axis cannot be checked on anatomy.
``read_cranium`` returns the voxels in the project's volume convention (``ichseg.data.volumes``):
RAS+ ``(X, Y, Z)``, ``Z`` axial from inferior to superior, and the matching affine.
"""

from __future__ import annotations

import plistlib
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import IchsegError

CRANIUM_PATH = Path("/usr/share/doc/invesalius-examples/examples/Cranium.inv3")
INSTALL_HINT = "install Debian's invesalius-examples package (apt-get install invesalius-examples, as root)"
#: the largest matrix accepted (a head CT is ~14 MB; a corrupt header must not allocate gigabytes)
MAX_MATRIX_BYTES = 512 * 1024**2


@dataclass(frozen=True)
class RealVolume:
    """A real CT volume in RAS+ voxel order."""

    name: str
    hu: np.ndarray  # float32 (X, Y, Z)
    affine: np.ndarray  # RAS+ voxel -> mm
    spacing: tuple[float, float, float]  # (x, y, z) mm
    source: Path


def _members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """Regular files of the archive by base name (InVesalius nests them in one temporary folder)."""
    return {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}


def _read_member(tar: tarfile.TarFile, members: dict, name: str, path: Path) -> bytes:
    if name not in members:
        raise IchsegError(f"{path}: not an InVesalius project ({name} missing from the archive)")
    f = tar.extractfile(members[name])
    if f is None:
        raise IchsegError(f"{path}: cannot read {name} from the archive")
    return f.read()


def _matrix_spec(meta: dict, path: Path) -> tuple[str, tuple[int, int, int], np.dtype, tuple[float, float, float]]:
    try:
        if str(meta.get("modality", "CT")).upper() != "CT":
            raise IchsegError(f"{path}: modality {meta.get('modality')!r}, not CT")
        mat = meta["matrix"]
        shape = tuple(int(v) for v in mat["shape"])
        dtype = np.dtype(str(mat["dtype"])).newbyteorder("<")
        spacing = tuple(float(v) for v in meta["spacing"])
        name = str(mat["filename"])
    except (KeyError, TypeError, ValueError) as exc:
        raise IchsegError(f"{path}: main.plist lacks a usable matrix description ({type(exc).__name__}: {exc})") from None
    if len(shape) != 3 or min(shape) < 1 or len(spacing) != 3 or min(spacing) <= 0 or dtype.kind not in "iu":
        raise IchsegError(f"{path}: main.plist describes shape {shape}, spacing {spacing}, dtype {dtype}; "
                          "expected a 3D integer matrix with positive spacing")
    if int(np.prod(shape)) * dtype.itemsize > MAX_MATRIX_BYTES:
        raise IchsegError(f"{path}: matrix of shape {shape} is larger than {MAX_MATRIX_BYTES} bytes")
    return name, shape, dtype, spacing  # type: ignore[return-value]


def read_inv3(path: str | Path) -> RealVolume:
    """Read an InVesalius ``.inv3`` project of an axial CT into a RAS+ ``RealVolume``."""
    path = Path(path)
    if not path.is_file():
        raise IchsegError(f"{path}: not found; {INSTALL_HINT}")
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = _members(tar)
            meta = plistlib.loads(_read_member(tar, members, "main.plist", path))
            name, shape, dtype, spacing = _matrix_spec(meta, path)
            raw = _read_member(tar, members, name, path)
    except (tarfile.TarError, OSError, EOFError, plistlib.InvalidFileException) as exc:
        raise IchsegError(f"{path}: not a readable InVesalius project ({type(exc).__name__}: {exc})") from None
    if len(raw) != int(np.prod(shape)) * dtype.itemsize:
        raise IchsegError(f"{path}: {name} holds {len(raw)} bytes, main.plist's shape {shape} of {dtype} needs "
                          f"{int(np.prod(shape)) * dtype.itemsize}")
    if int(meta.get("orientation", 1)) != 1:
        raise IchsegError(f"{path}: orientation {meta.get('orientation')!r}; only axial projects (1) are read")
    matrix = np.frombuffer(raw, dtype=dtype).reshape(shape)  # (slice, row, column)
    # column -> towards the patient's left, row -> anterior, slice -> superior; RAS+ flips the columns
    hu = np.ascontiguousarray(matrix.transpose(2, 1, 0)[::-1], dtype=np.float32)
    dx, dy, dz = spacing[0], spacing[1], spacing[2]  # InVesalius: (column, row, slice) spacing
    affine = np.diag([dx, dy, dz, 1.0])
    affine[:3, 3] = -(np.array(hu.shape) - 1) / 2 * np.array([dx, dy, dz])  # the matrix centred on 0
    return RealVolume(path.stem, np.clip(hu, -1024, 3071), affine, (dx, dy, dz), path)


def read_cranium(path: str | Path | None = None) -> RealVolume:
    """The ``Cranium.inv3`` head CT from the installed ``invesalius-examples`` package."""
    path = Path(path) if path is not None else CRANIUM_PATH
    if not path.is_file():
        raise IchsegError(f"{path}: the real whole-head CT volume is missing; {INSTALL_HINT} "
                          "(with dpkg's path-exclude of /usr/share/doc lifted)")
    return read_inv3(path)


def have_cranium() -> bool:
    return CRANIUM_PATH.is_file()

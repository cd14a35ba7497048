"""The real whole-head CT volume (Cranium.inv3 of Debian's invesalius-examples): read with the
right spacing and orientation, checked on anatomical landmarks; clear one-line errors otherwise."""

from __future__ import annotations

import gzip
import io
import plistlib
import tarfile

import numpy as np
import pytest
from scipy import ndimage

from ichseg.data import invesalius
from ichseg.errors import IchsegError

needs_cranium = pytest.mark.skipif(not invesalius.have_cranium(),
                                   reason=f"{invesalius.CRANIUM_PATH} absent: {invesalius.INSTALL_HINT}")


@pytest.fixture(scope="module")
def cranium():
    return invesalius.read_cranium()


def _head(slice_hu: np.ndarray) -> np.ndarray:
    """The largest soft-tissue-or-denser component of an axial slice (the head, not the head rest)."""
    lab, n = ndimage.label(ndimage.binary_fill_holes(slice_hu > -300))
    if not n:
        return np.zeros(slice_hu.shape, bool)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == sizes.argmax()


@needs_cranium
def test_spacing_shape_and_hu(cranium):
    assert cranium.hu.shape == (256, 256, 108) and cranium.hu.dtype == np.float32
    assert cranium.spacing == pytest.approx((0.957, 0.957, 1.5), abs=1e-3)
    assert np.allclose(np.diag(cranium.affine)[:3], cranium.spacing)  # RAS+: no axis flipped in the affine
    brain = cranium.hu[80:176, 60:200, 75]  # the centre of a slice above the ventricles
    assert 15 <= np.median(brain) <= 40  # parenchyma (this scanner reads white matter at ~20 HU)
    assert cranium.hu.min() >= -1024 and cranium.hu.max() > 1500  # air and cortical bone


@needs_cranium
def test_first_slices_hold_the_maxilla_and_the_last_the_vertex(cranium):
    hu, dz = cranium.hu, cranium.spacing[2]
    areas = np.array([_head(hu[:, :, k]).sum() for k in range(hu.shape[2])]) * cranium.spacing[0] ** 2 / 100  # cm²
    top = int(np.flatnonzero(areas > 1).max())
    # the vertex: the head's cross-section shrinks to nothing within the last ~2 cm, and is largest low down
    assert areas[top] < 0.4 * areas.max() and top >= hu.shape[2] - 1 - int(20 / dz)
    assert areas[:4].mean() > 150 and areas[:4].mean() > 5 * areas[top - 3:top + 1].mean()  # face wide, vertex small
    # the maxilla: the first slices are face, with air (sinuses, mouth, nasal cavity) and bone in front
    low = hu[:, :, :8]
    head = np.stack([_head(low[:, :, k]) for k in range(low.shape[2])], axis=2)
    y = np.broadcast_to(np.arange(hu.shape[1])[None, :, None], low.shape)
    centre = y[head].mean()
    air = head & (low < -400)
    assert air.sum() > 500 and y[air].mean() > centre  # the airway and sinuses lie anterior
    teeth = head & (low > 1200)
    assert teeth.sum() > 50 and y[teeth].mean() > centre  # dense bone of the maxilla and teeth anterior


@needs_cranium
def test_head_measures_19_by_15_cm_at_the_lateral_ventricles(cranium):
    hu = cranium.hu
    # the lateral ventricles: the slice with the most CSF (0-15 HU) deep inside the head
    csf = []
    for k in range(hu.shape[2]):
        head = _head(hu[:, :, k])
        deep = ndimage.binary_erosion(head, iterations=25)
        csf.append(int((deep & (ndimage.uniform_filter(hu[:, :, k], 3) < 15) & (hu[:, :, k] > -20)).sum()))
    k = int(np.argmax(csf))
    assert 0.45 < k / hu.shape[2] < 0.75
    head = _head(hu[:, :, k])
    xs, ys = np.nonzero(head)
    lr = (xs.max() - xs.min() + 1) * cranium.spacing[0] / 10
    ap = (ys.max() - ys.min() + 1) * cranium.spacing[1] / 10
    assert 17.5 <= ap <= 21 and 13.5 <= lr <= 16.5, (ap, lr)


def _inv3(path, meta, matrix: bytes):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("main.plist", plistlib.dumps(meta)), ("matrix.dat", matrix)):
            info = tarfile.TarInfo(f"tmpabc/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buf.getvalue()))
    return path


def test_reader_orientation_on_a_toy_project(tmp_path):
    m = np.zeros((3, 4, 5), np.int16)  # (slice, row, column)
    m[2, 3, 0] = 100  # top slice, most anterior row, first column (the patient's right... of the image: left)
    meta = {"modality": "CT", "orientation": 1, "spacing": [0.5, 0.5, 2.0],
            "matrix": {"filename": "matrix.dat", "shape": [3, 4, 5], "dtype": "int16"}}
    vol = invesalius.read_inv3(_inv3(tmp_path / "toy.inv3", meta, m.tobytes()))
    assert vol.hu.shape == (5, 4, 3) and vol.spacing == (0.5, 0.5, 2.0)
    x, y, z = np.argwhere(vol.hu == 100)[0]
    assert (x, y, z) == (4, 3, 2)  # column 0 is the patient's left-most: the highest RAS x index


@pytest.mark.parametrize("problem", ["missing", "garbage", "short", "no_matrix"])
def test_bad_projects_are_one_line_errors(tmp_path, problem):
    meta = {"modality": "CT", "spacing": [1.0, 1.0, 1.0],
            "matrix": {"filename": "matrix.dat", "shape": [2, 2, 2], "dtype": "int16"}}
    path = tmp_path / "bad.inv3"
    if problem == "garbage":
        path.write_bytes(b"not a tar")
    elif problem == "short":
        _inv3(path, meta, b"\0" * 5)
    elif problem == "no_matrix":
        _inv3(path, {"modality": "CT"}, b"\0" * 16)
    with pytest.raises(IchsegError) as err:
        invesalius.read_inv3(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_package_names_it(tmp_path):
    with pytest.raises(IchsegError, match="invesalius-examples") as err:
        invesalius.read_cranium(tmp_path / "Cranium.inv3")
    assert "\n" not in str(err.value)

"""DICOM input: a series written from a phantom reads back as the NIfTI of the same phantom does
(same HU array, affine, mask and volume) in every orientation the reader claims; series choice,
modality, uneven spacing and gantry tilt behave as documented; pydicom's real CT files read with
head-CT Hounsfield units."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from nibabel import orientations as ornt_mod

from ichseg.data import PrepConfig, load_volume, preprocess_volume, volume_from_slices
from ichseg.data import dicom
from ichseg.data.dicom import load_scan, load_series, read_series, read_series_grid, write_series
from ichseg.data.phantom import DOMAINS, make_volume
from ichseg.data.volumes import write_nifti
from ichseg.errors import IchsegError

from _data_helpers import hide_pydicom

pydicom = pytest.importorskip("pydicom")


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    """A small positive phantom (32 x 32 x 6), HU rounded as any int16 file stores them, and its NIfTI."""
    v = make_volume(np.random.default_rng(3), DOMAINS["instance2022"], 32, 6, positive=True)
    hu = np.rint(v.hu).astype(np.float32)
    path = tmp_path_factory.mktemp("phantom") / "phantom.nii.gz"
    write_nifti(path, hu, v.affine)
    assert v.labels.any()
    return hu, v.affine, path


def _flip(arr, aff, axis):
    """The same world content with voxel axis ``axis`` reversed."""
    out = aff.copy()
    out[:, axis] = -aff[:, axis]
    out[:3, 3] = aff[:3, 3] + aff[:3, axis] * (arr.shape[axis] - 1)
    out[3, axis] = 0
    return np.flip(arr, axis), out


def _transpose(arr, aff):
    out = aff.copy()
    out[:, [0, 1]] = aff[:, [1, 0]]
    return arr.transpose(1, 0, 2), out


def _variant(hu, aff, flips=(), transpose=False):
    for a in flips:
        hu, aff = _flip(hu, aff, a)
    if transpose:
        hu, aff = _transpose(hu, aff)
    return np.ascontiguousarray(hu), aff


# name -> (flips of the RAS+ phantom's axes, in-plane transpose, write_series options); the
# DICOM orientation they give (row direction, column direction, normal, in LPS) in the comment
ORIENTATIONS = {
    # the common head-first axial export: row +x (to the patient's left), column +y (posterior), normal +z
    "axial head-first": ((0, 1), False, dict(patient_position="HFS")),
    # the same planes numbered from the vertex down, files named in a random order
    "axial head-first, numbered top-down, shuffled files": ((0, 1), False, dict(instances_descending=True,
                                                                                shuffle_seed=7)),
    # feet-first supine: the scanner's x runs to the patient's right, row -x, normal -z (toward the feet)
    "axial feet-first (row -x, normal to the feet)": ((1,), False, dict(patient_position="FFS", instances_descending=True,
                                                                         shuffle_seed=2)),
    # positions stepping against the normal (slices stored from the vertex down)
    "axial, positions against the normal": ((0, 1, 2), False, dict(shuffle_seed=1)),
    # rows along y, columns along x: the image rotated by 90 degrees
    "rotated in-plane (row along y)": ((0,), True, {}),
    # RAS+ as NIfTI tools store it: row -x, column -y
    "RAS-ordered": ((), False, {}),
}


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_dicom_series_reads_as_the_nifti_of_the_same_phantom(phantom, tmp_path, name):
    hu, aff, nifti = phantom
    flips, transpose, opts = ORIENTATIONS[name]
    arr, a = _variant(hu, aff, flips, transpose)
    write_series(tmp_path / "series", arr, a, **opts)
    from_nifti = load_volume(nifti)
    from_dicom, meta = load_series(tmp_path / "series")
    assert from_dicom.data.dtype == np.float32 and from_dicom.data.shape == from_nifti.data.shape
    assert np.array_equal(from_dicom.data, from_nifti.data)
    np.testing.assert_allclose(from_dicom.affine, from_nifti.affine, atol=1e-4)
    np.testing.assert_allclose(from_dicom.spacing, from_nifti.spacing, atol=1e-6)
    assert meta["corrections"] == [] and meta["slice_thickness_mm"] == pytest.approx(5.0)
    # the same view in read_series' (array, affine, metadata) form
    data, affine, _ = read_series(tmp_path / "series")
    assert np.array_equal(data, from_nifti.data) and np.allclose(affine, from_nifti.affine, atol=1e-4)


def _pipeline_mask(vol):
    """What predict does with a scan, with a fixed threshold standing in for the network:
    prepared slices -> a mask per slice -> back onto the file's grid -> mL from the file's voxel."""
    prepared = preprocess_volume(vol, PrepConfig())
    pred = (prepared[:, 0] > np.quantile(prepared[:, 0], 0.9)).astype(np.uint8)
    mask = volume_from_slices(pred, vol, order=0)
    ml = float(mask.sum()) * abs(float(np.linalg.det(vol.original_affine[:3, :3]))) / 1000.0
    return mask, ml


@pytest.mark.parametrize("name", ["axial head-first", "rotated in-plane (row along y)"])
def test_same_mask_and_volume_from_dicom_and_nifti(phantom, tmp_path, name):
    hu, aff, nifti = phantom
    flips, transpose, opts = ORIENTATIONS[name]
    write_series(tmp_path / "series", *_variant(hu, aff, flips, transpose), **opts)
    vol_n, (vol_d, _) = load_volume(nifti), load_series(tmp_path / "series")
    mask_n, ml_n = _pipeline_mask(vol_n)
    mask_d, ml_d = _pipeline_mask(vol_d)
    assert ml_n > 0 and ml_d == pytest.approx(ml_n, rel=1e-9)
    # each mask is on its own file's grid; written with that grid's affine they cover the same world voxels
    write_nifti(tmp_path / "n.nii.gz", mask_n, vol_n.original_affine, dtype=np.uint8)
    write_nifti(tmp_path / "d.nii.gz", mask_d, vol_d.original_affine, dtype=np.uint8)
    back_n, back_d = load_volume(tmp_path / "n.nii.gz", mask=True), load_volume(tmp_path / "d.nii.gz", mask=True)
    assert np.array_equal(back_n.data, back_d.data)
    np.testing.assert_allclose(back_n.affine, back_d.affine, atol=1e-4)


def test_oblique_series_matches_the_oblique_nifti(tmp_path):
    rng = np.random.default_rng(0)
    hu = np.rint(rng.normal(30, 200, (12, 10, 4))).astype(np.float32)
    c, s = np.cos(np.radians(12)), np.sin(np.radians(12))
    aff = np.array([[0.9 * c, -0.8 * s, 0, -40], [0.9 * s, 0.8 * c, 0, -30], [0, 0, 4.0, 12], [0, 0, 0, 1]])
    write_nifti(tmp_path / "o.nii.gz", hu, aff)
    write_series(tmp_path / "o", hu, aff, shuffle_seed=3)
    data, affine, _ = read_series_grid(tmp_path / "o")
    np.testing.assert_allclose(affine, aff, atol=1e-4)  # the series' own grid: columns, rows, slices
    assert np.array_equal(data, hu)
    vol_d, vol_n = load_series(tmp_path / "o")[0], load_volume(tmp_path / "o.nii.gz")
    assert np.array_equal(vol_d.data, vol_n.data) and np.allclose(vol_d.affine, vol_n.affine, atol=1e-4)


def test_written_headers_follow_dicom_patient_space(tmp_path):
    """DICOM is LPS: a RAS+ grid (x to the right, y anterior) has rows going to the patient's right
    (-x in LPS) and columns going anterior (-y); PixelSpacing is (between rows, between columns)."""
    aff = np.diag([0.5, 0.7, 3.0, 1.0])
    aff[:3, 3] = [10, 20, 30]
    write_series(tmp_path / "s", np.zeros((4, 3, 2), np.float32), aff)
    first, second = _files_by_position(tmp_path / "s")
    ds = pydicom.dcmread(first)
    assert [float(v) for v in ds.ImageOrientationPatient] == [-1, 0, 0, 0, -1, 0]
    assert [float(v) for v in ds.ImagePositionPatient] == [-10, -20, 30]
    assert [float(v) for v in ds.PixelSpacing] == [0.7, 0.5] and (ds.Rows, ds.Columns) == (3, 4)
    assert float(pydicom.dcmread(second).ImagePositionPatient[2]) == 33


def test_slope_and_intercept_give_hu(tmp_path):
    hu = np.arange(-1000, 1400, 10, dtype=np.float32)[: 8 * 6 * 5].reshape(8, 6, 5)
    write_series(tmp_path / "s", hu, np.diag([1.0, 1.0, 2.0, 1.0]), slope=2.0, intercept=-2048.0)
    ds = pydicom.dcmread(next((tmp_path / "s").iterdir()))
    assert float(ds.RescaleSlope) == 2.0 and ds.pixel_array.min() >= 0  # stored values are not HU
    assert np.array_equal(read_series(tmp_path / "s")[0], hu)


def test_files_without_the_dicom_preamble_are_read(tmp_path):
    """Old exports write the bare data set (implicit VR, no 128-byte preamble, no file meta)."""
    hu = _ramp_series(tmp_path / "s", nz=3)
    for f in (tmp_path / "s").iterdir():
        ds = pydicom.dcmread(f)
        del ds.file_meta
        ds.preamble = None
        pydicom.dcmwrite(f, ds, implicit_vr=True, little_endian=True)
        assert not dicom.is_dicom_file(f)
    assert np.array_equal(read_series(tmp_path / "s")[0], hu)


# -- several series -------------------------------------------------------------------------------------
@pytest.fixture
def two_series(tmp_path):
    hu = np.zeros((6, 5, 3), np.float32)
    aff = np.diag([1.0, 1.0, 3.0, 1.0])
    write_series(tmp_path / "study" / "a", hu, aff, description="Head 5mm", series_number=2)
    write_series(tmp_path / "study" / "b", hu + 40, aff, description="Head bone", series_number=3)
    write_series(tmp_path / "study" / "scout", hu[:, :, :1], aff, description="Topogram", series_number=1,
                 image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    (tmp_path / "study" / "README.txt").write_text("not DICOM")
    return tmp_path / "study"


def test_several_series_are_listed_in_one_line(two_series):
    with pytest.raises(IchsegError) as err:
        load_series(two_series)
    msg = str(err.value)
    assert "\n" not in msg and "2 series found" in msg and "--series" in msg
    assert "'Head 5mm'" in msg and "'Head bone'" in msg and "(3 slices)" in msg and "'Topogram'" in msg


def test_pick_a_series_by_description_number_or_uid(two_series):
    uid_b = [s for s in dicom.list_series(two_series) if s.description == "Head bone"][0].uid
    for key, value in (("head 5mm", 0.0), ("3", 40.0), (uid_b, 40.0), (uid_b[-10:], 40.0)):
        data, _, meta = read_series(two_series, series=key)
        assert data.shape == (6, 5, 3) and np.all(data == value), key
    assert meta["series_description"] == "Head bone" and meta["series_number"] == "3"
    with pytest.raises(IchsegError, match=r"no series matches --series 'Head 1mm'; series here: .*Head bone"):
        read_series(two_series, series="Head 1mm")


def test_one_series_beside_a_scout_is_read_without_asking(tmp_path):
    hu = np.full((6, 5, 3), 25.0, np.float32)
    write_series(tmp_path / "s", hu, np.eye(4), description="Head")
    write_series(tmp_path / "s", hu[:, :, :1], np.eye(4), description="Scout", series_number=9,
                 image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    _, meta = load_series(tmp_path / "s")
    assert meta["series_description"] == "Head" and meta["n_files"] == 3
    with pytest.raises(IchsegError, match="already exists"):  # the writer never replaces a file
        write_series(tmp_path / "s", hu, np.eye(4), description="Other")


def test_non_ct_modality_is_refused(tmp_path):
    write_series(tmp_path / "mr", np.zeros((4, 4, 3), np.float32), np.eye(4), modality="MR", description="T2")
    with pytest.raises(IchsegError, match=r"is modality MR, not CT") as err:
        load_series(tmp_path / "mr")
    assert "\n" not in str(err.value)


def test_folder_without_dicom_and_missing_pydicom(tmp_path, monkeypatch):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(IchsegError, match="no DICOM image found"):
        load_series(tmp_path)
    with pytest.raises(IchsegError, match="neither NIfTI"):
        load_scan(tmp_path / "x.txt")
    hide_pydicom(monkeypatch)
    with pytest.raises(IchsegError, match=r"needs pydicom; pip install 'ichseg\[realct\]'"):
        load_series(tmp_path)


def test_load_scan_takes_nifti_or_dicom(phantom, tmp_path):
    hu, aff, nifti = phantom
    write_series(tmp_path / "s", hu, aff)
    vol_n, meta_n = load_scan(nifti)
    vol_d, meta_d = load_scan(tmp_path / "s")
    one_file, _ = load_scan(sorted((tmp_path / "s").iterdir())[0])  # a DICOM file: its series, from its folder
    assert meta_n["format"] == "nifti" and meta_d["format"] == "dicom"
    assert np.array_equal(vol_n.data, vol_d.data) and np.array_equal(one_file.data, vol_d.data)
    with pytest.raises(IchsegError, match="--series applies to DICOM"):
        load_scan(nifti, series="2")
    assert dicom.is_dicom_folder(tmp_path) and not dicom.is_dicom_folder(nifti.parent)


# -- uneven spacing and gantry tilt ---------------------------------------------------------------------
def _ramp_series(folder, nz=7, **kw):
    """A volume whose slices carry their index x 100 HU (plus an in-plane pattern), 5 mm apart."""
    hu = np.rint(np.random.default_rng(1).normal(0, 20, (8, 6, 1))) + 100.0 * np.arange(nz)
    write_series(folder, hu.astype(np.float32), np.diag([1.0, 1.0, 5.0, 1.0]), **kw)
    return hu


def _files_by_position(folder):
    return sorted(folder.iterdir(), key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]))


def test_a_missing_slice_is_interpolated_on_the_median_spacing(tmp_path):
    hu = _ramp_series(tmp_path / "s")
    _files_by_position(tmp_path / "s")[3].unlink()  # a 10 mm gap in a 5 mm series
    data, affine, meta = read_series(tmp_path / "s")
    assert data.shape == hu.shape and affine[2, 2] == pytest.approx(5.0)
    keep = [0, 1, 2, 4, 5, 6]
    assert np.array_equal(data[:, :, keep], hu[:, :, keep])
    np.testing.assert_allclose(data[:, :, 3], (hu[:, :, 2] + hu[:, :, 4]) / 2, atol=1e-4)
    assert "resampled to 5.000 mm" in meta["corrections"][0]


def test_a_finer_block_and_a_coarser_block_become_one_regular_grid(tmp_path):
    """Sequential head CT often images the posterior fossa at 2.5 mm and the cerebrum at 5 mm, in one series."""
    base = np.random.default_rng(4).normal(0, 20, (6, 5, 1)).round()
    fine = np.diag([1.0, 1.0, 2.5, 1.0])
    coarse = np.diag([1.0, 1.0, 5.0, 1.0])
    coarse[2, 3] = 10.0
    ramp = lambda z: (base + 10.0 * np.asarray(z)).astype(np.float32)  # HU linear in z: interpolation keeps it exact
    write_series(tmp_path / "s" / "fossa", ramp([0, 2.5, 5, 7.5]), fine, description="Head seq")
    write_series(tmp_path / "s" / "cerebrum", ramp([10, 15, 20]), coarse, description="Head seq")
    data, affine, meta = read_series(tmp_path / "s")  # one SeriesInstanceUID across both folders
    assert meta["n_files"] == 7 and data.shape == (6, 5, 9) and affine[2, 2] == pytest.approx(2.5)
    np.testing.assert_allclose(data, ramp(np.arange(9) * 2.5), atol=1e-3)
    assert "uneven slice spacing 2.50-5.00 mm resampled to 2.500 mm" in meta["corrections"]


def test_header_jitter_is_not_unevenness(tmp_path):
    hu = _ramp_series(tmp_path / "s")
    f = _files_by_position(tmp_path / "s")[2]
    ds = pydicom.dcmread(f)
    ds.ImagePositionPatient = [ds.ImagePositionPatient[0], ds.ImagePositionPatient[1], float(ds.ImagePositionPatient[2]) + 0.02]
    ds.save_as(f)
    data, affine, meta = read_series(tmp_path / "s")
    assert meta["corrections"] == [] and np.array_equal(data, hu) and affine[2, 2] == pytest.approx(5.0)


def test_a_block_of_missing_slices_is_refused(tmp_path):
    _ramp_series(tmp_path / "s")
    for f in _files_by_position(tmp_path / "s")[3:5]:
        f.unlink()
    with pytest.raises(IchsegError, match=r"a gap of 15.00 mm between slices 2 and 3 .*refusing") as err:
        read_series(tmp_path / "s")
    assert "\n" not in str(err.value)


def test_two_slices_at_one_position_are_refused(tmp_path):
    _ramp_series(tmp_path / "s", nz=3)
    _ramp_series(tmp_path / "s2", nz=3)
    f = _files_by_position(tmp_path / "s2")[1]
    ds = pydicom.dcmread(f)
    series = pydicom.dcmread(next((tmp_path / "s").iterdir()), stop_before_pixels=True).SeriesInstanceUID
    ds.SeriesInstanceUID, ds.SOPInstanceUID = series, pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "s" / "dup.dcm")
    with pytest.raises(IchsegError, match="lie at the same position"):
        read_series(tmp_path / "s")


def test_gantry_tilt_is_corrected_by_in_plane_shifts(tmp_path):
    rng = np.random.default_rng(2)
    hu = np.rint(rng.normal(40, 30, (10, 12, 5))).astype(np.float32)
    sheared = np.diag([1.0, 1.0, 5.0, 1.0])
    sheared[1, 2] = 1.0  # each slice 1 mm further along y: a tilt of atan(1/5) = 11.3 degrees
    write_series(tmp_path / "t", hu, sheared, shuffle_seed=0)
    data, affine, meta = read_series(tmp_path / "t")
    np.testing.assert_allclose(affine, np.diag([1.0, 1.0, 5.0, 1.0]), atol=1e-4)  # no shear left
    assert meta["gantry_tilt_deg"] == pytest.approx(np.degrees(np.arctan(0.2)), abs=0.01)
    assert "gantry tilt 11.31° corrected" in meta["corrections"][0]
    for k in range(5):  # the corrected slice k holds the written slice k moved k pixels along y
        np.testing.assert_allclose(data[:, k:, k], hu[:, : 12 - k, k], atol=1e-3)
        assert np.all(data[:, :k, k] == hu.min())


def test_a_shear_beyond_any_gantry_tilt_is_refused(tmp_path):
    sheared = np.diag([1.0, 1.0, 2.0, 1.0])
    sheared[0, 2] = 2.0  # 45 degrees
    write_series(tmp_path / "t", np.zeros((6, 6, 4), np.float32), sheared)
    with pytest.raises(IchsegError, match=r"shear 45.0° off the orientation normal"):
        read_series(tmp_path / "t")


def test_mixed_orientations_in_one_series_are_refused(tmp_path):
    _ramp_series(tmp_path / "s", nz=3)
    f = _files_by_position(tmp_path / "s")[1]
    ds = pydicom.dcmread(f)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.save_as(f)
    with pytest.raises(IchsegError, match="orientation differs"):
        read_series(tmp_path / "s")


# -- pydicom's real CT files ----------------------------------------------------------------------------
def _real(name, tmp_path):
    from pydicom.data import get_testdata_file

    try:
        path = get_testdata_file(name, download=False)
    except TypeError:  # pragma: no cover - older pydicom
        path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"{name} is not installed (pydicom-data)")
    (tmp_path / name).mkdir()
    shutil.copy(path, tmp_path / name)
    return tmp_path / name


def test_pydicom_ct_small_reads_in_hu(tmp_path):
    vol, meta = load_series(_real("CT_small.dcm", tmp_path))
    assert vol.shape == (128, 128, 1) and meta["modality"] == "CT" and meta["slice_thickness_mm"] == 5.0
    x = vol.data
    assert -1024 <= x.min() < -800 and 1000 < x.max() <= 3071  # air, bone: HU, not the stored values
    assert -20 < np.median(x) < 60  # mostly soft tissue
    np.testing.assert_allclose(vol.spacing, (0.661468, 0.661468, 5.0), atol=1e-6)


@pytest.mark.parametrize("name", ["693_UNCR.dcm", "J2K_pixelrep_mismatch.dcm"])
def test_real_head_slices_match_the_realct_reader(tmp_path, name):
    from ichseg.data import realct

    try:
        rs = realct.read_real_slice(name)
    except IchsegError as exc:
        pytest.skip(str(exc))
    data, affine, meta = read_series_grid(_real(name, tmp_path))
    assert data.shape == (512, 512, 1) and meta["series_uid"]
    # realct reads (rows, columns) clipped to the scanner's range; the grid here is (columns, rows)
    assert np.array_equal(np.clip(data[:, :, 0].T, -1024, 3071), rs.hu)
    np.testing.assert_allclose(affine, rs.affine, atol=1e-4)
    assert np.median(data[:, :, 0].T[rs.parenchyma]) == pytest.approx(np.median(rs.hu[rs.parenchyma]))
    assert 20 <= np.median(rs.hu[rs.parenchyma]) <= 45 and data.max() > 1000  # brain and bone in HU
    vol, _ = load_series(tmp_path / name)
    assert vol.data.shape[2] == 1 and np.array_equal(np.sort(vol.data.ravel()), np.sort(data.ravel()))

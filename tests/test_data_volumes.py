"""Reading volumes: phantoms in every layout read back right; orientation, scaling, the way back."""

from __future__ import annotations

import numpy as np
import pytest

from ichseg.data import PrepConfig, get_layout, load_pair, load_volume, preprocess_mask, preprocess_volume, \
    volume_from_slices, write_nifti
from ichseg.data.phantom import DOMAINS, phantom_case, write_phantom

SMALL = dict(in_plane=48, slices=(6, 8))


@pytest.mark.parametrize("layout", list(DOMAINS))
def test_phantom_layout_reads_back_hu_orientation_mask(tmp_path, layout):
    write_phantom(tmp_path, layout, cases=2, seed=3, **SMALL)
    found = get_layout(layout).discover(tmp_path)
    assert len(found.cases) == 2 and not found.problems
    case = found.cases[0]  # the first case written (001.nii.gz, imagesTr/..., 049.nii)
    truth = phantom_case(layout, 3, 0, SMALL["in_plane"], SMALL["slices"])
    image, mask = load_pair(case.image, case.mask)
    # HU: stored as integers with the layout's slope/intercept, so within rounding
    assert np.abs(image.data - truth.hu).max() <= 0.5 + 1e-3
    np.testing.assert_allclose(image.affine, truth.affine, atol=1e-4)  # canonical RAS+ grid
    np.testing.assert_array_equal(mask.data > 0, truth.labels > 0)
    if layout == "bhsd":  # BHSD keeps the subtype label value
        np.testing.assert_array_equal(mask.data.astype(np.uint8), truth.labels)
    assert image.spacing[2] == pytest.approx(DOMAINS[layout].thickness_mm)


def _plain_hu(rng, shape=(40, 36, 5)):
    hu = rng.normal(30, 20, shape).round()
    hu[:3] = -1000
    hu[-4:, :, 1] = 1200
    return hu.astype(np.float32)


def test_flipped_affine_and_scaling_give_identical_slices(tmp_path):
    rng = np.random.default_rng(0)
    hu = _plain_hu(rng)
    labels = (rng.random(hu.shape) > 0.9).astype(np.uint8)
    aff = np.diag([0.45, 0.45, 5.0, 1.0])
    write_nifti(tmp_path / "plain.nii.gz", hu, aff)
    write_nifti(tmp_path / "plain_mask.nii.gz", labels, aff, dtype=np.uint8)
    # the same world: voxel order flipped in x and z, affine adjusted accordingly
    flip = np.diag([-1.0, 1.0, -1.0, 1.0])
    flip[:3, 3] = [hu.shape[0] - 1, 0, hu.shape[2] - 1]
    write_nifti(tmp_path / "flip.nii.gz", hu[::-1, :, ::-1], aff @ flip, slope=0.5, inter=-1024.0)
    write_nifti(tmp_path / "flip_mask.nii.gz", labels[::-1, :, ::-1], aff @ flip, dtype=np.uint8)
    import nibabel as nib

    proxy = nib.load(str(tmp_path / "flip.nii.gz")).dataobj  # the file's own scl_slope / scl_inter
    assert (proxy.slope, proxy.inter) == (0.5, -1024.0) and proxy.dtype == np.int16
    cfg = PrepConfig(size=32)
    a_img, a_msk = load_pair(tmp_path / "plain.nii.gz", tmp_path / "plain_mask.nii.gz")
    b_img, b_msk = load_pair(tmp_path / "flip.nii.gz", tmp_path / "flip_mask.nii.gz")
    np.testing.assert_allclose(preprocess_volume(b_img, cfg), preprocess_volume(a_img, cfg), atol=1e-6)
    np.testing.assert_array_equal(preprocess_mask(b_msk, cfg), preprocess_mask(a_msk, cfg))
    assert b_img.source_slice(0) == hu.shape[2] - 1  # canonical slice 0 is the file's last


def test_volume_from_slices_round_trip_on_flipped_affine(tmp_path):
    rng = np.random.default_rng(1)
    shape = (32, 32, 6)  # upsampled to 64 and back with nearest: exact
    labels = np.zeros(shape, np.uint8)
    labels[5:14, 8:20, 2:4] = 1
    labels[20:22, 3:5, 5] = 1
    aff = np.array([[0, -0.5, 0, 10], [-0.5, 0, 0, 5], [0, 0, -5.0, 40], [0, 0, 0, 1.0]])  # permuted + flipped
    write_nifti(tmp_path / "m.nii", labels, aff, dtype=np.uint8)
    write_nifti(tmp_path / "i.nii", rng.normal(30, 5, shape), aff)
    vol = load_volume(tmp_path / "i.nii")
    mask = load_volume(tmp_path / "m.nii", mask=True)
    slices = preprocess_mask(mask, PrepConfig(size=64))
    back = volume_from_slices(slices, vol, order=0)
    assert back.shape == shape
    np.testing.assert_array_equal(back, labels)  # overlays the file's own voxels
    prob = volume_from_slices(slices.astype(np.float32), vol, order=1)
    assert prob.dtype == np.float32 and prob.shape == shape
    assert np.abs(prob - labels).mean() < 0.05
    with pytest.raises(ValueError, match="expected"):
        volume_from_slices(slices[:-1], vol)


def test_multi_window_gives_three_channels_and_windowing_is_right():
    from ichseg.data.slices import window

    hu = np.array([[-1000.0, 0.0, 40.0, 80.0, 1000.0]])
    w = window(hu, PrepConfig(window="brain").windows)
    np.testing.assert_allclose(w[0, 0], [0, 0, 0.5, 1, 1])
    assert PrepConfig(window="multi").channels == 3


def test_volume_from_array_is_what_load_volume_makes_of_the_same_voxels(tmp_path):
    """The seam for readers other than NIfTI's (a DICOM series): an HU array and its affine become
    the same ``Volume`` as the NIfTI file holding them, so predictions map back alike."""
    import nibabel as nib

    from ichseg.data.volumes import volume_from_array
    from ichseg.errors import IchsegError

    rng = np.random.default_rng(2)
    aff = np.array([[0, -0.5, 0, 10], [-0.5, 0, 0, 5], [0, 0, -5.0, 40], [0, 0, 0, 1.0]])
    hu = rng.normal(30, 5, (16, 12, 4))
    hu[:, :2] = -1000
    write_nifti(tmp_path / "i.nii", hu, aff)
    a = load_volume(tmp_path / "i.nii")
    b = volume_from_array(tmp_path / "series", np.asarray(nib.load(str(tmp_path / "i.nii")).get_fdata()), aff)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_allclose(a.affine, b.affine)
    assert a.spacing == b.spacing and a.original_shape == b.original_shape
    np.testing.assert_array_equal(a.ornt, b.ornt)
    with pytest.raises(IchsegError, match="complex"):
        volume_from_array(tmp_path / "series", hu.astype(np.complex64), aff)
    with pytest.raises(IchsegError, match="3D"):
        volume_from_array(tmp_path / "series", hu[..., 0], aff)


def test_write_nifti_stores_each_type_exactly_in_nifti_order(tmp_path):
    """Written slice by slice (a large volume is never copied whole): the voxels read back in
    place, float32 exact, integers rounded and clipped to their type, scaling applied."""
    import nibabel as nib

    rng = np.random.default_rng(1)
    data = (rng.normal(0, 3000, (9, 7, 5)) + np.arange(5)).astype(np.float32)  # an asymmetric shape: order shows
    aff = np.diag([0.5, 0.7, 2.0, 1.0])
    for name, kw, want in [
        ("f.nii.gz", dict(dtype=np.float32), data),
        ("i.nii", dict(), np.clip(np.rint(data), -32768, 32767)),
        ("s.nii.gz", dict(slope=0.5, inter=-1024.0), np.clip(np.rint((data + 1024) / 0.5), -32768, 32767) * 0.5 - 1024),
        ("u.nii.gz", dict(dtype=np.uint8), np.clip(np.rint(data), 0, 255)),
    ]:
        img = nib.load(str(write_nifti(tmp_path / name, data, aff, **kw)))
        assert img.shape == data.shape and np.allclose(img.affine, aff)
        np.testing.assert_array_equal(img.get_fdata(), want.astype(np.float64), err_msg=name)

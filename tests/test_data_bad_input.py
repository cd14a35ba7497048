"""Bad input: one-line errors naming the file, exit != 0, nothing half-written; --skip-bad records."""

from __future__ import annotations

import gzip
import json

import nibabel as nib
import numpy as np
import pytest

from ichseg.cli import main
from ichseg.data import PrepConfig, load_volume, prepare_dataset, write_nifti
from ichseg.data.phantom import write_phantom
from ichseg.errors import IchsegError

CFG = PrepConfig(size=16)


@pytest.fixture
def raw(tmp_path):
    root = tmp_path / "raw"
    write_phantom(root, "instance2022", cases=4, seed=0, in_plane=24, slices=(4, 5))
    return root


def _data(raw, i):
    return raw / "train_2" / "data" / f"{i:03d}.nii.gz"


def _label(raw, i):
    return raw / "train_2" / "label" / f"{i:03d}.nii.gz"


def _affine(path):
    return nib.load(str(path)).affine


def _missing_mask(raw):
    _label(raw, 2).unlink()
    return _data(raw, 2), "no mask"


def _shape_mismatch(raw):
    write_nifti(_label(raw, 3), np.zeros((24, 20, 4)), _affine(_data(raw, 3)), dtype=np.uint8)
    return _label(raw, 3), "shape"


def _affine_mismatch(raw):
    data = np.asanyarray(nib.load(str(_label(raw, 3))).dataobj)
    aff = _affine(_data(raw, 3))
    aff[:3, 3] += 2.0
    write_nifti(_label(raw, 3), data, aff, dtype=np.uint8)
    return _label(raw, 3), "affine"


def _not_nifti(raw):
    _data(raw, 1).write_bytes(b"this is not a NIfTI file at all\n" * 20)
    return _data(raw, 1), "not a readable NIfTI"


def _truncated(raw):
    blob = _data(raw, 4).read_bytes()
    _data(raw, 4).write_bytes(blob[: len(blob) // 2])
    return _data(raw, 4), "truncated"


def _nan(raw):
    hu = np.asanyarray(nib.load(str(_data(raw, 2))).get_fdata(), dtype=np.float32)
    hu[3, 3, 1] = np.nan
    hu[4, 4, 1] = np.inf
    write_nifti(_data(raw, 2), hu, _affine(_data(raw, 2)), dtype=np.float32)
    return _data(raw, 2), "NaN or infinite"


def _two_d(raw):
    write_nifti(_data(raw, 1), np.zeros((24, 24)), np.eye(4), dtype=np.int16)
    return _data(raw, 1), "3D"


def _four_d(raw):
    write_nifti(_data(raw, 1), np.zeros((24, 24, 4, 2)), np.eye(4), dtype=np.int16)
    return _data(raw, 1), "3D"


def _absurd_header(raw):
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape((30000, 30000, 2000))
    hdr["vox_offset"] = 352
    with gzip.open(_data(raw, 1), "wb") as fh:  # a tiny file whose header claims ~3.6 TB of voxels
        fh.write(hdr.binaryblock + b"\x00" * 4 + b"\x00" * 64)
    return _data(raw, 1), "refusing"


def _not_hu(raw):  # an MR-like volume, 0-1000: no air near -1000 HU
    hu = np.asanyarray(nib.load(str(_data(raw, 3))).get_fdata(), dtype=np.float32)
    write_nifti(_data(raw, 3), np.clip(hu + 1000, 0, 1000), _affine(_data(raw, 3)), dtype=np.int16)
    return _data(raw, 3), "does not look like CT in Hounsfield units"


def _complex(raw):
    hu = np.asanyarray(nib.load(str(_data(raw, 2))).get_fdata())
    nib.save(nib.Nifti1Image(hu.astype(np.complex64), _affine(_data(raw, 2))), str(_data(raw, 2)))
    return _data(raw, 2), "complex (complex64)"


CASES = [_missing_mask, _shape_mismatch, _affine_mismatch, _not_nifti, _truncated, _nan, _two_d, _four_d,
         _absurd_header, _not_hu, _complex]


def _nothing_written(out):
    return not out.exists() or not any(p.is_file() for p in out.rglob("*"))


@pytest.mark.parametrize("breaker", CASES, ids=[f.__name__.strip("_") for f in CASES])
def test_bad_file_library_cli_and_skip_bad(raw, tmp_path, capsys, breaker):
    bad_file, words = breaker(raw)
    out = tmp_path / "out"
    with pytest.raises(IchsegError) as exc:
        prepare_dataset("instance2022", raw, out, CFG)
    message = str(exc.value)
    assert str(bad_file) in message and words in message and "\n" not in message
    assert _nothing_written(out)

    rc = main(["prepare", "--dataset", "instance2022", "--raw", str(raw), "--out", str(out), "--size", "16"])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and str(bad_file) in err and len(err.splitlines()) == 1
    assert _nothing_written(out)

    rc = main(["prepare", "--dataset", "instance2022", "--raw", str(raw), "--out", str(out), "--size", "16",
               "--skip-bad"])
    printed = capsys.readouterr().out
    assert rc == 0 and "bad files skipped: 1" in printed
    prepared = next((out / "instance2022").iterdir())
    manifest = json.loads((prepared / "manifest.json").read_text())
    assert manifest["counts"]["bad_files"] == 1 and len(manifest["bad_files"]) == 1
    assert manifest["bad_files"][0]["file"] == str(bad_file.relative_to(raw))
    assert (prepared / "bad_files.csv").is_file()
    c = manifest["counts"]
    assert c["source_slices"] == c["kept"] + sum(c["dropped"].values())  # still reconciles
    if breaker in (_nan, _truncated):  # header readable: its slices are listed as dropped
        assert c["dropped"].get("bad file (see bad_files.csv)", 0) > 0


def test_header_size_is_checked_before_reading(tmp_path):
    path = tmp_path / "big.nii.gz"
    write_nifti(path, np.zeros((64, 64, 8)), np.eye(4))
    with pytest.raises(IchsegError, match="refusing"):
        load_volume(path, max_bytes=64 * 64 * 4)


def test_empty_folder_and_missing_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(IchsegError, match="empty folder"):
        prepare_dataset("instance2022", tmp_path / "empty", tmp_path / "out", CFG)
    (tmp_path / "empty" / "train_2" / "data").mkdir(parents=True)
    (tmp_path / "empty" / "train_2" / "label").mkdir()
    with pytest.raises(IchsegError, match="no Instance2022 volumes found"):
        prepare_dataset("instance2022", tmp_path / "empty", tmp_path / "out", CFG)
    rc = main(["prepare", "--dataset", "bhsd", "--raw", str(tmp_path / "nope"), "--out", str(tmp_path / "out")])
    assert rc == 2 and "raw folder not found" in capsys.readouterr().err


def test_layout_of_another_dataset_is_named(tmp_path, capsys):
    write_phantom(tmp_path / "bhsd", "bhsd", cases=2, seed=0, in_plane=24, slices=(4, 4))
    with pytest.raises(IchsegError, match="looks like a BHSD folder: use --dataset bhsd"):
        prepare_dataset("instance2022", tmp_path / "bhsd", tmp_path / "out", CFG)
    rc = main(["prepare", "--dataset", "physionet", "--raw", str(tmp_path / "bhsd"), "--out", str(tmp_path / "o")])
    assert rc == 2 and "--dataset bhsd" in capsys.readouterr().err
    assert _nothing_written(tmp_path / "o")


def test_glob_override_and_train_folder_name(tmp_path):
    write_phantom(tmp_path / "raw", "instance2022", cases=3, seed=0, in_plane=24, slices=(4, 4))
    (tmp_path / "raw" / "train_2").rename(tmp_path / "raw" / "train")  # some copies name it 'train'
    assert prepare_dataset("instance2022", tmp_path / "raw", tmp_path / "a", CFG).is_dir()
    (tmp_path / "raw" / "train" / "data").rename(tmp_path / "raw" / "train" / "scans")
    with pytest.raises(IchsegError, match="expected train_2/data"):
        prepare_dataset("instance2022", tmp_path / "raw", tmp_path / "b", CFG)
    prepared = prepare_dataset("instance2022", tmp_path / "raw", tmp_path / "b", CFG,
                               image_glob="train/scans/*.nii.gz", mask_glob="train/label/*.nii.gz")
    assert json.loads((prepared / "manifest.json").read_text())["counts"]["source_slices"] == 12

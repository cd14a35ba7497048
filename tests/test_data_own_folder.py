"""A researcher's own scans: the ``own`` dataset (``images/`` and ``masks/``), and any folder through
``data.raw.<dataset>`` as a mapping (``RawSource``): files found by globs, paired by name, grouped
into patients by a pattern, prepared through the run config as the study and ``ichseg train``
prepare it; and the one-line refusals of a wrong mapping or of ``own`` without a folder."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from ichseg.cli import main
from ichseg.data.config import check_data_section, raw_source
from ichseg.data.layouts import DATASETS
from ichseg.data.phantom import write_phantom
from ichseg.engine.data import ensure_prepared
from ichseg.errors import ConfigError, IchsegError

PREP = {"size": 16, "test_fraction": 0.34, "val_fraction": 0.0, "seed": 0}


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A hospital-style export: ``ct/P0k_scanN.nii.gz`` and ``seg/P0k_scanN.nii.gz``, three patients,
    the first two scanned twice (each scan a copy of one phantom volume)."""
    src = write_phantom(tmp_path_factory.mktemp("phantom"), "instance2022", cases=3, seed=0, in_plane=24, slices=(4, 4))
    root = tmp_path_factory.mktemp("export")
    for sub in ("ct", "seg"):
        (root / sub).mkdir()
    for k in (1, 2, 3):
        for scan in ((1, 2) if k < 3 else (1,)):
            name = f"P0{k}_scan{scan}.nii.gz"
            shutil.copy(src / "train_2" / "data" / f"00{k}.nii.gz", root / "ct" / name)
            shutil.copy(src / "train_2" / "label" / f"00{k}.nii.gz", root / "seg" / name)
    return root


def _cfg(raw, dataset: str = "own") -> dict:
    return {"data": {"train_dataset": dataset, "raw": {dataset: raw}, "prep": PREP}}


def _slices(prepared):
    return pd.read_csv(prepared / "slices.csv", keep_default_na=False, dtype={"patient": str})


def test_a_mapping_finds_pairs_by_glob_and_groups_scans_by_patient(export, tmp_path):
    raw = {"folder": str(export), "images": "ct/*.nii.gz", "masks": "seg/*.nii.gz", "patient": r"^(P\d+)_"}
    prepared = ensure_prepared(_cfg(raw), "own", tmp_path)
    t = _slices(prepared)
    assert sorted(set(t.patient)) == ["P01", "P02", "P03"] and t.volume.nunique() == 5
    for _, scans in t.groupby("patient"):
        assert scans.split.nunique() == 1  # both scans of a patient in one split
    assert set(t.split) == {"train", "test"}
    # without the pattern every file is its own patient, in its own prepared folder; another layout likewise
    alone = ensure_prepared(_cfg({k: v for k, v in raw.items() if k != "patient"}, "instance2022"), "instance2022", tmp_path)
    assert alone.parent.name == "instance2022" and _slices(alone).patient.nunique() == 5


def test_own_data_in_its_default_folders(export, tmp_path):
    root = tmp_path / "scans"
    shutil.copytree(export / "ct", root / "images")
    shutil.copytree(export / "seg", root / "masks")
    t = _slices(ensure_prepared(_cfg(str(root)), "own", tmp_path))
    assert t.volume.nunique() == 5 and set(t.split) == {"train", "test"}
    (root / "masks" / "P03_scan1.nii.gz").unlink()
    with pytest.raises(IchsegError, match=r"P03_scan1\.nii\.gz: no mask found .*masks/P03_scan1\.nii\.gz"):
        ensure_prepared(_cfg(str(root)), "own", tmp_path / "again")


def test_own_data_needs_its_folder():
    with pytest.raises(ConfigError, match=r"^data\.raw\.own: Own data cannot be generated; name its folder"):
        ensure_prepared({"data": {"train_dataset": "own", "prep": PREP}}, "own", "/nonexistent")


def test_a_pattern_that_finds_no_patient_names_the_file(export, tmp_path):
    raw = {"folder": str(export), "images": "ct/*.nii.gz", "masks": "seg/*.nii.gz", "patient": r"^(Q\d+)_"}
    with pytest.raises(IchsegError, match=r"P01_scan1\.nii\.gz: the patient pattern .* finds no patient") as exc:
        ensure_prepared(_cfg(raw), "own", tmp_path)
    assert "\n" not in str(exc.value) and not (tmp_path / "prepared").exists()


def test_the_prepare_command_takes_the_same_pattern(export, tmp_path, capsys):
    rc = main(["prepare", "--dataset", "own", "--raw", str(export), "--out", str(tmp_path), "--size", "16",
               "--image-glob", "ct/*.nii.gz", "--mask-glob", "seg/*.nii.gz", "--patient-pattern", r"^(P\d+)_"])
    assert rc == 0
    prepared = capsys.readouterr().out.strip().splitlines()[-1].removeprefix("prepared: ")
    assert _slices(Path(prepared)).patient.nunique() == 3


@pytest.mark.parametrize("raw, words", [
    ({"images": "ct/*"}, "a folder path or a mapping with a folder"),
    (7, "a folder path or a mapping with a folder"),
    ({"folder": "/x", "images": "ct/*"}, "images and masks globs both or neither"),
    ({"folder": "/x", "imgs": "ct/*"}, "unknown key(s) imgs"),
    ({"folder": "", "images": "a", "masks": "b"}, "folder: must be a non-empty string"),
    ({"folder": "/x", "patient": "^P\\d+_"}, "needs a group that captures the patient"),
    ({"folder": "/x", "patient": "^(P"}, "not a regular expression"),
])
def test_a_wrong_mapping_is_refused_in_one_line(raw, words):
    with pytest.raises(ConfigError) as exc:
        check_data_section({"raw": {"instance2022": raw}}, list(DATASETS))
    assert str(exc.value).startswith("data.raw.instance2022") and words in str(exc.value)
    assert "\n" not in str(exc.value)


def test_a_path_stays_a_path():
    assert raw_source({"raw": {"bhsd": "/data/bhsd"}}, "bhsd").folder == "/data/bhsd"
    assert raw_source({"raw": {"bhsd": "/data/bhsd"}}, "physionet") is None
    assert raw_source({}, "bhsd") is None


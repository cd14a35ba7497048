"""``ichseg predict``: what it refuses (one line, exit 2, nothing written or deleted), how it writes
into --out (only its own files), the settings it samples with, the volume it reports and a folder
of scans (resumable, past a bad scan). A tiny untrained checkpoint at 32²: seconds on a CPU."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from _predict_helpers import phantom_scans, tiny_checkpoint
from ichseg.cli import main
from ichseg.data import write_nifti

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def setup(workdir):
    return tiny_checkpoint(workdir / "tiny.pt"), phantom_scans(workdir / "phantom", cases=5)


@pytest.fixture
def scan(setup, tmp_path):
    return Path(shutil.copy(setup[1][0], tmp_path / "scan.nii.gz"))


def predict(*argv) -> int:
    return main(["predict", *map(str, argv), "--no-progress"])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("ichseg predict: error: ")
    return err[0]


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def as_series(nifti: Path, folder: Path, *, rotate: bool = True, **kw) -> Path:
    """The NIfTI phantom written as a DICOM CT series into ``folder``; ``rotate`` stores it with
    rows along y (the image turned by 90 degrees, files in shuffled order), so the series' own grid
    differs from the NIfTI's while the anatomy is the same."""
    from ichseg.data.dicom import write_series

    img = nib.load(str(nifti))
    hu, aff = np.asarray(img.dataobj, dtype=np.float64), img.affine.copy()
    if rotate:
        hu, aff = hu.transpose(1, 0, 2), aff[:, [1, 0, 2, 3]]
        kw.setdefault("shuffle_seed", 5)
    folder.mkdir(parents=True, exist_ok=True)
    write_series(folder, hu, aff, **kw)
    return folder


def _hu_like(scan: Path, dst: Path, transform, **kw) -> Path:
    img = nib.load(str(scan))
    write_nifti(dst, transform(img.get_fdata()), img.affine, **kw)
    return dst


# -- refused in one line, nothing written ----------------------------------------------------------------
@pytest.mark.parametrize("kind, transform, words", [
    ("mr-like", lambda hu: np.clip(hu + 1000, 0, 1000), "does not look like CT in Hounsfield units"),
    ("no-intercept", lambda hu: hu + 1024, "0% of voxels near air"),  # CT saved without its -1024
    ("normalised", lambda hu: (hu - hu.mean()) / hu.std(), "expected air near -1000 HU"),
    ("hu-times-10", lambda hu: hu * 10, "bone under 4000 HU"),
])
def test_a_volume_not_in_hounsfield_units_is_refused(setup, scan, tmp_path, capsys, kind, transform, words):
    bad = _hu_like(scan, tmp_path / f"{kind}.nii.gz", transform, dtype=np.float32)
    out = tmp_path / "out"
    assert predict(bad, "--checkpoint", setup[0], "--out", out) == 2
    line = one_error_line(capsys)
    assert str(bad) in line and words in line
    assert not out.exists()


def test_allow_non_hu_segments_anyway_and_hu_scaling_is_applied_first(setup, scan, tmp_path, capsys):
    mr = _hu_like(scan, tmp_path / "mr.nii.gz", lambda hu: np.clip(hu + 1000, 0, 1000), dtype=np.float32)
    assert predict(mr, "--checkpoint", setup[0], "--out", tmp_path / "a", "--allow-non-hu") == 0
    # stored as (HU + 1024) * 2 with scl_slope 0.5, scl_inter -1024: HU once scaled, so accepted
    scaled = _hu_like(scan, tmp_path / "scaled.nii.gz", lambda hu: hu, dtype=np.int16, slope=0.5, inter=-1024.0)
    assert predict(scaled, "--checkpoint", setup[0], "--out", tmp_path / "b") == 0, capsys.readouterr().err


def _complex(path: Path) -> str:
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 3), np.complex64) - 1000, np.eye(4)), str(path))
    return "complex (complex64)"


def _rgb(path: Path) -> str:
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 3), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")]), np.eye(4)), str(path))
    return "structured type"


def _binary(path: Path) -> str:
    _complex(path)  # then NIfTI's 1-bit "binary" type in the header
    hdr = bytearray(path.read_bytes())
    hdr[70:72], hdr[72:74] = np.int16(1).tobytes(), np.int16(1).tobytes()  # datatype, bitpix
    path.write_bytes(bytes(hdr))
    return "data code 1 not supported"


@pytest.mark.parametrize("make", [_complex, _rgb, _binary], ids=["complex", "rgb", "binary"])
def test_non_real_voxel_types_are_refused_naming_file_and_type(setup, tmp_path, capsys, make):
    bad = tmp_path / "odd.nii"
    words = make(bad)
    out = tmp_path / "out"
    assert predict(bad, "--checkpoint", setup[0], "--out", out) == 2
    line = one_error_line(capsys)
    assert str(bad) in line and words in line and "integer or floating-point" in line
    assert not out.exists()


def test_a_folder_of_files_that_are_not_dicom_images_is_one_line(setup, tmp_path, capsys):
    series = tmp_path / "series"
    series.mkdir()
    for i in range(3):  # a Part 10 preamble and magic, then nothing a reader can use
        (series / f"IM{i:04d}.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\x00" * 64)
    out = tmp_path / "out"
    assert predict(series, "--checkpoint", setup[0], "--out", out) == 2
    line = one_error_line(capsys)
    assert f"{series}: no DICOM image found" in line and "not found" not in line
    assert not out.exists()


def test_a_nifti_as_checkpoint_says_it_is_not_a_checkpoint(scan, tmp_path, capsys):
    assert predict(scan, "--checkpoint", scan, "--out", tmp_path / "out") == 2
    line = one_error_line(capsys)
    assert f"{scan}: a NIfTI volume, not a checkpoint" in line and "Weights only" not in line
    assert not (tmp_path / "out").exists()


def test_other_files_as_checkpoint_are_one_line(scan, tmp_path, capsys):
    text = tmp_path / "model.pt"
    text.write_text("not a model")
    assert predict(scan, "--checkpoint", text, "--out", tmp_path / "out") == 2
    assert "not a checkpoint" in one_error_line(capsys)
    assert predict(scan, "--checkpoint", tmp_path, "--out", tmp_path / "out") == 2
    assert "a folder, not a checkpoint" in one_error_line(capsys)


def test_a_missing_input_creates_nothing(setup, tmp_path, capsys):
    before = files_under(tmp_path)
    assert predict(tmp_path / "nope.nii.gz", "--checkpoint", setup[0], "--out", tmp_path / "deep" / "x" / "y") == 2
    assert "nope.nii.gz: file not found" in one_error_line(capsys)
    assert files_under(tmp_path) == before  # no deep/x/ left behind


def test_out_under_a_file_is_refused_creating_nothing(setup, scan, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    before = files_under(tmp_path)
    assert predict(scan, "--checkpoint", setup[0], "--out", tmp_path / "a_file" / "sub" / "out") == 2
    assert "a_file is a file" in one_error_line(capsys)
    assert files_under(tmp_path) == before


# -- writing into --out ----------------------------------------------------------------------------------
def test_a_users_file_beside_an_earlier_prediction_survives(setup, scan, tmp_path, capsys):
    out = tmp_path / "out"
    assert predict(scan, "--checkpoint", setup[0], "--out", out) == 0
    first = json.loads((out / "summary.json").read_text())
    (out / "notes.txt").write_text("my notes")
    (out / "sub").mkdir()
    (out / "sub" / "keep.nii.gz").write_bytes(b"mine")
    # an earlier prediction's extra file that this one does not write is its own: it goes
    (out / "overlay.png").write_bytes(b"old")
    (out / "summary.json").write_text(json.dumps({**first, "files": [*first["files"], "overlay.png"]}))
    assert predict(scan, "--checkpoint", setup[0], "--out", out, "--ensemble", "3") == 0, capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "my notes" and (out / "sub" / "keep.nii.gz").read_bytes() == b"mine"
    assert sorted(p.name for p in out.iterdir()) == ["mask.nii.gz", "notes.txt", "preview.png", "probability.nii.gz",
                                                     "report.html", "sub", "summary.json", "uncertainty.nii.gz"]
    assert json.loads((out / "summary.json").read_text())["evaluate"]["ensemble"] == 3  # replaced


def test_a_folder_of_someone_elses_files_is_refused_untouched(setup, scan, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mask.nii.gz").write_bytes(b"the user's own mask")
    assert predict(scan, "--checkpoint", setup[0], "--out", out) == 2
    assert "holds no earlier prediction" in one_error_line(capsys)
    assert files_under(out) == ["mask.nii.gz"] and (out / "mask.nii.gz").read_bytes() == b"the user's own mask"


def test_a_replacement_cut_short_is_finished_by_the_next_run(setup, scan, tmp_path, capsys):
    from ichseg.engine.predict import REPLACING

    out = tmp_path / "out"
    assert predict(scan, "--checkpoint", setup[0], "--out", out) == 0
    (out / "summary.json").unlink()  # as if killed between the swaps: the marker says whose files they are
    (out / REPLACING).write_text("")
    (out / "notes.txt").write_text("mine")
    assert predict(scan, "--checkpoint", setup[0], "--out", out) == 0, capsys.readouterr().err
    assert (out / "summary.json").is_file() and not (out / REPLACING).exists() and (out / "notes.txt").is_file()


# -- settings, volume and summary ------------------------------------------------------------------------
def test_predict_samples_as_the_profile_evaluates_and_reports_the_volume(setup, scan, tmp_path, capsys):
    out = tmp_path / "out"
    assert predict(scan, "--checkpoint", setup[0], "--out", out) == 0
    line = capsys.readouterr().out.strip()
    s = json.loads((out / "summary.json").read_text())
    ev = s["evaluate"]
    assert (ev["sampler"], ev["steps"], ev["ensemble"], ev["batch_slices"]) == ("ddim", 2, 2, 8)  # the profile's
    mask = np.asarray(nib.load(str(out / "mask.nii.gz")).dataobj)
    assert s["hemorrhage_volume_ml"] == pytest.approx(mask.sum() * s["voxel_volume_ml"], abs=1e-3)
    lo, hi = s["hemorrhage_volume_range_ml"]
    assert len(s["ensemble_volumes_ml"]) == 2 and lo == min(s["ensemble_volumes_ml"]) and hi == max(s["ensemble_volumes_ml"])
    assert s["abc2"]["volume_ml"] > 0 and s["abc2"]["c_mm"] <= len(s["slices_with_hemorrhage"]) * 5.0 + 1e-6
    assert f"{s['hemorrhage_volume_ml']} mL (ensemble members {lo}-{hi} mL, ABC/2 {s['abc2']['volume_ml']} mL)" in line
    assert predict(scan, "--checkpoint", setup[0], "--out", out, "--sampler", "dpm-solver++", "--steps", "3") == 0
    ev = json.loads((out / "summary.json").read_text())["evaluate"]
    assert (ev["sampler"], ev["steps"], ev["ensemble"]) == ("dpm-solver++", 3, 2)  # options replace, one each


def test_what_is_marked_outside_the_skull_is_left_out_and_counted():
    import torch

    from ichseg.data.slices import slices_of_file_grid
    from ichseg.data.volumes import Volume
    from ichseg.engine.predict import _on_scan_grid

    z, n = 3, 16
    aff = np.diag([1.0, 1.0, 5.0, 1.0])
    vol = Volume(Path("v.nii.gz"), np.zeros((n, n, z), np.float32), aff, aff, (n, n, z),
                 np.array([[0, 1], [1, 1], [2, 1]], float), (1.0, 1.0, 5.0))
    prob, unc, members = torch.full((z, n, n), 0.9), torch.zeros((z, n, n)), torch.full((z, 2, n, n), 0.9)
    keep = np.zeros((z, n, n), bool)
    keep[:, :, : n // 4] = True
    maps = _on_scan_grid(vol, prob, unc, members, 0.5, keep)
    assert maps["mask"].sum() == keep.sum() and maps["outside_voxels"] == (~keep).sum()
    assert maps["member_voxels"] == [keep.sum()] * 2  # the members' volumes are kept alike
    assert (slices_of_file_grid(maps["probability"], vol)[~keep] == 0).all()
    free = _on_scan_grid(vol, prob, unc, members, 0.5)
    assert free["outside_voxels"] is None and free["mask"].sum() == z * n * n


def test_keep_outside_skull_is_recorded_and_reruns_the_prediction(setup, scan, tmp_path, capsys):
    out = tmp_path / "out"
    assert predict(scan, "--checkpoint", setup[0], "--out", out) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["settings"]["inside_skull"] is True and s["outside_skull_ml"] >= 0
    assert predict(scan, "--checkpoint", setup[0], "--out", out, "--keep-outside-skull") == 0
    kept = json.loads((out / "summary.json").read_text())
    assert kept["settings"]["inside_skull"] is False and kept["outside_skull_ml"] is None
    assert kept["hemorrhage_volume_ml"] >= s["hemorrhage_volume_ml"]


# -- DICOM input -----------------------------------------------------------------------------------------
def _canonical(path: Path) -> tuple[np.ndarray, np.ndarray]:
    img = nib.as_closest_canonical(nib.load(str(path)))
    return np.asarray(img.dataobj), img.affine


def test_a_dicom_series_and_the_nifti_of_the_same_phantom_give_the_same_mask_and_volume(setup, scan, tmp_path, capsys):
    series = as_series(scan, tmp_path / "series")
    assert predict(scan, "--checkpoint", setup[0], "--out", tmp_path / "nifti") == 0
    assert predict(series, "--checkpoint", setup[0], "--out", tmp_path / "dicom") == 0, capsys.readouterr().err
    a, b = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("nifti", "dicom"))
    mask_a, aff_a = _canonical(tmp_path / "nifti" / "mask.nii.gz")
    mask_b, aff_b = _canonical(tmp_path / "dicom" / "mask.nii.gz")
    assert mask_a.any() and np.array_equal(mask_a, mask_b) and np.allclose(aff_a, aff_b, atol=1e-3)
    # the series' own grid is not the NIfTI's: the mask is stored on each input's grid
    assert nib.load(str(tmp_path / "dicom" / "mask.nii.gz")).shape[:2] == nib.load(str(scan)).shape[1::-1]
    np.testing.assert_allclose(_canonical(tmp_path / "nifti" / "probability.nii.gz")[0],
                               _canonical(tmp_path / "dicom" / "probability.nii.gz")[0], atol=1e-5)
    for key in ("hemorrhage_volume_ml", "hemorrhage_volume_range_ml", "ensemble_volumes_ml"):
        assert b[key] == pytest.approx(a[key], abs=2e-3), key
    assert b["abc2"]["volume_ml"] == pytest.approx(a["abc2"]["volume_ml"], abs=2e-3)
    assert len(b["slices_with_hemorrhage"]) == len(a["slices_with_hemorrhage"])
    # what was read is recorded, the patient's name and ID never are
    meta = b["input"]
    assert (meta["format"], meta["modality"], meta["series_description"], meta["n_files"]) == (
        "dicom", "CT", "ichseg phantom", nib.load(str(scan)).shape[2])
    text = (tmp_path / "dicom" / "summary.json").read_text() + (tmp_path / "dicom" / "report.html").read_text()
    assert "Phantom^Ichseg" not in text and "PHANTOM" not in text
    assert "DICOM series #1 &#x27;ichseg phantom&#x27;" in (tmp_path / "dicom" / "report.html").read_text()
    # one file of the series stands for its series
    one = sorted(series.iterdir())[0]
    assert predict(one, "--checkpoint", setup[0], "--out", tmp_path / "file") == 0
    assert np.array_equal(_canonical(tmp_path / "file" / "mask.nii.gz")[0], mask_a)


def test_preview_and_report_beside_every_prediction(setup, scan, tmp_path):
    out = tmp_path / "out"
    assert predict(scan, "--checkpoint", setup[0], "--out", out) == 0
    s = json.loads((out / "summary.json").read_text())
    assert {"preview.png", "report.html"} <= set(s["files"])
    assert (out / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    lo, hi = s["hemorrhage_volume_range_ml"]
    assert f"{s['hemorrhage_volume_ml']:.1f} mL (ensemble members {lo:.1f}-{hi:.1f} mL)" in page
    assert f"{s['abc2']['volume_ml']:.1f} mL" in page and "data:image/png;base64," in page
    assert "http" not in page.replace("http-equiv", "")  # needs no network


def test_two_series_in_a_folder_are_listed_and_series_picks_one(setup, tmp_path, capsys):
    folder = tmp_path / "study"
    as_series(setup[1][0], folder, description="HEAD 5mm", series_number=2)
    as_series(setup[1][1], folder, rotate=False, description="BONE", series_number=3)
    out = tmp_path / "out"
    assert predict(folder, "--checkpoint", setup[0], "--out", out) == 2
    line = one_error_line(capsys)
    assert f"{folder}: 2 series found, pick one with --series" in line and "'HEAD 5mm'" in line and "'BONE'" in line
    assert not out.exists()
    assert predict(folder, "--checkpoint", setup[0], "--out", out, "--series", "3") == 0, capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["input"]["series_description"] == "BONE"
    assert predict(folder, "--checkpoint", setup[0], "--out", out, "--series", "head 5mm") == 0
    s = json.loads((out / "summary.json").read_text())
    assert (s["input"]["series_number"], s["settings"]["series"]) == ("2", "head 5mm")
    assert s["shape"] == list(nib.load(str(setup[1][0])).shape[1::-1]) + [nib.load(str(setup[1][0])).shape[2]]
    capsys.readouterr()
    assert predict(setup[1][0], "--checkpoint", setup[0], "--out", tmp_path / "n", "--series", "2") == 2
    assert "--series '2' picks a DICOM series, and no scan given is DICOM" in one_error_line(capsys)


def test_the_slices_sampled_at_once_do_not_change_the_prediction(setup, scan, tmp_path):
    """``batch_slices`` (capped on a CPU) is a memory knob: with ddim every slice starts from the
    same noise in any batch, so the maps agree."""
    for n in ("1", "8"):
        assert predict(scan, "--checkpoint", setup[0], "--out", tmp_path / n, "--batch-slices", n) == 0
    a, b = (np.asarray(nib.load(str(tmp_path / n / "probability.nii.gz")).dataobj) for n in ("1", "8"))
    assert a.max() > 0 and np.allclose(a, b, atol=1e-4)
    assert np.array_equal(*(np.asarray(nib.load(str(tmp_path / n / "mask.nii.gz")).dataobj) for n in ("1", "8")))


# -- a folder of scans -----------------------------------------------------------------------------------
def test_a_folder_of_five_scans_one_broken_then_a_rerun_skips_the_four(setup, tmp_path, capsys):
    folder = tmp_path / "scans"
    folder.mkdir()
    for p in setup[1]:
        shutil.copy(p, folder / p.name)
    broken = folder / setup[1][2].name
    broken.write_bytes(b"not a NIfTI at all" * 10)
    (folder / setup[1][3].name).unlink()  # the fourth scan as a DICOM series in its own folder
    as_series(setup[1][3], folder / "004-ct")
    out = tmp_path / "out"
    assert predict(folder, "--checkpoint", setup[0], "--out", out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1 scan(s) failed" in err[0]
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["ok", "ok", "error", "ok", "ok"]
    assert str(broken) in rows[2]["error"] and "not a readable NIfTI" in rows[2]["error"]
    assert all(float(r["volume_ml"]) >= 0 and r["abc2_ml"] and r["volume_min_ml"] and r["slices"] for r in rows if r["status"] == "ok")
    assert sorted(p.name for p in out.iterdir()) == ["001", "002", "004-ct", "005", "summary.csv"]
    assert rows[3]["scan"] == str(folder / "004-ct")
    assert json.loads((out / "004-ct" / "summary.json").read_text())["input"]["format"] == "dicom"
    assert all({"preview.png", "report.html"} <= {p.name for p in (out / d).iterdir()} for d in ("001", "004-ct"))
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("mask.nii.gz")}
    assert len(stamps) == 4
    assert predict(folder, "--checkpoint", setup[0], "--out", out) == 2
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["skipped", "skipped", "error", "skipped", "skipped"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("mask.nii.gz")} == stamps  # not redone
    assert predict(folder, "--checkpoint", setup[0], "--out", out, "--steps", "1") == 2  # other settings: redone
    assert [r["status"] for r in csv.DictReader((out / "summary.csv").open())] == ["ok", "ok", "error", "ok", "ok"]


def test_scan_names_are_unique_and_stable(tmp_path):
    from ichseg.engine.predict import scan_names

    a, b = tmp_path / "a" / "001.nii.gz", tmp_path / "b" / "001.nii"
    for p in (a, b):
        p.parent.mkdir()
        p.write_bytes(b"x")
    assert scan_names([a, b, tmp_path / "a"]) == ["001", "001-2", "a"]


def test_predict_and_evaluate_of_the_committed_model_sample_as_recorded(setup, tmp_path, monkeypatch, capsys):
    """``evaluate`` samples with the profile's evaluation settings; ``predict`` with the same, except
    the settings chosen for prediction on validation patients that the exported file records."""
    from ichseg.engine import evaluate as evaluate_mod
    from ichseg.engine.checkpoint import load_checkpoint
    from ichseg.engine.predict import CPU_BATCH_SLICES, Predictor
    from ichseg.engine.weights import PREDICT
    from ichseg.errors import IchsegError

    weights = Path(__file__).resolve().parents[1] / "results" / "cpu" / "model" / "full.pt"
    seen = {}

    def fake_evaluate(checkpoint, prepared, out, ecfg, **kw):
        seen["evaluate"] = ecfg
        raise IchsegError("stop here")

    def fake_call(self, scan, out):
        seen["predict"] = self.ecfg
        raise IchsegError("stop here")

    monkeypatch.setattr(evaluate_mod, "evaluate_checkpoint", fake_evaluate)
    monkeypatch.setattr(Predictor, "__call__", fake_call)
    assert main(["evaluate", "--checkpoint", str(weights), "--prepared", str(tmp_path), "--out", str(tmp_path / "e")]) == 2
    assert predict(setup[1][0], "--checkpoint", weights, "--out", tmp_path / "p") == 2
    capsys.readouterr()
    state = load_checkpoint(weights)
    profile, chosen = state["config"]["evaluate"], state[PREDICT]["settings"]
    assert chosen and any(profile[k] != v for k, v in chosen.items())  # the record changes something
    keys = ("sampler", "steps", "ensemble", "eta", "paper_fusion", "seed", "threshold")
    assert [getattr(seen["evaluate"], k) for k in keys] == [profile[k] for k in keys]
    assert [getattr(seen["predict"], k) for k in keys] == [chosen.get(k, profile[k]) for k in keys]
    # on a CPU predict samples fewer slices at once (memory; the result does not depend on it)
    assert seen["predict"].batch_slices == min(profile["batch_slices"], CPU_BATCH_SLICES)


def test_eval_settings_one_constructor_for_every_caller():
    from ichseg.engine.config import EvalConfig
    from ichseg.engine.inference import eval_settings
    from ichseg.errors import ConfigError

    run_cfg = {"model": {}, "evaluate": {"sampler": "ddim", "steps": 5, "ensemble": 3}}
    # the notebook's papermill parameters: "" and 0 mean "the profile's"
    e = eval_settings(run_cfg, {"sampler": "", "steps": 0, "ensemble": 7, "seed": 0})
    assert (e.sampler, e.steps, e.ensemble, e.seed) == ("ddim", 5, 7, 0)
    assert eval_settings(None) == EvalConfig() and eval_settings({"steps": 4}).steps == 4
    assert eval_settings(EvalConfig(steps=9), {"steps": None}).steps == 9
    with pytest.raises(ConfigError, match="unknown key"):
        eval_settings(run_cfg, {"stepz": 3})
    with pytest.raises(ConfigError, match="evaluate.steps"):
        eval_settings(run_cfg, {"steps": -1})


def test_threads_option_sets_the_sampling_threads_and_refuses_zero(setup, scan, tmp_path, capsys):
    import torch

    before = torch.get_num_threads()
    try:
        assert predict(scan, "--checkpoint", setup[0], "--out", tmp_path / "bad", "--threads", 0) == 2
        assert "--threads: must be a positive integer" in one_error_line(capsys)
        assert not (tmp_path / "bad").exists()
        torch.set_num_threads(2)
        assert predict(scan, "--checkpoint", setup[0], "--out", tmp_path / "one", "--threads", 1) == 0
        summary = json.loads((tmp_path / "one" / "summary.json").read_text())
        assert summary["environment"]["device"].endswith(", 1 threads)")
    finally:
        torch.set_num_threads(before)

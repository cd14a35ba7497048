"""nnU-Net v2 baseline (Table 1, column "nnU-Net"), run through the real ``nnunetv2`` package.

Pipeline (``train_nnunet``): prepared slices -> nnU-Net raw dataset (``export_raw_dataset``) ->
``nnUNetv2_plan_and_preprocess --verify_dataset_integrity`` (``2d`` only) -> our patient split as
``splits_final.json`` (``write_splits``) -> training of fold 0 -> ``predict`` / ``evaluate_nnunet``,
which score nnU-Net with ``write_evaluation`` like every other model of the study.

Design choices
--------------
*Cases are patients holding their prepared slices.* nnU-Net is given exactly the slices every
other model trains and is tested on: the kept rows of ``images.npy`` / ``masks.npy`` of the
prepared folder, already windowed, resized and normalised. One nnU-Net case per patient stacks
that patient's kept slices along z (in ``slices.csv`` order; a patient with several series has
them one after the other) and nnU-Net's ``2d`` configuration treats every z-slice as one
training sample and predicts slice by slice, so its test predictions land on the very slices
(``cases.csv``: case, z -> prepared split and row) that ``write_evaluation`` scores for every
model. A case per slice would make nnU-Net's patient-level sampling and its fingerprint
meaningless; the 3D configurations would need whole contiguous volumes, which the training
split does not have (negatives are downsampled, paper §4.1), so they are not planned.

*Geometry.* The prepared slices are resized to a fixed S x S grid whatever the scanner's
pixel spacing, and every other model sees that grid. The in-plane spacing written to the NIfTI
files is therefore 1 (one prepared pixel), the same for every case and every dataset, so nnU-Net
resamples neither training cases nor test or cross-dataset cases and sees the same pixels as the
other models. The scanner's spacing (``spacing_*_mm`` of ``slices.csv``) would be wrong for the
resized pixels; their true size (``pixel_*_mm``) varies between patients and datasets, and
writing it would make nnU-Net resample every case to its median spacing, i.e. train and predict
on other pixels than the other models. No length is measured here: nnU-Net's predictions are
scored by ``write_evaluation`` on the prepared grid, in mm and mL from ``pixel_*_mm``. The z spacing is the slice
thickness from ``slices.csv`` (median of the case), at least 1: it is not used by the 2d
configuration, but keeping it >= the in-plane spacing makes nnU-Net's planner keep z as the
slicing axis.

*Intensity normalisation: channel name ``noNorm``.* nnU-Net's ``CT`` scheme clips each image to
the 0.5/99.5 percentiles of the *foreground* (lesion) intensities of the whole training set and
z-scores with their mean/std: a data-driven window meant for raw HU. Our inputs are no longer HU
but the study's windowed and normalised values; ``CT`` would apply a second, lesion-derived
window on top of the brain window (clipping away the grey/white matter and CSF contrast below
the lesion percentiles; on phantom lesions of near-constant intensity the window collapses)
and would compute its statistics from the validation patients' lesions too (they are in
``imagesTr``). ``noNorm`` passes the prepared values through, so
nnU-Net sees exactly what every other model sees; a model trained on one dataset then gets the
same fixed normalisation on the others. ``NnunetConfig.channel_name`` can select ``CT`` or
``zscore`` for an ablation. With ``multi`` windows the three channels are ``_0000`` .. ``_0002``.

*Split.* Fold 0 of ``splits_final.json`` trains on our train-split patients and validates on our
validation-split patients (``prep.val_fraction`` of the training patients, the same ones every
other model chooses its checkpoint on), so ``imagesTr``/``labelsTr`` hold exactly those two
splits and ``imagesTs`` the test patients (images only): no nnU-Net step (its dataset
fingerprint, planning, training or validation) sees a test label. nnU-Net predicts with
``checkpoint_final.pth`` (its default), so the validation cases do not select the model.

*Trainer.* ``NnunetConfig.trainer = "nnUNetTrainer"`` is nnU-Net's unchanged default recipe
(1000 epochs x 250 iterations, 50 validation iterations): the paper/gpu profile.
``"nnUNetTrainerIchseg"`` (``ichseg/engine/nnunet/trainer/ichseg_nnunet.py``) is the same trainer
with the run length set by ``epochs``, ``iterations_per_epoch`` and ``val_iterations``: the smoke
profile and the tests. nnU-Net finds trainers by class name (``recursive_find_trainer_class_by_name``
searches ``nnunetv2.training.nnUNetTrainer``, then the folders in ``nnUNet_extTrainer``,
nnunetv2 >= 2.8); training passes our class directly, and for prediction, which looks the name
up from the checkpoint, the child's ``nnUNet_extTrainer`` points at ``ichseg/engine/nnunet/trainer``:
nothing is written into site-packages.

*Commands.* Planning and preprocessing run nnU-Net's own ``nnUNetv2_plan_and_preprocess``
console entry point. Training and prediction run the small script ``ichseg_nnunet.py`` in a
child process, which calls nnU-Net's Python API exactly as ``nnUNetv2_train`` and
``nnUNetv2_predict_from_modelfolder --save_probabilities`` do, with three differences that
matter here: the trainer class is passed directly, Python/NumPy/torch are seeded, and the torch
thread count is ours (``NnunetConfig.threads``; nnU-Net's commands force all cores, which on this
project's shared two-core CPU made training 4x and prediction more than 10x slower than one thread).
Prediction runs case by case in the process (``predict_single_npy_array``: nnU-Net's
preprocessing, sliding window, mirroring, resampling back) instead of starting worker pools.
With ``da_workers=0`` nnU-Net augments in the training process and a CPU run is repeatable;
nnU-Net's default worker pool (``da_workers=None``) is nondeterministic by design.

*Processes and environment.* Every nnU-Net step runs as a child process with ``nnUNet_raw``,
``nnUNet_preprocessed`` and ``nnUNet_results`` pointing into ``work_dir`` (the caller's
``os.environ`` is not touched), its output in ``work_dir/logs/<step>.log`` (a prediction: ``predict.log`` in its folder); a failed step raises
``IchsegError`` naming the command and the log.

*Resuming.* Each step leaves a stamp when it has finished: the export (``ichseg_export.json``
in the raw dataset), plan+preprocess (``ichseg_preprocess.json``), training
(``ichseg_nnunet.json`` in the model folder, beside ``fold_0/checkpoint_final.pth``). Calling
``train_nnunet`` again skips finished steps (a no-op when all are done). An interrupted
export leaves only a hidden temporary folder; an interrupted preprocessing is redone from
scratch; an interrupted training continues from nnU-Net's newest checkpoint
(``checkpoint_latest.pth``, written every 50 epochs by nnU-Net's trainer and about five times
per run by ours, or ``checkpoint_best.pth``), as ``nnUNetv2_train --c`` does: the epochs since
that checkpoint are trained again. ``work_dir/ichseg_nnunet.json`` records the data and the
training settings; a work folder holding a run with other settings is refused.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from ...data import SliceDataset
from ...data.preparation import IMAGES, MANIFEST, MASKS
from ...errors import ConfigError, IchsegError
from ...utils import atomic_directory, atomic_write_json, config_hash
from ..config import NNUNET_CHANNEL_NAMES, NnunetConfig
from ..devices import resolve_device
from ..scoring import write_evaluation

#: the nnunetv2 release this module is written and tested against (``nnUNet_extTrainer`` needs 2.8)
NNUNET_REQUIREMENT = "nnunetv2==2.8.1"
MIN_NNUNET = (2, 8)
TRAINER_DIR = Path(__file__).resolve().parent / "trainer"
RUNNER = TRAINER_DIR / "ichseg_nnunet.py"
PLANS = "nnUNetPlans"
CASES = "cases.csv"
EXPORT_STAMP, PREPROCESS_STAMP, MODEL_STAMP, RUN_STAMP = (
    "ichseg_export.json", "ichseg_preprocess.json", "ichseg_nnunet.json", "ichseg_nnunet.json")
EXPORT_VERSION = 2
FILE_ENDING = ".nii.gz"
CHECKPOINT = "checkpoint_final.pth"


# ----------------------------------------------------------------------------------------------
# nnunetv2 availability and child processes
# ----------------------------------------------------------------------------------------------
def nnunet_version() -> str:
    """The installed nnunetv2 version; ``IchsegError`` when it is missing or too old."""
    hint = f"install it with `pip install {NNUNET_REQUIREMENT}` (or `pip install -e .` in the ichseg repository)"
    if importlib.util.find_spec("nnunetv2") is None:
        raise IchsegError(f"nnU-Net baseline: the package nnunetv2 is not installed; {hint}")
    try:
        version = importlib.metadata.version("nnunetv2")
    except importlib.metadata.PackageNotFoundError:
        raise IchsegError(f"nnU-Net baseline: nnunetv2 is importable but has no package metadata; {hint}") from None
    parts = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
    if parts < MIN_NNUNET:
        raise IchsegError(f"nnU-Net baseline: nnunetv2 {version} is too old (needs >= "
                          f"{'.'.join(map(str, MIN_NNUNET))}); {hint}")
    return version


def _entry_point(name: str) -> tuple[str, str]:
    """(module, function) of one of nnunetv2's console scripts, from its own metadata."""
    for ep in importlib.metadata.entry_points(group="console_scripts", name=name):
        module, _, func = ep.value.partition(":")
        return module.strip(), func.strip()
    raise IchsegError(f"nnU-Net baseline: nnunetv2 does not provide the command {name}; "
                      f"install it with `pip install {NNUNET_REQUIREMENT}`")


def _command(name: str, args: list[str]) -> list[str]:
    """argv running nnunetv2's console script ``name`` with the current interpreter."""
    module, func = _entry_point(name)
    code = f"import sys; from {module} import {func} as main; sys.argv[0] = {name!r}; sys.exit(main())"
    return [sys.executable, "-c", code, *args]


def nnunet_device(cfg: NnunetConfig) -> str:
    """``cpu`` or ``cuda``: nnU-Net's ``-device`` argument for ``cfg.device`` (``auto`` resolved)."""
    return resolve_device(cfg.device, "nnunet.device").type


def _child_env(roots: Mapping[str, Path], cfg: NnunetConfig, *, training: bool = False) -> dict[str, str]:
    """The child's environment: the caller's, plus nnU-Net's folders and settings.

    ``nnUNet_n_proc_DA`` is set for training only: nnU-Net's planner passes it to
    ``torch.set_num_threads``, which refuses 0."""
    env = dict(os.environ)
    env.update({k: str(Path(v).resolve()) for k, v in roots.items()})
    env["nnUNet_extTrainer"] = str(TRAINER_DIR)
    env["nnUNet_def_n_proc"] = str(cfg.processes)
    if cfg.threads is not None:  # BLAS/OpenMP pools of the child and its workers
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[k] = str(cfg.threads)
    if not training:
        env.pop("nnUNet_n_proc_DA", None)
    elif cfg.da_workers is not None:
        env["nnUNet_n_proc_DA"] = str(cfg.da_workers)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("MPLBACKEND", "Agg")
    return env


def _roots(work_dir: Path) -> dict[str, Path]:
    return {"nnUNet_raw": work_dir / "nnUNet_raw", "nnUNet_preprocessed": work_dir / "nnUNet_preprocessed",
            "nnUNet_results": work_dir / "nnUNet_results"}


def run_step(display: str, argv: list[str], env: Mapping[str, str], log_path: Path, cwd: Path | None = None) -> float:
    """Run one nnU-Net step, its output appended to ``log_path``; seconds taken.

    A non-zero exit raises ``IchsegError`` with one line naming ``display`` and the log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {display}\n")
        log.flush()
        try:
            rc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=dict(env),
                                cwd=str(cwd) if cwd else None, check=False).returncode
        except OSError as exc:
            raise IchsegError(f"nnU-Net step `{display}` could not start ({exc}); see {log_path}") from None
    if rc != 0:
        raise IchsegError(f"nnU-Net step `{display}` failed with exit status {rc}; see {log_path}")
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------------------------
# export: prepared slices -> nnU-Net raw dataset
# ----------------------------------------------------------------------------------------------
def dataset_name(dataset_id: int, name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name or ""):
        raise ConfigError(f"nnunet dataset name: use letters, digits, '_' and '-' only, got {name!r}")
    return f"Dataset{int(dataset_id):03d}_{name}"


def _manifest(prepared: Path) -> dict:
    path = prepared / MANIFEST
    if not path.is_file():
        raise IchsegError(f"{path}: not found; is {prepared} a folder written by `ichseg prepare`?")
    return json.loads(path.read_text())


def _case_ids(patients: list[str]) -> dict[str, str]:
    """Patient -> a file-name-safe, unique nnU-Net case id (readable: derived from the patient)."""
    out, used = {}, set()
    for p in patients:
        base = re.sub(r"[^A-Za-z0-9-]+", "-", str(p)).strip("-") or "case"
        cid, k = base, 1
        while cid.lower() in used:
            k += 1
            cid = f"{base}-{k}"
        used.add(cid.lower())
        out[p] = cid
    return out


def case_table(prepared: str | Path, splits: tuple[str, ...] = ("train", "val", "test")) -> pd.DataFrame:
    """One row per kept slice of ``splits``: case, z (position in the case), split, patient,
    volume, row (of the prepared arrays), slice (index of ``slices.csv``), thickness_mm."""
    parts = []
    for split in splits:
        t = SliceDataset(prepared, split=split).table
        parts.append(pd.DataFrame({"split": split, "patient": t["patient"].astype(str).to_numpy(),
                                   "volume": t["volume"].astype(str).to_numpy(), "row": t["row"].to_numpy(int),
                                   "slice": t.index.to_numpy(int), "thickness_mm": t["thickness_mm"].to_numpy(float)}))
    table = pd.concat(parts, ignore_index=True)
    ids = _case_ids(list(dict.fromkeys(table["patient"])))
    table.insert(0, "case", table["patient"].map(ids))
    table.insert(1, "z", table.groupby("case").cumcount())
    return table


def _write_case(folder: Path, case: str, images: np.ndarray, thickness: float, labels_folder: Path | None,
                masks: np.ndarray | None) -> None:
    """images (Z, C, H, W) -> <case>_000c.nii.gz; masks (Z, H, W) -> labels/<case>.nii.gz.

    Voxel (x, y, z) of the NIfTI file = pixel (row y, column x) of slice z, so nnU-Net's
    SimpleITK reader returns (Z, H, W) arrays in our slice order."""
    import nibabel as nib

    affine = np.diag([1.0, 1.0, max(float(thickness), 1.0), 1.0])

    def save(arr: np.ndarray, path: Path) -> None:
        img = nib.Nifti1Image(np.ascontiguousarray(arr.transpose(2, 1, 0)), affine)
        img.header.set_xyzt_units("mm")
        nib.save(img, str(path))

    for c in range(images.shape[1]):
        save(np.asarray(images[:, c], dtype=np.float32), folder / f"{case}_{c:04d}{FILE_ENDING}")
    if labels_folder is not None:
        save(np.asarray(masks, dtype=np.uint8), labels_folder / f"{case}{FILE_ENDING}")


def _export_stamp(manifest: dict, dataset_id: int, name: str, channel_name: str) -> dict:
    return {"export_version": EXPORT_VERSION, "dataset": manifest.get("dataset"),
            "prepared_fingerprint": manifest.get("fingerprint"), "prepared_config": manifest.get("config"),
            "dataset_id": int(dataset_id), "name": name, "channel_name": channel_name}


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def export_raw_dataset(prepared: str | Path, nnunet_raw: str | Path, *, dataset_id: int = 501, name: str | None = None,
                       channel_name: str = "noNorm") -> Path:
    """Write the nnU-Net raw dataset ``nnunet_raw/DatasetXXX_<name>/`` of a prepared folder.

    ``imagesTr``/``labelsTr``: one case per patient of the train and validation splits (their kept
    slices stacked along z); ``imagesTs``: the test patients' images; ``dataset.json``;
    ``cases.csv`` (case, z -> split, prepared row, slices.csv index). Built in a temporary folder
    and renamed into place; returns at once when the folder already holds this export.
    """
    prepared, nnunet_raw = Path(prepared), Path(nnunet_raw)
    manifest = _manifest(prepared)
    name = name or f"ICH{manifest.get('dataset', 'data')}"
    if channel_name not in NNUNET_CHANNEL_NAMES:
        raise ConfigError(f"nnunet.channel_name: unknown value {channel_name!r}; known: {', '.join(NNUNET_CHANNEL_NAMES)}")
    folder_name = dataset_name(dataset_id, name)
    target = nnunet_raw / folder_name
    stamp = _export_stamp(manifest, dataset_id, name, channel_name)
    if _read_json(target / EXPORT_STAMP) == stamp:
        return target
    if nnunet_raw.is_dir():
        clash = sorted(p.name for p in nnunet_raw.glob(f"Dataset{int(dataset_id):03d}_*") if p.name != folder_name)
        if clash:
            raise IchsegError(f"{nnunet_raw}: dataset id {dataset_id} is already used by {clash[0]}; "
                              "choose another nnunet.dataset_id or another work folder")
    cases = case_table(prepared)
    if not (cases["split"] == "train").any():
        raise IchsegError(f"{prepared}: the train split has no slices; nnU-Net cannot be trained on "
                          f"{manifest.get('dataset')} (a test-only dataset: use `predict` with a trained model)")
    if not (cases["split"] == "val").any():
        raise IchsegError(f"{prepared}: the validation split has no slices; nnU-Net's validation fold would be "
                          "empty (set prep.val_fraction > 0)")
    images = np.load(prepared / IMAGES, mmap_mode="r")
    masks = np.load(prepared / MASKS, mmap_mode="r")
    if masks.ndim == 4:  # (N, 1, H, W) also accepted
        masks = masks[:, 0]
    n_channels = int(images.shape[1])
    with atomic_directory(target, replace=True) as tmp:
        for sub in ("imagesTr", "labelsTr", "imagesTs"):
            (tmp / sub).mkdir()
        for case, part in cases.groupby("case", sort=False):
            rows = part["row"].to_numpy(int)
            img, msk = images[rows], masks[rows]
            thick = float(np.median(part["thickness_mm"]))
            if part["split"].iloc[0] == "test":  # images only: no test label reaches nnU-Net
                _write_case(tmp / "imagesTs", case, img, thick, None, None)
            else:
                _write_case(tmp / "imagesTr", case, img, thick, tmp / "labelsTr", msk)
        n_cases = int(cases.loc[cases["split"] != "test", "case"].nunique())
        atomic_write_json(tmp / "dataset.json", {
            "name": name,
            "description": f"{manifest.get('title', manifest.get('dataset'))}: prepared slices "
                           f"(config {manifest.get('config_hash')}, fingerprint {manifest.get('fingerprint')}), "
                           "one case per patient, exported by ichseg",
            "channel_names": {str(c): channel_name for c in range(n_channels)},
            "labels": {"background": 0, "hemorrhage": 1},
            "numTraining": n_cases,
            "file_ending": FILE_ENDING,
            "overwrite_image_reader_writer": "SimpleITKIO",
        })
        cases.drop(columns=["thickness_mm"]).to_csv(tmp / CASES, index=False)
        atomic_write_json(tmp / EXPORT_STAMP, stamp)
        for p in tmp.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        tmp.chmod(0o755)
    return target


def read_cases(raw_dataset: str | Path) -> pd.DataFrame:
    path = Path(raw_dataset) / CASES
    if not path.is_file():
        raise IchsegError(f"{path}: not found; is {raw_dataset} a dataset written by export_raw_dataset?")
    return pd.read_csv(path, dtype={"case": str, "patient": str, "volume": str, "split": str})


def write_splits(raw_dataset: str | Path, preprocessed_dataset: str | Path) -> Path:
    """``splits_final.json`` with one fold: train = our train-split patients' cases, val = our
    validation-split patients' cases (patient-disjoint from each other and from the test
    patients by construction, checked)."""
    cases = read_cases(raw_dataset)
    per_case = cases.groupby("case", sort=False).agg(split=("split", "unique"), patient=("patient", "unique"))
    if (per_case["split"].map(len) != 1).any() or (per_case["patient"].map(len) != 1).any():
        raise IchsegError(f"{Path(raw_dataset) / CASES}: a case spans several patients or splits")
    split_of = per_case["split"].map(lambda s: s[0])
    train, val = sorted(split_of.index[split_of == "train"]), sorted(split_of.index[split_of == "val"])
    patients = {s: set(cases.loc[cases["split"] == s, "patient"]) for s in ("train", "val", "test")}
    if patients["train"] & patients["val"] or (patients["train"] | patients["val"]) & patients["test"] \
            or not train or not val:
        raise IchsegError(f"{raw_dataset}: the train/validation/test split is not patient-disjoint or a split is empty")
    path = Path(preprocessed_dataset) / "splits_final.json"
    atomic_write_json(path, [{"train": train, "val": val}])
    return path


def export_images(prepared: str | Path, split: str, folder: str | Path) -> pd.DataFrame:
    """Images of one split as nnU-Net input files (one case per patient) in ``folder``; the case
    table (rows in ``SliceDataset(prepared, split).table`` order)."""
    prepared, folder = Path(prepared), Path(folder)
    _manifest(prepared)
    cases = case_table(prepared, (split,))
    if cases.empty:
        raise IchsegError(f"{prepared}: split {split!r} has no slices")
    images = np.load(prepared / IMAGES, mmap_mode="r")
    folder.mkdir(parents=True, exist_ok=True)
    for case, part in cases.groupby("case", sort=False):
        _write_case(folder, case, images[part["row"].to_numpy(int)], float(np.median(part["thickness_mm"])), None, None)
    return cases


# ----------------------------------------------------------------------------------------------
# plan + preprocess, training
# ----------------------------------------------------------------------------------------------
def _model_dir(work_dir: Path, cfg: NnunetConfig, folder_name: str) -> Path:
    return _roots(work_dir)["nnUNet_results"] / folder_name / f"{cfg.trainer}__{PLANS}__{cfg.configuration}"


def _check_run_stamp(work_dir: Path, stamp: dict) -> None:
    path = work_dir / RUN_STAMP
    old = _read_json(path)
    if old is None:
        atomic_write_json(path, stamp)
        return
    if old != stamp:
        diff = sorted(k for k in set(old) | set(stamp) if old.get(k) != stamp.get(k))
        raise IchsegError(f"{work_dir}: holds an nnU-Net run with other settings ({', '.join(diff)} differ, "
                          f"see {path}); use another work folder or delete this one")


def train_nnunet(prepared: str | Path, work_dir: str | Path, cfg: NnunetConfig | Mapping[str, Any] | None = None, *,
                 name: str | None = None, log: Callable[[str], None] | None = None) -> Path:
    """Export -> plan/preprocess (2d) -> splits -> train fold 0; the trained model folder.

    Resumable: finished steps are skipped, an interrupted training continues from nnU-Net's
    newest checkpoint; a no-op when ``fold_0/checkpoint_final.pth`` and the stamp exist.
    """
    cfg = cfg if isinstance(cfg, NnunetConfig) else NnunetConfig.from_dict(cfg)
    log = log or (lambda msg: None)
    version = nnunet_version()
    prepared, work_dir = Path(prepared), Path(work_dir)
    manifest = _manifest(prepared)
    name = name or f"ICH{manifest.get('dataset', 'data')}"
    folder_name = dataset_name(cfg.dataset_id, name)
    roots = _roots(work_dir)
    model_dir = _model_dir(work_dir, cfg, folder_name)
    run_stamp = {"prepared_fingerprint": manifest.get("fingerprint"), "dataset": manifest.get("dataset"),
                 "name": name, "export_version": EXPORT_VERSION, "nnunet": cfg.training_key()}
    work_dir.mkdir(parents=True, exist_ok=True)
    _check_run_stamp(work_dir, run_stamp)
    done = _read_json(model_dir / MODEL_STAMP)
    if done is not None and done.get("run") == run_stamp and (model_dir / f"fold_{cfg.fold}" / CHECKPOINT).is_file():
        log(f"nnU-Net: {model_dir} is trained, nothing to do")
        return model_dir

    seconds: dict[str, float] = {}
    env = _child_env(roots, cfg)
    logs = work_dir / "logs"
    t0 = time.perf_counter()
    raw = export_raw_dataset(prepared, roots["nnUNet_raw"], dataset_id=cfg.dataset_id, name=name,
                             channel_name=cfg.channel_name)
    seconds["export"] = time.perf_counter() - t0
    export_stamp = _read_json(raw / EXPORT_STAMP)

    pre = roots["nnUNet_preprocessed"] / folder_name
    if _read_json(pre / PREPROCESS_STAMP) != export_stamp:
        shutil.rmtree(pre, ignore_errors=True)
        args = ["-d", str(cfg.dataset_id), "-c", cfg.configuration, "--verify_dataset_integrity",
                "-npfp", str(cfg.processes), "-np", str(cfg.processes)]
        log(f"nnU-Net: plan and preprocess {folder_name} ({cfg.configuration})")
        seconds["plan_and_preprocess"] = run_step("nnUNetv2_plan_and_preprocess " + " ".join(args),
                                                  _command("nnUNetv2_plan_and_preprocess", args), env,
                                                  logs / "plan_and_preprocess.log", cwd=work_dir)
        write_splits(raw, pre)
        atomic_write_json(pre / PREPROCESS_STAMP, export_stamp)
    else:
        write_splits(raw, pre)  # cheap, and keeps the split equal to cases.csv

    fold_dir = model_dir / f"fold_{cfg.fold}"
    resume = any((fold_dir / c).is_file() for c in (CHECKPOINT, "checkpoint_latest.pth", "checkpoint_best.pth"))
    device = nnunet_device(cfg)
    args = {"dataset_id": cfg.dataset_id, "configuration": cfg.configuration, "fold": cfg.fold, "trainer": cfg.trainer,
            "epochs": cfg.epochs, "iterations_per_epoch": cfg.iterations_per_epoch,
            "val_iterations": cfg.val_iterations, "seed": cfg.seed, "device": device, "continue_training": resume,
            "validate": cfg.validate, "plans": PLANS, "threads": cfg.threads}
    display = (f"nnUNetv2_train {cfg.dataset_id} {cfg.configuration} {cfg.fold} -tr {cfg.trainer} -device {device}"
               + (" --c" if resume else "") + ("" if cfg.validate else " (no final validation)")
               + (f" [{cfg.epochs} epochs x {cfg.iterations_per_epoch} iterations]" if cfg.trainer != "nnUNetTrainer" else "")
               + " (Python API)")
    log(f"nnU-Net: {'resume' if resume else 'train'} {folder_name} fold {cfg.fold} on {device}")
    seconds["train"] = run_step(display, [sys.executable, str(RUNNER), "train", json.dumps(args)],
                                _child_env(roots, cfg, training=True), logs / "train.log", cwd=work_dir)
    if not (fold_dir / CHECKPOINT).is_file():
        raise IchsegError(f"nnU-Net step `{display}` wrote no {fold_dir / CHECKPOINT}; see {logs / 'train.log'}")
    atomic_write_json(model_dir / MODEL_STAMP, {
        "run": run_stamp, "config": cfg.to_dict(), "nnunetv2": version, "device": device,
        "prepared": str(prepared.resolve()), "raw_dataset": str(raw.resolve()), "image_shape": _image_shape(prepared),
        "seconds": {k: round(v, 3) for k, v in seconds.items()}, "resumed": resume,
    })
    return model_dir


def _image_shape(prepared: Path) -> list[int]:
    return [int(s) for s in np.load(prepared / IMAGES, mmap_mode="r").shape[1:]]


# ----------------------------------------------------------------------------------------------
# prediction and evaluation
# ----------------------------------------------------------------------------------------------
def _checkpoint_key(path: Path) -> list:
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def predict(model_dir: str | Path, prepared: str | Path, split: str = "test", cfg: NnunetConfig | Mapping | None = None,
            *, work_dir: str | Path | None = None, log: Callable[[str], None] | None = None) -> np.ndarray:
    """Probabilities (N, H, W) float32 in [0, 1] of hemorrhage for the slices of ``split`` of any
    prepared folder, in ``SliceDataset(prepared, split).table`` order.

    The slices are exported like the training cases (one case per patient) and predicted as
    ``nnUNetv2_predict_from_modelfolder -f 0 -chk checkpoint_final.pth --save_probabilities`` does.
    Files go to ``work_dir`` (default ``model_dir/predictions/<dataset>-<fingerprint>-<split>``);
    the probabilities are cached there and reused while the checkpoint and the data are the same.
    """
    return _predict(model_dir, prepared, split, cfg, work_dir=work_dir, log=log)[0]


def _predict(model_dir, prepared, split, cfg, *, work_dir=None, log=None) -> tuple[np.ndarray, float]:
    """``predict`` and the seconds the prediction took (recorded with a cached result)."""
    cfg = cfg if isinstance(cfg, NnunetConfig) else NnunetConfig.from_dict(cfg)
    log = log or (lambda msg: None)
    nnunet_version()
    model_dir, prepared = Path(model_dir), Path(prepared)
    checkpoint = model_dir / f"fold_{cfg.fold}" / CHECKPOINT
    if not checkpoint.is_file():
        raise IchsegError(f"{checkpoint}: not found; is {model_dir} a trained nnU-Net model folder (train_nnunet)?")
    manifest = _manifest(prepared)
    _check_compatible(model_dir, prepared)
    work = Path(work_dir) if work_dir else (
        model_dir / "predictions" / f"{manifest.get('dataset')}-{manifest.get('fingerprint')}-{split}")
    stamp = {"checkpoint": _checkpoint_key(checkpoint), "prepared_fingerprint": manifest.get("fingerprint"),
             "split": split, "tta": cfg.tta}
    result = work / "probabilities.npy"
    old = _read_json(work / "stamp.json") or {}
    if {k: v for k, v in old.items() if k != "seconds"} == stamp and result.is_file():
        return np.load(result), float(old.get("seconds", 0.0))
    t0 = time.perf_counter()

    device = nnunet_device(cfg)
    env = _child_env({"nnUNet_results": model_dir.parent.parent}, cfg)  # no raw/preprocessed folder needed
    for k in ("nnUNet_raw", "nnUNet_preprocessed"):
        env.pop(k, None)
    shutil.rmtree(work, ignore_errors=True)
    inp, out = work / "input", work / "output"
    cases = export_images(prepared, split, inp)
    args = {"model_dir": str(model_dir.resolve()), "fold": cfg.fold, "checkpoint": CHECKPOINT, "input": str(inp.resolve()),
            "output": str(out.resolve()), "cases": list(dict.fromkeys(cases["case"])), "tta": cfg.tta,
            "device": device, "threads": cfg.threads, "seed": cfg.seed}
    display = (f"nnUNetv2_predict_from_modelfolder -i {inp} -o {out} -m {model_dir} -f {cfg.fold} -chk {CHECKPOINT} "
               f"--save_probabilities -device {device}" + ("" if cfg.tta else " --disable_tta") + " (Python API)")
    log(f"nnU-Net: predict {len(cases)} {split} slices of {manifest.get('dataset')} on {device}")
    run_step(display, [sys.executable, str(RUNNER), "predict", json.dumps(args)], env, work / "predict.log")
    prob = _collect_probabilities(out, cases, _image_shape(prepared)[1:], display, work / "predict.log")
    np.save(result, prob)
    seconds = time.perf_counter() - t0
    atomic_write_json(work / "stamp.json", {**stamp, "seconds": round(seconds, 3)})
    return prob, seconds


def _collect_probabilities(out: Path, cases: pd.DataFrame, hw: list[int], display: str, log_path: Path) -> np.ndarray:
    prob = np.zeros((len(cases), *hw), dtype=np.float32)
    for case, part in cases.groupby("case", sort=False):
        path = out / f"{case}.npz"
        if not path.is_file():
            raise IchsegError(f"nnU-Net step `{display}` wrote no {path}; see {log_path}")
        with np.load(path) as z:
            p = np.asarray(z["probabilities"], dtype=np.float32)  # (classes, Z, H, W)
        if p.shape != (2, len(part), *hw):
            raise IchsegError(f"{path}: probabilities of shape {p.shape}, expected {(2, len(part), *hw)}")
        prob[part.index.to_numpy()] = p[1][part["z"].to_numpy(int)]
    return np.clip(prob, 0.0, 1.0)


def _check_compatible(model_dir: Path, prepared: Path) -> None:
    ds_json = _read_json(model_dir / "dataset.json") or {}
    shape = _image_shape(prepared)
    want = len(ds_json.get("channel_names", {})) or None
    if want is not None and want != shape[0]:
        raise IchsegError(f"{model_dir}: trained on {want}-channel slices, but {prepared} holds {shape[0]}-channel slices")
    trained = (_read_json(model_dir / MODEL_STAMP) or {}).get("image_shape")
    if trained and list(trained[1:]) != shape[1:]:
        raise IchsegError(f"{model_dir}: trained on {trained[1]}x{trained[2]} slices, but {prepared} holds "
                          f"{shape[1]}x{shape[2]} slices")


def evaluate_nnunet(model_dir: str | Path, prepared: str | Path, out_dir: str | Path, ecfg, *, dataset: str | None = None,
                    split: str = "test", meta: Mapping[str, Any] | None = None,
                    cfg: NnunetConfig | Mapping | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Predict ``split`` of ``prepared`` and score it with ``write_evaluation`` (both protocols,
    the same slices and code as every other model); returns the metrics summary."""
    cfg = cfg if isinstance(cfg, NnunetConfig) else NnunetConfig.from_dict(cfg)
    model_dir, prepared = Path(model_dir), Path(prepared)
    prob, seconds = _predict(model_dir, prepared, split, cfg, log=log)  # seconds: of the prediction, even if cached
    ds = SliceDataset(prepared, split=split)
    rows = ds.table["row"].to_numpy(int)
    images = np.asarray(np.load(prepared / IMAGES, mmap_mode="r")[rows], dtype=np.float32)
    masks = np.load(prepared / MASKS, mmap_mode="r")
    gt = np.asarray((masks[:, 0] if masks.ndim == 4 else masks)[rows], dtype=np.float32)
    stamp = _read_json(model_dir / MODEL_STAMP) or {}
    info = {
        "method": "nnunet",
        "checkpoint": str(model_dir / f"fold_{cfg.fold}" / CHECKPOINT),
        "run_hash": config_hash(stamp.get("run")) if stamp.get("run") else None,
        "nnunet": {"trainer": (stamp.get("config") or {}).get("trainer"), "config": stamp.get("config"),
                   "nnunetv2": stamp.get("nnunetv2") or nnunet_version(), "tta": cfg.tta,
                   "train_seconds": stamp.get("seconds")},
        **dict(meta or {}),
    }
    return write_evaluation(prob, None, images, gt, ds, out_dir, ecfg, dataset=dataset or prepared.parent.name,
                            split=split, meta=info, seconds=seconds)


__all__ = [
    "CASES", "CHECKPOINT", "NNUNET_REQUIREMENT", "case_table", "dataset_name", "evaluate_nnunet", "export_images",
    "export_raw_dataset", "nnunet_device", "nnunet_version", "predict", "read_cases", "train_nnunet", "write_splits",
]

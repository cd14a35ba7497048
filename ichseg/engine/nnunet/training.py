"""Training: export -> ``nnUNetv2_plan_and_preprocess`` (``2d``) -> our split -> fold 0.

Resumable step by step: the export (``EXPORT_STAMP`` in the raw dataset), plan + preprocess
(``PREPROCESS_STAMP``) and training (``MODEL_STAMP`` in the model folder, beside
``fold_0/checkpoint_final.pth``) each leave a stamp when finished, and a call finds its finished
steps skipped; an interrupted training continues from nnU-Net's newest checkpoint. The work
folder's ``WORK_STAMP`` records the data and the training settings: a work folder holding a run
with other settings is refused.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ...data.preparation import IMAGES, read_manifest
from ...errors import IchsegError
from ...utils import atomic_write_json
from ..config import NnunetConfig
from .export import EXPORT_STAMP, EXPORT_VERSION, dataset_name, export_raw_dataset, write_splits
from .process import (CHECKPOINT, PLANS, RUNNER, child_env, command, nnunet_device, nnunet_version, read_json, roots_of,
                      run_step)

#: in the work folder: the data and training settings of the run it holds
WORK_STAMP = "ichseg_work.json"
#: in the preprocessed dataset folder: the export it was preprocessed from
PREPROCESS_STAMP = "ichseg_preprocess.json"
#: in the trained model folder: the run, its settings, nnunetv2's version, the image shape, the seconds
MODEL_STAMP = "ichseg_nnunet.json"


def model_dir_of(work_dir: Path, cfg: NnunetConfig, folder_name: str) -> Path:
    return roots_of(work_dir)["nnUNet_results"] / folder_name / f"{cfg.trainer}__{PLANS}__{cfg.configuration}"


def _check_work_stamp(work_dir: Path, stamp: dict) -> None:
    path = work_dir / WORK_STAMP
    old = read_json(path)
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
    manifest = read_manifest(prepared)
    name = name or f"ICH{manifest.get('dataset', 'data')}"
    folder_name = dataset_name(cfg.dataset_id, name)
    roots = roots_of(work_dir)
    model_dir = model_dir_of(work_dir, cfg, folder_name)
    run_stamp = {"prepared_fingerprint": manifest.get("fingerprint"), "dataset": manifest.get("dataset"),
                 "name": name, "export_version": EXPORT_VERSION, "nnunet": cfg.training_key()}
    work_dir.mkdir(parents=True, exist_ok=True)
    _check_work_stamp(work_dir, run_stamp)
    done = read_json(model_dir / MODEL_STAMP)
    if done is not None and done.get("run") == run_stamp and (model_dir / f"fold_{cfg.fold}" / CHECKPOINT).is_file():
        log(f"nnU-Net: {model_dir} is trained, nothing to do")
        return model_dir

    seconds: dict[str, float] = {}
    env = child_env(roots, cfg)
    logs = work_dir / "logs"
    t0 = time.perf_counter()
    raw = export_raw_dataset(prepared, roots["nnUNet_raw"], dataset_id=cfg.dataset_id, name=name,
                             channel_name=cfg.channel_name)
    seconds["export"] = time.perf_counter() - t0
    export_stamp = read_json(raw / EXPORT_STAMP)

    pre = roots["nnUNet_preprocessed"] / folder_name
    if read_json(pre / PREPROCESS_STAMP) != export_stamp:
        shutil.rmtree(pre, ignore_errors=True)
        args = ["-d", str(cfg.dataset_id), "-c", cfg.configuration, "--verify_dataset_integrity",
                "-npfp", str(cfg.processes), "-np", str(cfg.processes)]
        log(f"nnU-Net: plan and preprocess {folder_name} ({cfg.configuration})")
        seconds["plan_and_preprocess"] = run_step("nnUNetv2_plan_and_preprocess " + " ".join(args),
                                                  command("nnUNetv2_plan_and_preprocess", args), env,
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
                                child_env(roots, cfg, training=True), logs / "train.log", cwd=work_dir)
    if not (fold_dir / CHECKPOINT).is_file():
        raise IchsegError(f"nnU-Net step `{display}` wrote no {fold_dir / CHECKPOINT}; see {logs / 'train.log'}")
    atomic_write_json(model_dir / MODEL_STAMP, {
        "run": run_stamp, "config": cfg.to_dict(), "nnunetv2": version, "device": device,
        "prepared": str(prepared.resolve()), "raw_dataset": str(raw.resolve()), "image_shape": image_shape(prepared),
        "seconds": {k: round(v, 3) for k, v in seconds.items()}, "resumed": resume,
    })
    return model_dir


def image_shape(prepared: Path) -> list[int]:
    return [int(s) for s in np.load(prepared / IMAGES, mmap_mode="r").shape[1:]]


__all__ = ["MODEL_STAMP", "PREPROCESS_STAMP", "WORK_STAMP", "image_shape", "model_dir_of", "train_nnunet"]

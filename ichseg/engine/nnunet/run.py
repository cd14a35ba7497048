"""nnU-Net as one method of the study: a run folder like every other method's.

``train_nnunet_run`` is how the ``nnunet`` method trains (``ichseg.engine.methods`` routes it
here): it trains through ``ichseg.engine.nnunet.training.train_nnunet`` (nnU-Net's own package, in ``<run>/nnunet/``) and
writes the files the study and the report read for every run: ``config.yaml``, ``run.json``
(provenance, status) and ``train_log.csv`` — nnU-Net's per-epoch log converted to the engine's
columns (iteration = epochs × iterations per epoch; ``loss`` = nnU-Net's training loss, its
Dice + CE; ``pseudo_dice`` = nnU-Net's own validation pseudo-Dice on patches, which is *not* our
protocol: ``dice``/``iou`` stay empty). ``evaluate_nnunet_run`` scores its final checkpoint with
the study's metrics on the prepared slices every method is scored on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from ...errors import IchsegError
from ...data.config import train_dataset_of
from ...data.preparation import read_manifest
from ...utils import atomic_write_json, atomic_write_text
from ...utils.layout import nnunet_model_dir, read_run_config, run_config_path, run_info_path, train_log_path
from ..config import NnunetConfig, run_config_hash
from ..data import ensure_prepared
from ..devices import resolve_device
from ..provenance import environment
from ..runlog import TrainResult, read_run_info, write_log
from .evaluation import evaluate_nnunet
from .process import CHECKPOINT
from .training import train_nnunet

# train_log.csv of an nnU-Net run (the engine's columns where they apply; runlog.LOG_COLUMNS for networks)
NNUNET_LOG_COLUMNS = ["iteration", "epoch", "loss", "val_loss", "pseudo_dice", "lr", "dice", "iou", "strict_dice",
                      "wall_time_s"]
_PATTERNS = {
    "epoch": re.compile(r": Epoch (\d+)\s*$"),
    "lr": re.compile(r": Current learning rate: ([-+0-9.eE]+)"),
    "loss": re.compile(r": train_loss ([-+0-9.eE]+)"),
    "val_loss": re.compile(r": val_loss ([-+0-9.eE]+)"),
    "pseudo_dice": re.compile(r": Pseudo dice \[(?:np\.float\d+\()?([-+0-9.eE]+)"),
    "epoch_time": re.compile(r": Epoch time: ([-+0-9.eE]+) s"),
}


def parse_training_logs(fold_dir: str | Path, iterations_per_epoch: int) -> list[dict]:
    """nnU-Net's ``training_log_*.txt`` files of one fold (one per start or resume, in time order)
    as rows: one per finished epoch; a resumed epoch's later record replaces the earlier one."""
    epochs: dict[int, dict] = {}
    for path in sorted(Path(fold_dir).glob("training_log_*.txt")):
        current: dict | None = None
        for line in path.read_text(errors="replace").splitlines():
            m = _PATTERNS["epoch"].search(line)
            if m:
                current = {"epoch": int(m.group(1))}
                continue
            if current is None:
                continue
            for key in ("lr", "loss", "val_loss", "pseudo_dice", "epoch_time"):
                m = _PATTERNS[key].search(line)
                if m:
                    current[key] = float(m.group(1))
                    if key == "epoch_time":  # the last line of an epoch's record
                        epochs[current["epoch"]] = current
                        current = None
                    break
    rows, wall = [], 0.0
    for e in sorted(epochs):
        rec = epochs[e]
        wall += rec.get("epoch_time", 0.0)
        rows.append({"iteration": (e + 1) * iterations_per_epoch, "epoch": e + 1, "loss": rec.get("loss"),
                     "val_loss": rec.get("val_loss"), "pseudo_dice": rec.get("pseudo_dice"), "lr": rec.get("lr"),
                     "wall_time_s": round(wall, 3)})
    return rows


def train_nnunet_run(cfg: Mapping[str, Any], out_dir: str | Path, *, data_root: str | Path = "data",
                     prepared: str | Path | None = None, resume: bool = False,
                     progress: bool = True) -> TrainResult:
    """Train the ``nnunet`` method of a resolved run config into ``out_dir`` (see the module doc)."""
    ncfg = NnunetConfig.from_dict(cfg["nnunet"])
    out_dir = Path(out_dir)
    run_hash = run_config_hash(cfg)
    info_path = run_info_path(out_dir)
    if info_path.exists():
        old = json.loads(info_path.read_text())
        if old.get("run_hash") != run_hash:
            raise IchsegError(f"{out_dir}: holds an nnU-Net run with another configuration (hash {old.get('run_hash')} "
                              f"!= {run_hash}); use another --out")
        if not resume and old.get("status") == "complete":
            raise IchsegError(f"{out_dir}: holds a run already; pass --resume to continue it or choose another --out")
    if prepared is None:
        prepared = ensure_prepared(cfg, train_dataset_of(cfg["data"]), data_root)
    prepared = Path(prepared)
    manifest = read_manifest(prepared)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_config_path(out_dir), yaml.safe_dump(dict(cfg), sort_keys=True))
    info = {"method": cfg["method"], "profile": cfg.get("profile"), "run_hash": run_hash, "engine": "nnunet",
            "data": {"prepared": str(prepared), "fingerprint": manifest.get("fingerprint"), "val_split": "val"},
            "environment": environment(resolve_device(ncfg.device, "nnunet.device")), "status": "running"}
    atomic_write_json(info_path, info)
    model_dir = train_nnunet(prepared, nnunet_model_dir(out_dir), ncfg, log=print if progress else None)
    fold_dir = model_dir / f"fold_{ncfg.fold}"
    history = parse_training_logs(fold_dir, ncfg.iterations_per_epoch)
    write_log(train_log_path(out_dir), history, NNUNET_LOG_COLUMNS)
    final = fold_dir / CHECKPOINT
    iterations = ncfg.epochs * ncfg.iterations_per_epoch
    info.update(status="complete", model_dir=str(model_dir), iterations=iterations,
                # nnU-Net predicts with its final checkpoint: the "best iteration" is the last one
                best_iteration=iterations, select_on=None, best_score=None,
                wall_time_s=history[-1]["wall_time_s"] if history else None)
    atomic_write_json(info_path, info)
    return TrainResult(out_dir, final, final, history, None, iterations, None)


def evaluate_nnunet_run(run_dir: str | Path, prepared: str | Path, out_dir: str | Path, ecfg, *,
                        dataset: str | None = None, split: str = "test", method: str | None = None) -> dict:
    """Score a ``train_nnunet_run`` folder's model on a prepared split (both protocols);
    ``method``: refuse the folder unless it holds that method (as ``evaluate_checkpoint`` does)."""
    run_dir = Path(run_dir)
    if method is not None and method != "nnunet":
        raise IchsegError(f"{run_dir}: holds an nnU-Net run, not {method!r}")
    info = read_run_info(run_dir)
    if info.get("status") != "complete" or not info.get("model_dir"):
        raise IchsegError(f"{run_dir}: holds no finished nnU-Net run (run.json status {info.get('status')!r})")
    cfg = read_run_config(run_dir)
    meta = {"profile": cfg.get("profile"), "run_hash": info.get("run_hash"),
            "inference": "nnU-Net softmax of its final checkpoint"}
    return evaluate_nnunet(info["model_dir"], prepared, out_dir, ecfg, dataset=dataset, split=split, meta=meta,
                           cfg=cfg["nnunet"])


__all__ = ["NNUNET_LOG_COLUMNS", "evaluate_nnunet_run", "parse_training_logs", "train_nnunet_run"]

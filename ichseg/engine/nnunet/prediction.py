"""Prediction: a trained nnU-Net model on any prepared split, slice by slice.

The slices are exported like the training cases and predicted as
``nnUNetv2_predict_from_modelfolder --save_probabilities`` does, in a child process; the
probabilities are cached beside the model while the checkpoint and the data stay the same.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from ...data.preparation import read_manifest
from ...errors import IchsegError
from ...utils import atomic_write_json
from ..config import NnunetConfig
from .export import export_images
from .process import CHECKPOINT, RUNNER, child_env, nnunet_device, nnunet_version, read_json, run_step
from .training import MODEL_STAMP, image_shape


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
    return predict_with_seconds(model_dir, prepared, split, cfg, work_dir=work_dir, log=log)[0]


def predict_with_seconds(model_dir, prepared, split, cfg, *, work_dir=None, log=None) -> tuple[np.ndarray, float]:
    """``predict`` and the seconds the prediction took (recorded with a cached result)."""
    cfg = cfg if isinstance(cfg, NnunetConfig) else NnunetConfig.from_dict(cfg)
    log = log or (lambda msg: None)
    nnunet_version()
    model_dir, prepared = Path(model_dir), Path(prepared)
    checkpoint = model_dir / f"fold_{cfg.fold}" / CHECKPOINT
    if not checkpoint.is_file():
        raise IchsegError(f"{checkpoint}: not found; is {model_dir} a trained nnU-Net model folder (train_nnunet)?")
    manifest = read_manifest(prepared)
    _check_compatible(model_dir, prepared)
    work = Path(work_dir) if work_dir else (
        model_dir / "predictions" / f"{manifest.get('dataset')}-{manifest.get('fingerprint')}-{split}")
    stamp = {"checkpoint": _checkpoint_key(checkpoint), "prepared_fingerprint": manifest.get("fingerprint"),
             "split": split, "tta": cfg.tta}
    result = work / "probabilities.npy"
    old = read_json(work / "stamp.json") or {}
    if {k: v for k, v in old.items() if k != "seconds"} == stamp and result.is_file():
        return np.load(result), float(old.get("seconds", 0.0))
    t0 = time.perf_counter()

    device = nnunet_device(cfg)
    env = child_env({"nnUNet_results": model_dir.parent.parent}, cfg)  # no raw/preprocessed folder needed
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
    prob = _collect_probabilities(out, cases, image_shape(prepared)[1:], display, work / "predict.log")
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
    ds_json = read_json(model_dir / "dataset.json") or {}
    shape = image_shape(prepared)
    want = len(ds_json.get("channel_names", {})) or None
    if want is not None and want != shape[0]:
        raise IchsegError(f"{model_dir}: trained on {want}-channel slices, but {prepared} holds {shape[0]}-channel slices")
    trained = (read_json(model_dir / MODEL_STAMP) or {}).get("image_shape")
    if trained and list(trained[1:]) != shape[1:]:
        raise IchsegError(f"{model_dir}: trained on {trained[1]}x{trained[2]} slices, but {prepared} holds "
                          f"{shape[1]}x{shape[2]} slices")


__all__ = ["predict", "predict_with_seconds"]

"""Evaluation: nnU-Net's probabilities of a prepared split scored by ``write_evaluation``, the
same code and slices as every other model of the study (both protocols)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from ...utils import config_hash
from ..config import NnunetConfig
from ..data import load_split
from ..scoring import write_evaluation
from .prediction import predict_with_seconds
from .process import CHECKPOINT, nnunet_version, read_json
from .training import MODEL_STAMP


def evaluate_nnunet(model_dir: str | Path, prepared: str | Path, out_dir: str | Path, ecfg, *, dataset: str | None = None,
                    split: str = "test", meta: Mapping[str, Any] | None = None,
                    cfg: NnunetConfig | Mapping | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Predict ``split`` of ``prepared`` and score it with ``write_evaluation`` (both protocols,
    the same slices and code as every other model); returns the metrics summary."""
    cfg = cfg if isinstance(cfg, NnunetConfig) else NnunetConfig.from_dict(cfg)
    model_dir, prepared = Path(model_dir), Path(prepared)
    prob, seconds = predict_with_seconds(model_dir, prepared, split, cfg, log=log)  # seconds: of the prediction, even if cached
    images, masks, ds = load_split(prepared, split)  # the slices every model is scored on
    images, gt = images.numpy(), masks[:, 0].numpy()
    stamp = read_json(model_dir / MODEL_STAMP) or {}
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


__all__ = ["evaluate_nnunet"]

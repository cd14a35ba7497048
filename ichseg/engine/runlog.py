"""The record every training run leaves in its folder, whatever the method: log, status, result.

``write_log`` writes ``train_log.csv`` (one row per validation point or, for nnU-Net, per epoch);
``read_run_info`` reads ``run.json``; ``TrainResult`` is what a training function returns. The
trainers of every method kind write their runs through these, so none imports another's trainer.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from ..utils import atomic_write_text
from ..utils.layout import run_info_path

# loss_eps/loss_anchor: the terms of Eq. 4 (diffusion variants); loss_bce/loss_dice: a baseline's
LOG_COLUMNS = ["iteration", "loss", "loss_eps", "loss_anchor", "loss_bce", "loss_dice", "lr", "dice", "iou",
               "strict_dice", "wall_time_s"]


@dataclass
class TrainResult:
    """What a training returns. ``best_score`` is the validation score named by ``selected_on``
    (``train.select_on``) at ``best_iteration``, the iteration whose weights are kept; None when the
    method keeps its own final weights without our validation (nnU-Net)."""

    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path
    history: list[dict]
    best_score: float | None
    best_iteration: int
    selected_on: str | None = "dice"


def write_log(path: Path, history: list[dict], columns: list[str] = LOG_COLUMNS) -> None:
    """A run's ``train_log.csv`` (atomically): one row per validation point, missing values empty."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    w.writerows(history)
    atomic_write_text(path, buf.getvalue())


def read_run_info(run_dir: str | Path) -> dict:
    """A run folder's ``run.json``; ``{}`` when it has none (yet)."""
    path = run_info_path(run_dir)
    return json.loads(path.read_text()) if path.is_file() else {}


__all__ = ["LOG_COLUMNS", "TrainResult", "read_run_info", "write_log"]

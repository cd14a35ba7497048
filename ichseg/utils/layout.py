"""The layout of a run folder and of an evaluation folder: the one place that names their files.

A run folder (``ichseg train``, ``results/<profile>/runs/<method>-s<seed>/``) holds::

    config.yaml            the resolved run config (RUN_CONFIG)
    run.json               status, run hash, best iteration, environment (RUN_INFO)
    train_log.csv          one row per validation (TRAIN_LOG)
    checkpoints/best.pt    the weights the selection score chose (a diffusion or direct method)
    checkpoints/last.pt    the resumable state of the last iteration
    nnunet/                nnU-Net's own model folder (NNUNET_MODEL; nnU-Net keeps its final weights)

An evaluation folder (``ichseg evaluate``, ``results/<profile>/eval/<method>-s<seed>/<dataset>/``)
holds ``metrics.json`` (METRICS), ``slices.csv`` (SLICE_SCORES), ``qualitative.npz``
(QUALITATIVE), ``worst.npz`` (WORST: the worst slices, ``ichseg.engine.worst``) and, where the
split has a lesion, ``volume.npz`` (VIEWER_VOLUME: one whole test volume for the viewer); the last
two are optional (evaluations written before them lack them), so they are not EVALUATION_FILES.
Study-level files (``study.json``, ``stamps/``) are ``ichseg.utils.stamps``'.
"""

from __future__ import annotations

from pathlib import Path

import yaml

RUN_CONFIG = "config.yaml"
RUN_INFO = "run.json"
TRAIN_LOG = "train_log.csv"
CHECKPOINTS = "checkpoints"
BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"
NNUNET_MODEL = "nnunet"
METRICS = "metrics.json"
SLICE_SCORES = "slices.csv"
QUALITATIVE = "qualitative.npz"
VIEWER_VOLUME = "volume.npz"
WORST = "worst.npz"
EVALUATION_FILES = (METRICS, SLICE_SCORES, QUALITATIVE)


def run_config_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / RUN_CONFIG


def run_info_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / RUN_INFO


def train_log_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / TRAIN_LOG


def best_checkpoint(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINTS / BEST_CHECKPOINT


def last_checkpoint(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINTS / LAST_CHECKPOINT


def nnunet_model_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / NNUNET_MODEL


def model_path(run_dir: str | Path, own_folder: bool) -> Path:
    """Where a completed run keeps its model: its ``best.pt``, or (``own_folder``: a method that
    keeps its own layout, nnU-Net) its own model folder."""
    return nnunet_model_dir(run_dir) if own_folder else best_checkpoint(run_dir)


def run_outputs(run_dir: str | Path, own_folder: bool) -> list[Path]:
    """What every completed run folder holds, whatever the method."""
    return [run_info_path(run_dir), train_log_path(run_dir), run_config_path(run_dir), model_path(run_dir, own_folder)]


def metrics_path(eval_dir: str | Path) -> Path:
    return Path(eval_dir) / METRICS


def read_run_config(run_dir: str | Path) -> dict:
    """A run folder's recorded config (``{}`` for an empty file)."""
    return yaml.safe_load(run_config_path(run_dir).read_text()) or {}


__all__ = ["BEST_CHECKPOINT", "CHECKPOINTS", "EVALUATION_FILES", "LAST_CHECKPOINT", "METRICS", "NNUNET_MODEL", "QUALITATIVE",
           "RUN_CONFIG", "RUN_INFO", "SLICE_SCORES", "TRAIN_LOG", "VIEWER_VOLUME", "WORST", "best_checkpoint",
           "last_checkpoint", "metrics_path", "model_path", "nnunet_model_dir", "read_run_config", "run_config_path",
           "run_info_path", "run_outputs", "train_log_path"]

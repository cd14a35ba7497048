"""The engine: training, evaluation and prediction on top of data, diffusion, models, metrics.

Its modules import one way (enforced by ``.importlinter``, acyclic_siblings contract), bottom up:
``devices``, ``provenance``, ``checkpoint``, ``ema``, ``runlog``, ``data``; ``config`` (run
configs, method kinds); ``scoring`` (``write_evaluation``), ``inference``, ``objectives``;
``train`` (the network training loop), ``evaluate``, ``predict``; ``nnunet`` (the nnU-Net
adapter); ``methods`` (kind -> train / evaluate functions: ``train_run``, ``evaluate_run``);
``commands`` (the CLI).
"""

from typing import TYPE_CHECKING

from ..utils.lazy import lazy_attributes
from .config import EvalConfig, TrainConfig, load_profile, resolve_run_config, run_config_hash

# imported on first use, so that one command loads only its own modules (``ichseg predict`` neither
# the training loop nor the nnU-Net adapter, nor pandas)
__getattr__ = lazy_attributes(__name__, {
    "evaluate_checkpoint": ".evaluate", "load_trained_model": ".evaluate", "segment_slices": ".inference",
    "evaluate_run": ".methods", "train_run": ".methods", "predict_scan": ".predict", "TrainResult": ".runlog"})

if TYPE_CHECKING:  # what the lazy names are, for type checkers and the import graph
    from .evaluate import evaluate_checkpoint, load_trained_model
    from .inference import segment_slices
    from .methods import evaluate_run, train_run
    from .predict import predict_scan
    from .runlog import TrainResult

__all__ = [
    "EvalConfig",
    "TrainConfig",
    "TrainResult",
    "evaluate_checkpoint",
    "evaluate_run",
    "load_profile",
    "load_trained_model",
    "predict_scan",
    "resolve_run_config",
    "run_config_hash",
    "segment_slices",
    "train_run",
]

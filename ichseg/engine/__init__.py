"""The engine: training, evaluation and prediction on top of data, diffusion, models, metrics."""

from .config import EvalConfig, TrainConfig, load_profile, resolve_run_config, run_config_hash
from .evaluate import evaluate_checkpoint, evaluate_run, load_trained_model
from .inference import segment_slices
from .predict import predict_scan
from .train import TrainResult, train

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
    "train",
]

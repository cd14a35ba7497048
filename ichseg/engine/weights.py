"""A trained model to hand out: the EMA weights of a checkpoint and its run config, nothing else.

``export_weights`` turns a training checkpoint (model, EMA, optimiser and scheduler state, RNG) into
a small file that ``ichseg predict`` and ``ichseg evaluate`` read like any checkpoint: the EMA
weights (the ones evaluation uses), optionally stored in float16 to halve the file (they are loaded
back into the float32 network: ``load_state_dict`` copies and converts), the run config, the run hash
and where it came from. No optimiser state, so training cannot resume from it.

An exported file may also carry ``predict``: sampling settings that ``ichseg predict`` uses by
default instead of the profile's evaluation settings, with the record that chose them on
validation patients (``set_predict_settings``; e.g. fewer steps that lose no validation Dice).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import IchsegError
from .checkpoint import load_checkpoint, save_checkpoint

DTYPES = {"float32": torch.float32, "float16": torch.float16}
#: the keys an exported file keeps from a training checkpoint
# (``variant``: what checkpoints written before ``method`` named their method)
KEPT = ("ema_updates", "iteration", "best_score", "best_dice", "best_iteration", "run_hash", "method", "variant", "config")
PREDICT = "predict"  # {"settings": {EvalConfig field: value}, "chosen_by": what chose them}


def export_weights(checkpoint: str | Path, out: str | Path, *, dtype: str = "float16", note: str = "") -> Path:
    """Write the EMA weights of ``checkpoint`` (cast to ``dtype``) with its run config to ``out``."""
    if dtype not in DTYPES:
        raise IchsegError(f"--dtype: unknown value {dtype!r}; known: {', '.join(DTYPES)}")
    state = load_checkpoint(checkpoint)
    if "ema" not in state:
        raise IchsegError(f"{checkpoint}: holds no EMA weights (a weights-only file already, or not a training checkpoint)")
    cast = DTYPES[dtype]
    ema = {k: (v.to(cast) if v.is_floating_point() else v).contiguous() for k, v in state["ema"].items()}
    payload = {k: state[k] for k in KEPT if k in state}
    payload.update({"ema": ema, "weights_dtype": dtype, "exported_from": Path(checkpoint).as_posix(), "note": note})
    return save_checkpoint(out, payload)


def set_predict_settings(path: str | Path, settings: dict, chosen_by: str) -> Path:
    """Record in the exported file ``path`` the sampling settings ``ichseg predict`` uses by default
    (``settings``: ``evaluate`` fields, e.g. steps and ensemble) and what chose them; the weights and
    everything else stay as they are. The file is rewritten atomically."""
    from .config import EvalConfig
    from ..utils.configs import dataclass_from_dict

    state = load_checkpoint(path)
    if "exported_from" not in state:
        raise IchsegError(f"{path}: not an exported model (`ichseg export`); predict settings go into exported files only")
    dataclass_from_dict(EvalConfig, dict(settings), "predict settings")  # unknown keys and bad values refused
    state[PREDICT] = {"settings": dict(settings), "chosen_by": str(chosen_by)}
    return save_checkpoint(path, state)


__all__ = ["DTYPES", "PREDICT", "export_weights", "set_predict_settings"]

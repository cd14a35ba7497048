"""Arguments shared by the engine's commands."""

from __future__ import annotations

import argparse

from ..config import SAMPLER_NAMES, EvalConfig
from ..devices import DEVICES


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sampler", choices=SAMPLER_NAMES, default=None, help="reverse-process sampler")
    p.add_argument("--steps", type=int, default=None, help="sampling steps K (ddim, dpm-solver++)")
    p.add_argument("--ensemble", type=int, default=None, help="masks sampled per slice (one batch)")
    p.add_argument("--batch-slices", type=int, default=None, help="slices per sampling batch")
    p.add_argument("--seed", type=int, default=None, help="sampling seed")
    p.add_argument("--device", default="auto", choices=DEVICES)


def run_eval_config(checkpoint) -> EvalConfig | None:
    """The evaluation settings of the profile a checkpoint was trained under (its run config's
    ``evaluate``), so that a checkpoint is scored as its study scores it; None when it has none."""
    from ..checkpoint import load_checkpoint

    settings = (load_checkpoint(checkpoint).get("config") or {}).get("evaluate")
    return EvalConfig(**settings) if settings else None


def eval_config_from(args: argparse.Namespace, base: EvalConfig | None = None) -> EvalConfig:
    base = base or EvalConfig()
    values = dict(base.__dict__)
    for name in ("sampler", "steps", "ensemble", "batch_slices", "seed"):
        v = getattr(args, name, None)
        if v is not None:
            values[name] = v
    return EvalConfig(**values)

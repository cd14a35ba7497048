"""Arguments shared by the engine's commands."""

from __future__ import annotations

import argparse

from ..config import SAMPLER_NAMES
from ..devices import DEVICES

#: the options that replace one of the checkpoint profile's ``evaluate`` settings when given
SAMPLING_OPTIONS = ("sampler", "steps", "ensemble", "batch_slices", "seed")


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sampling (each defaults to the value the checkpoint's profile evaluates with, "
                             "its run config's `evaluate` section, or for `predict` to the settings an exported "
                             "model carries for prediction, chosen on validation patients)")
    g.add_argument("--sampler", choices=SAMPLER_NAMES, default=None,
                   help="reverse-process sampler (default: the profile's evaluate.sampler)")
    g.add_argument("--steps", type=int, default=None,
                   help="sampling steps K of ddim / dpm-solver++; ddpm runs every step (default: the profile's evaluate.steps)")
    g.add_argument("--ensemble", type=int, default=None,
                   help="masks sampled per slice, averaged into the probability (default: the profile's evaluate.ensemble)")
    g.add_argument("--batch-slices", type=int, default=None,
                   help="slices sampled together; lower it if memory runs short (default: the profile's evaluate.batch_slices)")
    g.add_argument("--seed", type=int, default=None, help="sampling seed (default: the profile's evaluate.seed)")
    p.add_argument("--device", default="auto", choices=DEVICES,
                   help="where to run: auto takes a CUDA GPU when there is one, else the CPU")


def sampling_overrides(args: argparse.Namespace) -> dict:
    """The sampling options given on the command line (None: not given), for ``eval_settings``."""
    return {name: getattr(args, name, None) for name in SAMPLING_OPTIONS}

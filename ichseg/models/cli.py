"""The model card of every Table 2 variant at given sizes (parameters, forward FLOPs): the
``ichseg models`` command without ``--profile`` (``ichseg.engine.commands.models`` adds it)."""

from __future__ import annotations

import argparse

import yaml

from ..errors import ConfigError
from .card import format_card, model_card
from .registry import ALL_VARIANTS


def parse_overrides(items: list[str]) -> dict:
    """``k=v`` strings -> dict; values parsed as YAML (``channel_mult=[1,2,2]``, ``learn_sigma=true``)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set: expected key=value, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image-size", type=int, default=None, help="side of the square input (default 256)")
    p.add_argument("--variant", action="append", choices=list(ALL_VARIANTS),
                   help="only these variants (repeatable; default: the paper's five)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a ModelConfig field for every variant (repeatable), e.g. base_channels=64")


def run(args: argparse.Namespace) -> int:
    overrides = parse_overrides(args.set)
    if "image_size" in overrides:
        raise ConfigError("--set: use --image-size for image_size")
    size = args.image_size or 256
    rows = model_card(args.variant, image_size=size, **overrides)
    print(f"Model card at {size}x{size}, batch 1 (GF = GFLOPs; FlopCounterMode, "
          f"2 FLOPs per multiply-add; 'step' = one denoising step, 'fwd' = condition + one step; "
          f"'diff %' = the diffusion U-Net's share of the parameters)")
    print(format_card(rows))
    return 0

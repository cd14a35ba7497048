"""``ichseg models``: the model card. Without ``--profile``, every Table 2 variant at the sizes given
(``ichseg.models.cli``); with ``--profile NAME``, every method that profile runs, each at the model
settings its runs resolve to (profile, then the ``study`` section's overrides for that method), with
the condition branch's and the diffusion U-Net's parameters apart.

It lives in the engine because a profile is resolved here (``resolve_run_config``); the card itself
is ``ichseg.models.card``. nnU-Net plans its own network from the data, so it has no row.
"""

from __future__ import annotations

import argparse
from typing import Any

from ...errors import ConfigError
from ...models import cli as variant_cli
from ...models.card import card_row, format_card, segmenter_row
from ..config import DIFFUSION, METHODS, NNUNET, load_profile, method_kind, resolve_run_config

#: the diffusion U-Net's least share of a diffusion method's parameters (the paper's U-Net is the
#: large network, the condition branch the small one; a quarter keeps the diffusion branch from
#: being vestigial at a CPU's widths)
MIN_DIFFUSION_SHARE = 0.25


def add_arguments(p: argparse.ArgumentParser) -> None:
    variant_cli.add_arguments(p)
    p.add_argument("--profile", default=None,
                   help="card of every method of this profile (name or YAML path), at its settings")


def study_methods(profile: dict) -> tuple[list[str], dict[str, list[str]]]:
    """The methods of a profile's ``study`` section (default: the paper's methods) and each one's
    ``--set`` overrides (``overrides`` for all, then ``method_overrides`` for it)."""
    study = profile.get("study") or {}
    if not isinstance(study, dict):
        raise ConfigError(f"{profile.get('profile')}: study: must be a mapping")
    methods = [str(m) for m in (study.get("methods") or METHODS)]
    shared = [str(o) for o in (study.get("overrides") or [])]
    per = study.get("method_overrides") or {}
    return methods, {m: shared + [str(o) for o in per.get(m, [])] for m in methods}


def profile_card(profile: str | dict, *, flops: bool = True) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(diffusion rows, direct rows) of the card of every method of ``profile`` except nnU-Net
    (``flops=False``: parameters only)."""
    cfg_profile = load_profile(profile) if isinstance(profile, str) else profile
    methods, overrides = study_methods(cfg_profile)
    diffusion, direct = [], []
    for name in methods:
        kind = method_kind(name)
        if kind == NNUNET:
            continue
        model = dict(resolve_run_config(cfg_profile, name, overrides[name])["model"])
        size = int(model.pop("image_size", 256))
        if kind == DIFFUSION:
            diffusion.append(card_row(name, size, flops=flops, **model))
        else:
            direct.append(segmenter_row(name, size, flops=flops, **model))
    return diffusion, direct


def format_profile_card(diffusion: list[dict], direct: list[dict]) -> str:
    lines = [format_card(diffusion)] if diffusion else []
    short = [r["variant"] for r in diffusion if r["diffusion_share"] < MIN_DIFFUSION_SHARE]
    if diffusion:
        lines.append(f"diffusion U-Net >= {MIN_DIFFUSION_SHARE:.0%} of the parameters in every diffusion method: "
                     + ("yes" if not short else f"no ({', '.join(short)})"))
    if direct:
        lines += ["", f"{'baseline':<18} {'size':>5} {'params M':>9} {'fwd GF':>8}"]
        lines += [f"{r['method']:<18} {r['image_size']:>5} {r['params_M']:>9.2f} {r['forward_GFLOPs']:>8.2f}"
                  for r in direct]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.profile is None:
        return variant_cli.run(args)
    if args.variant or args.set or args.image_size:
        raise ConfigError("--profile: the profile sets the sizes; drop --variant, --set and --image-size")
    diffusion, direct = profile_card(args.profile)
    print(f"Model card of profile {args.profile}, each method at its runs' settings, batch 1 (GF = GFLOPs; "
          f"'diff %' = the diffusion U-Net's share of the parameters; nnU-Net plans its own network)")
    print(format_profile_card(diffusion, direct))
    return 0

"""Model card: parameters and forward FLOPs per variant, counted without running the network.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (matmuls, convolutions and
scaled-dot-product attention; 2 FLOPs per multiply-add; norms and activations not counted) on a
``meta``-device copy, so a paper-size card costs no compute or memory. The condition branch runs
once per slice, the diffusion U-Net once per sampling step: both are reported, and
``forward`` = condition + one denoising step (= one training forward). The Table 1 baselines
(``segmenter_row``) segment in one forward pass: their card has one FLOP count.

The book's architecture and baselines pages are executed at build time and print these cards, so
no parameter or FLOP count in them is typed in.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch.utils.flop_counter import FlopCounterMode

from .registry import (BASELINES, TABLE1_NAMES, VARIANTS, build_from_config, row_label, segmenter_config,
                       variant_config)


def count_flops(model, image_size: int, batch: int = 1) -> dict[str, int]:
    """FLOPs of encode_condition and of one denoise call for a (batch, ·, S, S) input, on meta."""
    c = model.config
    dev = next(model.parameters()).device
    image = torch.zeros(batch, c.in_channels, image_size, image_size, device=dev)
    x_t = torch.zeros(batch, c.mask_channels, image_size, image_size, device=dev)
    t = torch.zeros(batch, dtype=torch.long, device=dev)
    with torch.no_grad():
        with FlopCounterMode(display=False) as fc:
            feats = model.encode_condition(image)
        cond = fc.get_total_flops()
        with FlopCounterMode(display=False) as fd:
            model.denoise(x_t, t, feats)
        den = fd.get_total_flops()
    return {"condition": int(cond), "denoise": int(den), "forward": int(cond + den)}


def card_row(name: str, image_size: int = 256, *, flops: bool = True, **overrides: Any) -> dict[str, Any]:
    """One row: variant, Table 2 label, key config, parameters and GFLOPs at ``image_size``²
    (``flops=False``: parameters only, GFLOPs NaN; counting FLOPs traces the network, seconds a row)."""
    # Weights do not change parameters or FLOPs: build without reading the ImageNet file.
    config = variant_config(name, image_size=image_size, **overrides)
    with torch.device("meta"):
        model = build_from_config(config, load_pretrained=False)
    nan = float("nan")
    flops = count_flops(model, image_size) if flops else {"condition": nan, "denoise": nan, "forward": nan}
    n_cond = sum(p.numel() for p in model.condition.parameters())
    n_diff = sum(p.numel() for p in model.diffusion.parameters())
    return {
        "variant": name,
        "table2_row": row_label(name),
        "image_size": image_size,
        "condition": config.condition,
        "levels": config.levels,
        "cross_attention": config.cross_attention,
        "transformer": config.transformer,
        "params_M": (n_cond + n_diff) / 1e6,
        "condition_params_M": n_cond / 1e6,
        "diffusion_params_M": n_diff / 1e6,
        "diffusion_share": n_diff / (n_cond + n_diff),
        "condition_GFLOPs": flops["condition"] / 1e9,
        "denoise_GFLOPs": flops["denoise"] / 1e9,
        "forward_GFLOPs": flops["forward"] / 1e9,
    }


def segmenter_row(name: str, image_size: int = 256, *, flops: bool = True, **overrides: Any) -> dict[str, Any]:
    """One Table 1 baseline: parameters and GFLOPs of its single forward pass at ``image_size``²
    (``flops=False``: parameters only)."""
    config = segmenter_config(name, image_size=image_size, **overrides)
    gflops = float("nan")
    with torch.device("meta"):
        model = build_from_config(config, load_pretrained=False).eval()  # an inference forward (no dropout)
        if flops:
            image = torch.zeros(1, config.in_channels, image_size, image_size)
            with torch.no_grad(), FlopCounterMode(display=False) as fc:
                model(image)
            gflops = fc.get_total_flops() / 1e9
    return {
        "method": name,
        "table1_name": TABLE1_NAMES[name],
        "image_size": image_size,
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "forward_GFLOPs": gflops,
    }


def baseline_card(names: Iterable[str] | None = None, image_size: int = 256, **overrides: Any) -> list[dict[str, Any]]:
    """Rows for every (or the named) Table 1 baseline(s)."""
    return [segmenter_row(name, image_size, **overrides) for name in (names or BASELINES)]


def model_card(variants: Iterable[str] | None = None, image_size: int = 256, **overrides: Any) -> list[dict[str, Any]]:
    """Rows for every (or the named) Table 2 variant(s), for the CLI table and the book."""
    return [card_row(name, image_size, **overrides) for name in (variants or VARIANTS)]


def format_card(rows: list[dict[str, Any]]) -> str:
    head = f"{'variant':<18} {'cond':<18} {'lvl':>3} {'xattn':>5} {'trf':>4} {'params M':>9} {'cond M':>8} " \
           f"{'diff M':>8} {'diff %':>6} {'cond GF':>8} {'step GF':>8} {'fwd GF':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['variant']:<18} {r['condition']:<18} {r['levels']:>3} {'yes' if r['cross_attention'] else 'no':>5} "
            f"{'yes' if r['transformer'] else 'no':>4} {r['params_M']:>9.2f} {r['condition_params_M']:>8.2f} "
            f"{r['diffusion_params_M']:>8.2f} {100 * r['diffusion_share']:>6.1f} {r['condition_GFLOPs']:>8.2f} {r['denoise_GFLOPs']:>8.2f} "
            f"{r['forward_GFLOPs']:>8.2f}"
        )
    return "\n".join(lines)

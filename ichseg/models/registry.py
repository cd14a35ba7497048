"""The Table 2 variants, cumulative as in the table, built from a name plus overrides.

| name              | Table 2 row                     | what changes (on top of the row above)          |
|-------------------|---------------------------------|-------------------------------------------------|
| ``medsegdiffv2``  | Baseline (MedSegDiffv2)         | condition U-Net, detached first-level fusion    |
| ``cross_attention`` | + Cross-Attention             | cross-attention; K/V = condition U-Net bottleneck |
| ``reduce_layer``  | + Reduce Layer                  | diffusion U-Net one level shallower             |
| ``resnet18``      | + ResNet18 Features             | ResNet18 branch (ImageNet); K/V = its layer3    |
| ``full``          | + Transformer Block ("Ours")    | Transformer over layer3; K/V = refined features |

"Reduce Layer" reading: the deepest level of the diffusion U-Net is dropped (``reduce_levels: 1``,
channel_mult (1,1,2,2,4,4) → (1,1,2,2,4)), so at 256² its bottleneck is 16×16 instead of 8×8 —
the resolution of ResNet18's layer3, whose tokens are the keys/values from the next row on.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from .config import ModelConfig
from .model import DiffusionSegmenter

_BASELINE: dict[str, Any] = {
    "condition": "unet",
    "fuse_first_level": True,
    "detach_fusion": True,
    "cross_attention": False,
    "reduce_levels": 0,
    "transformer": False,
    "pretrained": "none",
}


def _cumulative(*steps: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in steps:
        out.update(s)
    return out


_STEPS = {
    "medsegdiffv2": _BASELINE,
    "cross_attention": {"cross_attention": True},
    "reduce_layer": {"reduce_levels": 1},
    "resnet18": {"condition": "resnet18", "pretrained": "imagenet"},
    "full": {"transformer": True},
}

_order = list(_STEPS)
VARIANTS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    name: MappingProxyType(_cumulative(*(_STEPS[n] for n in _order[: i + 1]))) for i, name in enumerate(_order)
})
"""Variant name -> the ModelConfig fields it sets (cumulative down Table 2)."""

TABLE2_ROWS: Mapping[str, str] = MappingProxyType({
    "medsegdiffv2": "Baseline (MedSegDiffv2)",
    "cross_attention": "+ Cross-Attention",
    "reduce_layer": "+ Reduce Layer",
    "resnet18": "+ ResNet18 Features",
    "full": "+ Transformer Block (Full Model)",
})


def variant_config(name: str, **overrides: Any) -> ModelConfig:
    """The ModelConfig of a Table 2 variant with ``overrides`` applied (validated)."""
    if name not in VARIANTS:
        raise ValueError(f"variant: unknown name {name!r}; known: {', '.join(VARIANTS)}")
    known = set(ModelConfig.field_names())
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"overrides: unknown key(s) {', '.join(unknown)} for variant {name!r}; known: {', '.join(sorted(known))}")
    return ModelConfig(**{**VARIANTS[name], **overrides})


def build_from_config(config: ModelConfig, load_pretrained: bool = True) -> DiffusionSegmenter:
    """Build a network from a config (e.g. a checkpoint's). ``load_pretrained=False`` skips reading the
    ImageNet file when trained weights will be loaded right after (the architecture is unchanged)."""
    if not isinstance(config, ModelConfig):
        raise ValueError(f"config: expected a ModelConfig, got {type(config).__name__}")
    if not load_pretrained and config.pretrained != "none":
        from dataclasses import replace

        model = DiffusionSegmenter(replace(config, pretrained="none", weights_path=None))
        model.config = config
        return model
    return DiffusionSegmenter(config)


def build_model(name: str, **overrides: Any) -> DiffusionSegmenter:
    """``build_model("full", image_size=64, base_channels=16, pretrained="none")``."""
    return build_from_config(variant_config(name, **overrides))

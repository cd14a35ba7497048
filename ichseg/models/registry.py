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

Beyond the paper, ``BEYOND_PAPER`` names variants that separate what the "+ ResNet18 Features"
row mixes — another branch architecture and ImageNet pretraining (§3.2's argument for it):

| name                 | what it is                                      | compared with                 |
|----------------------|-------------------------------------------------|-------------------------------|
| ``resnet18_scratch`` | "+ ResNet18 Features" with the trunk from scratch | ``reduce_layer``: ResNet18 vs U-Net branch, neither pretrained |
| ``full_lite0``       | the full model, EfficientNet-Lite0 ImageNet trunk | ``full_lite0_scratch``: pretrained vs scratch |
| ``full_lite0_scratch`` | the same trunk from scratch                   | ``full``: Lite0 vs ResNet18 trunk |
| ``full_context1``    | the full model on 2.5D input: the slice and its two neighbours | ``full``: one slice vs three |

``full_context1`` is the full network; what differs is its input (``BEYOND_PAPER_PREP``: the run's
``data.prep.context`` is 1, so every slice comes with the slices below and above it as extra
channels of both the condition branch and the diffusion U-Net's image input; ``in_channels``
follows the prepared data). A radiologist tells a small bleed from a calcification, a partial-volumed
bone edge or a vessel by scrolling through the neighbouring slices; one slice cannot.

They are variants like the five (``variant_config``, ``build_model``, the card; ``ALL_VARIANTS``
holds all nine), but not in ``VARIANTS``: a profile runs them only when it names them.

The Table 1 baselines that segment in one forward pass (``ichseg.models.baselines``) are named
here too: ``BASELINES`` (``unet``, ``transunet``, ``ukan``, at their official sizes), built by
``build_segmenter`` — and by ``build_model``, which dispatches on the name. ``VARIANTS`` stays the
Table 2 diffusion variants only.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from ..errors import ConfigError
from .baselines import DirectSegmenter, SegmenterConfig, segmenter_from_config
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

BEYOND_PAPER: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "resnet18_scratch": MappingProxyType({**VARIANTS["resnet18"], "pretrained": "none"}),
    "full_lite0": MappingProxyType({**VARIANTS["full"], "condition": "efficientnet_lite0", "pretrained": "imagenet"}),
    "full_lite0_scratch": MappingProxyType({**VARIANTS["full"], "condition": "efficientnet_lite0", "pretrained": "none"}),
    "full_context1": VARIANTS["full"],
})
"""Beyond-the-paper variant name -> the ModelConfig fields it sets (complete, as ``VARIANTS``')."""

BEYOND_PAPER_PREP: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "full_context1": MappingProxyType({"context": 1}),
})
"""Beyond-the-paper variant name -> the ``data.prep`` fields its runs set (before ``--set`` overrides)."""

ALL_VARIANTS: Mapping[str, Mapping[str, Any]] = MappingProxyType({**VARIANTS, **BEYOND_PAPER})
"""The paper's Table 2 variants, then the ones beyond the paper."""

BEYOND_PAPER_ROWS: Mapping[str, str] = MappingProxyType({
    "resnet18_scratch": "+ ResNet18 Features, from scratch (beyond the paper)",
    "full_lite0": "Full Model, ImageNet EfficientNet-Lite0 trunk (beyond the paper)",
    "full_lite0_scratch": "Full Model, EfficientNet-Lite0 trunk from scratch (beyond the paper)",
    "full_context1": "Full Model, 2.5D input: the slice and its two neighbours (beyond the paper)",
})

TABLE2_ROWS: Mapping[str, str] = MappingProxyType({
    "medsegdiffv2": "Baseline (MedSegDiffv2)",
    "cross_attention": "+ Cross-Attention",
    "reduce_layer": "+ Reduce Layer",
    "resnet18": "+ ResNet18 Features",
    "full": "+ Transformer Block (Full Model)",
})


# -- Table 1: direct segmenters -------------------------------------------------------------------
BASELINES: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    # Ronneberger et al. 2015: 64 … 1024 over five levels (four poolings)
    "unet": MappingProxyType({"arch": "unet", "base_channels": 64, "channel_mult": (1, 2, 4, 8, 16),
                              "norm": "batch", "dropout": 0.0}),
    # Chen et al. 2021, R50-ViT-B/16: root 64, stages 256/512/1024 with 3/4/9 units, ViT-B (768, 12
    # layers, 12 heads, MLP 3072, dropout 0.1); ImageNet-21k weights unavailable -> random init
    "transunet": MappingProxyType({"arch": "transunet", "base_channels": 64, "channel_mult": (4, 8, 16),
                                   "resnet_units": (3, 4, 9), "norm": "batch", "dropout": 0.1,
                                   "vit_hidden": 768, "vit_layers": 12, "vit_heads": 12, "vit_mlp": 3072,
                                   "vit_weights": None}),
    # Li et al. 2025, official training default embed_dims [128, 160, 256]: conv stages 16/32/128,
    # tokenised KAN stages 160/256; grid 5, spline order 3, KAN lr 1e-2
    "ukan": MappingProxyType({"arch": "ukan", "base_channels": 16, "channel_mult": (1, 2, 8),
                              "kan_embed_dims": (160, 256), "norm": "batch", "dropout": 0.0,
                              "kan_grid_size": 5, "kan_spline_order": 3, "kan_lr": 1e-2}),
})
"""Baseline name -> the SegmenterConfig fields of its official architecture."""

TABLE1_NAMES: Mapping[str, str] = MappingProxyType({"unet": "U-Net", "transunet": "TransUNet", "ukan": "U-KAN"})


def _known_names() -> str:
    return (f"Table 2 variants: {', '.join(VARIANTS)}; beyond the paper: {', '.join(BEYOND_PAPER)}; "
            f"Table 1 baselines: {', '.join(BASELINES)}")


def row_label(name: str) -> str:
    """The table label of a diffusion variant, the paper's or one beyond it."""
    return TABLE2_ROWS.get(name) or BEYOND_PAPER_ROWS[name]


def is_direct(name: str) -> bool:
    """True for a Table 1 baseline that segments in one forward pass (no diffusion)."""
    return name in BASELINES


def segmenter_config(name: str, **overrides: Any) -> SegmenterConfig:
    """The SegmenterConfig of a Table 1 baseline with ``overrides`` applied (validated)."""
    if name not in BASELINES:
        raise ConfigError(f"baseline: unknown name {name!r}; known: {', '.join(BASELINES)}")
    known = set(SegmenterConfig.field_names())
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"overrides: unknown key(s) {', '.join(unknown)} for baseline {name!r}; "
                         f"known: {', '.join(sorted(known))}")
    if "arch" in overrides and overrides["arch"] != BASELINES[name]["arch"]:
        raise ConfigError(f"arch: baseline {name!r} is arch {BASELINES[name]['arch']!r}, got {overrides['arch']!r}")
    return SegmenterConfig(**{**BASELINES[name], **overrides})


def build_segmenter(name: str, **overrides: Any) -> DirectSegmenter:
    """``build_segmenter("ukan", image_size=64, base_channels=8)``."""
    return segmenter_from_config(segmenter_config(name, **overrides))


# -- Table 2: diffusion variants --------------------------------------------------------------------
def variant_config(name: str, **overrides: Any) -> ModelConfig:
    """The ModelConfig of a Table 2 variant (or one beyond the paper) with ``overrides`` applied (validated)."""
    if name not in ALL_VARIANTS:
        if name in BASELINES:
            raise ConfigError(f"variant: {name!r} is a Table 1 baseline, not a diffusion variant; "
                             f"use segmenter_config({name!r}); known variants: {', '.join(ALL_VARIANTS)}")
        raise ConfigError(f"variant: unknown name {name!r}; known: {', '.join(ALL_VARIANTS)}")
    known = set(ModelConfig.field_names())
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"overrides: unknown key(s) {', '.join(unknown)} for variant {name!r}; known: {', '.join(sorted(known))}")
    return ModelConfig(**{**ALL_VARIANTS[name], **overrides})


def build_from_config(config: ModelConfig | SegmenterConfig,
                      load_pretrained: bool = True) -> DiffusionSegmenter | DirectSegmenter:
    """Build a network from a config (e.g. a checkpoint's): a ``ModelConfig`` gives a diffusion
    segmenter, a ``SegmenterConfig`` a Table 1 baseline. ``load_pretrained=False`` skips reading the
    ImageNet / ViT weights file when trained weights will be loaded right after (the architecture
    is unchanged)."""
    if isinstance(config, SegmenterConfig):
        return segmenter_from_config(config, load_pretrained)
    if not isinstance(config, ModelConfig):
        raise ValueError(f"config: expected a ModelConfig or a SegmenterConfig, got {type(config).__name__}")
    if not load_pretrained and config.pretrained != "none":
        from dataclasses import replace

        model = DiffusionSegmenter(replace(config, pretrained="none", weights_path=None))
        model.config = config
        return model
    return DiffusionSegmenter(config)


def build_model(name: str, **overrides: Any) -> DiffusionSegmenter | DirectSegmenter:
    """``build_model("full", image_size=64, base_channels=16, pretrained="none")`` (a Table 2
    variant) or ``build_model("unet", image_size=64, base_channels=8)`` (a Table 1 baseline)."""
    if name in BASELINES:
        return build_segmenter(name, **overrides)
    if name not in ALL_VARIANTS:
        raise ConfigError(f"model: unknown name {name!r}; known: {_known_names()}")
    return build_from_config(variant_config(name, **overrides))

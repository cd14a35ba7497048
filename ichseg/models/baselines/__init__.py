"""The Table 1 baselines as direct (one forward pass) segmenters: U-Net, TransUNet, U-KAN.

    from ichseg.models import build_model
    net = build_model("ukan", image_size=64, base_channels=8)   # or "unet", "transunet"
    logits = net(image)                                           # (B, 1, H, W)
    opt = build_optimizer(net, "ukan")                             # the official recipe

Architectures: ``unet``, ``transunet``, ``ukan`` (one ``SegmenterConfig`` sizes all three); their
official training recipes as data, the BCE + Dice loss and the optimiser / schedule helpers are
in ``recipes``. The named configurations live in ``ichseg.models.registry.BASELINES``.
"""

from __future__ import annotations

from dataclasses import replace

from .common import DirectSegmenter
from .config import ARCHS, NORMS, SegmenterConfig
from .recipes import (RECIPES, Recipe, SegmentationLossConfig, build_optimizer, build_scheduler, lr_lambda,
                      segmentation_loss)
from .transunet import TransUNet, load_vit_weights
from .ukan import UKAN, KANLinear, bspline_basis
from .unet import UNet

ARCHITECTURES = {"unet": UNet, "transunet": TransUNet, "ukan": UKAN}


def segmenter_from_config(config: SegmenterConfig, load_pretrained: bool = True) -> DirectSegmenter:
    """Build the network of ``config``. ``load_pretrained=False`` skips reading ``vit_weights``
    (when a checkpoint's trained weights are loaded right after; the architecture is the same)."""
    if not isinstance(config, SegmenterConfig):
        raise ValueError(f"config: expected a SegmenterConfig, got {type(config).__name__}")
    if not load_pretrained and config.vit_weights is not None:
        model = ARCHITECTURES[config.arch](replace(config, vit_weights=None))
        model.config = config
        return model
    return ARCHITECTURES[config.arch](config)


__all__ = [
    "ARCHITECTURES",
    "ARCHS",
    "DirectSegmenter",
    "KANLinear",
    "NORMS",
    "RECIPES",
    "Recipe",
    "SegmentationLossConfig",
    "SegmenterConfig",
    "TransUNet",
    "UKAN",
    "UNet",
    "bspline_basis",
    "build_optimizer",
    "build_scheduler",
    "load_vit_weights",
    "lr_lambda",
    "segmentation_loss",
    "segmenter_from_config",
]

"""What the three direct segmenters share: input checks, parameter counts, optimiser groups."""

from __future__ import annotations

import torch
from torch import nn

from ...errors import ConfigError
from ..blocks import check_image
from .config import SegmenterConfig, norm_groups


def make_norm(kind: str, channels: int) -> nn.Module:
    """``batch`` -> BatchNorm2d; ``group`` -> GroupNorm(gcd(32, C), C)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(norm_groups(channels), channels)
    raise ConfigError(f"norm: unknown value {kind!r}; known: batch, group")


class ConvNormReLU(nn.Sequential):
    """3×3 conv (no bias: the norm has one) -> norm -> ReLU."""

    def __init__(self, cin: int, cout: int, norm: str):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), make_norm(norm, cout), nn.ReLU(inplace=True))


class DirectSegmenter(nn.Module):
    """Base of the Table 1 baselines: ``forward(image) -> logits (B, out_channels, H, W)``."""

    config: SegmenterConfig

    def __init__(self, config: SegmenterConfig):
        super().__init__()
        if not isinstance(config, SegmenterConfig):
            raise ValueError(f"config: expected a SegmenterConfig, got {type(config).__name__}")
        self.config = config

    # -- checks: one clear message instead of a shape error deep inside a conv ----------------
    def _check_image(self, image: torch.Tensor) -> None:
        c = self.config
        check_image(image, c.in_channels, c.divisor, f"this {c.arch} ({c.depth_note})")

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def parameter_groups(self, lr: float, weight_decay: float = 0.0) -> list[dict]:
        """Optimiser parameter groups: one group at ``lr`` (U-KAN overrides this)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr,
                 "weight_decay": weight_decay, "name": "all"}]

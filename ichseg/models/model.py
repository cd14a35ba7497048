"""``DiffusionSegmenter``: condition branch + diffusion U-Net (Fig. 2 of the paper).

forward(x_t, t, image) = denoise(x_t, t, encode_condition(image)). The condition branch depends
on the image only, so a sampler can encode a slice once and call ``denoise`` at every step
(``make_eps_fn``, the one ε-predictor every sampling path uses, does this).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, ContextManager

import torch
from torch import nn

from .blocks import check_image
from .condition import ConditionFeatures, build_condition
from .config import ModelConfig
from .unet import DiffusionUNet


@dataclass
class ModelOutput:
    eps: torch.Tensor  # (B, mask_channels, H, W) ε̂, or (B, 2·mask_channels, H, W) [ε̂, v] with learn_sigma
    anchor: torch.Tensor | None  # (B, mask_channels, H, W) anchor logits of the condition branch


class DiffusionSegmenter(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.condition = build_condition(config)
        self.diffusion = DiffusionUNet(
            config,
            fusion_channels=self.condition.fusion_channels if config.fuse_first_level else None,
            context_dim=self.condition.context_dim if config.cross_attention else None,
        )

    def encode_condition(self, image: torch.Tensor) -> ConditionFeatures:
        self._check_image(image)
        feats = self.condition(image)
        if not self.config.fuse_first_level:
            feats.fusion = None
        if not self.config.cross_attention:
            feats.context = None
        return feats

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor, cond: ConditionFeatures) -> ModelOutput:
        self._check_inputs(x_t, t, cond.image)
        fusion = cond.fusion
        if fusion is not None and self.config.detach_fusion:
            # released MedSegDiff-v2: the fused features are detached, so the diffusion loss does
            # not train the condition branch through this path (github.com/KidsWithTokens/MedSegDiff)
            fusion = fusion.detach()
        eps = self.diffusion(x_t, t, cond.image, fusion=fusion, context=cond.context)
        return ModelOutput(eps=eps, anchor=cond.anchor)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, image: torch.Tensor) -> ModelOutput:
        return self.denoise(x_t, t, self.encode_condition(image))

    # -- checks: one clear message instead of a shape error deep inside a conv ----------------
    def _check_image(self, image: torch.Tensor) -> None:
        c = self.config
        # every down-sampling of either branch must halve an even side
        branch = 2 ** c.effective_condition_poolings if c.condition == "unet" else 16  # trunks: stride 16
        check_image(image, c.in_channels, max(2 ** (c.levels - 1), branch), "this network")

    def _check_inputs(self, x_t: torch.Tensor, t: torch.Tensor, image: torch.Tensor) -> None:
        c = self.config
        if x_t.ndim != 4 or x_t.shape[1] != c.mask_channels:
            raise ValueError(f"x_t: expected (B, {c.mask_channels}, H, W), got {tuple(x_t.shape)}")
        if x_t.shape[0] != image.shape[0] or x_t.shape[2:] != image.shape[2:]:
            raise ValueError(f"x_t: shape {tuple(x_t.shape)} does not match image {tuple(image.shape)}")
        if not isinstance(t, torch.Tensor) or t.ndim != 1 or t.shape[0] != x_t.shape[0]:
            raise ValueError(f"t: expected a ({x_t.shape[0]},) tensor of time steps, got {getattr(t, 'shape', t)!r}")

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def make_eps_fn(
    model: nn.Module,
    images: torch.Tensor,
    ensemble: int = 1,
    autocast: Callable[[], ContextManager] = nullcontext,
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The one ε-predictor ``eps_fn(x_t, t, cond)`` the samplers call, for an ensemble of
    ``ensemble`` members per image of ``images`` (B, C, H, W).

    A ``DiffusionSegmenter`` (anything with ``encode_condition`` and ``denoise``) has its
    condition branch run once, on the B images, before any step; the features are repeated N
    times along the batch with each image's members adjacent — the layout of the samplers'
    ``cond = images.repeat_interleave(N)`` — and reused at every step. ``eps_fn.features`` holds
    the un-repeated features (its ``anchor`` logits feed the paper-protocol fusion). Any other
    model is called as ``model(x_t, t, cond).eps`` at every step (``eps_fn.features`` is None).
    ``autocast`` is a context factory (mixed precision); the output is float32.
    """
    if isinstance(ensemble, bool) or not isinstance(ensemble, int) or ensemble < 1:
        raise ValueError(f"ensemble: must be a positive integer, got {ensemble!r}")
    rows = images.shape[0] * ensemble
    if hasattr(model, "encode_condition") and hasattr(model, "denoise"):
        with autocast():
            feats = model.encode_condition(images)
        repeated = feats.repeat_interleave(ensemble) if ensemble > 1 else feats

        def eps_fn(x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
            if cond.shape[0] != rows or x_t.shape[0] != rows:
                raise ValueError(f"eps_fn: made for {images.shape[0]} images x {ensemble} members = {rows} rows, "
                                 f"called with {x_t.shape[0]}")
            with autocast():
                return model.denoise(x_t, t, repeated).eps.float()

        eps_fn.features = feats
    else:

        def eps_fn(x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
            with autocast():
                return model(x_t, t, cond).eps.float()

        eps_fn.features = None
    return eps_fn

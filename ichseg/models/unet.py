"""The diffusion branch: a guided-diffusion style U-Net predicting ε (§3.3).

Layout as the released MedSegDiff code's ``UNetModel``: sinusoidal time-step embedding →
MLP; residual blocks with scale-shift GroupNorm (FiLM by the time embedding); ``num_res_blocks``
blocks per level down and ``num_res_blocks + 1`` up (each up block concatenates one skip);
strided-conv down-sampling, nearest + conv up-sampling; self-attention at the configured
resolution fractions and in the middle block; zero-initialised output convolution.

Its input is the noisy mask x_t concatenated with the CT image (the released code concatenates the
image to the noisy mask at every step). Two optional inputs come from the condition
branch: ``fusion`` (full-resolution features added to the output of the first block, the
released MedSegDiff-v2 fusion) and ``context`` (tokens used as keys/values of the
cross-attention of §3.3, before the bottleneck and on chosen up levels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import CrossAttention2d, SelfAttention2d
from .blocks import group_norm, timestep_embedding, zero_module
from .config import ModelConfig


def _at_level(fractions: tuple[float, ...], level: int) -> bool:
    """Does a level (side = image_size / 2**level) appear in a list of resolution fractions?"""
    return any(abs(f - 2.0 ** -level) < 1e-9 for f in fractions)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, then scale-shift norm h = GN(h)·(1 + s) + b with (s, b) from the
    time embedding, SiLU-dropout-zero conv; residual with a 1×1 skip when the width changes."""

    def __init__(self, in_ch: int, out_ch: int, emb_ch: int, dropout: float = 0.0):
        super().__init__()
        self.in_layers = nn.Sequential(group_norm(in_ch), nn.SiLU(), nn.Conv2d(in_ch, out_ch, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_ch, 2 * out_ch))
        self.out_norm = group_norm(out_ch)
        self.out_layers = nn.Sequential(
            nn.SiLU(), nn.Dropout(dropout), zero_module(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        )
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        scale, shift = self.emb_layers(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.out_norm(h) * (1 + scale) + shift
        return self.skip(x) + self.out_layers(h)


class Downsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.op = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNetStep(nn.Module):
    """One step of the U-Net: [ResBlock] [+ self-attention] [+ cross-attention] [+ resample]."""

    def __init__(self, res=None, attn=None, cross=None, resample=None):
        super().__init__()
        self.res, self.attn, self.cross, self.resample = res, attn, cross, resample

    def forward(self, h: torch.Tensor, emb: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        if self.res is not None:
            h = self.res(h, emb)
        if self.attn is not None:
            h = self.attn(h)
        if self.cross is not None:
            h = self.cross(h, context)
        if self.resample is not None:
            h = self.resample(h)
        return h


class DiffusionUNet(nn.Module):
    """ε_θ(x_t, t, image [, fusion, context]) -> (B, out_channels, H, W)."""

    def __init__(self, config: ModelConfig, fusion_channels: int | None = None, context_dim: int | None = None):
        super().__init__()
        cfg = config
        self.config = cfg
        ch0 = cfg.base_channels
        emb_ch = 4 * ch0
        hc = cfg.num_head_channels
        mults = cfg.effective_channel_mult
        use_cross = cfg.cross_attention
        if use_cross and context_dim is None:
            raise ValueError("cross_attention: enabled but the condition branch provides no context tokens")

        def cross(ch: int):
            return CrossAttention2d(ch, context_dim, hc)

        self.time_embed = nn.Sequential(nn.Linear(ch0, emb_ch), nn.SiLU(), nn.Linear(emb_ch, emb_ch))
        self.input_conv = nn.Conv2d(cfg.mask_channels + cfg.in_channels, ch0, 3, padding=1)
        # released MedSegDiff-v2: condition features added after the first block (1×1 to match widths)
        self.fusion_proj = nn.Conv2d(fusion_channels, ch0, 1) if fusion_channels else None

        self.down = nn.ModuleList()
        skip_chs = [ch0]
        ch = ch0
        for level, mult in enumerate(mults):
            attn = _at_level(cfg.attention_fractions, level)
            for _ in range(cfg.num_res_blocks):
                out = mult * ch0
                self.down.append(UNetStep(ResBlock(ch, out, emb_ch, cfg.dropout), SelfAttention2d(out, hc) if attn else None))
                ch = out
                skip_chs.append(ch)
            if level < len(mults) - 1:
                self.down.append(UNetStep(resample=Downsample(ch)))
                skip_chs.append(ch)

        # §3.3 "Bottleneck Stage": cross-attention on the down-sampled output, before the bottleneck
        self.bottleneck_cross = cross(ch) if use_cross and cfg.cross_attention_bottleneck else None
        self.middle = nn.ModuleList([
            UNetStep(ResBlock(ch, ch, emb_ch, cfg.dropout), SelfAttention2d(ch, hc)),
            UNetStep(ResBlock(ch, ch, emb_ch, cfg.dropout)),
        ])

        self.up = nn.ModuleList()
        self.cross_levels: list[int] = []
        for level, mult in reversed(list(enumerate(mults))):
            attn = _at_level(cfg.attention_fractions, level)
            xattn = use_cross and _at_level(cfg.cross_attention_up_fractions, level)
            if xattn:
                self.cross_levels.append(level)
            for i in range(cfg.num_res_blocks + 1):
                out = mult * ch0
                last = i == cfg.num_res_blocks
                self.up.append(UNetStep(
                    ResBlock(ch + skip_chs.pop(), out, emb_ch, cfg.dropout),
                    SelfAttention2d(out, hc) if attn else None,
                    # §3.3 "Upsampling Stage": once per chosen level, before it is up-sampled
                    cross(out) if (xattn and last) else None,
                    Upsample(out) if (last and level > 0) else None,
                ))
                ch = out
        self.out = nn.Sequential(group_norm(ch), nn.SiLU(), zero_module(nn.Conv2d(ch, cfg.out_channels, 3, padding=1)))
        self.attention_levels = [lv for lv in range(len(mults)) if _at_level(cfg.attention_fractions, lv)]

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        image: torch.Tensor,
        fusion: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        emb = self.time_embed(timestep_embedding(t, self.config.base_channels).to(x_t.dtype))
        h = self.input_conv(torch.cat([x_t, image], dim=1))
        if self.fusion_proj is not None:
            if fusion is None:
                raise ValueError("fusion: this network fuses condition features but none were given")
            h = h + self.fusion_proj(fusion)
        hs = [h]
        for step in self.down:
            h = step(h, emb, context)
            hs.append(h)
        if self.bottleneck_cross is not None:
            h = self.bottleneck_cross(h, context)
        for step in self.middle:
            h = step(h, emb, context)
        for step in self.up:
            h = step(torch.cat([h, hs.pop()], dim=1), emb, context)
        return self.out(h)

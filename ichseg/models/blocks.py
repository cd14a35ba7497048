"""Small shared building blocks: normalisation, time-step and position codes, zero init, input checks."""

from __future__ import annotations

import math

import torch
from torch import nn


def check_image(image: torch.Tensor, in_channels: int, divisor: int, network: str) -> None:
    """One clear message instead of a shape error deep inside a conv: ``image`` must be
    (B, in_channels, H, W) with H and W divisible by ``divisor`` (every down-sampling halves an even side)."""
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != in_channels:
        raise ValueError(f"image: expected (B, {in_channels}, H, W), got {tuple(getattr(image, 'shape', ()))}")
    h, w = image.shape[-2:]
    if h % divisor or w % divisor:
        raise ValueError(f"image: spatial size {h}×{w} must be divisible by {divisor} for {network}")


def group_norm(channels: int, groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with 32 groups as guided-diffusion, fewer when a tiny width is not divisible."""
    return nn.GroupNorm(math.gcd(groups, channels), channels)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero a layer's parameters so a residual branch starts as the identity (guided-diffusion)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer time steps, (B,) -> (B, dim) (Ho et al. 2020 / guided-diffusion)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def sincos_2d(h: int, w: int, dim: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Fixed 2D sin-cos position code (MAE / ViT style), (h·w, dim); works at any grid size."""
    quarter = max(dim // 4, 1)
    omega = 1.0 / (10000.0 ** (torch.arange(quarter, dtype=torch.float32, device=device) / quarter))
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32, device=device),
        torch.arange(w, dtype=torch.float32, device=device),
        indexing="ij",
    )
    parts = []
    for coord in (ys.reshape(-1), xs.reshape(-1)):
        arg = coord[:, None] * omega[None]
        parts += [torch.sin(arg), torch.cos(arg)]
    pe = torch.cat(parts, dim=1)
    if pe.shape[1] < dim:
        pe = torch.cat([pe, pe.new_zeros(pe.shape[0], dim - pe.shape[1])], dim=1)
    return pe[:, :dim].to(dtype)


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H·W, C)."""
    return x.flatten(2).transpose(1, 2)


def from_tokens(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, H·W, C) -> (B, C, H, W)."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w)

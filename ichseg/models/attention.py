"""Attention blocks, all on ``torch.nn.functional.scaled_dot_product_attention`` (Eq. 3).

- ``SelfAttention2d``: spatial self-attention of the diffusion U-Net (guided-diffusion's
  AttentionBlock, with its pre-GroupNorm and zero-initialised output projection).
- ``CrossAttention2d``: §3.3 — queries from diffusion features, keys/values from the condition
  branch's tokens, multi-head, residual.
- ``TransformerBlock``: §3.2 — pre-LayerNorm multi-head self-attention + feed-forward, both
  residual, over the condition branch's deepest features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .blocks import from_tokens, group_norm, to_tokens, zero_module


def heads_for(channels: int, head_channels: int) -> int:
    """Heads so that each has ``head_channels`` (guided-diffusion ``num_head_channels``), >= 1."""
    heads = max(channels // head_channels, 1)
    while channels % heads:
        heads -= 1
    return heads


def _split(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, c = x.shape
    return x.reshape(b, n, heads, c // heads).transpose(1, 2)  # (B, heads, N, d)


def _merge(x: torch.Tensor) -> torch.Tensor:
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class MultiHeadAttention(nn.Module):
    """softmax(QKᵀ/√d_k)V (Eq. 3) with separate projections; ``context`` None -> self-attention."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None, zero_out: bool = False):
        super().__init__()
        if dim % heads:
            raise ConfigError(f"heads: {heads} does not divide the width {dim}")
        self.heads = heads
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(context_dim or dim, 2 * dim)
        self.proj = zero_module(nn.Linear(dim, dim)) if zero_out else nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        q = _split(self.to_q(x), self.heads)
        k, v = (_split(z, self.heads) for z in self.to_kv(x if context is None else context).chunk(2, dim=-1))
        return self.proj(_merge(F.scaled_dot_product_attention(q, k, v)))


class SelfAttention2d(nn.Module):
    """Spatial self-attention with a residual connection (the diffusion U-Net's AttentionBlock)."""

    def __init__(self, channels: int, head_channels: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.attn = MultiHeadAttention(channels, heads_for(channels, head_channels), zero_out=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        return x + from_tokens(self.attn(to_tokens(self.norm(x))), h, w)


class CrossAttention2d(nn.Module):
    """Eq. 3 across branches: Q from diffusion features (B,C,H,W), K/V from condition tokens (B,N,Cc).

    Residual (x + attention), pre-normalised (GroupNorm on the queries, LayerNorm on the
    context). The output projection is *not* zero-initialised: the condition path contributes
    from the first step, so the keys/values receive gradients from the start.
    """

    def __init__(self, channels: int, context_dim: int, head_channels: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.norm_context = nn.LayerNorm(context_dim)
        self.attn = MultiHeadAttention(channels, heads_for(channels, head_channels), context_dim=context_dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        out = self.attn(to_tokens(self.norm(x)), self.norm_context(context))
        return x + from_tokens(out, h, w)


class TransformerBlock(nn.Module):
    """§3.2: x + MHSA(LN(x)), then x + FFN(LN(x)) over tokens (B, N, C) (pre-norm ViT block)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads_for(dim, max(dim // heads, 1)))
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(round(dim * mlp_ratio))
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))

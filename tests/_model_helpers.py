"""Tiny configurations and inputs shared by the model tests (CPU, seconds); a helper module, not tests."""

from __future__ import annotations

import torch

# Tiny widths: every variant keeps its structure (levels, attention, fusion, cross-attention),
# only the sizes shrink. ResNet18 itself cannot shrink (its widths are fixed by the weights).
TINY = dict(
    base_channels=8,
    condition_channels=8,
    condition_max_channels=32,
    num_head_channels=8,
    transformer_heads=4,
    pretrained="none",
)
# 3-level U-Net for the training tests (attention / cross-attention fractions reachable at 32²).
TINY_SHALLOW = dict(TINY, channel_mult=(1, 2, 2), attention_fractions=(0.25,), cross_attention_up_fractions=(0.25, 0.5))


def inputs(batch: int, size: int, channels: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x_t = torch.randn(batch, 1, size, size, generator=g)
    t = torch.randint(0, 1000, (batch,), generator=g)
    image = torch.randn(batch, channels, size, size, generator=g)
    return x_t, t, image


def blobs(batch: int = 4, size: int = 32, seed: int = 0):
    """Synthetic 'CT' images with one bright disc each and its mask."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    masks = []
    for _ in range(batch):
        cy, cx = (torch.randint(size // 4, 3 * size // 4, (2,), generator=g)).tolist()
        r = int(torch.randint(size // 8, size // 4, (1,), generator=g))
        masks.append((((yy - cy) ** 2 + (xx - cx) ** 2) < r * r).float())
    mask = torch.stack(masks)[:, None]
    image = 0.8 * mask + 0.1 * torch.randn(mask.shape, generator=g)
    return image, mask


def unzero(model: torch.nn.Module, std: float = 0.05, seed: int = 0) -> torch.nn.Module:
    """Give the zero-initialised layers (output conv, residual out-convs, attention projections)
    small random values, so a freshly built net's output depends on every path."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1 and not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return model

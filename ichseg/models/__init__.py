"""Networks of the study: the diffusion U-Net, the two condition branches,
cross-attention, the Table 2 variant registry, the loss of Eq. 4, and model cards; and the
Table 1 baselines (U-Net, TransUNet, U-KAN) as direct segmenters (``ichseg.models.baselines``).

    from ichseg.models import build_model
    model = build_model("full", image_size=64, base_channels=16, pretrained="none")
    out = model(x_t, t, image)          # ModelOutput(eps, anchor)
    net = build_model("ukan", image_size=64, base_channels=8)
    logits = net(image)                 # (B, 1, H, W)
"""

from typing import TYPE_CHECKING

from ..utils.lazy import lazy_attributes
from .baselines import DirectSegmenter, SegmenterConfig
from .condition import ConditionFeatures
from .config import ModelConfig
from .losses import LossConfig, total_loss
from .model import DiffusionSegmenter, ModelOutput, make_eps_fn
from .registry import (ALL_VARIANTS, BASELINES, BEYOND_PAPER, BEYOND_PAPER_ROWS, TABLE1_NAMES, TABLE2_ROWS, VARIANTS,
                       build_from_config, build_model, build_segmenter, is_direct, row_label, segmenter_config,
                       variant_config)

# the model card (torch's FLOP counter, which imports triton) on first use: sampling never needs it
__getattr__ = lazy_attributes(__name__, {"count_flops": ".card", "format_card": ".card", "model_card": ".card"})
if TYPE_CHECKING:
    from .card import count_flops, format_card, model_card

__all__ = [
    "ALL_VARIANTS",
    "BASELINES",
    "BEYOND_PAPER",
    "BEYOND_PAPER_ROWS",
    "ConditionFeatures",
    "DiffusionSegmenter",
    "DirectSegmenter",
    "LossConfig",
    "ModelConfig",
    "ModelOutput",
    "SegmenterConfig",
    "TABLE1_NAMES",
    "TABLE2_ROWS",
    "VARIANTS",
    "build_from_config",
    "build_model",
    "build_segmenter",
    "count_flops",
    "format_card",
    "is_direct",
    "make_eps_fn",
    "model_card",
    "row_label",
    "segmenter_config",
    "total_loss",
    "variant_config",
]

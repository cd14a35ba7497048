"""Networks of the study (issue 4): the diffusion U-Net, the two condition branches,
cross-attention, the Table 2 variant registry, the loss of Eq. 4, and model cards.

    from ichseg.models import build_model
    model = build_model("full", image_size=64, base_channels=16, pretrained="none")
    out = model(x_t, t, image)          # ModelOutput(eps, anchor)
"""

from .card import count_flops, format_card, model_card
from .condition import ConditionFeatures
from .config import ModelConfig
from .losses import LossConfig, total_loss
from .model import DiffusionSegmenter, ModelOutput, make_eps_fn
from .registry import TABLE2_ROWS, VARIANTS, build_from_config, build_model, variant_config

__all__ = [
    "ConditionFeatures",
    "DiffusionSegmenter",
    "LossConfig",
    "ModelConfig",
    "ModelOutput",
    "TABLE2_ROWS",
    "VARIANTS",
    "build_from_config",
    "build_model",
    "count_flops",
    "format_card",
    "make_eps_fn",
    "model_card",
    "total_loss",
    "variant_config",
]

"""Evaluation metrics: the paper's protocol (MedSegDiff's ``eval_seg``, fed by a named ensemble
fusion of ``fusion``) and strict ones.

``evaluate(protocol, pred, gt, **kw)`` picks a protocol by name from ``PROTOCOLS``.
"""

from __future__ import annotations

from ..errors import ConfigError
from .chance import all_foreground_dice, chance_dice, chance_dice_in_head, head_mask
from .fusion import DIRECT_OUTPUTS, FUSION_STAGES, FUSIONS, fuse, fusion_maps, fusion_stages
from .paper import PAPER_THRESHOLDS, normalise_by_max, paper_protocol, paper_slice_scores
from .strict import (hd95, hd95_slice, lesion_volume_ml, overlap_scores, slice_scores, strict_protocol, surface,
                     volume_hd95)

PROTOCOLS = {"paper": paper_protocol, "strict": strict_protocol}


def evaluate(protocol: str, pred, gt, **kwargs) -> dict:
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol: unknown value {protocol!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[protocol](pred, gt, **kwargs)


__all__ = [
    "DIRECT_OUTPUTS",
    "FUSIONS",
    "FUSION_STAGES",
    "PAPER_THRESHOLDS",
    "PROTOCOLS",
    "all_foreground_dice",
    "chance_dice",
    "chance_dice_in_head",
    "evaluate",
    "fuse",
    "fusion_maps",
    "fusion_stages",
    "hd95",
    "hd95_slice",
    "head_mask",
    "lesion_volume_ml",
    "normalise_by_max",
    "overlap_scores",
    "paper_protocol",
    "paper_slice_scores",
    "slice_scores",
    "strict_protocol",
    "surface",
    "volume_hd95",
]

"""Gaussian diffusion over segmentation masks (paper §3.3, Eqs. 1-2), model-agnostic."""

from .config import VARIANCE_TYPES, DiffusionConfig
from .encoding import MASK_ENCODINGS, MaskEncoding
from .gaussian import GaussianDiffusion
from .samplers import SAMPLERS, respaced_timesteps, sample
from .schedules import BETA_SCHEDULES, make_betas

__all__ = [
    "BETA_SCHEDULES",
    "DiffusionConfig",
    "GaussianDiffusion",
    "MASK_ENCODINGS",
    "MaskEncoding",
    "SAMPLERS",
    "VARIANCE_TYPES",
    "make_betas",
    "respaced_timesteps",
    "sample",
]

"""Beta schedules β_1..β_T, computed in float64 (numpy).

Both follow guided-diffusion (the code MedSegDiff is built on):
- ``linear``: Ho et al. 2020, with β scaled by 1000/T so that any T spans the same noise range;
- ``cosine``: Nichol & Dhariwal 2021, ᾱ(t) = cos²(((t/T)+s)/(1+s)·π/2), β clipped at 0.999.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..errors import ConfigError


def linear_betas(timesteps: int) -> np.ndarray:
    scale = 1000.0 / timesteps
    if scale * 0.02 >= 1.0:  # β_T would reach 1 and ᾱ_T = 0: the chain is no longer a diffusion
        raise ConfigError(f"timesteps: the linear schedule scales β by 1000/T and needs T >= 21, got {timesteps}")
    return np.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=np.float64)


def cosine_betas(timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    def alpha_bar(u: float) -> float:
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    i = np.arange(timesteps, dtype=np.float64)
    ab = np.array([alpha_bar(u) for u in np.append(i, timesteps) / timesteps])
    return np.minimum(1.0 - ab[1:] / ab[:-1], max_beta)


BETA_SCHEDULES: dict[str, Callable[[int], np.ndarray]] = {
    "linear": linear_betas,
    "cosine": cosine_betas,
}


def make_betas(name: str, timesteps: int) -> np.ndarray:
    try:
        fn = BETA_SCHEDULES[name]
    except KeyError:
        raise ConfigError(f"schedule: unknown value {name!r}; known: {', '.join(sorted(BETA_SCHEDULES))}") from None
    return fn(timesteps)

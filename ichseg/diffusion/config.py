"""Configuration of the Gaussian diffusion over masks: a small dataclass that round-trips
through plain dicts and YAML (as diffusers' scheduler configs do), validated on construction."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..utils.configs import DictRoundTrip
from ..utils.validate import check_int
from .encoding import MASK_ENCODINGS
from .schedules import BETA_SCHEDULES

VARIANCE_TYPES = ("fixed_small", "fixed_large", "learned_range")
PREDICTIONS = ("eps", "x0")


def _check_choice(name: str, value: str, known) -> None:
    if value not in known:
        raise ConfigError(f"{name}: unknown value {value!r}; known: {', '.join(sorted(known))}")


@dataclass(frozen=True)
class DiffusionConfig(DictRoundTrip):
    """Everything that defines the diffusion process (not the network).

    timesteps:      T, the length of the forward chain (Eq. 1). MedSegDiff code: 1000.
    schedule:       beta schedule name, see ``ichseg.diffusion.schedules.BETA_SCHEDULES``.
    mask_encoding:  how a binary mask maps to diffusion space: ``symmetric`` ({0,1} -> {-1,1})
                    or ``binary`` (kept in {0,1}, as the released MedSegDiff code does;
                    github.com/KidsWithTokens/MedSegDiff).
    clip_x0:        clip the predicted x0 to the encoding's range while sampling.
    variance:       Σ_θ of Eq. 2 for ancestral sampling: ``fixed_small`` (posterior variance
                    β̃_t), ``fixed_large`` (β_t), or ``learned_range`` (the network outputs a
                    second channel interpolating the two in log space, as guided-diffusion).
    prediction:     what the network predicts and L_n regresses: ``eps`` (ε, the paper's Eq. 4 and
                    MedSegDiff) or ``x0`` (the clean mask; Ho et al. 2020 §3.2 discuss both). The
                    samplers convert either to (ε̂, x̂_0). ε at t ≈ T gives x̂_0 = (x_t - √(1-ᾱ)ε̂)/√ᾱ,
                    which amplifies ε's error by √((1-ᾱ_T)/ᾱ_T) ≈ 160 for the linear schedule, so
                    an ε-network needs a long training before its first sampling steps stop
                    locking onto the noise; the smoke profile's few hundred CPU iterations use
                    ``x0`` for that reason (measured: ε-prediction stays at chance level there).
    """

    _what = "diffusion config"

    timesteps: int = 1000
    schedule: str = "linear"
    mask_encoding: str = "symmetric"
    clip_x0: bool = True
    variance: str = "fixed_small"
    prediction: str = "eps"

    def __post_init__(self) -> None:
        check_int("timesteps", self.timesteps, 2)
        _check_choice("schedule", self.schedule, BETA_SCHEDULES)
        BETA_SCHEDULES[self.schedule](self.timesteps)  # schedule-specific limits on T raise here
        _check_choice("mask_encoding", self.mask_encoding, MASK_ENCODINGS)
        _check_choice("variance", self.variance, VARIANCE_TYPES)
        _check_choice("prediction", self.prediction, PREDICTIONS)
        if not isinstance(self.clip_x0, bool):
            raise ConfigError(f"clip_x0: must be true or false, got {self.clip_x0!r}")

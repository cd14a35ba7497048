"""Reverse-process samplers (Eq. 2) for a ``GaussianDiffusion`` and any ε-predictor.

An ε-predictor is a callable ``eps_fn(x_t, t, cond) -> ε̂`` where ``t`` is a LongTensor of
original timestep indices (one per batch row, respaced grids included) and ``cond`` the batch of
conditioning images. With ``variance="learned_range"`` it returns 2·C channels (ε̂, v).

Every sampler runs the whole ensemble as one batch (the condition is repeated N times along the
batch axis; never a Python loop over samples), takes a ``torch.Generator`` for x_T and the
ancestral noise, and ``sample`` returns masks in [0,1] shaped (B, N, C, H, W).

Samplers:
- ``ddpm``:          ancestral sampling over all T steps (Ho et al. 2020, Alg. 2);
- ``ddim``:          DDIM over K <= T respaced steps with stochasticity η (Song et al. 2021, Eq. 12);
- ``dpm-solver++``:  DPM-Solver++(2M), second-order multistep in the data (x0) prediction
                     (Lu et al. 2022, Alg. 2), the fast path of the MedSegDiff code, over K steps:
                     K network calls on the K grid points, the first step at first order (no
                     history yet), the steps between grid points at second order, and the last
                     step, from the last grid point to σ = 0, at first order (x_0 = x̂_0). That is
                     diffusers' ``DPMSolverMultistepScheduler(algorithm_type="dpmsolver++",
                     solver_order=2, lower_order_final=True)`` with its default
                     ``final_sigmas_type="zero"``, step for step (a test compares the two); for
                     order 2, diffusers' ``lower_order_final`` at K < 15 lowers only that last step.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from ..errors import ConfigError
from ..utils.validate import check_int
from .gaussian import GaussianDiffusion

EpsFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def respaced_timesteps(num_timesteps: int, steps: int) -> np.ndarray:
    """K evenly spaced timestep indices from 0 to T-1 inclusive, ascending (K=T gives all)."""
    check_int("steps", steps)
    if steps > num_timesteps:
        raise ConfigError(f"steps: K={steps} exceeds the number of diffusion timesteps T={num_timesteps}")
    if steps == 1:
        return np.array([num_timesteps - 1])
    return np.round(np.linspace(0, num_timesteps - 1, steps)).astype(np.int64)


class _Stepper:
    """Shared per-step work: call the network, split off a variance channel, form x̂_0."""

    def __init__(self, diffusion: GaussianDiffusion, eps_fn: EpsFn, cond: torch.Tensor, channels: int):
        self.d, self.eps_fn, self.cond, self.channels = diffusion, eps_fn, cond, channels
        self.learned = diffusion.config.variance == "learned_range"

    def __call__(self, x: torch.Tensor, t: int):
        tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        out = self.eps_fn(x, tt, self.cond)
        expected = 2 * self.channels if self.learned else self.channels
        if out.shape[1] != expected or out.shape[0] != x.shape[0] or out.shape[2:] != x.shape[2:]:
            raise ValueError(
                f"eps_fn: returned shape {tuple(out.shape)}, expected ({x.shape[0]}, {expected}, "
                f"{', '.join(map(str, x.shape[2:]))}) for variance={self.d.config.variance!r}"
            )
        eps, v = (out[:, : self.channels], out[:, self.channels :]) if self.learned else (out, None)
        a = self.d.np
        if self.d.config.prediction == "x0":  # the network predicted x̂_0 itself
            x0 = eps
        else:
            # x̂_0 = √(1/ᾱ_t) x_t - √(1/ᾱ_t - 1) ε̂   (inverse of Eq. 1's closed form)
            x0 = float(a["sqrt_recip_alphas_cumprod"][t]) * x - float(a["sqrt_recipm1_alphas_cumprod"][t]) * eps
        if self.d.config.clip_x0:
            x0 = self.d.encoding.clip(x0)
        if self.d.config.clip_x0 or self.d.config.prediction == "x0":
            # ε consistent with the (clipped or predicted) x̂_0 (guided-diffusion's DDIM does the same)
            eps = (float(a["sqrt_recip_alphas_cumprod"][t]) * x - x0) / float(a["sqrt_recipm1_alphas_cumprod"][t])
        return eps, x0, v


def _noise_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def ddpm_loop(d: GaussianDiffusion, step: _Stepper, x: torch.Tensor, generator, steps=None, eta=None) -> torch.Tensor:
    T = d.num_timesteps
    if steps not in (None, T):
        raise ConfigError(f"steps: ddpm runs all T={T} steps (got {steps}); use 'ddim' (eta=1) or 'dpm-solver++' for fewer")
    a = d.np
    for t in range(T - 1, -1, -1):
        eps, x0, v = step(x, t)
        # μ_θ(x_t, t) = c1_t x̂_0 + c2_t x_t: posterior mean at the predicted x0 (Eq. 2's mean)
        mean = float(a["posterior_mean_coef1"][t]) * x0 + float(a["posterior_mean_coef2"][t]) * x
        if t == 0:
            return mean  # c1_0 = 1, c2_0 = 0: the last step returns x̂_0, no noise
        # Σ_θ(x_t, t) of Eq. 2
        if v is None:
            key = "posterior_log_variance_clipped" if d.config.variance == "fixed_small" else "fixed_large_log_variance"
            log_var = float(a[key][t])
            std = math.exp(0.5 * log_var)
        else:  # learned_range: log Σ = f log β_t + (1 - f) log β̃_t, f = (v + 1) / 2
            frac = (v + 1.0) / 2.0
            log_var = frac * float(np.log(a["betas"][t])) + (1.0 - frac) * float(a["posterior_log_variance_clipped"][t])
            std = torch.exp(0.5 * log_var)
        x = mean + std * _noise_like(x, generator)  # x_{t-1} ~ N(μ_θ, Σ_θ)
    return x


def ddim_loop(d: GaussianDiffusion, step: _Stepper, x: torch.Tensor, generator, steps=None, eta: float = 0.0) -> torch.Tensor:
    T = d.num_timesteps
    grid = respaced_timesteps(T, steps if steps is not None else T)
    ab = d.np["alphas_cumprod"]
    for i in range(len(grid) - 1, -1, -1):
        t = int(grid[i])
        ab_t = float(ab[t])
        ab_prev = float(ab[grid[i - 1]]) if i > 0 else 1.0  # ᾱ of the next grid point; ᾱ_{-1} = 1
        eps, x0, _ = step(x, t)
        # σ_t(η) = η √((1-ᾱ_prev)/(1-ᾱ_t)) √(1 - ᾱ_t/ᾱ_prev)   (DDIM Eq. 16)
        sigma = eta * math.sqrt((1.0 - ab_prev) / (1.0 - ab_t)) * math.sqrt(1.0 - ab_t / ab_prev)
        # x_prev = √ᾱ_prev x̂_0 + √(1-ᾱ_prev-σ²) ε̂ + σ z   (DDIM Eq. 12)
        x = math.sqrt(ab_prev) * x0 + math.sqrt(max(1.0 - ab_prev - sigma**2, 0.0)) * eps
        if sigma > 0.0:
            x = x + sigma * _noise_like(x, generator)
    return x


def dpm_solver_pp_loop(d: GaussianDiffusion, step: _Stepper, x: torch.Tensor, generator, steps=None, eta=None) -> torch.Tensor:
    T = d.num_timesteps
    grid = respaced_timesteps(T, steps if steps is not None else 20)
    ab = d.np["alphas_cumprod"]
    alpha = np.sqrt(ab)  # α_t of the VP SDE
    sigma = np.sqrt(1.0 - ab)  # σ_t
    lam = np.log(alpha) - np.log(sigma)  # λ_t = log(α_t/σ_t), the half log-SNR
    x0_prev, h_prev = None, None
    for i in range(len(grid) - 1, -1, -1):
        s = int(grid[i])
        _, x0, _ = step(x, s)  # data prediction x̂_0(x_s, s)
        if i == 0:
            # last step to σ = 0 taken at first order: x_0 = x̂_0 (DPM-Solver++ "lower order final")
            return x0
        t = int(grid[i - 1])
        h = float(lam[t] - lam[s])
        if x0_prev is None:
            D = x0  # first step: DPM-Solver++(1), identical to DDIM(η=0)
        else:
            r = h_prev / h
            # D = (1 + 1/(2r)) x̂_0(s) - 1/(2r) x̂_0(s_prev)   (DPM-Solver++(2M), Alg. 2)
            D = (1.0 + 0.5 / r) * x0 - (0.5 / r) * x0_prev
        # x_t = (σ_t/σ_s) x_s - α_t (e^{-h} - 1) D
        x = float(sigma[t] / sigma[s]) * x - float(alpha[t] * math.expm1(-h)) * D
        x0_prev, h_prev = x0, h
    return x


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "ddpm": ddpm_loop,
    "ddim": ddim_loop,
    "dpm-solver++": dpm_solver_pp_loop,
}


@torch.no_grad()
def sample(
    diffusion: GaussianDiffusion,
    eps_fn: EpsFn,
    cond: torch.Tensor,
    *,
    sampler: str = "ddim",
    steps: int | None = None,
    eta: float = 0.0,
    ensemble: int = 1,
    mask_channels: int = 1,
    generator: torch.Generator | None = None,
    x_T: torch.Tensor | None = None,
    return_raw: bool = False,
) -> torch.Tensor:
    """Draw ``ensemble`` masks per conditioning image.

    cond:  (B, C_img, H, W) conditioning images.
    steps: K (ddim, dpm-solver++; default T for ddim, 20 for dpm-solver++); ddpm always runs T.
    x_T:   optional starting noise (B·N, mask_channels, H, W); drawn from ``generator`` otherwise.
    Returns (B, N, mask_channels, H, W) masks in [0,1] (or the raw diffusion-space x_0 when
    ``return_raw``).
    """
    if sampler not in SAMPLERS:
        raise ConfigError(f"sampler: unknown value {sampler!r}; known: {', '.join(SAMPLERS)}")
    if not isinstance(cond, torch.Tensor) or cond.ndim != 4:
        raise ValueError(f"cond: expected a (B, C, H, W) tensor, got shape {tuple(getattr(cond, 'shape', ()))}")
    check_int("ensemble", ensemble)
    if not 0.0 <= float(eta) <= 1.0:
        raise ConfigError(f"eta: must lie in [0, 1], got {eta!r}")
    B, _, H, W = cond.shape
    cond_n = cond.repeat_interleave(ensemble, dim=0)  # (B·N, C, H, W), sample-major within an image
    shape = (B * ensemble, mask_channels, H, W)
    if x_T is None:
        x = torch.randn(shape, generator=generator, device=cond.device, dtype=cond.dtype)  # x_T ~ N(0, I)
    else:
        if tuple(x_T.shape) != shape:
            raise ValueError(f"x_T: expected shape {shape}, got {tuple(x_T.shape)}")
        x = x_T
    step = _Stepper(diffusion, eps_fn, cond_n, mask_channels)
    x0 = SAMPLERS[sampler](diffusion, step, x, generator, steps=steps, eta=eta)
    out = x0 if return_raw else diffusion.encoding.decode(x0)
    return out.reshape(B, ensemble, mask_channels, H, W)

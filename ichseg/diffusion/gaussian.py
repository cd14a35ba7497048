"""Gaussian diffusion over segmentation masks, independent of any network.

Notation follows the paper (§3.3) and Ho et al. 2020: α_t = 1 - β_t, ᾱ_t = Π_{s<=t} α_s.
Eq. 1 (one step) composes into the closed form q(x_t | x_0) = N(√ᾱ_t x_0, (1 - ᾱ_t) I), which is
what training samples from. Eq. 2's mean μ_θ is the Gaussian posterior mean q(x_{t-1} | x_t, x̂_0)
evaluated at the network's x̂_0 = (x_t - √(1-ᾱ_t) ε_θ) / √ᾱ_t.

Timesteps are 0-based indices 0..T-1 as in guided-diffusion (index t is the paper's step t+1).
The schedule is computed in float64; the module keeps float64 numpy copies (exact scalars for the
samplers) and exposes tensors in the ``dtype`` it was built with (float32 buffers by default).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .config import DiffusionConfig
from .encoding import MASK_ENCODINGS, MaskEncoding
from .schedules import make_betas


def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) ‖ N(mean2, e^logvar2)) per element, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def discretized_gaussian_log_likelihood(x: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor,
                                        data_range: tuple[float, float] = (-1.0, 1.0),
                                        bin_width: float = 2.0 / 255.0) -> torch.Tensor:
    """log P(x) per element, in nats, of a Gaussian N(means, e^{2 log_scales}) integrated over the
    bin of width ``bin_width`` around x, with the two outermost bins extended to ±∞ (Ho et al.
    2020, Eq. 13; guided-diffusion's 8-bit bins of 2/255 on [-1, 1]). A mask value at an end of
    ``data_range`` (the encoding's range: {-1, 1} for ``symmetric``; for ``binary`` 1 is an end
    and 0 an interior bin, as guided-diffusion treats a {0, 1} mask) takes the open-ended bin.
    Uses the exact normal CDF (guided-diffusion uses a tanh approximation of it)."""
    centred = x - means
    inv = torch.exp(-log_scales)
    plus = inv * (centred + bin_width / 2.0)
    minus = inv * (centred - bin_width / 2.0)
    log_cdf_plus = torch.special.log_ndtr(plus)  # log P(X < x + w/2)
    log_sf_minus = torch.special.log_ndtr(-minus)  # log P(X > x - w/2)
    mid = torch.log((torch.special.ndtr(plus) - torch.special.ndtr(minus)).clamp(min=1e-12))
    lo, hi = data_range
    edge = 1e-3 * (hi - lo) / 2.0  # guided-diffusion's ±0.999 on [-1, 1]
    return torch.where(x < lo + edge, log_cdf_plus, torch.where(x > hi - edge, log_sf_minus, mid))


def _gather(values: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    """values[t] shaped (B, 1, 1, ...) to broadcast over a (B, ...) tensor of ``ndim`` dims."""
    return values[t].reshape(-1, *([1] * (ndim - 1)))


class GaussianDiffusion(nn.Module):
    """The forward process, its posterior and the ε-parameterisation for one ``DiffusionConfig``."""

    def __init__(self, config: DiffusionConfig | None = None, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.config = config or DiffusionConfig()
        self.encoding: MaskEncoding = MASK_ENCODINGS[self.config.mask_encoding]
        T = self.config.timesteps

        betas = make_betas(self.config.schedule, T)  # float64
        alphas = 1.0 - betas
        ab = np.cumprod(alphas)  # ᾱ_t
        ab_prev = np.append(1.0, ab[:-1])  # ᾱ_{t-1}, with ᾱ_{-1} = 1
        # Posterior q(x_{t-1} | x_t, x_0) = N(c1 x_0 + c2 x_t, β̃_t I) (Ho et al. 2020, Eqs. 6-7):
        post_var = betas * (1.0 - ab_prev) / (1.0 - ab)  # β̃_t
        post_c1 = betas * np.sqrt(ab_prev) / (1.0 - ab)
        post_c2 = (1.0 - ab_prev) * np.sqrt(alphas) / (1.0 - ab)
        # β̃_0 = 0: clip the log at β̃_1 as guided-diffusion does.
        post_logvar = np.log(np.append(post_var[1], post_var[1:]))
        # "fixed_large" uses β_t, with β̃_1 at t=0 (guided-diffusion).
        large_logvar = np.log(np.append(post_var[1], betas[1:]))

        self.np = {  # float64 reference values (exact scalars for the samplers)
            "betas": betas,
            "alphas_cumprod": ab,
            "alphas_cumprod_prev": ab_prev,
            "posterior_variance": post_var,
            "posterior_log_variance_clipped": post_logvar,
            "posterior_mean_coef1": post_c1,
            "posterior_mean_coef2": post_c2,
            "fixed_large_log_variance": large_logvar,
        }
        derived = {
            "sqrt_alphas_cumprod": np.sqrt(ab),
            "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - ab),
            "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / ab),
            "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / ab - 1.0),
        }
        self.np.update(derived)
        for name, arr in self.np.items():
            self.register_buffer(name, torch.as_tensor(arr, dtype=dtype), persistent=False)

    @property
    def num_timesteps(self) -> int:
        return self.config.timesteps

    # -- forward process ----------------------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t ~ q(x_t | x_0): √ᾱ_t x_0 + √(1-ᾱ_t) ε (Eq. 1 composed over t steps)."""
        self._check_t(t, x0)
        return (
            _gather(self.sqrt_alphas_cumprod, t, x0.ndim) * x0
            + _gather(self.sqrt_one_minus_alphas_cumprod, t, x0.ndim) * noise
        )

    def q_posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor):
        """Mean, variance and clipped log-variance of q(x_{t-1} | x_t, x_0)."""
        self._check_t(t, x0)
        mean = (
            _gather(self.posterior_mean_coef1, t, xt.ndim) * x0
            + _gather(self.posterior_mean_coef2, t, xt.ndim) * xt
        )
        var = _gather(self.posterior_variance, t, xt.ndim)
        logvar = _gather(self.posterior_log_variance_clipped, t, xt.ndim)
        return mean, var, logvar

    # -- ε parameterisation -------------------------------------------------------------------
    def x0_from_eps(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x̂_0 = (x_t - √(1-ᾱ_t) ε) / √ᾱ_t."""
        self._check_t(t, xt)
        return (
            _gather(self.sqrt_recip_alphas_cumprod, t, xt.ndim) * xt
            - _gather(self.sqrt_recipm1_alphas_cumprod, t, xt.ndim) * eps
        )

    def eps_from_x0(self, xt: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """ε = (x_t - √ᾱ_t x_0) / √(1-ᾱ_t), the inverse of ``x0_from_eps``."""
        self._check_t(t, xt)
        return (_gather(self.sqrt_recip_alphas_cumprod, t, xt.ndim) * xt - x0) / _gather(
            self.sqrt_recipm1_alphas_cumprod, t, xt.ndim
        )

    # -- training -----------------------------------------------------------------------------
    def sample_timesteps(self, batch: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """t ~ Uniform{0..T-1}, one per batch element."""
        return torch.randint(0, self.num_timesteps, (batch,), generator=generator, device=device)

    def training_pair(self, mask: torch.Tensor, t: torch.Tensor, noise: torch.Tensor):
        """Encode a mask batch in [0,1] and noise it: returns (x_t, the network's regression
        target): ε for ``prediction="eps"`` (Eq. 4's L_n), the encoded x_0 for ``"x0"``."""
        x0 = self.encoding.encode(mask)
        return self.q_sample(x0, t, noise), (noise if self.config.prediction == "eps" else x0)

    # -- the variational bound of a learned variance (Nichol & Dhariwal 2021, §3.1) ------------
    def p_mean_logvar(self, xt: torch.Tensor, t: torch.Tensor, pred: torch.Tensor, v: torch.Tensor):
        """Mean and log-variance of p_θ(x_{t-1} | x_t) for ``learned_range``: μ_θ is the posterior
        mean at x̂_0 (from ε̂ or x̂_0 per ``prediction``, not clipped, as in training), and
        log Σ_θ = f log β_t + (1 - f) log β̃_t with f = (v + 1)/2 (Nichol & Dhariwal, Eq. 15)."""
        x0 = pred if self.config.prediction == "x0" else self.x0_from_eps(xt, t, pred)
        mean, _, _ = self.q_posterior(x0, xt, t)
        frac = (v + 1.0) / 2.0
        max_log = _gather(torch.log(self.betas), t, xt.ndim)
        min_log = _gather(self.posterior_log_variance_clipped, t, xt.ndim)
        return mean, frac * max_log + (1.0 - frac) * min_log

    def vb_terms(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, pred: torch.Tensor,
                 v: torch.Tensor) -> torch.Tensor:
        """L_vlb's term for each row, in bits per pixel (Ho et al. 2020, Eq. 5; guided-diffusion's
        ``_vb_terms_bpd``): KL(q(x_{t-1} | x_t, x_0) ‖ p_θ(x_{t-1} | x_t)) for t > 0, and the
        discretised Gaussian decoder NLL of x_0 for t = 0. ``x0``: the encoded mask; ``pred``: the
        network's ε̂ (or x̂_0), which the caller detaches so that only Σ_θ learns from this term."""
        self._check_t(t, xt)
        true_mean, _, true_logvar = self.q_posterior(x0, xt, t)
        mean, logvar = self.p_mean_logvar(xt, t, pred, v)
        dims = tuple(range(1, xt.ndim))
        kl = normal_kl(true_mean, true_logvar, mean, logvar).mean(dim=dims) / math.log(2.0)
        nll = -discretized_gaussian_log_likelihood(x0, mean, 0.5 * logvar, self.encoding.clip_range).mean(dim=dims)
        return torch.where(t == 0, nll / math.log(2.0), kl)

    @staticmethod
    def eps_loss(eps_pred: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """L_n of Eq. 4: the simple ε-prediction MSE of Ho et al. 2020, averaged over everything."""
        if eps_pred.shape != eps.shape:
            raise ValueError(f"eps_pred: shape {tuple(eps_pred.shape)} differs from target {tuple(eps.shape)}")
        return torch.mean((eps_pred - eps) ** 2)

    # -- helpers ------------------------------------------------------------------------------
    def _check_t(self, t: torch.Tensor, x: torch.Tensor) -> None:
        if not isinstance(t, torch.Tensor) or t.dtype not in (torch.int64, torch.int32):
            raise ValueError("t: must be an integer tensor of timestep indices")
        if t.ndim != 1 or t.shape[0] != x.shape[0]:
            raise ValueError(f"t: expected shape ({x.shape[0]},), got {tuple(t.shape)}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_timesteps):
            raise ValueError(f"t: indices must lie in [0, {self.num_timesteps - 1}]")

"""``ichseg schedule``: inspect a diffusion configuration."""

from __future__ import annotations

import argparse

import numpy as np

from .config import DiffusionConfig
from .gaussian import GaussianDiffusion


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timesteps", type=int, default=DiffusionConfig.timesteps, help="diffusion steps T of the forward process")
    p.add_argument("--schedule", default=DiffusionConfig.schedule, help="β schedule (e.g. linear, cosine)")
    p.add_argument("--points", type=int, default=6, help="how many timesteps to list")


def run(args: argparse.Namespace) -> int:
    d = GaussianDiffusion(DiffusionConfig(timesteps=args.timesteps, schedule=args.schedule))
    ab = d.np["alphas_cumprod"]
    print(d.config.to_yaml().rstrip())
    print(f"{'t':>6} {'beta_t':>10} {'abar_t':>10} {'SNR_dB':>8}")
    for t in np.unique(np.linspace(0, args.timesteps - 1, max(args.points, 2)).round().astype(int)):
        snr_db = 10 * np.log10(ab[t] / (1 - ab[t]))
        print(f"{t:>6d} {d.np['betas'][t]:>10.6f} {ab[t]:>10.6f} {snr_db:>8.2f}")
    return 0

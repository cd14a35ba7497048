"""Ensemble segmentation with a trained model: probability map and uncertainty per slice.

The condition branch depends only on the image, so its features are computed once per slice and
reused at every sampling step; the N ensemble members of a slice run as one batch.
Probability = mean of the N sampled masks in [0,1]; uncertainty = their standard deviation.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from ..diffusion import GaussianDiffusion, sample


def _autocast(device: torch.device, amp: str):
    if device.type == "cuda" and amp == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def make_eps_fn(model: nn.Module, images: torch.Tensor, ensemble: int, amp: str = "none"):
    """An ε-predictor for ``sample`` that encodes the condition once for all steps and members."""
    device = images.device
    if hasattr(model, "encode_condition") and hasattr(model, "denoise"):
        with _autocast(device, amp):
            feats = model.encode_condition(images)
        feats = feats.repeat_interleave(ensemble)  # the samplers' layout: each slice's N members adjacent

        def eps_fn(x, t, cond):
            with _autocast(device, amp):
                return model.denoise(x, t, feats).eps.float()
    else:

        def eps_fn(x, t, cond):
            with _autocast(device, amp):
                return model(x, t, cond).eps.float()

    return eps_fn


@torch.no_grad()
def segment_slices(
    model: nn.Module,
    diffusion: GaussianDiffusion,
    images: torch.Tensor,
    *,
    sampler: str,
    steps: int | None,
    ensemble: int,
    eta: float = 0.0,
    batch_slices: int = 16,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    amp: str = "none",
    progress=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """images (N, C, H, W) -> (probability (N, H, W), uncertainty (N, H, W)) on the CPU, float32."""
    device = torch.device(device)
    model.eval()
    probs, stds = [], []
    for start in range(0, len(images), batch_slices):
        img = images[start : start + batch_slices].to(device, torch.float32)
        eps_fn = make_eps_fn(model, img, ensemble, amp)
        masks = sample(diffusion, eps_fn, img, sampler=sampler, steps=steps, eta=eta, ensemble=ensemble,
                       generator=generator)  # (B, N, 1, H, W)
        probs.append(masks.mean(dim=1)[:, 0].float().cpu())
        stds.append(masks.std(dim=1, unbiased=False)[:, 0].float().cpu())
        if progress is not None:
            progress.update(len(img))
    return torch.cat(probs), torch.cat(stds)


@torch.no_grad()
def predict_direct(
    model: nn.Module,
    images: torch.Tensor,
    *,
    batch_slices: int = 16,
    device: torch.device | str = "cpu",
    amp: str = "none",
    progress=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A direct segmenter (Table 1 baselines): probability = sigmoid(logits) of one forward pass;
    its uncertainty is not defined (returned as zeros, so outputs keep one layout)."""
    device = torch.device(device)
    model.eval()
    probs = []
    for start in range(0, len(images), batch_slices):
        img = images[start : start + batch_slices].to(device, torch.float32)
        with _autocast(device, amp):
            logits = model(img)
        probs.append(torch.sigmoid(logits.float())[:, 0].cpu())
        if progress is not None:
            progress.update(len(img))
    prob = torch.cat(probs)
    return prob, torch.zeros_like(prob)


def segment(model: nn.Module, diffusion: GaussianDiffusion | None, images: torch.Tensor, *, sampler: str,
            steps: int | None, ensemble: int, eta: float = 0.0, batch_slices: int = 16,
            generator: torch.Generator | None = None, device="cpu", amp: str = "none", progress=None):
    """``segment_slices`` for a diffusion model, ``predict_direct`` for a direct one (``diffusion=None``)."""
    if diffusion is None:
        return predict_direct(model, images, batch_slices=batch_slices, device=device, amp=amp, progress=progress)
    return segment_slices(model, diffusion, images, sampler=sampler, steps=steps, ensemble=ensemble, eta=eta,
                          batch_slices=batch_slices, generator=generator, device=device, amp=amp, progress=progress)

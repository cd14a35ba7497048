"""Shared pieces of the benchmarks: the full model at a chosen size and one training step of it
(Eq. 4 on synthetic batches: forward, loss, backward, AdamW), with the speed options of
``TrainConfig`` (channels_last, amp, compile) applied as the training loop applies them."""

from __future__ import annotations

from contextlib import nullcontext

import torch

from ichseg.diffusion import DiffusionConfig, GaussianDiffusion
from ichseg.engine.config import resolve_run_config
from ichseg.models import build_model
from ichseg.models.losses import LossConfig, total_loss


def model_config(profile: str, variant: str, image_size: int, base_channels: int | None, overrides=()) -> dict:
    sets = [f"model.image_size={image_size}", "model.pretrained=none", *overrides]
    if base_channels:
        sets.append(f"model.base_channels={base_channels}")
    return resolve_run_config(profile, variant, sets)


def build(cfg: dict, device: torch.device, in_channels: int = 1):
    model = build_model(cfg["method"], **{**cfg["model"], "in_channels": in_channels}).to(device)
    diffusion = GaussianDiffusion(DiffusionConfig.from_dict(cfg["diffusion"])).to(device)
    return model, diffusion


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train_step(model, diffusion, batch: int, device: torch.device, *, channels_last: bool = False,
               bf16: bool = False, compile: bool = False, seed: int = 0):
    """A closure running one optimiser step on a fixed synthetic batch (new t and ε each call)."""
    size, ch = model.config.image_size, model.config.in_channels
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator(device="cpu").manual_seed(seed)
    img = torch.randn(batch, ch, size, size, generator=g).to(device)
    msk = (torch.rand(batch, 1, size, size, generator=g) > 0.9).float().to(device)
    if channels_last:
        img = img.contiguous(memory_format=torch.channels_last)
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    cfg = LossConfig()
    state = {"i": 0}

    def step() -> float:
        t = torch.randint(0, diffusion.num_timesteps, (batch,), generator=g).to(device)
        noise = torch.randn(msk.shape, generator=g).to(device)
        x_t, target = diffusion.training_pair(msk, t, noise)
        with amp:
            out = net(x_t, t, img)
        loss, _ = total_loss(out, target, msk, state["i"], cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state["i"] += 1
        return float(loss.detach())

    return step

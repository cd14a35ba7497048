"""Exponential moving average of a model's weights (paper §4.2: evaluation uses the EMA)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """θ_ema ← r·θ_ema + (1 - r)·θ after each optimiser step; buffers are copied."""

    def __init__(self, model: nn.Module, rate: float):
        self.rate = float(rate)
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_params = dict(self.model.named_parameters())
        for name, p in model.named_parameters():
            ema_params[name].lerp_(p.detach(), 1.0 - self.rate)
        ema_buffers = dict(self.model.named_buffers())
        for name, b in model.named_buffers():
            ema_buffers[name].copy_(b)

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)

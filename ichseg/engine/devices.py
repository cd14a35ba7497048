"""The device a run computes on and its mixed precision: one resolver and one autocast for the engine.

``resolve_device`` turns a config's ``device`` field (``auto``, ``cpu``, ``cuda``) into a
``torch.device``; ``autocast`` is the context every forward pass of training, validation and
inference runs in (bf16 autocast on CUDA when ``amp: bf16``, else full precision).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

from ..errors import IchsegError

DEVICES = ("auto", "cpu", "cuda")
AMP_MODES = ("none", "bf16")


def resolve_device(name: str, field: str = "train.device") -> torch.device:
    """``auto`` -> CUDA when available, else the CPU; ``cuda`` without a CUDA device is an
    ``IchsegError`` naming ``field`` (the config field or option the name came from)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise IchsegError(f"{field}: cuda requested but no CUDA device is available")
    return torch.device(name)


def autocast(device: torch.device, amp: str) -> AbstractContextManager:
    """bf16 autocast on a CUDA device when ``amp == "bf16"``; otherwise a no-op context."""
    if device.type == "cuda" and amp == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


__all__ = ["AMP_MODES", "DEVICES", "autocast", "resolve_device"]

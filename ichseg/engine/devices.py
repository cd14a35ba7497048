"""The device a run computes on and its mixed precision: one resolver and one autocast for the engine.

``resolve_device`` turns a config's ``device`` field (``auto``, ``cpu``, ``cuda``) into a
``torch.device``; ``autocast`` is the context every forward pass of training, validation and
inference runs in (bf16 autocast when ``amp: bf16``, on CUDA or on a CPU with bf16 instructions;
else full precision).

On the CPU, ``resolve_device`` also calls ``reuse_large_allocations``: glibc's malloc serves every
block above its mmap threshold (at most 32 MiB, dynamically) with a fresh ``mmap`` and returns it
with ``munmap`` on free, so each large activation of a training step or of a sampling batch is
zero-filled by the kernel page by page, again at every step. At 128² a sampling batch of 24 slices
x 3 samples spent more time in the kernel than in the network (measured in ``bench/cpu_allocator.py``).
Serving them from the heap instead changes where memory comes from, never what is computed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
import warnings
from contextlib import AbstractContextManager, nullcontext

import torch

from ..errors import IchsegError

DEVICES = ("auto", "cpu", "cuda")
AMP_MODES = ("none", "bf16")

#: glibc ``mallopt`` parameters (malloc.h) and the size up to which blocks come from the heap
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
HEAP_BLOCK_LIMIT = 1 << 30


@functools.cache
def reuse_large_allocations() -> bool:
    """Let glibc serve blocks up to ``HEAP_BLOCK_LIMIT`` from the heap and keep freed memory up to
    that size for reuse (``mallopt`` M_MMAP_THRESHOLD, M_TRIM_THRESHOLD), once per process.
    True when applied; False where the C library is not glibc (macOS, musl), which keeps its own
    allocator as it is."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, HEAP_BLOCK_LIMIT)) and bool(mallopt(_M_TRIM_THRESHOLD, HEAP_BLOCK_LIMIT))


def resolve_device(name: str, field: str = "train.device") -> torch.device:
    """``auto`` -> CUDA when available, else the CPU; ``cuda`` without a CUDA device is an
    ``IchsegError`` naming ``field`` (the config field or option the name came from)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise IchsegError(f"{field}: cuda requested but no CUDA device is available")
    device = torch.device(name)
    if device.type == "cpu":
        reuse_large_allocations()
    return device


@functools.cache  # asked at every sampling step; the processor does not change
def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bf16 convolutions and matrix products natively on this CPU (AVX-512 with
    BF16, or AMX). Elsewhere CPU autocast emulates them and is several times slower than fp32."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast(device: torch.device, amp: str) -> AbstractContextManager:
    """bf16 autocast when ``amp == "bf16"`` (CUDA, or a CPU with bf16 instructions); otherwise a
    no-op context. ``bf16`` on a CPU without them is refused rather than silently run in fp32."""
    if amp != "bf16":
        return nullcontext()
    if device.type == "cpu" and not cpu_has_bf16():
        raise IchsegError("amp: bf16 needs a CPU with bf16 instructions (AVX-512 BF16 or AMX), which this one lacks; "
                          "set amp: none (e.g. --set train.amp=none)")
    return torch.autocast(device.type, dtype=torch.bfloat16)


def inference_amp(device: torch.device, amp: str) -> str:
    """The precision a trained model samples in here: its training's ``amp`` where this device runs
    it, else ``none`` with a warning (a model trained in bf16 on a GPU still segments on any CPU;
    training itself refuses instead, see ``autocast``)."""
    if amp == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        warnings.warn("the model was trained with amp: bf16, which this CPU cannot run natively; sampling in fp32",
                      stacklevel=2)
        return "none"
    return amp


__all__ = ["AMP_MODES", "DEVICES", "HEAP_BLOCK_LIMIT", "autocast", "cpu_has_bf16", "inference_amp", "resolve_device",
           "reuse_large_allocations"]

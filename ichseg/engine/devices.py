"""The device a run computes on and its mixed precision: one resolver and one autocast for the engine.

``resolve_device`` turns a config's ``device`` field (``auto``, ``cpu``, ``cuda``) into a
``torch.device``; ``autocast`` is the context every forward pass of training, validation and
inference runs in (bf16 autocast on CUDA when ``amp: bf16``, else full precision).

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


def autocast(device: torch.device, amp: str) -> AbstractContextManager:
    """bf16 autocast on a CUDA device when ``amp == "bf16"``; otherwise a no-op context."""
    if device.type == "cuda" and amp == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


__all__ = ["AMP_MODES", "DEVICES", "HEAP_BLOCK_LIMIT", "autocast", "resolve_device", "reuse_large_allocations"]

"""Interleaved timing for benchmarks on a shared machine.

Candidates are timed in rounds A, B, C, A, B, C, ... in one process and summarised by their
median, so that load from other processes, which drifts over seconds, hits every candidate alike
and the *ratios* between candidates survive the noise even where the absolute times do not.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Mapping


def _sync() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def interleave(candidates: Mapping[str, Callable[[], object]], rounds: int = 5, warmup: int = 1,
               setup: Mapping[str, Callable[[], None]] | None = None) -> dict[str, dict]:
    """Seconds per call of each candidate: ``warmup`` untimed calls each, then ``rounds`` rounds
    of one timed call per candidate. ``setup[name]()`` runs untimed before each of its calls
    (e.g. ``torch.set_num_threads``). Returns name -> {median, min, all}."""
    setup = setup or {}
    times: dict[str, list[float]] = {k: [] for k in candidates}
    for name, fn in candidates.items():
        for _ in range(warmup):
            setup.get(name, lambda: None)()
            fn()
    for _ in range(rounds):
        for name, fn in candidates.items():
            setup.get(name, lambda: None)()
            _sync()
            t0 = time.perf_counter()
            fn()
            _sync()
            times[name].append(time.perf_counter() - t0)
    return {k: {"median": statistics.median(v), "min": min(v), "all": v} for k, v in times.items()}

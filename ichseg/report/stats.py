"""Summary statistics across seeds: mean and a two-sided t-distribution confidence interval."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, int]:
    """(mean, half-width, n) of the finite ``values``.

    The half-width is ``t_{(1+confidence)/2, n-1} * s / sqrt(n)`` with the sample standard
    deviation ``s`` (ddof=1); it is NaN when fewer than two finite values exist (one run has no
    interval), and the mean is NaN when there is none.
    """
    from scipy import stats

    x = np.asarray([v for v in values if v is not None], dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return float("nan"), float("nan"), 0
    mean = float(x.mean())
    if n < 2:
        return mean, float("nan"), 1
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2.0, df=n - 1)) * sem
    return mean, half, n


def ci_band(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float]:
    """(low, high) of the t-interval, for seaborn's ``errorbar=`` callable; (mean, mean) for one value."""
    m, h, _ = mean_ci(values, confidence)
    if not math.isfinite(h):
        return m, m
    return m - h, m + h


def format_mean_ci(mean: float, half: float, n: int, *, scale: float = 1.0, digits: int = 2,
                   missing: str = "not run") -> str:
    """``"88.81"`` for one run, ``"88.81 ± 1.20"`` for several, ``missing`` when there is none."""
    if n == 0 or not math.isfinite(mean):
        return missing
    text = f"{mean * scale:.{digits}f}"
    if n >= 2 and math.isfinite(half):
        text += f" ± {half * scale:.{digits}f}"
    return text


def summarise(values: Iterable[float], *, scale: float = 1.0, digits: int = 2, missing: str = "not run",
              failed: str = "failed", confidence: float = 0.95) -> str:
    """``format_mean_ci(*mean_ci(values))`` in one call, with failed seeds kept in sight.

    ``values`` holds one entry per seed that was run; a NaN (or None) entry is a seed without a
    number. When some are missing the cell says how many seeds the statistic covers
    (``"88.81 ± 1.20 (2/3 seeds)"``); when none has a number it says ``failed (0/3 seeds)``
    (``failed``: the word for that case, e.g. ``n/a`` for a metric that can be not applicable);
    ``missing`` only when no seed was run at all.
    """
    values = [v for v in values]
    m, h, n = mean_ci(values, confidence)
    total = len(values)
    if total == 0:
        return missing
    if n == 0:
        return f"{failed} (0/{total} seeds)"
    text = format_mean_ci(m, h, n, scale=scale, digits=digits, missing=missing)
    return text if n == total else f"{text} ({n}/{total} seeds)"


__all__ = ["ci_band", "format_mean_ci", "mean_ci", "summarise"]

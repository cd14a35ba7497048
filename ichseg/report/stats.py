"""Statistics of the study, as pure functions of arrays.

- Summaries across seeds: mean and a two-sided t-distribution confidence interval (``mean_ci``).
- ``two_level_bootstrap``: the interval of a difference between two models that carries both the
  training-seed and the test-set variation — each replicate draws seeds (per model, with
  replacement), then test clusters (patients; with replacement, the same for both models: paired).
  ``cluster_labels`` makes the clusters: a patient's slices go together, and where the patient field
  does not name a patient (the real-CT images share one placeholder) each image is its own cluster.
- ``holm``: Holm's step-down correction across the pre-registered comparisons (family-wise error
  at ``alpha``), on two-sided bootstrap p-values (``bootstrap_p_value``).
- ``smallest_detectable_difference``: the difference a design with ``n_a`` and ``n_b`` seeds can
  detect at a given level and power, from a seed standard deviation measured in a pilot.
- ``iterations_to_threshold``: convergence as the first validation iteration at which a curve
  reaches one fixed threshold, the same for every method (not a fraction of the run's own end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

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


# -- the two-level bootstrap --------------------------------------------------------------------------
def cluster_labels(patients: Sequence, images: Sequence, image_clusters: Sequence[bool] | bool = False) -> np.ndarray:
    """The resampling cluster of each slice: its patient, or its image where ``image_clusters`` is
    true (a scalar for all, or one flag per slice). Labels are strings, so a patient "1" and an
    image "1" stay apart."""
    patients, images = np.asarray(patients).astype(str), np.asarray(images).astype(str)
    if patients.shape != images.shape:
        raise ValueError(f"cluster_labels: {patients.size} patients for {images.size} images")
    own = np.broadcast_to(np.asarray(image_clusters, bool), patients.shape)
    return np.where(own, np.char.add("image:", images), np.char.add("patient:", patients))


@dataclass(frozen=True)
class BootstrapResult:
    """``delta``: mean of ``a`` minus mean of ``b`` (mean over seeds of each seed's mean over slices);
    ``low``/``high``: its percentile interval; ``p``: two-sided bootstrap p-value of delta = 0;
    ``draws``: the replicates' differences."""

    delta: float
    low: float
    high: float
    p: float
    seeds_a: int
    seeds_b: int
    clusters: int
    draws: np.ndarray = field(repr=False, compare=False)


def _scores(x, n_slices: int | None, name: str) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, float))
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name}: expected (seeds, slices) scores, got shape {x.shape}")
    if n_slices is not None and x.shape[1] != n_slices:
        raise ValueError(f"{name}: {x.shape[1]} slices for {n_slices} cluster labels")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: scores must be finite")
    return x


def _seed_cluster_sums(x: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    """(seeds, clusters) sums of each seed's scores per cluster."""
    return np.stack([np.bincount(idx, weights=row, minlength=k) for row in x])


def _replicate_means(sums: np.ndarray, counts: np.ndarray, seed_draws: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(B,) mean over each replicate's drawn seeds of their slice means over its drawn clusters."""
    per_seed = (weights @ sums.T) / np.maximum(weights @ counts, 1e-12)[:, None]  # (B, seeds)
    return np.take_along_axis(per_seed, seed_draws, axis=1).mean(axis=1)


def bootstrap_p_value(draws: np.ndarray) -> float:
    """Two-sided p-value of "the difference is 0" from bootstrap replicates of the difference:
    twice the smaller tail share at or beyond 0, with the (count + 1) / (B + 1) correction."""
    draws = np.asarray(draws, float)
    b = draws.size
    tail = min(int((draws <= 0).sum()), int((draws >= 0).sum()))
    return float(min(1.0, 2.0 * (tail + 1) / (b + 1)))


def two_level_bootstrap(a, b, clusters: Sequence, *, n_boot: int = 4000, confidence: float = 0.95,
                        seed: int = 0) -> BootstrapResult:
    """Difference of two models' mean scores on the same test slices, and its interval.

    a, b: (seeds, slices) per-slice scores (columns aligned: the same slices); clusters: (slices,)
    labels (``cluster_labels``). Each replicate draws each model's seeds with replacement (level 1),
    then the clusters with replacement (level 2; one draw for both models: they are paired on the
    test set), and takes the difference of the two means. A model with one seed adds no seed
    variation: its interval is the test set's alone.
    """
    clusters = np.asarray(clusters)
    a, b = _scores(a, clusters.size, "a"), _scores(b, clusters.size, "b")
    _, idx = np.unique(clusters.astype(str), return_inverse=True)
    k = int(idx.max()) + 1
    counts = np.bincount(idx, minlength=k).astype(float)
    rng = np.random.default_rng(seed)
    seeds_a = rng.integers(0, a.shape[0], size=(n_boot, a.shape[0]))
    seeds_b = rng.integers(0, b.shape[0], size=(n_boot, b.shape[0]))
    weights = rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot).astype(float)
    draws = (_replicate_means(_seed_cluster_sums(a, idx, k), counts, seeds_a, weights)
             - _replicate_means(_seed_cluster_sums(b, idx, k), counts, seeds_b, weights))
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(draws, [tail, 100 - tail])
    return BootstrapResult(float(a.mean() - b.mean()), float(lo), float(hi), bootstrap_p_value(draws),
                           a.shape[0], b.shape[0], k, draws)


# -- multiplicity ---------------------------------------------------------------------------------------
def holm(p_values: Sequence[float], alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down procedure over the family ``p_values`` (Holm 1979).

    Returns (adjusted p-values, rejected): sorted ascending, the i-th smallest (0-based) of m is
    compared with alpha / (m - i) and the procedure stops at the first that fails; the adjusted
    p-value is the running maximum of (m - i) · p, capped at 1. A NaN p-value (a comparison that
    could not be run) stays NaN, is never rejected, and still counts in m (it was pre-registered).
    """
    p = np.asarray(p_values, float)
    m = p.size
    order = np.argsort(np.where(np.isnan(p), np.inf, p), kind="stable")
    adjusted = np.full(m, np.nan)
    running = 0.0
    for rank, i in enumerate(order):
        if np.isnan(p[i]):
            continue
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted, np.nan_to_num(adjusted, nan=np.inf) <= alpha


# -- design ---------------------------------------------------------------------------------------------
def smallest_detectable_difference(seed_sd: float, n_a: int, n_b: int, *, alpha: float = 0.05, power: float = 0.8,
                                   extra_se: float = 0.0) -> float:
    """The true difference a two-sided test at level ``alpha`` detects with probability ``power``
    when model means over ``n_a`` and ``n_b`` seeds vary with standard deviation ``seed_sd`` per
    seed: (z_{1-α/2} + z_{power}) · sqrt(sd²/n_a + sd²/n_b + extra_se²). ``extra_se``: a further
    standard error of the difference (e.g. the test set's, from the bootstrap with one seed each).
    ``alpha`` is the level the comparison is read at (Holm's strictest is alpha / m)."""
    from scipy import stats

    if seed_sd < 0 or extra_se < 0 or n_a < 1 or n_b < 1 or not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"smallest_detectable_difference: bad arguments sd={seed_sd}, n=({n_a}, {n_b}), "
                         f"alpha={alpha}, power={power}, extra_se={extra_se}")
    z = float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    return z * math.sqrt(seed_sd**2 / n_a + seed_sd**2 / n_b + extra_se**2)


# -- convergence ----------------------------------------------------------------------------------------
def iterations_to_threshold(iterations: Sequence[float], values: Sequence[float], threshold: float) -> float:
    """The first validation iteration at which ``values`` reaches ``threshold`` (NaN: never, within
    the run). One fixed threshold for every method, so runs of any length compare on one scale."""
    it, v = np.asarray(iterations, float), np.asarray(values, float)
    if it.shape != v.shape:
        raise ValueError(f"iterations_to_threshold: {it.size} iterations for {v.size} values")
    ok = np.isfinite(it) & np.isfinite(v)
    it, v = it[ok], v[ok]
    order = np.argsort(it, kind="stable")
    hit = np.nonzero(v[order] >= threshold)[0]
    return float(it[order][hit[0]]) if hit.size else math.nan


__all__ = ["BootstrapResult", "bootstrap_p_value", "ci_band", "cluster_labels", "format_mean_ci", "holm",
           "iterations_to_threshold", "mean_ci", "smallest_detectable_difference", "summarise",
           "two_level_bootstrap"]

"""The statistics of a pre-registered pass on synthetic inputs whose answers are known: the two-level
bootstrap's spread against the analytic standard error of each level, Holm's textbook example, the
smallest detectable difference's closed form, and convergence at one fixed threshold."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ichseg.report.stats import (bootstrap_p_value, cluster_labels, holm, iterations_to_threshold,
                                 smallest_detectable_difference, two_level_bootstrap)


def test_cluster_labels_make_each_real_image_its_own_cluster():
    labels = cluster_labels(["p1", "p1", "realct", "realct"], ["1", "2", "3", "4"], [False, False, True, True])
    assert list(labels) == ["patient:p1", "patient:p1", "image:3", "image:4"]
    assert len(set(cluster_labels(["realct"] * 13, range(13), True))) == 13
    assert len(set(cluster_labels(["realct"] * 13, range(13), False))) == 1  # what a patient cluster would give
    with pytest.raises(ValueError, match="2 patients for 3 images"):
        cluster_labels(["a", "b"], ["1", "2", "3"])


def test_a_constant_shift_gives_a_point_interval_and_a_small_p():
    b = np.random.default_rng(0).uniform(0, 1, (1, 30))
    r = two_level_bootstrap(b + 0.1, b, np.repeat(np.arange(6), 5), n_boot=999)
    assert r.delta == pytest.approx(0.1) and r.low == pytest.approx(0.1) and r.high == pytest.approx(0.1)
    assert r.p == pytest.approx(2 / 1000) and (r.seeds_a, r.seeds_b, r.clusters) == (1, 1, 6)


def test_seed_level_spread_matches_the_standard_error_of_the_seed_means():
    """Every slice of a seed scores the same: only the seeds vary. The bootstrap SD of the difference
    is then sqrt(var_a / n_a + var_b / n_b), with the plug-in (ddof 0) variances."""
    a = np.repeat(np.array([[0.60], [0.65], [0.70], [0.62], [0.68]]), 20, axis=1)
    b = np.repeat(np.array([[0.55], [0.50], [0.58], [0.52], [0.60]]), 20, axis=1)
    r = two_level_bootstrap(a, b, np.repeat(np.arange(10), 2), n_boot=20000, seed=1)
    expected = math.sqrt(a[:, 0].var() / 5 + b[:, 0].var() / 5)
    assert r.draws.std() == pytest.approx(expected, rel=0.05)
    assert r.delta == pytest.approx(a.mean() - b.mean())


def test_patient_level_spread_matches_the_standard_error_over_clusters():
    """One seed each, one slice per cluster: the bootstrap SD is sd(d) / sqrt(K) (ddof 0)."""
    rng = np.random.default_rng(3)
    b = rng.uniform(0.3, 0.7, (1, 40))
    d = rng.normal(0.05, 0.1, 40)
    r = two_level_bootstrap(b + d, b, np.arange(40), n_boot=20000, seed=2)
    assert r.draws.std() == pytest.approx(d.std() / math.sqrt(40), rel=0.05)
    assert r.low < d.mean() < r.high


def test_both_levels_add_up():
    """Seed and patient variation together: the spread is about the root sum of squares of each alone."""
    rng = np.random.default_rng(4)
    k = 30
    base = rng.uniform(0.4, 0.6, k)
    seed_shift = np.array([-0.04, 0.0, 0.04, -0.02, 0.02])[:, None]
    d = rng.normal(0, 0.08, k)
    a = base + d + seed_shift
    b = np.tile(base, (5, 1))
    both = two_level_bootstrap(a, b, np.arange(k), n_boot=20000, seed=5).draws.std()
    seeds_only = math.sqrt(seed_shift.var() / 5)
    patients_only = d.std() / math.sqrt(k)
    assert both == pytest.approx(math.hypot(seeds_only, patients_only), rel=0.1)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="b: 5 slices for 4 cluster labels"):
        two_level_bootstrap(np.zeros((1, 4)), np.zeros((1, 5)), range(4))
    with pytest.raises(ValueError, match="a: scores must be finite"):
        two_level_bootstrap(np.full((1, 3), np.nan), np.zeros((1, 3)), range(3))


def test_bootstrap_p_value():
    assert bootstrap_p_value(np.ones(99)) == pytest.approx(0.02)
    assert bootstrap_p_value(np.r_[-np.ones(50), np.ones(50)]) == pytest.approx(1.0)


def test_holm_textbook_example():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 -> max(0.06, 0.04) = 0.06
    adjusted, rejected = holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert list(rejected) == [True, False, False, True]
    # a comparison that was not run counts in the family but is never rejected
    adjusted, rejected = holm([0.02, math.nan])
    assert adjusted[0] == pytest.approx(0.04) and math.isnan(adjusted[1]) and list(rejected) == [True, False]
    assert holm([0.3, 0.9])[0] == pytest.approx([0.6, 0.9])  # monotone in p
    assert holm([0.8, 0.9])[0] == pytest.approx([1.0, 1.0])  # capped at 1


def test_smallest_detectable_difference_closed_form():
    # (z_0.975 + z_0.8) = 1.95996 + 0.84162 = 2.80158
    assert smallest_detectable_difference(1.7, 5, 5) == pytest.approx(2.80158 * 1.7 * math.sqrt(0.4), rel=1e-4)
    assert smallest_detectable_difference(1.0, 1, 1) == pytest.approx(2.80158 * math.sqrt(2), rel=1e-4)
    assert smallest_detectable_difference(0.0, 3, 3, extra_se=1.0) == pytest.approx(2.80158, rel=1e-4)
    # more seeds detect less; a stricter level (Holm across 10) needs more
    assert smallest_detectable_difference(1.7, 5, 5) < smallest_detectable_difference(1.7, 2, 2)
    assert smallest_detectable_difference(1.7, 5, 5, alpha=0.005) > smallest_detectable_difference(1.7, 5, 5)
    with pytest.raises(ValueError, match="bad arguments"):
        smallest_detectable_difference(1.0, 0, 5)


def test_iterations_to_one_fixed_threshold():
    its, vals = [750, 250, 500, 1000], [0.70, 0.30, 0.60, 0.65]
    assert iterations_to_threshold(its, vals, 0.6) == 500  # unsorted input, and a later dip does not matter
    assert math.isnan(iterations_to_threshold(its, vals, 0.9))  # never reached within the run
    assert iterations_to_threshold([100, 200], [math.nan, 0.7], 0.5) == 200
    with pytest.raises(ValueError, match="2 iterations for 1 values"):
        iterations_to_threshold([1, 2], [0.5], 0.5)

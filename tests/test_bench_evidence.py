"""bench/evidence_pilot.py: its runs follow the profile (validation-only training under the two
objectives) and its failure rule and seed SD are what its docstring fixes in advance."""

from __future__ import annotations

import math

import pytest

from _bench_helpers import load_bench


@pytest.fixture(scope="module")
def pilot():
    return load_bench("evidence_pilot")


def test_the_plan_trains_both_objectives_at_the_profiles_settings(pilot):
    runs = {(arm, m, s): cfg for arm, m, s, cfg in pilot.plan("evidence", 100)}
    assert runs[("paper", "full", 1)]["diffusion"]["prediction"] == "eps" and runs[("paper", "full", 1)]["loss"]["alpha"] == 5
    assert runs[("x0-a1", "full", 2)]["diffusion"]["prediction"] == "x0" and runs[("x0-a1", "full", 2)]["train"]["seed"] == 2
    assert runs[("x0-a1", "full", 0)]["diffusion"]["prediction"] == "x0" and runs[("x0-a1", "full", 0)]["loss"]["alpha"] == 1
    assert all(c["train"]["iterations"] == 100 and c["train"]["val_split"] == "val" for c in runs.values())
    assert runs[("paper", "full", 1)]["train"]["seed"] == 1
    assert runs[("paper", "full", 0)]["model"]["pretrained"] == "none"  # the study section's override


def test_failure_rule_and_seed_sd(pilot):
    best = {("paper", "medsegdiffv2", 0): 0.60, ("x0-a1", "medsegdiffv2", 0): 0.62,
            ("paper", "full", 0): 0.50, ("paper", "full", 1): 0.54,
            ("x0-a1", "full", 0): 0.60, ("x0-a1", "full", 1): 0.63, ("x0-a1", "full", 2): 0.66}
    out = pilot.verdict(best)
    assert out["paper_objective_fails_for"] == ["full"]  # 0.50 is more than 5 points below 0.60
    assert out["adopted_arm"] == "x0-a1"
    assert out["seed_sd_full_best_val_strict_dice"] == pytest.approx(0.03)  # the adopted arm's three seeds
    assert out["seed_sd_by_arm"]["paper"] == pytest.approx(0.04 / 2 ** 0.5)
    assert out["convergence_threshold"] == pytest.approx(0.315, abs=0.006)  # half the x0-a1 arm's median 0.63
    best[("paper", "medsegdiffv2", 0)] = 0.05  # below the floor whatever the other arm did
    best[("x0-a1", "medsegdiffv2", 0)] = 0.04
    assert pilot.verdict(best)["paper_objective_fails_for"] == ["medsegdiffv2", "full"]
    fine = {**best, ("paper", "medsegdiffv2", 0): 0.62, ("paper", "full", 0): 0.60, ("paper", "full", 1): 0.64}
    kept = pilot.verdict(fine)
    assert kept["paper_objective_fails_for"] == [] and kept["adopted_arm"] == "paper"
    assert kept["seed_sd_full_best_val_strict_dice"] == pytest.approx(0.04 / 2 ** 0.5)

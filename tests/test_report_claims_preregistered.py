"""The pre-registered family of comparisons, its decision rule and Holm's correction, on synthetic
score tables whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ichseg.report.claims import (CONTRADICTS, GAIN, LEVEL, LOSS, SUPPORTS, UNDECIDED, combine_verdicts,
                                  convergence_at_threshold, decide, decide_comparisons, difference,
                                  preregistered_comparisons)

EVIDENCE_METHODS = ("medsegdiffv2", "cross_attention", "reduce_layer", "resnet18", "full", "full_lite0",
                    "full_lite0_scratch", "unet", "transunet", "ukan", "nnunet")


def test_the_family_holds_every_step_and_cross_dataset_row():
    family = preregistered_comparisons(EVIDENCE_METHODS, ("instance2022", "bhsd", "physionet", "realct"))
    by_id = {c.id: c for c in family}
    assert list(by_id) == ["table2:cross_attention", "table2:reduce_layer", "table2:resnet18", "table2:full",
                           "full-vs-medsegdiffv2", "full-vs-nnunet", "pretrained-vs-scratch", "lite0-imagenet-vs-full",
                           "cross:bhsd", "cross:physionet", "cross:realct"]
    assert by_id["table2:cross_attention"].claim == GAIN  # +7.14 points in Table 2
    assert by_id["table2:resnet18"].claim == LEVEL  # -0.30: below the smallest difference that matters
    assert by_id["full-vs-nnunet"].claim == LEVEL and by_id["full-vs-nnunet"].paper_delta == pytest.approx(-0.0013)
    assert by_id["cross:realct"].paper_delta is None and by_id["cross:realct"].claim == GAIN
    assert by_id["pretrained-vs-scratch"].beyond_paper and by_id["pretrained-vs-scratch"].a == "full_lite0"
    # a pass without nnU-Net or the Lite0 rows has no comparison with them
    few = {c.id for c in preregistered_comparisons(("medsegdiffv2", "full"))}
    assert few == {"full-vs-medsegdiffv2"}


@pytest.mark.parametrize("low, high, rejected, delta, claim, expected", [
    (0.01, 0.08, True, 0.04, GAIN, SUPPORTS),
    (-0.08, -0.01, True, -0.04, GAIN, CONTRADICTS),
    (-0.01, 0.015, False, 0.002, GAIN, CONTRADICTS),  # no gain that matters is left inside the interval
    (-0.02, 0.06, False, 0.02, GAIN, UNDECIDED),
    (-0.08, -0.01, True, -0.04, LOSS, SUPPORTS),
    (-0.015, 0.01, False, 0.0, LEVEL, SUPPORTS),
    (0.03, 0.06, True, 0.045, LEVEL, CONTRADICTS),
    (-0.01, 0.03, False, 0.01, LEVEL, UNDECIDED),
    (math.nan, 0.03, False, 0.01, GAIN, UNDECIDED),
])
def test_decision_rule(low, high, rejected, delta, claim, expected):
    assert decide(low, high, rejected, delta, claim, margin=0.02) == expected


def _slices(quality: dict, seeds: dict, n_patients: int = 12, dataset: str = "instance2022", noise: float = 0.02):
    rng = np.random.default_rng(0)
    difficulty = rng.uniform(-0.1, 0.1, n_patients)
    rows = []
    for method, q in quality.items():
        for seed in seeds[method]:
            shift = rng.normal(0, noise)
            for p in range(n_patients):
                for s in range(3):
                    rows.append({"method": method, "dataset": dataset, "seed": seed, "patient": f"p{p}",
                                 "volume": f"v{p}", "slice_index": s, "positive": 1,
                                 "strict_dice": float(np.clip(q + difficulty[p] + shift, 0, 1))})
    return pd.DataFrame(rows)


def test_decided_family_on_known_qualities():
    """The full model is 0.2 better than MedSegDiff-v2 and level with nnU-Net (same quality, its own
    seeds); TransUNet was never run, yet its comparison counts in Holm's family."""
    table = _slices({"medsegdiffv2": 0.4, "full": 0.6, "nnunet": 0.6}, {"medsegdiffv2": range(5), "full": range(5),
                                                                      "nnunet": range(2)}, noise=0.002)
    family = preregistered_comparisons(("medsegdiffv2", "full", "nnunet"))
    out = decide_comparisons(table, family, "strict_dice", n_boot=2000, seed_sd=0.017).set_index("id")
    assert out.loc["full-vs-medsegdiffv2", "verdict"] == SUPPORTS
    assert out.loc["full-vs-medsegdiffv2", "Δ (points)"] == pytest.approx(20.0, abs=0.5)
    assert out.loc["full-vs-nnunet", "verdict"] == SUPPORTS  # level within ±2 points
    assert out.loc["full-vs-medsegdiffv2", "seeds"] == "5 vs 5" and out.loc["full-vs-nnunet", "clusters"] == 12
    # the smallest detectable difference: 1.7 points of seed SD, 5 vs 5 seeds, Holm's strictest alpha/2
    from scipy import stats
    z = stats.norm.ppf(1 - 0.025 / 2) + stats.norm.ppf(0.8)
    assert out.loc["full-vs-medsegdiffv2", "smallest detectable (points)"] == pytest.approx(100 * z * 0.017 * math.sqrt(0.4))
    # with a comparison that was not run in the family, Holm's m grows: adjusted p-values do not fall
    more = list(family) + [family[0].__class__("x", "(d) baseline", "full vs TransUNet", "full", "transunet",
                                               "instance2022", None, GAIN)]
    out2 = decide_comparisons(table, more, "strict_dice", n_boot=2000).set_index("id")
    assert out2.loc["x", "verdict"] == "not run"
    assert (out2.loc["full-vs-medsegdiffv2", "Holm p"] >= out.loc["full-vs-medsegdiffv2", "Holm p"])


def test_noisy_seeds_leave_a_small_gain_undecided():
    table = _slices({"medsegdiffv2": 0.50, "full": 0.52}, {"medsegdiffv2": range(2), "full": range(2)}, noise=0.05)
    out = decide_comparisons(table, preregistered_comparisons(("medsegdiffv2", "full")), "strict_dice", n_boot=2000)
    assert out.iloc[0]["verdict"] == UNDECIDED


def test_real_ct_images_are_their_own_clusters():
    table = _slices({"medsegdiffv2": 0.4, "full": 0.6}, {"medsegdiffv2": [0], "full": [0]}, n_patients=13,
                    dataset="realct")
    table["patient"] = "realct"  # the placeholder every real-CT slice carries
    assert difference(table, "full", "medsegdiffv2", "realct", "strict_dice", n_boot=200)["patients"] == 13
    inst = table.assign(dataset="instance2022")
    assert difference(inst, "full", "medsegdiffv2", "instance2022", "strict_dice", n_boot=200)["patients"] == 1


def test_a_per_volume_table_is_scored_per_volume():
    """Per-volume 3D Dice: one row per volume (no slice index); the volume's patient is the cluster."""
    rows = [{"method": m, "dataset": "instance2022", "seed": 0, "volume": f"v{i}", "patient": f"p{i // 2}",
             "volume_dice": q + 0.01 * i} for m, q in (("full", 0.7), ("medsegdiffv2", 0.5)) for i in range(8)]
    d = difference(pd.DataFrame(rows), "full", "medsegdiffv2", "instance2022", "volume_dice", n_boot=200)
    assert d["delta"] == pytest.approx(0.2) and d["patients"] == 4


def test_convergence_at_one_fixed_threshold():
    curves = pd.DataFrame({"method": ["full"] * 4 + ["medsegdiffv2"] * 4, "seed": 0,
                           "iteration": [250, 500, 750, 1000] * 2,
                           "strict_dice": [0.3, 0.62, 0.7, 0.71, 0.2, 0.4, 0.5, 0.55]})
    out = convergence_at_threshold(curves, 0.6).set_index("method")
    assert out.loc["full", "iterations"] == 500 and math.isnan(out.loc["medsegdiffv2", "iterations"])
    assert out.loc["medsegdiffv2", "last iteration"] == 1000 and out.loc["full", "threshold"] == 0.6


def test_both_primary_metrics_must_agree():
    assert combine_verdicts(SUPPORTS, SUPPORTS) == SUPPORTS
    assert combine_verdicts(SUPPORTS, UNDECIDED) == UNDECIDED and combine_verdicts(SUPPORTS, CONTRADICTS) == UNDECIDED

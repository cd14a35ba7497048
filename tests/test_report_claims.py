"""The claims checker: the paired two-level bootstrap, the verdict rules, convergence measures, and
the claims table on a synthetic study whose model qualities are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ichseg.report import collect
from ichseg.report.claims import (CONTRADICTS, SUPPORTS, UNDECIDED, comparison_claims, convergence_claim,
                                  convergence_table, difference, is_flat, iterations_to_fraction, ordering_verdict,
                                  paired_bootstrap_difference, verdict)
from tests._study_helpers import write_study


def test_a_constant_shift_has_a_zero_width_interval():
    rng = np.random.default_rng(0)
    b = rng.uniform(0, 1, (1, 40))  # one seed: seeds of two models are not paired, so only one keeps it exact
    delta, lo, hi = paired_bootstrap_difference(b + 0.1, b, np.repeat(np.arange(8), 5), n_boot=500)
    assert delta == pytest.approx(0.1) and lo == pytest.approx(0.1) and hi == pytest.approx(0.1)


def test_patients_not_slices_are_the_unit():
    """The whole difference sits in one of ten patients: resampling slices as if independent gives a
    narrow interval; resampling patients gives a wide one that contains zero."""
    rng = np.random.default_rng(1)
    b = rng.uniform(0.4, 0.6, (1, 100))
    a = b.copy()
    a[0, :10] += 0.5  # patient 0's ten slices only
    by_patient = paired_bootstrap_difference(a, b, np.repeat(np.arange(10), 10), n_boot=2000)
    by_slice = paired_bootstrap_difference(a, b, np.arange(100), n_boot=2000)
    assert by_patient[0] == pytest.approx(by_slice[0]) == pytest.approx(0.05)
    assert by_slice[1] > 0  # naive: "significant"
    assert by_patient[1] <= 0 < by_patient[2]  # honest: cannot tell from one patient
    assert by_patient[2] - by_patient[1] > by_slice[2] - by_slice[1]


def test_seed_variation_widens_the_interval():
    """Two models equal on average but one with seeds far apart: resampling seeds keeps zero inside."""
    rng = np.random.default_rng(2)
    base = rng.uniform(0.4, 0.6, 60)
    b = np.stack([base, base, base])
    a = np.stack([base + 0.3, base - 0.3, base + 0.01])
    _, lo, hi = paired_bootstrap_difference(a, b, np.repeat(np.arange(12), 5), n_boot=2000)
    assert lo < 0 < hi


def test_bad_score_shapes_are_named():
    with pytest.raises(ValueError, match="scores: 4 and 5 slices"):
        paired_bootstrap_difference(np.zeros((1, 4)), np.zeros((1, 5)), range(4))
    with pytest.raises(ValueError, match="finite scores"):
        paired_bootstrap_difference(np.full((1, 3), np.nan), np.zeros((1, 3)), range(3))


@pytest.mark.parametrize("low, high, sign, expected", [
    (0.01, 0.2, 1, SUPPORTS), (-0.2, -0.01, 1, CONTRADICTS), (-0.1, 0.1, 1, UNDECIDED),
    (-0.2, -0.01, -1, SUPPORTS), (0.01, 0.2, -1, CONTRADICTS), (math.nan, 0.1, 1, UNDECIDED), (0.1, 0.2, 0, UNDECIDED),
])
def test_verdict(low, high, sign, expected):
    assert verdict(low, high, sign) == expected


def test_ordering_verdict():
    assert ordering_verdict([100, 200, 300], [400, 500, 600]) == SUPPORTS
    assert ordering_verdict([400, 500, 600], [100, 200, 300]) == CONTRADICTS
    assert ordering_verdict([100, 500], [200, 300]) == UNDECIDED
    assert ordering_verdict([math.nan], [200]) == UNDECIDED


def test_iterations_to_fraction_and_flatness():
    log = pd.DataFrame({"iteration": np.arange(100, 1000, 100), "dice": [0.1, 0.5, 0.7, 0.79, 0.8, 0.8, 0.81, 0.8, 0.8]})
    assert iterations_to_fraction(log, 0.9) == 400  # 0.9 x the final 0.8 = 0.72: 0.7 at 300 is short of it
    rising = log.assign(dice=np.linspace(0.1, 0.8, 9))
    assert is_flat(log) and not is_flat(rising)
    assert math.isnan(iterations_to_fraction(log.assign(dice=0.0)))
    assert not is_flat(log.iloc[:4])  # too few points to tell



@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Three seeds of MedSegDiff-v2 (quality 0.4) and of the full model (0.7), one of each middle
    row, on two test sets: lesion-slice Dice rises with quality (tests/_study_helpers.prediction)."""
    root = tmp_path_factory.mktemp("claims") / "cpu"
    write_study(root, methods=("medsegdiffv2", "cross_attention", "reduce_layer", "resnet18", "full"), seeds=(0, 1, 2),
                datasets=("instance2022", "bhsd"), profile="cpu")
    return collect.load_study(root)


def test_claims_table_on_a_study_with_known_qualities(study):
    slices = collect.slices_table(study)
    table = comparison_claims(slices, n_boot=500)
    row = table.set_index("comparison").loc["full model vs Baseline (MedSegDiffv2) (all rows)"]
    assert row["paper Δ Dice (points)"] == "+12.18"  # 90.70 - 78.52, Table 2
    assert row["verdict (lesion-slice Dice)"] == SUPPORTS  # 0.7 vs 0.4 quality: clearly better
    assert row["seeds"] == "3 vs 3"
    # a cell is the difference of the per-slice scores in slices.csv, recomputed here by hand
    d = difference(slices, "full", "medsegdiffv2", "instance2022", "strict_dice", n_boot=500)
    pos = slices[(slices["dataset"] == "instance2022") & (slices["positive"] > 0)]
    by_hand = pos[pos["method"] == "full"]["strict_dice"].mean() - pos[pos["method"] == "medsegdiffv2"]["strict_dice"].mean()
    assert d["delta"] == pytest.approx(by_hand)
    assert row["ours Δ lesion-slice Dice (points, 95% CI)"].startswith(f"{100 * by_hand:+.1f} [")
    cross = table.set_index("comparison").loc["full model vs MedSegDiffv2 on BHSD"]
    assert cross["claim"] == "(c) cross-dataset" and cross["paper Δ Dice (points)"] == "+19.62"
    assert cross["verdict (lesion-slice Dice)"] == SUPPORTS
    # a test set the study did not evaluate says so instead of a number
    phys = table.set_index("comparison").loc["full model vs MedSegDiffv2 on PhysioNet"]
    assert phys["verdict (paper-protocol Dice)"] == "not run"


def test_convergence_claim_reads_the_training_logs(study):
    curves = collect.curves_table(study)
    per_run = convergence_table(curves)
    assert len(per_run) == 15 and per_run["dice: iterations to 90%"].notna().all()
    claim = convergence_claim(curves)
    assert list(claim["claim"]) == ["(b) convergence"] * 2
    full = per_run[per_run["method"] == "full"]["dice: iterations to 90%"]
    assert claim.iloc[0]["ours: full model (per seed)"] == ", ".join(f"{x:.0f}" for x in full)
    assert claim.iloc[0]["verdict"] in (SUPPORTS, CONTRADICTS, UNDECIDED)


def test_profile_checks_read_the_references_from_the_metrics(study):
    from ichseg.report.claims import profile_checks

    evals, curves = collect.evaluation_table(study), collect.curves_table(study)
    checks = profile_checks(evals, curves).set_index("method")
    full = checks.loc["+ Transformer Block (Full Model)"]
    sel = evals[(evals["method"] == "full") & (evals["dataset"] == "instance2022")]
    assert full["seeds"] == 3 and full["paper-protocol Dice (%)"] == round(100 * sel["dice"].mean(), 2)
    assert full["beats all-empty"] and full["beats chance"]  # nothing on empty slices, part of every lesion
    assert not checks["curves flat at the end"].any()  # four validation points: too few to call flat


def test_all_empty_margin_is_the_share_of_clean_lesion_free_slices_a_method_needs():
    from ichseg.report.claims import all_empty_margin

    # 80 % lesion-free slices: with a paper Dice of 0.4 on the lesion slices, a method must score
    # 90 % of the lesion-free slices as empty to pass 0.8 (0.8·0.9 + 0.2·0.4 = 0.8)
    bd = pd.DataFrame([
        {"method": "full", "seed": s, "dataset": "instance2022", "empty_fraction": 0.8,
         "paper_dice_empty": free, "paper_dice_lesion": 0.4} for s, free in ((0, 0.85), (1, 0.95))
    ] + [{"method": "unet", "seed": 0, "dataset": "bhsd", "empty_fraction": 0.5, "paper_dice_empty": 1.0,
          "paper_dice_lesion": 0.0}])
    row = all_empty_margin(bd).set_index("method").loc["+ Transformer Block (Full Model)"]
    assert row["seeds"] == 2 and row["needed to beat all-empty (%)"] == pytest.approx(90.0)
    assert row["lesion-free slices scored empty (%)"] == pytest.approx(90.0) and row["margin (points)"] == pytest.approx(0.0)
    assert len(all_empty_margin(bd)) == 1  # only the dataset asked for


def test_all_empty_margin_agrees_with_the_paper_protocol_against_all_empty(study):
    from ichseg.report.claims import all_empty_margin

    slices = collect.slices_table(study)
    bd = collect.protocol_breakdown(slices)
    margin = all_empty_margin(bd).set_index("method")
    sel = bd[bd["dataset"] == "instance2022"].groupby("method")[["paper_dice", "empty_fraction"]].mean()
    from ichseg.report.paper import method_title

    for method, r in sel.iterrows():
        wins = r["paper_dice"] > r["empty_fraction"]
        assert (margin.loc[method_title(method), "margin (points)"] > 0) == wins

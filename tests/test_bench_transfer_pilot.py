"""The transfer pilot's decision rules (bench/transfer_pilot.py), fixed before each round's runs:
round 1 reproduces its committed choice; round 2 excludes an arm that over-calls real anatomy or no
longer works in-domain, averages over seeds, and keeps ``plain`` when nothing is eligible."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._bench_helpers import load_bench

pilot = load_bench("transfer_pilot")
ROOT = Path(__file__).resolve().parents[1]


def _run(val: float, real: float, mm2: float) -> dict:
    return {"val_plain": {"lesion_slice_dice": val},
            "real_slices": {"lesion_slice_dice": real, "negative_pred_mm2_mean": mm2}}


def test_round1_rule_reproduces_the_committed_choice():
    record = json.loads((ROOT / "bench" / "measured" / "transfer_pilot.json").read_text())
    assert pilot.choose_round1(record["arms"]) == record["chosen"]


def test_round2_excludes_an_arm_that_over_calls_real_anatomy():
    means = {"plain": pilot.arm_means({0: _run(0.70, 0.20, 500.0), 1: _run(0.68, 0.22, 0.0)}),
             "randomise": pilot.arm_means({0: _run(0.62, 0.26, 0.0), 1: _run(0.60, 0.24, 10.0)})}
    assert means["plain"]["untouched_mm2"] == pytest.approx(250.0)  # the mean over seeds, not the best seed
    assert pilot.choose_round2(means) == "randomise"


def test_round2_in_domain_floor_and_ties_favour_the_simpler_arm():
    ok, broken = _run(0.70, 0.30, 0.0), _run(pilot.IN_DOMAIN_FLOOR - 0.01, 0.90, 0.0)
    assert pilot.choose_round2({"plain": pilot.arm_means({0: ok}), "randomise": pilot.arm_means({0: broken})}) == "plain"
    near = _run(0.70, 0.30 + pilot.TIE / 2, 0.0)
    assert pilot.choose_round2({"plain": pilot.arm_means({0: ok}), "randomise": pilot.arm_means({0: near})}) == "plain"


def test_round2_keeps_plain_when_no_arm_is_eligible():
    over = _run(0.70, 0.40, pilot.FP_MM2_MAX + 1)
    assert pilot.eligible_round2({"plain": pilot.arm_means({0: over})}) == []
    assert pilot.choose_round2({"plain": pilot.arm_means({0: over}), "randomise": pilot.arm_means({0: over})}) == "plain"


def test_round2_runs_are_new_seeds_and_new_inserts():
    r1, r2 = pilot.ROUNDS[1], pilot.ROUNDS[2]
    assert r2.realct_seed not in (r1.realct_seed, 0)  # neither round 1's inserts nor the evidence pass's
    assert set(r2.seeds) - set(r1.seeds)
    assert pilot.run_dir_of(Path("o"), "plain", 0) == Path("o/plain")
    assert pilot.run_dir_of(Path("o"), "plain", 1) == Path("o/plain-s1")


def test_round2_record_is_what_its_rule_gives_on_its_runs():
    record = json.loads((ROOT / "bench" / "measured" / "transfer_pilot_round2.json").read_text())
    means = {a: pilot.arm_means({int(s): r for s, r in runs.items()}) for a, runs in record["runs"].items()}
    assert all(means[a] == pytest.approx(record["means"][a]) for a in record["means"]) and means.keys() == record["means"].keys()
    assert pilot.eligible_round2(means) == record["eligible"] and pilot.choose_round2(means) == record["chosen"]


def test_round3_adds_only_the_bone_band_arm_to_round2():
    r2, r3 = pilot.ROUNDS[2], pilot.ROUNDS[3]
    assert (r3.realct_seed, r3.draws, r3.seeds, r3.rule) == (r2.realct_seed, r2.draws, r2.seeds, r2.rule)
    assert set(r3.arms) - set(r2.arms) == {"randomise_band"}
    assert pilot.arm_config("randomise_band")["data"]["phantom"]["randomise"] == {"bone_band_hu": [0, 40]}


def _run4(val: float, real: float, mm2: float, unmarked: dict) -> dict:
    run = _run(val, real, mm2)
    run["real_slices"]["unmarked"] = unmarked
    return run


def test_round4_excludes_an_arm_that_loses_a_subtype_and_keeps_the_shipped_recipe():
    rnd = pilot.ROUNDS[4]
    assert rnd.fallback == "randomise_band" and rnd.arms[0] == rnd.fallback  # the shipped recipe, listed first
    assert rnd.realct_seed not in {r.realct_seed for k, r in pilot.ROUNDS.items() if k != 4} | {0}
    lost = {"J2K|epidural": 0.75, "693|subdural": 0.0}
    means = {"randomise_band": pilot.arm_means({0: _run4(0.65, 0.30, 0.0, lost), 1: _run4(0.64, 0.28, 0.0, lost)}),
             "randomise_band_narrow": pilot.arm_means({0: _run4(0.66, 0.32, 0.0, {"J2K|epidural": 0.5, "693|subdural": 0.0}),
                                                       1: _run4(0.64, 0.30, 0.0, {"J2K|epidural": 0.25})})}
    # pooled over seeds: the narrow arm loses (0.5 + 0.25) / 2 of the epidural inserts, the band 0.75
    assert means["randomise_band_narrow"]["unmarked_max"] == pytest.approx(0.375)
    assert pilot.eligible_round2(means, rnd.max_unmarked) == ["randomise_band_narrow"]
    assert pilot.choose_round2(means, rnd.fallback, rnd.max_unmarked) == "randomise_band_narrow"
    assert pilot.eligible_round2(means) == ["randomise_band", "randomise_band_narrow"]  # round 2's rule alone
    both_lost = {"randomise_band_narrow": means["randomise_band"], "randomise_band": means["randomise_band"]}
    assert pilot.choose_round2(both_lost, rnd.fallback, rnd.max_unmarked) == "randomise_band"


def test_unmarked_shares_per_real_image_and_subtype(tmp_path):
    rows = "patient,positive,subtype,pred_pixels\nJ2K,1,epidural,0\nJ2K,1,epidural,5\nJ2K,0,,3\n693,1,subdural,0\n"
    (tmp_path / "slices.csv").write_text(rows)
    assert pilot.unmarked_shares(tmp_path) == {"693|subdural": 1.0, "J2K|epidural": 0.5}


def test_round4_arm_trains_with_the_narrow_band_the_skull_base_bench_measures():
    skull = load_bench("skull_base")
    cfg = pilot.arm_config("randomise_band_narrow")["data"]["phantom"]["randomise"]
    assert {k: [float(v) for v in cfg[k]] for k in skull.NARROW_BAND} == skull.NARROW_BAND


def test_round4_record_is_what_its_rule_gives_on_its_runs():
    record = json.loads((ROOT / "bench" / "measured" / "transfer_pilot_round4.json").read_text())
    rnd = pilot.ROUNDS[4]
    means = {a: pilot.arm_means({int(s): r for s, r in runs.items()}) for a, runs in record["runs"].items()}
    assert all(means[a] == pytest.approx(record["means"][a]) for a in record["means"])
    assert pilot.eligible_round2(means, rnd.max_unmarked) == record["eligible"]
    assert pilot.choose_round2(means, rnd.fallback, rnd.max_unmarked) == record["chosen"]
    assert record["limits"]["unmarked_max"] == rnd.max_unmarked and record["realct_seed"] == rnd.realct_seed


def test_round5_challenger_replaces_the_shipped_recipe_only_when_better_and_no_worse_elsewhere():
    rnd = pilot.ROUNDS[5]
    assert (rnd.fallback, rnd.challenger) == ("randomise_band", "randomise_band_lite0")
    assert rnd.realct_seed not in {r.realct_seed for k, r in pilot.ROUNDS.items() if k != 5} | {0}
    cell = {"J2K|epidural": 0.5}
    shipped = pilot.arm_means({0: _run4(0.65, 0.30, 0.0, cell), 1: _run4(0.65, 0.30, 0.0, cell)})

    def lite0(**kw):
        v = {"val": 0.66, "real": 0.35, "mm2": 0.0, "unmarked": 0.5} | kw
        return pilot.arm_means({0: _run4(v["val"], v["real"], v["mm2"], {"J2K|epidural": v["unmarked"]})})

    def choose(challenger):
        return pilot.choose_challenger({"randomise_band": shipped, "randomise_band_lite0": challenger},
                                       rnd.fallback, rnd.challenger)

    assert choose(lite0()) == "randomise_band_lite0"
    assert choose(lite0(real=0.315)) == "randomise_band"  # not more than CHALLENGER_GAIN better on real slices
    assert choose(lite0(val=0.63)) == "randomise_band"  # loses more than TIE on plain validation
    assert choose(lite0(mm2=40.0)) == "randomise_band"  # over-calls the untouched real slice
    assert choose(lite0(unmarked=0.75)) == "randomise_band"  # leaves more of a subtype unmarked


def test_round5_challenger_is_the_evidence_lite0_network_on_the_shipped_data_recipe():
    shipped, lite0 = pilot.arm_config("randomise_band"), pilot.arm_config("randomise_band_lite0", seed=1)
    assert lite0["data"] == shipped["data"]  # the same cohort, so the same validation patients
    assert (lite0["profile"], lite0["method"], lite0["train"]["iterations"], lite0["train"]["seed"]) == \
        ("evidence", "full_lite0", 2000, 1)
    assert (shipped["profile"], shipped["method"], shipped["train"]["iterations"]) == ("cpu", "full", pilot.ITERATIONS)
    assert pilot.ROUNDS[1].arms == ("plain", "randomise", "randomise_context1")  # round 1 as it ran


def test_round6_tests_the_budget_alone_under_round5s_rule():
    rnd = pilot.ROUNDS[6]
    assert (rnd.fallback, rnd.challenger) == ("randomise_band", "randomise_band_long")
    assert rnd.realct_seed not in {r.realct_seed for k, r in pilot.ROUNDS.items() if k != 6} | {0}
    assert rnd.rule == pilot.ROUNDS[5].rule.replace("randomise_band_lite0", "randomise_band_long")
    shipped, long = pilot.arm_config("randomise_band"), pilot.arm_config("randomise_band_long", seed=1)
    assert long["train"]["iterations"] == 2 * shipped["train"]["iterations"] == 6000
    for cfg in (shipped, long):  # everything else as the shipped run's
        cfg["train"].pop("iterations"), cfg["train"].pop("seed")
    assert long == shipped


def test_round5_record_is_what_its_rule_gives_on_its_runs():
    record = json.loads((ROOT / "bench" / "measured" / "transfer_pilot_round5.json").read_text())
    rnd = pilot.ROUNDS[5]
    means = {a: pilot.arm_means({int(s): r for s, r in runs.items()}) for a, runs in record["runs"].items()}
    assert all(means[a] == pytest.approx(record["means"][a]) for a in record["means"])
    assert record["rule"] == rnd.rule and record["realct_seed"] == rnd.realct_seed
    assert pilot.choose_challenger(means, rnd.fallback, rnd.challenger) == record["chosen"]


def test_retrained_runs_are_set_beside_the_record_that_scored_them_first():
    first = {"runs": {"randomise_band": {"0": {"config_hash": "abc", "val_own": {"lesion_slice_dice": 0.50},
                                               "val_plain": {"lesion_slice_dice": 0.65}}}}}
    again = {"randomise_band": {0: {"config_hash": "abc", "val_own": {"lesion_slice_dice": 0.50},
                                    "val_plain": {"lesion_slice_dice": 0.62}},
                                1: {"config_hash": "def", "val_own": {"lesion_slice_dice": 0.40}}}}
    out = pilot.retrained(again, "randomise_band", first)
    assert list(out) == ["0"]  # seed 1 has nothing to compare with
    assert out["0"]["same_run_hash"] and out["0"]["val_own_shift"] == 0.0
    assert out["0"]["val_plain_shift"] == pytest.approx(0.03)
    again["randomise_band"][0]["config_hash"] = "xyz"
    assert not pilot.retrained(again, "randomise_band", first)["0"]["same_run_hash"]


def test_round6_record_is_what_its_rule_gives_on_its_runs():
    """Held in bench/measured/pending until the shipped model follows its choice."""
    record = json.loads((ROOT / "bench" / "measured" / "pending" / "transfer_pilot_round6.json").read_text())
    rnd = pilot.ROUNDS[6]
    means = {a: pilot.arm_means({int(s): r for s, r in runs.items()}) for a, runs in record["runs"].items()}
    assert all(means[a] == pytest.approx(record["means"][a]) for a in record["means"])
    assert record["rule"] == rnd.rule and record["realct_seed"] == rnd.realct_seed
    assert pilot.choose_challenger(means, rnd.fallback, rnd.challenger) == record["chosen"]
    assert record["retrained"]["from_record"] == pilot.ROUNDS[rnd.retrained_from].record

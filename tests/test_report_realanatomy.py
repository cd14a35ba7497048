"""The realism page's tables come from the benchmark records, formatted, never typed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ichseg.report.realanatomy import anatomy_facts, anatomy_table, tissue_table, transfer_table

ROOT = Path(__file__).resolve().parents[1]


def _block(cases, dice, detected, err):
    return {"cases": cases, "lesion_slices": 3 * cases, "lesion_slice_dice": dice, "detected": detected,
            "volume_error_mean": err, "volume_error_abs_mean": None if err is None else abs(err)}


def test_anatomy_table_and_facts_follow_the_record():
    record = {"machine": {"seconds": 12.5}, "summary": {
        "overall": _block(4, 0.5, 0.75, -0.2), "clean_head_fp_ml": [0.3],
        "per_subtype": {"subdural": _block(4, 0.5, 0.75, -0.2)},
        "per_size": {"0.3-1 mL": _block(0, None, None, None), "1-10 mL": _block(3, 0.4, 2 / 3, -0.3),
                     "> 30 mL": _block(1, 0.8, 1.0, 0.1)}}}
    t = anatomy_table(record)
    assert list(t.index) == ["all inserted", "subdural", "1–10 mL", "> 30 mL"]  # empty size class left out
    assert t.loc["1–10 mL", "detected"] == "2/3" and t.loc["> 30 mL", "mean volume error"] == "+10 %"
    assert t.loc["all inserted", "mean volume error"] == "−20 %" and t.loc["subdural", "lesion-slice Dice"] == "0.50"
    f = anatomy_facts(record)
    assert f == {"clean_fp_ml": 0.3, "largest_dice": 0.8, "overall_dice": 0.5, "detected_pct": 75.0,
                 "volume_error_pct": pytest.approx(-20.0), "seconds": 12.5}


def test_tissue_table_of_the_committed_record():
    record = json.loads((ROOT / "bench" / "measured" / "realism.json").read_text())
    t = tissue_table(record)
    assert list(t.index) == ["parenchyma", "CSF", "bone", "blood"]
    real = [c for c in t.columns if c.startswith("real")]
    assert len(real) == 1 and t.loc["blood", real[0]] == "none"  # the real head holds no hemorrhage
    row = next(r for r in record["whole_head"]["table"] if r["source"] == "synthetic" and r["tissue"] == "parenchyma")
    assert t.loc["parenchyma", "synthetic"].startswith(f"{row['median']:.1f} (")
    slices = tissue_table(record, "pydicom_slices")
    assert len(slices.columns) == 3 and slices.loc["blood"].str.contains("none").sum() == 0  # blood inserted in each


def test_profile_anatomy_table_scores_each_seed_then_summarises():
    """Per run: lesion-slice Dice over the lesion slices (overall, per subtype), detection per
    inserted volume, the median volume error, mL predicted on clean images; then seeds summarised."""
    import pandas as pd

    from ichseg.report.realanatomy import profile_anatomy_table

    def run(seed, dice, pred):
        # volume 1: two lesion slices (subdural); volume 2: a clean image; 1 mm pixels, 5 mm slices
        return pd.DataFrame({"method": "full", "seed": seed, "dataset": "realct", "patient": ["a", "a", "b"],
                             "volume": [1, 1, 2], "positive": [1, 1, 0], "subtype": ["subdural", "subdural", ""],
                             "strict_dice": [dice, dice, float("nan")], "gt_pixels": [10, 10, 0],
                             "pred_pixels": [pred, pred, 40], "pixel_row_mm": 1.0, "pixel_col_mm": 1.0,
                             "thickness_mm": 5.0})

    slices = pd.concat([run(0, 0.6, 12), run(1, 0.8, 12), run(1, 0.1, 1).assign(method="medsegdiffv2")])
    table = profile_anatomy_table(slices, methods=("medsegdiffv2", "full", "nnunet"))
    assert list(table.columns) == ["medsegdiffv2", "full"]  # nnU-Net not run: no column
    assert table.loc["all inserted", "full"].startswith("70.0 ±") and table.loc["subdural", "full"].startswith("70.0")
    assert table.loc["all inserted", "medsegdiffv2"] == "10.0"  # one seed: no interval
    assert table.loc["detected (%)", "full"].startswith("100.0")
    assert table.loc["median volume error (%)", "full"].startswith("20.0")  # 24 predicted against 20
    assert table.loc["predicted on clean images (mL)", "full"].startswith("0.2")  # 40 px x 5 mm³


def test_transfer_table_flags_the_chosen_arm_and_leaves_unscored_cells_blank():
    def arm(val_own, real, subtypes, px, val_plain=None):
        out = {"val_own": {"lesion_slice_dice": val_own},
               "real_slices": {"lesion_slice_dice": real, "per_subtype": subtypes, "negative_pred_px_mean": px}}
        return out if val_plain is None else {**out, "val_plain": {"lesion_slice_dice": val_plain}}

    record = {"chosen": "randomise", "rule": "r", "arms": {
        "plain": arm(0.7, 0.2, {"subdural": 0.3}, 187.0, val_plain=0.7),
        "randomise": arm(0.5, 0.26, {"subdural": 0.44, "epidural": 0.34}, 0.0, val_plain=0.62),
        "randomise_context1": arm(0.56, 0.24, {"subdural": 0.36}, 31.0)}}
    t = transfer_table(record)
    assert list(t.index) == ["plain synthetic", "randomised synthetic (chosen)", "randomised, 2.5D (±1 slice)"]
    assert t.loc["randomised, 2.5D (±1 slice)", "validation, plain cohort"] == "—"  # a 2.5D model reads 3 channels
    assert t.loc["plain synthetic", "real: epidural"] == "—" and t.loc["randomised synthetic (chosen)", "real: epidural"] == "0.34"
    assert t.loc["plain synthetic", "px marked, untouched real slice"] == "187"


def test_transfer_table_of_the_committed_record():
    record = json.loads((ROOT / "bench" / "measured" / "transfer_pilot.json").read_text())
    t = transfer_table(record)
    assert len(t) == len(record["arms"]) and sum(i.endswith("(chosen)") for i in t.index) == 1


def test_transfer_round2_table_shows_each_seed_and_the_rules_means():
    from ichseg.report.realanatomy import transfer_round2_table

    def run(val, real, mm2, subtypes):
        return {"val_plain": {"lesion_slice_dice": val}, "val_own": {"lesion_slice_dice": val - 0.1},
                "real_slices": {"lesion_slice_dice": real, "per_subtype": subtypes, "negative_pred_mm2_mean": mm2}}

    record = {"chosen": "randomise",
              "runs": {"plain": {"0": run(0.70, 0.20, 550.0, {"subdural": 0.3}), "1": run(0.68, 0.16, 0.0, {"subdural": 0.1})},
                       "randomise": {"1": run(0.61, 0.30, 3.0, {"subdural": 0.5}), "0": run(0.63, 0.26, 0.0, {"epidural": 0.4})}},
              "means": {"plain": {"val_plain_dice": 0.69, "real_dice": 0.18, "untouched_mm2": 275.0},
                        "randomise": {"val_plain_dice": 0.62, "real_dice": 0.28, "untouched_mm2": 1.5}}}
    t = transfer_round2_table(record)
    assert list(t.index) == ["plain synthetic, seed 0", "plain synthetic, seed 1", "plain synthetic, mean",
                             "randomised synthetic, seed 0", "randomised synthetic, seed 1", "randomised synthetic, mean (chosen)"]
    assert t.loc["plain synthetic, mean", "mm² marked, untouched real slice"] == "275"
    assert t.loc["randomised synthetic, mean (chosen)", "real slices"] == "0.28"
    assert t.loc["plain synthetic, mean", "validation, own cohort"] == "—"  # the rule does not use it
    assert t.loc["randomised synthetic, seed 0", "real: subdural"] == "—" and t.loc["randomised synthetic, seed 1", "real: subdural"] == "0.50"


def test_skull_base_table_and_the_rim_beside_bone():
    from ichseg.report.realanatomy import rim_contrast, skull_base_table

    real = [{"band_mm": "0-1.5", "pixels": 10, "median_hu": 72.0, "bloodlike_share": 0.63},
            {"band_mm": "1.5-3", "pixels": 20, "median_hu": 41.0, "bloodlike_share": 0.33},
            {"band_mm": "15-60", "pixels": 30, "median_hu": 35.0, "bloodlike_share": 0.0}]
    synth = [dict(r, median_hu=m, bloodlike_share=0.0) for r, m in zip(real, (114.0, 26.0, 31.0))]
    record = {"bloodlike_hu": 55.0, "tables": {"real": real, "synthetic": synth}}
    t = skull_base_table(record)
    assert list(t.index) == ["0-1.5 mm", "1.5-3 mm", "15-60 mm"]
    assert t.loc["1.5-3 mm", ("real", "≥ 55 HU (%)")] == "33.0" and t.loc["0-1.5 mm", ("synthetic", "median HU")] == "114"
    assert rim_contrast(real) == (41.0, 35.0) and rim_contrast(synth) == (26.0, 31.0)


def test_transfer_gap_table_and_the_share_the_lesions_explain():
    from ichseg.report.realanatomy import transfer_gap_facts, transfer_gap_table

    def run(arm, seed, real, val, matched, ratio):
        return {"arm": arm, "seed": seed, "real_dice": real, "validation_dice": val, "matched_validation_dice": matched,
                "real_area_ratio": ratio, "matched_area_ratio": None if matched is None else 0.9}

    record = {"runs": {"a": run("plain", 0, 0.30, 0.70, 0.60, 3.0), "b": run("randomise", 1, 0.50, 0.70, 0.60, 1.0),
                       "c": run("randomise", 2, 0.10, 0.90, None, 1.0)}}  # no insert matched: left out of the means
    t = transfer_gap_table(record)
    assert list(t.index) == ["plain synthetic, seed 0", "randomised synthetic, seed 1", "randomised synthetic, seed 2"]
    assert t.loc["plain synthetic, seed 0", "area ratio, real inserts"] == "3.00"
    assert t.loc["randomised synthetic, seed 2", "validation, matched lesions"] == "—"
    f = transfer_gap_facts(record)
    # all 0.70, matched 0.60, real 0.40: the lesions explain 0.10 of a 0.30 drop
    assert f["runs"] == 2 and f["gap"] == pytest.approx(0.30) and f["explained_by_lesions"] == pytest.approx(1 / 3)


def test_transfer_gap_of_the_committed_record():
    from ichseg.report.realanatomy import transfer_gap_facts, transfer_gap_table

    record = json.loads((ROOT / "bench" / "measured" / "transfer_gap.json").read_text())
    assert len(transfer_gap_table(record)) == len(record["runs"]) and transfer_gap_facts(record)["runs"] >= 1


def test_transfer_image_table_and_where_an_arm_leaves_more_unmarked():
    from ichseg.report.realanatomy import transfer_image_table, unmarked_shifts

    def row(image, subtype, dice, missed):
        return {"image": image, "subtype": subtype, "dice": dice, "area_ratio": 1.0, "missed": missed, "inserts": 8}

    record = {"by_image": {
        "randomise": [row("J2K_pixelrep_mismatch.dcm", "epidural", 0.35, 0.125), row("693_UNCR.dcm", "subdural", 0.4, 0.0)],
        "randomise_band": [row("J2K_pixelrep_mismatch.dcm", "epidural", 0.07, 0.75), row("693_UNCR.dcm", "subdural", 0.4, 0.125)]}}
    t = transfer_image_table(record)
    assert t.loc[("skull base", "epidural"), ("randomised + skull-base band", "unmarked (%)")] == "75"
    assert t.loc[("supratentorial", "subdural"), ("randomised synthetic", "Dice")] == "0.40"
    # 0.625 more unmarked is a shift; 0.125 is below the 0.25 default
    assert unmarked_shifts(record, "randomise_band", "randomise") == [
        {"image": "skull base", "subtype": "epidural", "arm": 0.75, "against": 0.125}]
    assert unmarked_shifts(record, "randomise", "randomise_band") == []


def test_transfer_round2_table_shows_round4s_unmarked_term_on_the_means():
    from ichseg.report.realanatomy import UNMARKED, transfer_round2_table

    run = {"val_plain": {"lesion_slice_dice": 0.6}, "val_own": {"lesion_slice_dice": 0.6},
           "real_slices": {"lesion_slice_dice": 0.3, "per_subtype": {}, "negative_pred_mm2_mean": 0.0}}
    record = {"chosen": "randomise_band", "runs": {"randomise_band": {"0": run}},
              "means": {"randomise_band": {"val_plain_dice": 0.6, "real_dice": 0.3, "untouched_mm2": 0.0, "unmarked_max": 0.75}}}
    t = transfer_round2_table(record)
    assert t.loc["randomised + skull-base band, mean (chosen)", UNMARKED] == "75"
    assert t.loc["randomised + skull-base band, seed 0", UNMARKED] == "—"


def test_challenger_outcome_names_the_kept_recipe_and_the_challengers_means():
    from ichseg.report.realanatomy import challenger_outcome

    means = {"randomise_band": {"val_plain_dice": 0.65, "real_dice": 0.29},
             "randomise_band_long": {"val_plain_dice": 0.70, "real_dice": 0.40}}
    kept = challenger_outcome({"means": means, "chosen": "randomise_band"}, 6)
    assert kept.startswith("By round 6's rule, **randomised + skull-base band** stays")
    assert "6,000 iterations scores 0.70 on plain validation and 0.40 on the real slices, against 0.65 and 0.29" in kept
    taken = challenger_outcome({"means": means, "chosen": "randomise_band_long"}, 6)
    assert "**randomised + skull-base band, 6,000 iterations** replaces the shipped recipe" in taken


def test_retrained_sentence_says_whether_the_runs_came_back_the_same():
    from ichseg.report.realanatomy import retrained_sentence

    assert retrained_sentence({}) == ""
    rec = {"retrained": {"from_record": "r5.json", "arm": "randomise_band",
                         "seeds": {"0": {"same_run_hash": True, "val_own_shift": 0.0, "val_plain_shift": 0.004},
                                   "1": {"same_run_hash": True, "val_own_shift": 0.001}}}}
    s = retrained_sentence(rec)
    assert "seeds 0, 1): the same run hashes as in `r5.json`" in s and "within 0.004" in s
    rec["retrained"]["seeds"]["1"]["same_run_hash"] = False
    assert "different run hashes" in retrained_sentence(rec)

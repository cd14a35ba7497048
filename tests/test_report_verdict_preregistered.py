"""The book's verdict of a pre-registered pass: exactly the plan's family, both primary metrics,
Holm's correction, convergence at the plan's threshold — on a synthetic study whose model
qualities are known; and the profile the book's first pages answer with."""

from __future__ import annotations

import json
import math
import re
import shutil

import numpy as np
import pytest
import yaml
from _study_helpers import write_study

from ichseg import report
from ichseg.report.claims import SUPPORTS, UNDECIDED, convergence_at_threshold
from ichseg.report.preregistration import FILE
from ichseg.report.stats import holm
from ichseg.utils.layout import RUN_INFO
from ichseg.report.deviations import progress
from ichseg.report.verdict import claim_verdicts, headline_profile, progress_markdown, verdict_markdown
from ichseg.report.verdict_plan import NOT_RUN, threshold_ordering, volume_scores

METHODS, SEEDS, DATASETS = ("medsegdiffv2", "resnet18", "full", "nnunet"), (0, 1, 2), ("instance2022", "bhsd")
from conftest import PLAN_COMMIT as COMMIT, PLAN_THRESHOLD as THRESHOLD  # noqa: E402


def _study(root, plan=None, seeds=SEEDS):
    """A consistent study (full 0.7 > resnet18 0.6 > MedSegDiff-v2 0.4 in quality); nnU-Net's test
    scores are the full model's, slice for slice: a level pair. ``plan``: written beside it."""
    write_study(root, methods=METHODS, seeds=seeds, datasets=DATASETS, profile=root.name)
    for s in seeds:
        for ds in DATASETS:
            own = root / "eval" / f"full-s{s}" / ds / "slices.csv"
            shutil.copy(own, root / "eval" / f"nnunet-s{s}" / ds / "slices.csv")
    if plan is not None:
        (root / FILE).write_text(yaml.safe_dump(plan, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def evidence(tmp_path_factory, plan):
    root = _study(tmp_path_factory.mktemp("results") / "evidence", plan)
    study = report.load_study(root)
    tables = report.slices_table(study), report.curves_table(study)
    return root, tables, claim_verdicts(*tables, plan=plan, n_boot=2000).set_index("id")


def test_rows_are_exactly_the_plans_claims(evidence, plan):
    _, _, v = evidence
    assert list(v.index) == [c["id"] for c in plan["comparisons"]] + ["convergence"]
    ran = {"table2:full", "full-vs-medsegdiffv2", "full-vs-nnunet", "cross:bhsd"}
    assert set(v.index[v["verdict"] != NOT_RUN]) == ran | {"convergence"}
    # what the results lack is shown, not dropped: methods not trained, a test set not evaluated
    assert v.loc["table2:cross_attention", "verdict"] == NOT_RUN and v.loc["cross:physionet", "verdict"] == NOT_RUN
    sdd = {c["id"]: c["smallest_detectable_points"] for c in plan["comparisons"]}
    assert v.loc["full-vs-medsegdiffv2", "smallest detectable (points)"] == sdd["full-vs-medsegdiffv2"]
    assert v.loc["full-vs-medsegdiffv2", "smallest that matters (points)"] == pytest.approx(2.0)


def test_known_gain_and_level_pair(evidence):
    _, _, v = evidence
    gain = v.loc["full-vs-medsegdiffv2"]
    assert gain["tested"] == "gain" and gain["verdict"] == SUPPORTS
    assert gain["verdict: lesion-slice Dice"] == gain["verdict: per-volume 3D Dice"] == SUPPORTS
    assert re.match(r"\+\d+\.\d \[\+\d+\.\d, \+\d+\.\d\], Holm p 0\.\d{3}", gain["ours: per-volume 3D Dice"])
    # the paper: -0.13 points, below the smallest difference that matters. Same test scores, but the
    # seeds are drawn apart for each model: the interval is wider than +-2 points, so the rule
    # cannot call the pair level (it would with a narrower interval; it never contradicts here)
    level = v.loc["full-vs-nnunet"]
    assert level["tested"] == "no difference" and level["verdict"] == UNDECIDED
    cell = re.match(r"\+0\.0 \[([-+.\d]+), ([-+.\d]+)\]", level["ours: lesion-slice Dice"])
    lo, hi = (float(x) for x in cell.groups())
    assert lo < 0 < hi and max(-lo, hi) > 2.0


def test_holm_adjusts_across_the_whole_family(evidence, plan):
    _, _, v = evidence
    comps = v.drop(index="convergence")
    for label in ("lesion-slice Dice", "per-volume 3D Dice"):
        raw = comps[f"p: {label}"].to_numpy(float)
        assert np.isnan(raw).sum() == len(plan["comparisons"]) - 4  # not run, yet in the family
        adjusted, _ = holm(raw)
        np.testing.assert_allclose(comps[f"Holm p: {label}"].to_numpy(float), adjusted)
        ran = ~np.isnan(raw)
        assert (adjusted[ran] >= raw[ran]).all() and (adjusted[ran] > raw[ran]).any()
    # the ResNet18 -> full step: below 0.05 on its own, not once corrected for the family of 11
    step = v.loc["table2:full"]
    assert step["p: lesion-slice Dice"] < 0.05 < step["Holm p: lesion-slice Dice"]
    assert step["verdict"] == UNDECIDED and step["ours: lesion-slice Dice"].startswith("+")


def test_convergence_is_read_at_the_plans_threshold(evidence):
    _, (_, curves), v = evidence
    table = convergence_at_threshold(curves, THRESHOLD)
    its = lambda m: table.loc[table["method"] == m, "iterations"].tolist()  # noqa: E731
    fmt = lambda xs: ", ".join("never" if math.isnan(x) else f"{x:.0f}" for x in xs)  # noqa: E731
    row = v.loc["convergence"]
    expected = f"iterations to {THRESHOLD:g}: full {fmt(its('full'))}; baseline {fmt(its('medsegdiffv2'))}"
    assert row["ours: lesion-slice Dice"] == expected
    assert row["verdict"] == threshold_ordering(its("full"), its("medsegdiffv2"))
    assert threshold_ordering([500, 750], [math.nan]) == SUPPORTS  # never reaching it ranks last
    assert threshold_ordering([math.nan], [math.nan]) == "cannot decide"
    assert threshold_ordering([math.nan, 250], [500]) == "cannot decide"


def test_paragraph_names_the_plan_and_counts_its_claims(evidence, plan):
    root, _, v = evidence
    text = verdict_markdown(root)
    assert "**Verdict of the `evidence` profile**, pre-registered (commit `abc123def4`)" in text
    n = len(plan["comparisons"]) + 1
    assert f"Of the {n} pre-registered claims ({n - 1} comparisons and convergence)" in text
    counts = re.search(r"support \*\*(\d+)\*\*, contradict \*\*(\d+)\*\* and cannot decide \*\*(\d+)\*\*; "
                       r"\*\*(\d+)\*\* not run", text).groups()
    assert sum(map(int, counts)) == n and int(counts[3]) == (v["verdict"] == NOT_RUN).sum()
    assert "paper's" not in text.split("\n\n")[0]  # not the unregistered claim list


def test_volume_scores_rebuild_the_evaluations_3d_dice(evidence):
    """Pooled over all volumes, the rebuilt per-volume Dice is exactly metrics.json's volume_dice."""
    root, (slices, _), _ = evidence
    evals = report.evaluation_table(report.load_study(root)).set_index(["method", "seed", "dataset"])
    own = slices[slices["method"] != "nnunet"]  # nnU-Net's slices.csv is the full model's (see _study)
    pooled = volume_scores(own, lesion_only=False).groupby(["method", "seed", "dataset"])["volume_dice"].mean()
    np.testing.assert_allclose(pooled.to_numpy(), evals.loc[pooled.index, "volume_dice"].to_numpy(), atol=1e-9)
    lesion = volume_scores(slices)
    assert len(lesion) == len(METHODS) * len(SEEDS) * len(DATASETS) * 4  # 4 volumes, each with a lesion


def test_a_profile_without_plan_keeps_the_old_verdict(tmp_path):
    root = _study(tmp_path / "cpu", seeds=(0,))
    text = verdict_markdown(root)
    assert text.startswith("**Verdict of the `cpu` profile** (") and "Of the paper's" in text
    assert "pre-registered" not in text
    # one seed: no interval is shown
    assert "±" not in text and "(1 seed)" in text


def test_headline_profile_prefers_a_consistent_preregistered_evidence_pass(tmp_path, plan):
    root = tmp_path / "results"
    _study(root / "cpu", seeds=(0,))
    assert headline_profile(root) == "cpu"  # no evidence pass
    _study(root / "evidence", seeds=(0,))
    assert headline_profile(root) == "cpu"  # consistent, but not pre-registered
    (root / "evidence" / FILE).write_text(yaml.safe_dump(plan))
    assert headline_profile(root) == "evidence"
    study = root / "evidence" / "study.json"
    study.write_text(study.read_text().replace('"seeds": [0]', '"seeds": [0, 1]'))  # stale: stamp no longer matches
    assert headline_profile(root) == "cpu"


def test_a_pass_under_way_says_how_far_it_has_come(tmp_path):
    """Planned runs count as trained only when complete with the planned config hash, and as
    evaluated only with a test metric on every planned test set; the line goes once the pass answers."""
    root = tmp_path / "results"
    _study(root / "cpu", seeds=(0,))
    ev = root / "evidence"
    write_study(ev, methods=("medsegdiffv2", "full"), seeds=(0, 1), datasets=DATASETS, profile="evidence")
    hashes = {(m, s): json.loads((ev / "runs" / f"{m}-s{s}" / RUN_INFO).read_text())["run_hash"]
              for m in ("medsegdiffv2", "full") for s in (0, 1)}
    plan = {"runs": [{"method": m, "seed": s, "config_hash": h} for (m, s), h in hashes.items()],
            "seeds": {"medsegdiffv2": [0, 1], "full": [0, 1]}, "test_datasets": list(DATASETS)}
    (ev / FILE).write_text(yaml.safe_dump(plan))
    assert progress(ev) == {"runs": 4, "trained": 4, "evaluated": 4}
    assert headline_profile(root) == "evidence" and progress_markdown(root) == ""

    plan["runs"].append({"method": "full", "seed": 2, "config_hash": "not-yet-trained"})
    plan["seeds"]["full"].append(2)
    plan["runs"][1]["config_hash"] = "another-config"  # medsegdiffv2 seed 1 trained with another config
    (ev / FILE).write_text(yaml.safe_dump(plan))
    (ev / "eval" / "full-s1" / DATASETS[1] / "metrics.json").unlink()  # evaluated on one test set only
    (ev / "study.json").unlink()  # the driver writes it when the whole pass is done
    assert progress(ev) == {"runs": 5, "trained": 3, "evaluated": 2}
    assert headline_profile(root) == "cpu"
    assert progress_markdown(root) == ("**The pre-registered `evidence` pass is under way:** 3 of its 5 training runs "
                                       "and 2 of their test evaluations are committed. Until it is complete the answer "
                                       "here comes from the `cpu` runs, which were not pre-registered.")
    assert progress(root / "cpu") is None and progress_markdown(root, preferred="cpu") == ""

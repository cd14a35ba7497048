"""The verdict the book opens with, the comparability sentence every page uses, and the cell
formatting of the report's tables."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _study_helpers import write_study

from ichseg import report
from ichseg.report.scale import comparability, scale_facts
from ichseg.report.stats import mean_ci
from ichseg.report.verdict import claim_counts, claim_verdicts, verdict_markdown, verdicts_shown

CPU = Path(__file__).resolve().parents[1] / "results" / "cpu"


def _facts(**kw):
    base = {"profile": "x", "real_data": True, "size": 256, "iterations": [115_000], "pretrained": "imagenet",
            "amp": "bf16", "patients": None}
    return {**base, **kw}


def test_comparability_names_every_departure_and_only_those():
    assert "comparable to the paper's" in comparability(_facts()) and "departs" not in comparability(_facts())
    text = comparability(_facts(real_data=False, size=128, iterations=[1500, 3000], pretrained="none"))
    for part in ("synthetic head CT", "128² slices instead of 256²", "1,500–3,000 iterations", "without ImageNet"):
        assert part in text
    assert "not comparable" in text
    real_short = comparability(_facts(iterations=[6000]))
    assert "6,000 iterations" in real_short and "synthetic" not in real_short and "not comparable" not in real_short
    objective = comparability(_facts(prediction="x0", alpha=1.0))
    assert "x0-prediction with the anchor loss weighted α = 1 instead of ε-prediction with α = 5" in objective
    assert "ε-prediction" not in comparability(_facts(prediction="eps", alpha=5.0))


def test_format_value_reads_like_a_table_for_people():
    f = report.format_value
    assert (f(True), f(np.bool_(False)), f(float("nan")), f(None)) == ("✓", "✗", "–", "–")
    assert f(500.0) == "500.0" and f(500.0, whole=True) == "500" and f(1549.451) == "1,549.5"
    assert f(0.1234, percent=True) == "12.3" and f(3) == "3"
    table = report.display_table(pd.DataFrame({"ok": [True, False], "final": [0.5, math.nan], "n": [1500.0, 2.5],
                                               "iterations": [500.0, math.nan], "pct": [80.0, 79.84]}),
                                 percent=lambda c: c == "final")
    # a column of whole numbers reads as integers; a column with fractions keeps one decimal throughout
    assert table.to_dict("list") == {"ok": ["✓", "✗"], "final": ["50.0", "–"], "n": ["1,500.0", "2.5"],
                                     "iterations": ["500", "–"], "pct": ["80.0", "79.8"]}


def test_verdict_counts_every_claim_once(tmp_path):
    root = tmp_path / "cpu"
    write_study(root, methods=("medsegdiffv2", "cross_attention", "full"), seeds=(0, 1, 2), profile="cpu")
    study = report.load_study(root)
    verdicts = claim_verdicts(report.slices_table(study), report.curves_table(study), n_boot=200)
    for score in ("lesion-slice Dice", "paper-protocol Dice"):
        counts = claim_counts(verdicts, score)
        ran = verdicts[f"verdict: {score}"].isin(["supports", "contradicts", "cannot decide"]).sum()
        assert sum(counts.values()) == ran > 0
    text = verdict_markdown(root)
    assert f"Of the paper's {len(verdicts)} claims checked" in text
    assert "not comparable" in text  # the synthetic study's comparability sentence closes the verdict


def test_verdict_of_a_stale_profile_says_so(tmp_path):
    root = tmp_path / "cpu"
    write_study(root, profile="cpu")
    (root / "study.json").write_text((root / "study.json").read_text().replace('"cpu"', '"gpu"'))
    assert verdict_markdown(root).startswith("**No verdict:**")


@pytest.mark.skipif(not (CPU / "study.json").is_file(), reason="no committed cpu profile")
def test_committed_verdict_matches_the_committed_metrics():
    """The sentence the intro opens with, checked against the metrics.json files it comes from."""
    text = verdict_markdown(CPU)
    study = json.loads((CPU / "study.json").read_text())
    for method, name in (("full", "full model's"), ("medsegdiffv2", "MedSegDiffv2's")):
        values = [json.loads((CPU / r["eval_dir"] / "instance2022" / "metrics.json").read_text())["strict"]["positive_slice_dice"]
                  for r in study["runs"] if r.get("method", r.get("variant")) == method]
        m, h, n = mean_ci(values)
        assert f"{name} lesion-slice Dice is **{100 * m:.1f} ± {100 * h:.1f}% ({n} seeds)**" in text or \
            f"and {name} **{100 * m:.1f} ± {100 * h:.1f}% ({n} seeds)**" in text
    counts = [int(x) for x in re.findall(r"supports \*\*(\d+)\*\*, contradicts \*\*(\d+)\*\* and cannot decide \*\*(\d+)\*\*",
                                         text)[0]]
    total = int(re.search(r"Of the paper's (\d+) claims", text).group(1))
    assert sum(counts) <= total and total >= 8
    assert f"CT at {scale_facts('cpu', report.load_study(CPU))['size']}²" in text


def test_the_verdict_table_shows_the_verdicts_first_and_no_raw_p_values():
    verdicts = pd.DataFrame([{"id": "a", "claim": "(a) ablation", "comparison": "x vs y", "paper": "+7 points",
                              "ours: lesion-slice Dice": "+1.0 [-1, +3]", "p: lesion-slice Dice": 0.2,
                              "Holm p: lesion-slice Dice": 0.6, "verdict: lesion-slice Dice": "cannot decide",
                              "verdict": "cannot decide"}])
    shown = verdicts_shown(verdicts)
    assert list(shown.index.names) == ["claim", "comparison"]
    assert list(shown.columns) == ["verdict: lesion-slice Dice", "verdict", "paper", "ours: lesion-slice Dice"]

"""What the smoke study measured, checked after `make book` ran it (marker ``study``).

The smoke budget is tiny (a few hundred iterations at 64² on a CPU), so the claims are modest, but
they must fail when a method learned nothing. On the *held-out* Instance2022 test patients, every
trained model of Table 1

(a) overlaps the lesions better than chance *inside the head*: its lesion-slice Dice beats the
    same number of predicted pixels placed at random within the head
    (``ichseg.metrics.chance_dice_in_head``; over the whole slice most random pixels would fall in
    the air, which makes chance too easy to beat), and
(b) beats an all-empty prediction under the paper protocol, which scores about the share of empty
    slices (an empty/empty slice counts as a perfect one there).

Both references are written by the evaluation into the same ``metrics.json`` as the model's own
numbers (``strict.chance_positive_slice_dice_in_head``, ``paper.all_empty_dice``).
``outcome_problems`` holds the checks; the study test runs them on ``results/smoke``, the unit
tests on evaluations fabricated with ``write_evaluation``, where a model that learned nothing must
be rejected.

The study tests need the smoke results (`make book`); `make test` runs them after the book build
with ICHSEG_REQUIRE_BOOK=1, so missing results fail instead of skipping.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _study_helpers import synthetic_split, write_eval

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "results" / "smoke" / "eval"
REQUIRED = os.environ.get("ICHSEG_REQUIRE_BOOK") == "1"
TABLE1_METHODS = ("medsegdiffv2", "full", "unet", "transunet", "ukan", "nnunet")
# The full model's lesion-slice Dice must clear its in-head chance level by this margin, paired
# slice by slice; asserted well below what the smoke configuration reaches so that thread-count /
# BLAS differences between machines do not flip it.
MIN_MARGIN = 0.05


def outcome_problems(eval_root: Path, methods=TABLE1_METHODS, dataset: str = "instance2022", seed: int = 0) -> list[str]:
    """Why the evaluations under ``eval_root/<method>-s<seed>/<dataset>/`` do not show that every
    method learned something (empty list: they do). See the module docstring for (a) and (b)."""
    problems = []
    for method in methods:
        path = Path(eval_root) / f"{method}-s{seed}" / dataset / "metrics.json"
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        m = json.loads(path.read_text())
        if m.get("split") != "test":
            problems.append(f"{method}: evaluated on split {m.get('split')!r}, not the held-out test split")
        strict, paper = m.get("strict", {}), m.get("paper", {})
        dice, chance = strict.get("positive_slice_dice"), strict.get("chance_positive_slice_dice_in_head")
        if dice is None or chance is None or not dice > chance:
            problems.append(f"{method}: lesion-slice Dice {dice} does not beat its chance level inside the head {chance}")
        ours, empty = paper.get("dice"), paper.get("all_empty_dice")
        if ours is None or empty is None or not ours > empty:
            problems.append(f"{method}: paper-protocol Dice {ours} does not beat an all-empty prediction's {empty}")
    return problems


# -- the checks themselves, on fabricated evaluations (no study needed) ----------------------------
def _fabricate(root: Path, predictions: dict[str, np.ndarray]) -> Path:
    for method, prob in predictions.items():
        write_eval(root / f"{method}-s0" / "instance2022", method, "instance2022", "h", prob=prob)
    return root


def test_outcome_checks_accept_a_model_that_found_the_lesions(tmp_path):
    _, masks, _ = synthetic_split()
    assert outcome_problems(_fabricate(tmp_path, {"full": masks * 0.9}), methods=["full"]) == []


def test_outcome_checks_reject_models_that_learned_nothing(tmp_path):
    _, masks, _ = synthetic_split()
    n, size = masks.shape[0], masks.shape[-1]
    # lesion-sized blobs in the wrong place (the amount learned, not the location)
    misplaced = np.roll(masks, size // 3, axis=2) * 0.9
    # a faint, uniform output (an untrained sigmoid): every pixel below 0.5, max-normalised to 1
    flat = np.full_like(masks, 0.3)
    root = _fabricate(tmp_path, {"empty": np.zeros_like(masks), "misplaced": misplaced, "flat": flat,
                                 "full": masks * 0.9})
    problems = outcome_problems(root, methods=["empty", "misplaced", "flat", "full"])
    text = "\n".join(problems)
    for method in ("empty", "misplaced", "flat"):
        assert f"{method}: lesion-slice Dice" in text, method
    # an all-empty prediction ties with itself, and a uniform map is a full false positive everywhere
    assert "empty: paper-protocol Dice" in text and "flat: paper-protocol Dice" in text
    assert "full:" not in text
    assert any("missing" in p for p in outcome_problems(root, methods=["nnunet"]))
    m = json.loads((root / "empty-s0" / "instance2022" / "metrics.json").read_text())
    assert m["paper"]["dice"] == pytest.approx(m["paper"]["all_empty_dice"])
    assert m["paper"]["all_empty_dice"] == pytest.approx(0.5, abs=1e-3)  # half the slices are empty
    assert n == m["n_slices"]


def test_the_in_head_chance_level_is_stricter_than_over_the_slice(tmp_path):
    _, masks, _ = synthetic_split()
    m = write_eval(tmp_path, "full", "instance2022", "h", quality=0.6)
    slices = pd.read_csv(tmp_path / "slices.csv")
    lesion = slices[slices["gt_pixels"] > 0]
    assert (slices["head_pixels"] < masks[0].size).all() and (slices["head_pixels"] > 0).all()
    assert (lesion["chance_dice_in_head"] > lesion["chance_dice"]).all()
    assert m["strict"]["chance_positive_slice_dice_in_head"] == pytest.approx(lesion["chance_dice_in_head"].mean())


# -- the smoke study -------------------------------------------------------------------------------
def _eval_dir(method: str, dataset: str) -> Path:
    path = EVAL / f"{method}-s0" / dataset
    if not (path / "metrics.json").is_file():
        if REQUIRED:
            pytest.fail(f"{path}: no smoke evaluation; run `make book` first")
        pytest.skip(f"{path}: no smoke evaluation (run `make book`)")
    return path


# Measured on the synthetic head CT at the smoke budget (smoke.yaml: a few hundred iterations at 64²,
# one core per method): the models listed
# here do not yet beat an all-empty prediction under the paper protocol or their in-head chance
# level, for the reason given (the results page shows both references beside every model).
# Strict: the day one of them learns enough, its case passes, the run fails, and its entry must go.
SMOKE_SHORTFALLS: dict[str, str] = {}  # none: each smoke budget is sized to beat both (smoke.yaml)


@pytest.mark.study
@pytest.mark.parametrize("method", [
    pytest.param(m, marks=pytest.mark.xfail(strict=True, reason=SMOKE_SHORTFALLS[m])) if m in SMOKE_SHORTFALLS else m
    for m in TABLE1_METHODS])
def test_table1_model_beats_chance_in_the_head_and_an_empty_prediction(method):
    _eval_dir(method, "instance2022")
    problems = outcome_problems(EVAL, methods=[method])
    assert not problems, "\n".join(problems)


def _full_model_lesion_slices() -> tuple[dict, pd.DataFrame]:
    path = _eval_dir("full", "instance2022")
    slices = pd.read_csv(path / "slices.csv")
    return json.loads((path / "metrics.json").read_text()), slices[slices["gt_pixels"] > 0]


@pytest.mark.study
def test_full_model_summary_is_its_held_out_lesion_slices():
    metrics, lesion = _full_model_lesion_slices()
    assert metrics["split"] == "test"  # held-out patients, never trained on
    assert len(lesion) >= 10, "too few held-out lesion slices for a measured claim"
    # the summary carries the same numbers the report shows
    assert metrics["strict"]["positive_slice_dice"] == pytest.approx(lesion["strict_dice"].mean())
    assert metrics["strict"]["chance_positive_slice_dice"] == pytest.approx(lesion["chance_dice"].mean())
    assert metrics["strict"]["chance_positive_slice_dice_in_head"] == pytest.approx(lesion["chance_dice_in_head"].mean())


@pytest.mark.study
def test_full_model_beats_chance_on_held_out_lesion_slices():
    _, lesion = _full_model_lesion_slices()
    gain = lesion["strict_dice"].to_numpy() - lesion["chance_dice_in_head"].to_numpy()
    mean, sem = float(gain.mean()), float(gain.std(ddof=1) / math.sqrt(len(gain)))
    print(f"full model, held-out lesion slices: Dice {lesion['strict_dice'].mean():.4f}, chance in the head "
          f"{lesion['chance_dice_in_head'].mean():.4f}, gain {mean:.4f} ± {sem:.4f} (SEM, n={len(gain)})")
    assert mean >= MIN_MARGIN, f"Dice only {mean:.4f} above chance (want >= {MIN_MARGIN})"
    assert mean - 2 * sem > 0, "the gain over chance is not distinguishable from noise"


@pytest.mark.study
@pytest.mark.parametrize("method", TABLE1_METHODS)
def test_every_table1_model_was_scored_by_both_protocols_on_the_same_slices(method):
    reference = pd.read_csv(_eval_dir("full", "instance2022") / "slices.csv")
    for dataset in ("instance2022", "bhsd", "physionet"):
        path = _eval_dir(method, dataset)
        metrics = json.loads((path / "metrics.json").read_text())
        assert {"dice", "iou", "all_empty_dice"} <= set(metrics["paper"]) and "positive_slice_dice" in metrics["strict"]
        assert 0.0 <= metrics["paper"]["dice"] <= 1.0
        if dataset == "instance2022":
            slices = pd.read_csv(path / "slices.csv")
            key = ["volume", "slice_index"]
            assert slices[key].equals(reference[key]), f"{method} was scored on other slices than the full model"
            assert np.isfinite(slices["paper_dice"]).all()
            assert slices["head_pixels"].equals(reference["head_pixels"])  # the head mask depends on the image only

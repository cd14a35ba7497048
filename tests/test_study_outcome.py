"""What the smoke study measured, checked after `make book` ran it (marker ``study``).

The smoke budget is tiny (300 iterations at 64² on a CPU), so the claim is modest and measured:
the full model's masks on *held-out* phantom slices (the Instance2022 test patients) overlap the
lesions better than chance — better than the same number of predicted pixels placed at random
(``ichseg.metrics.chance_dice``) — by a margin, on the lesion slices, paired slice by slice.

Needs the smoke results (`make book`); `make test` runs this after the book build with
ICHSEG_REQUIRE_BOOK=1, so missing results fail instead of skipping.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.study

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "results" / "smoke" / "eval"
REQUIRED = os.environ.get("ICHSEG_REQUIRE_BOOK") == "1"
# Measured on the smoke configuration (2-core CPU, 27 held-out lesion slices): lesion-slice Dice
# 0.169 against a chance level of 0.007, a gain of 0.162 ± 0.055 (SEM). Asserted well below the
# measured value so that thread-count / BLAS differences between machines do not flip it.
MIN_MARGIN = 0.05


def _eval_dir(method: str, dataset: str) -> Path:
    path = EVAL / f"{method}-s0" / dataset
    if not (path / "metrics.json").is_file():
        if REQUIRED:
            pytest.fail(f"{path}: no smoke evaluation; run `make book` first")
        pytest.skip(f"{path}: no smoke evaluation (run `make book`)")
    return path


def test_full_model_beats_chance_on_held_out_lesion_slices():
    path = _eval_dir("full", "instance2022")
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["split"] == "test"  # held-out patients, never trained on
    slices = pd.read_csv(path / "slices.csv")
    lesion = slices[slices["gt_pixels"] > 0]
    assert len(lesion) >= 10, "too few held-out lesion slices for a measured claim"
    gain = lesion["strict_dice"].to_numpy() - lesion["chance_dice"].to_numpy()
    mean, sem = float(gain.mean()), float(gain.std(ddof=1) / math.sqrt(len(gain)))
    print(f"full model, held-out lesion slices: Dice {lesion['strict_dice'].mean():.4f}, chance "
          f"{lesion['chance_dice'].mean():.4f}, gain {mean:.4f} ± {sem:.4f} (SEM, n={len(gain)})")
    assert mean >= MIN_MARGIN, f"Dice only {mean:.4f} above chance (want >= {MIN_MARGIN})"
    assert mean - 2 * sem > 0, "the gain over chance is not distinguishable from noise"
    # the summary carries the same numbers the report shows
    assert metrics["strict"]["positive_slice_dice"] == pytest.approx(lesion["strict_dice"].mean())
    assert metrics["strict"]["chance_positive_slice_dice"] == pytest.approx(lesion["chance_dice"].mean())


@pytest.mark.parametrize("method", ["medsegdiffv2", "full", "unet", "transunet", "ukan", "nnunet"])
def test_every_table1_model_was_scored_by_both_protocols_on_the_same_slices(method):
    reference = pd.read_csv(_eval_dir("full", "instance2022") / "slices.csv")
    for dataset in ("instance2022", "bhsd", "physionet"):
        path = _eval_dir(method, dataset)
        metrics = json.loads((path / "metrics.json").read_text())
        assert {"dice", "iou"} <= set(metrics["paper"]) and "positive_slice_dice" in metrics["strict"]
        assert 0.0 <= metrics["paper"]["dice"] <= 1.0
        if dataset == "instance2022":
            slices = pd.read_csv(path / "slices.csv")
            key = ["volume", "slice_index"]
            assert slices[key].equals(reference[key]), f"{method} was scored on other slices than the full model"
            assert np.isfinite(slices["paper_dice"]).all()

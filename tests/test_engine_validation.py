"""Validation scores measure what the test reports: the paper protocol on the profile's output path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ichseg.engine.config import TrainConfig, resolve_run_config
from ichseg.engine.objectives import DirectObjective, ValidationMaps, validation_scores
from ichseg.errors import ConfigError
from ichseg.metrics import paper_protocol


class ConstantLogits(nn.Module):
    """A 'segmenter' whose logit is `background` everywhere and `lesion` inside a fixed square."""

    def __init__(self, background: float, lesion: float | None = None):
        super().__init__()
        self.background, self.lesion = background, lesion
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, img):
        out = torch.full((img.shape[0], 1, *img.shape[2:]), self.background) + 0 * self.dummy
        if self.lesion is not None:
            out[:, :, 4:8, 4:8] = self.lesion
        return out


def _objective(fusion: str, output: str = "probability") -> DirectObjective:
    cfg = resolve_run_config("smoke", "unet", [f"evaluate.paper_fusion={fusion}", f"evaluate.direct_output={output}"])
    return DirectObjective(cfg, torch.device("cpu"))


def test_a_faint_background_is_clean_on_the_output_path_as_at_test_time():
    """sigmoid(-9) ≈ 1.2e-4 everywhere: below the 8-bit image's half step, so the released output
    path writes an all-zero image and eval_seg scores the lesion-free slice 1.0. Divided by its own
    maximum, the raw probability would instead be a full false positive (Dice ≈ 0)."""
    images, masks = torch.zeros(3, 1, 16, 16), torch.zeros(3, 1, 16, 16)
    obj, tcfg = _objective("medsegdiff"), TrainConfig()
    maps = obj.predict(ConstantLogits(-9.0), images, tcfg, torch.device("cpu"))
    assert float(maps.prob.max()) == pytest.approx(1 / (1 + np.exp(9.0)), rel=1e-4)
    assert validation_scores(maps, masks)["dice"] == pytest.approx(1.0, abs=1e-6)
    assert paper_protocol(maps.prob.numpy(), masks[:, 0].numpy())["dice"] < 0.01  # the old (raw) reading
    # the fusion the profile names is the one scored: "mean" keeps the raw probability
    raw = _objective("mean").predict(ConstantLogits(-9.0), images, tcfg, torch.device("cpu"))
    assert validation_scores(raw, masks)["dice"] < 0.01


def test_a_baseline_is_validated_on_its_official_mask_by_default():
    """sigmoid(-2) ≈ 0.12 everywhere: above the 8-bit half step, so the soft map is a full false
    positive on the output path; the baseline's own prediction (probability above 0.5) is empty."""
    images, masks = torch.zeros(3, 1, 16, 16), torch.zeros(3, 1, 16, 16)
    cfg = resolve_run_config("smoke", "unet", [])
    assert cfg["evaluate"].get("direct_output", "mask") == "mask"
    official = DirectObjective(cfg, torch.device("cpu")).predict(ConstantLogits(-2.0), images, TrainConfig(),
                                                                 torch.device("cpu"))
    soft = _objective("medsegdiff").predict(ConstantLogits(-2.0), images, TrainConfig(), torch.device("cpu"))
    assert validation_scores(official, masks)["dice"] == pytest.approx(1.0)
    assert validation_scores(soft, masks)["dice"] < 0.01


def test_lesion_slices_are_scored_by_both_scores():
    images, masks = torch.zeros(2, 1, 16, 16), torch.zeros(2, 1, 16, 16)
    masks[0, 0, 4:8, 4:8] = 1.0  # one lesion slice, found exactly; one lesion-free slice
    maps = _objective("medsegdiff", "mask").predict(ConstantLogits(-9.0, lesion=9.0), images, TrainConfig(),
                                                    torch.device("cpu"))
    scores = validation_scores(maps, masks)
    assert scores["strict_dice"] == pytest.approx(1.0)
    # the lesion-free slice carries the predicted square: a full false positive on the paper path
    assert scores["dice"] == pytest.approx(0.5, abs=1e-3)


def test_validation_scores_take_maps_of_one_shape():
    maps = ValidationMaps(torch.zeros(2, 8, 8), np.zeros((2, 8, 8)))
    assert set(validation_scores(maps, torch.zeros(2, 1, 8, 8))) == {"dice", "iou", "strict_dice"}


def test_the_selection_score_is_a_named_choice():
    assert TrainConfig(select_on="strict_dice").select_on == "strict_dice"
    with pytest.raises(ConfigError, match="train.select_on"):
        TrainConfig(select_on="loss")

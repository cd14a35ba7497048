"""The baselines' model card (``ichseg.models.card.segmenter_row``): the parameter counts the book's
baselines page prints are those of the real networks, and its FLOPs those of a real forward
(to 0.1%)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ichseg.models import build_model
from ichseg.models.card import baseline_card, segmenter_row

SMALL = {
    "unet": {"base_channels": 4, "channel_mult": [1, 2, 4]},
    "transunet": {"base_channels": 4, "channel_mult": [4, 8, 16], "resnet_units": [1, 1, 1], "vit_hidden": 16,
                  "vit_layers": 1, "vit_heads": 2, "vit_mlp": 32},
    "ukan": {"base_channels": 4, "channel_mult": [1, 2, 8], "kan_embed_dims": [16, 32]},
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_segmenter_row_counts_the_real_network(name):
    model = build_model(name, image_size=32, **SMALL[name]).eval()
    x = torch.zeros(1, 1, 32, 32)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(x)
    row = segmenter_row(name, image_size=32, **SMALL[name])
    assert row["params_M"] * 1e6 == pytest.approx(sum(p.numel() for p in model.parameters()))
    # on `meta` one small op may decompose differently (TransUNet: one extra bmm of ~1e-3 of the total)
    assert row["forward_GFLOPs"] * 1e9 == pytest.approx(fc.get_total_flops(), rel=1e-3)
    assert row["method"] == name and row["image_size"] == 32


def test_baseline_card_lists_every_baseline_in_registry_order():
    rows = baseline_card(image_size=32, base_channels=4)
    assert [r["method"] for r in rows] == ["unet", "transunet", "ukan"]
    assert [r["table1_name"] for r in rows] == ["U-Net", "TransUNet", "U-KAN"]

"""2.5D input (``data.prep.context``) and the beyond-the-paper variant that uses it (``full_context1``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ichseg.data import PrepConfig, preprocess_volume
from ichseg.data.slices import with_context
from ichseg.engine.config import ALL_METHODS, resolve_run_config
from ichseg.errors import ConfigError


def test_off_keeps_every_prepared_folder_hash():
    # the hashes of these configs before the field existed: prepared folders and fingerprints hold
    assert PrepConfig().hash() == "6a455b1d47e9" and "context" not in PrepConfig().to_dict()
    assert PrepConfig(size=128, window="multi").hash() == "be8eb773b6e1"
    assert PrepConfig(context=1).hash() != PrepConfig().hash()
    with pytest.raises(ConfigError, match="^context: must be an integer in"):
        PrepConfig(context=-1)


def test_neighbours_follow_the_slice_and_repeat_at_the_ends():
    z = np.arange(4, dtype=np.float32).reshape(4, 1, 1, 1) * np.ones((1, 2, 3, 3), np.float32)  # 2 windows
    z[:, 1] += 100
    out = with_context(z, 1)
    assert out.shape == (4, 6, 3, 3)
    assert np.array_equal(out[:, :2], z)  # the slice's own windows first
    assert out[:, 2, 0, 0].tolist() == [0, 0, 1, 2]  # below (window 1), the first slice repeated
    assert out[:, 5, 0, 0].tolist() == [101, 102, 103, 103]  # above (window 2), the last slice repeated
    assert with_context(z, 0) is z


def test_prepared_volume_gets_the_neighbours_as_channels():
    from ichseg.data.phantom import DOMAINS, make_volume
    from ichseg.data.volumes import Volume

    v = make_volume(np.random.default_rng(0), DOMAINS["instance2022"], 32, 5, positive=False)
    vol = Volume(None, v.hu, v.affine, v.affine, v.hu.shape, np.array([[0, 1], [1, 1], [2, 1]], float), v.spacing)
    one, three = preprocess_volume(vol, PrepConfig(size=32)), preprocess_volume(vol, PrepConfig(size=32, context=1))
    assert three.shape == (5, 3, 32, 32) and PrepConfig(context=1).channels == 3
    assert np.array_equal(three[:, 0], one[:, 0])
    assert np.array_equal(three[1:, 1], one[:-1, 0]) and np.array_equal(three[:-1, 2], one[1:, 0])


def test_full_context1_is_the_full_network_on_three_slices():
    assert "full_context1" in ALL_METHODS
    ctx, full = resolve_run_config("smoke", "full_context1"), resolve_run_config("smoke", "full")
    assert ctx["data"]["prep"]["context"] == 1 and "context" not in (full["data"].get("prep") or {})
    assert {k: v for k, v in ctx["model"].items()} == {k: v for k, v in full["model"].items()}
    assert resolve_run_config("smoke", "full_context1", ["data.prep.context=2"])["data"]["prep"]["context"] == 2
    from ichseg.models import build_model

    size = ctx["model"]["image_size"]
    model = build_model("full_context1", **{**ctx["model"], "in_channels": 3, "pretrained": "none"}).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 1, size, size), torch.zeros(1, dtype=torch.long), torch.rand(1, 3, size, size))
        assert torch.isfinite(out.eps).all()
        with pytest.raises(ValueError, match="expected"):  # one slice does not fit a three-slice network
            model(torch.zeros(1, 1, size, size), torch.zeros(1, dtype=torch.long), torch.rand(1, 1, size, size))


def test_a_randomised_cohort_prepares_with_context_end_to_end(tmp_path):
    from ichseg.data import SliceDataset
    from ichseg.engine.data import ensure_prepared

    cfg = {"data": {"phantom": {"cases": 4, "in_plane": 32, "slices": 4, "randomise": {}},
                    "prep": {"size": 32, "context": 1, "negative_ratio": None}}}
    prepared = ensure_prepared(cfg, "instance2022", tmp_path)
    ds = SliceDataset(prepared, split="train")
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["mask"].shape == (1, 32, 32)
    one = ensure_prepared({"data": {**cfg["data"], "prep": {"size": 32, "negative_ratio": None}}}, "instance2022", tmp_path)
    assert one != prepared and SliceDataset(one, split="train")[0]["image"].shape == (1, 32, 32)

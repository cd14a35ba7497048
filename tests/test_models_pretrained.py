"""ResNet18 weights come from local disk only, and asking for them never silently random-inits."""

from __future__ import annotations

import pytest
import torch
import torchvision

from ichseg.errors import IchsegError
from ichseg.models import build_model
from ichseg.models.pretrained import RESNET18_FILE, hub_checkpoint_dir, sha256_prefix

from _model_helpers import TINY

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py

SMALL = {k: v for k, v in TINY.items() if k != "pretrained"}


@pytest.fixture(scope="module")
def saved_resnet(tmp_path_factory):
    """A (random) torchvision ResNet18 state dict saved under the ImageNet file's name."""
    torch.manual_seed(123)
    state = torchvision.models.resnet18().state_dict()
    path = tmp_path_factory.mktemp("weights") / RESNET18_FILE
    torch.save(state, path)
    return path, state


def _assert_loaded(model, state):
    cond = model.condition
    torch.testing.assert_close(cond.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    torch.testing.assert_close(cond.layer3[1].bn2.running_var, state["layer3.1.bn2.running_var"])
    if model.config.resnet_stem == "rgb":
        torch.testing.assert_close(cond.resnet_stem[0].weight, state["conv1.weight"])


@pytest.mark.parametrize("stem", ["rgb", "replace"])
def test_load_from_explicit_path(saved_resnet, stem):
    path, state = saved_resnet
    model = build_model("full", image_size=32, pretrained="imagenet", weights_path=str(path),
                        verify_weights=False, resnet_stem=stem, **SMALL)
    _assert_loaded(model, state)


def test_load_from_torch_hub_cache(saved_resnet, tmp_path, monkeypatch):
    path, state = saved_resnet
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    hub = hub_checkpoint_dir()
    assert hub == tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / RESNET18_FILE).write_bytes(path.read_bytes())
    model = build_model("resnet18", image_size=32, pretrained="imagenet", verify_weights=False, **SMALL)
    _assert_loaded(model, state)


def test_missing_hub_file_names_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(IchsegError) as err:
        build_model("full", image_size=32, pretrained="imagenet", **SMALL)
    msg = str(err.value)
    assert RESNET18_FILE in msg and str(tmp_path / "empty" / "hub" / "checkpoints") in msg
    assert "pretrained: none" in msg


def test_missing_explicit_file(tmp_path):
    with pytest.raises(IchsegError, match=RESNET18_FILE):
        build_model("full", image_size=32, pretrained="imagenet", weights_path=str(tmp_path / "nope.pth"), **SMALL)


def test_hash_check_rejects_a_file_that_is_not_the_imagenet_one(saved_resnet):
    path, _ = saved_resnet
    assert sha256_prefix(path) != "f37072fd"
    with pytest.raises(IchsegError, match="sha256"):
        build_model("full", image_size=32, pretrained="imagenet", weights_path=str(path), **SMALL)


def test_foreign_or_truncated_file_is_rejected(tmp_path):
    bad = tmp_path / RESNET18_FILE
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(IchsegError, match="cannot read"):
        build_model("full", image_size=32, pretrained="imagenet", weights_path=str(bad), verify_weights=False, **SMALL)
    other = tmp_path / "other.pth"
    torch.save({"conv1.weight": torch.zeros(3)}, other)
    with pytest.raises(IchsegError, match="does not match"):
        build_model("full", image_size=32, pretrained="imagenet", weights_path=str(other), verify_weights=False, **SMALL)


def test_weights_path_without_pretrained_is_rejected(saved_resnet):
    with pytest.raises(ValueError, match="weights_path"):
        build_model("full", image_size=32, pretrained="none", weights_path=str(saved_resnet[0]), **{
            k: v for k, v in SMALL.items()})


def test_pretrained_is_a_no_op_for_the_unet_branch(tmp_path, monkeypatch):
    """A profile-wide ``pretrained: imagenet`` also builds the U-Net rows (trained from scratch in
    the paper too) and reads no file for them."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    for name in ("medsegdiffv2", "cross_attention", "reduce_layer"):
        model = build_model(name, image_size=32, pretrained="imagenet", **SMALL)
        assert model.config.condition == "unet"

"""Checkpoints (``ichseg.engine.checkpoint``): atomic, tensor-only, and refused with one clear error
when truncated, foreign or carrying pickled objects."""

from __future__ import annotations

import pickle

import pytest
import torch

from ichseg.engine.checkpoint import load_checkpoint, save_checkpoint
from ichseg.errors import IchsegError


def test_checkpoint_round_trip_is_atomic_and_tensor_only(tmp_path):
    path = tmp_path / "ck" / "last.pt"
    state = {"model": {"w": torch.arange(3.0)}, "iteration": 7, "torch_rng": torch.get_rng_state(),
             "config": {"method": "full"}, "history": [{"iteration": 5, "dice": 0.5}]}
    save_checkpoint(path, state)
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary left behind
    back = load_checkpoint(path)
    assert back["iteration"] == 7 and back["config"] == {"method": "full"}
    assert torch.equal(back["model"]["w"], torch.arange(3.0))


class Payload:
    def __reduce__(self):  # what a malicious checkpoint would carry
        return (print, ("owned",))


def test_checkpoint_with_a_pickled_object_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": "ichseg-checkpoint-v1", "model": {}, "payload": Payload()}, path)
    with pytest.raises(IchsegError, match="evil.pt: refused"):
        load_checkpoint(path)
    assert "owned" not in capsys.readouterr().out
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(IchsegError, match="evil.pt"):
        load_checkpoint(path)


def test_truncated_or_foreign_checkpoints_are_refused(tmp_path):
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"model": {"w": torch.ones(100)}})
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(IchsegError, match="cut.pt: not a readable checkpoint"):
        load_checkpoint(cut)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(IchsegError, match="not an ichseg checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(IchsegError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")

"""A tiny untrained checkpoint and phantom scans for the ``ichseg predict`` tests (CPU, seconds);
a helper module, not tests."""

from __future__ import annotations

from pathlib import Path

import torch

from ichseg.data.phantom import write_phantom
from ichseg.engine.checkpoint import save_checkpoint
from ichseg.engine.config import resolve_run_config
from ichseg.models import build_model

from _model_helpers import unzero

# a ~0.1 M-parameter full model at 32²; its profile evaluates with DDIM, 2 steps, 2 members, so the
# tests also see that predict samples as the checkpoint's profile evaluates
TINY = ["model.image_size=32", "model.base_channels=8", "model.channel_mult=[1, 2, 2]", "model.num_res_blocks=1",
        "model.num_head_channels=8", "model.transformer_heads=2", "model.condition_channels=8", "model.pretrained=none",
        "model.in_channels=1",
        "data.prep={size: 32}", "evaluate.sampler=ddim", "evaluate.steps=2", "evaluate.ensemble=2",
        "evaluate.batch_slices=8"]


def tiny_checkpoint(path: Path) -> Path:
    cfg = resolve_run_config("cpu", "full", TINY)
    torch.manual_seed(0)
    model = unzero(build_model("full", **cfg["model"]))
    state = model.state_dict()
    return save_checkpoint(path, {"model": state, "ema": state, "iteration": 1, "run_hash": "tiny", "method": "full",
                                  "config": cfg})


def phantom_scans(root: Path, cases: int = 1, seed: int = 0) -> list[Path]:
    """``cases`` small phantom CT volumes (32² in-plane, 4-5 slices, in HU), sorted."""
    write_phantom(root, "instance2022", cases=cases, seed=seed, in_plane=32, slices=(4, 5))
    return sorted((root / "train_2" / "data").glob("*.nii.gz"))

"""One layout of a run folder (``ichseg.utils.layout``), whatever method kind trains it: a diffusion
variant, a direct baseline and nnU-Net each leave config.yaml, run.json (with the selection score
and what it was selected on), train_log.csv and their model where the layout says."""

from __future__ import annotations

import json

import pytest

from ichseg.engine import methods
from ichseg.engine.config import NNUNET, resolve_run_config
from ichseg.utils import layout

pytestmark = pytest.mark.usefixtures("single_thread")

# the smallest settings that train: two iterations on six 32² phantom patients
DATA = ["data.prep={size: 32}", "data.phantom={cases: 6, seed: 0, in_plane: 64, slices: [8, 10]}"]
SHORT = ["train.iterations=2", "train.eval_every=2", "train.batch_size=2", "train.val_slices=2", "train.val_steps=1",
         "train.val_ensemble=1"]
OVERRIDES = {
    "full": DATA + SHORT + ["model.base_channels=8", "model.channel_mult=[1, 2]", "model.num_head_channels=8",
                            "model.condition_channels=8", "model.condition_poolings=1", "model.transformer_heads=1"],
    "unet": DATA + SHORT + ["baselines.unet.model={base_channels: 4, channel_mult: [1, 2]}"],
    "nnunet": DATA + ["baselines.nnunet.epochs=1", "baselines.nnunet.iterations_per_epoch=1",
                      "baselines.nnunet.val_iterations=1"],
}


def _stand_in_for_nnunet(monkeypatch):
    """nnU-Net's own package trains in child processes for minutes; its stand-in leaves what a
    finished nnU-Net training leaves (the final checkpoint in fold_0 of a model folder), so the run
    folder around it is written by the real adapter."""
    from ichseg.engine.nnunet import run as nnunet_run
    from ichseg.engine.nnunet.process import CHECKPOINT

    def train_nnunet(prepared, work_dir, cfg, log=None):
        model_dir = work_dir / "nnUNet_results" / "Dataset501_x" / "nnUNetTrainerIchseg__nnUNetPlans__2d"
        (model_dir / "fold_0").mkdir(parents=True)
        (model_dir / "fold_0" / CHECKPOINT).write_bytes(b"weights")
        return model_dir

    monkeypatch.setattr(nnunet_run, "train_nnunet", train_nnunet)


@pytest.mark.parametrize("method", ["full", "unet", "nnunet"])
def test_every_method_kind_writes_the_same_run_folder_layout(method, workdir, monkeypatch):
    if method == NNUNET:
        _stand_in_for_nnunet(monkeypatch)
    cfg = resolve_run_config("smoke", method, OVERRIDES[method])
    run_dir = workdir / f"run-{method}"
    result = methods.train_run(cfg, run_dir, data_root=workdir / "data", progress=False)
    own_folder = method == NNUNET
    assert [p.relative_to(run_dir).as_posix() for p in layout.run_outputs(run_dir, own_folder)] == [
        "run.json", "train_log.csv", "config.yaml", "nnunet" if own_folder else "checkpoints/best.pt"]
    assert all(p.exists() for p in layout.run_outputs(run_dir, own_folder))
    info = json.loads(layout.run_info_path(run_dir).read_text())
    assert info["status"] == "complete" and info["method"] == method
    assert {"run_hash", "best_iteration", "best_score", "select_on", "iterations"} <= set(info)
    assert layout.read_run_config(run_dir)["method"] == method and result.run_dir == run_dir
    if own_folder:  # nnU-Net keeps its final weights: no score of ours chose them
        assert info["best_score"] is None and result.best_score is None and result.selected_on is None
    else:
        assert info["select_on"] == result.selected_on == "dice" and 0.0 <= result.best_score <= 1.0
        assert layout.last_checkpoint(run_dir).is_file() and result.best_checkpoint == layout.best_checkpoint(run_dir)

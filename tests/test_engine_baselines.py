"""The Table 1 direct baselines through the engine: recipe resolution, training with their own
optimiser/schedule/loss, exact resume, evaluation and prediction (CPU, tiny phantom)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from ichseg.cli import main as cli_main
from ichseg.engine import EvalConfig, evaluate_checkpoint, resolve_run_config, train_run
from ichseg.engine.checkpoint import load_checkpoint
from ichseg.engine.config import method_kind, run_config_hash
from ichseg.models.baselines import RECIPES

# one thread: a count leaking into later modules would change their bit-exact resume comparisons
pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py

TINY = ["data.prep={size: 32}", "data.phantom={cases: 6, seed: 0, in_plane: 64, slices: [8, 10]}",
        "train.batch_size=4", "train.val_slices=4", "train.log_every=1",
        "baselines.unet.model={base_channels: 4, channel_mult: [1, 2, 4]}"]


# -- configuration ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["unet", "transunet", "ukan"])
def test_a_baseline_run_takes_its_official_recipe(name):
    paper = resolve_run_config("paper", name)
    r = RECIPES[name]
    t = paper["train"]
    assert (t["optimizer"], t["lr"], t["momentum"], t["weight_decay"], t["lr_schedule"], t["min_lr"]) == (
        r.optimizer, r.lr, r.momentum, r.weight_decay, r.lr_schedule, r.min_lr)
    assert t["ema_rate"] == 0.0  # the official recipes keep no EMA
    assert paper["loss"]["bce_weight"] == r.bce_weight and paper["loss"]["dice_weight"] == r.dice_weight
    # shared with the diffusion variants: budget, batch, seed, validation; nothing of the diffusion
    full = resolve_run_config("paper", "full")
    assert t["iterations"] == full["train"]["iterations"] == 115000 and t["batch_size"] == 32
    assert "diffusion" not in paper and "baselines" not in paper
    assert paper["model"]["image_size"] == 256 and method_kind(name) == "direct"


def test_overrides_apply_after_the_recipe_and_profile_sizes_before():
    cfg = resolve_run_config("smoke", "transunet", ["train.lr=0.05", "baselines.transunet.model.vit_layers=1"])
    assert cfg["train"]["lr"] == 0.05 and cfg["train"]["optimizer"] == "sgd"
    assert cfg["model"]["vit_layers"] == 1 and cfg["model"]["vit_hidden"] == 64  # the rest of smoke's sizes
    smoke = resolve_run_config("smoke", "unet")
    assert smoke["train"]["lr"] == 1e-3 and smoke["model"]["base_channels"] == 8  # smoke.yaml's baselines section


def test_baseline_settings_do_not_change_a_diffusion_run():
    a = resolve_run_config("smoke", "full")
    b = resolve_run_config("smoke", "full", ["baselines.unet.model.base_channels=32"])
    assert run_config_hash(a) == run_config_hash(b)
    assert a["train"]["optimizer"] == "adamw" and a["train"]["lr_schedule"] == "linear"  # paper §4.2


@pytest.mark.parametrize("overrides, match", [
    (["baselines.unet.optimizer=sgd"], "baselines.unet: unknown key"),
    (["train.optimizer=rmsprop"], "train.optimizer"),
    (["train.lr_schedule=step"], "train.lr_schedule"),
])
def test_bad_baseline_settings_are_named(overrides, match):
    with pytest.raises(ValueError, match=match):
        resolve_run_config("smoke", "unet", overrides)


def test_unknown_method_lists_every_method():
    with pytest.raises(ValueError, match="full.*unet.*nnunet"):
        resolve_run_config("smoke", "vnet")


# -- training ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def unet_run(workdir):
    cfg = resolve_run_config("smoke", "unet", TINY + ["train.iterations=12", "train.eval_every=6"])
    return cfg, train_run(cfg, workdir / "unet", data_root=workdir / "data", progress=False)


def test_direct_training_logs_its_own_loss_and_schedule(unet_run):
    cfg, res = unet_run
    log = pd.read_csv(res.run_dir / "train_log.csv")
    assert list(log["iteration"]) == [6, 12]
    assert log[["loss_bce", "loss_dice", "dice", "iou"]].notna().all().all()
    assert log["loss_eps"].isna().all()  # no diffusion term
    r = RECIPES["unet"]
    # cosine from lr to min_lr over the run (ichseg.models.baselines.lr_lambda), stepped per iteration
    lr0, lr_min = cfg["train"]["lr"], r.min_lr
    expect = [lr_min + (lr0 - lr_min) * 0.5 * (1 + math.cos(math.pi * i / 12)) for i in (6, 12)]
    np.testing.assert_allclose(log["lr"], expect, rtol=1e-6)
    state = load_checkpoint(res.last_checkpoint)
    assert state["config"]["method"] == "unet" and "diffusion" not in state["config"]
    # no EMA: the evaluated weights are the trained ones
    for k, v in state["model"].items():
        assert torch.equal(v, state["ema"][k]), k


def test_direct_training_resumes_exactly(unet_run, workdir, monkeypatch):
    """Interrupted after its first checkpoint (iteration 6), resumed: the same weights as unbroken."""
    cfg, res = unet_run
    from ichseg.engine import objectives

    real = objectives.DirectObjective.loss
    calls = {"n": 0}

    def interrupt(self, net, img, msk, it, *a, **k):
        if it == 8:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(self, net, img, msk, it, *a, **k)

    monkeypatch.setattr(objectives.DirectObjective, "loss", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, workdir / "unet-resumed", data_root=workdir / "data", progress=False)
    monkeypatch.setattr(objectives.DirectObjective, "loss", real)
    again = train_run(cfg, workdir / "unet-resumed", data_root=workdir / "data", progress=False, resume=True)
    a, b = load_checkpoint(res.last_checkpoint), load_checkpoint(again.last_checkpoint)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert calls["n"] == 8


def test_direct_evaluation_and_prediction(unet_run, workdir, capsys):
    _, res = unet_run
    prepared = Path(json.loads((res.run_dir / "run.json").read_text())["data"]["prepared"])
    s = evaluate_checkpoint(res.best_checkpoint, prepared, workdir / "eval", EvalConfig(qualitative=2),
                            dataset="instance2022", progress=False)
    assert s["inference"] == "sigmoid of one forward pass"
    assert 0.0 <= s["paper"]["dice"] <= 1.0 and "positive_slice_dice" in s["strict"]
    per_slice = pd.read_csv(workdir / "eval" / "slices.csv")
    assert len(per_slice) == s["n_slices"] and (per_slice["mean_uncertainty"] == 0).all()
    # no ensemble, no anchor: the paper protocol scores its probability through the 8-bit image only
    np.testing.assert_allclose(per_slice["paper_dice_staple"], per_slice["paper_dice_mean"])
    np.testing.assert_allclose(per_slice["paper_dice"], per_slice["paper_dice_jpeg8"])
    scan = sorted((next((workdir / "data" / "raw").iterdir()) / "train_2" / "data").glob("*.nii.gz"))[0]
    rc = cli_main(["predict", str(scan), "--checkpoint", str(res.best_checkpoint), "--out", str(workdir / "pred"),
                   "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    src = nib.load(str(scan))
    prob = nib.load(str(workdir / "pred" / "probability.nii.gz"))
    assert prob.shape == src.shape
    np.testing.assert_allclose(prob.affine, src.affine, atol=1e-5)


# -- nnU-Net as a study method (the package itself is tested in test_engine_nnunet.py) -----------
NNUNET_LOG = """2026-11-25 09:29:18.185987: Epoch 0 
2026-11-25 09:29:18.186136: Current learning rate: 0.01 
2026-11-25 09:30:07.713302: train_loss 0.5675 
2026-11-25 09:30:07.713602: val_loss 0.1697 
2026-11-25 09:30:07.713737: Pseudo dice [np.float32(0.072)] 
2026-11-25 09:30:07.713898: Epoch time: 49.53 s 
2026-11-25 09:30:10.089350: Epoch 1 
2026-11-25 09:30:10.089525: Current learning rate: 0.0091 
2026-11-25 09:31:00.806902: train_loss -0.071 
"""
RESUMED_LOG = """2026-11-25 10:00:00.000000: Epoch 1 
2026-11-25 10:00:00.000001: Current learning rate: 0.0091 
2026-11-25 10:00:40.000000: train_loss -0.05 
2026-11-25 10:00:40.000001: val_loss -0.1 
2026-11-25 10:00:40.000002: Pseudo dice [0.25] 
2026-11-25 10:00:40.000003: Epoch time: 40.0 s 
"""


def test_nnunet_training_logs_become_the_engine_log(tmp_path):
    """Epoch records of nnU-Net's text logs (an interrupted one, then the resumed one) -> rows."""
    from ichseg.engine.nnunet import parse_training_logs

    (tmp_path / "training_log_2026_11_25_09_29_17.txt").write_text(NNUNET_LOG)
    (tmp_path / "training_log_2026_11_25_10_00_00.txt").write_text(RESUMED_LOG)
    rows = parse_training_logs(tmp_path, iterations_per_epoch=20)
    assert [r["iteration"] for r in rows] == [20, 40]
    assert rows[0]["loss"] == 0.5675 and rows[0]["pseudo_dice"] == 0.072 and rows[0]["lr"] == 0.01
    assert rows[1]["loss"] == -0.05 and rows[1]["pseudo_dice"] == 0.25  # the unfinished epoch 1 was redone
    assert rows[1]["wall_time_s"] == pytest.approx(89.53)


def test_nnunet_run_config():
    cfg = resolve_run_config("smoke", "nnunet", seed=3)
    assert cfg["nnunet"]["seed"] == 3 and "model" not in cfg and "diffusion" not in cfg
    assert method_kind("nnunet") == "nnunet"
    with pytest.raises(ValueError, match="epochs"):
        resolve_run_config("smoke", "nnunet", iterations=10)
    with pytest.raises(ValueError, match="nnunet: unknown key"):
        resolve_run_config("smoke", "nnunet", ["nnunet.folds=5"])

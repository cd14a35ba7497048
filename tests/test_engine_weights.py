"""``ichseg export``: a training checkpoint's EMA weights, float16, without optimiser state, that
``predict`` / ``evaluate`` load like any checkpoint and that segment as the float32 weights do."""

from __future__ import annotations

import pytest
import torch

from ichseg.cli import main as cli_main
from ichseg.engine.checkpoint import load_checkpoint, save_checkpoint
from ichseg.engine.config import resolve_run_config
from ichseg.engine.evaluate import load_trained_model
from ichseg.engine.weights import export_weights, set_predict_settings
from ichseg.errors import IchsegError
from ichseg.models import build_model
from ichseg.utils import method_of

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = ["model.image_size=32", "model.base_channels=8", "model.channel_mult=[1, 2, 2]", "model.num_res_blocks=1",
        "model.num_head_channels=8", "model.transformer_heads=2", "model.condition_channels=8", "model.pretrained=none"]


@pytest.fixture(scope="module")
def training_checkpoint(tmp_path_factory):
    cfg = resolve_run_config("cpu", "full", TINY)
    torch.manual_seed(0)
    model = build_model("full", **cfg["model"])
    for p in model.parameters():  # weights away from their (partly zero) initialisation
        p.data.add_(0.05 * torch.randn_like(p))
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(1, 1, 32, 32), torch.tensor([5]), torch.randn(1, 1, 32, 32)).eps.sum().backward()
    opt.step()
    path = tmp_path_factory.mktemp("weights") / "best.pt"
    save_checkpoint(path, {"model": model.state_dict(), "ema": model.state_dict(), "ema_updates": 3,
                           "optimizer": opt.state_dict(), "iteration": 7, "best_iteration": 7, "best_dice": 0.5,
                           "run_hash": "abc", "method": "full", "config": cfg})
    return path


def test_export_keeps_ema_and_config_only_and_halves_the_file(training_checkpoint, tmp_path, capsys):
    out = tmp_path / "full.pt"
    assert cli_main(["export", str(training_checkpoint), "--out", str(out), "--note", "synthetic CT only"]) == 0
    assert str(out) in capsys.readouterr().out
    state = load_checkpoint(out)
    assert "optimizer" not in state and "model" not in state and state["note"] == "synthetic CT only"
    assert state["config"] == load_checkpoint(training_checkpoint)["config"] and state["run_hash"] == "abc"
    assert all(v.dtype == torch.float16 for v in state["ema"].values() if v.is_floating_point())
    assert out.stat().st_size < 0.6 * training_checkpoint.stat().st_size / 2  # EMA only, two bytes a weight


def test_exported_weights_predict_as_the_float32_ones(training_checkpoint, tmp_path):
    out = export_weights(training_checkpoint, tmp_path / "full.pt")
    ref, diffusion, _, _ = load_trained_model(training_checkpoint, torch.device("cpu"))
    half, _, cfg, run_hash = load_trained_model(out, torch.device("cpu"))
    assert run_hash == "abc" and cfg["method"] == "full"
    assert all(p.dtype == torch.float32 for p in half.parameters())  # loaded back into the float32 network
    g = torch.Generator().manual_seed(0)
    x, img, t = torch.randn(2, 1, 32, 32, generator=g), torch.randn(2, 1, 32, 32, generator=g), torch.tensor([10, 500])
    with torch.no_grad():
        a, b = ref(x, t, img), half(x, t, img)
    torch.testing.assert_close(b.eps, a.eps, atol=2e-2, rtol=2e-2)  # float16 rounding of the weights only
    assert not torch.equal(a.eps, b.eps)  # it really went through float16


def test_export_refuses_what_it_cannot_use(training_checkpoint, tmp_path, capsys):
    no_ema = save_checkpoint(tmp_path / "no_ema.pt", {"model": {}, "config": {"method": "full"}})
    rc = cli_main(["export", str(no_ema), "--out", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err
    assert rc == 2 and "no_ema.pt: holds no EMA weights" in err and len(err.strip().splitlines()) == 1
    rc = cli_main(["export", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err
    assert rc == 2 and "missing.pt: checkpoint not found" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.pt").exists()


def test_a_checkpoint_naming_its_method_variant_still_loads_and_exports(training_checkpoint, tmp_path):
    """Checkpoints written before run configs named their method ``method`` (the committed weights
    among them) say ``variant``: loading, refusing another method and exporting read it alike."""
    state = load_checkpoint(training_checkpoint)
    cfg = dict(state["config"])
    cfg["variant"] = cfg.pop("method")
    state.pop("method")
    old = save_checkpoint(tmp_path / "old.pt", {**state, "variant": "full", "config": cfg})
    cpu = torch.device("cpu")
    model, _, got, run_hash = load_trained_model(old, cpu)
    assert "method" not in got and method_of(got) == "full" and run_hash == "abc"
    ref, _, _, _ = load_trained_model(training_checkpoint, cpu)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values()))
    with pytest.raises(IchsegError, match="holds method 'full', not 'unet'"):
        load_trained_model(old, cpu, method="unet")
    exported = load_checkpoint(export_weights(old, tmp_path / "old-export.pt"))
    assert exported["variant"] == "full" and method_of(exported["config"]) == "full"


def test_predict_settings_are_recorded_in_the_exported_file_and_used_by_predict(training_checkpoint, tmp_path):
    """An exported model may carry sampling settings chosen for prediction: ``predict`` takes them
    over the profile's evaluation settings, an option given still wins, and the summary says where
    the defaults came from; unknown settings and training checkpoints are refused."""
    from ichseg.engine.inference import eval_settings
    from ichseg.engine.predict import Predictor

    out = export_weights(training_checkpoint, tmp_path / "full.pt")
    profile = eval_settings(load_checkpoint(out)["config"])
    plain = Predictor.load(out, {}, device="cpu", progress=False)
    assert (plain.ecfg.steps, plain.ecfg.ensemble) == (profile.steps, profile.ensemble)
    assert plain.settings_from == "the profile's evaluation settings"
    before = {k: v for k, v in load_checkpoint(out).items() if k != "ema"}

    set_predict_settings(out, {"steps": 2, "ensemble": 1}, "bench/measured/predict_steps.json")
    state = load_checkpoint(out)
    assert {k: v for k, v in state.items() if k not in ("ema", "predict")} == before  # nothing else changed
    fast = Predictor.load(out, {}, device="cpu", progress=False)
    assert (fast.ecfg.steps, fast.ecfg.ensemble, fast.ecfg.sampler) == (2, 1, profile.sampler)
    assert "predict_steps.json" in fast.settings_from and "validation" in fast.settings_from
    given = Predictor.load(out, {"steps": 4}, device="cpu", progress=False)
    assert (given.ecfg.steps, given.ecfg.ensemble) == (4, 1)

    with pytest.raises(IchsegError, match="nonsense"):
        set_predict_settings(out, {"nonsense": 1}, "x")
    with pytest.raises(IchsegError, match="not an exported model"):
        set_predict_settings(training_checkpoint, {"steps": 2}, "x")
    assert load_checkpoint(out)["predict"]["settings"] == {"steps": 2, "ensemble": 1}

"""Method kinds dispatch from one registry (``ichseg.engine.methods``)."""

from __future__ import annotations

import json

import pytest

from ichseg.engine import methods
from ichseg.engine.config import METHOD_KINDS, METHODS, NNUNET, method_kind
from ichseg.engine.evaluate import evaluate_network_run
from ichseg.engine.nnunet import train_nnunet_run
from ichseg.engine.train import train_network
from ichseg.models.registry import BASELINES, VARIANTS


def test_every_method_has_one_kind_and_every_kind_its_functions():
    assert set(methods.KINDS) == set(METHOD_KINDS)
    # the one list of methods: the Table 2 variants, the Table 1 baseline networks, nnU-Net
    assert methods.METHODS is METHODS and METHODS == (*VARIANTS, *BASELINES, NNUNET)
    for name in METHODS:
        m = methods.method(name)
        if name == NNUNET:
            assert m.train is train_nnunet_run
        else:
            assert m.train is train_network and m.evaluate_run is evaluate_network_run
    with pytest.raises(ValueError, match="unknown name"):
        methods.method("no-such-method")


def test_train_and_evaluate_run_go_through_the_registry(monkeypatch, tmp_path):
    """``train`` / ``evaluate_run`` call the registered function of the run's kind and nothing else."""
    calls = []
    fake = methods.Method(train=lambda cfg, out, **kw: calls.append(("train", cfg["method"], kw["resume"])),
                          evaluate_run=lambda run, *a, **kw: calls.append(("evaluate", kw["method"], kw["split"])))
    monkeypatch.setitem(methods.KINDS, NNUNET, fake)
    methods.train_run({"method": "nnunet"}, tmp_path, resume=True)
    (tmp_path / "run.json").write_text(json.dumps({"method": "nnunet"}))
    methods.evaluate_run(tmp_path, tmp_path, tmp_path / "eval", split="val")
    # a run folder written before run.json named its method `method` says `variant`
    (tmp_path / "run.json").write_text(json.dumps({"variant": "nnunet"}))
    methods.evaluate_run(tmp_path, tmp_path, tmp_path / "eval", method="nnunet")
    assert calls == [("train", "nnunet", True), ("evaluate", None, "val"), ("evaluate", "nnunet", "test")]


def test_the_network_loop_refuses_nnunet_before_touching_data(tmp_path):
    from ichseg.engine.config import resolve_run_config

    with pytest.raises(ValueError, match="'nnunet' is not trained by this loop"):
        train_network(resolve_run_config("smoke", "nnunet"), tmp_path / "run", data_root=tmp_path / "data",
                      progress=False)
    assert not any(tmp_path.iterdir())


def test_engine_names_of_optimisers_schedules_and_samplers_are_the_libraries():
    from ichseg.diffusion import SAMPLERS
    from ichseg.engine import config
    from ichseg.models.baselines import recipes

    assert config.OPTIMIZERS is recipes.OPTIMIZERS and config.SCHEDULES is recipes.SCHEDULES
    assert config.SAMPLER_NAMES == tuple(SAMPLERS)
    for name in recipes.OPTIMIZERS:
        assert config.TrainConfig(optimizer=name).optimizer == name
    with pytest.raises(ValueError, match="train.optimizer: unknown value 'rmsprop'; known: " + ", ".join(recipes.OPTIMIZERS)):
        config.TrainConfig(optimizer="rmsprop")
    assert method_kind("unet") == "direct"

"""Profiles and overrides of the engine (no training)."""

from __future__ import annotations

import pytest

from ichseg.engine.config import available_profiles, load_profile, resolve_run_config, run_config_hash
from ichseg.errors import IchsegError


def test_three_profiles_ship_with_the_package():
    assert {"smoke", "gpu", "paper"} <= set(available_profiles())
    paper = load_profile("paper")
    # paper §4.2: batch 32, 115k iterations, lr 1e-4, 256² slices
    assert paper["train"]["batch_size"] == 32 and paper["train"]["iterations"] == 115_000
    assert paper["train"]["lr"] == pytest.approx(1e-4) and paper["model"]["image_size"] == 256


def test_profile_variant_and_overrides_determine_the_run():
    a = resolve_run_config("smoke", "full", ["train.batch_size=4", "loss.alpha=3"], iterations=20)
    b = resolve_run_config("smoke", "full", ["loss.alpha=3", "train.batch_size=4"], iterations=20)
    assert a == b and run_config_hash(a) == run_config_hash(b)
    assert a["train"]["batch_size"] == 4 and a["train"]["iterations"] == 20 and a["loss"]["alpha"] == 3
    c = resolve_run_config("smoke", "medsegdiffv2", ["train.batch_size=4", "loss.alpha=3"], iterations=20)
    assert run_config_hash(a) != run_config_hash(c)
    # evaluation settings do not change what is trained
    d = resolve_run_config("smoke", "full", ["train.batch_size=4", "loss.alpha=3", "evaluate.steps=50"], iterations=20)
    assert run_config_hash(a) == run_config_hash(d)


@pytest.mark.parametrize(
    "overrides,match",
    [
        (["train.iterations=0"], "train.iterations"),
        (["train.lr=-1"], "train.lr"),
        (["train.val_sampler=euler"], "train.val_sampler"),
        (["train.learning_rate=1e-3"], "learning_rate"),
        (["optimizer.lr=1e-3"], "must start with one of"),
        (["train.iterations"], "key=value"),
        (["diffusion.schedule=sigmoid"], "schedule"),
        (["evaluate.ensemble=0"], "evaluate.ensemble"),
    ],
)
def test_bad_overrides_are_named(overrides, match):
    with pytest.raises(ValueError, match=match):
        resolve_run_config("smoke", "full", overrides)


def test_unknown_profile_lists_the_known_ones(tmp_path):
    with pytest.raises(IchsegError, match="known: .*smoke"):
        load_profile("huge")
    bad = tmp_path / "p.yaml"
    bad.write_text("trainer: {}\n")
    with pytest.raises(IchsegError, match="unknown profile section"):
        load_profile(bad)


def test_override_values_are_typed():
    cfg = resolve_run_config("smoke", "full", ["train.lr=3e-4", "train.augment=false", "model.channel_mult=[1, 2]"])
    assert cfg["train"]["lr"] == 3e-4 and cfg["train"]["augment"] is False and cfg["model"]["channel_mult"] == [1, 2]


def test_atomic_writes_get_the_permissions_of_a_plain_write(tmp_path):
    """A result written atomically is readable as any file the user writes is (umask), not 0600."""
    import os

    from ichseg.utils.atomic import atomic_directory, atomic_write_json

    plain_file, plain_dir = tmp_path / "plain.json", tmp_path / "plain"
    plain_file.write_text("{}")
    plain_dir.mkdir()
    written = atomic_write_json(tmp_path / "metrics.json", {"dice": 0.5})
    with atomic_directory(tmp_path / "eval") as tmp:
        (tmp / "x").write_text("1")
    assert os.stat(written).st_mode & 0o777 == os.stat(plain_file).st_mode & 0o777
    assert os.stat(tmp_path / "eval").st_mode & 0o777 == os.stat(plain_dir).st_mode & 0o777


def _edited_profile(tmp_path, name: str, edit):
    """A copy of a shipped profile with ``edit(cfg)`` applied, as a YAML file."""
    import yaml
    from importlib import resources

    cfg = yaml.safe_load((resources.files("ichseg.profiles") / f"{name}.yaml").read_text())
    edit(cfg)
    path = tmp_path / f"{name}-edited.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("method, edit, message", [
    ("full", lambda c: c["data"]["phantom"].update(case=80), r"data.phantom: unknown key\(s\) case; known: cases, in_plane, randomise, seed, slices"),
    ("full", lambda c: c["data"]["phantom"].update(cases=0), r"data.phantom.cases: must be a positive integer, got 0"),
    ("full", lambda c: c["data"]["phantom"].update(cases={"bhsd": "many"}), r"data.phantom.cases.bhsd: must be a positive integer"),
    ("full", lambda c: c["data"]["phantom"].update(slices=[20, 16]), r"data.phantom.slices: need min <= max"),
    ("full", lambda c: c["data"].update(test_datasets=["bhsd", "mnist"]), r"data.test_datasets: unknown value 'mnist'"),
    ("full", lambda c: c["data"].update(prep={"size": 4}), r"data.prep.size: must be an integer in \[8, 2048\], got 4"),
    ("full", lambda c: c["data"].update(realct={"draws": -1}), r"data.realct.draws: must be a positive integer"),
    ("full", lambda c: c["data"].update(extra=1), r"data: unknown key\(s\) extra"),
    ("full", lambda c: c["train"].update(iteration=5), r"train: unknown key\(s\) iteration"),
    ("full", lambda c: c["train"].update(batch_size=True), r"train.batch_size: must be a positive integer, got True"),
    ("full", lambda c: c["train"].update(lesion_fraction=1.5), r"train.lesion_fraction: must lie in \[0, 1\], got 1.5"),
    ("full", lambda c: c["evaluate"].update(sampler="euler"), r"evaluate.sampler: unknown value 'euler'"),
    ("nnunet", lambda c: c["evaluate"].update(ensembles=3), r"evaluate: unknown key\(s\) ensembles"),
    ("full", lambda c: c["model"].update(base_channel=8), r"model: .*unknown key\(s\) base_channel"),
    ("full", lambda c: c["loss"].update(alpha=0), r"alpha: must be a positive integer"),
    ("nnunet", lambda c: c["baselines"]["nnunet"].update(epochs=0), r"nnunet.epochs: must be a positive integer, got 0"),
    ("full", lambda c: c["baselines"].update(vnet={}), r"baselines: unknown key\(s\) vnet"),
    ("full", lambda c: c.update(study={"seeds": "0"}), r"study.seeds: must be a non-empty list of seeds"),
])
def test_a_wrong_key_or_value_anywhere_fails_at_resolve_naming_the_key_and_the_file(tmp_path, method, edit, message):
    import re

    path = _edited_profile(tmp_path, "smoke", edit)
    with pytest.raises(IchsegError, match=f"^{re.escape(str(path))}: {message}") as info:
        resolve_run_config(str(path), method)
    assert "\n" not in str(info.value)


def test_a_shipped_profile_is_named_by_its_file_and_an_override_by_its_assignment():
    with pytest.raises(IchsegError, match=r"^ichseg/profiles/smoke.yaml with --set train.val_steps=0: train.val_steps: must be"):
        resolve_run_config("smoke", "full", ["train.val_steps=0"])


def test_the_committed_cpu_runs_resolve_to_their_recorded_configs():
    """Every committed cpu run's config, resolved from today's profile file with the run's recorded
    overrides and seed, is the one the run recorded (plus what training read from the data: the
    model's input channels), so its run hash is unchanged: comments, the study section and the
    description never enter a run's config."""
    import json
    from pathlib import Path

    import yaml

    results = Path(__file__).resolve().parents[1] / "results" / "cpu"
    study = json.loads((results / "study.json").read_text())
    assert len(study["runs"]) == 13
    for run in study["runs"]:
        method = run.get("method") or run["variant"]
        cfg = resolve_run_config("cpu", method, run["overrides"], seed=run["seed"])
        recorded = yaml.safe_load((results / run["run_dir"] / "config.yaml").read_text())
        recorded.pop("description", None)
        if "model" in recorded:
            cfg["model"]["in_channels"] = recorded["model"]["in_channels"]
        assert cfg == recorded, method
        assert run_config_hash(cfg) == json.loads((results / run["run_dir"] / "run.json").read_text())["run_hash"]


def test_the_run_hash_training_records_is_known_before_it_trains():
    """``trained_run_hash`` of a resolved config is the ``run_hash`` its training recorded (the
    pre-registration's config hashes): every committed cpu run, networks and nnU-Net."""
    import json
    from pathlib import Path

    from ichseg.engine.config import trained_run_hash

    results = Path(__file__).resolve().parents[1] / "results" / "cpu"
    study = json.loads((results / "study.json").read_text())
    for run in study["runs"]:
        cfg = resolve_run_config("cpu", run["method"], run["overrides"], seed=run["seed"])
        recorded = json.loads((results / run["run_dir"] / "run.json").read_text())["run_hash"]
        assert trained_run_hash(cfg) == recorded, run["run_dir"]
        if run["method"] != "nnunet":
            assert run_config_hash(cfg) != recorded  # the hash before the data completes the model differs

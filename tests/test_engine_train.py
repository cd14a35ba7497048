"""Training, exact resume, DDP equivalence, evaluation and prediction on tiny phantom data (CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from ichseg.cli import main as cli_main
from ichseg.engine import EvalConfig, evaluate_checkpoint, resolve_run_config, train_run
from ichseg.engine.checkpoint import load_checkpoint
from ichseg.engine.worst import read_worst
from ichseg.errors import IchsegError

REPO = Path(__file__).resolve().parents[1]
# a tiny baseline network (≈0.1 M parameters) at 32²: seconds per run on two cores
TINY = [
    "model.base_channels=8", "model.channel_mult=[1, 2, 2]", "model.num_res_blocks=1", "model.num_head_channels=8",
    "model.condition_channels=8", "model.condition_poolings=2", "model.transformer_heads=2",
    "data.prep={size: 32}", "data.phantom={cases: 6, seed: 0, in_plane: 64, slices: [8, 10]}",
    "train.batch_size=4", "train.val_slices=4", "train.val_steps=2", "train.val_ensemble=1", "train.log_every=1",
]


def tiny_profile(tmp: Path, iterations: int, eval_every: int, extra=()) -> Path:
    cfg = resolve_run_config("smoke", "medsegdiffv2", TINY + [f"train.iterations={iterations}", f"train.eval_every={eval_every}", *extra])
    for k in ("method", "profile"):
        cfg.pop(k)
    path = tmp / f"tiny-{iterations}-{eval_every}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_cli(*args: str, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ichseg.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def state_tensors(path: Path) -> dict[str, torch.Tensor]:
    st = load_checkpoint(path)
    out = {f"model.{k}": v for k, v in st["model"].items()}
    out.update({f"ema.{k}": v for k, v in st["ema"].items()})
    return out


@pytest.fixture(scope="module")
def reference_run(workdir):
    """An uninterrupted 24-iteration run (checkpoint every 6) in this process."""
    profile = tiny_profile(workdir, 24, 6)
    cfg = resolve_run_config(profile, "medsegdiffv2")
    res = train_run(cfg, workdir / "ref", data_root=workdir / "data", progress=False)
    return profile, res


def test_training_writes_log_checkpoints_and_provenance(reference_run, workdir):
    profile, res = reference_run
    log = pd.read_csv(res.run_dir / "train_log.csv")
    assert list(log["iteration"]) == [6, 12, 18, 24]
    assert log["lr"].is_monotonic_decreasing and log["lr"].iloc[-1] == pytest.approx(0.0)  # linear decay to 0
    assert log[["dice", "iou"]].notna().all().all()
    info = json.loads((res.run_dir / "run.json").read_text())
    assert info["status"] == "complete" and info["run_hash"] and info["data"]["fingerprint"]
    assert info["environment"]["git_commit"] and info["environment"]["torch"] == torch.__version__
    assert res.best_checkpoint.exists() and res.last_checkpoint.exists()
    assert load_checkpoint(res.best_checkpoint)["iteration"] == res.best_iteration
    assert load_checkpoint(res.last_checkpoint)["ema_updates"] == 24  # the EMA warm-up resumes exactly


def test_checkpoints_are_chosen_on_validation_patients_never_test(reference_run):
    """The validation split is carved from the training patients: the engine validates on it,
    it never trains on it, and the test patients are not looked at before evaluation."""
    from ichseg.data import SliceDataset

    _, res = reference_run
    info = json.loads((res.run_dir / "run.json").read_text())
    prepared = Path(info["data"]["prepared"])
    train_ds, val_ds, test_ds = (SliceDataset(prepared, s) for s in ("train", "val", "test"))
    patients = {s: set(d.table["patient"]) for s, d in (("train", train_ds), ("val", val_ds), ("test", test_ds))}
    assert all(patients.values())
    assert not patients["val"] & patients["train"] and not patients["val"] & patients["test"]
    assert not patients["train"] & patients["test"]
    assert info["data"]["val_split"] == "val" and info["data"]["train_slices"] == len(train_ds)
    assert info["data"]["val_slices"] == min(4, len(val_ds))
    with pytest.raises(ValueError, match="val_split"):
        resolve_run_config("smoke", "medsegdiffv2", ["train.val_split=test"])


def test_validation_reads_the_val_split(monkeypatch, tmp_path):
    """``train`` loads its validation slices from the ``val`` split (and only that split)."""
    import importlib

    engine_train = importlib.import_module("ichseg.engine.train")  # the module, not the function
    seen = []
    real = engine_train.load_split
    monkeypatch.setattr(engine_train, "load_split", lambda prepared, split: seen.append(split) or real(prepared, split))
    profile = tiny_profile(tmp_path, 2, 2, extra=["train.augment=false"])
    train_run(resolve_run_config(profile, "medsegdiffv2"), tmp_path / "run", data_root=tmp_path / "data", progress=False)
    assert seen == ["val"]


@pytest.mark.parametrize("rate", [0.0, 0.9, 0.9999])
def test_ema_warmup_weight_on_the_initial_parameters(rate):
    """After N updates toward constant weights θ1 the EMA is w·θ0 + (1 - w)·θ1 with
    w = ∏ decay_k, decay_k = min(rate, (1 + k) / (10 + k)); no warm-up would leave rate**N."""
    from ichseg.engine.ema import EMA, ema_decay

    net = torch.nn.Linear(3, 2).double()
    theta0 = {k: v.clone() for k, v in net.state_dict().items()}
    ema = EMA(net, rate)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    n = 200
    for _ in range(n):
        ema.update(net)
    w = float(np.prod([ema_decay(rate, k) for k in range(n)]))
    assert ema.updates == n
    for k, v in ema.state_dict().items():
        torch.testing.assert_close(v, w * theta0[k] + (1 - w) * (theta0[k] + 1.0), rtol=0, atol=1e-12)
    if rate == 0.9999:  # warm-up: the initialisation is forgotten, not kept at 0.9999**200 = 98 %
        assert w < 0.05 < rate**n
    resumed = EMA(net, rate)
    resumed.load_state_dict(ema.state_dict(), updates=ema.updates)
    assert resumed.decay == ema.decay == ema_decay(rate, n)


def test_ema_averages_batchnorm_statistics_with_the_weights():
    """BatchNorm's running mean/variance follow the averaged weights (same decay); its batch counter
    is copied. Copied statistics would describe the live weights, not the averaged ones."""
    from ichseg.engine.ema import EMA, ema_decay

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2)).double()
    ema = EMA(net, 0.9)
    mean0 = ema.model[1].running_mean.clone()
    with torch.no_grad():
        net[1].running_mean.fill_(4.0)
        net[1].num_batches_tracked.fill_(7)
    n = 30
    for _ in range(n):
        ema.update(net)
    w = float(np.prod([ema_decay(0.9, k) for k in range(n)]))
    torch.testing.assert_close(ema.model[1].running_mean, w * mean0 + (1 - w) * 4.0, rtol=0, atol=1e-12)
    assert int(ema.model[1].num_batches_tracked) == 7
    before = ema.model[1].running_mean.clone()
    with torch.no_grad():
        net[1].running_mean.fill_(10.0)  # the live statistics jump: the averaged ones move by 1 - d
    d = ema.decay
    ema.update(net)
    torch.testing.assert_close(ema.model[1].running_mean, d * before + (1 - d) * 10.0, rtol=0, atol=1e-12)
    assert 9.0 > float(ema.model[1].running_mean[0]) > 5.0


def test_sigkill_halfway_then_resume_is_bit_identical(reference_run, workdir):
    profile, ref = reference_run
    out = workdir / "killed"
    # the same intra-op thread count as this process (CPU reductions are bit-exact per thread count)
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = run_cli("train", "--profile", str(profile), "--method", "medsegdiffv2", "--out", str(out),
                   "--data-root", str(workdir / "data"), "--no-progress", env=env)
    last = out / "checkpoints" / "last.pt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if last.exists() and load_checkpoint(last)["iteration"] >= 12:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be killed:\n{proc.stdout.read()}"
    stopped_at = load_checkpoint(last)["iteration"]
    assert 12 <= stopped_at < 24
    assert not [p for p in last.parent.iterdir() if p.name.endswith(".tmp")]

    cfg = resolve_run_config(profile, "medsegdiffv2")
    with pytest.raises(IchsegError, match="--resume"):
        train_run(cfg, out, data_root=workdir / "data", progress=False)
    started = json.loads((out / "run.json").read_text())["environment"]
    train_run(cfg, out, data_root=workdir / "data", resume=True, progress=False)
    info = json.loads((out / "run.json").read_text())
    # the run keeps the environment (commit) it started in; the resume is listed after it
    assert info["environment"] == started and len(info["resumed_environments"]) == 1
    assert info["status"] == "complete"
    a, b = state_tensors(ref.last_checkpoint), state_tensors(last)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    la = pd.read_csv(ref.run_dir / "train_log.csv").drop(columns="wall_time_s")
    lb = pd.read_csv(out / "train_log.csv").drop(columns="wall_time_s")
    pd.testing.assert_frame_equal(la, lb)


def test_resume_refuses_another_configuration(reference_run, workdir):
    profile, ref = reference_run
    other = resolve_run_config(profile, "medsegdiffv2", ["train.lr=3e-4"])
    with pytest.raises(IchsegError, match="another configuration"):
        train_run(other, ref.run_dir, data_root=workdir / "data", resume=True, progress=False)


def test_torchrun_two_ranks_match_one_process(workdir):
    profile = tiny_profile(workdir, 8, 4, extra=["train.augment=false"])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = run_cli("train", "--profile", str(profile), "--method", "medsegdiffv2", "--out", str(workdir / "single"),
                     "--data-root", str(workdir / "data"), "--no-progress", env=env)
    assert single.wait() == 0, single.stdout.read()
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "ichseg.cli",
                "train", "--profile", str(profile), "--method", "medsegdiffv2", "--out", str(workdir / "ddp"),
                "--data-root", str(workdir / "data"), "--no-progress"]
    ddp = subprocess.run(torchrun, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stdout[-3000:] + ddp.stderr[-3000:]
    a = pd.read_csv(workdir / "single" / "train_log.csv")
    b = pd.read_csv(workdir / "ddp" / "train_log.csv")
    assert json.loads((workdir / "ddp" / "run.json").read_text())["world_size"] == 2
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=2e-3)
    np.testing.assert_allclose(b["loss_eps"], a["loss_eps"], rtol=2e-3)


@pytest.fixture(scope="module")
def prepared(reference_run, workdir) -> Path:
    cfg = json.loads((reference_run[1].run_dir / "run.json").read_text())
    return Path(cfg["data"]["prepared"])


def test_evaluate_writes_both_protocols(reference_run, prepared, workdir):
    _, res = reference_run
    ecfg = EvalConfig(sampler="ddim", steps=3, ensemble=3, batch_slices=8, qualitative=2)
    s = evaluate_checkpoint(res.best_checkpoint, prepared, workdir / "eval", ecfg, dataset="instance2022", progress=False)
    assert 0.0 <= s["paper"]["dice"] <= 1.0 and "positive_slice_dice" in s["strict"]
    assert "volume_dice" in s["strict"] and "hd95_mm" in s["strict"] and "hd95_per_slice_mm" in s["strict"]
    per_slice = pd.read_csv(workdir / "eval" / "slices.csv")
    assert "hd95_per_slice_mm" in per_slice and "hd95_mm" not in per_slice
    assert len(per_slice) == s["n_slices"] and {"paper_dice", "strict_dice", "mean_uncertainty"} <= set(per_slice)
    q = np.load(workdir / "eval" / "qualitative.npz")
    assert q["probability"].shape == q["mask"].shape == q["paper_map"].shape == (2, 32, 32)
    assert (q["uncertainty"] >= 0).all() and q["uncertainty"].max() > 0  # the ensemble members differ
    # paper protocol: the released output path by default, every fusion and step recorded
    assert s["paper"]["fusion"] == "medsegdiff"
    assert set(s["paper_by_fusion"]) == {"mean", "medsegdiff", "medsegdiff-v2"}
    assert s["paper"]["dice"] == pytest.approx(s["paper_by_fusion"]["medsegdiff"]["dice"])
    steps = {"paper_dice_mean", "paper_dice_anchor_blend", "paper_dice_staple", "paper_dice_jpeg8",
             "paper_dice_no_max_norm", "paper_dice_v2_raw"}
    assert steps <= set(per_slice)
    assert per_slice["paper_dice_jpeg8"].mean() == pytest.approx(s["paper"]["dice"])
    assert per_slice["paper_dice_mean"].mean() == pytest.approx(s["paper_by_fusion"]["mean"]["dice"])
    # the 8-bit JPEG holds multiples of 1/255 only
    np.testing.assert_allclose(q["paper_map"] * 255, np.round(q["paper_map"] * 255), atol=1e-4)
    # the worst slices, picked from the same per-slice scores
    worst = read_worst(workdir / "eval" / "worst.npz")
    lesion, empty = per_slice["gt_pixels"] > 0, (per_slice["gt_pixels"] == 0) & (per_slice["pred_pixels"] > 0)
    assert len(worst.of("lesion")) == min(6, int(lesion.sum())) and len(worst.of("empty")) == min(6, int(empty.sum()))
    lowest = sorted(per_slice.loc[lesion, "strict_dice"].nsmallest(6))
    assert sorted(worst.dice[worst.of("lesion")]) == pytest.approx(lowest)
    assert sorted(worst.pred_pixels[worst.of("empty")]) == sorted(per_slice.loc[empty, "pred_pixels"].nlargest(6))


def test_evaluate_paper_fusion_mean_scores_the_plain_mean(reference_run, prepared, workdir):
    from ichseg.metrics import paper_slice_scores

    _, res = reference_run
    ecfg = EvalConfig(sampler="dpm-solver++", steps=3, ensemble=2, batch_slices=8, qualitative=2, paper_fusion="mean")
    s = evaluate_checkpoint(res.best_checkpoint, prepared, workdir / "eval_mean", ecfg, dataset="instance2022",
                            progress=False)
    per_slice = pd.read_csv(workdir / "eval_mean" / "slices.csv")
    assert s["paper"]["fusion"] == "mean" and s["paper"]["dice"] == pytest.approx(s["paper_by_fusion"]["mean"]["dice"])
    np.testing.assert_allclose(per_slice["paper_dice"], per_slice["paper_dice_mean"])
    q = np.load(workdir / "eval_mean" / "qualitative.npz")
    ref = paper_slice_scores(q["probability"], q["mask"])["dice"]
    np.testing.assert_allclose(per_slice["paper_dice"].to_numpy()[q["rows"]], ref, rtol=1e-6)
    with pytest.raises(ValueError, match="paper_fusion"):
        EvalConfig(paper_fusion="median")


def test_evaluate_refuses_another_method_or_image_size(reference_run, prepared, workdir):
    _, res = reference_run
    with pytest.raises(IchsegError, match="not 'full'"):
        evaluate_checkpoint(res.best_checkpoint, prepared, workdir / "e2", method="full", progress=False)
    from ichseg.data import PrepConfig, prepare_dataset

    raw = next((workdir / "data" / "raw").iterdir())
    other = prepare_dataset("instance2022", raw, workdir / "prep16", PrepConfig(size=16))
    rc = cli_main(["evaluate", "--checkpoint", str(res.best_checkpoint), "--prepared", str(other),
                   "--out", str(workdir / "e3"), "--no-progress"])
    assert rc == 2 and not (workdir / "e3").exists()


def test_evaluate_command_scores_a_run_as_its_profile_does(reference_run, prepared, workdir):
    """Without sampling flags, ``ichseg evaluate`` takes the run's own evaluation settings (its
    profile's, recorded in the run config), not the library defaults; a flag replaces one value."""
    _, res = reference_run
    run_eval = load_checkpoint(res.best_checkpoint)["config"]["evaluate"]
    assert run_eval["sampler"] != EvalConfig().sampler  # the check below can tell them apart
    rc = cli_main(["evaluate", "--checkpoint", str(res.best_checkpoint), "--prepared", str(prepared),
                   "--out", str(workdir / "e_cli"), "--steps", "2", "--no-progress"])
    assert rc == 0
    used = json.loads((workdir / "e_cli" / "metrics.json").read_text())["evaluate"]
    assert used["sampler"] == run_eval["sampler"] and used["ensemble"] == run_eval["ensemble"]
    assert used["steps"] == 2


def _flipped_copy(src: Path, dst: Path) -> Path:
    """The same scan stored with its first and third axes reversed (a non-canonical affine)."""
    img = nib.load(str(src))
    data = np.asarray(img.dataobj)[::-1, :, ::-1]
    flip = np.diag([-1.0, 1.0, -1.0, 1.0])
    flip[0, 3], flip[2, 3] = data.shape[0] - 1, data.shape[2] - 1
    out = nib.Nifti1Image(np.ascontiguousarray(data), img.affine @ flip)
    nib.save(out, str(dst))
    return dst


def test_predict_writes_outputs_on_the_input_grid(reference_run, workdir, capsys):
    _, res = reference_run
    raw = next((workdir / "data" / "raw").iterdir())
    scan = _flipped_copy(sorted((raw / "train_2" / "data").glob("*.nii.gz"))[0], workdir / "scan_flipped.nii.gz")
    src = nib.load(str(scan))
    assert nib.aff2axcodes(src.affine) != ("R", "A", "S")
    out = workdir / "pred"
    rc = cli_main(["predict", str(scan), "--checkpoint", str(res.best_checkpoint), "--out", str(out),
                   "--sampler", "ddim", "--steps", "2", "--ensemble", "2", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    for name in ("mask", "probability", "uncertainty"):
        img = nib.load(str(out / f"{name}.nii.gz"))
        assert img.shape == src.shape
        np.testing.assert_allclose(img.affine, src.affine, atol=1e-5)
    summary = json.loads((out / "summary.json").read_text())
    mask = np.asarray(nib.load(str(out / "mask.nii.gz")).dataobj)
    vox_ml = abs(np.linalg.det(src.affine[:3, :3])) / 1000
    assert summary["hemorrhage_volume_ml"] == pytest.approx(mask.sum() * vox_ml, abs=1e-3)


@pytest.mark.parametrize("problem", ["not_nifti", "unwritable", "foreign_folder"])
def test_predict_bad_input_is_one_clear_error_and_leaves_nothing(reference_run, workdir, capsys, problem):
    _, res = reference_run
    scan = next((next((workdir / "data" / "raw").iterdir()) / "train_2" / "data").glob("*.nii.gz"))
    out = workdir / f"pred-{problem}"
    if problem == "not_nifti":
        scan = workdir / "notes.txt"
        scan.write_text("not a scan")
    elif problem == "unwritable":
        blocker = workdir / "a_file"
        blocker.write_text("x")
        out = blocker / "sub"
    else:
        out.mkdir()
        (out / "keep.txt").write_text("user data")
    rc = cli_main(["predict", str(scan), "--checkpoint", str(res.best_checkpoint), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("ichseg predict: error:")
    if problem == "foreign_folder":
        assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    elif problem == "not_nifti":
        assert "notes.txt" in err[0] and not out.exists()


@pytest.mark.parametrize("select_on", ["dice", "strict_dice"])
def test_best_checkpoint_is_the_first_best_of_the_named_validation_score(workdir, select_on):
    profile = tiny_profile(workdir, 12, 4, [f"train.select_on={select_on}"])
    cfg = resolve_run_config(profile, "medsegdiffv2")
    res = train_run(cfg, workdir / f"select-{select_on}", data_root=workdir / "data", progress=False)
    log = pd.read_csv(res.run_dir / "train_log.csv")
    assert res.best_iteration == int(log["iteration"][log[select_on].idxmax()])
    assert res.best_score == pytest.approx(log[select_on].max()) and res.selected_on == select_on
    assert load_checkpoint(res.best_checkpoint)["iteration"] == res.best_iteration


def test_selecting_on_lesion_slices_needs_a_lesion_among_the_validation_slices(workdir, monkeypatch):
    engine_train = sys.modules["ichseg.engine.train"]  # the module (ichseg.engine.train is also the function)
    real = engine_train.load_split

    def lesion_free(prepared, split):  # the validation split as read, with every lesion removed
        images, masks, ds = real(prepared, split)
        return images, torch.zeros_like(masks), ds

    monkeypatch.setattr(engine_train, "load_split", lesion_free)
    profile = tiny_profile(workdir, 2, 1, ["train.select_on=strict_dice"])
    cfg = resolve_run_config(profile, "medsegdiffv2")
    with pytest.raises(IchsegError, match="validation slices hold no lesion.*select_on: strict_dice"):
        train_run(cfg, workdir / "select-no-lesion", data_root=workdir / "data", progress=False)


@pytest.mark.parametrize("score, line", [(None, "trained 40 iterations"),
                                         (0.8125, "best validation strict_dice 0.8125 at iteration 40")])
def test_train_command_reports_the_score_the_run_selected_on(tmp_path, monkeypatch, capsys, score, line):
    import argparse

    from ichseg.engine.commands import train as command
    from ichseg.engine.runlog import TrainResult

    result = TrainResult(tmp_path, tmp_path, tmp_path, [], score, 40, None if score is None else "strict_dice")
    monkeypatch.setattr(command, "resolve_run_config", lambda *a, **k: {"profile": "smoke", "train": {"seed": 0}})
    monkeypatch.setattr(command, "train_run", lambda *a, **k: result)
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    assert command.run(parser.parse_args(["--method", "nnunet" if score is None else "full", "--out", str(tmp_path)])) == 0
    assert capsys.readouterr().out == f"{tmp_path}: {line}\n"

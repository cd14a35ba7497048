"""The study driver with tiny stand-in notebooks run by papermill in tmp_path: stamps make a second
pass skip everything, one method's changed parameter re-runs only that method and the results
page, a failing notebook stops the study naming the executed notebook, and with ``jobs=2``
independent stages overlap in time while each stage still starts after its upstream stages."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from ichseg.study import StudyFailed, StudyPass, StudySpec, parse_overrides
from ichseg.study.scheduling import format_timings

HELPERS = Path(__file__).with_name("_study_helpers.py")
KERNEL = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}


def _notebook(path: Path, params: str, body: str) -> Path:
    nb = new_notebook(cells=[new_code_cell(params, metadata={"tags": ["parameters"]}), new_code_cell(body)], metadata=KERNEL)
    nbformat.write(nb, path)
    return path


TRAIN_PARAMS = 'profile: str = "smoke"\nmethod: str = "full"\nseed: int = 0\noverrides: list = []\nout_dir: str = "x"\ndata_root: str = "data"'
EVAL_PARAMS = (TRAIN_PARAMS.replace('out_dir: str = "x"', 'run_dir: str = "r"\nout_dir: str = "x"')
               + '\ndatasets: list = []\nsampler: str = ""\nsteps: int = 0\nensemble: int = 0')
RESULTS_PARAMS = 'profile: str = "smoke"\nresults_dir: str = "r"\nstudy_stamp: str = ""\nbench_file: str = ""'


SPAN = "from _study_helpers import record_span\nrecord_span(Path('spans'), {stage}, {seconds})\n"


def _fake_notebooks(root: Path, seconds: float = 0.0) -> dict[str, Path]:
    """Stand-ins for the four notebooks; with ``seconds`` > 0 each also records its wall-clock span
    (``record_span``) under root/spans after sleeping that long."""
    shutil.copy(HELPERS, root / "_study_helpers.py")  # the kernel runs in root, so it imports from there
    nbs = root / "nbs"
    nbs.mkdir()
    return {
        "prep": nbs / "no-prep-notebook.ipynb",  # absent: the driver prepares in-process
        "train": _notebook(nbs / "train.ipynb", TRAIN_PARAMS, (
            "from pathlib import Path\nfrom _study_helpers import write_run\n"
            "lr = [o for o in overrides if o.startswith('train.lr=')]\n"
            + (SPAN.format(stage="f'train-{method}-s{seed}'", seconds=seconds) if seconds else "")
            + "write_run(Path(out_dir), method, seed, quality=0.3 + 0.1 * len(lr))\n")),
        "evaluate": _notebook(nbs / "evaluate.ipynb", EVAL_PARAMS, (
            "import json\nfrom pathlib import Path\nfrom _study_helpers import write_eval\n"
            "h = json.loads((Path(run_dir) / 'run.json').read_text())['run_hash']\n"
            + (SPAN.format(stage="f'evaluate-{method}-s{seed}'", seconds=seconds) if seconds else "")
            + "for ds in datasets:\n    write_eval(Path(out_dir) / ds, method, ds, h, seed=seed)\n")),
        "results": _notebook(nbs / "results.ipynb", RESULTS_PARAMS, (
            "from pathlib import Path\nfrom ichseg import report\n"
            + (SPAN.format(stage="'results'", seconds=0.0) if seconds else "")
            + "study = report.load_study(results_dir, expected_stamp=study_stamp or None)\n"
            "print(report.table1(report.evaluation_table(study), profile, study.datasets))\n")),
    }


def _fake_prepare(cfg, dataset, data_root):
    out = Path(data_root) / "prepared" / dataset
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "manifest.json").exists():
        (out / "manifest.json").write_text(json.dumps({"fingerprint": f"fp-{dataset}"}))
    return out


def _spec(root: Path, notebooks, **kw) -> StudySpec:
    return StudySpec(profile="smoke", methods=["medsegdiffv2", "full"], seeds=[0], datasets=["instance2022", "bhsd"],
                     root=root, notebooks=notebooks, prepare=_fake_prepare, **kw)


def _statuses(record) -> dict[str, str]:
    return {s["id"]: s["status"] for s in record["stages"]}


@pytest.fixture
def study_root(tmp_path):
    return tmp_path, _fake_notebooks(tmp_path)


def test_second_pass_skips_and_one_method_change_reruns_only_it(study_root):
    root, nbs = study_root
    first = StudyPass(_spec(root, nbs), log=lambda m: None).run()
    assert set(_statuses(first).values()) == {"ran"}
    results = root / "results" / "smoke"
    assert (results / "notebooks" / "train-full-s0.ipynb").is_file() and (results / "results.ipynb").is_file()
    timings = json.loads((results / "timings.json").read_text())
    assert timings["status"] == "complete" and len(timings["stages"]) == 2 + 2 * 2 + 1
    manifest = json.loads((results / "study.json").read_text())
    executed = json.loads((results / "results.ipynb").read_text())
    assert executed["metadata"]["papermill"]["parameters"]["study_stamp"] == manifest["stamp"]

    # nothing changed: every stage is skipped, nothing is rewritten
    mtime = (results / "results.ipynb").stat().st_mtime_ns
    again = StudyPass(_spec(root, nbs), log=lambda m: None)
    assert {a for _, a in again.dry_run()} == {"skip", "skip?"}
    second = again.run()
    assert set(_statuses(second).values()) == {"skipped"}
    assert (results / "results.ipynb").stat().st_mtime_ns == mtime
    assert second["stages"][2]["last_run_seconds"] > 0  # the record keeps how long the stage took

    # one method's parameter changes (the first method, whose config also seeds the prep stages):
    # only its training, its evaluation and the results page run
    changed = parse_overrides(["medsegdiffv2:train.lr=2e-4"])
    third = StudyPass(_spec(root, nbs, overrides=changed), log=lambda m: None).run()
    ran = {k for k, v in _statuses(third).items() if v == "ran"}
    assert ran == {"train-medsegdiffv2-s0", "evaluate-medsegdiffv2-s0", "results"}
    assert json.loads((results / "study.json").read_text())["stamp"] != manifest["stamp"]

    # a changed notebook re-runs every stage of its kind (and what depends on them)
    nb = nbformat.read(nbs["evaluate"], as_version=4)
    nb.cells[1].source += "\n# edited\n"
    nbformat.write(nb, nbs["evaluate"])
    fourth = StudyPass(_spec(root, nbs, overrides=changed), log=lambda m: None).run()
    ran = {k for k, v in _statuses(fourth).items() if v == "ran"}
    assert ran == {"evaluate-full-s0", "evaluate-medsegdiffv2-s0", "results"}


def test_a_failing_notebook_stops_the_study_with_its_path(study_root):
    root, nbs = study_root
    _notebook(nbs["evaluate"], EVAL_PARAMS, "raise RuntimeError('boom in evaluation')")
    messages = []
    with pytest.raises(StudyFailed) as info:
        StudyPass(_spec(root, nbs, jobs=1), log=messages.append).run()
    # the smoke profile starts the full model first (study.start_first): its evaluation fails first
    failed = root / "results" / "smoke" / "notebooks" / "evaluate-full-s0.ipynb"
    assert info.value.notebook == failed and "results/smoke/notebooks/evaluate-full-s0.ipynb" in str(info.value)
    assert "boom in evaluation" in str(info.value)
    executed = json.loads(failed.read_text())  # papermill wrote it, traceback included
    assert executed["metadata"]["papermill"]["exception"] is True
    results = root / "results" / "smoke"
    assert not (results / "notebooks" / "evaluate-medsegdiffv2-s0.ipynb").exists()  # stopped at the first failure
    assert not (results / "study.json").exists() and not (results / "results.ipynb").exists()
    timings = json.loads((results / "timings.json").read_text())
    assert timings["status"] == "failed" and timings["stages"][-1]["status"] == "failed"
    assert any("evaluate-full-s0" in m and "failed" in m for m in messages)  # the timing table is printed


def test_run_folders_are_wiped_only_for_changed_inputs(tmp_path, monkeypatch):
    """Stamp status 'running' with the same stamp -> resume (folder kept); another stamp -> wipe;
    no record at all (e.g. trained beforehand with torchrun) -> kept. No kernel: execute is faked."""
    seen = []
    nbs = _kernel_free_study(tmp_path, monkeypatch, seen,
                             before_train=lambda run_dir: seen.append(("marker", (run_dir / "marker").exists())))
    spec = lambda **kw: StudySpec(profile="smoke", methods=["full"], seeds=[0], datasets=["bhsd"], root=tmp_path,  # noqa: E731
                                  notebooks=nbs, prepare=_fake_prepare, **kw)
    run_dir = tmp_path / "results" / "smoke" / "runs" / "full-s0"
    run_dir.mkdir(parents=True)
    (run_dir / "marker").write_text("trained beforehand")
    StudyPass(spec(), log=lambda m: None).run()
    assert ("marker", True) in seen  # no stamp record: the folder was handed to the notebook as it was

    # an interrupted stage (status running, same stamp) is resumed: its folder is kept
    study = StudyPass(spec(), log=lambda m: None)
    stamp_file = study.stamp_path("train-full-s0")
    rec = json.loads(stamp_file.read_text())
    stamp_file.write_text(json.dumps({**rec, "status": "running"}))
    seen.clear()
    record = study.run()
    assert ("marker", True) in seen and {s["id"]: s["status"] for s in record["stages"]}["train-full-s0"] == "resumed"
    # a resumed training ran its last part only: the time it took is the run's own (run.json)
    row = next(r for r in record["stages"] if r["id"] == "train-full-s0")
    assert row["last_run_seconds"] == 1.0 == json.loads(stamp_file.read_text())["seconds"]  # write_run's wall_time_s

    # changed inputs: the folder of the old run is removed before the notebook runs
    seen.clear()
    StudyPass(spec(overrides=parse_overrides(["train.lr=3e-4"])), log=lambda m: None).run()
    assert ("marker", False) in seen
    assert seen.count("train-full-s0") == 1 and "evaluate-full-s0" in seen and "results" in seen


def test_jobs_2_overlaps_independent_stages_in_dependency_order(tmp_path):
    """Two jobs: the two trainings (independent) overlap in time; each evaluation starts after its
    training ended, the results page after everything; each kernel gets the stage's thread count."""
    nbs = _fake_notebooks(tmp_path, seconds=2.0)
    messages = []
    record = StudyPass(_spec(tmp_path, nbs, jobs=2, threads=3), log=messages.append).run()
    spans = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "spans").glob("*.json")}
    assert set(spans) == {"train-medsegdiffv2-s0", "train-full-s0", "evaluate-medsegdiffv2-s0", "evaluate-full-s0", "results"}
    a, b = spans["train-medsegdiffv2-s0"], spans["train-full-s0"]
    assert a["start"] < b["end"] and b["start"] < a["end"]  # the two trainings ran at the same time
    for v in ("medsegdiffv2", "full"):
        assert spans[f"evaluate-{v}-s0"]["start"] >= spans[f"train-{v}-s0"]["end"]
    assert spans["results"]["start"] >= max(s["end"] for k, s in spans.items() if k != "results")
    assert {s["omp"] for s in spans.values()} == {"3"}  # the stage's own setting, not this process's
    assert {s["torch_threads"] for s in spans.values()} == {min(3, os.cpu_count())}  # torch caps it at the cores
    # the timing record: plan order, per-stage start/end on the pass's clock, wall < sum of stages
    assert record["jobs"] == 2 and record["threads_per_job"] == 3
    assert [r["id"] for r in record["stages"]] == [s.id for s in StudyPass(_spec(tmp_path, nbs), log=lambda m: None).stages] + ["results"]
    rows = {r["id"]: r for r in record["stages"]}
    assert rows["train-full-s0"]["start"] < rows["train-medsegdiffv2-s0"]["end"]
    assert record["total_seconds"] < record["stage_seconds"]
    table = format_timings(record)
    assert "2 at a time" in table and "start" in table.splitlines()[1]
    assert all(s["status"] == "ran" for s in record["stages"])


def test_jobs_2_failure_starts_nothing_more_and_names_the_notebook(tmp_path):
    nbs = _fake_notebooks(tmp_path, seconds=1.0)
    _notebook(nbs["train"], TRAIN_PARAMS, "if method == 'medsegdiffv2':\n    raise RuntimeError('boom in training')\n"
              "import time\ntime.sleep(2)\nfrom pathlib import Path\nfrom _study_helpers import write_run\n"
              "write_run(Path(out_dir), method, seed)\n")
    with pytest.raises(StudyFailed) as info:
        StudyPass(_spec(tmp_path, nbs, jobs=2), log=lambda m: None).run()
    assert "results/smoke/notebooks/train-medsegdiffv2-s0.ipynb" in str(info.value) and "boom in training" in str(info.value)
    results = tmp_path / "results" / "smoke"
    timings = json.loads((results / "timings.json").read_text())
    status = {s["id"]: s["status"] for s in timings["stages"]}
    # the other training was already running: it finishes (and is recorded); nothing else starts
    assert status["train-medsegdiffv2-s0"] == "failed" and status["train-full-s0"] == "ran"
    assert "evaluate-full-s0" not in status and "evaluate-medsegdiffv2-s0" not in status
    assert timings["status"] == "failed" and not (results / "study.json").exists()


def test_a_kernel_that_dies_starting_is_started_again(study_root, monkeypatch):
    import papermill

    root, nbs = study_root
    real, calls = papermill.execute_notebook, []

    def flaky(*args, **kw):
        calls.append(args[0])
        if len(calls) == 1:
            raise RuntimeError("Kernel died before replying to kernel_info")
        return real(*args, **kw)

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    messages = []
    spec = _spec(root, nbs)
    spec.methods = ["full"]
    StudyPass(spec, log=messages.append).run()
    assert calls[0] == calls[1] and any("starting it again" in m for m in messages)


@pytest.mark.parametrize("flag", ["--methods", "--variants"])
def test_study_methods_option_and_its_deprecated_alias(flag, tmp_path, capsys):
    """``--variants`` (the option's former name) still works, and its help says it is deprecated."""
    from ichseg.cli import main as cli_main

    assert cli_main(["study", "--profile", "smoke", flag, "unet", "full", "--seeds", "0", "--datasets", "bhsd",
                     "--root", str(tmp_path), "--dry-run", "--set", "unet:train.lr=1e-3"]) == 0
    plan = [line.split()[1] for line in capsys.readouterr().out.splitlines()]
    assert plan == ["prep-instance2022", "prep-bhsd", "train-unet-s0", "evaluate-unet-s0", "train-full-s0",
                    "evaluate-full-s0", "results"]
    with pytest.raises(SystemExit):
        cli_main(["study", "--help"])
    assert "--variants: deprecated alias of --methods" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("command, flag", [("train", "--method"), ("train", "--variant"),
                                           ("evaluate", "--method"), ("evaluate", "--variant")])
def test_engine_commands_take_method_and_the_deprecated_variant(command, flag):
    import argparse
    import importlib

    module = importlib.import_module(f"ichseg.engine.commands.{command}")
    p = argparse.ArgumentParser()
    module.add_arguments(p)
    args = p.parse_args([flag, "unet"] + (["--checkpoint", "c", "--prepared", "p", "--out", "o"] if command == "evaluate" else []))
    assert args.method == "unet"
    assert "--variant: deprecated alias of --method" in " ".join(p.format_help().split())


def test_jobs_1_starts_the_stage_heading_the_longest_recorded_chain(tmp_path, monkeypatch):
    """With one job and recorded seconds making full's chain the longest, full trains before
    medsegdiffv2 although the plan lists medsegdiffv2 first; then medsegdiffv2's training (a
    longer chain than full's evaluation) comes next. The running stamp keeps the last seconds."""
    nbs = _fake_notebooks(tmp_path, seconds=0.1)
    StudyPass(_spec(tmp_path, nbs), log=lambda m: None).run()
    stamps = tmp_path / "results" / "smoke" / "stamps"
    # medsegdiffv2's last run completed in 100 s; full's took 500 s and was then interrupted while
    # running again (its running record keeps the 500 s); changed stamps make both run
    mdv2 = json.loads((stamps / "train-medsegdiffv2-s0.json").read_text())
    (stamps / "train-medsegdiffv2-s0.json").write_text(json.dumps({**mdv2, "seconds": 100.0, "stamp": "changed"}))
    (stamps / "train-full-s0.json").write_text(json.dumps(
        {"stamp": "changed", "status": "running", "kind": "train", "last_run_seconds": 500.0}))
    record = StudyPass(_spec(tmp_path, nbs), log=lambda m: None).run()
    ran = [r for r in sorted(record["stages"], key=lambda r: r["start"]) if r["status"] == "ran"]
    assert ran[0]["id"] == "train-full-s0" and ran[1]["id"] == "train-medsegdiffv2-s0"
    assert json.loads((stamps / "train-full-s0.json").read_text())["status"] == "complete"
    # a pass interrupted while a stage runs leaves its running record with the last seconds
    rec = json.loads((stamps / "train-full-s0.json").read_text())
    (stamps / "train-full-s0.json").write_text(json.dumps({**rec, "stamp": "changed"}))

    def interrupted(self, stage):
        raise KeyboardInterrupt

    monkeypatch.setattr(StudyPass, "execute", interrupted)
    with pytest.raises(KeyboardInterrupt):
        StudyPass(_spec(tmp_path, nbs), log=lambda m: None).run()
    running = json.loads((stamps / "train-full-s0.json").read_text())
    assert running["status"] == "running" and running["last_run_seconds"] == rec["seconds"]


def _kernel_free_study(tmp_path, monkeypatch, seen: list, before_train=None) -> dict:
    """Replace notebook execution by in-process stand-ins that record each stage id in ``seen`` and
    write what the engine would (a training also records its resolved config and an nnU-Net
    folder; ``before_train(run_dir)`` sees the run folder as the notebook would find it); returns
    the notebooks for a StudySpec."""
    import yaml

    def fake_execute(self, stage):
        seen.append(stage.id)
        if stage.kind == "train":
            from _study_helpers import write_run

            run_dir = Path(self.root) / stage.parameters["out_dir"]
            if before_train is not None:
                before_train(run_dir)
            write_run(run_dir, stage.parameters["method"], stage.parameters["seed"])
            (run_dir / "nnunet").mkdir(exist_ok=True)
            # the engine records the resolved config, plus what it read from the data
            cfg = json.loads(json.dumps(stage.inputs["config"]))
            cfg["model"] = {**cfg.get("model", {}), "in_channels": 1}
            (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
        elif stage.kind == "evaluate":
            from _study_helpers import write_eval

            h = json.loads((Path(self.root) / stage.parameters["run_dir"] / "run.json").read_text())["run_hash"]
            for ds in stage.parameters["datasets"]:
                write_eval(Path(self.root) / stage.parameters["out_dir"] / ds, stage.parameters["method"], ds, h)
        if stage.kind != "prep":  # the executed notebook, as papermill writes it
            stage.output.parent.mkdir(parents=True, exist_ok=True)
            stage.output.write_text("{}")

    monkeypatch.setattr(StudyPass, "execute", fake_execute)
    monkeypatch.syspath_prepend(str(HELPERS.parent))
    nbs = {k: tmp_path / f"{k}.ipynb" for k in ("train", "evaluate", "results")}
    for p in nbs.values():
        p.write_text("{}")
    return {**nbs, "prep": tmp_path / "none.ipynb"}


def test_a_first_pass_starts_the_longest_known_chain_first(tmp_path, monkeypatch):
    """No recorded durations: the profile's study.start_first decides (smoke: the trainings, longest
    first), each method's whole chain first, the preparations its evaluation needs included."""
    order = []
    nbs = _kernel_free_study(tmp_path, monkeypatch, order)
    spec = StudySpec(profile="smoke", methods=["unet", "nnunet", "medsegdiffv2"], seeds=[0], datasets=["bhsd"],
                     root=tmp_path, notebooks=nbs, prepare=_fake_prepare, jobs=1)
    StudyPass(spec, log=lambda m: None).run()
    trains = [s for s in order if s.startswith("train-")]
    assert trains == ["train-nnunet-s0", "train-medsegdiffv2-s0", "train-unet-s0"]
    assert order.index("evaluate-nnunet-s0") < order.index("train-medsegdiffv2-s0")  # its whole chain first


def test_keep_trained_re_scores_recorded_trainings_after_a_code_change(tmp_path, monkeypatch):
    """--keep-trained: after a code change, completed preparations and trainings made from the same
    inputs are kept (their stamps stay on disk), evaluations and the results page run again; a
    training whose config changed, or a pass without the flag, trains again. No kernel."""
    import ichseg.study.stamps as stamps

    seen = []
    nbs = _kernel_free_study(tmp_path, monkeypatch, seen)
    spec = lambda **kw: StudySpec(profile="smoke", methods=["full"], seeds=[0], datasets=["bhsd"], root=tmp_path,  # noqa: E731
                                  notebooks=nbs, prepare=_fake_prepare, **kw)
    StudyPass(spec(), log=lambda m: None).run()
    results = tmp_path / "results" / "smoke"
    trained = json.loads((results / "stamps" / "train-full-s0.json").read_text())["stamp"]

    real_code_hash = stamps.code_hash
    monkeypatch.setattr(stamps, "code_hash", lambda deps: "changed-" + real_code_hash(deps))  # the library changed
    study = StudyPass(spec(keep_trained=True), log=lambda m: None)
    assert dict(study.dry_run())["train-full-s0"] == "skip"
    seen.clear()
    record = study.run()
    assert _statuses(record) == {"prep-instance2022": "kept", "prep-bhsd": "kept", "train-full-s0": "kept",
                                 "evaluate-full-s0": "ran", "results": "ran"}
    assert "train-full-s0" not in seen and "evaluate-full-s0" in seen
    manifest = json.loads((results / "study.json").read_text())
    assert manifest["stages"]["train-full-s0"] == trained  # the training's own record, as made

    # a preparation made again (here: its record lost) is new input: its trainings are made again
    (results / "stamps" / "prep-instance2022.json").unlink()
    seen.clear()
    record = StudyPass(spec(keep_trained=True), log=lambda m: None).run()
    assert _statuses(record)["prep-instance2022"] == "ran" and "train-full-s0" in seen
    # a changed run config is not the same training: it trains again, flag or not
    seen.clear()
    StudyPass(spec(keep_trained=True, overrides=parse_overrides(["train.lr=3e-4"])), log=lambda m: None).run()
    assert "train-full-s0" in seen
    # without the flag a code change re-runs the training
    monkeypatch.setattr(stamps, "code_hash", lambda deps: "changed-again-" + real_code_hash(deps))
    seen.clear()
    StudyPass(spec(overrides=parse_overrides(["train.lr=3e-4"])), log=lambda m: None).run()
    assert "train-full-s0" in seen


def test_a_training_whose_weights_are_absent_is_settled_while_its_evaluations_are_current(tmp_path, monkeypatch):
    """Committed results keep no weights: on a clone, a completed training whose evaluations are all
    current is not trained again (its stamp and record stay as made); once an evaluation is stale,
    the weights are needed and it trains again; a run folder missing more than its weights is not
    settled. No kernel."""
    from ichseg.utils.layout import model_path

    seen = []
    nbs = _kernel_free_study(tmp_path, monkeypatch, seen)
    spec = lambda **kw: StudySpec(profile="smoke", methods=["full"], seeds=[0], datasets=["bhsd"], root=tmp_path,  # noqa: E731
                                  notebooks=nbs, prepare=_fake_prepare, **kw)
    StudyPass(spec(), log=lambda m: None).run()
    results = tmp_path / "results" / "smoke"
    run_dir = results / "runs" / "full-s0"
    trained = json.loads((results / "stamps" / "train-full-s0.json").read_text())

    model_path(run_dir, own_folder=False).unlink()  # as a clone of committed results has it
    study = StudyPass(spec(), log=lambda m: None)
    assert dict(study.dry_run())["train-full-s0"] == "skip"
    seen.clear()
    record = study.run()
    assert _statuses(record)["train-full-s0"] == "settled" and _statuses(record)["evaluate-full-s0"] == "skipped"
    assert seen == []  # the results page too is current: nothing ran
    assert json.loads((results / "stamps" / "train-full-s0.json").read_text()) == trained

    # --force remakes everything, weights included
    seen.clear()
    StudyPass(spec(force=True), log=lambda m: None).run()
    assert "train-full-s0" in seen and model_path(run_dir, own_folder=False).is_file()

    # an evaluation made stale (its metrics gone) needs the weights: the training runs again first
    model_path(run_dir, own_folder=False).unlink()
    next((results / "eval" / "full-s0").rglob("metrics.json")).unlink()
    seen.clear()
    record = StudyPass(spec(), log=lambda m: None).run()
    assert seen.index("train-full-s0") < seen.index("evaluate-full-s0")
    assert _statuses(record)["train-full-s0"] == "ran"

    # a run folder that lost more than its weights (its log) is not a completed training
    model_path(run_dir, own_folder=False).unlink()
    (run_dir / "train_log.csv").unlink()
    seen.clear()
    StudyPass(spec(), log=lambda m: None).run()
    assert "train-full-s0" in seen

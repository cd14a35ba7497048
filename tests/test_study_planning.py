"""Planning a pass (``ichseg.study.planning``): the run set from a profile's ``study`` section and
the options on top, and the stages with their folders; no notebook runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ichseg.errors import ConfigError
from ichseg.study import StudySpec, parse_overrides
from ichseg.study.planning import Plan

ROOT = Path(__file__).resolve().parents[1]


def test_overrides_and_plan():
    assert parse_overrides(["train.lr=1", "full:train.iterations=5", "full:loss.alpha=3"]) == {
        "*": ["train.lr=1"], "full": ["train.iterations=5", "loss.alpha=3"]}
    with pytest.raises(ValueError):
        parse_overrides(["train.lr"])
    with pytest.raises(ValueError, match="not in this study"):
        Plan(StudySpec(profile="smoke", methods=["full"], overrides={"resnet18": ["train.lr=1"]}))
    study = Plan(StudySpec(profile="gpu", methods=["full", "medsegdiffv2"]))
    assert study.seeds == [0, 1, 2]  # the gpu profile's study settings: three seeds
    ids = [s.id for s in study.stages]
    assert ids[:4] == ["prep-instance2022", "prep-bhsd", "prep-physionet", "prep-realct"]
    assert ids[4:6] == ["train-full-s0", "evaluate-full-s0"] and len(ids) == 4 + 2 * 3 * 2
    train = study.stages[4]
    assert train.parameters["out_dir"] == "results/gpu/runs/full-s0" and train.notebook.name == "train.ipynb"



def test_method_seeds_of_a_profile_and_seeds_override():
    """The cpu profile runs three seeds of the two models both tables compare, one of the others;
    ``--seeds`` applies to every method."""
    study = Plan(StudySpec(profile="cpu", methods=["medsegdiffv2", "unet", "full"]))
    assert study.seeds_of == {"medsegdiffv2": [0, 1, 2], "unet": [0], "full": [0, 1, 2]}
    trains = [s.id for s in study.stages if s.kind == "train"]
    assert trains == ["train-medsegdiffv2-s0", "train-medsegdiffv2-s1", "train-medsegdiffv2-s2", "train-unet-s0",
                      "train-full-s0", "train-full-s1", "train-full-s2"]
    runs = study.run_set()["runs"]
    assert [(r["method"], r["seed"]) for r in runs if r["method"] == "unet"] == [("unet", 0)]
    assert study.run_set()["seeds"] == [0, 1, 2]
    one = Plan(StudySpec(profile="cpu", methods=["medsegdiffv2", "unet"], seeds=[4]))
    assert one.seeds_of == {"medsegdiffv2": [4], "unet": [4]}



def test_method_overrides_of_a_profile_reach_only_their_methods():
    """The cpu profile trains the two ResNet18-branch variants for 3,000 iterations and the others
    for the profile's 1,500; a ``--set METHOD:`` override comes after the profile's and wins."""
    study = Plan(StudySpec(profile="cpu", methods=["medsegdiffv2", "resnet18", "full", "unet"]))
    iterations = {m: study.configs[(m, 0)]["train"]["iterations"] for m in study.methods}
    assert iterations == {"medsegdiffv2": 1500, "resnet18": 3000, "full": 3000, "unet": 2400}
    trains = {s.id: s.parameters["overrides"] for s in study.stages if s.kind == "train"}
    assert trains["train-full-s2"] == ["train.iterations=3000"] and trains["train-medsegdiffv2-s0"] == []
    mine = Plan(StudySpec(profile="cpu", methods=["full"], overrides={"full": ["train.iterations=40"]}))
    assert mine.configs[("full", 1)]["train"]["iterations"] == 40
    from ichseg.study import profiles

    assert profiles.study_settings("smoke")["method_overrides"] == {}



def test_one_list_of_methods_serves_engine_profiles_and_driver():
    """The study runs the engine's methods (``ichseg.engine.config.METHODS``, and the variants beyond
    the paper in ``ALL_METHODS`` where a profile names them), not a list of its own."""
    from ichseg.engine import methods as engine_methods
    from ichseg.engine.config import ALL_METHODS, METHODS, available_profiles
    from ichseg.report.paper import METHOD_ORDER, VARIANT_ORDER
    from ichseg.study import planning, profiles
    from ichseg.models.registry import BASELINES, BEYOND_PAPER, VARIANTS

    assert profiles.METHODS is METHODS and engine_methods.METHODS is METHODS
    assert planning.ALL_METHODS is ALL_METHODS and engine_methods.ALL_METHODS is ALL_METHODS
    assert METHODS == (*VARIANTS, *BASELINES, "nnunet") and ALL_METHODS == (*METHODS, *BEYOND_PAPER)
    for p in available_profiles():
        methods = profiles.study_settings(p)["methods"]
        assert set(methods) <= set(ALL_METHODS)
        # the evidence pass goes beyond the paper; smoke (`make book`'s budget) runs Table 1's six models
        expected = {"evidence": methods, "smoke": ["medsegdiffv2", "full", "unet", "transunet", "ukan", "nnunet"]}
        assert methods == expected.get(p, list(METHODS)), p
    assert set(METHOD_ORDER) == set(METHODS) and VARIANT_ORDER == tuple(VARIANTS)  # the report orders the same names
    with pytest.raises(ValueError, match="--methods: unknown vnet; known: medsegdiffv2, .*, nnunet"):
        Plan(StudySpec(profile="smoke", methods=["full", "vnet"]))


def test_stages_carry_their_folders_as_paths():
    plan = Plan(StudySpec(profile="smoke", methods=["unet", "nnunet"], seeds=[0], datasets=["bhsd"]))
    train, evaluate = [s for s in plan.stages if s.method == "nnunet"]
    assert train.run_dir == plan.results_dir / "runs" / "nnunet-s0" == evaluate.run_dir
    assert evaluate.eval_dir == plan.results_dir / "eval" / "nnunet-s0"
    assert train.parameters["out_dir"] == plan.rel(train.run_dir)
    assert [p.name for p in train.outputs] == ["run.json", "train_log.csv", "nnunet"]
    unet = next(s for s in plan.stages if s.id == "train-unet-s0")
    assert [p.relative_to(unet.run_dir).as_posix() for p in unet.outputs] == ["run.json", "train_log.csv", "checkpoints/best.pt"]


def test_the_description_is_derived_from_the_settings():
    """The profile's words say what it is for and state no setting; the numbers come from the
    resolved configs (the cpu profile trains two variants 3,000 iterations, the others 1,500)."""
    plan = Plan(StudySpec(profile="cpu"))
    text = plan.description
    assert text.startswith("synthetic head CT, 2-core CPU, bf16, 128x128, 200 training-set patients")
    assert "1,500 iterations for medsegdiffv2, cross_attention, reduce_layer" in text
    assert "3,000 iterations for resnet18, full" in text and "3 seeds for medsegdiffv2, full; 1 seed for the others" in text
    assert plan.run_set()["description"] == text
    for name in ("smoke", "cpu", "gpu", "paper"):
        words = yaml.safe_load((ROOT / "ichseg" / "profiles" / f"{name}.yaml").read_text())["description"]
        assert not re.search(r"\d+x\d+|\d\s*iterations|\bseeds?\b|patients", words), (name, words)


def _profile(tmp_path, edit) -> Path:
    cfg = yaml.safe_load((ROOT / "ichseg" / "profiles" / "smoke.yaml").read_text())
    edit(cfg)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["study"].update(sedes=[0]), r"study: unknown key\(s\) sedes"),
    (lambda c: c["study"].update(seeds=[-1]), r"study.seeds: must be an integer >= 0, got -1"),
    (lambda c: c["study"].update(method_seeds={"vnet": [0]}), r"study.method_seeds: unknown value 'vnet'"),
    (lambda c: c["study"].update(method_overrides={"full": ["iterations=5"]}), r"study.method_overrides.full: expected SECTION.KEY=VALUE"),
])
def test_a_wrong_study_setting_fails_when_planned_naming_the_key_and_the_file(tmp_path, edit, message):
    path = _profile(tmp_path, edit)
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: {message}"):
        Plan(StudySpec(profile=str(path), methods=["full"]))


def test_jobs_that_are_no_count_are_one_line_errors(tmp_path):
    """``ichseg study --jobs -3``: the one-line error of a wrong option (exit 2), not an internal error."""
    out = subprocess.run([sys.executable, "-m", "ichseg.cli", "study", "--profile", "smoke", "--methods", "full",
                          "--root", str(tmp_path), "--dry-run", "--jobs", "-3"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and "internal error" not in out.stderr
    assert out.stderr.strip().splitlines() == ["ichseg study: error: --jobs: must be a positive integer, got -3"]


def test_the_run_set_line_counts_phantom_patients_only_where_the_phantom_trains():
    from types import SimpleNamespace

    from ichseg.study.planning import describe

    data = {"raw": {"own": "/data/our-ich"}, "phantom": {"cases": {"instance2022": 200}}, "prep": {"size": 64}}
    plan = SimpleNamespace(train_dataset="own", methods=["unet"], seeds_of={"unet": [0]}, configs={}, prep_config={"data": data})
    assert describe("own scans", plan) == "own scans, 64x64; 1 seed for each method"
    plan.train_dataset, data["raw"] = "instance2022", {}
    assert describe("phantom", plan) == "phantom, 64x64, 200 training-set patients; 1 seed for each method"


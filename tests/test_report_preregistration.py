"""The pre-registration of a pass: every run with its config hash, one budget rule, the family of
comparisons with what each can detect, written once and never replaced."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from ichseg import cli
from ichseg.engine.config import load_profile
from ichseg.errors import IchsegError
from ichseg.report.preregistration import FILE, preregistration, read_pilot, write_preregistration
from ichseg.report.stats import smallest_detectable_difference


def test_every_run_has_its_seed_and_config_hash(plan):
    runs = plan["runs"]
    seeds = plan["seeds"]
    assert len(runs) == sum(len(v) for v in seeds.values())
    assert seeds["medsegdiffv2"] == [0, 1, 2, 3, 4] and seeds["full_lite0"] == [0, 1, 2] and seeds["ukan"] == [0]
    hashes = [r["config_hash"] for r in runs]
    assert len(set(hashes)) == len(hashes)  # the seed is part of every run's config
    assert plan["methods"][:5] == ["medsegdiffv2", "cross_attention", "reduce_layer", "resnet18", "full"]


def test_rules_metrics_and_family(plan):
    assert "2000 iterations of batch 8" in plan["budget_rule"]["diffusion"] and "nnunet" in plan["budget_rule"]
    assert "strict_dice on the val split" in plan["checkpoint_rule"]
    assert [m.split(":")[0] for m in plan["metrics"]["primary"]] == ["strict_dice", "volume_dice"]
    ids = [c["id"] for c in plan["comparisons"]]
    assert "full-vs-medsegdiffv2" in ids and "full-vs-nnunet" in ids and "pretrained-vs-scratch" in ids
    assert {"cross:bhsd", "cross:physionet", "cross:realct"} <= set(ids)
    assert f"across the {len(ids)} comparisons" in plan["multiplicity"]
    head = next(c for c in plan["comparisons"] if c["id"] == "full-vs-medsegdiffv2")
    expected = 100 * smallest_detectable_difference(0.017, 5, 5, alpha=0.05 / len(ids))
    assert head["seeds"] == "5 vs 5" and head["smallest_detectable_points"] == pytest.approx(expected, abs=0.01)
    assert plan["smallest_difference_that_matters_points"] == 2.0 and "0.3" in plan["convergence"]


def test_written_once(tmp_path):
    path = write_preregistration("evidence", root=tmp_path)
    assert path == tmp_path / "evidence" / FILE
    text = path.read_text()
    assert yaml.safe_load(text)["profile"] == "evidence" and text.startswith("# The plan")
    with pytest.raises(IchsegError) as err:
        write_preregistration("evidence", root=tmp_path)
    assert "never rewritten" in str(err.value) and "\n" not in str(err.value)
    assert path.read_text() == text


def test_a_profile_without_one_budget_or_study_is_refused():
    profile = load_profile("evidence")
    uneven = dict(profile, study={**profile["study"], "method_overrides": {"full": ["train.iterations=4000"]}})
    with pytest.raises(IchsegError, match="one budget"):
        preregistration(uneven)
    with pytest.raises(IchsegError, match="no study section"):
        preregistration("cpu")
    with pytest.raises(IchsegError, match="seed_sd"):
        preregistration("evidence", seed_sd=math.nan)


def _pilot(tmp_path, **fields):
    path = tmp_path / "pilot.json"
    path.write_text(json.dumps({"profile": "evidence", "split": "val", "seed_sd_full_best_val_strict_dice": 0.02,
                                "paper_objective_fails_for": [], "convergence_threshold": 0.12, **fields}))
    return path


def test_the_command_writes_the_plan_once(tmp_path, capsys):
    pilot = _pilot(tmp_path)
    assert cli.main(["preregister", "--profile", "evidence", "--pilot", str(pilot), "--results", str(tmp_path)]) == 0
    path = tmp_path / "evidence" / FILE
    plan = yaml.safe_load(path.read_text())
    assert plan["pilot_seed_sd_points"] == 2.0 and plan["pilot"]["file"] == pilot.as_posix()
    assert plan["convergence_threshold"] == 0.12 and "Dice of 0.12" in plan["convergence"]  # the pilot's, on validation
    assert plan["test_datasets"] == ["instance2022", "bhsd", "physionet", "realct"] and plan["evaluation"]["steps"] == 5
    assert str(path) in capsys.readouterr().out
    before = path.read_text()
    assert cli.main(["preregister", "--profile", "evidence", "--seed-sd", "0.03", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "never rewritten" in err and err.count("\n") == 1 and path.read_text() == before


def test_the_command_refuses_once_a_test_metric_exists(tmp_path, capsys):
    metric = tmp_path / "evidence" / "eval" / "full-s0" / "bhsd" / "metrics.json"
    metric.parent.mkdir(parents=True)
    metric.write_text("{}")
    assert cli.main(["preregister", "--profile", "evidence", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "before any test evaluation" in err and str(metric) in err and err.count("\n") == 1
    assert not (tmp_path / "evidence" / FILE).exists()


@pytest.mark.parametrize("fields, message", [({"profile": "cpu"}, "not of 'evidence'"),
                                             ({"split": "test"}, "only validation patients"),
                                             ({"seed_sd_full_best_val_strict_dice": None}, "no seed_sd")])
def test_a_pilot_of_another_profile_or_split_is_refused(tmp_path, fields, message):
    with pytest.raises(IchsegError, match=message):
        read_pilot(_pilot(tmp_path, **fields), "evidence")

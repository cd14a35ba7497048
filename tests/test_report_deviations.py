"""A pass against its pre-registration: the deviations of fabricated study folders (missing,
unplanned and retrained runs, changed seeds, methods and evaluation settings), and the order of the
plan's commit and the first test metric's in a throwaway git repository."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from ichseg.errors import IchsegError
from ichseg.report.deviations import commit_order, deviations, preregistration_section

EVALUATE = {"sampler": "ddim", "steps": 10, "ensemble": 3, "seed": 0}
SEEDS = {"medsegdiffv2": [0, 1], "full": [0, 1]}
DATASETS = ["instance2022", "bhsd"]
PLACEHOLDER = re.compile(r"\bno\b[^.\n]{0,60}\boutput\b|\bnot available in this build\b", re.I)  # test_book_outputs'


def plan(seeds=SEEDS) -> dict:
    return {"profile": "evidence", "methods": list(seeds), "seeds": seeds, "test_datasets": DATASETS,
            "runs": [{"method": m, "seed": s, "config_hash": f"{m}{s}hash"} for m, ss in seeds.items() for s in ss],
            "evaluation": EVALUATE}


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def run_folder(root: Path, method: str, seed: int, run_hash: str | None = None, evaluate=EVALUATE) -> None:
    rid = f"{method}-s{seed}"
    _write(root / "runs" / rid / "run.json", {"method": method, "run_hash": run_hash or f"{method}{seed}hash",
                                              "status": "complete"})
    for ds in DATASETS:
        _write(root / "eval" / rid / ds / "metrics.json", {"method": method, "dataset": ds, "evaluate": evaluate})


def study_folder(tmp_path: Path, seeds=SEEDS, datasets=DATASETS) -> Path:
    """A results folder that ran exactly ``seeds`` (every run as planned) with the plan of ``SEEDS``."""
    root = tmp_path / "evidence"
    root.mkdir()
    (root / "preregistration.yaml").write_text(yaml.safe_dump(plan()))
    runs = [{"method": m, "seed": s, "run_dir": f"runs/{m}-s{s}", "eval_dir": f"eval/{m}-s{s}"}
            for m, ss in seeds.items() for s in ss]
    _write(root / "study.json", {"methods": list(seeds), "datasets": datasets, "runs": runs})
    for r in runs:
        run_folder(root, r["method"], r["seed"])
    return root


def rows(root: Path) -> list[tuple[str, str, str, str]]:
    return [tuple(r) for r in deviations(root).itertuples(index=False)]


def test_a_pass_as_planned_has_no_deviation(tmp_path):
    root = study_folder(tmp_path)
    assert deviations(root).empty
    text, table = preregistration_section(root)
    assert table is None and text.endswith("no deviation.")


def test_a_missing_run_a_changed_hash_and_an_unplanned_run(tmp_path):
    root = study_folder(tmp_path)
    (root / "runs" / "full-s1" / "run.json").unlink()  # study.json still lists it
    run_folder(root, "medsegdiffv2", 1, run_hash="retrained")
    run_folder(root, "unet", 0, run_hash="u0")  # a run folder outside the study's run set
    assert rows(root) == [("config changed", "medsegdiffv2-s1", "medsegdiffv21hash", "retrained"),
                          ("planned run missing", "full-s1", "full1hash", "no run.json"),
                          ("unplanned run", "unet-s0", "not planned", "u0")]
    text, table = preregistration_section(root)
    assert "deviates from its plan in 3 ways" in text and list(table["run"]) == ["medsegdiffv2-s1", "full-s1", "unet-s0"]


def test_an_unfinished_run_and_a_record_naming_its_variant(tmp_path):
    root = study_folder(tmp_path)
    _write(root / "runs" / "full-s0" / "run.json", {"variant": "full", "run_hash": "full0hash", "status": "running"})
    assert rows(root) == [("run not complete", "full-s0", "complete", "running")]


def test_changed_seeds_methods_datasets_and_evaluation_settings(tmp_path):
    root = study_folder(tmp_path, seeds={"full": [0, 1, 2], "unet": [0]}, datasets=["instance2022"])
    run_folder(root, "full", 0, evaluate={**EVALUATE, "steps": 5})
    found = rows(root)
    assert ("method dropped", "medsegdiffv2", "0, 1", "not run") in found
    assert ("seeds changed", "full", "0, 1", "0, 1, 2") in found
    assert ("method added", "unet", "not planned", "0") in found
    assert ("test datasets changed", "", "instance2022, bhsd", "instance2022") in found
    assert ("evaluation settings changed", "full-s0 on bhsd", "steps 10", "steps 5") in found
    # the runs these rows account for are not listed again one by one
    assert not any(r[0] in ("planned run missing", "unplanned run") for r in found)
    assert len(found) == 6  # the evaluation row for each of the two datasets


def test_a_pass_without_a_plan_says_it_is_not_preregistered(tmp_path):
    root = study_folder(tmp_path)
    (root / "preregistration.yaml").unlink()
    text, table = preregistration_section(root)
    assert table is None and "not pre-registered" in text and "`evidence`" in text
    assert PLACEHOLDER.search(text) is None
    with pytest.raises(FileNotFoundError):
        deviations(root)


def _git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "HOME": str(repo), "PATH": "/usr/bin:/bin:/usr/local/bin"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def _commit(repo: Path, path: str, message: str) -> str:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(yaml.safe_dump(plan()) if path == PLAN else json.dumps({"note": message}))
    _git(repo, "add", path)
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def empty_repo(tmp_path):
    _git(tmp_path, "init", "-q")
    return tmp_path


PLAN, METRIC = "results/evidence/preregistration.yaml", "results/evidence/eval/full-s0/bhsd/metrics.json"


def test_a_plan_committed_before_the_first_test_metric_precedes_it(empty_repo):
    repo = empty_repo
    plan_sha = _commit(repo, PLAN, "plan")
    order = commit_order(repo / "results/evidence")
    assert order["plan_commit"] == plan_sha and order["metrics_commit"] is None and order["precedes"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*", order["plan_date"])
    assert "no test metric of the pass is committed yet" in preregistration_section(repo / "results/evidence")[0]
    metric_sha = _commit(repo, METRIC, "metric")
    _commit(repo, "results/evidence/eval/full-s1/bhsd/metrics.json", "a later metric")
    order = commit_order(repo / "results/evidence")
    assert order["plan_commit"] == plan_sha and order["metrics_commit"] == metric_sha and order["precedes"] is True
    assert "before the first test metric" in preregistration_section(repo / "results/evidence")[0]
    (repo / "book").mkdir()
    (repo / "book" / "results").symlink_to("../results")  # as the book reaches the results
    assert commit_order(repo / "book" / "results" / "evidence") == order


def test_a_plan_committed_after_a_test_metric_does_not(empty_repo):
    repo = empty_repo
    metric_sha = _commit(repo, METRIC, "metric")
    _commit(repo, PLAN, "plan")
    order = commit_order(repo / "results/evidence")
    assert order["metrics_commit"] == metric_sha and order["precedes"] is False
    assert "**not** before" in preregistration_section(repo / "results/evidence")[0]


def test_a_plan_committed_with_the_metrics_does_not_precede_them(empty_repo):
    repo = empty_repo
    (repo / "results/evidence/eval/full-s0/bhsd").mkdir(parents=True)
    (repo / METRIC).write_text("{}")
    _git(repo, "add", METRIC)
    sha = _commit(repo, PLAN, "plan and metric in one commit")
    order = commit_order(repo / "results/evidence")
    assert order["plan_commit"] == order["metrics_commit"] == sha and order["precedes"] is False


def test_a_broken_file_is_named_in_one_line(tmp_path):
    root = study_folder(tmp_path)
    (root / "runs" / "full-s0" / "run.json").write_text("{not json")
    with pytest.raises(IchsegError, match=r"full-s0/run.json: not JSON") as err:
        deviations(root)
    assert "\n" not in str(err.value)
    (root / "preregistration.yaml").write_text("- a list\n")
    with pytest.raises(IchsegError, match="not a pre-registration"):
        deviations(root)


def test_outside_git_there_is_no_commit(tmp_path):
    root = study_folder(tmp_path)
    order = commit_order(root)
    assert order == {"plan_commit": None, "plan_date": None, "metrics_commit": None, "precedes": None}
    assert "not committed" in preregistration_section(root)[0]

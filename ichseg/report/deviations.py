"""What a pass did against what it pre-registered (``results/<profile>/preregistration.yaml``).

``deviations(results_dir)`` compares the plan with the study folder: the run set of ``study.json``
(methods, seeds per method, test datasets), every run folder's ``run.json`` (its ``run_hash``
against the plan's ``config_hash`` for that method and seed, which is the hash training records:
``ichseg.engine.config.trained_run_hash``) and every test evaluation's ``metrics.json`` (its
evaluation settings against the plan's). ``commit_order(results_dir)`` says which git commit first
added the plan and whether it precedes the first commit that added any of the profile's test
metrics: only a plan committed before them is a pre-registration. ``preregistration_section``
writes both for the evidence page.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import yaml

from ..errors import IchsegError
from ..utils.layout import METRICS, RUN_INFO, metrics_path
from ..utils.stamps import STUDY_FILE
from .preregistration import FILE, planned_evaluation

COLUMNS = ["deviation", "run", "planned", "found"]
RUN_DIR = re.compile(r"^(?P<method>.+)-s(?P<seed>\d+)$")


def read_plan(results_dir: str | Path) -> dict | None:
    """The pre-registration of a results folder (None when it has none)."""
    path = Path(results_dir) / FILE
    if not path.is_file():
        return None
    plan = yaml.safe_load(path.read_text())
    if not isinstance(plan, dict) or not isinstance(plan.get("runs"), list) or not isinstance(plan.get("seeds"), dict):
        raise IchsegError(f"{path}: not a pre-registration (a mapping with runs and seeds; "
                          "ichseg preregister writes one)")
    return plan


def _json(path: Path) -> dict:
    """A study file's record ({} when absent)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise IchsegError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise IchsegError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _row(kind: str, run: str = "", planned="", found="") -> dict:
    return {"deviation": kind, "run": run, "planned": str(planned), "found": str(found)}


def _method(record: dict) -> str | None:
    """The method a study record names (``variant`` in records written before baselines joined)."""
    return record.get("method") or record.get("variant")


def _listed(items) -> str:
    return ", ".join(map(str, items))


def _found_runs(results_dir: Path, study: dict) -> dict[tuple[str, int], dict]:
    """(method, seed) -> run.json of every run the study lists or ``runs/`` holds ({} when absent)."""
    found = {(_method(r), int(r["seed"])): _json(results_dir / r["run_dir"] / RUN_INFO) for r in study.get("runs", [])}
    for info_path in sorted(results_dir.glob(f"runs/*/{RUN_INFO}")):
        name = RUN_DIR.match(info_path.parent.name)
        if name:
            info = _json(info_path)
            found.setdefault((_method(info) or name["method"], int(name["seed"])), info)
    return found


def _plan_level(plan: dict, study: dict) -> tuple[list[dict], set[tuple[str, int]]]:
    """Methods, seeds and test datasets of ``study.json`` against the plan, and the (method, seed)
    pairs those rows already account for."""
    if not study:
        return [], set()
    rows, explained = [], set()
    planned_seeds = {m: [int(s) for s in v] for m, v in plan["seeds"].items()}
    found_seeds: dict[str, list[int]] = {}
    for r in study.get("runs", []):
        found_seeds.setdefault(_method(r), []).append(int(r["seed"]))
    for m in planned_seeds:
        if m not in found_seeds:
            rows.append(_row("method dropped", m, _listed(planned_seeds[m]), "not run"))
            explained |= {(m, s) for s in planned_seeds[m]}
        elif sorted(found_seeds[m]) != sorted(planned_seeds[m]):
            rows.append(_row("seeds changed", m, _listed(planned_seeds[m]), _listed(found_seeds[m])))
            explained |= {(m, s) for s in set(planned_seeds[m]) ^ set(found_seeds[m])}
    for m in found_seeds:
        if m not in planned_seeds:
            rows.append(_row("method added", m, "not planned", _listed(found_seeds[m])))
            explained |= {(m, s) for s in found_seeds[m]}
    if plan.get("test_datasets") and sorted(study.get("datasets", [])) != sorted(plan["test_datasets"]):
        rows.append(_row("test datasets changed", "", _listed(plan["test_datasets"]), _listed(study.get("datasets", []))))
    return rows, explained


def _planned(plan: dict) -> dict[tuple[str, int], str]:
    """(method, seed) -> the config hash the plan fixes for that run."""
    return {(r["method"], int(r["seed"])): r["config_hash"] for r in plan["runs"]}


def _run_level(plan: dict, found: dict, explained: set) -> list[dict]:
    """Planned runs missing or incomplete, unplanned runs, and runs trained with another config."""
    planned = _planned(plan)
    rows = []
    for (m, s), want in planned.items():
        info, rid = found.get((m, s)), f"{m}-s{s}"
        if not info:
            if (m, s) not in explained:
                rows.append(_row("planned run missing", rid, want, "no run.json"))
            continue
        if info.get("run_hash") != want:
            rows.append(_row("config changed", rid, want, info.get("run_hash")))
        if info.get("status") != "complete":
            rows.append(_row("run not complete", rid, "complete", info.get("status")))
    for (m, s), info in found.items():
        if (m, s) not in planned and (m, s) not in explained and info:
            rows.append(_row("unplanned run", f"{m}-s{s}", "not planned", info.get("run_hash")))
    return rows


def progress(results_dir: str | Path, plan: dict | None = None) -> dict | None:
    """How far a pass has come against its plan: ``runs`` planned, ``trained`` (a complete run.json
    with the planned config hash) and ``evaluated`` (those with a test metric on every planned test
    set); None when the folder has no pre-registration."""
    results_dir = Path(results_dir)
    plan = read_plan(results_dir) if plan is None else plan
    if plan is None:
        return None
    found, planned = _found_runs(results_dir, _json(results_dir / STUDY_FILE)), _planned(plan)
    trained = [k for k, want in planned.items()
               if found.get(k, {}).get("status") == "complete" and found[k].get("run_hash") == want]
    datasets = plan.get("test_datasets") or []
    evaluated = [(m, s) for m, s in trained
                 if datasets and all(metrics_path(results_dir / "eval" / f"{m}-s{s}" / d).is_file() for d in datasets)]
    return {"runs": len(plan["runs"]), "trained": len(trained), "evaluated": len(evaluated)}


def _settings_diff(want: dict, got: dict) -> tuple[str, str]:
    keys = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    return ", ".join(f"{k} {want.get(k)}" for k in keys), ", ".join(f"{k} {got.get(k)}" for k in keys)


def _evaluation_level(plan: dict, results_dir: Path) -> list[dict]:
    """Test evaluations scored with other settings than the plan's for their method."""
    rows = []
    for path in sorted(results_dir.glob(f"eval/*/*/{METRICS}")):
        metrics, name = _json(path), RUN_DIR.match(path.parent.parent.name)
        want = planned_evaluation(plan, _method(metrics) or (name["method"] if name else ""))
        got = metrics.get("evaluate")
        if want is not None and got is not None and dict(got) != dict(want):
            planned, found = _settings_diff(want, got)
            run = f"{path.parent.parent.name} on {path.parent.name}"
            rows.append(_row("evaluation settings changed", run, planned, found))
    return rows


def deviations(results_dir: str | Path, plan: dict | None = None) -> pd.DataFrame:
    """Every way the study folder differs from its pre-registration (columns ``COLUMNS``; empty when
    none). ``plan``: the pre-registration (default: the folder's own)."""
    results_dir = Path(results_dir)
    plan = read_plan(results_dir) if plan is None else plan
    if plan is None:
        raise FileNotFoundError(f"{results_dir / FILE}: no pre-registration")
    study = _json(results_dir / STUDY_FILE)
    rows, explained = _plan_level(plan, study)
    rows += _run_level(plan, _found_runs(results_dir, study), explained)
    rows += _evaluation_level(plan, results_dir)
    return pd.DataFrame(rows, columns=COLUMNS)


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    except OSError:
        return None


def first_added(folder: Path, *pathspecs: str) -> tuple[str, str] | None:
    """(hash, ISO date) of the earliest commit that added a file matching ``pathspecs`` (relative to
    ``folder``), or None: nothing committed, or ``folder`` outside a git work tree."""
    out = _git(folder, "log", "--diff-filter=A", "--format=%H %cI", "--", *pathspecs)
    lines = out.stdout.split() if out is not None and out.returncode == 0 else []
    return (lines[-2], lines[-1]) if lines else None


def commit_order(results_dir: str | Path) -> dict:
    """``plan_commit`` / ``plan_date``: the commit that first added the pre-registration (None outside
    git or uncommitted); ``metrics_commit``: the first that added a test metric of the profile;
    ``precedes``: True when the plan's commit is a strict ancestor of it, False when not (or when a
    metric is committed and the plan is not), None when no test metric is committed yet."""
    folder = Path(results_dir).resolve()  # the book reaches results/ through a symlink git does not follow
    plan = first_added(folder, FILE) if folder.is_dir() else None
    metrics = first_added(folder, f"eval/*/*/{METRICS}") if folder.is_dir() else None
    out = {"plan_commit": plan and plan[0], "plan_date": plan and plan[1], "metrics_commit": metrics and metrics[0],
           "precedes": None}
    if metrics is not None:
        ancestor = plan is not None and plan[0] != metrics[0] and \
            getattr(_git(folder, "merge-base", "--is-ancestor", plan[0], metrics[0]), "returncode", 1) == 0
        out["precedes"] = bool(ancestor)
    return out


def _order_sentence(profile: str, order: dict) -> str:
    if order["plan_commit"] is None:
        return f"The `{profile}` plan is not committed, so nothing shows it was written before the test evaluation."
    added = f"The `{profile}` plan was committed on {order['plan_date'][:10]} (`{order['plan_commit'][:10]}`)"
    if order["precedes"] is None:
        return f"{added}; no test metric of the pass is committed yet."
    if order["precedes"]:
        return f"{added}, before the first test metric of the pass (`{order['metrics_commit'][:10]}`)."
    return (f"{added}, **not** before the first test metric of the pass (`{order['metrics_commit'][:10]}`): "
            f"its comparisons are exploratory, not pre-registered.")


def preregistration_section(results_dir: str | Path) -> tuple[str, pd.DataFrame | None]:
    """The evidence page's pre-registration paragraph and its table of deviations (None when there
    is none to show)."""
    results_dir = Path(results_dir)
    profile = results_dir.name
    if read_plan(results_dir) is None:
        return (f"The `{profile}` pass is not pre-registered: no plan was written before its test evaluation "
                f"(`ichseg preregister`), so its comparisons are exploratory.", None)
    text = _order_sentence(profile, commit_order(results_dir))
    table = deviations(results_dir)
    if table.empty:
        return f"{text} The pass follows its plan: no deviation.", None
    return f"{text} It deviates from its plan in {len(table)} way{'s' if len(table) != 1 else ''}:", table


__all__ = ["COLUMNS", "commit_order", "deviations", "first_added", "preregistration_section", "progress", "read_plan"]

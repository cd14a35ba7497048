"""The pre-registration of a pass: its plan, written before any test evaluation of it.

``write_preregistration(profile)`` writes ``results/<profile>/preregistration.yaml``: the methods and
their seeds, every run's config hash (``ichseg.engine.config.run_config_hash``, so a run that
differs from the plan shows), the budget and checkpoint rules read from the resolved run configs,
the metrics (primary: lesion-slice Dice at 0.5 and per-volume 3D Dice; secondary: the paper
protocol), the family of comparisons (``claims.preregistered_comparisons``), the interval method,
the multiplicity correction, the decision rule and the smallest difference that matters, and —
given a pilot's seed standard deviation — the smallest difference each comparison can detect.
Committed before the pass's first test metric, it is what the evidence page holds the results to.

The file is never overwritten: a plan changed after the fact is a new file under another name and a
deviation the evidence page lists. The seeds and methods come from the profile's ``study`` section.
The functions that resolve a profile import the engine (and so torch) when called: a book page that
reads a plan does not wait for torch to load.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from ..errors import IchsegError
from ..utils.atomic import atomic_write_text
from ..utils.layout import METRICS
from .claims import PRIMARY_SCORES, SMALLEST_DIFFERENCE, preregistered_comparisons
from .stats import smallest_detectable_difference

FILE = "preregistration.yaml"
ALPHA, CONFIDENCE, N_BOOT = 0.05, 0.95, 4000

INTERVAL = ("two-level percentile bootstrap (ichseg.report.stats.two_level_bootstrap), {n} replicates: each "
            "replicate draws each model's seeds with replacement, then the test clusters with replacement (a "
            "patient's slices together; each real-CT image its own cluster), the same clusters for both models "
            "(paired); {c:.0%} interval of the difference of the means")
MULTIPLICITY = ("Holm's step-down correction across the {m} comparisons below, separately for each primary "
                "metric, family-wise alpha {a}; a comparison that was not run still counts in the family")
DECISION = ("gain or loss claimed (the paper's difference at least the smallest difference that matters): "
            "supports when Holm rejects 'no difference' with the claimed sign; contradicts when it rejects with "
            "the other sign, or when the interval at the family's level (1 - alpha/m) excludes every difference "
            "that matters in the claimed direction; cannot decide otherwise. No difference claimed (the paper's "
            "difference below it): supports when that interval lies inside +-the smallest difference that "
            "matters, contradicts when it lies wholly beyond it, cannot decide otherwise. A verdict needs both "
            "primary metrics to agree; where they differ the claim reads 'cannot decide'")


def study_seeds(profile: dict, methods: list[str]) -> dict[str, list[int]]:
    """Seeds per method from the ``study`` section: ``method_seeds`` replace ``seeds`` for the methods they name."""
    study = profile.get("study") or {}
    default = study.get("seeds") or [0]
    per = study.get("method_seeds") or {}
    return {m: [int(s) for s in per.get(m, default)] for m in methods}


def _runs(profile: dict) -> tuple[list[dict], dict[str, dict]]:
    """One entry per (method, seed) with its config hash — the ``run_hash`` its ``run.json`` will
    record (``trained_run_hash``) — and each method's resolved config (its first seed's)."""
    from ..engine.commands.models import study_methods
    from ..engine.config import resolve_run_config, trained_run_hash

    methods, overrides = study_methods(profile)
    seeds = study_seeds(profile, methods)
    runs, configs = [], {}
    for m in methods:
        for s in seeds[m]:
            cfg = resolve_run_config(profile, m, overrides[m], seed=s)
            configs.setdefault(m, cfg)
            runs.append({"method": m, "seed": s, "config_hash": trained_run_hash(cfg)})
    return runs, configs


def budget_rule(configs: dict[str, dict]) -> dict[str, Any]:
    """The one budget of every diffusion method (refused when they differ) and each baseline's own."""
    from ..engine.config import DIFFUSION, NNUNET, method_kind

    diffusion = {m: c["train"] for m, c in configs.items() if method_kind(m) == DIFFUSION}
    budgets = {(t["iterations"], t["batch_size"], t["eval_every"]) for t in diffusion.values()}
    if len(budgets) > 1:
        raise IchsegError(f"profile: the diffusion methods do not share one budget ({sorted(budgets)}); "
                          "a pre-registered pass holds every diffusion method to the same iterations")
    out: dict[str, Any] = {}
    if budgets:
        its, batch, every = budgets.pop()
        out["diffusion"] = (f"every diffusion method: {its} iterations of batch {batch}, validated every {every} "
                            f"iterations (the same for all, whatever their curves do)")
    for m, c in configs.items():
        if method_kind(m) == NNUNET:
            n = c[NNUNET]
            out[m] = f"{n['epochs']} epochs of {n['iterations_per_epoch']} iterations (its own trainer)"
        elif method_kind(m) != DIFFUSION:
            out[m] = f"{c['train']['iterations']} iterations of batch {c['train']['batch_size']} (its official recipe)"
    return out


def checkpoint_rule(configs: dict[str, dict]) -> str:
    from ..engine.config import NNUNET, method_kind

    trains = [c["train"] for m, c in configs.items() if method_kind(m) != NNUNET]
    rules = {(t["select_on"], t["val_split"]) for t in trains}
    scores = ", ".join(sorted(f"{s} on the {v} split" for s, v in rules))
    return (f"networks: the weights (the EMA average for diffusion methods) at the validation point with the best "
            f"{scores} (validation patients "
            f"carved from the training patients); nnU-Net: its own final checkpoint; the test split is scored "
            f"once per run, after training, and never chooses anything")


def evaluation_block(configs: dict[str, dict]) -> dict[str, Any]:
    """The evaluation settings every method is scored with (``evaluation``), and under
    ``evaluation_per_method`` those of the methods whose settings differ from the first method's."""
    first = next(iter(configs.values()))["evaluate"]
    other = {m: c["evaluate"] for m, c in configs.items() if c["evaluate"] != first}
    return {"evaluation": dict(first), **({"evaluation_per_method": other} if other else {})}


def planned_evaluation(plan: dict, method: str) -> dict | None:
    """The evaluation settings a plan fixes for ``method`` (None for a plan that records none)."""
    return (plan.get("evaluation_per_method") or {}).get(method, plan.get("evaluation"))


def comparisons_block(methods: list[str], datasets: list[str], seeds: dict[str, list[int]],
                      seed_sd: float | None) -> list[dict]:
    family = preregistered_comparisons(methods, datasets)
    level = ALPHA / max(len(family), 1)
    out = []
    for c in family:
        row = {"id": c.id, "kind": c.kind, "title": c.title, "a": c.a, "b": c.b, "dataset": c.dataset,
               "tested": c.claim, "beyond_paper": c.beyond_paper,
               "paper_delta_dice_points": None if c.paper_delta is None else round(100 * c.paper_delta, 2),
               "seeds": f"{len(seeds[c.a])} vs {len(seeds[c.b])}"}
        if seed_sd is not None:
            sdd = smallest_detectable_difference(seed_sd, len(seeds[c.a]), len(seeds[c.b]), alpha=level)
            row["smallest_detectable_points"] = round(100 * sdd, 2)
        out.append(row)
    return out


def preregistration(profile: str | dict, *, seed_sd: float | None = None, convergence_threshold: float | None = None,
                    pilot: dict | None = None) -> dict:
    """The plan of a pass of ``profile`` as a dict (``write_preregistration`` writes it).

    ``seed_sd``: the seed standard deviation of the lesion-slice Dice (0-1) measured in the pilot on
    validation patients; ``convergence_threshold``: the validation lesion-slice Dice every method's
    convergence is read at (default: the pilot's, else 0.5); ``pilot``: what the pilot found
    (``read_pilot``), recorded as it is."""
    from ..engine.config import load_profile
    from ..engine.provenance import git_commit

    if convergence_threshold is None:
        convergence_threshold = float((pilot or {}).get("convergence_threshold", 0.5))
    cfg = load_profile(profile) if isinstance(profile, str) else profile
    if not (cfg.get("study") or {}).get("methods"):
        raise IchsegError(f"profile {cfg.get('profile')}: no study section with methods to pre-register")
    if seed_sd is not None and not (isinstance(seed_sd, (int, float)) and math.isfinite(seed_sd) and seed_sd >= 0):
        raise IchsegError(f"seed_sd: must be a non-negative number (Dice, 0-1), got {seed_sd!r}")
    runs, configs = _runs(cfg)
    methods = list(configs)
    seeds = study_seeds(cfg, methods)
    datasets = [cfg["data"]["train_dataset"], *[d for d in cfg["data"].get("test_datasets", [])
                                                 if d != cfg["data"]["train_dataset"]]]
    family = comparisons_block(methods, datasets, seeds, seed_sd)
    return {
        "profile": cfg["profile"], "written_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "code_commit": git_commit(),
        "question": "do the paper's changes make a better diffusion segmenter (Table 2), and does the full model "
                    "beat MedSegDiff-v2 on the other test sets (Table 1)?",
        "methods": methods, "seeds": seeds, "runs": runs, "test_datasets": list(cfg["data"].get("test_datasets", [])),
        **evaluation_block(configs),
        "budget_rule": budget_rule(configs), "checkpoint_rule": checkpoint_rule(configs),
        "metrics": {"primary": [f"{k}: {v}" for k, v in PRIMARY_SCORES.items()],
                    "secondary": ["paper_dice: the paper protocol (per-slice Dice over thresholds 0.1-0.9), beside "
                                  "the all-empty prediction's on the same slices"]},
        "comparisons": family,
        "interval": INTERVAL.format(n=N_BOOT, c=CONFIDENCE),
        "multiplicity": MULTIPLICITY.format(m=len(family), a=ALPHA),
        "decision_rule": DECISION,
        "smallest_difference_that_matters_points": round(100 * SMALLEST_DIFFERENCE, 2),
        "pilot_seed_sd_points": None if seed_sd is None else round(100 * seed_sd, 2),
        **({"pilot": pilot} if pilot else {}),
        "convergence_threshold": convergence_threshold,
        "convergence": f"iterations to a validation lesion-slice Dice of {convergence_threshold} (one threshold for "
                       f"every method; 'never' when a run does not reach it)",
    }


def test_metrics(results_dir: str | Path) -> list[Path]:
    """The test evaluations a profile's results folder holds (``eval/<run>/<dataset>/metrics.json``)."""
    return sorted(Path(results_dir).glob(f"eval/*/*/{METRICS}"))


def read_pilot(path: str | Path, profile: str) -> tuple[float, dict]:
    """The seed SD (Dice, 0-1) a pilot measured on validation patients (``bench/evidence_pilot.py``'s
    json), and what the plan records of the pilot; refused when it is another profile's or not a
    validation-only pilot."""
    path = Path(path)
    try:
        pilot = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise IchsegError(f"{path}: cannot read the pilot ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    sd = pilot.get("seed_sd_full_best_val_strict_dice") if isinstance(pilot, dict) else None
    if sd is None:
        raise IchsegError(f"{path}: no seed_sd_full_best_val_strict_dice (a pilot from bench/evidence_pilot.py?)")
    if pilot.get("profile") != profile:
        raise IchsegError(f"{path}: a pilot of profile {pilot.get('profile')!r}, not of {profile!r}")
    if pilot.get("split") != "val":
        raise IchsegError(f"{path}: the pilot scored split {pilot.get('split')!r}; only validation patients may "
                          "size a plan")
    info = {"file": path.as_posix(), "split": "val",
            "paper_objective_fails_for": list(pilot.get("paper_objective_fails_for") or [])}
    if pilot.get("convergence_threshold") is not None:
        info["convergence_threshold"] = float(pilot["convergence_threshold"])
    return sd, info


def write_preregistration(profile: str | dict, root: str | Path = "results", **kwargs) -> Path:
    """Write ``<root>/<profile>/preregistration.yaml`` (atomically); refuse to replace one, and refuse
    once the profile has a test metric: a plan written after test evaluation is no pre-registration."""
    plan = preregistration(profile, **kwargs)
    path = Path(root) / plan["profile"] / FILE
    if path.exists():
        raise IchsegError(f"{path}: a pre-registration exists and is never rewritten; a changed plan is a "
                          f"deviation to record, not a new plan")
    scored = test_metrics(path.parent)
    if scored:
        raise IchsegError(f"{scored[0]}: {len(scored)} test evaluation(s) of {plan['profile']} exist already; a plan "
                          f"must be written before any test evaluation")
    text = "# The plan of this pass, written before any test evaluation (ichseg.report.preregistration).\n"
    atomic_write_text(path, text + yaml.safe_dump(plan, sort_keys=False, allow_unicode=True, width=110))
    return path


__all__ = ["FILE", "budget_rule", "checkpoint_rule", "evaluation_block", "planned_evaluation", "preregistration",
           "read_pilot", "study_seeds", "test_metrics", "write_preregistration"]

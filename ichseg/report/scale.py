"""What a profile's runs are, and the one sentence on how far their numbers compare with the paper's.

``comparability`` is derived from the runs' own recorded configs (data source, resolution, training
budgets, pretraining), so it changes when the runs do; every page that says whether a number can
be set beside the paper's uses it.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..utils.layout import read_run_config, run_config_path

#: the paper's recipe (§4.2), which every profile is compared against
PAPER_SIZE, PAPER_ITERATIONS = 256, 115_000
FULL, TRAIN_DATASET = "full", "instance2022"


def scale_facts(profile: str, study=None) -> dict[str, Any]:
    """What a profile's runs are, from their recorded configs (else the profile file as it is now).

    Keys: ``profile``, ``real_data`` (every dataset from real scans), ``size`` (pixels per side),
    ``iterations`` (the diffusion methods' training budgets, sorted), ``pretrained`` (the condition
    encoder's weights), ``amp``, ``patients`` (training cohort, or None when real), ``prediction``
    and ``alpha`` (the objective: what the diffusion branch predicts, the anchor loss weight)."""
    configs: dict[str, dict] = {}
    if study is not None:
        for run in study.runs:
            if run_config_path(run["run_dir"]).is_file():
                configs.setdefault(run["method"], read_run_config(run["run_dir"]))
    if not configs:
        from ..engine.config import resolve_run_config

        configs = {FULL: resolve_run_config(profile, FULL)}
    cfg = configs.get(FULL) or next(iter(configs.values()))
    data = cfg.get("data", {})
    raw = data.get("raw") or {}
    datasets = list(study.datasets) if study is not None else list(raw) or [TRAIN_DATASET]
    cases = (data.get("phantom") or {}).get("cases")
    amp = cfg.get("train", {}).get("amp")
    return {
        "profile": profile,
        "real_data": bool(raw) and all(raw.get(d) for d in datasets if d != "realct"),
        "size": int(cfg.get("model", {}).get("image_size") or data.get("prep", {}).get("size") or 0),
        "iterations": sorted({int(c["train"]["iterations"]) for c in configs.values() if "diffusion" in c}),
        "pretrained": str(cfg.get("model", {}).get("pretrained") or "none"),
        "amp": amp if amp not in (None, "none") else "fp32",
        "patients": cases.get(TRAIN_DATASET) if isinstance(cases, dict) else cases,
        "prediction": str(cfg.get("diffusion", {}).get("prediction") or "eps"),
        "alpha": float(cfg.get("loss", {}).get("alpha", 5)),
    }


def budget_text(iterations: list[int]) -> str:
    if not iterations:
        return "no diffusion run"
    lo, hi = iterations[0], iterations[-1]
    return f"{lo:,} iterations" if lo == hi else f"{lo:,}–{hi:,} iterations"


def comparability(facts: Mapping[str, Any]) -> str:
    """The one sentence, used on every page, on how far these numbers compare with the paper's."""
    departures = []
    if not facts["real_data"]:
        departures.append("synthetic head CT instead of real scans")
    if facts["size"] and facts["size"] != PAPER_SIZE:
        departures.append(f"{facts['size']}² slices instead of {PAPER_SIZE}²")
    its = facts["iterations"]
    if its and max(its) < PAPER_ITERATIONS:
        departures.append(f"{budget_text(its)} of training instead of {PAPER_ITERATIONS // 1000}K")
    if facts["pretrained"] != "imagenet":
        departures.append("a ResNet18 condition branch without ImageNet weights")
    if (facts.get("prediction", "eps"), facts.get("alpha", 5.0)) != ("eps", 5.0):
        departures.append(f"{facts['prediction']}-prediction with the anchor loss weighted "
                          f"α = {facts['alpha']:g} instead of ε-prediction with α = 5")
    if not departures:
        return (f"The `{facts['profile']}` profile follows the paper's recipe on real data: its numbers are "
                "comparable to the paper's.")
    direction = ("its runs test the direction of the paper's claims at this scale; their numbers are not "
                 "comparable to the paper's" if not facts["real_data"] else
                 "its numbers approach the paper's but do not repeat its experiment")
    return f"The `{facts['profile']}` profile departs from the paper's recipe ({_join(departures)}): {direction}."


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def budgets_sentence(study) -> str:
    """Each diffusion method's training budget, from its runs' recorded configs (a profile may train
    some methods longer), e.g. "Training budgets: 3,000 iterations for ...; 1,500 for ...". """
    from .paper import method_title

    budgets: dict[int, list[str]] = {}
    seen = set()
    for run in study.runs:
        if run["method"] in seen or not run_config_path(run["run_dir"]).is_file():
            continue
        seen.add(run["method"])
        cfg = read_run_config(run["run_dir"])
        if "diffusion" in cfg:
            budgets.setdefault(int(cfg["train"]["iterations"]), []).append(method_title(run["method"]))
    if not budgets:
        return ""
    parts = [f"{n:,} iterations for {', '.join(ms)}" for n, ms in sorted(budgets.items(), reverse=True)]
    return "Training budgets of the diffusion models: " + "; ".join(parts) + "."


__all__ = ["PAPER_ITERATIONS", "PAPER_SIZE", "budget_text", "budgets_sentence", "comparability", "scale_facts"]

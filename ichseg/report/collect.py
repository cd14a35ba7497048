"""Read one profile's study folder (``results/<profile>/``) into DataFrames, refusing stale parts.

The study driver (``ichseg study``) writes, under ``results/<profile>/``:

- ``study.json``: the run set of the last complete pass (profile, methods, seeds, datasets, one
  entry per run with its run and evaluation folders) and the stamp of every stage it consists of,
  plus ``stamp``, the hash of all of that;
- ``stamps/<stage>.json``: ``{"stamp", "status": "running"|"complete", ...}`` per stage;
- ``runs/<method>-s<seed>/`` (the engine's run folder: ``run.json``, ``train_log.csv``, ...) and
  ``eval/<method>-s<seed>/<dataset>/`` (``metrics.json``, ``slices.csv``, ``qualitative.npz``).

Results written before these files named the method ``method`` say ``variant`` (``variants`` in
``study.json``); ``load_study`` reads both (``ichseg.utils.method_of``), and every loaded run
carries its method under ``method``.

``load_study`` checks that every stage stamp recorded in ``study.json`` is still the completed
stamp on disk and that every evaluation was made from the checkpoint of the run it belongs to;
any mismatch raises ``StaleResultsError`` listing what is stale, so a report never mixes numbers
from different passes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import IchsegError
from ..utils import method_of, methods_of
from ..utils.layout import (QUALITATIVE, SLICE_SCORES, VIEWER_VOLUME, WORST, metrics_path, read_run_config,
                            run_config_path, run_info_path, train_log_path)
from ..utils.stamps import STAMPS_DIR, STUDY_FILE, TIMINGS_FILE, read_stamp, study_stamp

#: a per-slice table as ``ichseg report compact`` stores it: gzip of the six-digit CSV, ~6x smaller
SLICE_SCORES_GZ = SLICE_SCORES + ".gz"

if TYPE_CHECKING:  # the engine imports torch: a book page that only reads tables must not wait for it
    from ..engine.worst import WorstSlices


class StaleResultsError(IchsegError):
    """Results on disk do not match the run set they claim to belong to."""


@dataclass
class Study:
    """One profile's study as loaded from disk (paths absolute)."""

    results_dir: Path
    manifest: dict
    runs: list[dict] = field(default_factory=list)  # manifest runs + run.json + metrics per dataset

    @property
    def profile(self) -> str:
        return self.manifest["profile"]

    @property
    def methods(self) -> list[str]:
        return methods_of(self.manifest)

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.manifest["seeds"]]

    @property
    def datasets(self) -> list[str]:
        return list(self.manifest["datasets"])


def profile_notes(name: str) -> str:
    """The comment block that opens a named profile's YAML file, without the ``#`` marks: where a
    profile records why it is sized as it is (the measurements behind its choices)."""
    from importlib import resources

    from ..engine.config import available_profiles

    res = resources.files("ichseg.profiles") / f"{name}.yaml"
    if not res.is_file():
        raise IchsegError(f"profile: unknown name {name!r}; known: {', '.join(available_profiles())}")
    lines = []
    for line in res.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[2:] if line.startswith("# ") else line[1:])
    return "\n".join(lines)


def run_set_description(profile: str, study: Study | None) -> str:
    """One Markdown line saying what a profile's committed runs are: cohort, resolution, iterations,
    validation, evaluation sampler, seeds per method. Read from the runs' own recorded
    ``config.yaml`` (the first full-model run, else the first run; the iteration budget from every
    diffusion method's, naming those trained longer or shorter) and run list, so it describes the
    results as they were made even after the profile file has changed; without results, the
    profile's full-model config as it is now (no seeds: no run says how many)."""
    from ..engine.config import resolve_run_config

    cfg, seeds, budgets = None, {}, {}
    if study is not None and study.runs:
        configs = {}
        for run in study.runs:
            if run_config_path(run["run_dir"]).is_file():
                configs.setdefault(run["method"], read_run_config(run["run_dir"]))
        cfg = configs.get("full") or next(iter(configs.values()), None)
        # iterations per diffusion method (a profile may give some more: trained until flat)
        budgets = {m: c["train"]["iterations"] for m, c in configs.items() if "diffusion" in c}
        seeds = pd.Series([r["method"] for r in study.runs]).value_counts(sort=False).to_dict()
    if cfg is None:
        cfg = resolve_run_config(profile, "full")
    cases = cfg["data"]["phantom"]["cases"]
    cases = (", ".join(f"{n} {d}" for d, n in cases.items()) + " synthetic patients" if isinstance(cases, dict)
             else f"{cases} synthetic patients per dataset")
    t, e = cfg["train"], cfg["evaluate"]
    counts = sorted(set(seeds.values()), reverse=True)
    seed_text = "; ".join(f"{n} for " + ", ".join(m for m, k in seeds.items() if k == n) for n in counts)
    usual = pd.Series(list(budgets.values())).mode().max() if budgets else t["iterations"]
    others = {}
    for m, n in budgets.items():
        if n != usual:
            others.setdefault(n, []).append(m)
    other_text = "".join(f"; {n:,} for " + ", ".join(ms) for n, ms in sorted(others.items()))
    return (f"**Profile `{profile}`**: {cases}, prepared at {cfg['data']['prep']['size']}² pixels; "
            f"{usual:,} iterations of batch {t['batch_size']} per diffusion run{other_text} "
            f"(amp: {t.get('amp', 'none')}), "
            f"validated every {t['eval_every']} on {t['val_slices']} slices; evaluation with {e['sampler']} at "
            f"{e['steps']} steps and {e['ensemble']} samples per slice." + (f" Seeds: {seed_text}." if seeds else ""))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StaleResultsError(f"{path}: missing") from None


def load_study(results_dir: str | Path, expected_stamp: str | None = None) -> Study:
    """Load and check ``results_dir/study.json`` (see the module docstring)."""
    results_dir = Path(results_dir)
    manifest = _read_json(results_dir / STUDY_FILE)
    problems: list[str] = []
    if manifest.get("stamp") != study_stamp(manifest):
        problems.append(f"{results_dir / STUDY_FILE}: its stamp does not match its content (edited by hand?)")
    if expected_stamp and manifest.get("stamp") != expected_stamp:
        problems.append(f"{results_dir / STUDY_FILE}: run set {manifest.get('stamp')} is not the expected {expected_stamp}")
    for stage, stamp in sorted(manifest.get("stages", {}).items()):
        on_disk = read_stamp(results_dir, stage)
        if on_disk.get("stamp") != stamp or on_disk.get("status") != "complete":
            state = "missing" if not on_disk else f"{on_disk.get('status')} {on_disk.get('stamp')}"
            problems.append(f"stage {stage}: recorded {stamp}, on disk {state}")
    runs = []
    for entry in manifest.get("runs", []):
        run = dict(entry)
        run["method"] = method_of(entry)
        run_dir = results_dir / entry["run_dir"]
        info = _read_json(run_info_path(run_dir)) if run_info_path(run_dir).exists() else {}
        if info.get("status") != "complete":
            problems.append(f"{run_dir}: training not complete")
        run["run_dir"], run["eval_dir"], run["info"] = run_dir, results_dir / entry["eval_dir"], info
        run["metrics"] = {}
        for ds in manifest["datasets"]:
            mpath = metrics_path(run["eval_dir"] / ds)
            if not mpath.is_file():
                problems.append(f"{mpath}: missing")
                continue
            m = json.loads(mpath.read_text())
            if info and m.get("run_hash") != info.get("run_hash"):
                problems.append(f"{mpath}: evaluates run {m.get('run_hash')}, but {run_dir} holds run {info.get('run_hash')}")
            run["metrics"][ds] = m
        runs.append(run)
    if problems:
        raise StaleResultsError(f"{results_dir}: stale or incomplete results:\n  " + "\n  ".join(problems))
    return Study(results_dir, manifest, runs)


STRICT_KEYS = ("positive_slice_dice", "chance_positive_slice_dice", "chance_positive_slice_dice_in_head",
               "positive_slice_iou", "volume_dice", "hd95_mm", "hd95_per_slice_mm", "volume_abs_error_ml")


def evaluation_table(study: Study) -> pd.DataFrame:
    """One row per (method, seed, dataset): both protocols' numbers, timing and the run's best iteration."""
    rows = []
    for run in study.runs:
        for ds, m in run["metrics"].items():
            strict = m.get("strict", {})
            row = {
                "method": run["method"], "seed": int(run["seed"]), "dataset": ds,
                "dice": m["paper"]["dice"], "iou": m["paper"]["iou"], "all_empty_dice": m["paper"].get("all_empty_dice"),
                "n_slices": m.get("n_slices"), "n_positive_slices": strict.get("n_positive_slices"),
                "seconds_per_slice": m.get("seconds_per_slice"),
                "best_iteration": run["info"].get("best_iteration"),
                "iterations": run["info"].get("iterations"),
                "train_wall_time_s": run["info"].get("wall_time_s"),
            }
            row.update({k: float("nan") if strict.get(k) is None else strict[k] for k in STRICT_KEYS})
            # the paper-protocol Dice under every recorded fusion (``dice`` is the profile's own)
            row.update({f"dice_{name}": v.get("dice") for name, v in (m.get("paper_by_fusion") or {}).items()})
            rows.append(row)
    cols = ["method", "seed", "dataset", "dice", "iou", "all_empty_dice", *STRICT_KEYS, "n_slices", "n_positive_slices",
            "seconds_per_slice", "best_iteration", "iterations", "train_wall_time_s"]
    cols += sorted({k for r in rows for k in r if k.startswith("dice_")})
    df = pd.DataFrame(rows, columns=cols)
    return df.astype({k: float for k in ("dice", "iou", "all_empty_dice", *STRICT_KEYS)})


def curves_table(study: Study) -> pd.DataFrame:
    """Every run's ``train_log.csv`` stacked: method, seed, iteration, loss..., dice, iou, strict_dice."""
    frames = []
    for run in study.runs:
        log = pd.read_csv(train_log_path(run["run_dir"]))
        log.insert(0, "seed", int(run["seed"]))
        log.insert(0, "method", run["method"])
        frames.append(log)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["method", "seed", "iteration"])


def slice_scores_path(eval_dataset_dir: Path) -> Path:
    """An evaluation's per-slice table: ``slices.csv`` as the evaluation wrote it, or
    ``slices.csv.gz`` once ``ichseg report compact`` has stored it (``publish.compact_slices``)."""
    gz = Path(eval_dataset_dir) / SLICE_SCORES_GZ
    return gz if gz.is_file() else Path(eval_dataset_dir) / SLICE_SCORES


def slices_table(study: Study) -> pd.DataFrame:
    """Every evaluation's per-slice scores stacked, with method, seed and dataset columns."""
    frames = []
    for run in study.runs:
        for ds in run["metrics"]:
            t = pd.read_csv(slice_scores_path(run["eval_dir"] / ds))
            t.insert(0, "dataset", ds)
            t.insert(0, "seed", int(run["seed"]))
            t.insert(0, "method", run["method"])
            frames.append(t)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def viewer_volumes(study: Study, dataset: str, seed: int | None = None) -> dict[str, dict[str, np.ndarray]]:
    """method -> its evaluation's whole test volume on ``dataset`` (``volume.npz``; first seed
    unless given), with ``rows`` set to the slice numbers the viewer labels; {} when none kept one."""
    from ..engine.viewer_volume import read_volume

    seed = study.seeds[0] if seed is None else seed
    out = {}
    for run in study.runs:
        if int(run["seed"]) == int(seed) and dataset in run["metrics"]:
            vol = read_volume(run["eval_dir"] / dataset / VIEWER_VOLUME)
            if vol is not None:
                out[run["method"]] = {**vol, "rows": vol["slice_index"], "windowed": True}
    return out


def qualitative(study: Study, dataset: str, seed: int | None = None) -> dict[str, dict[str, np.ndarray]]:
    """method -> the arrays of its ``qualitative.npz`` on ``dataset`` (first seed unless given)."""
    seed = study.seeds[0] if seed is None else seed
    out = {}
    for run in study.runs:
        if int(run["seed"]) != int(seed) or dataset not in run["metrics"]:
            continue
        path = run["eval_dir"] / dataset / QUALITATIVE
        if path.is_file():
            with np.load(path) as z:
                out[run["method"]] = {k: z[k] for k in z.files}
    return out


def worst(study: Study, dataset: str, seed: int | None = None) -> dict[str, WorstSlices | None]:
    """method -> its worst slices on ``dataset`` (``worst.npz``, first seed unless given), or None
    for an evaluation written before the evaluation kept them."""
    from ..engine.worst import read_worst

    seed = study.seeds[0] if seed is None else seed
    out = {}
    for run in study.runs:
        if int(run["seed"]) == int(seed) and dataset in run["metrics"]:
            path = run["eval_dir"] / dataset / WORST
            out[run["method"]] = read_worst(path) if path.is_file() else None
    return out


def empty_slice_fraction(slices: pd.DataFrame) -> float:
    """Share of slices whose ground truth is empty (from ``positive`` or ``lesion_px``)."""
    if "positive" in slices:
        pos = slices["positive"].astype(bool)
    elif "lesion_px" in slices:
        pos = slices["lesion_px"] > 0
    else:
        pos = slices["strict_dice"].notna()
    return float(1.0 - pos.mean()) if len(slices) else float("nan")


# slices.csv columns (``write_evaluation``) of the paper-protocol Dice along the released output
# path, each step cumulative, -> protocol_breakdown's column names
PAPER_STEP_COLUMNS = {
    "paper_dice_mean": "step_mean",  # plain ensemble mean, max-normalised
    "paper_dice_anchor_blend": "step_anchor_blend",  # + each member blended with the anchor
    "paper_dice_staple": "step_staple",  # + STAPLE (mean squared)
    "paper_dice_jpeg8": "step_jpeg8",  # + 8-bit JPEG round trip: the released path
    "paper_dice_no_max_norm": "step_no_max_norm",  # the released path without max-normalisation
    "paper_dice_v2_raw": "step_v2_raw",  # the v2 script's default: no anchor blend
}


def protocol_breakdown(slices: pd.DataFrame) -> pd.DataFrame:
    """Per (method, seed, dataset): the paper-protocol Dice split into slices with and without lesion.

    Columns: ``empty_fraction``, ``paper_dice``, ``paper_dice_empty`` (mean over empty-GT slices),
    ``paper_dice_lesion`` (over lesion slices), ``strict_dice_lesion`` (unsmoothed, one threshold),
    ``empty_predictor_dice`` (what predicting nothing everywhere would score under the paper's
    protocol: ~1 on every empty slice, ~0 elsewhere, i.e. ``empty_fraction``); the paper Dice of
    the plain mean on the empty slices (``paper_dice_empty_mean``); and the paper Dice over all
    slices after each step of the released output path (``PAPER_STEP_COLUMNS``: ``step_mean``,
    ``step_anchor_blend``, ``step_staple``, ``step_jpeg8``, ``step_no_max_norm``, ``step_v2_raw``;
    NaN for evaluations written before these were recorded).
    """
    rows = []
    for (method, seed, ds), t in slices.groupby(["method", "seed", "dataset"], sort=False):
        if "positive" in t:
            pos = t["positive"].astype(bool)
        elif "lesion_px" in t:
            pos = t["lesion_px"] > 0
        else:
            pos = t["strict_dice"].notna()
        empty = float(1.0 - pos.mean())
        row = {
            "method": method, "seed": int(seed), "dataset": ds, "n_slices": len(t), "empty_fraction": empty,
            "paper_dice": float(t["paper_dice"].mean()),
            "paper_dice_empty": float(t.loc[~pos, "paper_dice"].mean()) if (~pos).any() else math.nan,
            "paper_dice_lesion": float(t.loc[pos, "paper_dice"].mean()) if pos.any() else math.nan,
            "strict_dice_lesion": float(t.loc[pos, "strict_dice"].mean()) if pos.any() else math.nan,
            "empty_predictor_dice": empty,
            "paper_dice_empty_mean": (float(t.loc[~pos, "paper_dice_mean"].mean())
                                      if "paper_dice_mean" in t and (~pos).any() else math.nan),
        }
        for col, name in PAPER_STEP_COLUMNS.items():
            row[name] = float(t[col].mean()) if col in t else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def provenance_table(study: Study) -> pd.DataFrame:
    """Run set and provenance: run hash, data fingerprint, device, commit, stamps."""
    rows = []
    for run in study.runs:
        info = run["info"]
        env = info.get("environment", {})
        rows.append({
            "run": f"{run['method']}-s{run['seed']}", "run hash": info.get("run_hash"),
            "train data": (info.get("data") or {}).get("fingerprint"),
            "iterations": info.get("iterations"), "best iteration": info.get("best_iteration"),
            "device": env.get("device"), "commit": str(env.get("git_commit", ""))[:12],
            "train stamp": study.manifest["stages"].get(run["train_stage"], "")[:12],
            "evaluate stamp": study.manifest["stages"].get(run["evaluate_stage"], "")[:12],
        })
    return pd.DataFrame(rows)


def metrics_frame(summaries: dict[str, dict]) -> pd.DataFrame:
    """dataset -> ``evaluate_checkpoint`` summary (``metrics.json``) as a one-row-per-dataset table (%)."""
    rows = []
    for ds, m in summaries.items():
        strict = m.get("strict", {})
        rows.append({
            "dataset": ds, "slices": m.get("n_slices"), "lesion slices": strict.get("n_positive_slices"),
            "Dice, paper protocol (%)": 100 * m["paper"]["dice"], "IoU, paper protocol (%)": 100 * m["paper"]["iou"],
            "Dice, lesion slices (%)": 100 * strict.get("positive_slice_dice", math.nan),
            "3D Dice (%)": 100 * strict.get("volume_dice", math.nan),
            "HD95 3D (mm)": strict.get("hd95_mm", math.nan),
            "|volume error| (mL)": strict.get("volume_abs_error_ml", math.nan),
            "s / slice": m.get("seconds_per_slice"),
        })
    return pd.DataFrame(rows).set_index("dataset").round(2)


def study_banner(study: Study) -> str:
    """Markdown line naming the profile, run set, data source per dataset, device and commit; with a
    bold warning when every dataset is the synthetic phantom."""
    from .paper import dataset_title

    first = study.runs[0] if study.runs else {"run_dir": study.results_dir, "info": {}}
    cfg = read_run_config(first["run_dir"]) if run_config_path(first["run_dir"]).is_file() else {}
    raw = ((cfg or {}).get("data") or {}).get("raw") or {}
    m = study.manifest
    datasets = list(dict.fromkeys([m.get("train_dataset"), *study.datasets]))
    kind = lambda d: "real data" if raw.get(d) else ("real CT slices, inserted lesions" if d == "realct" else "synthetic phantom")
    source = ", ".join(f"{dataset_title(d)}: {kind(d)}" for d in datasets if d)
    env = first["info"].get("environment", {})
    text = (f"**Profile `{study.profile}`** — {m.get('description', '')}. Methods: "
            f"{', '.join(f'`{v}`' for v in study.methods)}; seeds: {', '.join(map(str, study.seeds))}; data: {source}. "
            f"Device: {env.get('device', '?')}; commit `{str(env.get('git_commit', '?'))[:12]}`; run set `{m.get('stamp')}` "
            f"(created {m.get('created', '?')}).")
    from .scale import comparability, scale_facts

    return text + " **" + comparability(scale_facts(study.profile, study)) + "**"


def read_timings(results_dir: str | Path) -> dict[str, Any] | None:
    path = Path(results_dir) / TIMINGS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


__all__ = [
    "PAPER_STEP_COLUMNS",
    "STAMPS_DIR",
    "STUDY_FILE",
    "StaleResultsError",
    "Study",
    "TIMINGS_FILE",
    "curves_table",
    "empty_slice_fraction",
    "evaluation_table",
    "load_study",
    "metrics_frame",
    "protocol_breakdown",
    "provenance_table",
    "viewer_volumes",
    "qualitative",
    "read_stamp",
    "read_timings",
    "slices_table",
    "study_banner",
    "study_stamp",
    "worst",
]

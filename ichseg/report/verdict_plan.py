"""The verdict of a pre-registered pass: exactly the family its plan lists, decided as the plan says.

A pass with ``results/<profile>/preregistration.yaml`` (``ichseg.report.preregistration``) is held
to that file, not to the older unadjusted checks of ``claims.comparison_claims``:

- every comparison the plan lists, on both primary metrics — Dice at 0.5 on the lesion slices
  (per slice) and 3D Dice per volume (``volume_scores``) — each with its two-level bootstrap
  interval and Holm's correction across the family (``claims.decide_comparisons``), the plan's
  smallest difference that matters and the smallest difference it could detect beside it;
- one verdict per comparison: the metrics' when both agree, ``cannot decide`` otherwise
  (``claims.combine_verdicts``); a comparison the results lack reads ``not run`` and still counts
  in Holm's family;
- convergence: the validation iterations every run takes to reach the plan's one
  ``convergence_threshold`` (``claims.convergence_at_threshold``), the verdict the ordering of the
  seeds as for the unregistered check; a run that never reaches it ranks after every run that does
  (the plan holds every diffusion method to the same budget).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd

from .claims import (BASELINE, CONTRADICTS, FULL, PRIMARY_SCORES, SMALLEST_DIFFERENCE, SUPPORTS, UNDECIDED,
                     Comparison, combine_verdicts, convergence_at_threshold, decide_comparisons, ordering_verdict)
from .preregistration import ALPHA, N_BOOT

NOT_RUN = "not run"
#: each primary metric as the verdict table names it
LABELS = {"strict_dice": "lesion-slice Dice", "volume_dice": "per-volume 3D Dice"}
CONVERGENCE_ID = "convergence"


def plan_comparisons(plan: dict) -> list[Comparison]:
    """The plan's family, in its order, as ``claims.Comparison`` (the tested claim as written)."""
    out = []
    for c in plan.get("comparisons") or []:
        delta = c.get("paper_delta_dice_points")
        out.append(Comparison(str(c["id"]), str(c.get("kind", "")), str(c.get("title", c["id"])), str(c["a"]),
                              str(c["b"]), str(c["dataset"]), None if delta is None else float(delta) / 100,
                              str(c["tested"]), bool(c.get("beyond_paper", False))))
    return out


def plan_margin(plan: dict) -> float:
    """The plan's smallest difference that matters (Dice, 0-1)."""
    points = plan.get("smallest_difference_that_matters_points")
    return SMALLEST_DIFFERENCE if points is None else float(points) / 100


def volume_scores(slices: pd.DataFrame, lesion_only: bool = True) -> pd.DataFrame:
    """One row per (method, seed, dataset, volume): its 3D Dice at the evaluation's threshold,
    rebuilt from ``slices.csv``'s per-slice counts (a slice's overlap is ``strict_dice · (pred + gt) / 2``;
    a volume's Dice is twice its summed overlap over its summed predicted and true pixels, NaN when
    both are empty, as ``metrics.strict_protocol`` scores it). ``lesion_only``: keep the volumes with
    a lesion only, as the lesion-slice Dice keeps the lesion slices — a lesion-free volume scores 0
    or nothing depending only on whether anything was predicted, and the two models of a comparison
    must be scored on the same volumes."""
    keys = ["method", "seed", "dataset", "volume"]
    cols = keys + (["patient"] if "patient" in slices else [])
    if slices.empty or not {"strict_dice", "gt_pixels", "pred_pixels"} <= set(slices):
        return pd.DataFrame(columns=cols + ["volume_dice"])
    both = slices["gt_pixels"] + slices["pred_pixels"]
    t = slices[cols].assign(volume=slices["volume"].astype(str), _gt=slices["gt_pixels"], _sum=both,
                            _inter=(slices["strict_dice"].fillna(0.0) * both / 2).round())
    agg = {"_gt": "sum", "_sum": "sum", "_inter": "sum", **({"patient": "first"} if "patient" in t else {})}
    v = t.groupby(keys, sort=False).agg(agg).reset_index()
    if lesion_only:
        v = v[v["_gt"] > 0]
    dice = np.where(v["_sum"] > 0, 2 * v["_inter"] / v["_sum"].where(v["_sum"] > 0), np.nan)
    return v.assign(volume_dice=dice)[cols + ["volume_dice"]].reset_index(drop=True)


def _cell(r: pd.Series) -> str:
    if r.get("verdict") == NOT_RUN:
        return NOT_RUN
    return f"{r['Δ (points)']:+.1f} {r['95% CI (points)']}, Holm p {r['Holm p']:.3f}"


def _decided(slices: pd.DataFrame, family: list[Comparison], margin: float, n_boot: int) -> dict[str, pd.DataFrame]:
    tables = {"strict_dice": slices, "volume_dice": volume_scores(slices)}
    return {score: decide_comparisons(tables[score], family, score, alpha=ALPHA, margin=margin, n_boot=n_boot)
            .set_index("id") for score in PRIMARY_SCORES}


def _sdd(plan: dict) -> dict[str, float]:
    return {str(c["id"]): c.get("smallest_detectable_points", math.nan) for c in plan.get("comparisons") or []}


def comparison_rows(slices: pd.DataFrame, plan: dict, *, n_boot: int = N_BOOT) -> list[dict]:
    """One row per comparison of the plan: per primary metric the difference, its 95% interval,
    the raw and Holm-adjusted p-values and the metric's verdict; the claim's verdict over both."""
    family, margin = plan_comparisons(plan), plan_margin(plan)
    if not family:
        return []
    decided, sdd = _decided(slices, family, margin, n_boot), _sdd(plan)
    rows = []
    for c in family:
        row = {"id": c.id, "claim": c.kind, "comparison": c.title, "tested": c.claim,
               "paper": "–" if c.paper_delta is None else f"{100 * c.paper_delta:+.2f} points",
               "smallest that matters (points)": 100 * margin, "smallest detectable (points)": sdd.get(c.id, math.nan)}
        for score, label in LABELS.items():
            r = decided[score].loc[c.id]
            row[f"ours: {label}"] = _cell(r)
            row[f"p: {label}"], row[f"Holm p: {label}"] = r.get("p", math.nan), r.get("Holm p", math.nan)
            row[f"verdict: {label}"] = r["verdict"]
        metric_verdicts = [row[f"verdict: {label}"] for label in LABELS.values()]
        row["verdict"] = NOT_RUN if NOT_RUN in metric_verdicts else combine_verdicts(*metric_verdicts)
        rows.append(row)
    return rows


def threshold_ordering(faster, slower) -> str:
    """``supports`` when every run of ``faster`` reaches the threshold before every run of
    ``slower``, ``contradicts`` for the reverse, ``cannot decide`` otherwise. A run that never
    reaches it (NaN) ranks after every run that does; when no run reaches it nothing is decided."""
    return ordering_verdict(faster, slower, never_last=True)


def convergence_row(curves: pd.DataFrame, plan: dict) -> dict:
    """Claim (b) at the plan's threshold: each seed's iterations for the full model and MedSegDiff-v2."""
    threshold = float(plan.get("convergence_threshold", 0.5))
    row = {"id": CONVERGENCE_ID, "claim": "(b) convergence",
           "comparison": f"full model reaches a validation lesion-slice Dice of {threshold:g} before MedSegDiffv2",
           "tested": "faster", "paper": "full model 82.59% Dice at 35K iterations; baseline stabilises after 55K"}
    table = convergence_at_threshold(curves, threshold) if len(curves) else pd.DataFrame()
    its = {m: table.loc[table["method"] == m, "iterations"].tolist() if len(table) else [] for m in (FULL, BASELINE)}
    if not its[FULL] or not its[BASELINE]:
        return {**row, "ours: lesion-slice Dice": NOT_RUN, "verdict: lesion-slice Dice": NOT_RUN, "verdict": NOT_RUN}
    fmt = lambda xs: ", ".join("never" if not math.isfinite(x) else f"{x:.0f}" for x in xs)  # noqa: E731
    verdict = threshold_ordering(its[FULL], its[BASELINE])
    return {**row, "ours: lesion-slice Dice": f"iterations to {threshold:g}: full {fmt(its[FULL])}; "
                                              f"baseline {fmt(its[BASELINE])}",
            "verdict: lesion-slice Dice": verdict, "verdict": verdict}


def planned_verdicts(slices: pd.DataFrame, curves: pd.DataFrame, plan: dict, *, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Every pre-registered claim, one row each: the plan's comparisons in its order, then convergence."""
    return pd.DataFrame(comparison_rows(slices, plan, n_boot=n_boot) + [convergence_row(curves, plan)])


def planned_counts(verdicts: pd.DataFrame) -> Counter:
    """How many pre-registered claims got each verdict (``not run`` included)."""
    return Counter(verdicts["verdict"]) if "verdict" in verdicts else Counter()


def planned_sentence(profile: str, plan: dict, verdicts: pd.DataFrame, scale: str) -> str:
    """The verdict paragraph's first sentence for a pre-registered pass."""
    c = planned_counts(verdicts)
    commit = str(plan.get("code_commit") or "unknown")[:10]
    m = len(plan.get("comparisons") or [])
    not_run = f"; **{c[NOT_RUN]}** not run" if c[NOT_RUN] else ""
    return (f"**Verdict of the `{profile}` profile**, pre-registered (commit `{commit}`) ({scale}). "
            f"Of the {len(verdicts)} pre-registered claims ({m} comparisons and convergence), the runs support "
            f"**{c[SUPPORTS]}**, contradict **{c[CONTRADICTS]}** and cannot decide **{c[UNDECIDED]}**{not_run}; "
            f"a comparison is decided on lesion-slice Dice and per-volume 3D Dice together, after Holm's "
            f"correction across the {m}.")


__all__ = ["CONVERGENCE_ID", "LABELS", "NOT_RUN", "comparison_rows", "convergence_row", "plan_comparisons",
           "plan_margin", "planned_counts", "planned_sentence", "planned_verdicts", "threshold_ordering",
           "volume_scores"]

"""Which of the paper's claims a profile's runs support, contradict or cannot decide.

Three kinds of claim are checked, each against the paper's own numbers (``paper_numbers.yaml``):

(a) **Ablation** (Table 2): each row changes the test Dice of the row above by the paper's amount.
(b) **Convergence** (§4.3, Fig. 1): the full model reaches a fixed fraction of its final validation
    Dice in fewer iterations than the MedSegDiff-v2 baseline.
(c) **Cross-dataset generalisation** (Table 1): trained on INSTANCE 2022, the full model beats the
    MedSegDiff-v2 baseline on the other test sets.

Intervals for a difference of two models (a, c) come from a *paired, two-level bootstrap*: test
patients are resampled with replacement (slices of one patient are not independent, so the patient
is the unit), and within each resample every model's seeds are resampled too, so the interval
carries both the test-set and the training-seed variation (with one seed only the former). Both
models are scored on the same resampled patients (paired). Verdict: **supports** when the 95%
interval excludes zero on the side of the paper's claim, **contradicts** when it excludes zero on
the other side, **cannot decide** otherwise.

A pre-registered pass (``preregistered_comparisons``, ``decide_comparisons``) reads its family of
comparisons with ``ichseg.report.stats``: the two-level bootstrap (seeds, then test clusters — a
patient, or a real-CT image, ``IMAGE_CLUSTER_DATASETS``), Holm's correction across the family, and
a decision rule with a smallest difference that matters (``decide``); convergence there is the
iterations to one fixed validation threshold (``convergence_at_threshold``).

Convergence (b) compares iterations per seed, where a bootstrap over three numbers says little; the
verdict is the ordering of the seeds: **supports** when every full-model seed gets there before every
baseline seed, **contradicts** for the reverse, **cannot decide** otherwise (with three seeds each, a
complete separation has probability 1/20 under exchangeability: a one-sided rank test at 5%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .paper import VARIANT_ORDER, dataset_title, paper_numbers
from .stats import cluster_labels, holm, iterations_to_threshold, smallest_detectable_difference, two_level_bootstrap

SUPPORTS, CONTRADICTS, UNDECIDED = "supports", "contradicts", "cannot decide"
#: the two per-slice scores a difference is measured on: the paper's protocol, and Dice at 0.5 on
#: the slices with a lesion (where a trivial predictor scores 0)
SCORES = {"paper_dice": "paper-protocol Dice", "strict_dice": "lesion-slice Dice"}
BASELINE, FULL = "medsegdiffv2", "full"
#: test sets whose ``patient`` field is one placeholder for every slice (real CT images with inserted
#: lesions): there each image (``volume``) is its own resampling cluster
IMAGE_CLUSTER_DATASETS = ("realct",)


def _cluster_means(scores: np.ndarray, clusters: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(B, n_seeds) weighted means: ``scores`` (n_seeds, n_slices) NaN-free, ``weights`` (B, n_clusters)."""
    n_clusters = weights.shape[1]
    sums = np.stack([np.bincount(clusters, weights=row, minlength=n_clusters) for row in scores])  # (S, K)
    counts = np.bincount(clusters, minlength=n_clusters).astype(float)  # (K,)
    return (weights @ sums.T) / np.maximum(weights @ counts, 1e-12)[:, None]


def paired_bootstrap_difference(a: np.ndarray, b: np.ndarray, clusters: Sequence, *, n_boot: int = 2000,
                                confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Mean score of ``a`` minus that of ``b`` and its percentile interval (two-level bootstrap).

    a, b: (seeds, slices) per-slice scores of two models on the same slices (columns aligned);
    clusters: (slices,) the patient of each slice. Returns (difference, low, high); the difference
    is of the plain means (mean over seeds of the mean over slices).
    """
    a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    if a.shape[1] != b.shape[1] or a.shape[1] != len(clusters):
        raise ValueError(f"scores: {a.shape[1]} and {b.shape[1]} slices for {len(clusters)} cluster labels")
    if a.shape[1] == 0 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("scores: need at least one slice and finite scores")
    _, idx = np.unique(np.asarray(clusters), return_inverse=True)
    k = int(idx.max()) + 1
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot).astype(float)  # patients drawn per resample
    ma, mb = _cluster_means(a, idx, weights), _cluster_means(b, idx, weights)  # (B, seeds)
    pick = lambda m: m[np.arange(n_boot)[:, None], rng.integers(0, m.shape[1], size=m.shape)].mean(axis=1)  # noqa: E731
    diffs = pick(ma) - pick(mb)
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(diffs, [tail, 100 - tail])
    return float(a.mean() - b.mean()), float(lo), float(hi)


def verdict(low: float, high: float, claimed_sign: float) -> str:
    """``supports`` / ``contradicts`` / ``cannot decide`` for an interval and the sign the paper claims."""
    if not (math.isfinite(low) and math.isfinite(high)) or claimed_sign == 0:
        return UNDECIDED
    if (low > 0 and claimed_sign > 0) or (high < 0 and claimed_sign < 0):
        return SUPPORTS
    if (low > 0 and claimed_sign < 0) or (high < 0 and claimed_sign > 0):
        return CONTRADICTS
    return UNDECIDED


def _score_matrix(slices: pd.DataFrame, method: str, dataset: str, score: str, keys=None):
    """(seeds, units) of ``score`` for one model on one dataset, one column per test slice (keyed by
    volume and slice index; a table without ``slice_index`` holds one row per volume), in ``keys``'
    order when given, and the resampling cluster of each column (``cluster_labels``: the patient,
    or the image in ``IMAGE_CLUSTER_DATASETS``)."""
    sel = slices[(slices["method"] == method) & (slices["dataset"] == dataset)]
    if score == "strict_dice" and "positive" in sel:
        sel = sel[sel["positive"] > 0]
    if sel.empty or score not in sel:
        return None, None, None
    key = sel["volume"].astype(str)
    if "slice_index" in sel:
        key = key + "/" + sel["slice_index"].astype(str)
    sel = sel.assign(_key=key)
    wide = sel.pivot_table(index="seed", columns="_key", values=score, aggfunc="first", dropna=False)
    first = sel.drop_duplicates("_key").set_index("_key")
    patients = first["patient"] if "patient" in first else first["volume"]
    clusters = pd.Series(cluster_labels(patients, first["volume"], dataset in IMAGE_CLUSTER_DATASETS), index=first.index)
    if keys is not None:
        wide = wide.reindex(columns=keys)
    wide = wide.dropna(axis=0, how="any")  # a seed without every slice's score is left out
    return wide.to_numpy(float), list(wide.columns), clusters.reindex(wide.columns).to_numpy()


def difference(slices: pd.DataFrame, a: str, b: str, dataset: str, score: str, **boot) -> dict:
    """{"delta", "low", "high", "p", "seeds_a", "seeds_b", "patients"} of model ``a`` minus ``b``
    (``stats.two_level_bootstrap``; NaN when either is missing). ``patients``: the clusters resampled."""
    ma, keys, clusters = _score_matrix(slices, a, dataset, score)
    mb = _score_matrix(slices, b, dataset, score, keys)[0] if ma is not None else None
    nan = {"delta": math.nan, "low": math.nan, "high": math.nan, "p": math.nan, "seeds_a": 0, "seeds_b": 0,
           "patients": 0}
    if ma is None or mb is None or not len(ma) or not len(mb):
        return nan
    r = two_level_bootstrap(ma, mb, clusters, **boot)
    return {"delta": r.delta, "low": r.low, "high": r.high, "p": r.p, "seeds_a": r.seeds_a, "seeds_b": r.seeds_b,
            "patients": r.clusters}


def _cell(d: Mapping, scale: float = 100.0) -> str:
    if not math.isfinite(d["delta"]):
        return "not run"
    return f"{scale * d['delta']:+.1f} [{scale * d['low']:+.1f}, {scale * d['high']:+.1f}]"


def comparison_claims(slices: pd.DataFrame, dataset: str = "instance2022", *, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Claims (a) and (c) as one table: one row per claim, the paper's difference and ours per score."""
    p = paper_numbers()
    t2 = p["table2"]
    pairs = []
    rows = list(t2)
    for prev, row in zip(rows, rows[1:]):  # (a) each Table 2 row against the row above
        pairs.append(("(a) ablation", f"{t2[row]['title']} vs {t2[prev]['title']}", row, prev, dataset,
                      t2[row]["dice"] - t2[prev]["dice"]))
    pairs.append(("(a) ablation", f"full model vs {t2[BASELINE]['title']} (all rows)", FULL, BASELINE, dataset,
                  t2[FULL]["dice"] - t2[BASELINE]["dice"]))
    t1 = p["table1"]
    for ds in [d for d in p["datasets"] if p["datasets"][d].get("cross_dataset")]:  # (c) cross-dataset
        ref = t1.get(ds, {})
        claimed = (ref["ours"]["dice"] - ref["medsegdiffv2"]["dice"]) if "ours" in ref and "medsegdiffv2" in ref else None
        pairs.append(("(c) cross-dataset", f"full model vs MedSegDiffv2 on {dataset_title(ds)}", FULL, BASELINE, ds, claimed))
    out = []
    for kind, claim, a, b, ds, claimed in pairs:
        row = {"claim": kind, "comparison": claim,
               "paper Δ Dice (points)": "–" if claimed is None else f"{claimed:+.2f}"}
        # where the paper has no number (real CT), the claim is the direction of its other cross-dataset rows
        sign = np.sign(claimed) if claimed is not None else 1.0
        for score, label in SCORES.items():
            d = difference(slices, a, b, ds, score, n_boot=n_boot, seed=seed)
            row[f"ours Δ {label} (points, 95% CI)"] = _cell(d)
            row[f"verdict ({label})"] = verdict(d["low"], d["high"], sign) if math.isfinite(d["delta"]) else "not run"
            if score == "paper_dice":
                row["seeds"] = f"{d['seeds_a']} vs {d['seeds_b']}"
                row["test patients"] = d["patients"]
        out.append(row)
    return pd.DataFrame(out)


# -- (b) convergence ---------------------------------------------------------------------------------
def iterations_to_fraction(log: pd.DataFrame, fraction: float = 0.9, column: str = "dice") -> float:
    """First validation iteration whose ``column`` reaches ``fraction`` of the final value (NaN if none)."""
    curve = log[["iteration", column]].dropna().sort_values("iteration")
    if curve.empty:
        return math.nan
    final = float(curve[column].iloc[-1])
    if final <= 0:
        return math.nan
    hit = curve[curve[column] >= fraction * final]
    return float(hit["iteration"].iloc[0])


def is_flat(log: pd.DataFrame, column: str = "dice", points: int = 3, tolerance: float = 0.03) -> bool:
    """True when the mean of the last ``points`` validation values differs from the mean of the
    ``points`` before them by at most ``tolerance`` (absolute): the curve has stopped rising."""
    curve = log[["iteration", column]].dropna().sort_values("iteration")[column].to_numpy(float)
    if len(curve) < 2 * points:
        return False
    return abs(curve[-points:].mean() - curve[-2 * points:-points].mean()) <= tolerance


def convergence_table(curves: pd.DataFrame, fraction: float = 0.9, columns: Iterable[str] = ("dice", "strict_dice")) -> pd.DataFrame:
    """Per run: iterations to ``fraction`` of the final validation value, the final value, and
    whether the curve is flat at the end, for each validation ``column`` that the run logs."""
    rows = []
    for (method, seed), log in curves.groupby(["method", "seed"], sort=False):
        row = {"method": method, "seed": int(seed)}
        for col in columns:
            if col not in log or log[col].dropna().empty:
                continue
            row[f"{col}: iterations to {fraction:.0%}"] = iterations_to_fraction(log, fraction, col)
            row[f"{col}: final"] = float(log[col].dropna().iloc[-1])
            row[f"{col}: flat"] = is_flat(log, col)
        rows.append(row)
    return pd.DataFrame(rows)


def ordering_verdict(faster: Sequence[float], slower: Sequence[float], *, never_last: bool = False) -> str:
    """``supports`` when every value of ``faster`` is below every value of ``slower``, ``contradicts``
    for the reverse, ``cannot decide`` otherwise (or when either side has no value). A non-finite
    value (a run that never got there) is left out, or with ``never_last`` ranks after every finite
    one (then nothing is decided only when no value is finite)."""
    if never_last:
        f = [x if math.isfinite(x) else math.inf for x in faster]
        s = [x if math.isfinite(x) else math.inf for x in slower]
        if all(math.isinf(x) for x in f + s):
            return UNDECIDED
    else:
        f = [x for x in faster if math.isfinite(x)]
        s = [x for x in slower if math.isfinite(x)]
    if not f or not s:
        return UNDECIDED
    if max(f) < min(s):
        return SUPPORTS
    if min(f) > max(s):
        return CONTRADICTS
    return UNDECIDED


def convergence_claim(curves: pd.DataFrame, fraction: float = 0.9) -> pd.DataFrame:
    """Claim (b): the full model's iterations to ``fraction`` of its final validation Dice against the
    baseline's, per validation score, with the ordering verdict."""
    p = paper_numbers()
    table = convergence_table(curves, fraction)
    out = []
    for col, label in (("dice", "paper-protocol Dice"), ("strict_dice", "lesion-slice Dice")):
        key = f"{col}: iterations to {fraction:.0%}"
        if key not in table:
            continue
        its = {v: table.loc[table["method"] == v, key].tolist() for v in (FULL, BASELINE)}
        fmt = lambda xs: ", ".join("never" if not math.isfinite(x) else f"{x:.0f}" for x in xs) or "not run"  # noqa: E731
        out.append({
            "claim": "(b) convergence",
            "comparison": f"iterations to {fraction:.0%} of the final validation {label}: full model vs MedSegDiffv2",
            "paper": (f"full model {p['text']['full_35k']['dice']:.2f}% Dice at {p['text']['full_35k']['iteration'] // 1000}K; "
                      f"baseline stabilises after {p['text']['baseline_stabilises_after'] // 1000}K"),
            "ours: full model (per seed)": fmt(its[FULL]), "ours: MedSegDiffv2 (per seed)": fmt(its[BASELINE]),
            "verdict": ordering_verdict(its[FULL], its[BASELINE]),
        })
    return pd.DataFrame(out)


# -- what a profile must show before its claims mean anything ------------------------------------------
def beats_all_empty(evals: pd.DataFrame, dataset: str = "instance2022") -> pd.Series:
    """Per method (index) on ``dataset``: is its paper-protocol Dice above that of an all-empty
    prediction on the same slices? Means over seeds, so a method holds when its mean does."""
    means = evals[evals["dataset"] == dataset].groupby("method", sort=False)[["dice", "all_empty_dice"]].mean()
    return means["dice"] > means["all_empty_dice"]


def profile_checks(evals: pd.DataFrame, curves: pd.DataFrame, dataset: str = "instance2022") -> pd.DataFrame:
    """Per method on ``dataset``: does it beat the trivial references, and has its training settled?

    - paper-protocol Dice (the profile's ``evaluate.paper_fusion``) above that of an all-empty
      prediction on the same slices; the Dice under the released v2 script's default fusion is
      shown beside it;
    - lesion-slice Dice (0.5 threshold) above its chance level inside the head (the Dice of the
      same number of lesion pixels placed at random inside the head);
    - validation curves (both scores) flat at the end (``is_flat``) for every seed.
    Means over seeds; a check holds only when it holds for the mean."""
    from .paper import method_title

    rows = []
    sel = evals[evals["dataset"] == dataset]
    beats = beats_all_empty(evals, dataset)
    flat = convergence_table(curves, columns=("dice", "strict_dice", "pseudo_dice"))  # nnU-Net logs its own pseudo Dice
    for method, runs in sel.groupby("method", sort=False):
        f = flat[flat["method"] == method]
        flat_cols = [c for c in f if c.endswith(": flat")]
        dice, empty = runs["dice"].mean(), runs["all_empty_dice"].mean()
        lesion, chance = runs["positive_slice_dice"].mean(), runs["chance_positive_slice_dice_in_head"].mean()
        # the released v2 script's default fusion (raw samples, no anchor blend), when recorded
        v2 = runs["dice_medsegdiff-v2"].mean() if "dice_medsegdiff-v2" in runs else float("nan")
        rows.append({
            "method": method_title(method), "seeds": int(runs["seed"].nunique()),
            "paper-protocol Dice (%)": round(100 * dice, 2),
            "same, v2 script's fusion (%)": round(100 * v2, 2), "all-empty (%)": round(100 * empty, 2),
            "beats all-empty": bool(beats[method]),
            "lesion-slice Dice (%)": round(100 * lesion, 2), "in-head chance (%)": round(100 * chance, 2),
            "beats chance": bool(lesion > chance),
            "curves flat at the end": bool(len(f) and f[flat_cols].all(axis=None)) if flat_cols else False,
        })
    return pd.DataFrame(rows)


def all_empty_margin(breakdown: pd.DataFrame, dataset: str = "instance2022") -> pd.DataFrame:
    """Where each method wins or loses against the all-empty prediction under the paper protocol.

    With a share ``e`` of lesion-free slices, the paper-protocol Dice is ``e·D_free + (1 - e)·D_lesion``
    (``D_free``: the mean over lesion-free slices, 1 for a slice scored empty; ``D_lesion``: over the
    lesion slices), and an all-empty prediction scores about ``e``. A method beats it exactly when
    ``D_free > 1 - (1 - e)·D_lesion / e``: the share of lesion-free slices it must score empty, given
    how well it segments the lesions. ``breakdown`` is ``collect.protocol_breakdown``'s table; means
    over seeds."""
    from .paper import method_title

    rows = []
    for method, runs in breakdown[breakdown["dataset"] == dataset].groupby("method", sort=False):
        e, free, lesion = (runs[c].mean() for c in ("empty_fraction", "paper_dice_empty", "paper_dice_lesion"))
        needed = 1.0 - (1.0 - e) * lesion / e if e > 0 else math.nan
        rows.append({
            "method": method_title(method), "seeds": int(runs["seed"].nunique()),
            "lesion-free slices (%)": round(100 * e, 2),
            "lesion slices: paper-protocol Dice (%)": round(100 * lesion, 2),
            "lesion-free slices scored empty (%)": round(100 * free, 2),
            "needed to beat all-empty (%)": round(100 * needed, 2),
            "margin (points)": round(100 * (free - needed), 2),
        })
    return pd.DataFrame(rows)


# -- the pre-registered family of comparisons ----------------------------------------------------------
#: the smallest difference that matters (Dice, 0-1): below every gain the paper's Table 2 claims
#: (+2.55 to +7.14 points) and above the differences it reports between models it finds level
#: (-0.30 for "+ ResNet18 Features", -0.13 for the full model against nnU-Net)
SMALLEST_DIFFERENCE = 0.02
#: the primary scores of a pre-registered pass (secondary: the paper protocol, ``paper_dice``)
PRIMARY_SCORES = {"strict_dice": "lesion-slice Dice at 0.5", "volume_dice": "per-volume 3D Dice"}
GAIN, LOSS, LEVEL = "gain", "loss", "no difference"


@dataclass(frozen=True)
class Comparison:
    """Model ``a`` against ``b`` on ``dataset``. ``paper_delta``: the paper's Dice difference (0-1;
    None where it has none); ``claim``: what is tested — ``gain``, ``loss`` or ``no difference``."""

    id: str
    kind: str
    title: str
    a: str
    b: str
    dataset: str
    paper_delta: float | None
    claim: str
    beyond_paper: bool = False


def _claim_of(delta: float | None, margin: float) -> str:
    if delta is None:
        return GAIN
    return LEVEL if abs(delta) < margin else (GAIN if delta > 0 else LOSS)


def preregistered_comparisons(methods: Sequence[str], datasets: Sequence[str] = ("instance2022",),
                              margin: float = SMALLEST_DIFFERENCE) -> list[Comparison]:
    """The family a pass tests, restricted to the ``methods`` it runs: each Table 2 step, the full
    model against MedSegDiff-v2 and against nnU-Net, the beyond-the-paper steps (pretrained vs
    scratch trunk, Lite0 vs ResNet18 trunk), and the full model against MedSegDiff-v2 on every
    cross-dataset test set in ``datasets``."""
    p, home = paper_numbers(), "instance2022"
    t1, t2 = p["table1"], p["table2"]
    dice = lambda table, m: table[m]["dice"] / 100 if m in table else None  # noqa: E731
    rows = [r for r in VARIANT_ORDER if r in t2]
    out = [Comparison(f"table2:{row}", "(a) ablation", f"{t2[row]['title']} vs {t2[prev]['title']}", row, prev, home,
                      dice(t2, row) - dice(t2, prev), "") for prev, row in zip(rows, rows[1:])]
    out.append(Comparison("full-vs-medsegdiffv2", "(a) ablation", "full model vs MedSegDiffv2", FULL, BASELINE, home,
                          dice(t2, FULL) - dice(t2, BASELINE), ""))
    ours, nn = t1[home].get("ours"), t1[home].get("nnunet")
    out.append(Comparison("full-vs-nnunet", "(d) baseline", "full model vs nnU-Net", FULL, "nnunet", home,
                          (ours["dice"] - nn["dice"]) / 100 if ours and nn else None, ""))
    out.append(Comparison("pretrained-vs-scratch", "(e) beyond the paper",
                          "full model on EfficientNet-Lite0: ImageNet vs from scratch", "full_lite0",
                          "full_lite0_scratch", home, None, "", True))
    out.append(Comparison("lite0-imagenet-vs-full", "(e) beyond the paper",
                          "full model: ImageNet EfficientNet-Lite0 trunk vs its ResNet18 trunk", "full_lite0", FULL,
                          home, None, "", True))
    for ds in datasets:
        if p["datasets"].get(ds, {}).get("cross_dataset"):
            ref = t1.get(ds, {})
            delta = (ref["ours"]["dice"] - ref["medsegdiffv2"]["dice"]) / 100 if "ours" in ref and "medsegdiffv2" in ref else None
            out.append(Comparison(f"cross:{ds}", "(c) cross-dataset", f"full model vs MedSegDiffv2 on {dataset_title(ds)}",
                                  FULL, BASELINE, ds, delta, ""))
    keep = set(methods)
    return [replace(c, claim=_claim_of(c.paper_delta, margin)) for c in out if c.a in keep and c.b in keep]


def decide(low: float, high: float, rejected: bool, delta: float, claim: str, margin: float = SMALLEST_DIFFERENCE) -> str:
    """The decision rule. ``low``/``high``: the difference's interval at the family's level;
    ``rejected``: Holm rejects "no difference".
    gain: supports when rejected with a positive difference; contradicts when rejected with a negative
    one, or when the interval lies below ``margin`` (no gain that matters); cannot decide otherwise.
    loss: the mirror image. no difference: supports when the interval lies inside (-margin, margin);
    contradicts when it lies wholly beyond one of them; cannot decide otherwise."""
    if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(delta)):
        return UNDECIDED
    if claim == LEVEL:
        if -margin < low and high < margin:
            return SUPPORTS
        return CONTRADICTS if low >= margin or high <= -margin else UNDECIDED
    sign = 1.0 if claim == GAIN else -1.0
    if rejected and sign * delta > 0:
        return SUPPORTS
    if (rejected and sign * delta < 0) or (sign * high < margin if sign > 0 else sign * low < margin):
        return CONTRADICTS
    return UNDECIDED


def combine_verdicts(*verdicts: str) -> str:
    """One claim's verdict over the primary metrics: theirs when all agree, ``cannot decide`` otherwise."""
    return verdicts[0] if verdicts and len(set(verdicts)) == 1 else UNDECIDED


def _bootstrap(table: pd.DataFrame, c: Comparison, score: str, n_boot: int, seed: int):
    """The two-level bootstrap of ``c`` on ``score``, or None when either model has no scores."""
    ma, keys, clusters = _score_matrix(table, c.a, c.dataset, score)
    mb = _score_matrix(table, c.b, c.dataset, score, keys)[0] if ma is not None else None
    if ma is None or mb is None or not len(ma) or not len(mb):
        return None
    return two_level_bootstrap(ma, mb, clusters, n_boot=n_boot, seed=seed)


def decide_comparisons(table: pd.DataFrame, comparisons: Sequence[Comparison], score: str, *, alpha: float = 0.05,
                       margin: float = SMALLEST_DIFFERENCE, seed_sd: float | None = None, n_boot: int = 4000,
                       seed: int = 0) -> pd.DataFrame:
    """Every comparison of the family on ``score`` (a column of ``table``: slices, or one row per
    volume): the difference and its 95% interval (two-level bootstrap), Holm's adjusted p-value
    across the family, the interval at the family's level (1 - alpha/m) that the rule reads, the
    verdict (``decide``) and, given a pilot's ``seed_sd``, the smallest detectable difference at
    Holm's strictest level. A comparison that was not run stays in the family (it counts in m)."""
    level = alpha / max(len(comparisons), 1)
    boots = [_bootstrap(table, c, score, n_boot, seed) for c in comparisons]
    adjusted, rejected = holm([r.p if r is not None else math.nan for r in boots], alpha)
    rows = []
    for c, r, adj, rej in zip(comparisons, boots, adjusted, rejected):
        row = {"id": c.id, "claim": c.kind, "comparison": c.title, "dataset": c.dataset, "tested": c.claim,
               "paper Δ Dice (points)": "–" if c.paper_delta is None else f"{100 * c.paper_delta:+.2f}"}
        if r is None:
            rows.append({**row, "verdict": "not run"})
            continue
        lo_f, hi_f = (float(x) for x in np.percentile(r.draws, [50 * level, 100 - 50 * level]))
        sdd = smallest_detectable_difference(seed_sd, r.seeds_a, r.seeds_b, alpha=level) if seed_sd is not None else math.nan
        rows.append({**row, "Δ (points)": 100 * r.delta, "95% CI (points)": f"[{100 * r.low:+.1f}, {100 * r.high:+.1f}]",
                     "p": r.p, "Holm p": float(adj), "family interval (points)": f"[{100 * lo_f:+.1f}, {100 * hi_f:+.1f}]",
                     "verdict": decide(lo_f, hi_f, bool(rej), r.delta, c.claim, margin),
                     "seeds": f"{r.seeds_a} vs {r.seeds_b}", "clusters": r.clusters,
                     "smallest detectable (points)": 100 * sdd})
    return pd.DataFrame(rows)


def convergence_at_threshold(curves: pd.DataFrame, threshold: float, column: str = "strict_dice") -> pd.DataFrame:
    """Per run: the first validation iteration at which ``column`` reaches ``threshold`` — one fixed
    value for every method (NaN: never within the run) — and the run's last iteration."""
    rows = []
    for (method, seed), log in curves.groupby(["method", "seed"], sort=False):
        if column not in log:
            continue
        rows.append({"method": method, "seed": int(seed), "threshold": threshold,
                     "iterations": iterations_to_threshold(log["iteration"], log[column], threshold),
                     "last iteration": float(log["iteration"].max())})
    return pd.DataFrame(rows)


__all__ = ["CONTRADICTS", "GAIN", "IMAGE_CLUSTER_DATASETS", "LEVEL", "LOSS", "PRIMARY_SCORES", "SCORES",
           "SMALLEST_DIFFERENCE", "SUPPORTS", "UNDECIDED", "Comparison", "all_empty_margin", "beats_all_empty",
           "combine_verdicts", "comparison_claims", "convergence_at_threshold", "convergence_claim", "convergence_table", "decide",
           "decide_comparisons", "difference", "is_flat", "iterations_to_fraction", "ordering_verdict",
           "paired_bootstrap_difference", "preregistered_comparisons", "profile_checks", "verdict"]

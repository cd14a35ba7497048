"""The paper's Tables 1-2 with our numbers beside them, and the strict-metric tables.

Tables 1-2 lead with the lesion-level scores the paper does not report (Dice at 0.5 on the lesion
slices, and the 3D Dice per volume), then the paper protocol's Dice and IoU, a per-slice score that
lesion-free slices dominate (all higher is better). The paper's numbers and ours sit in separate
column groups under a top header that says which is which ("paper (single run)" = copied from the
publication, "–" for the lesion-level scores it does not report; "ours (...)" = measured by this
study), the same sub-columns in each; a last column gives the paper-protocol Dice of an all-empty
prediction, the reference that protocol sets. Our cells are ``mean ± half-width of the 95%
t-interval`` over seeds when a method has several seeds, the plain value for one seed, and ``not
run`` where the study has no such model. A seed without a number is never dropped silently: the
cell says ``(2/3 seeds)``, or ``failed (0/3 seeds)``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .paper import DATASET_ORDER, METHOD_ORDER, VARIANT_ORDER, dataset_title, paper_numbers, method_title
from .claims import beats_all_empty
from .stats import format_mean_ci, mean_ci, summarise

NOT_RUN = "not run"
#: what a cell shows where a number does not exist
MISSING = "–"


def _ordered(values, order) -> list:
    values = list(dict.fromkeys(values))
    return [v for v in order if v in values] + [v for v in values if v not in order]


def ours_label(n_seeds: int, profile: str, fewest: int | None = None) -> str:
    """Column head of our numbers: the profile and the seeds per model (``fewest``-``n_seeds`` when
    models differ); ``±`` is the half-width of the 95% t-interval, which one seed does not have."""
    fewest = n_seeds if fewest is None else fewest
    if n_seeds <= 1:
        return f"ours ({profile}, 1 seed)"
    if fewest < n_seeds:
        return f"ours ({profile}, {fewest}–{n_seeds} seeds, mean ± 95% CI where ≥ 2)"
    return f"ours ({profile}, mean ± 95% CI, {n_seeds} seeds)"


def _n_seeds(evals: pd.DataFrame) -> tuple[int, int]:
    """(most, fewest) seeds of one model on one dataset."""
    if not len(evals):
        return 0, 0
    counts = evals.groupby(["method", "dataset"])["seed"].nunique()
    return int(counts.max()), int(counts.min())


#: Tables 1-2's scores, lesion-level first, the same sub-columns under ours and under the paper's
LESION_DICE = "lesion-slice Dice (%)"
VOLUME_DICE = "3D Dice (%)"
PAPER_DICE = "paper-protocol Dice (%)"
PAPER_IOU = "paper-protocol IoU (%)"
BEST_ITERATION = "best iteration"
#: the top header of the paper's own numbers (single runs; no lesion-level score: "–")
PAPER_HEAD = "paper (single run)"
#: the top header of the reference every model must beat under the paper protocol: nothing predicted
#: on the same slices (its Dice is about the share of lesion-free slices, each of which scores 1)
ALL_EMPTY_COLUMN = "all-empty prediction"
#: evaluation column of each of our scores
SCORE_KEYS = {LESION_DICE: "positive_slice_dice", VOLUME_DICE: "volume_dice", PAPER_DICE: "dice", PAPER_IOU: "iou"}
_PAPER_KEYS = {PAPER_DICE: "dice", PAPER_IOU: "iou"}


def _ours_cells(sel: pd.DataFrame) -> list[str]:
    """Our four scores of one row (mean ± CI over seeds; ``not run`` without runs). A lesion-level
    score missing beside a paper-protocol one is not applicable (a test split without a lesion
    slice: "–"); missing with it too, the evaluation failed."""
    scored = "dice" in sel and bool(sel["dice"].notna().any())
    return [summarise(sel[k], scale=100, digits=1, failed=MISSING if scored and k not in _PAPER_KEYS.values() else "failed")
            if k in sel else MISSING for k in SCORE_KEYS.values()]


def _paper_cells(ref: dict) -> list[str]:
    """The paper's four scores of one row: "–" where it reports none (every lesion-level score)."""
    return [_paper(ref.get(_PAPER_KEYS[g])) if g in _PAPER_KEYS else MISSING for g in SCORE_KEYS]


def _columns(ours: str, extra: tuple[str, ...] = ()) -> pd.MultiIndex:
    return pd.MultiIndex.from_tuples([(ours, c) for c in (*SCORE_KEYS, *extra)] + [(PAPER_HEAD, c) for c in (*SCORE_KEYS, *extra)]
                                     + [(ALL_EMPTY_COLUMN, PAPER_DICE)])


def table1(evals: pd.DataFrame, profile: str, datasets=None) -> pd.DataFrame:
    """Table 1: rows (dataset, model); columns, in percent, ours then the paper's, each with the
    lesion-slice Dice, the per-volume 3D Dice, then the paper protocol's Dice and IoU; last the
    paper-protocol Dice of an all-empty prediction on the same slices."""
    p = paper_numbers()
    most, fewest = _n_seeds(evals)
    ours = ours_label(most, profile, fewest)
    datasets = _ordered(datasets or [d for d in DATASET_ORDER if d in set(evals["dataset"])] or DATASET_ORDER, DATASET_ORDER)
    rows, index = [], []
    for ds in datasets:
        for key, model in p["models"].items():
            ref = p["table1"].get(ds, {}).get(key, {})
            sel = evals[(evals["method"] == model["method"]) & (evals["dataset"] == ds)] if model["method"] else evals.iloc[0:0]
            title = model["title"] + (f" [{model['method']}]" if model["method"] else "")
            index.append((dataset_title(ds) + ("*" if p["datasets"].get(ds, {}).get("cross_dataset") else ""), title))
            rows.append(_ours_cells(sel) + _paper_cells(ref) + [_all_empty(evals, ds)])
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["Dataset", "Model"]), columns=_columns(ours))


def _all_empty(evals: pd.DataFrame, dataset: str) -> str:
    """The paper-protocol Dice of an all-empty prediction on ``dataset``'s slices (the same for every model)."""
    v = evals.loc[evals["dataset"] == dataset, "all_empty_dice"].dropna() if "all_empty_dice" in evals else ()
    return f"{100 * float(v.iloc[0]):.1f}" if len(v) else MISSING


def _paper(v) -> str:
    return MISSING if v is None else f"{float(v):.2f}"


def table2(evals: pd.DataFrame, profile: str, dataset: str = "instance2022") -> pd.DataFrame:
    """Table 2 (ablation on ``dataset``), one row per variant: the columns of ``table1`` with the best
    iteration after the scores, under ours and under the paper's."""
    p = paper_numbers()
    most, fewest = _n_seeds(evals)
    ours = ours_label(most, profile, fewest)
    # Table 2 rows only: the ablation's diffusion variants (the baselines belong to Table 1)
    table2_rows = set(p["table2"]) | set(VARIANT_ORDER)
    variants = _ordered([v for v in list(p["table2"]) + list(evals["method"].unique()) if v in table2_rows], VARIANT_ORDER)
    all_empty = _all_empty(evals, dataset)
    rows, index = [], []
    for v in variants:
        ref = p["table2"].get(v, {})
        sel = evals[(evals["method"] == v) & (evals["dataset"] == dataset)]
        best = sel.drop_duplicates("seed")["best_iteration"].astype(float)
        paper_best = f"{int(ref['best_iteration']) // 1000}K" if ref.get("best_iteration") else MISSING
        rows.append(_ours_cells(sel) + [summarise(best, digits=0)] + _paper_cells(ref) + [paper_best, all_empty])
        index.append(f"{method_title(v)} [{v}]")
    return pd.DataFrame(rows, index=pd.Index(index, name="Model variant"), columns=_columns(ours, (BEST_ITERATION,)))


STRICT_COLUMNS = {
    "dice": "Dice, paper protocol (%)",
    "positive_slice_dice": "Dice, lesion slices only (%)",
    "chance_positive_slice_dice": "chance level of that Dice (%)",
    "chance_positive_slice_dice_in_head": "chance level inside the head (%)",
    "volume_dice": "3D Dice per volume (%)",
    "hd95_mm": "HD95, 3D per volume (mm) ↓",
    "hd95_per_slice_mm": "HD95, 2D per slice (mm) ↓",
    "volume_abs_error_ml": "|volume error| (mL) ↓",
}


def strict_table(evals: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Ours only (the paper reports no strict metric): rows (dataset, method), one column per metric."""
    most, fewest = _n_seeds(evals)
    ours = ours_label(most, profile, fewest)
    datasets = _ordered(evals["dataset"], DATASET_ORDER)
    methods = _ordered(evals["method"], METHOD_ORDER)
    rows, index = [], []
    for ds in datasets:
        for v in methods:
            sel = evals[(evals["method"] == v) & (evals["dataset"] == ds)]
            if sel.empty:
                continue
            row = []
            for key in STRICT_COLUMNS:
                pct = key in ("dice", "positive_slice_dice", "chance_positive_slice_dice",
                              "chance_positive_slice_dice_in_head", "volume_dice")
                row.append(summarise(sel[key], scale=100 if pct else 1, digits=1, missing=MISSING,
                                     failed="failed" if key == "dice" else MISSING))
            rows.append(row)
            index.append((dataset_title(ds), method_title(v)))
    cols = pd.MultiIndex.from_tuples([(ours, c) for c in STRICT_COLUMNS.values()])
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["Dataset", "Method"]), columns=cols)


PROTOCOL_COLUMNS = {
    "empty_fraction": "slices with empty ground truth (%)",
    "paper_dice": "paper Dice, all slices (%)",
    "paper_dice_empty": "paper Dice, empty slices (%)",
    "paper_dice_lesion": "paper Dice, lesion slices (%)",
    "strict_dice_lesion": "Dice at 0.5, lesion slices (%)",
    "empty_predictor_dice": "paper Dice of an all-empty prediction (%)",
}
# the paper Dice over all slices after each step of the released output path (cumulative)
PROTOCOL_STEP_COLUMNS = {
    "step_mean": "plain ensemble mean (%)",
    "paper_dice_empty_mean": "plain mean, empty slices (%)",
    "step_anchor_blend": "+ anchor blend (%)",
    "step_staple": "+ STAPLE (%)",
    "step_jpeg8": "+ 8-bit JPEG: released path (%)",
    "step_no_max_norm": "released path without max-normalisation (%)",
    "step_v2_raw": "v2 script default, no anchor blend (%)",
}


def protocol_table(breakdown: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Why the paper protocol flatters: its Dice split into empty and lesion slices, per dataset/method,
    and how each step of the released MedSegDiff output path moves it (``protocol_breakdown``)."""
    datasets = _ordered(breakdown["dataset"], DATASET_ORDER)
    methods = _ordered(breakdown["method"], METHOD_ORDER)
    spec = {**PROTOCOL_COLUMNS, **PROTOCOL_STEP_COLUMNS}
    rows, index = [], []
    for ds in datasets:
        for v in methods:
            sel = breakdown[(breakdown["method"] == v) & (breakdown["dataset"] == ds)]
            if sel.empty:
                continue
            rows.append([summarise(sel[k], scale=100, digits=1, missing=MISSING,
                                   failed="failed" if k == "paper_dice" else MISSING) if k in sel else MISSING for k in spec])
            index.append((dataset_title(ds), method_title(v)))
    ours = ours_label(int(breakdown["seed"].nunique()), profile)
    cols = pd.MultiIndex.from_tuples(
        [(f"{ours}: where the paper Dice comes from", c) for c in PROTOCOL_COLUMNS.values()]
        + [(f"{ours}: paper Dice along the released output path", c) for c in PROTOCOL_STEP_COLUMNS.values()])
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["Dataset", "Method"]), columns=cols)


#: lesion contrast bands (HU above the soft tissue around the lesion, ``lesion_contrast_hu`` of the
#: preparation): under 20 HU a lesion is faint (a slab part-filled with blood, blood mixed with CSF);
#: acute blood against brain differs by 20-60 HU
CONTRAST_BANDS_HU = (20.0, 40.0)


#: per-slice scores ``contrast_table`` can split, with their header
CONTRAST_SCORES = {"strict_dice": "lesion-slice Dice at 0.5 (%)", "paper_dice": "lesion-slice paper-protocol Dice (%)"}


def contrast_table(slices: pd.DataFrame, profile: str, dataset: str = "instance2022",
                   bands: tuple[float, ...] = CONTRAST_BANDS_HU, score: str = "strict_dice") -> pd.DataFrame:
    """What limits the lesion-slice Dice: each method's ``score`` on the lesion slices of ``dataset``
    (default the Dice at 0.5 that the evaluation's ``positive_slice_dice`` averages), split by how
    far the lesion stands out of the tissue around it (``lesion_contrast_hu``); per seed the mean
    over the band's slices, then mean ± CI over seeds. Column headers carry each band's slice
    count. Empty when the evaluations predate the column."""
    t = slices[(slices["dataset"] == dataset)] if "dataset" in slices else slices
    if "lesion_contrast_hu" not in t:
        return pd.DataFrame()
    t = t[t["lesion_contrast_hu"].notna()]
    if t.empty:
        return pd.DataFrame()
    edges = [-math.inf, *bands, math.inf]
    names = [f"< {bands[0]:.0f} HU"] + [f"{a:.0f}-{b:.0f} HU" for a, b in zip(bands, bands[1:])] + [f"≥ {bands[-1]:.0f} HU"]
    band = pd.cut(t["lesion_contrast_hu"], edges, right=False, labels=names)
    return _split_scores(t, band, names, score, profile, dataset, "by lesion contrast")


def patient_table(slices: pd.DataFrame, profile: str, dataset: str = "instance2022", score: str = "strict_dice") -> pd.DataFrame:
    """Where the lesion-slice Dice is lost: each method's ``score`` on the lesion slices of each test
    patient of ``dataset`` (per seed the mean over the patient's lesion slices, then mean ± CI over
    seeds); a column per patient with lesions, its header the patient and its lesion-slice count.
    A few patients every method misses move a small test split's mean more than any method does."""
    t = slices[(slices["dataset"] == dataset)] if "dataset" in slices else slices
    if not {"positive", "patient"} <= set(t) or not (t["positive"] == 1).any():
        return pd.DataFrame()
    t = t[t["positive"] == 1]
    patient = t["patient"].astype(str)
    names = sorted(patient.unique(), key=lambda p: (len(p), p))
    group = pd.Series(pd.Categorical(patient, categories=names), index=t.index)
    return _split_scores(t, group, names, score, profile, dataset, "by test patient", prefix="patient ")


def _split_scores(t: pd.DataFrame, group: pd.Series, names: list[str], score: str, profile: str, dataset: str,
                  what: str, prefix: str = "") -> pd.DataFrame:
    """Rows: methods; columns: the groups ``names`` of ``group`` (one label per slice of ``t``) and all
    slices; cells: per seed the mean ``score`` over the group's slices, then mean ± CI over seeds."""
    first = t.iloc[0]  # every run is scored on the same slices: count them in one
    one_run = t[(t["method"] == first["method"]) & (t["seed"] == first["seed"])]
    counts = group[one_run.index].value_counts()
    ours = ours_label(int(t["seed"].nunique()), profile)
    rows, index = [], []
    for method in _ordered(t["method"], METHOD_ORDER):
        sel = t["method"] == method
        per_seed = t[sel].groupby([t.loc[sel, "seed"], group[sel]], observed=False)[score].mean().unstack()
        overall = t[sel].groupby("seed")[score].mean()
        rows.append([summarise(per_seed[n], scale=100, digits=1, missing=MISSING, failed=MISSING) for n in names]
                    + [summarise(overall, scale=100, digits=1)])
        index.append(method_title(method))
    head = f"{ours}: {CONTRAST_SCORES[score]} {what}"
    cols = pd.MultiIndex.from_tuples([(head, f"{prefix}{n} ({int(counts.get(n, 0))} slices)") for n in names]
                                     + [(head, f"all ({len(one_run)} slices)")])
    return pd.DataFrame(rows, index=pd.Index(index, name=f"{dataset_title(dataset)}: method"), columns=cols)


def timings_table(timings: dict, run_seconds: dict[str, float] | None = None) -> pd.DataFrame:
    """The driver's per-stage timing record as a table (seconds this pass; seconds when last run).

    ``run_seconds``: stage id -> the wall time its own record gives (a training's ``run.json``
    ``wall_time_s``); it replaces the driver's *when last run* for those stages, since a training
    resumed from its checkpoint is timed by the driver for the resumed part only."""
    run_seconds = run_seconds or {}
    rows = []
    for s in timings.get("stages", []):
        last = run_seconds.get(s["id"], s.get("last_run_seconds"))
        rows.append({
            "stage": s["id"], "kind": s.get("kind"), "status": s.get("status"),
            "seconds (this pass)": round(float(s.get("seconds", 0.0)), 1),
            "seconds (when last run)": round(float(last), 1) if last is not None else None,
        })
    df = pd.DataFrame(rows, columns=["stage", "kind", "status", "seconds (this pass)", "seconds (when last run)"])
    total = {"stage": "total", "kind": "", "status": timings.get("status", ""),
             "seconds (this pass)": round(float(timings.get("total_seconds", df["seconds (this pass)"].sum())), 1),
             "seconds (when last run)": round(float(df["seconds (when last run)"].fillna(0).sum()), 1) if len(df) else None}
    return pd.concat([df, pd.DataFrame([total])], ignore_index=True)


def format_value(v, *, percent: bool = False, digits: int = 1, whole: bool = False) -> str:
    """One cell for a reader: ✓/✗ for a truth value, – for a missing number, integers with thousands
    separators, other numbers with ``digits`` decimals (× 100 when ``percent``: a fraction shown as %);
    ``whole``: a float column that holds only whole numbers (iterations) is shown without decimals."""
    if v is None or isinstance(v, str):
        return MISSING if v in (None, "", "nan", "n/a") else v
    if isinstance(v, (bool, np.bool_)):
        return "✓" if v else "✗"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(x):
        return MISSING
    x = 100 * x if percent else x
    return f"{x:,.0f}" if whole else f"{x:,.{digits}f}"


def _whole_numbers(values) -> bool:
    nums = [float(v) for v in values if isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))]
    finite = [x for x in nums if math.isfinite(x)]
    return bool(finite) and all(x.is_integer() for x in finite)


def display_table(df: pd.DataFrame, percent=lambda column: False, digits: int = 1) -> pd.DataFrame:
    """``df`` with every cell formatted by ``format_value`` (strings: what a reader sees). ``percent``:
    a predicate on a column's label (its last level) saying the column holds fractions to show in %."""
    out = df.copy().astype(object)
    for col in df.columns:
        label = col[-1] if isinstance(col, tuple) else col
        pct = bool(percent(str(label)))
        whole = not pct and _whole_numbers(df[col])
        out[col] = [format_value(v, percent=pct, digits=digits, whole=whole) for v in df[col]]
    return out


def headline(evals: pd.DataFrame, method: str, dataset: str, key: str = "dice", scale: float = 100.0) -> float:
    """Mean over seeds of one number (NaN when absent), for glueing into prose."""
    sel = evals[(evals["method"] == method) & (evals["dataset"] == dataset)][key]
    m, _, n = mean_ci(sel)
    return m * scale if n else math.nan


def headline_numbers(evals: pd.DataFrame, breakdown: pd.DataFrame) -> dict[str, float]:
    """Numbers the prose pages cite (percent; NaN where the study has no such run).

    Keys, for every variant ``v`` of Table 2 and dataset ``d`` of Table 1 (present or not, so a
    page citing them always builds): ``{v}_{d}_dice``, ``_iou``, ``_lesion_dice`` (strict, lesion
    slices), ``_volume_dice``, ``_hd95``, ``_paper_dice_empty``, ``_paper_dice_lesion``,
    ``_paper_dice_empty_mean`` and ``_step_<name>`` (the released output path's steps); per
    dataset ``empty_fraction_{d}``, ``slices_{d}`` and ``beats_empty_{d}`` (how many methods'
    paper-protocol Dice, mean over seeds, is above the all-empty prediction's); and ``n_seeds``,
    ``n_methods``.
    """
    out: dict[str, float] = {}
    for d in DATASET_ORDER:
        b = breakdown[breakdown["dataset"] == d] if len(breakdown) else breakdown
        out[f"empty_fraction_{d}"] = 100 * float(b["empty_fraction"].mean()) if len(b) else math.nan
        e = evals[evals["dataset"] == d]
        out[f"slices_{d}"] = float(e["n_slices"].iloc[0]) if len(e) else math.nan
        out[f"beats_empty_{d}"] = float(beats_all_empty(evals, d).sum()) if len(e) else math.nan
        for v in VARIANT_ORDER:
            out[f"{v}_{d}_dice"] = headline(evals, v, d, "dice")
            out[f"{v}_{d}_iou"] = headline(evals, v, d, "iou")
            out[f"{v}_{d}_lesion_dice"] = headline(evals, v, d, "positive_slice_dice")
            out[f"{v}_{d}_volume_dice"] = headline(evals, v, d, "volume_dice")
            out[f"{v}_{d}_hd95"] = headline(evals, v, d, "hd95_mm", scale=1.0)
            bv = b[b["method"] == v] if len(b) else b
            for k in ("paper_dice_empty", "paper_dice_lesion", "paper_dice_empty_mean", *PROTOCOL_STEP_COLUMNS):
                out[f"{v}_{d}_{k}"] = 100 * float(bv[k].mean()) if len(bv) and k in bv else math.nan
    out["n_seeds"] = float(evals["seed"].nunique()) if len(evals) else 0.0
    out["n_methods"] = float(evals["method"].nunique()) if len(evals) else 0.0
    return out


__all__ = [
    "ALL_EMPTY_COLUMN",
    "BEST_ITERATION",
    "LESION_DICE",
    "PAPER_DICE",
    "PAPER_HEAD",
    "PAPER_IOU",
    "SCORE_KEYS",
    "VOLUME_DICE",
    "MISSING",
    "display_table",
    "format_value",
    "CONTRAST_BANDS_HU",
    "CONTRAST_SCORES",
    "contrast_table",
    "headline_numbers",
    "NOT_RUN",
    "STRICT_COLUMNS",
    "format_mean_ci",
    "headline",
    "ours_label",
    "PROTOCOL_COLUMNS",
    "PROTOCOL_STEP_COLUMNS",
    "protocol_table",
    "strict_table",
    "table1",
    "table2",
    "timings_table",
]

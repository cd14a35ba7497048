"""Figures of the report: training curves (one run), Fig. 1 convergence curves (the Table 2 variants),
Fig. 3 qualitative grids and the sampling steps vs quality/time plot. Each returns a matplotlib
Figure and draws nothing else (no global style changes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from .paper import TABLE1_ORDER, VARIANT_ORDER, dataset_title, method_title
from .stats import ci_band

BASELINE, FULL = "medsegdiffv2", "full"


def _plt():
    import matplotlib.pyplot as plt

    return plt


def training_figure(log: pd.DataFrame, title: str = ""):
    """One run's ``train_log.csv``: losses (left) and validation Dice/IoU (right) vs iteration."""
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4), constrained_layout=True)
    for col, label in (("loss", "total"), ("loss_eps", "noise (L_n)"), ("loss_anchor", "anchor (L_anc)"),
                       ("loss_bce", "BCE"), ("loss_dice", "soft Dice"), ("val_loss", "validation (nnU-Net)")):
        if col in log and log[col].notna().any():
            a.plot(log["iteration"], log[col], marker="o", ms=3, label=label)
    # nnU-Net's loss (Dice + CE, with its Dice term negative) goes below 0: no log scale then
    losses = log[[c for c in ("loss", "val_loss") if c in log]].to_numpy(dtype=float)
    a.set(xlabel="iteration", ylabel="training loss (mean since last validation)",
          yscale="log" if np.nanmin(losses, initial=1.0) > 0 else "linear")
    a.legend(frameon=False)
    for col, label in (("dice", "Dice, paper protocol"), ("iou", "IoU, paper protocol"), ("strict_dice", "Dice, lesion slices"),
                       ("pseudo_dice", "nnU-Net pseudo Dice (its own)")):
        if col in log and log[col].notna().any():
            b.plot(log["iteration"], 100 * log[col], marker="o", ms=3, label=label)
    b.set(xlabel="iteration", ylabel="validation score (%)", ylim=(0, 100))
    b.legend(frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def _palette(methods) -> dict:
    import seaborn as sns

    others = [v for v in methods if v not in (BASELINE, FULL)]
    greys = sns.color_palette("crest", max(len(others), 1))
    pal = {v: greys[i] for i, v in enumerate(others)}
    pal[BASELINE] = "#1f77b4"
    pal[FULL] = "#d62728"
    return pal


def convergence_figure(curves: pd.DataFrame, title: str = ""):
    """Fig. 1: validation IoU (left) and Dice (right) vs iteration for every Table 2 variant.

    Lines are means over seeds; with several seeds, bands are the 95% t-interval at each
    validation point. The baseline (MedSegDiffv2) and the full model are drawn bold. Only the Table 2
    (diffusion) variants are drawn, as in the paper's Fig. 1; the baselines' own curves are on their
    training pages.
    """
    import seaborn as sns

    plt = _plt()
    curves = curves[curves["method"].isin(VARIANT_ORDER)]
    variants = [v for v in VARIANT_ORDER if v in set(curves["method"])]
    pal = _palette(variants)
    labels = {v: method_title(v) for v in variants}
    data = curves.assign(model=curves["method"].map(labels), IoU=100 * curves["iou"], Dice=100 * curves["dice"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True, sharex=True)
    for ax, metric in zip(axes, ("IoU", "Dice")):
        sns.lineplot(data=data, x="iteration", y=metric, hue="model", hue_order=[labels[v] for v in variants],
                     palette={labels[v]: pal[v] for v in variants}, errorbar=ci_band, marker="o", markersize=4, ax=ax,
                     legend=ax is axes[-1])
        for line, v in zip(ax.get_lines(), variants):
            if v in (BASELINE, FULL):
                line.set_linewidth(2.6)
        ax.set(ylabel=f"validation {metric} (%)", ylim=(0, 100))
        ax.grid(alpha=0.3)
    handles = axes[-1].get_legend()
    if handles is not None:
        sns.move_legend(axes[-1], "lower right", frameon=False, fontsize=8, title=None)
    if title:
        fig.suptitle(title)
    return fig


def qualitative_figure(items: Mapping[str, Mapping[str, np.ndarray]], dataset: str, uncertainty_of: str | None = None,
                       order=TABLE1_ORDER):
    """Fig. 3 for one dataset: per slice, CT, ground truth, each method's probability and the
    ensemble uncertainty (std over samples) of ``uncertainty_of`` (the full model by default).

    ``items``: method -> arrays of its ``qualitative.npz`` (rows, image, mask, probability,
    uncertainty). Methods must share the same slices (the engine picks them from the ground
    truth only); slices they do not share are left out. ``order``: the methods shown, in this
    order (default: the Table 1 models, as the paper's Fig. 3); ``None`` shows every method given.
    """
    plt = _plt()
    if order is None:
        order = [v for v in VARIANT_ORDER if v in items] + sorted(set(items) - set(VARIANT_ORDER))
    methods = [v for v in order if v in items] or sorted(items)
    if not methods:
        raise ValueError("qualitative_figure: no evaluations to show")
    common = set(map(int, items[methods[0]]["rows"]))
    for v in methods[1:]:
        common &= set(map(int, items[v]["rows"]))
    rows = sorted(common, key=lambda r: list(map(int, items[methods[0]]["rows"])).index(r))
    if not rows:
        raise ValueError(f"qualitative_figure: the methods share no slice on {dataset}")
    unc_v = uncertainty_of if uncertainty_of in items else (FULL if FULL in items else methods[-1])
    ref = items[methods[0]]
    import textwrap

    cols = ["CT", "ground truth"] + [method_title(v) for v in methods] + [f"uncertainty ({method_title(unc_v)})"]
    cols = [textwrap.fill(c, 18) for c in cols]
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(1.6 * len(cols), 1.6 * len(rows) + 0.6),
                             squeeze=False, constrained_layout=True)

    def pos(v, r):
        return list(map(int, items[v]["rows"])).index(r)

    for i, r in enumerate(rows):
        k = pos(methods[0], r)
        img = ref["image"][k]
        img = img[0] if img.ndim == 3 else img
        panels = [(img, "gray", None), (ref["mask"][k], "gray", (0, 1))]
        panels += [(items[v]["probability"][pos(v, r)], "gray", (0, 1)) for v in methods]
        unc = items[unc_v]["uncertainty"][pos(unc_v, r)]
        panels.append((unc, "magma", (0, max(float(np.max(unc)), 1e-6))))
        for j, (arr, cmap, lim) in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(np.asarray(arr, dtype=float), cmap=cmap, vmin=None if lim is None else lim[0],
                      vmax=None if lim is None else lim[1], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(cols[j], fontsize=7)
        axes[i, 0].set_ylabel(f"slice {r}", fontsize=7)
    fig.suptitle(dataset_title(dataset), fontsize=10)
    return fig


QUALITY_COLUMNS = {"paper_dice": "Dice, paper protocol", "dice": "Dice, paper protocol",
                   "positive_slice_dice": "Dice, lesion slices", "strict_dice": "Dice, lesion slices"}


def read_sampling_bench(path: str | Path) -> pd.DataFrame | None:
    """Rows of ``bench/out/sampling.json`` (written by ``bench/sampling.py``) as a table, or None
    when the file is absent or unreadable.

    Shape: ``{"rows": [{"sampler", "steps", "s_per_slice", "paper_dice", "positive_slice_dice"}, ...]}``
    (or a bare list); ``seconds_per_slice``/``seconds``/``ms_total`` and ``dice``/``strict_dice``
    are accepted too. The result has ``seconds_per_slice`` and the quality columns found.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    rows = data.get("rows", data.get("results")) if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        return None
    df = pd.DataFrame(rows)
    if "steps" not in df:
        return None
    if "seconds_per_slice" not in df:
        for col, factor in (("s_per_slice", 1.0), ("seconds", 1.0), ("ms_total", 1e-3)):
            if col in df:
                df["seconds_per_slice"] = df[col] * factor
                break
    if "sampler" not in df:
        df["sampler"] = "sampler"
    return df


def sampling_figure(bench: pd.DataFrame):
    """Sampling steps vs quality (left, when measured) and vs time per slice (right), per sampler."""
    plt = _plt()
    quality = [c for c in QUALITY_COLUMNS if c in bench and pd.to_numeric(bench[c], errors="coerce").notna().any()]
    panels = (["quality"] if quality else []) + (["seconds_per_slice"] if "seconds_per_slice" in bench else [])
    if not panels:
        raise ValueError("sampling_figure: the bench has neither a quality nor a time column")
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.6), squeeze=False, constrained_layout=True)
    styles = ["-", "--", ":"]
    for ax, panel in zip(axes[0], panels):
        for sampler, t in bench.groupby("sampler", sort=False):
            t = t.sort_values("steps")
            if panel == "quality":
                for style, col in zip(styles, quality):
                    ax.plot(t["steps"], 100 * pd.to_numeric(t[col], errors="coerce"), style, marker="o",
                            label=f"{sampler}: {QUALITY_COLUMNS[col]}")
            else:
                ax.plot(t["steps"], t["seconds_per_slice"], marker="o", label=str(sampler))
        ax.set(xscale="log", xlabel="sampling steps K",
               ylabel="seconds per slice" if panel == "seconds_per_slice" else "Dice (%)")
        if panel == "seconds_per_slice":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=7)
    return fig


__all__ = [
    "convergence_figure",
    "qualitative_figure",
    "read_sampling_bench",
    "sampling_figure",
    "training_figure",
]

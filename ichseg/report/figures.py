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


#: one distinct hue per Table 2 variant (colour-blind-safe Okabe-Ito colours); baseline and full
#: model in the two most contrasting ones
VARIANT_COLOURS = {"medsegdiffv2": "#0072B2", "cross_attention": "#009E73", "reduce_layer": "#E69F00",
                   "resnet18": "#CC79A7", "full": "#D55E00"}
EXTRA_COLOURS = ("#56B4E9", "#F0E442", "#000000", "#999999")


def _palette(methods) -> dict:
    extra = iter(EXTRA_COLOURS * (1 + len(methods) // len(EXTRA_COLOURS)))
    return {v: VARIANT_COLOURS.get(v) or next(extra) for v in methods}


def convergence_figure(curves: pd.DataFrame, title: str = ""):
    """Fig. 1: validation IoU (left) and Dice (right) vs iteration for every Table 2 variant.

    Lines are means over seeds; with several seeds, bands are the 95% t-interval at each
    validation point. The baseline (MedSegDiffv2) and the full model are drawn bold. Only the Table 2
    (diffusion) variants are drawn, as in the paper's Fig. 1; the baselines' own curves are on their
    training pages. One legend below both panels, at the size of the axis labels.
    """
    import seaborn as sns

    plt = _plt()
    curves = curves[curves["method"].isin(VARIANT_ORDER)]
    variants = [v for v in VARIANT_ORDER if v in set(curves["method"])]
    if not variants:
        raise ValueError("convergence_figure: the curves hold no Table 2 variant (a study of baselines alone)")
    pal = _palette(variants)
    labels = {v: method_title(v) for v in variants}
    data = curves.assign(model=curves["method"].map(labels), IoU=100 * curves["iou"], Dice=100 * curves["dice"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), constrained_layout=True, sharex=True)
    for ax, metric in zip(axes, ("IoU", "Dice")):
        sns.lineplot(data=data, x="iteration", y=metric, hue="model", hue_order=[labels[v] for v in variants],
                     palette={labels[v]: pal[v] for v in variants}, errorbar=ci_band, marker="o", markersize=4, ax=ax,
                     legend=False)
        for line, v in zip(ax.get_lines(), variants):
            line.set_linewidth(2.8 if v in (BASELINE, FULL) else 1.4)
        ax.set(ylabel=f"validation {metric} (%)", ylim=(0, 100), title=f"Validation {metric}, paper protocol")
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=pal[v], lw=2.8 if v in (BASELINE, FULL) else 1.6, marker="o", ms=4)
               for v in variants]
    fig.legend(handles, [labels[v] for v in variants], loc="outside lower center", ncol=min(len(variants), 3),
               frameon=False, fontsize=10)
    if title:
        fig.suptitle(title)
    return fig


def _ct_panel(ax, img, overlay=None, contour=None, vmax=1.0, cmap="autumn"):
    """The CT slice in its grey window, ``overlay`` (a map in [0, vmax]) over it where it is above 2%
    of ``vmax``, and ``contour`` (the ground truth) as a cyan outline; returns the overlay's image."""
    lo, hi = np.percentile(img, [1, 99.5])
    ax.imshow(img, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
    shown = None
    if overlay is not None:
        masked = np.ma.masked_less(np.asarray(overlay, dtype=float), 0.02 * vmax)
        shown = ax.imshow(masked, cmap=cmap, vmin=0, vmax=vmax, alpha=0.75, interpolation="nearest")
    if contour is not None and np.any(contour > 0.5):
        ax.contour(np.asarray(contour, dtype=float), levels=[0.5], colors="cyan", linewidths=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    return shown


def _shared_rows(items, methods) -> list[int]:
    common = set(map(int, items[methods[0]]["rows"]))
    for v in methods[1:]:
        common &= set(map(int, items[v]["rows"]))
    return sorted(common, key=lambda r: list(map(int, items[methods[0]]["rows"])).index(r))


def qualitative_figure(items: Mapping[str, Mapping[str, np.ndarray]], dataset: str, uncertainty_of: str | None = None,
                       order=TABLE1_ORDER):
    """Fig. 3 for one dataset: per slice, the CT in its grey window, the ground truth, each method's
    probability overlaid on the CT (ground truth outlined in cyan), and the ensemble uncertainty
    (std over samples) of ``uncertainty_of`` (the full model by default) on one scale for every
    slice, with a colour bar for each scale.

    ``items``: method -> arrays of its ``qualitative.npz`` (rows, image, mask, probability,
    uncertainty). Methods must share the same slices (the engine picks them from the ground
    truth only); slices they do not share are left out. ``order``: the methods shown, in this
    order (default: the Table 1 models, as the paper's Fig. 3); ``None`` shows every method given.
    """
    import textwrap

    plt = _plt()
    if order is None:
        order = [v for v in VARIANT_ORDER if v in items] + sorted(set(items) - set(VARIANT_ORDER))
    methods = [v for v in order if v in items] or sorted(items)
    if not methods:
        raise ValueError("qualitative_figure: no evaluations to show")
    rows = _shared_rows(items, methods)
    if not rows:
        raise ValueError(f"qualitative_figure: the methods share no slice on {dataset}")
    unc_v = uncertainty_of if uncertainty_of in items else (FULL if FULL in items else methods[-1])
    pos = lambda v, r: list(map(int, items[v]["rows"])).index(r)  # noqa: E731
    unc_max = max(float(np.max(items[unc_v]["uncertainty"][pos(unc_v, r)])) for r in rows) or 1e-6
    cols = ["CT", "ground truth"] + [method_title(v) for v in methods] + ["uncertainty (std over samples)"]
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(1.7 * len(cols) + 1.2, 1.7 * len(rows) + 0.9),
                             squeeze=False, constrained_layout=True)
    prob_im = unc_im = None
    for i, r in enumerate(rows):
        k = pos(methods[0], r)
        img = np.asarray(items[methods[0]]["image"][k], dtype=float)
        img = img[0] if img.ndim == 3 else img
        gt = np.asarray(items[methods[0]]["mask"][k], dtype=float)
        _ct_panel(axes[i, 0], img)
        _ct_panel(axes[i, 1], img, overlay=gt, cmap="autumn")
        for j, v in enumerate(methods, start=2):
            prob_im = _ct_panel(axes[i, j], img, overlay=items[v]["probability"][pos(v, r)], contour=gt) or prob_im
        unc_im = _ct_panel(axes[i, -1], img, overlay=items[unc_v]["uncertainty"][pos(unc_v, r)], vmax=unc_max,
                           cmap="viridis") or unc_im
        axes[i, 0].set_ylabel(f"slice {r}", fontsize=8)
    for j, c in enumerate(cols):
        axes[0, j].set_title(textwrap.fill(c, 16), fontsize=8)
    if prob_im is not None:
        fig.colorbar(prob_im, ax=axes[:, 1:-1], shrink=0.6, label="probability of blood", location="bottom", aspect=40)
    if unc_im is not None:
        fig.colorbar(unc_im, ax=axes[:, -1], shrink=0.8, label="std over samples", location="bottom")
    fig.suptitle(f"{dataset_title(dataset)}: each model's probability over the CT, ground truth outlined in cyan; "
                 f"uncertainty of {method_title(unc_v)}", fontsize=10)
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
    "real_synthetic_figure",
    "sampling_figure",
    "subtype_figure",
    "training_figure",
]


def subtype_figure(volumes, subtypes, codes: Mapping[str, int], window=(40.0, 80.0)):
    """One axial slice per hemorrhage subtype, at the brain window (level, width in HU): for each
    subtype the slice of ``volumes`` (objects with ``hu`` and ``labels`` arrays, X × Y × Z, labels
    holding ``codes[subtype]``) with the most voxels of it, the lesion outlined beside the plain
    slice. Subtypes no volume holds are left out."""
    plt = _plt()
    picks = []
    for sub in subtypes:
        best = None
        for vol in volumes:
            counts = (np.asarray(vol.labels) == codes[sub]).sum(axis=(0, 1))
            z = int(np.argmax(counts))
            if counts[z] and (best is None or counts[z] > best[0]):
                best = (int(counts[z]), vol, z)
        if best:
            picks.append((sub, best[1], best[2]))
    if not picks:
        raise ValueError("subtype_figure: no volume holds any of the subtypes")
    level, width = window
    fig, axes = plt.subplots(2, len(picks), figsize=(2.3 * len(picks), 4.9), squeeze=False, constrained_layout=True)
    for j, (sub, vol, z) in enumerate(picks):
        img = np.rot90(np.asarray(vol.hu)[:, :, z])  # RAS+ voxel order -> anterior at the top
        lab = np.rot90(np.asarray(vol.labels)[:, :, z] == codes[sub])
        for i in range(2):
            ax = axes[i, j]
            ax.imshow(img, cmap="gray", vmin=level - width / 2, vmax=level + width / 2, interpolation="nearest")
            if i == 1:
                ax.contour(lab.astype(float), levels=[0.5], colors="#D55E00", linewidths=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, j].set_title(sub, fontsize=10)
    axes[0, 0].set_ylabel("CT, W80/L40", fontsize=9)
    axes[1, 0].set_ylabel("blood outlined", fontsize=9)
    return fig


def real_synthetic_figure(real_slices, volume, levels, size: int = 128, window=(40.0, 80.0)):
    """The real head CT slices (``realct.RealSlice``, in their DICOM frame) above synthetic slices of
    ``volume`` (RAS+ X × Y × Z) at ``levels`` (one per real slice, e.g. ``realism.matched_levels``),
    all resampled to ``size``² and shown at one window (level, width in HU), in the radiological
    convention of the DICOM frame (anterior up, the patient's right on the image's left)."""
    from ..data.realism import resample_square

    plt = _plt()
    level, width = window
    n = len(real_slices)
    fig, axes = plt.subplots(2, n, figsize=(3.0 * n + 0.4, 6.4), squeeze=False, constrained_layout=True)
    for j, (rs, z) in enumerate(zip(real_slices, levels)):
        synthetic = np.fliplr(np.rot90(np.asarray(volume.hu)[:, :, z]))  # RAS+ -> anterior up, right on the left
        rows = ((rs.hu, f"real: {rs.name}"), (synthetic, f"synthetic: slice {z + 1} of {volume.hu.shape[2]}"))
        for i, (hu, title) in enumerate(rows):
            ax = axes[i, j]
            ax.imshow(resample_square(hu, size), cmap="gray", vmin=level - width / 2, vmax=level + width / 2,
                      interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("real head CT (pydicom)", fontsize=9)
    axes[1, 0].set_ylabel("synthetic head CT", fontsize=9)
    fig.suptitle(f"Brain window W{width:g}/L{level:g}, all at {size}²", fontsize=10)
    return fig

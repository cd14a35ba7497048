"""The gallery of failures: for one dataset, one row per model with the slices it got most wrong
(``worst.npz`` of its evaluation, ``ichseg.engine.worst``): the lesion slices with the lowest
lesion-slice Dice, or the lesion-free slices it marked most. Each panel is the CT as the model saw
it, the ground truth and the thresholded prediction outlined in two colours, zoomed to both."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Mapping

import numpy as np

from ..engine.worst import WORST_K, WorstSlices
from .collect import StaleResultsError, Study, load_study, worst
from .paper import VARIANT_ORDER, dataset_title, method_title
from .toc import profile_dirs

#: ground truth in cyan, as in Fig. 3; the prediction in orange (Okabe-Ito), apart for colour-blind readers
GT_COLOUR, PRED_COLOUR = "cyan", "#E69F00"
BRAIN_WINDOW = "brain window, L40/W80"


def zoom_box(mask: np.ndarray, pred: np.ndarray, min_fraction: float = 0.5, margin: int = 4) -> tuple[slice, slice]:
    """A square around the ground truth and the prediction (``margin`` pixels beyond both), at least
    ``min_fraction`` of the slice's side, inside the slice; the whole slice when both are empty."""
    h, w = mask.shape
    ys, xs = np.nonzero(np.asarray(mask, bool) | np.asarray(pred, bool))
    if len(ys) == 0:
        return slice(0, h), slice(0, w)
    side = min(max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 + 2 * margin, h, w)
    side = max(side, int(round(min_fraction * min(h, w))))
    cy, cx = (ys.min() + ys.max() + 1) // 2, (xs.min() + xs.max() + 1) // 2
    y0 = int(np.clip(cy - side // 2, 0, h - side))
    x0 = int(np.clip(cx - side // 2, 0, w - side))
    return slice(y0, y0 + side), slice(x0, x0 + side)


def _panel(ax, w: WorstSlices, i: int, zoom: bool) -> None:
    box = zoom_box(w.mask[i], w.pred[i]) if zoom else (slice(None), slice(None))
    ax.imshow(w.image[i][box], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    for m, colour in ((w.mask[i], GT_COLOUR), (w.pred[i], PRED_COLOUR)):
        if m[box].any():
            ax.contour(m[box].astype(float), levels=[0.5], colors=colour, linewidths=1.4)
    where = f"{w.volume[i]}, slice {int(w.slice_index[i])}" if w.volume[i] else f"row {int(w.row[i])}"
    what = f"Dice {float(w.dice[i]):.2f}" if w.group[i] == "lesion" else f"{int(w.pred_pixels[i])} px marked"
    ax.set_title(f"{what}\n{where}", fontsize=9)


def _blank(ax, text: str) -> None:
    ax.set_frame_on(False)
    ax.set_xticks([])
    ax.set_yticks([])
    if text:
        ax.text(0.02, 0.5, textwrap.fill(text, 22), transform=ax.transAxes, fontsize=8, va="center")


def gallery_figure(items: Mapping[str, WorstSlices | None], dataset: str, group: str = "lesion", order=None,
                   k: int = WORST_K, zoom: bool = True, window: str = BRAIN_WINDOW):
    """One row per model of ``items`` (method -> its ``worst.npz`` on ``dataset``, ``collect.worst``)
    that has worst slices, its ``k`` worst slices of ``group`` ("lesion": lowest lesion-slice Dice
    first; "empty": the lesion-free slices with the most predicted pixels), each at the same grey
    window with the ground truth and the prediction outlined, Dice (or the pixels marked) in its
    title. Models given as None (evaluated before worst slices were kept) are named in one sentence
    under the figure. ``order``: the methods shown, in this order (default: every method given, the
    Table 2 variants first)."""
    import matplotlib.pyplot as plt

    if order is None:
        order = [v for v in VARIANT_ORDER if v in items] + sorted(set(items) - set(VARIANT_ORDER))
    methods = [v for v in order if v in items]
    shown = [v for v in methods if items[v] is not None]
    absent = [v for v in methods if items[v] is None]
    if not shown:
        raise ValueError(f"gallery_figure: no model on {dataset} has worst slices (worst.npz)")
    fig, axes = plt.subplots(len(shown), k, figsize=(1.4 * k + 0.8, 1.8 * len(shown) + 1.1), squeeze=False,
                             constrained_layout=True)
    for r, v in enumerate(shown):
        picks = items[v].of(group)[:k]
        for j in range(k):
            if j < len(picks):
                _panel(axes[r, j], items[v], int(picks[j]), zoom)
                axes[r, j].set_xticks([])
                axes[r, j].set_yticks([])
            else:
                _blank(axes[r, j], "" if j else ("every lesion-free slice left empty" if group == "empty"
                                                 else "no lesion slice in this test set"))
        axes[r, 0].set_ylabel(textwrap.fill(method_title(v), 18), fontsize=9)
    handles = [plt.Line2D([], [], color=GT_COLOUR, lw=2), plt.Line2D([], [], color=PRED_COLOUR, lw=2)]
    threshold = next(items[v].threshold for v in shown)
    what = ("the lesion slices each model scored worst (lesion-slice Dice)" if group == "lesion"
            else "the lesion-free slices each model marked most (false-positive pixels)")
    title = f"{dataset_title(dataset)}: {what}\nCT at the {window}" + (", zoomed to the outlines" if zoom else "")
    # the legend carries the title, so the two never overlap
    fig.legend(handles, ["ground truth", f"prediction (probability > {threshold:g})"], loc="outside upper center",
               ncol=2, frameon=False, fontsize=9, title=title, title_fontsize=10)
    if absent:
        names = ", ".join(method_title(v) for v in absent)
        sentence = f"Not shown: {names} (evaluated before the evaluation kept its worst slices)."
        fig.supxlabel(textwrap.fill(sentence, 110), fontsize=9)
    return fig


def gallery_views(study: Study) -> list[tuple[str, str]]:
    """(dataset, group) of the galleries a profile shows: the worst lesion slices and the most marked
    lesion-free slices of the training dataset's own test set, then the worst lesion slices of the
    real CT with inserted lesions when the profile evaluates on it."""
    first = study.manifest.get("train_dataset") or study.datasets[0]
    views = [(first, "lesion"), (first, "empty")]
    return views + ([("realct", "lesion")] if "realct" in study.datasets and first != "realct" else [])


def gallery_profiles(results_root: str | Path) -> tuple[list[Study], list[str]]:
    """The consistent profiles under ``results_root`` (``results/``) whose evaluations kept worst
    slices on the datasets of ``gallery_views``, and the names of those whose evaluations did not
    (written before ``worst.npz``). Profiles with stale results are in neither."""
    with_worst, without = [], []
    for d in profile_dirs(Path(results_root)):
        try:
            study = load_study(d)
        except StaleResultsError:
            continue
        found = any(w is not None for ds in dict.fromkeys(d for d, _ in gallery_views(study))
                    for w in worst(study, ds).values())
        (with_worst if found else without).append(study if found else study.profile)
    return with_worst, without


def absent_sentence(without: list[str], any_shown: bool, next_profile: str = "evidence") -> str:
    """One sentence naming the profiles evaluated before worst slices were kept; when no profile
    shows a gallery, it also names the profile that will."""
    if not without:
        return ""
    names = ", ".join(f"`{p}`" for p in without)
    one = len(without) == 1
    text = (f"The {names} profile{' was' if one else 's were'} evaluated before the evaluation kept its worst slices, "
            f"so {'it is' if one else 'they are'} not shown")
    if not any_shown:
        text += (f"; the `{next_profile}` profile (`ichseg study --profile {next_profile}`) keeps them, and its "
                 "gallery appears on this page once its results are committed")
    return text + "."


__all__ = ["GT_COLOUR", "PRED_COLOUR", "absent_sentence", "gallery_figure", "gallery_profiles", "gallery_views",
           "zoom_box"]

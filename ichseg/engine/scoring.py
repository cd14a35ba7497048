"""Scoring of probability maps against the ground truth of a prepared split (paper §4.1-4.2).

``write_evaluation`` is the one scorer of the study: every method (diffusion variants, direct
segmenters, nnU-Net) hands it its probability maps of the same slices, and it writes, atomically,
``metrics.json`` (both protocols, provenance), ``slices.csv`` (per-slice scores),
``qualitative.npz`` (a few fixed slices for the qualitative figure), ``worst.npz`` (the worst
slices by those scores, ``ichseg.engine.worst``) and ``volume.npz`` (one whole test volume for the
book's viewer, ``ichseg.engine.viewer_volume``) into one folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data.dataset import prepared_spacing
from ..errors import IchsegError
from ..metrics import (FUSION_STAGES, chance_dice, chance_dice_in_head, fusion_maps, fusion_stages, head_mask,
                       paper_slice_scores, strict_protocol)
from ..utils import atomic_directory, atomic_write_json
from ..utils.layout import METRICS, QUALITATIVE, SLICE_SCORES, WORST
from .config import EvalConfig
from .provenance import environment
from .viewer_volume import volume_rows, write_volume
from .worst import write_worst


def qualitative_rows(table: pd.DataFrame, masks: np.ndarray, count: int) -> np.ndarray:
    """Fixed slices for the figure: positives spread over lesion sizes (largest first), else any."""
    area = masks.reshape(len(masks), -1).sum(axis=1)
    pos = np.flatnonzero(area > 0)
    if len(pos) == 0:
        return np.arange(min(count, len(masks)))
    order = pos[np.argsort(-area[pos], kind="stable")]
    pick = np.unique(np.linspace(0, len(order) - 1, min(count, len(order))).round().astype(int))
    return order[pick]


def write_evaluation(
    prob: np.ndarray,
    uncertainty: np.ndarray | None,
    images: np.ndarray,
    gt: np.ndarray,
    ds,
    out_dir: str | Path,
    ecfg: EvalConfig,
    *,
    dataset: str,
    split: str,
    meta: dict,
    seconds: float,
    device: torch.device | None = None,
    paper_stages: dict[str, np.ndarray] | None = None,
) -> dict:
    """Score probability maps (N, H, W) in [0, 1] against the ground truth (N, H, W) of a prepared
    split with both protocols and write ``metrics.json``, ``slices.csv``, ``qualitative.npz`` and
    ``worst.npz`` atomically into ``out_dir``. Every model of the study (diffusion variants, direct
    segmenters, nnU-Net) is scored by this one function, on the same slices. ``uncertainty=None`` for
    models without an ensemble (written as zeros).

    The paper protocol scores the map of ``ecfg.paper_fusion``, made from ``paper_stages`` (an
    ensemble's ``fusion_stages``) or, for a model without ensemble and anchor
    (``paper_stages=None``), from its ``ecfg.direct_output`` map (its mask or ``prob``) through
    the same 8-bit image path. Every fusion and
    every step of the released output path is recorded too (``paper_by_fusion``,
    ``paper_stages``; ``slices.csv`` columns ``paper_dice_<step>``)."""
    p, g = np.asarray(prob, dtype=np.float32), np.asarray(gt, dtype=np.float32)
    if p.shape != g.shape:
        raise IchsegError(f"{dataset}: predictions of shape {p.shape} do not match the ground truth {g.shape}")
    if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        raise IchsegError(f"{dataset}: predictions must be finite probabilities in [0, 1]")
    unc = np.zeros_like(p) if uncertainty is None else np.asarray(uncertainty, dtype=np.float32)
    table = ds.table.reset_index(drop=True)
    # paper protocol: the released code's output path (ichseg.metrics.fusion), every step kept
    stages = paper_stages if paper_stages is not None else fusion_stages(
        p[:, None], ensemble=False, direct_output=ecfg.direct_output, threshold=ecfg.threshold)
    by_fusion = {name: paper_slice_scores(m, g) for name, m in fusion_maps(stages).items()}
    step_dice = {name: paper_slice_scores(stages[name], g)["dice"] for name in FUSION_STAGES}
    step_dice["no_max_norm"] = paper_slice_scores(stages["jpeg8"], g, normalise=False)["dice"]
    spacing = prepared_spacing(table)  # the prepared pixel, not the scanner's: mm and mL of the scored grid
    volumes = table["volume"].astype(str).to_numpy() if "volume" in table else None
    order = table["slice_index"].to_numpy(int) if "slice_index" in table else None
    strict = strict_protocol(p, g, threshold=ecfg.threshold, volume_ids=volumes, spacing=spacing, slice_index=order)
    per_slice = _slice_scores(table, p, g, unc, images, ecfg, by_fusion, step_dice, strict)
    positive = per_slice["gt_pixels"].to_numpy() > 0
    paper = by_fusion[ecfg.paper_fusion]
    summary = {
        **meta,
        "dataset": dataset,
        "split": split,
        "data_fingerprint": ds.manifest.get("fingerprint"),
        "n_slices": int(len(p)),
        "evaluate": ecfg.__dict__,
        "paper": {"dice": float(paper["dice"].mean()), "iou": float(paper["iou"].mean()), "fusion": ecfg.paper_fusion,
                  # the reference a model must beat: an all-empty prediction scored on the same slices
                  "all_empty_dice": float(paper_slice_scores(np.zeros_like(g), g)["dice"].mean()) if len(g) else None},
        "paper_by_fusion": {name: {"dice": float(sc["dice"].mean()), "iou": float(sc["iou"].mean())}
                            for name, sc in by_fusion.items()},
        # the released output path step by step (cumulative; "no_max_norm": the JPEG read back /255)
        "paper_steps": {name: float(d.mean()) for name, d in step_dice.items()},
        "strict": {**{k: v for k, v in strict.items() if k not in ("per_slice", "per_volume")},
                   "chance_positive_slice_dice": float(per_slice["chance_dice"][positive].mean()) if positive.any() else None,
                   "chance_positive_slice_dice_in_head":
                       float(per_slice["chance_dice_in_head"][positive].mean()) if positive.any() else None},
        "seconds": round(seconds, 3),
        "seconds_per_slice": round(seconds / max(len(p), 1), 4),
        "environment": environment(device or torch.device("cpu")),
    }
    q = qualitative_rows(table, g, ecfg.qualitative)
    with atomic_directory(out_dir, replace=True) as tmp:
        per_slice.to_csv(tmp / SLICE_SCORES, index=False)
        np.savez_compressed(tmp / QUALITATIVE, rows=q, image=images[q], mask=g[q], probability=p[q],
                            uncertainty=unc[q], paper_map=np.asarray(fusion_maps(stages)[ecfg.paper_fusion])[q])
        write_worst(tmp / WORST, per_slice, images, g, p, ecfg.threshold)
        write_volume(tmp, table, volume_rows(table, g), images, g, p, unc)
        atomic_write_json(tmp / METRICS, summary)
    return summary


def _slice_scores(table: pd.DataFrame, p: np.ndarray, g: np.ndarray, unc: np.ndarray, images: np.ndarray,
                  ecfg: EvalConfig, by_fusion: dict, step_dice: dict, strict: dict) -> pd.DataFrame:
    """``slices.csv``: the split's table with each slice's scores under both protocols, its pixel
    counts and its chance levels."""
    paper = by_fusion[ecfg.paper_fusion]
    per_slice = table.copy()
    per_slice["paper_dice"], per_slice["paper_iou"] = paper["dice"], paper["iou"]
    for name, scores in step_dice.items():  # mean, anchor_blend, staple, jpeg8 (= medsegdiff), no_max_norm
        per_slice[f"paper_dice_{name}"] = scores
    per_slice["paper_dice_v2_raw"] = by_fusion["medsegdiff-v2"]["dice"]
    per_slice["strict_dice"], per_slice["strict_iou"] = strict["per_slice"]["dice"], strict["per_slice"]["iou"]
    if "hd95_per_slice_mm" in strict["per_slice"]:
        per_slice["hd95_per_slice_mm"] = strict["per_slice"]["hd95_per_slice_mm"]
    per_slice["mean_uncertainty"] = unc.reshape(len(unc), -1).mean(axis=1)
    per_slice["gt_pixels"] = (g > 0.5).reshape(len(g), -1).sum(axis=1)
    per_slice["pred_pixels"] = (p > ecfg.threshold).reshape(len(p), -1).sum(axis=1)
    # chance level: the same number of predicted pixels placed at random (ichseg.metrics.chance)
    per_slice["chance_dice"] = chance_dice(per_slice["gt_pixels"], per_slice["pred_pixels"], g[0].size if len(g) else 1)
    # ... and placed inside the head only (a head mask from the prepared image), the stricter reference
    per_slice["head_pixels"] = head_mask(images).reshape(len(g), -1).sum(axis=1)
    per_slice["chance_dice_in_head"] = chance_dice_in_head(per_slice["gt_pixels"], per_slice["pred_pixels"],
                                                           per_slice["head_pixels"])
    return per_slice


__all__ = ["qualitative_rows", "write_evaluation"]

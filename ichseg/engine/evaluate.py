"""Evaluation of a trained checkpoint on one prepared dataset (paper §4.1-4.2).

Cross-dataset evaluation is this same call on BHSD or PhysioNet with the model trained on
INSTANCE 2022, unchanged. Writes, atomically, into ``out_dir``:
``metrics.json`` (both protocols, sampler settings, provenance), ``slices.csv`` (per-slice scores)
and ``qualitative.npz`` (a few fixed slices: image, ground truth, probability, uncertainty).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data.dataset import prepared_spacing
from ..diffusion import DiffusionConfig, GaussianDiffusion
from ..errors import IchsegError
from ..metrics import (FUSION_STAGES, chance_dice, chance_dice_in_head, fusion_maps, fusion_stages, head_mask,
                       paper_slice_scores, strict_protocol)
from ..utils import atomic_directory, atomic_write_json
from .checkpoint import load_checkpoint
from .config import EvalConfig
from .inference import segment
from .provenance import environment
from .train import load_split, resolve_device


def load_trained_model(checkpoint: str | Path, device: torch.device, *, weights: str = "ema", variant: str | None = None):
    """(model with EMA weights, diffusion — None for a direct segmenter —, run config, run hash)."""
    from ..models import build_from_config, segmenter_config, variant_config
    from .config import method_kind

    state = load_checkpoint(checkpoint)
    cfg = state["config"]
    if variant is not None and variant != cfg["variant"]:
        raise IchsegError(f"{checkpoint}: holds variant {cfg['variant']!r}, not {variant!r}")
    direct = method_kind(cfg["variant"]) == "direct"
    arch = (segmenter_config if direct else variant_config)(cfg["variant"], **cfg["model"])
    # the ImageNet / ViT file is not needed: the trained weights replace it right away
    model = build_from_config(arch, load_pretrained=False)
    try:
        model.load_state_dict(state[weights])
    except RuntimeError as exc:
        raise IchsegError(f"{checkpoint}: weights do not fit variant {cfg['variant']!r} ({str(exc).splitlines()[0]})") from None
    if direct:
        return model.to(device).eval(), None, cfg, state.get("run_hash")
    diffusion = GaussianDiffusion(DiffusionConfig.from_dict(cfg["diffusion"]))
    return model.to(device).eval(), diffusion.to(device), cfg, state.get("run_hash")


def qualitative_rows(table: pd.DataFrame, masks: np.ndarray, count: int) -> np.ndarray:
    """Fixed slices for the figure: positives spread over lesion sizes (largest first), else any."""
    area = masks.reshape(len(masks), -1).sum(axis=1)
    pos = np.flatnonzero(area > 0)
    if len(pos) == 0:
        return np.arange(min(count, len(masks)))
    order = pos[np.argsort(-area[pos], kind="stable")]
    pick = np.unique(np.linspace(0, len(order) - 1, min(count, len(order))).round().astype(int))
    return order[pick]


def evaluate_checkpoint(
    checkpoint: str | Path,
    prepared: str | Path,
    out_dir: str | Path,
    ecfg: EvalConfig | None = None,
    *,
    dataset: str | None = None,
    split: str = "test",
    device: str = "auto",
    variant: str | None = None,
    progress: bool = True,
) -> dict:
    ecfg = ecfg or EvalConfig()
    dev = resolve_device(device)
    model, diffusion, cfg, run_hash = load_trained_model(checkpoint, dev, variant=variant)
    images, masks, ds = load_split(Path(prepared), split)
    want = (cfg["model"]["in_channels"], cfg["model"]["image_size"])
    have = (int(images.shape[1]), int(images.shape[-1]))
    if want != have:
        raise IchsegError(
            f"{checkpoint}: trained on {want[0]}-channel {want[1]}² slices, but {prepared} holds {have[0]}-channel {have[1]}² slices"
        )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(images), desc=f"evaluate {cfg['variant']} on {dataset or Path(prepared).name}", unit="slice")
    gen = torch.Generator(device=dev).manual_seed(ecfg.seed)
    t0 = time.perf_counter()
    prob, unc, stages = segment(model, diffusion, images, sampler=ecfg.sampler,
                               steps=None if ecfg.sampler == "ddpm" else ecfg.steps, eta=ecfg.eta,
                               ensemble=ecfg.ensemble, batch_slices=ecfg.batch_slices, generator=gen,
                               device=dev, amp=cfg["train"].get("amp", "none"), progress=bar,
                               paper_stages=True)
    seconds = time.perf_counter() - t0
    if bar is not None:
        bar.close()

    meta = {
        "variant": cfg["variant"],
        "profile": cfg.get("profile"),
        "checkpoint": str(checkpoint),
        "run_hash": run_hash,
        # a direct segmenter takes one forward pass: the sampler settings do not apply to it
        "inference": "sigmoid of one forward pass" if diffusion is None else "diffusion ensemble",
    }
    return write_evaluation(prob.numpy(), unc.numpy(), images.numpy(), masks[:, 0].numpy(), ds, out_dir, ecfg,
                            dataset=dataset or Path(prepared).parent.name, split=split, meta=meta,
                            seconds=seconds, device=dev,
                            paper_stages=None if stages is None else {k: v.numpy() for k, v in stages.items()})


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
    split with both protocols and write ``metrics.json``, ``slices.csv`` and ``qualitative.npz``
    atomically into ``out_dir``. Every model of the study (diffusion variants, direct segmenters,
    nnU-Net) is scored by this one function, on the same slices. ``uncertainty=None`` for models
    without an ensemble (written as zeros).

    The paper protocol scores the map of ``ecfg.paper_fusion``, made from ``paper_stages`` (an
    ensemble's ``fusion_stages``) or, for a model without ensemble and anchor
    (``paper_stages=None``), from ``prob`` through the same 8-bit image path. Every fusion and
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
    stages = paper_stages if paper_stages is not None else fusion_stages(p[:, None], ensemble=False)
    by_fusion = {name: paper_slice_scores(m, g) for name, m in fusion_maps(stages).items()}
    paper = by_fusion[ecfg.paper_fusion]
    step_dice = {name: paper_slice_scores(stages[name], g)["dice"] for name in FUSION_STAGES}
    step_dice["no_max_norm"] = paper_slice_scores(stages["jpeg8"], g, normalise=False)["dice"]
    spacing = prepared_spacing(table)  # the prepared pixel, not the scanner's: mm and mL of the scored grid
    volumes = table["volume"].astype(str).to_numpy() if "volume" in table else None
    order = table["slice_index"].to_numpy(int) if "slice_index" in table else None
    strict = strict_protocol(p, g, threshold=ecfg.threshold, volume_ids=volumes, spacing=spacing, slice_index=order)

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
    positive = per_slice["gt_pixels"].to_numpy() > 0

    q = qualitative_rows(table, g, ecfg.qualitative)
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
    with atomic_directory(out_dir, replace=True) as tmp:
        per_slice.to_csv(tmp / "slices.csv", index=False)
        np.savez_compressed(tmp / "qualitative.npz", rows=q, image=images[q], mask=g[q], probability=p[q],
                            uncertainty=unc[q], paper_map=np.asarray(fusion_maps(stages)[ecfg.paper_fusion])[q])
        atomic_write_json(tmp / "metrics.json", summary)
    return summary


def evaluate_run(
    run_dir: str | Path,
    prepared: str | Path,
    out_dir: str | Path,
    ecfg: EvalConfig | None = None,
    *,
    dataset: str | None = None,
    split: str = "test",
    variant: str | None = None,
    device: str = "auto",
    progress: bool = True,
) -> dict:
    """Evaluate a training run folder of any method: its best checkpoint (diffusion variants and
    direct baselines, ``evaluate_checkpoint``) or its nnU-Net model (``evaluate_nnunet_run``)."""
    import json

    run_dir = Path(run_dir)
    info = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
    if info.get("engine") == "nnunet":
        if variant is not None and variant != "nnunet":
            raise IchsegError(f"{run_dir}: holds an nnU-Net run, not {variant!r}")
        from .nnunet_run import evaluate_nnunet_run

        return evaluate_nnunet_run(run_dir, prepared, out_dir, ecfg or EvalConfig(), dataset=dataset, split=split)
    return evaluate_checkpoint(run_dir / "checkpoints" / "best.pt", prepared, out_dir, ecfg, dataset=dataset, split=split,
                               device=device, variant=variant, progress=progress)

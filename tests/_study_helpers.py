"""Synthetic study folders in the exact on-disk format of the engine and the study driver, for the
report and driver tests (no training: numbers are drawn from a seeded generator)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ichseg.report.collect import STAMPS_DIR, STUDY_FILE, study_stamp
from ichseg.utils import config_hash

LOG_COLUMNS = ["iteration", "loss", "loss_eps", "loss_anchor", "lr", "dice", "iou", "strict_dice", "wall_time_s"]


def write_run(run_dir: Path, variant: str, seed: int, iterations: int = 100, every: int = 25, quality: float = 0.5) -> str:
    """An engine run folder (run.json, train_log.csv, config.yaml, checkpoints/best.pt); returns its run hash."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, len(variant)])
    its = np.arange(every, iterations + 1, every)
    dice = np.clip(quality * (1 - np.exp(-its / (iterations / 3))) + rng.normal(0, 0.02, its.size), 0, 1)
    log = pd.DataFrame({"iteration": its, "loss": 1 / its, "loss_eps": 0.8 / its, "loss_anchor": 0.2 / its,
                        "lr": 1e-4 * (1 - its / iterations), "dice": dice, "iou": dice * 0.9,
                        "strict_dice": dice * 0.7, "wall_time_s": its * 0.1})
    log[LOG_COLUMNS].to_csv(run_dir / "train_log.csv", index=False)
    run_hash = config_hash({"variant": variant, "seed": seed, "iterations": iterations})
    best = int(its[int(np.argmax(dice))])
    (run_dir / "run.json").write_text(json.dumps({
        "variant": variant, "profile": "smoke", "run_hash": run_hash, "status": "complete",
        "iterations": iterations, "best_iteration": best, "best_dice": float(dice.max()), "wall_time_s": 1.0,
        "data": {"fingerprint": "fp-train"}, "environment": {"device": "cpu (test)", "git_commit": "0" * 40},
    }))
    (run_dir / "config.yaml").write_text(f"variant: {variant}\ndata: {{raw: {{}}}}\n")
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    (run_dir / "checkpoints" / "best.pt").write_bytes(b"not a real checkpoint")
    return run_hash


def write_eval(eval_dir: Path, variant: str, dataset: str, run_hash: str, seed: int = 0, quality: float = 0.5,
               n: int = 20, k: int = 3, size: int = 16) -> None:
    """An ``evaluate_checkpoint`` output folder (metrics.json, slices.csv, qualitative.npz)."""
    eval_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, len(variant), len(dataset)])
    positive = np.arange(n) % 2 == 0
    paper = np.where(positive, np.clip(quality + rng.normal(0, 0.05, n), 0, 1), 0.95)
    strict = np.where(positive, np.clip(quality - 0.1 + rng.normal(0, 0.05, n), 0, 1), np.nan)
    pd.DataFrame({"volume": np.arange(n) // 5, "positive": positive, "lesion_px": positive * 40,
                  "paper_dice": paper, "paper_iou": paper * 0.9, "strict_dice": strict, "strict_iou": strict * 0.9}
                 ).to_csv(eval_dir / "slices.csv", index=False)
    metrics = {
        "variant": variant, "dataset": dataset, "run_hash": run_hash, "n_slices": n,
        "paper": {"dice": float(paper.mean()), "iou": float(paper.mean() * 0.9)},
        "strict": {"positive_slice_dice": float(np.nanmean(strict)), "positive_slice_iou": float(np.nanmean(strict) * 0.9),
                   "n_positive_slices": int(positive.sum()), "volume_dice": float(np.nanmean(strict) + 0.05),
                   "hd95_mm": 4.0 + seed, "volume_abs_error_ml": 1.5},
        "seconds_per_slice": 0.1,
    }
    (eval_dir / "metrics.json").write_text(json.dumps(metrics))
    mask = np.zeros((k, size, size), np.uint8)
    mask[:, 4:10, 5:11] = 1
    np.savez_compressed(eval_dir / "qualitative.npz", rows=np.arange(k) * 2, image=rng.normal(size=(k, 1, size, size)).astype(np.float32),
                        mask=mask, probability=np.clip(mask + rng.normal(0, 0.1, mask.shape), 0, 1).astype(np.float32),
                        uncertainty=np.abs(rng.normal(0, 0.1, mask.shape)).astype(np.float32))


QUALITY = {"medsegdiffv2": 0.4, "cross_attention": 0.5, "reduce_layer": 0.55, "resnet18": 0.6, "full": 0.7}


def write_study(results_dir: Path, variants=("medsegdiffv2", "full"), seeds=(0,), datasets=("instance2022", "bhsd"),
                profile: str = "smoke") -> dict:
    """A complete, consistent study folder as the driver leaves it (without notebooks); returns study.json."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stages = {}
    runs = []
    for v in variants:
        for s in seeds:
            rid = f"{v}-s{s}"
            h = write_run(results_dir / "runs" / rid, v, s, quality=QUALITY.get(v, 0.5))
            for d in datasets:
                write_eval(results_dir / "eval" / rid / d, v, d, h, seed=s, quality=QUALITY.get(v, 0.5))
            runs.append({"variant": v, "seed": s, "run_dir": f"runs/{rid}", "eval_dir": f"eval/{rid}",
                         "train_stage": f"train-{rid}", "evaluate_stage": f"evaluate-{rid}", "overrides": []})
            stages[f"train-{rid}"] = config_hash(["train", rid])
            stages[f"evaluate-{rid}"] = config_hash(["evaluate", rid])
    (results_dir / STAMPS_DIR).mkdir(exist_ok=True)
    for sid, stamp in stages.items():
        (results_dir / STAMPS_DIR / f"{sid}.json").write_text(json.dumps({"stamp": stamp, "status": "complete"}))
    manifest = {"profile": profile, "description": "synthetic test study", "variants": list(variants),
                "seeds": list(seeds), "datasets": list(datasets), "train_dataset": datasets[0], "runs": runs,
                "stages": stages}
    manifest["stamp"] = study_stamp(manifest)
    manifest["created"] = "2026-01-01T00:00:00+00:00"
    (results_dir / STUDY_FILE).write_text(json.dumps(manifest))
    return manifest


def record_span(spans_dir: Path, stage: str, seconds: float = 0.0) -> None:
    """A stand-in stage's wall-clock span and thread settings: spans_dir/<stage>.json with
    start/end (time.time()), the kernel's OMP_NUM_THREADS and torch's thread count."""
    import os
    import time

    import torch

    start = time.time()
    time.sleep(seconds)
    spans_dir.mkdir(parents=True, exist_ok=True)
    (spans_dir / f"{stage}.json").write_text(json.dumps({
        "start": start, "end": time.time(), "omp": os.environ.get("OMP_NUM_THREADS"),
        "torch_threads": torch.get_num_threads()}))

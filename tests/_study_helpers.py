"""Synthetic study folders for the report and driver tests, written by the engine's own writers
(``ichseg.engine.train.write_log`` for ``train_log.csv``, ``ichseg.engine.evaluate.write_evaluation``
for ``metrics.json``, ``slices.csv`` and ``qualitative.npz``), so the fixtures cannot drift from the
format the study produces. No training: the predictions are made up from a seeded generator."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from ichseg.engine.config import EvalConfig
from ichseg.engine.evaluate import write_evaluation
from ichseg.engine.train import write_log
from ichseg.report.collect import STAMPS_DIR, STUDY_FILE, study_stamp
from ichseg.utils import config_hash


def _key(old_keys: bool) -> str:
    """The key naming a record's method: ``method``, or ``variant`` as results written before it say."""
    return "variant" if old_keys else "method"


def write_run(run_dir: Path, method: str, seed: int, iterations: int = 100, every: int = 25, quality: float = 0.5,
              old_keys: bool = False) -> str:
    """An engine run folder (run.json, train_log.csv, config.yaml, checkpoints/best.pt); returns its run hash.
    ``old_keys``: name the method ``variant``, as files written before ``method`` do."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, len(method)])
    its = np.arange(every, iterations + 1, every)
    dice = np.clip(quality * (1 - np.exp(-its / (iterations / 3))) + rng.normal(0, 0.02, its.size), 0, 1)
    write_log(run_dir / "train_log.csv", [
        {"iteration": int(i), "loss": 1 / i, "loss_eps": 0.8 / i, "loss_anchor": 0.2 / i, "lr": 1e-4 * (1 - i / iterations),
         "dice": float(d), "iou": float(d) * 0.9, "strict_dice": float(d) * 0.7, "wall_time_s": i * 0.1}
        for i, d in zip(its, dice)])
    run_hash = config_hash({"method": method, "seed": seed, "iterations": iterations})
    best = int(its[int(np.argmax(dice))])
    (run_dir / "run.json").write_text(json.dumps({
        _key(old_keys): method, "profile": "smoke", "run_hash": run_hash, "status": "complete",
        "iterations": iterations, "best_iteration": best, "select_on": "dice", "best_score": float(dice.max()), "wall_time_s": 1.0,
        "data": {"fingerprint": "fp-train"}, "environment": {"device": "cpu (test)", "git_commit": "0" * 40},
    }))
    (run_dir / "config.yaml").write_text(f"{_key(old_keys)}: {method}\ndata: {{raw: {{}}}}\n")
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    (run_dir / "checkpoints" / "best.pt").write_bytes(b"not a real checkpoint")
    return run_hash


def synthetic_split(n: int = 20, size: int = 32, per_volume: int = 5):
    """A prepared test split as the engine holds it: (images (N, 1, S, S) in [0, 1], masks (N, S, S),
    ds with ``table`` and ``manifest``). Every slice shows a head (skull ring, brain) in air; the
    even slices carry a square lesion inside the brain, the odd ones are empty."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    head = np.where(r <= 0.45 * size, 1.0, 0.0) * np.where(r <= 0.38 * size, 0.45, 1.0)
    images = np.repeat(head[None, None].astype(np.float32), n, axis=0)
    masks = np.zeros((n, size, size), np.float32)
    side = max(size // 8, 2)
    for i in range(0, n, 2):
        r0 = size // 2 - side + (i // 2) % 3
        masks[i, r0:r0 + side, size // 2 - side:size // 2] = 1.0
    images[:, 0][masks > 0] = 0.8  # blood is brighter than brain
    table = pd.DataFrame({"volume": [f"{i // per_volume:03d}" for i in range(n)],
                          "slice_index": [i % per_volume for i in range(n)],
                          "positive": (masks.reshape(n, -1).sum(axis=1) > 0).astype(int),
                          "lesion_px": masks.reshape(n, -1).sum(axis=1).astype(int),
                          "spacing_row_mm": 1.0, "spacing_col_mm": 1.0, "pixel_row_mm": 1.0, "pixel_col_mm": 1.0,
                          "thickness_mm": 5.0})
    return images, masks, SimpleNamespace(table=table, manifest={"fingerprint": "fp-test"})


def prediction(masks: np.ndarray, quality: float, rng) -> np.ndarray:
    """Probabilities that cover the left ``quality`` share (jittered per slice) of each lesion's
    columns, nothing on empty slices: lesion-slice Dice 2q/(1+q), rising with ``quality``."""
    prob = np.zeros_like(masks)
    for i, m in enumerate(masks):
        cols = np.flatnonzero(m.any(axis=0))
        if len(cols) == 0:
            continue
        q = float(np.clip(quality + rng.normal(0, 0.1), 0.05, 1.0))
        keep = cols[: max(1, int(round(q * len(cols))))]
        prob[i][:, keep] = m[:, keep] * 0.9
    return prob


def write_eval(eval_dir: Path, method: str, dataset: str, run_hash: str, seed: int = 0, quality: float = 0.5,
               n: int = 20, k: int = 3, size: int = 32, prob: np.ndarray | None = None, old_keys: bool = False) -> dict:
    """An evaluation folder (metrics.json, slices.csv, qualitative.npz) written by ``write_evaluation``
    on ``synthetic_split(n, size)``; ``prob`` replaces the made-up prediction. Returns metrics.json."""
    images, masks, ds = synthetic_split(n, size)
    rng = np.random.default_rng([seed, len(method), len(dataset)])
    prob = prediction(masks, quality, rng) if prob is None else prob
    unc = np.abs(rng.normal(0, 0.05, masks.shape)).astype(np.float32)
    meta = {_key(old_keys): method, "profile": "smoke", "checkpoint": "best.pt", "run_hash": run_hash,
            "inference": "synthetic"}
    return write_evaluation(prob, unc, images, masks, ds, eval_dir, EvalConfig(qualitative=k), dataset=dataset,
                            split="test", meta=meta, seconds=0.1 * n)


QUALITY = {"medsegdiffv2": 0.4, "cross_attention": 0.5, "reduce_layer": 0.55, "resnet18": 0.6, "full": 0.7}


def write_study(results_dir: Path, methods=("medsegdiffv2", "full"), seeds=(0,), datasets=("instance2022", "bhsd"),
                profile: str = "smoke", old_keys: bool = False) -> dict:
    """A complete, consistent study folder as the driver leaves it (without notebooks); returns study.json.
    ``old_keys``: every file names the method ``variant`` (``variants``), as the committed results do."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stages = {}
    runs = []
    for v in methods:
        for s in seeds:
            rid = f"{v}-s{s}"
            h = write_run(results_dir / "runs" / rid, v, s, quality=QUALITY.get(v, 0.5), old_keys=old_keys)
            for d in datasets:
                write_eval(results_dir / "eval" / rid / d, v, d, h, seed=s, quality=QUALITY.get(v, 0.5), old_keys=old_keys)
            runs.append({_key(old_keys): v, "seed": s, "run_dir": f"runs/{rid}", "eval_dir": f"eval/{rid}",
                         "train_stage": f"train-{rid}", "evaluate_stage": f"evaluate-{rid}", "overrides": []})
            stages[f"train-{rid}"] = config_hash(["train", rid])
            stages[f"evaluate-{rid}"] = config_hash(["evaluate", rid])
    (results_dir / STAMPS_DIR).mkdir(exist_ok=True)
    for sid, stamp in stages.items():
        (results_dir / STAMPS_DIR / f"{sid}.json").write_text(json.dumps({"stamp": stamp, "status": "complete"}))
    manifest = {"profile": profile, "description": "synthetic test study", _key(old_keys) + "s": list(methods),
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

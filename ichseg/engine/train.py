"""Training (paper §4.2): AdamW, linear LR decay to 0, EMA, the Eq. 4 loss, periodic validation.

The same loop trains the Table 1 direct baselines (U-Net, TransUNet, U-KAN) with their own
optimiser, schedule and loss (``objectives.DirectObjective``; recipes in ``ichseg.models.baselines``);
``train`` hands an ``nnunet`` run config to ``ichseg.engine.nnunet_run`` (nnU-Net v2 trains itself).

Exact resume: every random draw of iteration i (batch rows, augmentation, timesteps, noise) comes
from generators seeded by (seed, i), so a run needs no RNG stream position to continue; the
checkpoint holds model, EMA, optimizer, scheduler, the iteration, the validation history and the
global torch RNG state. ``train(..., resume=True)`` after a kill ends bit-identical (CPU) to an
uninterrupted run.

Distributed: under ``torchrun`` (WORLD_SIZE > 1) each rank takes its share of the same global
batch and DistributedDataParallel averages gradients (NCCL on GPUs, gloo on CPU); only rank 0
validates and writes.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml

from ..errors import ConfigError, IchsegError
from ..utils import atomic_write_json, atomic_write_text
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig, run_config_hash, train_config
from .ema import EMA
from .objectives import make_objective, validation_scores
from .provenance import environment

# loss_eps/loss_anchor: the terms of Eq. 4 (diffusion variants); loss_bce/loss_dice: a baseline's
LOG_COLUMNS = ["iteration", "loss", "loss_eps", "loss_anchor", "loss_bce", "loss_dice", "lr", "dice", "iou",
               "strict_dice", "wall_time_s"]


@dataclass
class TrainResult:
    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path
    history: list[dict]
    best_dice: float
    best_iteration: int


# -- seeded, stateless randomness ----------------------------------------------------------------
def iteration_generator(seed: int, stream: int, iteration: int) -> torch.Generator:
    """A CPU generator for one (seed, stream, iteration): independent of anything run before."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + stream) * 10_000_019 + iteration) % (2**62))


def batch_rows(n: int, batch: int, seed: int, iteration: int) -> tuple[int, torch.Tensor]:
    """(epoch, rows of the global batch) at ``iteration``: epoch-wise permutations, drop-last."""
    per_epoch = max(n // batch, 1)
    epoch, pos = divmod(iteration, per_epoch)
    perm = torch.randperm(n, generator=iteration_generator(seed, 1, epoch))
    if n < batch:
        perm = perm.repeat(math.ceil(batch / n))
    return epoch, perm[pos * batch : (pos + 1) * batch]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise IchsegError("train.device: cuda requested but no CUDA device is available")
    return torch.device(name)


# -- distributed ------------------------------------------------------------------------------
def _dist_setup(device_name: str) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, resolve_device(device_name)
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    rank = dist.get_rank()
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


# -- data -----------------------------------------------------------------------------------------
def load_split(prepared: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """All slices of a split as tensors: images (N, C, H, W) float32, masks (N, 1, H, W) float32."""
    from ..data import SliceDataset

    ds = SliceDataset(prepared, split=split, augment=False)
    if len(ds) == 0:
        raise IchsegError(f"{prepared}: split {split!r} has no slices")
    items = [ds[i] for i in range(len(ds))]
    images = torch.stack([it["image"] for it in items]).float()
    masks = torch.stack([it["mask"] for it in items]).float()
    return images, masks, ds


def validation_rows(n: int, count: int) -> np.ndarray:
    """A fixed, evenly spread subset of a split (the same rows at every validation)."""
    return np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(int))


# -- the loop -------------------------------------------------------------------------------------
def train(
    cfg: dict,
    out_dir: str | Path,
    *,
    data_root: str | Path = "data",
    prepared: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train ``cfg["variant"]`` under a resolved run config (``resolve_run_config``)."""
    from ..data import SliceDataset
    from ..models import build_model
    from ..models.baselines import Recipe, build_optimizer, build_scheduler
    from .config import NNUNET, method_kind
    from .data import ensure_prepared

    if method_kind(cfg["variant"]) == NNUNET:
        from .nnunet_run import train_nnunet_run

        return train_nnunet_run(cfg, out_dir, data_root=data_root, prepared=prepared, resume=resume, progress=progress)

    tcfg: TrainConfig = train_config(cfg)
    rank, world, device = _dist_setup(tcfg.device)
    if tcfg.batch_size % world:
        raise ConfigError(f"train.batch_size: the global batch {tcfg.batch_size} must divide by the {world} ranks")
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    last_path, best_path = ckpt_dir / "last.pt", ckpt_dir / "best.pt"

    if prepared is None:
        prepared = ensure_prepared(cfg, cfg["data"].get("train_dataset", "instance2022"), data_root) if rank == 0 else None
        if world > 1:
            box = [str(prepared) if prepared else None]
            dist.broadcast_object_list(box, src=0)
            prepared = box[0]
    prepared = Path(prepared)
    # augmentation draws are seeded by (seed, epoch, row) inside the dataset: stateless, so resumable
    ds = SliceDataset(prepared, split="train", augment=tcfg.augment, seed=tcfg.seed)
    if len(ds) == 0:
        raise IchsegError(f"{prepared}: the train split has no slices")
    first = ds[0]["image"]
    cfg = dict(cfg)
    cfg["model"] = {**cfg.get("model", {}), "in_channels": int(first.shape[0]), "image_size": int(first.shape[-1])}
    run_hash = run_config_hash(cfg)

    state = None
    if last_path.exists():
        if not resume:
            raise IchsegError(f"{out_dir}: holds a run already; pass --resume to continue it or choose another --out")
        state = load_checkpoint(last_path)
        if state.get("run_hash") != run_hash:
            raise IchsegError(f"{last_path}: was trained with another configuration (hash {state.get('run_hash')} != {run_hash}); use another --out")

    torch.manual_seed(tcfg.seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    model = build_model(cfg["variant"], **cfg["model"]).to(device)
    if tcfg.channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    objective = make_objective(cfg, device)
    # diffusion variants: AdamW, linear decay from lr to 0 over the run (paper §4.2); baselines:
    # their official recipe (SGD + poly for TransUNet, Adam + cosine for U-Net / U-KAN)
    recipe = Recipe(optimizer=tcfg.optimizer, lr=tcfg.lr, momentum=tcfg.momentum, weight_decay=tcfg.weight_decay,
                    lr_schedule=tcfg.lr_schedule, poly_power=tcfg.poly_power, min_lr=tcfg.min_lr)
    optimizer = build_optimizer(model, recipe)
    scheduler = build_scheduler(optimizer, recipe, tcfg.iterations)
    ema = EMA(model, tcfg.ema_rate)

    start, history, wall = 0, [], 0.0
    best_dice, best_iter = -1.0, -1
    if state is not None:
        model.load_state_dict(state["model"])
        # one EMA update per iteration: older checkpoints without the count resume at the iteration
        ema.load_state_dict(state["ema"], updates=state.get("ema_updates", state["iteration"]))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        start, wall = int(state["iteration"]), float(state["wall_time_s"])
        history = list(state["history"])
        best_dice, best_iter = float(state["best_dice"]), int(state["best_iteration"])

    net = objective.wrap(model)
    if world > 1:
        # Eq. 4 adds the anchor loss only every α-th iteration (and the baseline's fusion is
        # detached): some parameters get no gradient on some iterations.
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)
    if tcfg.compile:
        net = torch.compile(net)

    val_images = val_masks = None
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / "config.yaml", yaml.safe_dump(cfg, sort_keys=True))
        if tcfg.val_split == "val" and not ds.manifest["counts"]["splits"].get("val", {}).get("slices"):
            raise IchsegError(f"{prepared}: no validation split to choose checkpoints on (prep.val_fraction is 0 "
                              "or too few training patients); set prep.val_fraction > 0 or train.val_split: train")
        vi, vm, _ = load_split(prepared, tcfg.val_split)
        rows = validation_rows(len(vi), tcfg.val_slices)
        val_images, val_masks = vi[rows], vm[rows]
        atomic_write_json(out_dir / "run.json", {
            "variant": cfg["variant"], "profile": cfg.get("profile"), "run_hash": run_hash,
            "data": {"prepared": str(prepared), "fingerprint": ds.manifest.get("fingerprint"),
                     "train_slices": len(ds), "val_split": tcfg.val_split, "val_slices": len(rows)},
            "world_size": world, "environment": environment(device), "status": "running",
        })

    amp = torch.autocast("cuda", dtype=torch.bfloat16) if (device.type == "cuda" and tcfg.amp == "bf16") else nullcontext()
    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=tcfg.iterations, initial=start, desc=f"train {cfg['variant']}", unit="it", dynamic_ncols=True)
    shard = slice(rank * tcfg.batch_size // world, (rank + 1) * tcfg.batch_size // world)
    parts_logged = tuple(f"loss_{k}" for k in objective.log_parts)
    running = dict.fromkeys(("loss", *parts_logged), 0.0) | {"n": 0}
    t_last = time.perf_counter()

    for it in range(start, tcfg.iterations):
        epoch, rows = batch_rows(len(ds), tcfg.batch_size, tcfg.seed, it)
        ds.set_epoch(epoch)
        items = [ds[int(r)] for r in rows[shard]]  # this rank's share of the global batch
        img = torch.stack([x["image"] for x in items])
        msk = torch.stack([x["mask"] for x in items])
        g = iteration_generator(tcfg.seed, 3, it)
        img, msk = (x.to(device, non_blocking=True) for x in (img, msk))
        if tcfg.channels_last and device.type == "cuda":
            img = img.contiguous(memory_format=torch.channels_last)
        loss, parts = objective.loss(net, img, msk, it, g, shard, len(rows), device, amp)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if tcfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
        optimizer.step()
        scheduler.step()
        ema.update(model)
        running["loss"] += float(loss.detach())
        for k in objective.log_parts:
            running[f"loss_{k}"] += float(parts.get(k, 0.0))
        running["n"] += 1
        if bar is not None:
            bar.update(1)
            if (it + 1) % tcfg.log_every == 0:
                bar.set_postfix(loss=f"{running['loss'] / running['n']:.4f}")

        done = it + 1
        if done % tcfg.eval_every == 0 or done == tcfg.iterations:
            now = time.perf_counter()
            wall += now - t_last
            keys = ("loss", *parts_logged)
            if world > 1:  # log the global-batch mean, not rank 0's shard
                sums = torch.tensor([running[k] for k in keys], dtype=torch.float64)
                dist.all_reduce(sums)
                running.update(zip(keys, (sums / world).tolist()))
            if rank == 0:
                row = {"iteration": done, "lr": scheduler.get_last_lr()[0], "wall_time_s": round(wall, 3)}
                row.update({k: running[k] / max(running["n"], 1) for k in keys})
                row.update(validation_scores(objective.predict(ema.model, val_images, tcfg, device), val_masks))
                history.append(row)
                if row["dice"] > best_dice:
                    best_dice, best_iter = row["dice"], done
                ckpt = {
                    "model": model.state_dict(), "ema": ema.state_dict(), "ema_updates": ema.updates,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(), "iteration": done,
                    "wall_time_s": wall, "history": history, "best_dice": best_dice, "best_iteration": best_iter,
                    "run_hash": run_hash, "variant": cfg["variant"], "config": cfg,
                }
                if best_iter == done:
                    save_checkpoint(best_path, ckpt)
                save_checkpoint(last_path, ckpt)
                write_log(out_dir / "train_log.csv", history)
            if world > 1:
                dist.barrier()
            running = dict.fromkeys(keys, 0.0) | {"n": 0}
            t_last = time.perf_counter()
    if bar is not None:
        bar.close()
    if rank == 0:
        info = _read_json(out_dir / "run.json")
        info.update(status="complete", iterations=tcfg.iterations, best_dice=best_dice, best_iteration=best_iter,
                    wall_time_s=round(wall, 3))
        atomic_write_json(out_dir / "run.json", info)
    return TrainResult(out_dir, last_path, best_path, history, best_dice, best_iter)


def write_log(path: Path, history: list[dict], columns: list[str] = LOG_COLUMNS) -> None:
    """A run's ``train_log.csv`` (atomically): one row per validation point, missing values empty."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    w.writerows(history)
    atomic_write_text(path, buf.getvalue())


def _read_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text()) if path.exists() else {}

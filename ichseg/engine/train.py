"""Training of a network (paper §4.2): AdamW, linear LR decay to 0, EMA, the Eq. 4 loss, periodic validation.

The same loop trains the Table 2 diffusion variants and the Table 1 direct baselines (U-Net,
TransUNet, U-KAN) with their own optimiser, schedule and loss (``objectives.DirectObjective``;
recipes in ``ichseg.models.baselines``). Which method kind is trained by which function is
decided in ``ichseg.engine.methods``; ``ichseg.engine.train`` (the package's function) goes there.

``train_network`` is four steps: ``_set_up`` (data, run hash, the checkpoint to resume),
``_build`` (seeded model, objective, optimiser, LR scheduler, EMA), ``_resume`` (their states
from that checkpoint) and the loop of ``_step`` with ``_validate_and_checkpoint`` every
``eval_every`` iterations.

Exact resume: every random draw of iteration i (batch rows, augmentation, timesteps, noise) comes
from generators seeded by (seed, i), so a run needs no RNG stream position to continue; the
checkpoint holds model, EMA, optimizer, the LR scheduler (torch's ``LambdaLR``), the iteration,
the validation history and the global torch RNG state. ``train_run(..., resume=True)`` after a kill
ends bit-identical (CPU) to an uninterrupted run.

Distributed: under ``torchrun`` (WORLD_SIZE > 1) each rank takes its share of the same global
batch and DistributedDataParallel averages gradients (NCCL on GPUs, gloo on CPU); only rank 0
validates and writes.
"""

from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml

from ..data import SliceDataset
from ..data.config import train_dataset_of
from ..errors import ConfigError, IchsegError
from ..models import build_model
from ..models.baselines import Recipe, build_optimizer, build_scheduler
from ..utils import atomic_write_json, atomic_write_text
from ..utils.layout import best_checkpoint, last_checkpoint, run_config_path, run_info_path, train_log_path
from .checkpoint import load_checkpoint, save_checkpoint
from .config import DIFFUSION, DIRECT, TrainConfig, method_kind, run_config_hash, train_config
from .data import ensure_prepared, load_split
from .devices import autocast, resolve_device
from .ema import EMA
from .objectives import make_objective, validation_scores
from .provenance import environment
from .runlog import TrainResult, read_run_info, write_log

# -- seeded, stateless randomness ----------------------------------------------------------------
def iteration_generator(seed: int, stream: int, iteration: int) -> torch.Generator:
    """A CPU generator for one (seed, stream, iteration): independent of anything run before."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + stream) * 10_000_019 + iteration) % (2**62))


def stream_rows(n: int, seed: int, stream: int, start: int, count: int) -> torch.Tensor:
    """Rows [start, start + count) of an endless sequence of epoch-wise permutations of range(n),
    epoch e drawn from ``iteration_generator(seed, stream, e)`` (so any window is computed alone)."""
    first, last = start // n, (start + count - 1) // n
    perms = torch.cat([torch.randperm(n, generator=iteration_generator(seed, stream, e)) for e in range(first, last + 1)])
    offset = start - first * n
    return perms[offset : offset + count]


def batch_rows(n: int, batch: int, seed: int, iteration: int, lesion_rows: np.ndarray | None = None,
               lesion_fraction: float = 0.0) -> tuple[int, torch.Tensor]:
    """(epoch, rows of the global batch) at ``iteration``: epoch-wise permutations, drop-last.

    With ``lesion_fraction`` f > 0 and ``lesion_rows`` (the rows holding a lesion), the last
    ceil(f · batch) rows of every batch come from a separate stream of permutations of
    ``lesion_rows`` (foreground oversampling); the epoch counts the uniform rows.
    """
    k = math.ceil(lesion_fraction * batch) if lesion_rows is not None and len(lesion_rows) else 0
    uniform = batch - k
    epoch = (iteration * k) // len(lesion_rows) if k else 0
    rows = torch.empty(0, dtype=torch.long)
    if uniform:
        per_epoch = max(n // uniform, 1)
        epoch, pos = divmod(iteration, per_epoch)
        perm = torch.randperm(n, generator=iteration_generator(seed, 1, epoch))
        if n < uniform:
            perm = perm.repeat(math.ceil(uniform / n))
        rows = perm[pos * uniform : (pos + 1) * uniform]
    if k:
        picks = stream_rows(len(lesion_rows), seed, 4, iteration * k, k)
        rows = torch.cat([rows, torch.as_tensor(np.asarray(lesion_rows)[picks.numpy()], dtype=torch.long)])
    return epoch, rows


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
def validation_rows(n: int, count: int, positive: np.ndarray | None = None) -> np.ndarray:
    """A fixed subset of a split (the same rows at every validation), evenly spread over its rows.

    With ``positive`` (one flag per row: the slice holds a lesion), half of the subset (rounded up)
    is spread over the lesion slices and the rest over the lesion-free ones (``train.val_rows:
    balanced``); a group with too few rows leaves its share to the other.
    """
    if positive is None:
        return np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(int))
    pos, neg = np.flatnonzero(positive), np.flatnonzero(~np.asarray(positive, bool))
    count = min(count, n)
    k_pos = min(len(pos), max(count - len(neg), (count + 1) // 2))
    picks = [group[validation_rows(len(group), k)] for group, k in ((pos, k_pos), (neg, count - k_pos)) if k]
    return np.sort(np.concatenate(picks)) if picks else np.empty(0, dtype=int)



# -- the loop -------------------------------------------------------------------------------------
@dataclass
class _Run:
    """A run being trained: where it is, what it reads, and (after ``_build``) what it trains."""

    cfg: dict
    tcfg: TrainConfig
    rank: int
    world: int
    device: torch.device
    out_dir: Path
    prepared: Path
    ds: Any  # the training split (SliceDataset)
    run_hash: str
    model: torch.nn.Module | None = None
    objective: Any = None
    optimizer: torch.optim.Optimizer | None = None
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    ema: EMA | None = None

    @functools.cached_property
    def lesion_rows(self) -> np.ndarray:
        """Rows of the training split whose slice holds a lesion (for ``train.lesion_fraction``)."""
        return np.flatnonzero(self.ds.positive)

    @property
    def last_path(self) -> Path:
        return last_checkpoint(self.out_dir)

    @property
    def best_path(self) -> Path:
        return best_checkpoint(self.out_dir)


@dataclass
class _History:
    """What a run has done so far: restored from the checkpoint on resume."""

    start: int = 0
    wall: float = 0.0
    rows: list[dict] = field(default_factory=list)
    best_score: float = -1.0  # the best validation score named by train.select_on
    best_iteration: int = -1


def train_network(
    cfg: dict,
    out_dir: str | Path,
    *,
    data_root: str | Path = "data",
    prepared: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train the network ``cfg["method"]`` (a diffusion variant or a direct baseline) under a
    resolved run config (``resolve_run_config``) into ``out_dir``."""
    run = _set_up(cfg, Path(out_dir), data_root, prepared)
    state = _checkpoint_to_resume(run, resume)
    _build(run)
    hist = _resume(run, state)
    net = _wrap(run)
    val_images, val_masks = _start_run_folder(run, resumed=state is not None)

    tcfg, rank, world = run.tcfg, run.rank, run.world
    amp = autocast(run.device, tcfg.amp)
    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=tcfg.iterations, initial=hist.start, desc=f"train {run.cfg['method']}", unit="it",
                   dynamic_ncols=True)
    shard = slice(rank * tcfg.batch_size // world, (rank + 1) * tcfg.batch_size // world)
    keys = ("loss", *(f"loss_{k}" for k in run.objective.log_parts))
    running = dict.fromkeys(keys, 0.0) | {"n": 0}
    t_last = time.perf_counter()

    for it in range(hist.start, tcfg.iterations):
        loss, parts = _step(run, net, it, shard, amp)
        running["loss"] += float(loss.detach())
        for k in run.objective.log_parts:
            running[f"loss_{k}"] += float(parts.get(k, 0.0))
        running["n"] += 1
        if bar is not None:
            bar.update(1)
            if (it + 1) % tcfg.log_every == 0:
                bar.set_postfix(loss=f"{running['loss'] / running['n']:.4f}")

        done = it + 1
        if done % tcfg.eval_every == 0 or done == tcfg.iterations:
            now = time.perf_counter()
            hist.wall += now - t_last
            _validate_and_checkpoint(run, hist, running, keys, done, val_images, val_masks)
            running = dict.fromkeys(keys, 0.0) | {"n": 0}
            t_last = time.perf_counter()
    if bar is not None:
        bar.close()
    if rank == 0:
        info = read_run_info(run.out_dir)
        info.update(status="complete", iterations=tcfg.iterations, select_on=tcfg.select_on, best_score=hist.best_score,
                    best_iteration=hist.best_iteration, wall_time_s=round(hist.wall, 3))
        atomic_write_json(run_info_path(run.out_dir), info)
    return TrainResult(run.out_dir, run.last_path, run.best_path, hist.rows, hist.best_score, hist.best_iteration,
                       tcfg.select_on)


def _set_up(cfg: dict, out_dir: Path, data_root: str | Path, prepared: str | Path | None) -> _Run:
    """Ranks and device, the prepared training split, the model's input size and the run hash."""
    kind = method_kind(cfg["method"])
    if kind not in (DIFFUSION, DIRECT):
        raise ConfigError(f"method: {cfg['method']!r} is not trained by this loop (kind {kind}); "
                          "ichseg.engine.train picks the trainer of each kind")
    tcfg: TrainConfig = train_config(cfg)
    rank, world, device = _dist_setup(tcfg.device)
    if tcfg.batch_size % world:
        raise ConfigError(f"train.batch_size: the global batch {tcfg.batch_size} must divide by the {world} ranks")
    if prepared is None:
        prepared = ensure_prepared(cfg, train_dataset_of(cfg["data"]), data_root) if rank == 0 else None
        if world > 1:
            box = [str(prepared) if prepared else None]
            dist.broadcast_object_list(box, src=0)
            prepared = box[0]
    prepared = Path(prepared)
    # augmentation draws are seeded by (seed, epoch, row) inside the dataset: stateless, so resumable
    ds = SliceDataset(prepared, split="train", augment=tcfg.augment, seed=tcfg.seed)
    if len(ds) == 0:
        raise IchsegError(f"{prepared}: the train split has no slices")
    if tcfg.lesion_fraction > 0 and not ds.positive.any():
        raise IchsegError(f"{prepared}: the train split has no lesion slices for train.lesion_fraction "
                          f"{tcfg.lesion_fraction}")
    first = ds[0]["image"]
    cfg = dict(cfg)
    cfg["model"] = {**cfg.get("model", {}), "in_channels": int(first.shape[0]), "image_size": int(first.shape[-1])}
    return _Run(cfg, tcfg, rank, world, device, out_dir, prepared, ds, run_config_hash(cfg))


def _checkpoint_to_resume(run: _Run, resume: bool) -> dict | None:
    """The run folder's last checkpoint when resuming it; a run folder in use is refused otherwise."""
    if not run.last_path.exists():
        return None
    if not resume:
        raise IchsegError(f"{run.out_dir}: holds a run already; pass --resume to continue it or choose another --out")
    state = load_checkpoint(run.last_path)
    if state.get("run_hash") != run.run_hash:
        raise IchsegError(f"{run.last_path}: was trained with another configuration (hash {state.get('run_hash')} "
                          f"!= {run.run_hash}); use another --out")
    return state


def _build(run: _Run) -> None:
    """The seeded model, its objective, optimiser, LR scheduler and EMA (this order: the draws of
    the global torch generator, seeded here, initialise the model)."""
    tcfg, device = run.tcfg, run.device
    torch.manual_seed(tcfg.seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    model = build_model(run.cfg["method"], **run.cfg["model"]).to(device)
    if tcfg.channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    run.model = model
    run.objective = make_objective(run.cfg, device)
    # diffusion variants: AdamW, linear decay from lr to 0 over the run (paper §4.2); baselines:
    # their official recipe (SGD + poly for TransUNet, Adam + cosine for U-Net / U-KAN)
    recipe = Recipe(optimizer=tcfg.optimizer, lr=tcfg.lr, momentum=tcfg.momentum, weight_decay=tcfg.weight_decay,
                    lr_schedule=tcfg.lr_schedule, poly_power=tcfg.poly_power, min_lr=tcfg.min_lr)
    run.optimizer = build_optimizer(model, recipe)
    run.scheduler = build_scheduler(run.optimizer, recipe, tcfg.iterations)  # a LambdaLR
    run.ema = EMA(model, tcfg.ema_rate)


def _resume(run: _Run, state: dict | None) -> _History:
    """Model, EMA, optimiser, scheduler and RNG states and the history from a checkpoint."""
    if state is None:
        return _History()
    run.model.load_state_dict(state["model"])
    # one EMA update per iteration: older checkpoints without the count resume at the iteration
    run.ema.load_state_dict(state["ema"], updates=state.get("ema_updates", state["iteration"]))
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    return _History(int(state["iteration"]), float(state["wall_time_s"]), list(state["history"]),
                    float(state.get("best_score", state.get("best_dice"))), int(state["best_iteration"]))


def _wrap(run: _Run) -> torch.nn.Module:
    """The module a step calls: the objective's forward, under DDP and torch.compile when asked."""
    net = run.objective.wrap(run.model)
    if run.world > 1:
        # Eq. 4 adds the anchor loss only every α-th iteration (and the baseline's fusion is
        # detached): some parameters get no gradient on some iterations.
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[run.device.index] if run.device.type == "cuda" else None, find_unused_parameters=True)
    if run.tcfg.compile:
        net = torch.compile(net)
    return net


def _start_run_folder(run: _Run, resumed: bool = False) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Rank 0: ``config.yaml`` and ``run.json`` (status running) and the validation slices. A
    resumed run keeps the environment it started in (its commit) and appends this one to
    ``resumed_environments``."""
    if run.rank != 0:
        return None, None
    tcfg, cfg, ds = run.tcfg, run.cfg, run.ds
    run.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_config_path(run.out_dir), yaml.safe_dump(cfg, sort_keys=True))
    if tcfg.val_split == "val" and not ds.manifest["counts"]["splits"].get("val", {}).get("slices"):
        raise IchsegError(f"{run.prepared}: no validation split to choose checkpoints on (prep.val_fraction is 0 "
                          "or too few training patients); set prep.val_fraction > 0 or train.val_split: train")
    vi, vm, _ = load_split(run.prepared, tcfg.val_split)
    lesion = (vm.flatten(1) > 0).any(1).numpy() if tcfg.val_rows == "balanced" else None
    rows = validation_rows(len(vi), tcfg.val_slices, lesion)
    if tcfg.select_on == "strict_dice" and not bool((vm[rows] > 0).any()):
        raise IchsegError(f"{run.prepared}: the {len(rows)} validation slices hold no lesion, so train.select_on: "
                          "strict_dice has nothing to choose on; raise train.val_slices or select on dice")
    env = environment(run.device)
    before = read_run_info(run.out_dir) if resumed and run_info_path(run.out_dir).is_file() else {}
    history = ({"environment": before["environment"],
                "resumed_environments": [*before.get("resumed_environments", []), env]}
               if before.get("environment") else {"environment": env})
    atomic_write_json(run_info_path(run.out_dir), {
        "method": cfg["method"], "profile": cfg.get("profile"), "run_hash": run.run_hash,
        "data": {"prepared": str(run.prepared), "fingerprint": ds.manifest.get("fingerprint"),
                 "train_slices": len(ds), "val_split": tcfg.val_split, "val_slices": len(rows)},
        "world_size": run.world, **history, "status": "running",
    })
    return vi[rows], vm[rows]


def _step(run: _Run, net: torch.nn.Module, it: int, shard: slice, amp) -> tuple[torch.Tensor, dict]:
    """One optimisation step on this rank's share of iteration ``it``'s global batch."""
    tcfg, device, ds = run.tcfg, run.device, run.ds
    epoch, rows = batch_rows(len(ds), tcfg.batch_size, tcfg.seed, it, run.lesion_rows, tcfg.lesion_fraction)
    ds.set_epoch(epoch)
    items = [ds[int(r)] for r in rows[shard]]  # this rank's share of the global batch
    img = torch.stack([x["image"] for x in items])
    msk = torch.stack([x["mask"] for x in items])
    g = iteration_generator(tcfg.seed, 3, it)
    img, msk = (x.to(device, non_blocking=True) for x in (img, msk))
    if tcfg.channels_last and device.type == "cuda":
        img = img.contiguous(memory_format=torch.channels_last)
    loss, parts = run.objective.loss(net, img, msk, it, g, shard, len(rows), device, amp)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if tcfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), tcfg.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    run.ema.update(run.model)
    return loss, parts


def _validate_and_checkpoint(run: _Run, hist: _History, running: dict, keys: tuple[str, ...], done: int,
                             val_images: torch.Tensor | None, val_masks: torch.Tensor | None) -> None:
    """After ``done`` iterations: the mean losses since the last row (over all ranks), then on
    rank 0 the EMA model's validation scores, ``last.pt`` (and ``best.pt`` when the Dice is the
    best so far) and ``train_log.csv``."""
    if run.world > 1:  # log the global-batch mean, not rank 0's shard
        sums = torch.tensor([running[k] for k in keys], dtype=torch.float64)
        dist.all_reduce(sums)
        running.update(zip(keys, (sums / run.world).tolist()))
    if run.rank == 0:
        row = {"iteration": done, "lr": run.scheduler.get_last_lr()[0], "wall_time_s": round(hist.wall, 3)}
        row.update({k: running[k] / max(running["n"], 1) for k in keys})
        row.update(validation_scores(run.objective.predict(run.ema.model, val_images, run.tcfg, run.device), val_masks))
        hist.rows.append(row)
        if row[run.tcfg.select_on] > hist.best_score:  # the selection score (train.select_on)
            hist.best_score, hist.best_iteration = row[run.tcfg.select_on], done
        ckpt = {
            "model": run.model.state_dict(), "ema": run.ema.state_dict(), "ema_updates": run.ema.updates,
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(), "torch_rng": torch.get_rng_state(), "iteration": done,
            "wall_time_s": hist.wall, "history": hist.rows, "best_score": hist.best_score,
            "best_iteration": hist.best_iteration, "run_hash": run.run_hash, "method": run.cfg["method"],
            "config": run.cfg,
        }
        if hist.best_iteration == done:
            save_checkpoint(run.best_path, ckpt)
        save_checkpoint(run.last_path, ckpt)
        write_log(train_log_path(run.out_dir), hist.rows)
    if run.world > 1:
        dist.barrier()


__all__ = ["batch_rows", "iteration_generator", "stream_rows", "train_network", "validation_rows"]

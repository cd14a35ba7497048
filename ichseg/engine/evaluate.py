"""Evaluation of a trained network's checkpoint on one prepared dataset (paper §4.1-4.2).

Diffusion variants and direct baselines (``evaluate_checkpoint``; nnU-Net is evaluated by its
adapter, ``ichseg.engine.nnunet``, and ``ichseg.engine.methods.evaluate_run`` picks the one for a
run folder). Cross-dataset evaluation is this same call on BHSD or PhysioNet with the model
trained on INSTANCE 2022, unchanged. ``ichseg.engine.scoring.write_evaluation`` writes, atomically,
into ``out_dir``: ``metrics.json`` (both protocols, sampler settings, provenance), ``slices.csv``
(per-slice scores), ``qualitative.npz`` (a few fixed slices: image, ground truth, probability,
uncertainty) and ``worst.npz`` (the slices it got most wrong, ``ichseg.engine.worst``).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..diffusion import DiffusionConfig, GaussianDiffusion
from ..errors import IchsegError
from ..utils import method_of
from ..utils.layout import best_checkpoint
from ..utils.lazy import lazy_attributes
from ..models import build_from_config, segmenter_config, variant_config
from .checkpoint import load_checkpoint
from .config import DIRECT, EvalConfig, method_kind
from .data import load_split
from .devices import inference_amp, resolve_device
from .inference import segment

# the scoring (pandas) is imported on first use: ``ichseg predict`` loads its models from here
__getattr__ = lazy_attributes(__name__, {"write_evaluation": ".scoring"})


def load_trained_model(checkpoint: str | Path, device: torch.device, *, weights: str = "ema", method: str | None = None):
    """(model with EMA weights, diffusion — None for a direct segmenter —, run config, run hash).

    ``method``: refuse a checkpoint of another method. A checkpoint written before run configs
    named their method ``method`` (e.g. the committed weights) says ``variant``; ``method_of`` reads both."""
    return model_from_state(load_checkpoint(checkpoint), device, source=checkpoint, weights=weights, method=method)


def model_from_state(state: dict, device: torch.device, *, source: str | Path, weights: str = "ema",
                     method: str | None = None):
    """``load_trained_model`` of a checkpoint already read (``load_checkpoint``); ``source`` names it in errors."""
    checkpoint, cfg = source, state["config"]
    name = method_of(cfg)
    if method is not None and method != name:
        raise IchsegError(f"{checkpoint}: holds method {name!r}, not {method!r}")
    direct = method_kind(name) == DIRECT
    arch = (segmenter_config if direct else variant_config)(name, **cfg["model"])
    # the ImageNet / ViT file is not needed: the trained weights replace it right away
    model = build_from_config(arch, load_pretrained=False)
    try:
        model.load_state_dict(state[weights])
    except RuntimeError as exc:
        raise IchsegError(f"{checkpoint}: weights do not fit method {name!r} ({str(exc).splitlines()[0]})") from None
    if direct:
        return model.to(device).eval(), None, cfg, state.get("run_hash")
    diffusion = GaussianDiffusion(DiffusionConfig.from_dict(cfg["diffusion"]))
    return model.to(device).eval(), diffusion.to(device), cfg, state.get("run_hash")


def evaluate_checkpoint(
    checkpoint: str | Path,
    prepared: str | Path,
    out_dir: str | Path,
    ecfg: EvalConfig | None = None,
    *,
    dataset: str | None = None,
    split: str = "test",
    device: str = "auto",
    method: str | None = None,
    progress: bool = True,
) -> dict:
    ecfg = ecfg or EvalConfig()
    dev = resolve_device(device)
    model, diffusion, cfg, run_hash = load_trained_model(checkpoint, dev, method=method)
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

        bar = tqdm(total=len(images), desc=f"evaluate {method_of(cfg)} on {dataset or Path(prepared).name}", unit="slice")
    gen = torch.Generator(device=dev).manual_seed(ecfg.seed)
    t0 = time.perf_counter()
    prob, unc, stages = segment(model, diffusion, images, sampler=ecfg.sampler,
                               steps=None if ecfg.sampler == "ddpm" else ecfg.steps, eta=ecfg.eta,
                               ensemble=ecfg.ensemble, batch_slices=ecfg.batch_slices, generator=gen,
                               device=dev, amp=inference_amp(dev, cfg["train"].get("amp", "none")), progress=bar,
                               paper_stages=True)
    seconds = time.perf_counter() - t0
    if bar is not None:
        bar.close()

    meta = {
        "method": method_of(cfg),
        "profile": cfg.get("profile"),
        "checkpoint": str(checkpoint),
        "run_hash": run_hash,
        # a direct segmenter takes one forward pass: the sampler settings do not apply to it
        "inference": "sigmoid of one forward pass" if diffusion is None else "diffusion ensemble",
    }
    from .scoring import write_evaluation

    return write_evaluation(prob.numpy(), unc.numpy(), images.numpy(), masks[:, 0].numpy(), ds, out_dir, ecfg,
                            dataset=dataset or Path(prepared).parent.name, split=split, meta=meta,
                            seconds=seconds, device=dev,
                            paper_stages=None if stages is None else {k: v.numpy() for k, v in stages.items()})


def evaluate_network_run(
    run_dir: str | Path,
    prepared: str | Path,
    out_dir: str | Path,
    ecfg: EvalConfig | None = None,
    *,
    dataset: str | None = None,
    split: str = "test",
    method: str | None = None,
    device: str = "auto",
    progress: bool = True,
) -> dict:
    """``evaluate_checkpoint`` of a training run folder's best checkpoint (``train`` wrote it)."""
    return evaluate_checkpoint(best_checkpoint(run_dir), prepared, out_dir, ecfg, dataset=dataset,
                               split=split, device=device, method=method, progress=progress)


__all__ = ["evaluate_checkpoint", "evaluate_network_run", "load_trained_model", "write_evaluation"]

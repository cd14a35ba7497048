"""Ensemble segmentation with a trained model: probability map and uncertainty per slice.

The condition branch depends only on the image, so its features are computed once per slice and
reused at every sampling step (``ichseg.models.make_eps_fn``); the N ensemble members of a slice
run as one batch. Probability = mean of the N sampled masks in [0,1]; uncertainty = their
standard deviation. Asked for (``paper_stages=True``), the same members also give the maps of
the paper protocol's output path (``ichseg.metrics.fusion.fusion_stages``: anchor blend, STAPLE,
8-bit JPEG), so every fusion is scored on the very same samples.

``eval_settings`` is the one constructor of the settings inference runs under (``EvalConfig``:
sampler, steps, ensemble, fusion, ...): a run's profile values, each option given replacing one, so
``evaluate``, ``predict`` and the notebooks sample a checkpoint the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..diffusion import GaussianDiffusion, sample
from ..metrics.fusion import fusion_stages
from ..models.model import make_eps_fn
from .config import EvalConfig
from .devices import autocast

#: ``EvalConfig`` fields whose empty string / zero means "not given" (a papermill parameter cannot
#: be None): none of these can validly be empty or zero, so the sentinel cannot hide a real value.
#: ``seed``, ``eta``, ``threshold`` and ``qualitative`` can be 0: only None leaves them unset.
UNSET_SENTINELS = {"sampler": "", "paper_fusion": "", "direct_output": "", "steps": 0, "ensemble": 0,
                   "batch_slices": 0}


def _profile_evaluate(base: Any) -> dict:
    if base is None:
        return {}
    if isinstance(base, EvalConfig):
        return dict(base.__dict__)
    if isinstance(base, (str, Path)):  # a checkpoint: the run config it was trained under
        from .checkpoint import load_checkpoint

        base = load_checkpoint(base).get("config") or {}
    if not isinstance(base, Mapping):
        raise TypeError(f"eval_settings: base must be a run config, an evaluate mapping, an EvalConfig, a path or None; got {type(base).__name__}")
    if "model" in base or "evaluate" in base:  # a whole run config
        return dict(base.get("evaluate") or {})
    return dict(base)


def eval_settings(base: Any = None, overrides: Mapping[str, Any] | None = None) -> EvalConfig:
    """The evaluation / sampling settings: ``base``'s values, each override that is given replacing one.

    ``base``: a run config (its ``evaluate`` section, i.e. the settings the run's profile evaluates
    with), a checkpoint path (its run config's), an ``evaluate`` mapping, an ``EvalConfig``, or
    None (``EvalConfig``'s defaults). An override of None, or the empty string / zero of a field in
    ``UNSET_SENTINELS``, is not given. Unknown keys, in either, are a ``ConfigError``.
    """
    from ..utils.configs import dataclass_from_dict

    values = _profile_evaluate(base)
    for name, value in (overrides or {}).items():
        if value is None or (name in UNSET_SENTINELS and value == UNSET_SENTINELS[name] and not isinstance(value, bool)):
            continue
        values[name] = value
    return dataclass_from_dict(EvalConfig, values, "evaluate")


@torch.no_grad()
def segment_slices(
    model: nn.Module,
    diffusion: GaussianDiffusion,
    images: torch.Tensor,
    *,
    sampler: str,
    steps: int | None,
    ensemble: int,
    eta: float = 0.0,
    batch_slices: int = 16,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    amp: str = "none",
    progress=None,
    paper_stages: bool = False,
    on_members: Callable[[torch.Tensor], None] | None = None,
):
    """images (N, C, H, W) -> (probability (N, H, W), uncertainty (N, H, W)) on the CPU, float32;
    with ``paper_stages`` a third element: ``fusion_stages`` of the members (name -> (N, H, W)).
    ``on_members`` is handed each batch's soft member masks, (B, ensemble, H, W) on the CPU, in
    slice order (e.g. for the spread of the per-member volumes).

    The members reach the fusions in mask units, as the released code's samples are: the raw
    x̂_0 mapped by the encoding's inverse without clamping ({-1,1} -> {0,1}: m = (x + 1)/2;
    {0,1} unchanged); the anchor is sigmoid of the condition branch's anchor logits."""
    device = torch.device(device)
    model.eval()
    enc = diffusion.encoding
    probs, stds, stages = [], [], []
    for start in range(0, len(images), batch_slices):
        img = images[start : start + batch_slices].to(device, torch.float32)
        eps_fn = make_eps_fn(model, img, ensemble, lambda: autocast(device, amp))
        raw = sample(diffusion, eps_fn, img, sampler=sampler, steps=steps, eta=eta, ensemble=ensemble,
                     generator=generator, return_raw=True)  # (B, N, 1, H, W) diffusion space
        units = enc.to_mask_units(raw.float())
        masks = units.clamp(0.0, 1.0)  # = enc.decode(raw): the soft masks in [0, 1]
        if on_members is not None:
            on_members(masks[:, :, 0].cpu())
        probs.append(masks.mean(dim=1)[:, 0].cpu())
        stds.append(masks.std(dim=1, unbiased=False)[:, 0].cpu())
        if paper_stages:
            feats = eps_fn.features
            anchor = None if feats is None or feats.anchor is None else torch.sigmoid(feats.anchor.float())[:, 0]
            st = fusion_stages(units[:, :, 0].cpu().numpy(), None if anchor is None else anchor.cpu().numpy(), sampler)
            stages.append({k: torch.from_numpy(v.astype("float32")) for k, v in st.items()})
        if progress is not None:
            progress.update(len(img))
    out = (torch.cat(probs), torch.cat(stds))
    if paper_stages:
        out += ({k: torch.cat([s[k] for s in stages]) for k in stages[0]} if stages else {},)
    return out


@torch.no_grad()
def predict_direct(
    model: nn.Module,
    images: torch.Tensor,
    *,
    batch_slices: int = 16,
    device: torch.device | str = "cpu",
    amp: str = "none",
    progress=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A direct segmenter (Table 1 baselines): probability = sigmoid(logits) of one forward pass;
    its uncertainty is not defined (returned as zeros, so outputs keep one layout). Its paper-
    protocol map is its probability through the 8-bit image path (``write_evaluation`` makes it)."""
    device = torch.device(device)
    model.eval()
    probs = []
    for start in range(0, len(images), batch_slices):
        img = images[start : start + batch_slices].to(device, torch.float32)
        with autocast(device, amp):
            logits = model(img)
        probs.append(torch.sigmoid(logits.float())[:, 0].cpu())
        if progress is not None:
            progress.update(len(img))
    prob = torch.cat(probs)
    return prob, torch.zeros_like(prob)


def segment(model: nn.Module, diffusion: GaussianDiffusion | None, images: torch.Tensor, *, sampler: str,
            steps: int | None, ensemble: int, eta: float = 0.0, batch_slices: int = 16,
            generator: torch.Generator | None = None, device="cpu", amp: str = "none", progress=None,
            paper_stages: bool = False, on_members: Callable[[torch.Tensor], None] | None = None):
    """``segment_slices`` for a diffusion model, ``predict_direct`` for a direct one (``diffusion=None``).
    With ``paper_stages`` the third element is None for a direct model (no members, no anchor);
    ``on_members`` is never called for it."""
    if diffusion is None:
        out = predict_direct(model, images, batch_slices=batch_slices, device=device, amp=amp, progress=progress)
        return out + (None,) if paper_stages else out
    return segment_slices(model, diffusion, images, sampler=sampler, steps=steps, ensemble=ensemble, eta=eta,
                          batch_slices=batch_slices, generator=generator, device=device, amp=amp, progress=progress,
                          paper_stages=paper_stages, on_members=on_members)

"""Segment a user's head CT volume with a trained checkpoint (``ichseg predict``).

The scan goes through the same preparation as the training data (the run config's ``data.prep``),
every axial slice is segmented (batched, with an ensemble), and the outputs are mapped back onto
the input's own voxel grid and affine so they overlay the scan in any viewer:
``mask.nii.gz`` (uint8), ``probability.nii.gz`` and ``uncertainty.nii.gz`` (float32) and
``summary.json`` (hemorrhage volume in mL, the slices involved). The folder appears atomically.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from ..errors import IchsegError
from ..utils import atomic_directory, atomic_write_json, method_of
from .config import EvalConfig
from .evaluate import load_trained_model
from .inference import segment
from .devices import inference_amp, resolve_device
from .provenance import environment


def _check_writable(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise IchsegError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / "summary.json").exists():
        raise IchsegError(f"{out_dir}: exists, is not empty and holds no earlier prediction; choose another --out")
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise IchsegError(f"{out_dir}: cannot write there ({exc.strerror or exc})") from None


def predict_scan(
    checkpoint: str | Path,
    scan: str | Path,
    out_dir: str | Path,
    ecfg: EvalConfig | None = None,
    *,
    device: str = "auto",
    threshold: float = 0.5,
    progress: bool = True,
) -> dict:
    from ..data import PrepConfig, load_volume, preprocess_volume, volume_from_slices
    from ..data.volumes import write_nifti

    ecfg = ecfg or EvalConfig()
    out_dir = Path(out_dir)
    _check_writable(out_dir)  # before any heavy work
    dev = resolve_device(device)
    model, diffusion, cfg, _ = load_trained_model(checkpoint, dev)
    vol = load_volume(scan)
    if vol.n_slices < 1:
        raise IchsegError(f"{scan}: the volume has no axial slices")
    prep = PrepConfig.from_dict(dict(cfg.get("data", {}).get("prep") or {}))
    slices = torch.from_numpy(preprocess_volume(vol, prep))
    want = (cfg["model"]["in_channels"], cfg["model"]["image_size"])
    if (slices.shape[1], slices.shape[-1]) != want:
        raise IchsegError(f"{checkpoint}: expects {want[0]}-channel {want[1]}² slices; preparation gave {tuple(slices.shape[1:])}")

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(slices), desc=f"segment {Path(scan).name}", unit="slice")
    gen = torch.Generator(device=dev).manual_seed(ecfg.seed)
    prob, unc = segment(model, diffusion, slices, sampler=ecfg.sampler,
                               steps=None if ecfg.sampler == "ddpm" else ecfg.steps, eta=ecfg.eta,
                               ensemble=ecfg.ensemble, batch_slices=ecfg.batch_slices, generator=gen,
                               device=dev, amp=inference_amp(dev, cfg["train"].get("amp", "none")), progress=bar)
    if bar is not None:
        bar.close()

    prob_vol = volume_from_slices(prob.numpy(), vol, order=1).astype(np.float32)
    unc_vol = volume_from_slices(unc.numpy(), vol, order=1).astype(np.float32)
    mask_vol = (prob_vol >= threshold).astype(np.uint8)

    affine = vol.original_affine
    # the mask is back on the scan's own voxel grid, so the scan's voxel size is the right unit
    # here (on prepared slices it would be the prepared pixel: data.prepared_spacing)
    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    src_axis = int(np.nonzero(vol.ornt[:, 0] == 2)[0][0])  # the file's axis that is axial
    other = tuple(a for a in range(3) if a != src_axis)
    involved = np.flatnonzero(mask_vol.any(axis=other))
    summary = {
        "scan": str(scan),
        "checkpoint": str(checkpoint),
        "method": method_of(cfg),
        "shape": list(mask_vol.shape),
        "hemorrhage_volume_ml": round(float(mask_vol.sum()) * voxel_ml, 3),
        "voxel_volume_ml": voxel_ml,
        "slice_axis": src_axis,
        "slices_with_hemorrhage": [int(k) for k in involved],
        "threshold": threshold,
        "evaluate": ecfg.__dict__,
        "environment": environment(dev),
    }
    with atomic_directory(out_dir, replace=True) as tmp:
        write_nifti(tmp / "mask.nii.gz", mask_vol, affine, dtype=np.uint8)
        write_nifti(tmp / "probability.nii.gz", prob_vol, affine, dtype=np.float32)
        write_nifti(tmp / "uncertainty.nii.gz", unc_vol, affine, dtype=np.float32)
        atomic_write_json(tmp / "summary.json", summary)
    return summary



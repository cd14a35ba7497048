"""How an ensemble of sampled masks becomes the image the paper protocol scores (numpy only).

A fusion takes, per slice, the N ensemble members in *mask units* — the released MedSegDiff
code's sample space, where the mask is {0, 1} and x̂_0 is clipped to [-1, 1]: the sample of a
symmetric ({-1, 1}) encoding is mapped with m = (x + 1) / 2 first, a {0, 1} encoding is taken as
it is, and in neither case is it clamped — and, where the method has one, the condition branch's
anchor output ``cal = sigmoid(anchor logits)``. It returns one map per slice in [0, 1], which
``ichseg.metrics.paper`` then divides by its maximum and thresholds (``eval_seg``).

Named fusions (``FUSIONS``):

- ``mean``: the plain ensemble mean of the members clamped to [0, 1] (the study's probability map).
- ``medsegdiff``: the released code's output path, end to end (MedSegDiff-v2, Wu et al. 2024):

  1. *anchor blend* per member (gaussian_diffusion.py ``p_sample_loop_known``): on the DDPM
     path ``clamp(cal + 0.25·s)`` when ``dice(s > 0, cal) < 0.65``, else
     ``clamp(0.5·cal + 0.5·s)``; on the DPM-Solver path the member is first standardised
     (z-score over the slice, unbiased std as ``torch.std``) and always blended as
     ``clamp(cal + 0.25·z)``. (In the released code the tensor standardised on that path is
     the network's last output channel at the final time; the study standardises the sample.)
     An ensemble without an anchor passes its members clamped to [0, 1].
  2. *STAPLE*: ``utils.staple`` runs one iteration of a re-weighted mean, which returns the
     ensemble mean multiplied by itself — the mean squared.
  3. *8-bit JPEG*: ``torchvision.utils.save_image`` writes x·255 + 0.5, clamped to [0, 255] and
     truncated to uint8, as an RGB JPEG (PIL's default quality, 75); ``segmentation_env.py``
     reads it back as greyscale. Values below 0.5/255 become 0 and compression adds ringing.
  4. *max-normalisation*: done by the paper protocol itself (``normalise_by_max``); an all-zero
     image has no maximum (the code divides by zero: NaN, no threshold passes: an empty mask).

- ``medsegdiff-v2``: what the released sampling script fuses by default (``--version new``, the
  v2 network): the *raw* final samples (standardised on the DPM-Solver path), not the anchor-blended
  ``cal_out`` — that one is fused only with ``--version 1`` —, then steps 2-4.

A direct segmenter (no ensemble, no anchor) goes through steps 3-4 only
(``fuse(..., ensemble=False)``): STAPLE of a single member would square it, which the released
code never does to a single map. What it hands to them is named by ``direct_output``
(``DIRECT_OUTPUTS``): ``mask``, its official prediction, the probability above 0.5 (the strict
protocol's mask; the released code of every Table 1 baseline writes a hard segmentation:
TransUNet's and nnU-Net's argmax over two classes, U-KAN's sigmoid thresholded at 0.5), or
``probability``, the soft map itself, whose faint values on a lesion-free slice max-normalisation
turns into a full false positive.

``FUSION_STAGES`` lists cumulative prefixes of the ``medsegdiff`` path, so a report can show how
much each step moves the paper-protocol number.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np

from ..errors import ConfigError

BLEND_DICE_THRESHOLD = 0.65  # the released DDPM path's switch between the two blends
DIRECT_OUTPUTS = ("mask", "probability")  # what a direct segmenter hands to the output path (above)
JPEG_QUALITY = 75  # PIL's default, which torchvision.utils.save_image uses for a .jpg


def _members(samples) -> np.ndarray:
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim != 4:
        raise ValueError(f"samples: expected (slices, members, H, W), got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("samples: contains NaN or infinite values")
    return s


def _anchor(cal, shape) -> np.ndarray:
    c = np.asarray(cal, dtype=np.float64)
    if c.ndim == 4 and c.shape[1] == 1:
        c = c[:, 0]
    if c.shape != (shape[0], *shape[2:]):
        raise ValueError(f"anchor: expected shape {(shape[0], *shape[2:])}, got {c.shape}")
    return c


def standardise(samples: np.ndarray) -> np.ndarray:
    """z-score of every member over its slice (mean 0, unbiased std 1), as the code's ``norm``."""
    s = _members(samples)
    flat = s.reshape(*s.shape[:2], -1)
    mean = flat.mean(axis=2)
    std = flat.std(axis=2, ddof=1) if flat.shape[2] > 1 else np.ones(flat.shape[:2])
    std = np.where(std > 0, std, 1.0)  # a constant member has no spread: leave it centred
    return (s - mean[..., None, None]) / std[..., None, None]


# which blend rule each sampler's output takes: the released DPM-Solver path's, or its DDPM path's
# (DDIM, broken in the released code, ends on an x̂_0 like DDPM and takes the DDPM rule)
BLEND_RULES = {"ddpm": "ddpm", "ddim": "ddpm", "dpm-solver++": "dpm-solver"}


def anchor_blend(samples, cal, sampler: str) -> np.ndarray:
    """Step 1 of ``medsegdiff``: each member blended with the anchor output ``cal`` (see module)."""
    s = _members(samples)
    c = _anchor(cal, s.shape)[:, None]  # (B, 1, H, W) against (B, N, H, W)
    if BLEND_RULES[sampler] == "dpm-solver":
        return np.clip(c + 0.25 * standardise(s), 0.0, 1.0)
    # the code's dice_score: binarise the sample at > 0 against the soft anchor, per member
    pb = (s > 0).astype(np.float64)
    inter = (pb * c).reshape(*s.shape[:2], -1).sum(axis=2)
    denom = (pb + c).reshape(*s.shape[:2], -1).sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = 2.0 * inter / denom  # 0/0 (both empty) is NaN, and NaN < 0.65 is false, as in torch
    low = (dice < BLEND_DICE_THRESHOLD)[..., None, None]
    return np.clip(np.where(low, c + 0.25 * s, 0.5 * c + 0.5 * s), 0.0, 1.0)


def staple(members) -> np.ndarray:
    """Step 2: the released ``staple`` (one iteration of a re-weighted mean) = mean², per pixel."""
    s = _members(members)
    mean = s.mean(axis=1)
    return (s * mean[:, None]).mean(axis=1)


def to_uint8(prob) -> np.ndarray:
    """``save_image``'s conversion: x·255 + 0.5, clamped to [0, 255], truncated to uint8."""
    p = np.asarray(prob, dtype=np.float32)  # torchvision does this arithmetic in float32
    return np.clip(p * np.float32(255.0) + np.float32(0.5), 0.0, 255.0).astype(np.uint8)


def jpeg8_round_trip(prob, quality: int = JPEG_QUALITY) -> np.ndarray:
    """Step 3: each slice saved as an 8-bit RGB JPEG and read back as greyscale, divided by 255.

    prob (N, H, W) in [0, 1] -> (N, H, W) float64 in [0, 1]. Deterministic (libjpeg via PIL)."""
    from PIL import Image

    p = np.asarray(prob)
    if p.ndim != 3:
        raise ValueError(f"prob: expected (N, H, W), got shape {p.shape}")
    u8 = to_uint8(p)
    out = np.empty(p.shape, dtype=np.float64)
    for i, img in enumerate(u8):
        buf = io.BytesIO()
        Image.fromarray(np.repeat(img[..., None], 3, axis=2), mode="RGB").save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        with Image.open(buf) as im:
            out[i] = np.asarray(im.convert("L"), dtype=np.float64) / 255.0
    return out


def mean_fusion(samples, cal=None, sampler: str = "ddpm") -> np.ndarray:
    return np.clip(_members(samples), 0.0, 1.0).mean(axis=1)


def _direct_output(probability: np.ndarray, direct_output: str, threshold: float) -> np.ndarray:
    """A direct segmenter's map for the output path: its hard mask or its probability (in [0, 1])."""
    if direct_output not in DIRECT_OUTPUTS:
        raise ConfigError(f"direct_output: unknown value {direct_output!r}; known: {', '.join(DIRECT_OUTPUTS)}")
    return (probability > threshold).astype(np.float64) if direct_output == "mask" else probability


def _medsegdiff_stages(samples, cal, sampler: str, ensemble: bool = True, direct_output: str = "mask",
                       threshold: float = 0.5) -> dict[str, np.ndarray]:
    s = _members(samples)
    if sampler not in BLEND_RULES:
        raise ValueError(f"sampler: unknown value {sampler!r}; known: {', '.join(BLEND_RULES)}")
    out = {"mean": mean_fusion(s)}
    if not ensemble:  # a direct segmenter: no anchor, no ensemble; only the image path applies
        if s.shape[1] != 1:
            raise ValueError(f"samples: a direct segmenter has one member per slice, got {s.shape[1]}")
        out["mean"] = _direct_output(out["mean"], direct_output, threshold)
        out["anchor_blend"] = out["staple"] = out["mean"]
    else:
        blended = np.clip(s, 0.0, 1.0) if cal is None else anchor_blend(s, cal, sampler)
        out["anchor_blend"] = blended.mean(axis=1)
        out["staple"] = staple(blended)
    out["jpeg8"] = jpeg8_round_trip(out["staple"])
    if not ensemble:
        out["v2_raw"] = out["jpeg8"]
    else:
        raw = standardise(s) if BLEND_RULES[sampler] == "dpm-solver" else s
        out["v2_raw"] = jpeg8_round_trip(staple(raw))
    return out


def medsegdiff_fusion(samples, cal=None, sampler: str = "ddpm") -> np.ndarray:
    return _medsegdiff_stages(samples, cal, sampler)["jpeg8"]


def medsegdiff_v2_fusion(samples, cal=None, sampler: str = "ddpm") -> np.ndarray:
    return _medsegdiff_stages(samples, None, sampler)["v2_raw"]


FUSIONS: dict[str, Callable[..., np.ndarray]] = {
    "mean": mean_fusion,
    "medsegdiff": medsegdiff_fusion,
    "medsegdiff-v2": medsegdiff_v2_fusion,
}
# cumulative steps of the released output path, in order (each before max-normalisation)
FUSION_STAGES = ("mean", "anchor_blend", "staple", "jpeg8")


def fusion_stages(samples, cal=None, sampler: str = "ddpm", *, ensemble: bool = True, direct_output: str = "mask",
                  threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Every prefix of the ``medsegdiff`` path, each (slices, H, W) in [0, 1]: ``mean`` (plain
    mean), ``anchor_blend`` (mean of the blended members), ``staple`` (their mean²), ``jpeg8``
    (= the ``medsegdiff`` fusion), and ``v2_raw`` (the ``medsegdiff-v2`` fusion, which skips the
    blend and fuses the raw members). ``ensemble=False``: a direct segmenter's one probability map
    (blend and STAPLE do not apply; every stage is its ``direct_output`` map — the mask at
    ``threshold`` or the probability —, ``jpeg8`` that map's 8-bit image)."""
    return _medsegdiff_stages(samples, cal, sampler, ensemble, direct_output, threshold)


def fusion_maps(stages: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each named fusion's map from the output of ``fusion_stages``."""
    return {"mean": stages["mean"], "medsegdiff": stages["jpeg8"], "medsegdiff-v2": stages["v2_raw"]}


def fuse(name: str, samples, cal=None, sampler: str = "ddpm", *, ensemble: bool = True, direct_output: str = "mask",
         threshold: float = 0.5) -> np.ndarray:
    """The named fusion of (slices, members, H, W) samples in mask units. ``ensemble=False`` marks
    a direct segmenter's single probability map (one member): ``medsegdiff`` then applies the
    8-bit image path only (it has neither an ensemble to fuse nor an anchor to blend) to its
    ``direct_output`` map (``mask``: the probability thresholded at ``threshold``)."""
    if name not in FUSIONS:
        raise ConfigError(f"fusion: unknown value {name!r}; known: {', '.join(FUSIONS)}")
    if not ensemble:
        return fusion_maps(fusion_stages(samples, ensemble=False, direct_output=direct_output, threshold=threshold))[name]
    return FUSIONS[name](samples, cal, sampler)


__all__ = [
    "DIRECT_OUTPUTS",
    "FUSIONS",
    "FUSION_STAGES",
    "JPEG_QUALITY",
    "anchor_blend",
    "fuse",
    "fusion_maps",
    "fusion_stages",
    "jpeg8_round_trip",
    "mean_fusion",
    "medsegdiff_fusion",
    "medsegdiff_v2_fusion",
    "staple",
    "standardise",
    "to_uint8",
]

"""Writing phantom volumes in a dataset's folder layout: each case stored in the layout's voxel order,
data type and scaling, through the layout's own writer (``ichseg.data.layouts``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import ConfigError
from ..layouts import get_layout
from ..volumes import write_nifti
from .lesions import SUBTYPE_CODE
from .randomise import Randomise
from .scanner import DOMAINS, Domain
from .volume import PhantomVolume, phantom_case


def _store(vol: PhantomVolume, domain: Domain) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RAS+ arrays -> the layout's stored voxel order and affine."""
    hu, lab, aff = vol.hu, vol.labels, vol.affine.copy()
    for axis, flip in enumerate(domain.flips):
        if flip:
            hu, lab = np.flip(hu, axis), np.flip(lab, axis)
            aff[:3, 3] += aff[:3, axis] * (hu.shape[axis] - 1)
            aff[:3, axis] *= -1
    return np.ascontiguousarray(hu), np.ascontiguousarray(lab), aff


def slice_subtypes(labels: np.ndarray) -> list[set[str]]:
    """Per slice (last axis) of a subtype-coded label volume, the subtypes present, by name."""
    present = {name: (labels == code).any(axis=(0, 1)) for name, code in SUBTYPE_CODE.items()}
    return [{name for name, p in present.items() if p[k]} for k in range(labels.shape[2])]


def _check(layout: str, cases, in_plane, slices) -> tuple[int, int]:
    if layout not in DOMAINS:
        raise ConfigError(f"layout: unknown value {layout!r}; known: {', '.join(DOMAINS)}")
    if isinstance(cases, bool) or not isinstance(cases, (int, np.integer)) or cases < 1:
        raise ConfigError(f"cases: must be an integer >= 1, got {cases!r}")
    if not 16 <= int(in_plane) <= 1024:
        raise ConfigError(f"in_plane: must be in [16, 1024], got {in_plane!r}")
    lo, hi = (slices, slices) if isinstance(slices, (int, np.integer)) else (slices or DOMAINS[layout].slices)
    if not 2 <= lo <= hi <= 512:
        raise ConfigError(f"slices: need 2 <= min <= max <= 512, got {slices!r}")
    return int(lo), int(hi)


def write_phantom(out: str | Path, layout: str, cases: int = 10, seed: int = 0, *, in_plane: int = 512,
                  slices: int | tuple[int, int] | None = None, randomise: dict | None = None) -> Path:
    """Write ``cases`` phantom volumes into ``out`` in ``layout``'s folder structure; return ``out``.

    ``in_plane``: pixels per side (the real datasets are 512); ``slices``: a fixed count or a
    (min, max) range (default: the layout's own range, 24-36); ``randomise``: the per-patient
    randomisation (``phantom.randomise``; None: off).
    """
    lo, hi = _check(layout, cases, in_plane, slices)
    randomise = Randomise.from_config(randomise)
    domain = DOMAINS[layout]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    writer = get_layout(layout).writer(out, np.random.default_rng([seed, 7]))
    for i in range(int(cases)):
        hu, lab, aff = _store(phantom_case(layout, seed, i, in_plane, (lo, hi), randomise=randomise), domain)
        writer.add(i, slice_subtypes(lab))
        if domain.labels == "binary":
            lab = (lab > 0).astype(np.uint8)
        img_p, msk_p = writer.paths(i)
        write_nifti(img_p, hu, aff, dtype=domain.dtype, slope=domain.slope, inter=domain.inter)
        write_nifti(msk_p, lab, aff, dtype=np.uint8)
    writer.finish(int(cases))
    return out

"""``data.phantom.randomise``: per-patient randomisation of the synthetic head CT (off by default).

A model trained on synthesised images transfers to real scans when every property it should not
rely on is drawn wide per training case, so that the real scan is just one more draw (SynthSeg,
``billot2023synthseg``). This group widens what the generator otherwise fixes per scanner layout:
tissue HU per class, blood HU by age, soft-tissue contrast, a smooth bias field, the level and grain
of the noise, pixel size, reconstruction kernel and slice thickness, cupping and beam-hardening
streaks, and heterogeneous bleeds (swirl, fluid-blood level, perihematomal oedema). Absent (None),
the generator draws exactly the volumes it drew before, bit for bit; present, each draw comes from
its own random stream spawned from the case's seed, so one option changes only what it names, and
the anatomy, lesion shapes and labels stay those of the same seed without randomisation.

Ranges are ``[low, high]`` drawn uniformly per volume; ``null`` keeps the scanner layout's own
value. Probabilities are per lesion. ``randomise: {}`` turns on every default below.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np

from ...errors import ConfigError
from ...utils.validate import check_bool, check_keys, check_number

#: per-lesion blood HU by age, (probability, HU range): hyperacute blood before clot retraction reads
#: 40-60 HU, the retracted acute clot 60-90 HU (its attenuation rises with the haematocrit), and blood
#: fades by ~1.5 HU a day into the subacute stage (``parizel2001ich``, ``new1976blood``)
BLOOD_AGE = {"hyperacute": (0.2, (40.0, 60.0)), "acute": (0.65, (60.0, 90.0)), "subacute": (0.15, (38.0, 55.0))}
#: subtypes whose blood is mixed with CSF keep the generator's own (diluted) HU
DILUTED = ("subarachnoid", "intraventricular")


@dataclass(frozen=True)
class Randomise:
    """The option group; every field documents its domain reason and source."""

    # tissue HU per class from published ranges (grey matter 35-45, white matter 20-30, CSF 0-15 HU;
    # ``kalender2011ct``) instead of the generator's narrower ones; bone tables and diploe widened
    # about the generator's own (compact bone reads from ~1000 HU to well above 2000 HU)
    tissue_hu: bool = True
    # per-lesion blood HU by age and haematocrit (``BLOOD_AGE``; ``parizel2001ich``, ``new1976blood``)
    blood_age: bool = True
    # soft-tissue contrast factor in [1 - c, 1 + c] about 30 HU (tube voltage and reconstruction move
    # the HU of soft tissue by several percent between scanners; ``kalender2011ct``); 0: off
    contrast: float = 0.1
    # a smooth additive field of at most this many HU (SynthSeg's bias field, ``billot2023synthseg``;
    # in CT the residual of the scanner's water and beam-hardening calibration, ``barrett2004artifacts``)
    bias_hu: float = 4.0
    # a smooth multiplicative field on the attenuation (HU + 1000) of at most this fraction
    bias_gain: float = 0.005
    # standard deviation of the noise (HU); dose and patient size set it (``kalender2011ct``)
    noise_hu: Any = (2.0, 10.0)
    # grain of the noise (mm): filtered back projection makes CT noise band-pass, not white, with a
    # peak of its noise power spectrum set by the kernel (``boedeker2007nps``)
    noise_grain_mm: Any = (0.3, 1.0)
    # field of view factor (pixel size; the head fills more or less of the slice)
    pixel_scale: Any = (0.9, 1.1)
    # Gaussian reconstruction kernel (mm, in-plane resolution)
    kernel_mm: Any = (0.2, 0.8)
    # slice thickness (mm): partial volume along z (``billot2023synthseg`` draws the resolution too)
    thickness_mm: Any = (2.5, 6.0)
    # beam-hardening cupping at the centre of the head (HU; ``barrett2004artifacts``)
    cupping_hu: Any = (0.0, 15.0)
    # darkest beam-hardening streak inside the head (HU): dark bands between dense bones, the
    # petrous bones of the skull base above all (``barrett2004artifacts``, ``joseph1978bone``)
    streaks_hu: Any = (0.0, 30.0)
    # per intraparenchymal, subdural or epidural bleed: hyperacute "swirl" of unclotted, lower-density
    # blood inside the clot, seen in about a third of acute ICH (``selariu2012swirl``)
    swirl: float = 0.3
    # fluid-blood level: cells settle in the dependent (posterior, supine) part, serum above;
    # uncommon, mostly with coagulopathy (``pfleger1994fluid``)
    fluid_level: float = 0.1
    # perihematomal oedema: a hypodense rim around an intraparenchymal bleed, of 0.3-1x its volume
    # in the first days (``gebel2002edema``)
    oedema: float = 0.7
    # brain brightened beside the bone of the skull base (HU at the bone, [low, high] per patient;
    # null: off, the default, so ``randomise: {}`` draws what it drew before): on a real thick slice the
    # oblique floors of the cranial fossae are averaged into the brain beside them and beam hardening
    # between dense bones adds to it (``barrett2004artifacts``); real brain beside skull-base bone reads
    # brighter than deep brain where the generator has a dark CSF rim (bench/skull_base.py)
    bone_band_hu: Any = None
    # how fast that brightening fades into the brain (mm, e-folding length, [low, high] per patient)
    bone_band_mm: Any = (1.5, 5.0)
    # its strength over the calvarium, as a fraction of the skull base's (thin bone, little hardening)
    bone_band_calvarium: float = 0.2

    def __post_init__(self) -> None:
        name = "data.phantom.randomise"
        for f in ("tissue_hu", "blood_age"):
            check_bool(f"{name}.{f}", getattr(self, f))
        check_number(f"{name}.contrast", self.contrast, 0.0, 0.5)
        check_number(f"{name}.bias_hu", self.bias_hu, 0.0, 50.0)
        check_number(f"{name}.bias_gain", self.bias_gain, 0.0, 0.05)
        for f, lo, hi in (("noise_hu", 0.0, 50.0), ("noise_grain_mm", 0.0, 5.0), ("pixel_scale", 0.5, 2.0),
                          ("kernel_mm", 0.0, 3.0), ("thickness_mm", 0.5, 10.0), ("cupping_hu", 0.0, 100.0),
                          ("streaks_hu", 0.0, 200.0)):
            object.__setattr__(self, f, _range(f"{name}.{f}", getattr(self, f), lo, hi))
        for f, lo, hi in (("bone_band_hu", 0.0, 100.0), ("bone_band_mm", 0.1, 20.0)):
            object.__setattr__(self, f, _range(f"{name}.{f}", getattr(self, f), lo, hi))
        for f in ("swirl", "fluid_level", "oedema", "bone_band_calvarium"):
            check_number(f"{name}.{f}", getattr(self, f), 0.0, 1.0)

    @classmethod
    def from_config(cls, data: Any) -> "Randomise | None":
        """None (off) for None; the group for a mapping (its unknown keys named in one line)."""
        if data is None:
            return None
        if isinstance(data, cls):
            return data
        return cls(**check_keys("data.phantom.randomise", data, [f.name for f in fields(cls)]))


def _range(name: str, value: Any, lo: float, hi: float) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{name}: must be [low, high] or null, got {value!r}")
    a, b = (check_number(name, v, lo, hi) for v in value)
    if a > b:
        raise ConfigError(f"{name}: need low <= high, got {value!r}")
    return (a, b)


def _draw(rng: np.random.Generator, rng_range, default: float) -> float:
    """A uniform draw from ``rng_range`` (always one draw, so later draws do not shift), or ``default``."""
    u = rng.random()
    return default if rng_range is None else rng_range[0] + u * (rng_range[1] - rng_range[0])


@dataclass(frozen=True)
class ScannerDraw:
    """One volume's draws of the scanner side."""

    contrast: float  # factor about 30 HU
    bias_hu: float
    bias_gain: float
    noise_hu: float
    grain_mm: float
    cupping_hu: float
    streaks_hu: float


def vary_patient(rng: np.random.Generator, pat, r: Randomise):
    """The patient with tissue HU drawn from the published ranges (``Randomise.tissue_hu``) and its
    skull-base brightening (``Randomise.bone_band_hu``)."""
    u = rng.random(6)
    if r.bone_band_hu is not None:  # drawn after the tissue draws, so those stay what they were
        pat = dataclasses.replace(pat, bone_band_hu=_draw(rng, r.bone_band_hu, 0.0),
                                  bone_band_mm=_draw(rng, r.bone_band_mm, 3.0), bone_band_calvarium=r.bone_band_calvarium)
    if not r.tissue_hu:
        return pat
    grey = 32.0 + 14.0 * u[0]
    white = min(20.0 + 14.0 * u[1], grey - 4.0)  # grey stays brighter than white
    return dataclasses.replace(pat, grey=grey, white=white, csf=15.0 * u[2], diploe_hu=400.0 + 700.0 * u[3],
                               table_hu=1600.0 + 1200.0 * u[4], scalp_hu=20.0 + 30.0 * u[5])


def vary_domain(rng: np.random.Generator, domain, r: Randomise):
    """The scanner layout with its pixel size, kernel and slice thickness drawn, and the draws of the
    reconstruction: (domain, ScannerDraw)."""
    scale = _draw(rng, r.pixel_scale, 1.0)
    kernel = _draw(rng, r.kernel_mm, domain.kernel_mm)
    thick = _draw(rng, r.thickness_mm, domain.thickness_mm)
    domain = dataclasses.replace(domain, fov_mm=domain.fov_mm * scale, kernel_mm=kernel, thickness_mm=thick)
    c = rng.uniform(-1.0, 1.0)
    draw = ScannerDraw(contrast=1.0 + r.contrast * c, bias_hu=r.bias_hu * rng.random(), bias_gain=r.bias_gain * rng.random(),
                       noise_hu=_draw(rng, r.noise_hu, domain.noise_hu), grain_mm=_draw(rng, r.noise_grain_mm, 0.45),
                       cupping_hu=_draw(rng, r.cupping_hu, domain.cupping_hu), streaks_hu=_draw(rng, r.streaks_hu, 0.0))
    return domain, draw


def blood_hu_by_age(rng: np.random.Generator) -> tuple[str, float]:
    """(age, HU) of one bleed from ``BLOOD_AGE``."""
    names = list(BLOOD_AGE)
    p = np.array([BLOOD_AGE[k][0] for k in names])
    u, v = rng.random(2)
    age = names[min(int(np.searchsorted(np.cumsum(p) / p.sum(), u)), len(names) - 1)]
    lo, hi = BLOOD_AGE[age][1]
    return age, lo + v * (hi - lo)


def gravity_normal(rot: np.ndarray) -> np.ndarray:
    """Unit normal, in atlas mm, of the planes that are horizontal for a supine patient, pointing to
    the dependent side (scanner posterior, -y): ``rot`` maps scanner mm to atlas mm."""
    n = np.linalg.inv(np.asarray(rot, float)).T @ np.array([0.0, -1.0, 0.0])
    return n / max(float(np.linalg.norm(n)), 1e-9)


__all__ = ["BLOOD_AGE", "Randomise", "ScannerDraw", "blood_hu_by_age", "gravity_normal", "vary_domain", "vary_patient"]

"""Synthetic head CT with hemorrhage, built on a real brain atlas, in a real dataset's folder layout.

The real datasets cannot be fetched here, so the pipeline is exercised on synthetic volumes that go
through the same ingestion path: NIfTI files in the Instance2022, BHSD or PhysioNet layout, read
back by ``prepare_dataset``. Synthesising images from anatomical maps with randomised geometry and
intensities is an established way to train models that must transfer to real scans (SynthSeg,
Billot et al., Medical Image Analysis 2023).

By job: ``anatomy`` (the patient's head on the MNI atlas), ``lesions`` (hemorrhage of each subtype,
placed by anatomy), ``scanner`` (each layout's "scanner" and the CT formation), ``volume`` (one
volume, phase by phase), ``writing`` (the dataset folders, through ``ichseg.data.layouts``);
``randomise`` (the ``data.phantom.randomise`` option group, off by default: per-patient tissue HU,
scanner, artefacts and bleeds), with ``artefacts`` (its CT formation: bias field, band-pass noise,
beam hardening) and ``bleeds`` (swirl, fluid-blood level, oedema rim). Everything is determined by
the seed.
"""

from __future__ import annotations

from .anatomy import AIR_HU, F32, _level
from .lesions import BLOOD_HU, SUBTYPE_CODE, VISIBLE_BLOOD_MAX_HU, draw_lesion
from .scanner import DOMAINS, Domain
from .volume import PhantomVolume, make_volume, phantom_case
from .writing import write_phantom

#: bumped whenever the same seed would draw other volumes or labels (names the generated raw folders)
GENERATOR_VERSION = 2

__all__ = [
    "AIR_HU", "BLOOD_HU", "DOMAINS", "Domain", "F32", "GENERATOR_VERSION", "PhantomVolume", "SUBTYPE_CODE",
    "VISIBLE_BLOOD_MAX_HU", "draw_lesion", "make_volume", "phantom_case", "write_phantom",
]

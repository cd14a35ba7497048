"""The on-disk format of a study's stamps, shared by the study driver (which writes them) and the
report (which refuses results whose stamps no longer match).

Under ``results/<profile>/``: ``study.json`` (``STUDY_FILE``: the run set and every stage's stamp,
plus ``stamp``, the hash of all of that: ``study_stamp``), ``stamps/<stage>.json``
(``STAMPS_DIR``: ``{"stamp", "status", ...}`` per stage: ``read_stamp``) and ``timings.json``
(``TIMINGS_FILE``).
"""

from __future__ import annotations

import json
from pathlib import Path

from .hashing import config_hash

STUDY_FILE = "study.json"
STAMPS_DIR = "stamps"
TIMINGS_FILE = "timings.json"


def study_stamp(manifest: dict) -> str:
    """The hash identifying a run set: everything in ``study.json`` except the stamp itself."""
    return config_hash({k: v for k, v in manifest.items() if k not in ("stamp", "created", "environment")}, length=16)


def read_stamp(results_dir: str | Path, stage: str) -> dict:
    """A stage's stamp record (``{}`` when the stage has none yet)."""
    path = Path(results_dir) / STAMPS_DIR / f"{stage}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


__all__ = ["STAMPS_DIR", "STUDY_FILE", "TIMINGS_FILE", "read_stamp", "study_stamp"]

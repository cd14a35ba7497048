"""``ichseg study``: the whole study as a sequence of papermill-executed notebooks (see ``driver``)."""

from .driver import Stage, Study, StudyFailed, StudySpec, code_hash, format_timings, parse_overrides, run_study
from .profiles import METHODS, STUDY_PROFILES, study_settings

__all__ = [
    "METHODS",
    "STUDY_PROFILES",
    "Stage",
    "Study",
    "StudyFailed",
    "StudySpec",
    "code_hash",
    "format_timings",
    "parse_overrides",
    "run_study",
    "study_settings",
]

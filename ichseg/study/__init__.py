"""``ichseg study``: the whole study as a sequence of papermill-executed notebooks (see ``driver``)."""

from .driver import Stage, Study, StudyFailed, StudySpec, code_hash, format_timings, parse_overrides, run_study
from .profiles import STUDY_PROFILES, VARIANTS, study_settings

__all__ = [
    "STUDY_PROFILES",
    "Stage",
    "Study",
    "StudyFailed",
    "StudySpec",
    "VARIANTS",
    "code_hash",
    "format_timings",
    "parse_overrides",
    "run_study",
    "study_settings",
]

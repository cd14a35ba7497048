"""``ichseg study``: the whole study as a sequence of papermill-executed notebooks.

``planning`` (spec + profile -> run set and stages), ``stamps`` (what each stage was made from),
``execution`` (one stage's notebook), ``scheduling`` (parallel jobs, critical path, timing table)
and ``driver`` (``StudyPass``: one pass over them) on top.
"""

from .driver import StudyPass, run_study
from .execution import StudyFailed
from .planning import Stage, StudySpec, parse_overrides
from .profiles import METHODS, study_settings
from .scheduling import format_timings
from .stamps import code_hash

__all__ = [
    "METHODS",
    "Stage",
    "StudyFailed",
    "StudyPass",
    "StudySpec",
    "code_hash",
    "format_timings",
    "parse_overrides",
    "run_study",
    "study_settings",
]

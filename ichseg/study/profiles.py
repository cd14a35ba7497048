"""Study-level settings of a profile: which methods and seeds a full pass runs.

They live in the profile's own YAML file (``ichseg/profiles/<name>.yaml``, section ``study``,
validated by ``ichseg.engine.config.StudyConfig`` when a run config is resolved), beside the
settings of each run, so one file says all a profile does. The section never enters a run's
config: it says what the *study* runs, not how one run trains. Command-line options of
``ichseg study`` override it.
"""

from __future__ import annotations

from pathlib import Path

# every method of the study, in the tables' order (the Table 2 variants, then the Table 1
# baselines): the engine's one list, so the study can run no method the engine does not know
from ..engine.config import METHODS, load_profile, profile_source, study_config
from ..errors import ConfigError


def study_settings(profile: str | Path) -> dict:
    """Methods, seeds and study-wide overrides of a profile (a name or a YAML file).

    ``method_seeds`` (method -> seeds) replaces ``seeds`` for the methods it names;
    ``method_overrides`` (method -> ["key=value"]) adds to ``overrides`` for the methods it names,
    as ``--set METHOD:KEY=VALUE`` does (which comes after it). A wrong setting fails in one line
    naming the profile file and the key."""
    try:
        return study_config(load_profile(profile)).to_dict()
    except ConfigError as exc:
        raise ConfigError(f"{profile_source(profile)}: {exc}") from None


__all__ = ["METHODS", "study_settings"]

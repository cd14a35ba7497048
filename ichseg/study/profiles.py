"""Study-level settings per profile: which methods and seeds a full pass runs.

A pass trains and evaluates the Table 2 variants (diffusion) and the Table 1 baselines (U-Net,
TransUNet, U-KAN, nnU-Net); MedSegDiff-v2 and the full model are in both tables.

These live here, not in the engine's profile YAML (``ichseg/profiles/*.yaml``), because they say
what the *study* runs, not how one run trains; the engine rejects unknown profile sections.
Command-line options of ``ichseg study`` override them.
"""

from __future__ import annotations

# every method of the study, in the tables' order (the Table 2 variants, then the Table 1
# baselines): the engine's one list, so the study can run no method the engine does not know
from ..engine.config import METHODS

STUDY_PROFILES: dict[str, dict] = {
    # phantom data on a 2-core CPU, inside `make book`'s budget: one seed
    "smoke": {"methods": list(METHODS), "seeds": [0], "overrides": []},
    # one GPU, ~20 min per run: three seeds so tables carry 95% intervals and curves bands
    "gpu": {"methods": list(METHODS), "seeds": [0, 1, 2], "overrides": []},
    # the paper's recipe; the paper reports single runs
    "paper": {"methods": list(METHODS), "seeds": [0], "overrides": []},
    # the 2-core CPU evidence profile: three seeds for the two models both tables compare (the
    # MedSegDiff-v2 baseline and the full model), one for the others (the budget's limit). The two
    # variants with the ResNet18 branch, which trains from scratch here (no ImageNet weights
    # offline), get twice the iterations: at 1,500 their validation lesion-slice Dice was still
    # rising while every other variant's was flat from ~750 (measured; the profile's comments).
    # Each method is trained until its curve flattens; Fig. 1 plots each over its own iterations.
    "cpu": {"methods": list(METHODS), "seeds": [0], "overrides": [],
            "method_seeds": {"medsegdiffv2": [0, 1, 2], "full": [0, 1, 2]},
            "method_overrides": {"resnet18": ["train.iterations=3000"], "full": ["train.iterations=3000"]}},
}

DEFAULT = {"methods": list(METHODS), "seeds": [0], "overrides": []}


def study_settings(profile: str) -> dict:
    """Methods, seeds and study-wide overrides of a profile (defaults for a profile file).

    ``method_seeds`` (method -> seeds) replaces ``seeds`` for the methods it names;
    ``method_overrides`` (method -> ["key=value"]) adds to ``overrides`` for the methods it names,
    as ``--set METHOD:KEY=VALUE`` does (which comes after it)."""
    settings = STUDY_PROFILES.get(profile, DEFAULT)
    per_method = ("method_seeds", "method_overrides")
    out = {k: list(v) for k, v in settings.items() if k not in per_method}
    for key in per_method:
        out[key] = {m: list(v) for m, v in settings.get(key, {}).items()}
    return out


__all__ = ["DEFAULT", "METHODS", "STUDY_PROFILES", "study_settings"]

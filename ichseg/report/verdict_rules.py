"""How the evidence page's verdict table was decided, in words, for the pass it shows: the
pre-registered rule of ``verdict_plan`` when the pass has a plan, else the unadjusted checks of
``claims.comparison_claims``. Every number (family size, margin, threshold) is read from the plan."""

from __future__ import annotations

from .preregistration import ALPHA
from .verdict_plan import plan_comparisons, plan_margin

#: the paper's convergence claim, as §4.3 states it
_CONVERGENCE = ("§4.3: the full model reaches 82.59% Dice at 35K iterations while the baseline "
                "stabilises after 55K")


def _planned(profile: str, plan: dict) -> str:
    m = len(plan_comparisons(plan))
    margin = 100 * plan_margin(plan)
    threshold = float(plan.get("convergence_threshold", 0.5))
    return (
        f"Each row is a claim of the `{profile}` plan, written before the first test metric ({m} "
        f"comparisons and convergence); each verdict is computed from the `{profile}` runs. A difference "
        "between two models is measured on the same test patients on both primary metrics, Dice at 0.5 "
        "on the lesion slices and the 3D Dice of each volume with a lesion, neither of which an all-empty "
        "prediction can game; its 95% interval comes from a bootstrap that resamples test patients and, "
        "within each resample, each model's training seeds, and its p-value is Holm-adjusted across the "
        f"{m} comparisons (family-wise level {ALPHA:g}; `ichseg.report.verdict_plan`). A claimed gain "
        "is **supported** when the adjusted test rejects *no difference* with a gain, **contradicted** "
        f"when it rejects it with a loss or when the family's interval lies below {margin:g} points (no "
        f"gain that matters); a claimed *no difference* is supported when that interval lies within "
        f"±{margin:g} points. A comparison is decided only when both metrics agree, else it **cannot "
        "decide**; one the results lack reads **not run** and still counts in the family. "
        f"**Convergence** ({_CONVERGENCE}) compares the validation iterations each run takes to reach a "
        f"lesion-slice Dice of {threshold:g}: **supports** only when every seed of the full model gets "
        "there before every seed of the baseline."
    )


def _unregistered(profile: str) -> str:
    return (
        f"Each claim is the paper's; each verdict is computed from the `{profile}` runs. A difference "
        "between two models is measured on the same test slices, with a 95% interval from a bootstrap "
        "that resamples test patients and, within each resample, each model's training seeds "
        "(`ichseg.report.claims`): the verdict is **supports** when the interval lies on the side the "
        "paper claims, **contradicts** when it lies on the other side, and **cannot decide** when it "
        "contains zero. Two scores are reported: Dice at 0.5 on the lesion slices, which an all-empty "
        f"prediction cannot game, and the paper's protocol. **Convergence** ({_CONVERGENCE}) compares "
        "the iterations each run takes to reach 90% of its final validation score: **supports** only "
        "when every seed of the full model gets there before every seed of the baseline."
    )


def rules_markdown(profile: str, plan: dict | None) -> str:
    """The paragraph under the verdict table: how its verdicts were decided, and what *cannot decide* means."""
    text = _planned(profile, plan) if plan is not None else _unregistered(profile)
    return (f"{text} A *cannot decide* is an answer: at this budget and with these seeds the difference is "
            "smaller than the spread between seeds and patients.")


__all__ = ["rules_markdown"]

"""The answer first: one computed paragraph saying what a profile's runs say about the paper's claims.

``verdict_markdown`` is what the book's first pages open with: the scale of the runs, how many of
the paper's claims the runs support, contradict or cannot decide (``ichseg.report.claims``), and the
headline numbers with their intervals beside the paper's. A pass with a pre-registration is held
to its plan's claims instead (``ichseg.report.verdict_plan``); ``headline_profile`` picks the profile
the first pages answer with. ``comparability`` is the one sentence
every page uses to say how far a profile's numbers can be compared with the paper's
(``ichseg.report.scale``).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pandas as pd

from .claims import CONTRADICTS, SUPPORTS, UNDECIDED, comparison_claims, convergence_claim
from .deviations import read_plan
from .paper import dataset_title, paper_numbers
from .scale import budget_text, comparability, scale_facts
from .stats import mean_ci
from .verdict_plan import planned_sentence, planned_verdicts

FULL, BASELINE, TRAIN_DATASET = "full", "medsegdiffv2", "instance2022"
#: the score the headline counts: Dice at 0.5 on lesion slices, which no trivial predictor games
HEADLINE_SCORE = "lesion-slice Dice"


def claim_verdicts(slices: pd.DataFrame, curves: pd.DataFrame, *, n_boot: int = 2000,
                   plan: dict | None = None) -> pd.DataFrame:
    """Every claim checked, one row each: ``claim``, ``comparison``, ``paper`` (the paper's number)
    and, per score, our difference with its interval and the verdict. The ablation and
    cross-dataset rows come from ``comparison_claims``, the convergence row from
    ``convergence_claim`` (its per-seed iterations in place of a difference). Given a pass's
    pre-registration ``plan``: exactly its family instead (``verdict_plan.planned_verdicts``)."""
    if plan is not None:
        return planned_verdicts(slices, curves, plan, n_boot=n_boot)
    comp = comparison_claims(slices, n_boot=n_boot)
    rows = []
    for _, r in comp.iterrows():
        row = {"claim": r["claim"], "comparison": r["comparison"], "paper": _paper_delta(r["paper Δ Dice (points)"])}
        for label in ("lesion-slice Dice", "paper-protocol Dice"):
            row[f"ours: {label}"] = r[f"ours Δ {label} (points, 95% CI)"]
            row[f"verdict: {label}"] = r[f"verdict ({label})"]
        rows.append(row)
    conv = convergence_claim(curves)
    for label in ("lesion-slice Dice", "paper-protocol Dice"):
        hit = conv[conv["comparison"].str.contains(label)] if len(conv) else conv
        if len(hit):
            r = hit.iloc[0]
            its = (f"iterations to 90%: full {r['ours: full model (per seed)']}; "
                   f"baseline {r['ours: MedSegDiffv2 (per seed)']}")
            key = next((i for i, x in enumerate(rows) if x["claim"] == "(b) convergence"), None)
            if key is None:
                rows.append({"claim": "(b) convergence", "comparison": "full model reaches 90% of its final "
                             "validation score before MedSegDiffv2", "paper": r["paper"]})
                key = len(rows) - 1
            rows[key][f"ours: {label}"] = its
            rows[key][f"verdict: {label}"] = r["verdict"]
    return pd.DataFrame(rows)


def verdicts_shown(verdicts: pd.DataFrame) -> pd.DataFrame:
    """``claim_verdicts`` as the evidence page shows it: indexed by claim and comparison, without the
    row id and the raw p-values (the intervals carry them), the verdicts first, before the numbers
    behind them (the table is wide, and the verdict is what a reader looks for)."""
    shown = verdicts.drop(columns=[c for c in verdicts if c == "id" or c.startswith(("p: ", "Holm p: "))])
    first = [c for c in shown if c.startswith("verdict")]
    return shown[first + [c for c in shown if c not in first]].set_index(["claim", "comparison"])


def _paper_delta(text: str) -> str:
    return "–" if text in ("–", None) else f"{text} points"


def claim_counts(verdicts: pd.DataFrame, score: str = HEADLINE_SCORE) -> Counter:
    """How many claims each verdict got on ``score`` (claims a profile did not run are left out)."""
    col = f"verdict: {score}"
    values = verdicts[col].dropna() if col in verdicts else pd.Series(dtype=str)
    return Counter(v for v in values if v in (SUPPORTS, CONTRADICTS, UNDECIDED))


def _counts_text(c: Counter) -> str:
    return (f"supports **{c[SUPPORTS]}**, contradicts **{c[CONTRADICTS]}** and cannot decide "
            f"**{c[UNDECIDED]}**")


def _mean_ci_text(values, scale: float = 100.0) -> str:
    m, h, n = mean_ci(values)
    if not n:
        return "–"
    if n > 1 and math.isfinite(h):
        return f"{scale * m:.1f} ± {scale * h:.1f}% ({n} seeds)"
    return f"{scale * m:.1f}% ({n} seed{'s' * (n > 1)})"  # one seed: no interval to show


def headline_sentence(evals: pd.DataFrame, dataset: str = TRAIN_DATASET) -> str:
    """Full model and baseline on ``dataset``'s test split: lesion-slice Dice and paper-protocol Dice
    (mean ± 95% t-interval over seeds), the paper's Dice beside, and the all-empty reference."""
    p = paper_numbers()["table1"].get(dataset, {})
    sel = evals[evals["dataset"] == dataset]
    pick = lambda m, k: sel.loc[sel["method"] == m, k]  # noqa: E731
    empty = sel["all_empty_dice"].dropna()
    empty_text = f"; an all-empty prediction scores {100 * float(empty.iloc[0]):.1f}% there" if len(empty) else ""
    paper = lambda key: f"{p[key]['dice']:.1f}%" if key in p else "–"  # noqa: E731
    return (f"On the held-out {dataset_title(dataset)} test patients the full model's lesion-slice Dice is "
            f"**{_mean_ci_text(pick(FULL, 'positive_slice_dice'))}** and MedSegDiffv2's "
            f"**{_mean_ci_text(pick(BASELINE, 'positive_slice_dice'))}** (the paper reports no lesion-level score). "
            f"Under the paper's protocol the full model scores {_mean_ci_text(pick(FULL, 'dice'))} "
            f"(paper: {paper('ours')}) and MedSegDiffv2 {_mean_ci_text(pick(BASELINE, 'dice'))} "
            f"(paper: {paper('medsegdiffv2')}){empty_text}.")


def verdict_markdown(results_dir: str | Path) -> str:
    """The verdict paragraph of one committed profile, or a line saying why there is none. A
    profile with a pre-registration (``preregistration.yaml``) is answered by its plan's claims."""
    from . import collect

    results_dir = Path(results_dir)
    profile = results_dir.name
    try:
        study = collect.load_study(results_dir)
    except collect.StaleResultsError as exc:
        return f"**No verdict:** the `{profile}` results are not consistent ({str(exc).splitlines()[0]})."
    evals, curves, slices = collect.evaluation_table(study), collect.curves_table(study), collect.slices_table(study)
    facts = scale_facts(profile, study)
    plan = read_plan(results_dir)
    verdicts = claim_verdicts(slices, curves, plan=plan)
    methods, runs = evals["method"].nunique(), len(study.runs)
    runs_text = (f"{methods} methods, {runs} training runs, {'real' if facts['real_data'] else 'synthetic'} CT at "
                 f"{facts['size']}², {budget_text(facts['iterations'])}")
    if plan is not None:
        return "\n\n".join([planned_sentence(profile, plan, verdicts, runs_text), headline_sentence(evals),
                             comparability(facts)])
    scale = (f"**Verdict of the `{profile}` profile** ({methods} methods, {runs} training runs, "
             f"{'real' if facts['real_data'] else 'synthetic'} CT at {facts['size']}², {budget_text(facts['iterations'])}). "
             f"Of the paper's {len(verdicts)} claims checked, the lesion-slice Dice {_counts_text(claim_counts(verdicts))}; "
             f"the paper-protocol Dice {_counts_text(claim_counts(verdicts, 'paper-protocol Dice'))}.")
    return "\n\n".join([scale, headline_sentence(evals), comparability(facts)])


def headline_profile(results_root: str | Path, preferred: str = "evidence", fallback: str = "cpu") -> str:
    """The profile the book's first pages answer with: ``preferred`` (the pre-registered evidence
    pass) when its results are consistent (``collect.load_study``) and it has a pre-registration,
    else ``fallback``."""
    from . import collect
    from ..errors import IchsegError

    d = Path(results_root) / preferred
    try:
        if read_plan(d) is None:
            return fallback
        collect.load_study(d)
    except IchsegError:
        return fallback
    return preferred


def progress_markdown(results_root: str | Path, preferred: str = "evidence", fallback: str = "cpu") -> str:
    """While a pre-registered ``preferred`` pass is committed only in part, a line saying how far it
    has come and that the answer is ``fallback``'s meanwhile; "" once it answers (or has no plan)."""
    from .deviations import progress

    d = Path(results_root) / preferred
    done = progress(d)
    if done is None or headline_profile(results_root, preferred, fallback) == preferred:
        return ""
    return (f"**The pre-registered `{preferred}` pass is under way:** {done['trained']} of its {done['runs']} training "
            f"runs and {done['evaluated']} of their test evaluations are committed. Until it is complete the "
            f"answer here comes from the `{fallback}` runs, which were not pre-registered.")


__all__ = ["HEADLINE_SCORE", "claim_counts", "claim_verdicts", "headline_profile", "headline_sentence",
           "profiles_table", "progress_markdown", "verdict_markdown", "verdicts_shown"]


def profiles_table(results_root: str | Path, profiles=("smoke", "cpu", "evidence", "gpu", "paper")) -> pd.DataFrame:
    """One row per profile: what its runs are (from committed results when consistent, else the
    profile file), whether results are committed, and the comparability sentence."""
    from . import collect

    rows = []
    for name in profiles:
        study = None
        d = Path(results_root) / name
        if (d / collect.STUDY_FILE).is_file():
            try:
                study = collect.load_study(d)
            except collect.StaleResultsError:
                study = None
        facts = scale_facts(name, study)
        rows.append({"profile": f"`{name}`",
                     "runs": (f"{'real' if facts['real_data'] else 'synthetic'} CT, {facts['size']}², "
                              f"{budget_text(facts['iterations'])}, {facts['amp']}"),
                     "results in this book": "✓" if study is not None else "–",
                     "comparable to the paper?": comparability(facts)})
    return pd.DataFrame(rows)

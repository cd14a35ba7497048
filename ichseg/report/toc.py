"""``ichseg report toc``: the book's table of contents with one results section per profile on disk.

The hand-written ``book/_toc.yml`` lists the prose pages and one entry ``file: results`` (the
results chapter). This step copies it to ``book/_toc.generated.yml`` (not committed) and gives
that chapter one section per profile found under ``results/`` (reached from the book through the
committed symlink ``book/results -> ../results``): the profile's executed results notebook, with
its timing page (generated from ``timings.json`` and the trainings' ``run.json`` into
``book/generated/``) and one *notebooks* entry below it that holds its executed prep/train/evaluate
notebooks, so the sidebar shows them as one collapsed group.

A profile is listed only when its results are consistent: ``study.json`` and every stage stamp
match (``load_study``), and the results notebook was executed, without an exception, for that very
run set. Anything else is reported and left out, so the book never renders stale numbers (a prose
page that cites a left-out profile then fails the ``-W`` build on the missing glue key).
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import yaml

from ..utils import atomic_write_text, method_of, methods_of
from .collect import STUDY_FILE, StaleResultsError, load_study, read_timings
from .tables import format_value, timings_table

PROFILE_ORDER = ("evidence", "paper", "gpu", "cpu", "smoke")  # the pre-registered pass first: it is the answer
RESULTS_ENTRY = "results"


def profile_dirs(results_root: Path) -> list[Path]:
    dirs = [d for d in results_root.iterdir() if d.is_dir() and (d / STUDY_FILE).is_file()] if results_root.is_dir() else []
    rank = {p: i for i, p in enumerate(PROFILE_ORDER)}
    return sorted(dirs, key=lambda d: (rank.get(d.name, len(rank)), d.name))


def check_profile(results_dir: Path) -> str | None:
    """None when the profile's rendered results are consistent, else the reason they are not."""
    nb_path = results_dir / "results.ipynb"
    if not nb_path.is_file():
        return f"{nb_path}: missing (the study did not reach the results stage)"
    try:
        study = load_study(results_dir)
    except StaleResultsError as exc:
        return str(exc)
    meta = json.loads(nb_path.read_text()).get("metadata", {}).get("papermill", {})
    if meta.get("exception"):
        return f"{nb_path}: its execution failed"
    if meta.get("parameters", {}).get("study_stamp") != study.manifest["stamp"]:
        return f"{nb_path}: was executed for run set {meta.get('parameters', {}).get('study_stamp')}, not the current {study.manifest['stamp']}"
    return None


def train_seconds(results_dir: Path) -> dict[str, float]:
    """train-<run> stage id -> the training's own wall time (``runs/<run>/run.json``)."""
    out = {}
    for path in sorted((results_dir / "runs").glob("*/run.json")):
        try:
            wall = json.loads(path.read_text()).get("wall_time_s")
        except ValueError:
            continue
        if wall is not None:
            out[f"train-{path.parent.name}"] = float(wall)
    return out


def timings_page(results_dir: Path, profile: str) -> str | None:
    timings = read_timings(results_dir)
    if not timings:
        return None
    table = timings_table(timings, train_seconds(results_dir))
    cols = list(table.columns)
    lines = [f"# Timings: {profile} profile", "",
             f"Wall-clock seconds of each stage of the `{profile}` profile ({timings.get('cpu_count')} CPU cores "
             f"visible, {timings.get('jobs')} stage(s) at a time). *When last run* is the time the stage took "
             "when it ran: for a training, the wall time its `run.json` records (the whole training, also "
             "when it was resumed); *this pass* is 0 for a stage the last pass did not need to run.", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in table.iterrows():
        # seconds always with one decimal, so the column reads alike
        lines.append("| " + " | ".join(f"{v:,.1f}" if isinstance(v, float) and v == v else format_value(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def run_notebooks(results_dir: Path, study: dict, profile: str) -> list[tuple[Path, str]]:
    """(notebook, title) of a profile's executed notebooks: data preparation, then the run set's
    training and evaluation notebooks in its order (Table 2 order, then seeds); leftovers of runs
    no longer in the run set are not shown."""
    nb_dir = results_dir / "notebooks"
    out = []
    for ds in dict.fromkeys([study.get("train_dataset"), *study["datasets"]]):
        nb = nb_dir / f"prep-{ds}.ipynb"
        if ds and nb.is_file():
            out.append((nb, f"Data preparation: {ds} ({profile})"))
    for run in study["runs"]:
        rid = f"{method_of(run)}-s{run['seed']}"
        for prefix, label in (("train-", "Training"), ("evaluate-", "Evaluation")):
            nb = nb_dir / f"{prefix}{rid}.ipynb"
            if nb.is_file():
                out.append((nb, f"{label}: {rid} ({profile})"))
    return out


def profile_entry(book: Path, results_dir: Path, generated: Path) -> dict:
    study = json.loads((results_dir / STUDY_FILE).read_text())
    profile = results_dir.name
    rel = lambda p: p.relative_to(book).with_suffix("").as_posix()  # noqa: E731
    sections = []
    page = timings_page(results_dir, profile)
    if page is not None:
        target = generated / profile / "timings.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_text() != page:
            atomic_write_text(target, page)
        sections.append({"file": rel(target), "title": f"Timings ({profile})"})
    notebooks = run_notebooks(results_dir, study, profile)
    if notebooks:
        # every executed notebook under one entry, so the sidebar shows one line per profile for them
        target = generated / profile / "notebooks.md"
        page = (f"# Notebooks: {profile} profile\n\nEvery notebook the `{profile}` pass executed, as it ran: data "
                "preparation, then one training and one evaluation notebook per method and seed.\n")
        if not target.is_file() or target.read_text() != page:
            atomic_write_text(target, page)
        sections.append({"file": rel(target), "title": f"Notebooks ({profile})",
                         "sections": [{"file": rel(nb), "title": t} for nb, t in notebooks]})
    seeds = study["seeds"]
    title = (f"Results: {profile} profile ({len(methods_of(study))} methods × {len(seeds)} "
             f"seed{'s' if len(seeds) > 1 else ''})")
    return {"file": rel(results_dir / "results.ipynb"), "title": title, "sections": sections}


def generate_toc(book: Path, out: Path | None = None, log=print) -> tuple[Path, list[str]]:
    """Write the generated toc; returns (its path, the profiles listed)."""
    book = Path(book)
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    results_root = book / "results"
    generated = book / "generated"
    entries, listed = [], []
    for d in profile_dirs(results_root):
        problem = check_profile(d)
        if problem:
            log(f"report toc: leaving out profile {d.name}: {problem}")
            continue
        entries.append(profile_entry(book, d, generated))
        listed.append(d.name)
    new = copy.deepcopy(toc)
    chapters = new.get("chapters") or [c for part in new.get("parts", []) for c in part.get("chapters", [])]
    target = next((c for c in chapters if c.get("file") == RESULTS_ENTRY), None)
    if target is None:
        raise ValueError(f"{book / '_toc.yml'}: no chapter 'file: {RESULTS_ENTRY}' to hang the results under")
    if entries:
        target["sections"] = list(target.get("sections") or []) + entries
        # listed on the results page itself, not only in the navigation
        target["options"] = {"hidden": False, "maxdepth": 2, "titlesonly": True, **(target.get("options") or {})}
    out = Path(out) if out else book / "_toc.generated.yml"
    text = "# Generated by `ichseg report toc` from _toc.yml and the results on disk; do not edit.\n"
    text += yaml.safe_dump(new, sort_keys=False, allow_unicode=True)
    if not out.is_file() or out.read_text() != text:
        atomic_write_text(out, text)
    log(f"report toc: {out} lists results of {', '.join(listed) or 'no profile'}")
    return out, listed


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--book", type=Path, default=Path("book"), help="the book's source folder")
    p.add_argument("--out", type=Path, default=None, help="generated toc (default BOOK/_toc.generated.yml)")
    p.add_argument("--require", nargs="*", default=[], metavar="PROFILE",
                   help="fail unless these profiles' results are listed (consistent and complete)")
    p.add_argument("--require-any", action="store_true",
                   help="fail unless at least one profile's results are listed (a book built from committed results only)")


def run(args: argparse.Namespace) -> int:
    _, listed = generate_toc(args.book, args.out)
    missing = [p for p in args.require if p not in listed]
    if missing:
        raise StaleResultsError(f"no consistent results for profile(s) {', '.join(missing)}: run `ichseg study --profile {missing[0]}`")
    if args.require_any and not listed:
        raise StaleResultsError(f"{args.book / 'results'}: no profile has consistent results; run `ichseg study --profile "
                                "PROFILE` and commit results/PROFILE")
    return 0

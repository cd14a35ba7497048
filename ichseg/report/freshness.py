"""Is a committed profile's code still this book's code? The commits its runs were made at, and
the library files that changed since, for the notice on the results page.

Committed results (e.g. the ``cpu`` profile, hours of training) stay in the book after the code
moves on; their numbers are those of the commit recorded in every ``run.json``. This module names
that commit and lists, by part of the code, what changed between it and the checkout the book is
built from (committed and uncommitted changes), so a reader knows whether the numbers still
describe the code they are reading.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

#: the code that makes the numbers: the library, the study's notebooks, the data-prep notebooks
CODE_PATHS = ("ichseg", "book/notebooks", "data_prep")


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout


def _commit(record) -> str:
    return str((record or {}).get("environment", {}).get("git_commit") or "unknown")


def trained_commits(study) -> list[str]:
    """The distinct commits the study's runs were trained at, in run order (``-dirty`` kept)."""
    return list(dict.fromkeys(_commit(run.get("info")) for run in study.runs))


def evaluated_commits(study) -> list[str]:
    """The distinct commits the runs' evaluations were made at (after ``ichseg study
    --keep-trained`` they are later than the trainings')."""
    return list(dict.fromkeys(_commit(m) for run in study.runs for m in (run.get("metrics") or {}).values()))


def run_commits(study) -> list[str]:
    """Every distinct commit that made the study's numbers: trainings, then evaluations."""
    return list(dict.fromkeys(trained_commits(study) + evaluated_commits(study)))


def changed_files(commit: str, root: str | Path = ".", paths=CODE_PATHS) -> list[str] | None:
    """Files under ``paths`` that differ between ``commit`` and the working tree of ``root``
    (committed or not); None when git or the commit is not available."""
    root = Path(root)
    sha = commit.removesuffix("-dirty")
    if _git(root, "cat-file", "-e", f"{sha}^{{commit}}") is None:
        return None
    out = _git(root, "diff", "--name-only", sha, "--", *paths)
    return None if out is None else sorted(set(out.split()))


def part_of(path: str) -> str:
    """``ichseg/models/unet.py`` -> ``ichseg.models``; ``book/notebooks/x.ipynb`` -> ``book/notebooks``."""
    parts = Path(path).parts
    if parts[0] == "ichseg":
        return "ichseg" if len(parts) == 2 else f"ichseg.{parts[1]}"
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


def freshness(study, root: str | Path = ".") -> dict:
    """{"commits", "head", "changed": {commit: [files] | None}, "parts": Counter, "dirty": bool, "current": bool}."""
    root = Path(root)
    head = (_git(root, "rev-parse", "HEAD") or "").strip() or None
    commits = run_commits(study)
    changed = {c: (None if c == "unknown" else changed_files(c, root)) for c in commits}
    files = sorted({f for fs in changed.values() if fs for f in fs})
    dirty = any(c.endswith("-dirty") for c in commits)
    return {"commits": commits, "head": head, "changed": changed, "files": files,
            "parts": Counter(part_of(f) for f in files), "dirty": dirty,
            "current": all(fs == [] for fs in changed.values()) and not dirty}


def freshness_notice(study, root: str | Path = ".") -> str:
    """A Markdown paragraph: made by this code, or what changed since (by part of the code)."""
    f = freshness(study, root)
    def names(commits):
        return ", ".join(f"`{c[:12]}{'-dirty' if c.endswith('-dirty') else ''}`" for c in commits)

    made = names(f["commits"])
    trained, evaluated = trained_commits(study), evaluated_commits(study)
    if evaluated and set(evaluated) != set(trained):
        made = f"{names(trained)} (trainings) and {names(evaluated)} (evaluations)"
    head = f"`{f['head'][:12]}`" if f["head"] else "an unknown commit"
    if f["current"]:
        return (f"The `{study.profile}` results were made by the code of this build (runs at {made}; "
                f"no change since under {', '.join(f'`{p}`' for p in CODE_PATHS)}).")
    unknown = [c for c, fs in f["changed"].items() if fs is None]
    text = f"**The `{study.profile}` results were made at commit {made}; this book is built at {head}.** "
    if unknown:
        text += (f"Commit {', '.join(f'`{c[:12]}`' for c in unknown)} is not in this checkout's history (a shallow "
                 "clone?), so what changed since cannot be listed here. ")
    if f["files"]:
        parts = ", ".join(f"`{p}` ({n} file{'s' * (n > 1)})" for p, n in sorted(f["parts"].items()))
        text += (f"The code has changed since then: {parts}. The numbers below are those of the recorded commit; "
                 f"`ichseg study --profile {study.profile}` remakes the stages whose inputs changed.")
    if f["dirty"]:
        text += " Some runs were made from a working tree with uncommitted changes (`-dirty`)."
    return text


__all__ = ["CODE_PATHS", "changed_files", "evaluated_commits", "freshness", "freshness_notice", "part_of", "run_commits",
           "trained_commits"]

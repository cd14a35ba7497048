"""The repository's text stands on its own: no pointer to an issue tracker or to notes that a
reader of the repository does not have. A reason is stated where it is used, or a publication is
cited (book/references.bib); the paper's own sections ("paper §4.1") are citations and allowed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".yaml", ".yml", ".toml", ".txt", ".cfg", ".ini", ".bib", ".sh", ".json"}
TEXT_NAMES = {"Makefile", "run", ".importlinter", ".gitignore"}

# pieces joined so that this file does not match itself
_NOTES = "reference" + r"\s+notes"
POINTER = re.compile(
    "|".join([
        _NOTES,                      # "reference notes", "(reference notes §3)"
        r"\bnotes\s*§\s*\d",         # "notes §1"
        r"\bissues?\s+#?\d+",        # "issue 7", "issues 3 and 4", "issue #12"
        r"\bissue\s+#",              # "issue #"
        r"\(#\d+\)",                 # "(#12)"
    ]),
    re.IGNORECASE,
)


def find_pointers(text: str) -> list[str]:
    """Every pointer to an issue or to outside notes in ``text``, with its line number."""
    return [f"{n}: {line.strip()[:120]}" for n, line in enumerate(text.splitlines(), 1) if POINTER.search(line)]


def tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    files = [ROOT / p for p in out.decode().split("\0") if p]
    return [p for p in files if p.is_file() and (p.suffix in TEXT_SUFFIXES or p.name in TEXT_NAMES)]


@pytest.mark.parametrize("text, hits", [
    ("as the paper says (paper §4.1)", 0),
    ("sizes of the MedSegDiff code (Ho et al. 2020 §3.2)", 0),
    ("see the " + "reference notes §3", 1),
    ("(" + "reference notes)", 1),
    ("trained from scratch (" + "notes §1)", 1),
    ("Table 1 baselines (" + "issue 7): official", 1),
    ("fixed in " + "issue #12", 1),
    ("see " + "issues 3 and 4", 1),
    ("a test\nfor (" + "#41)\nlast", 1),
])
def test_pointer_pattern(text, hits):
    assert len(find_pointers(text)) == hits


def test_no_pointers_outside_the_repository():
    files = tracked_text_files()
    assert any(p.name == "cli.py" for p in files)  # the listing really sees the package
    found = []
    for path in files:
        if path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found += [f"{path.relative_to(ROOT)}:{hit}" for hit in find_pointers(text)]
    assert not found, "state the reason or cite book/references.bib instead of:\n" + "\n".join(found)

"""The book's prose pages: short enough to read (≤ 1,500 words of prose each, the method page
excepted), no page narrating the project's own history, the answer first on the intro and results
pages, and the sidebar's generated groups in place."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

BOOK = Path(__file__).resolve().parents[1] / "book"
PAGES = sorted(BOOK.glob("*.md"))
LIMIT, EXEMPT = 1500, {"method.md"}
#: phrases that tell the story of the study's own passes instead of the method
HISTORY = re.compile(r"\b(first|second|third|earlier|previous|last) pass\b|\bissue \d+|\bcommit [0-9a-f]{7,}", re.I)


def prose_words(text: str) -> int:
    """Words a reader reads in a MyST page's source: front matter and code blocks left out."""
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return len(text.split())


def test_prose_words_skips_front_matter_and_code():
    assert prose_words("---\na: b\n---\n# Title\n\n```python\nx = 1\n```\none two\n") == 4


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_pages_are_short_and_tell_no_history(page):
    text = page.read_text()
    if page.name not in EXEMPT:
        assert prose_words(text) <= LIMIT, f"{page.name}: {prose_words(text)} words of prose"
    hit = HISTORY.search(text)
    assert hit is None, f"{page.name}: {hit.group(0)!r}"


@pytest.mark.parametrize("name", ["intro.md", "results.md", "evidence.md"])
def test_the_answer_comes_first(name):
    """The first executed cell of the page prints the computed verdict, before any other table."""
    text = (BOOK / name).read_text()
    cells = re.findall(r"```\{code-cell\}.*?```", text, flags=re.S)
    assert cells and "verdict_markdown(" in cells[0]
    first_heading = re.search(r"^## ", text, flags=re.M)
    assert first_heading is None or text.index(cells[0]) < first_heading.start()


def test_toc_keeps_the_results_entry_and_the_appendix():
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    files = [c["file"] for c in toc["chapters"]]
    assert "results" in files and "appendix" in files and files.index("evidence") == files.index("results") + 1

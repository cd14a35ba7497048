"""``python -m ichseg.report.book_build``: ``jupyter-book build`` with Sphinx's parallel processes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ichseg.errors import IchsegError
from ichseg.report import book_build

ROOT = Path(__file__).resolve().parents[1]


PAGES = 6  # Sphinx reads in parallel only when more than 5 pages are to be read


def _tiny_book(tmp_path: Path, config: str | None = None) -> Path:
    """``PAGES`` + 1 pages, the project's _config.yml (its extensions, its MathJax) or ``config``."""
    book = tmp_path / "book"
    book.mkdir()
    (book / "intro.md").write_text("# Intro\n\nSee [the first page](page0.md); $a^2$.\n")
    for i in range(PAGES):
        (book / f"page{i}.md").write_text(f"# Page {i}\n\nText.\n")
    chapters = "".join(f"- file: page{i}\n" for i in range(PAGES))
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n" + chapters)
    shutil.copy(ROOT / "book" / "references.bib", book / "references.bib")
    (tmp_path / "_config.yml").write_text(config or (ROOT / "_config.yml").read_text())
    return tmp_path


def _build(root: Path, jobs: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ichseg.report.book_build", "--jobs", str(jobs), "build", "book",
                           "--config", "_config.yml", "--path-output", ".", "--all", "-W", "-n", "--keep-going"],
                          cwd=root, capture_output=True, text=True, timeout=300)


def test_the_book_builds_in_parallel_processes_without_a_warning(tmp_path):
    root = _tiny_book(tmp_path)
    done = _build(root, 2)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    log = done.stdout + done.stderr
    assert "doing serial read" not in log and "parallel reading" not in log
    assert "Page 5" in (root / "_build" / "html" / "page5.html").read_text()


def test_without_the_parallel_extension_the_warning_fails_the_build(tmp_path):
    """What the extension is for: without it Sphinx warns that it reads serially, and -W fails."""
    config = (ROOT / "_config.yml").read_text()
    assert "    - ichseg.report.sphinx_parallel\n" in config
    done = _build(_tiny_book(tmp_path, config.replace("    - ichseg.report.sphinx_parallel\n", "")), 2)
    assert done.returncode != 0 and "doing serial read" in done.stdout + done.stderr


def test_jobs_reach_sphinx(monkeypatch, tmp_path):
    import jupyter_book.sphinx

    seen = {}

    def fake_build_sphinx(*args, **kwargs):
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(jupyter_book.sphinx, "build_sphinx", fake_build_sphinx)
    root = _tiny_book(tmp_path)
    monkeypatch.chdir(root)
    with pytest.raises(SystemExit) as done:
        book_build.main(["--jobs", "3", "build", "book", "--config", "_config.yml", "--path-output", "."])
    assert done.value.code in (0, None) and seen["jobs"] == 3


@pytest.mark.parametrize("argv", [["--jobs"], ["--jobs", "0", "build", "book"], ["--jobs", "two", "build", "book"]])
def test_a_bad_job_count_is_one_line(argv):
    with pytest.raises(IchsegError, match="--jobs"):
        book_build.main(argv)


def test_pages_executed_at_build_time_are_spread_over_the_readers_runs():
    from sphinx.util.parallel import make_chunks

    from ichseg.report.sphinx_parallel import balanced_order

    docs = [f"a{i:02d}" for i in range(13)] + [f"results/r{i:02d}" for i in range(56)]  # as the book: prose first
    costly = set(docs[:13])
    before = [sum(d in costly for d in run) for run in make_chunks(docs, 2)]
    order = balanced_order(docs, costly, 2)
    after = [sum(d in costly for d in run) for run in make_chunks(order, 2)]
    assert sorted(order) == sorted(docs) and len(order) == len(docs)
    assert max(before) - min(before) > 1  # name order puts them into one run
    assert max(after) - min(after) <= 1 and sum(after) == 13


def test_which_pages_execute(tmp_path):
    from ichseg.report.sphinx_parallel import executes

    (tmp_path / "a.md").write_text("---\nmystnb:\n  execution_mode: force\n---\n# A\n")
    (tmp_path / "b.ipynb").write_text('{"metadata": {"mystnb": {"execution_mode": "force"}}}')
    (tmp_path / "c.md").write_text("# C\n")
    assert [executes(tmp_path / n) for n in ("a.md", "b.ipynb", "c.md", "missing.md")] == [True, True, False, False]
    assert executes(ROOT / "book" / "intro.md") and not executes(ROOT / "book" / "method.md")

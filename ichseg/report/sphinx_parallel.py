"""Sphinx extension: the book's pages read by parallel processes (``book_build --jobs``), the
costly ones spread over them.

- ``sphinx_external_toc`` always loads ``sphinx_multitoc_numbering``, which does not declare whether
  it is safe for parallel reading, so Sphinx assumes it is not, warns, and reads every page in one
  process. Its whole work is to replace ``TocTreeCollector.assign_section_numbers``, which Sphinx
  runs once, in the main process, after the readers' environments are merged (``env-get-updated``):
  it is safe, and this extension says so on its behalf.
- Sphinx hands each reader a run of consecutive pages in name order, so the prose pages, which each
  execute a notebook at build time (``execution_mode: force``), fell mostly into one run while the
  others read the results notebooks in a few seconds. Before reading (``env-before-read-docs``, the
  event meant for reordering that list) the pages are reordered so that each run Sphinx will cut
  gets an even share of the executed ones.
"""

from __future__ import annotations

import re
from pathlib import Path

UNDECLARED = "sphinx_multitoc_numbering"
EXECUTED = re.compile(r"""["']?execution_mode["']?\s*:\s*["']?force""")


def executes(source: Path) -> bool:
    """Whether the page runs its notebook when the book is built (the ``mystnb`` metadata says so)."""
    try:
        return bool(EXECUTED.search(source.read_text(errors="replace")))
    except OSError:
        return False


def balanced_order(docnames: list[str], costly: set[str], nproc: int) -> list[str]:
    """``docnames`` reordered so that each of the runs ``make_chunks`` cuts for ``nproc`` readers
    holds the costly pages in shares that differ by at most one (each run keeps its size)."""
    from sphinx.util.parallel import make_chunks

    sizes = [len(c) for c in make_chunks(list(docnames), nproc)]
    runs: list[list[str]] = [[] for _ in sizes]
    heavy = [d for d in docnames if d in costly]
    light = iter(d for d in docnames if d not in costly)
    for doc in heavy:  # each to the run with the fewest costly pages that still has room
        i = min((i for i in range(len(runs)) if len(runs[i]) < sizes[i]), key=lambda i: len(runs[i]))
        runs[i].append(doc)
    for run, size in zip(runs, sizes):  # then every run filled up to its size, in name order
        run.extend(next(light) for _ in range(size - len(run)))
    return [d for run in runs for d in run]


def _before_read(app, env, docnames: list[str]) -> None:
    if app.parallel <= 1 or len(docnames) <= 5:
        return
    costly = {d for d in docnames if executes(Path(env.doc2path(d)))}
    docnames[:] = balanced_order(docnames, costly, app.parallel)


def setup(app):
    app.setup_extension(UNDECLARED)  # loaded once: a no-op when sphinx_external_toc loaded it already
    ext = app.extensions[UNDECLARED]
    ext.parallel_read_safe = ext.parallel_write_safe = True
    app.connect("env-before-read-docs", _before_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

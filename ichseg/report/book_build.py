"""``jupyter-book build`` with Sphinx reading and writing pages in parallel processes.

Jupyter Book 1.x hands Sphinx a process count (``build_sphinx(jobs=...)``) but its command line
never sets it, so every page is read in one process; the book's prose pages each execute a short
notebook at build time (a kernel, the imports, the results they glue), one after another. With
``--jobs N`` this runs the same command, every other argument passed through unchanged, with Sphinx
forking N readers and writers. Every extension the book loads declares itself parallel-safe (Sphinx
warns otherwise, which ``-W`` turns into a failure).

    python -m ichseg.report.book_build --jobs 2 build book --config _config.yml ...
"""

from __future__ import annotations

import functools
import sys

from ..errors import IchsegError
from ..utils.validate import check_int


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    jobs = 1
    if args[:1] == ["--jobs"]:
        if len(args) < 2:
            raise IchsegError("book_build: --jobs needs a number")
        jobs, args = check_int("--jobs", int(args[1]) if args[1].isdigit() else args[1]), args[2:]
    import jupyter_book.sphinx
    from jupyter_book.cli.main import main as jupyter_book_main

    # the CLI imports build_sphinx from its module when it runs: the patched one is what it gets
    jupyter_book.sphinx.build_sphinx = functools.partial(jupyter_book.sphinx.build_sphinx, jobs=jobs)
    return jupyter_book_main(args=args, prog_name="jupyter-book", standalone_mode=True)


if __name__ == "__main__":  # pragma: no cover - the Makefile's entry
    try:
        sys.exit(main())
    except IchsegError as exc:
        sys.exit(f"error: {exc}")

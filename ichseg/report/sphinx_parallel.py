"""Sphinx extension: let the book's pages be read in parallel processes (``book_build --jobs``).

``sphinx_external_toc`` always loads ``sphinx_multitoc_numbering``, which does not declare whether
it is safe for parallel reading, so Sphinx assumes it is not, warns, and reads every page in one
process. Its whole work is to replace ``TocTreeCollector.assign_section_numbers``, which Sphinx runs
once, in the main process, after the readers' environments are merged (``env-get-updated``): it is
safe, and this extension says so on its behalf.
"""

from __future__ import annotations

UNDECLARED = "sphinx_multitoc_numbering"


def setup(app):
    app.setup_extension(UNDECLARED)  # loaded once: a no-op when sphinx_external_toc loaded it already
    ext = app.extensions[UNDECLARED]
    ext.parallel_read_safe = ext.parallel_write_safe = True
    return {"parallel_read_safe": True, "parallel_write_safe": True}

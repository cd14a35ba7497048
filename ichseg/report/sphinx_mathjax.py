"""Sphinx extension: the book's maths rendered by a MathJax served from the book's own files.

Sphinx loads MathJax from a CDN by default, so a copy of the book opened without network shows raw
TeX. This extension copies MathJax 2.7 from the installed ``jupyter-server-mathjax`` package (in
the lock, with its hashes) into the build's ``_static/mathjax/``; ``_config.yml`` points
``mathjax_path`` there. Localisations are left out (English is built into ``MathJax.js``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import IchsegError

#: what MathJax needs of the package's ``static/`` folder to render TeX to HTML
PARTS = ("MathJax.js", "LICENSE", "config", "extensions", "fonts", "jax")
TARGET = "mathjax"


def mathjax_source() -> Path:
    try:
        import jupyter_server_mathjax
    except ImportError as exc:
        raise IchsegError("book: the package jupyter-server-mathjax (book extra) is not installed; "
                          "the book's maths needs its MathJax files") from exc
    return Path(jupyter_server_mathjax.__file__).parent / "static"


def copy_mathjax(out_static: Path, source: Path | None = None) -> Path:
    """Copy MathJax's files into ``out_static/mathjax`` (unchanged files are copied again: cheap)."""
    source = source or mathjax_source()
    if not (source / "MathJax.js").is_file():
        raise IchsegError(f"{source}: no MathJax.js (jupyter-server-mathjax without its static files?)")
    dest = Path(out_static) / TARGET
    dest.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        src = source / part
        if src.is_dir():
            shutil.copytree(src, dest / part, dirs_exist_ok=True)
        elif src.is_file():
            shutil.copy2(src, dest / part)
    return dest


def _on_builder_inited(app) -> None:
    if getattr(app.builder, "format", None) != "html":
        return
    path = str(app.config.mathjax_path)
    if "://" in path or path.startswith("//"):
        raise IchsegError(f"_config.yml: mathjax_path {path!r} loads MathJax from the network; point it at "
                          f"{TARGET}/MathJax.js (copied into _static by {__name__})")
    copy_mathjax(Path(app.outdir) / "_static")


def setup(app):
    app.connect("builder-inited", _on_builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


__all__ = ["PARTS", "copy_mathjax", "mathjax_source", "setup"]

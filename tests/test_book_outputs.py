"""Nothing in the book renders empty: a notebook page that plots shows its images, no section prints
a "no output" placeholder, and the maths is served from the book's own files.

The executed notebooks are checked as committed (``results/*/``) and, for the page the build executes
itself (the diffusion process), by executing it here with the Agg backend the study's environment
sets (``MPLBACKEND=Agg``), which would otherwise swallow every ``plt.show()``. The built HTML
(``_build/html``), when present, is checked for placeholders, image-less plotting pages and CDN
links; ``ICHSEG_REQUIRE_BOOK=1`` makes a missing build fail instead of skip.
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

import pytest

from ichseg.errors import IchsegError
from ichseg.report import sphinx_mathjax
from ichseg.report.publish import FIGURE_DROPPED

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
REQUIRED = os.environ.get("ICHSEG_REQUIRE_BOOK") == "1"
#: a cell that draws: it calls a figure function of the report or matplotlib's pyplot
PLOTS = re.compile(r"\b(plt\.(subplots|figure|show|imshow|plot)|\w+_figure\()")
#: what a section prints when what it should show is missing
PLACEHOLDER = re.compile(r"\bno\b[^.\n]{0,60}\boutput\b|\bnot available in this build\b", re.IGNORECASE)


def _code_cells(nb: dict):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _has_image(cell: dict) -> bool:
    return any("image/png" in o.get("data", {}) or "image/svg+xml" in o.get("data", {}) for o in cell.get("outputs", []))


def _output_text(cell: dict) -> str:
    """What a reader sees of a cell's outputs (glue records excluded)."""
    parts = []
    for o in cell.get("outputs", []):
        parts.append("".join(o.get("text", "")))
        for mime in ("text/markdown", "text/plain", "text/html"):
            parts.append("".join(o.get("data", {}).get(mime, "")))
    return "\n".join(parts)


def problems(nb: dict) -> list[str]:
    """What is wrong with an executed notebook: plotting cells without an image, placeholder text."""
    out = []
    for i, cell in enumerate(_code_cells(nb)):
        source = "".join(cell["source"])
        # a cell tagged optional-figure draws only when its input exists (and then shows no section at all)
        optional = "optional-figure" in cell.get("metadata", {}).get("tags", [])
        # a branch that draws elsewhere may say so instead (visible text); silence is the failure
        if PLOTS.search(source) and not _has_image(cell) and not optional and not _output_text(cell).strip():
            out.append(f"code cell {i}: draws a figure but has no image output")
        text = _output_text(cell)
        if PLACEHOLDER.search(text):
            out.append(f"code cell {i}: prints a placeholder: {PLACEHOLDER.search(text).group(0)!r}")
    return out


def test_the_checker_catches_an_empty_plot_and_a_placeholder():
    empty = {"cells": [{"cell_type": "code", "source": ["fig, ax = plt.subplots()\n", "plt.show()"], "outputs": []}]}
    assert problems(empty) and "no image output" in problems(empty)[0]
    drawn = {"cells": [{"cell_type": "code", "source": ["fig = report.convergence_figure(c)"],
                        "outputs": [{"output_type": "display_data", "data": {"image/png": "iVBOR"}}]}]}
    assert problems(drawn) == []
    said = {"cells": [{"cell_type": "code", "source": ["display(x)"], "outputs": [
        {"output_type": "display_data", "data": {"text/markdown": "No sampling bench output (`bench/out/x.json`)"}}]}]}
    assert "placeholder" in problems(said)[0]


def _finished(notebook: Path) -> bool:
    """A stage's notebook whose stamp says complete (a stage running or stopped mid-way has drawn
    only part of its figures; its stamp says so)."""
    stamp = notebook.parents[1] / "stamps" / f"{notebook.stem}.json"
    return not stamp.is_file() or json.loads(stamp.read_text()).get("status") == "complete"


COMMITTED = sorted(ROOT.glob("results/*/results.ipynb")) + [
    p for p in sorted(ROOT.glob("results/*/notebooks/*.ipynb")) if _finished(p)]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_notebooks_show_what_they_draw(path):
    assert problems(json.loads(path.read_text())) == []


def test_the_diffusion_page_draws_its_figures_under_the_agg_backend(tmp_path, monkeypatch):
    """The page is executed by the book build; here with a short chain so it takes seconds."""
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "diffusion_process.ipynb"
    papermill.execute_notebook(str(ROOT / "book" / "notebooks" / "diffusion_process.ipynb"), str(out),
                               parameters={"timesteps": 50, "image_size": 16}, kernel_name="python3",
                               progress_bar=False, cwd=str(ROOT / "book"))
    nb = json.loads(out.read_text())
    assert problems(nb) == []
    assert sum(_has_image(c) for c in _code_cells(nb)) >= 2


def test_mathjax_is_copied_from_the_installed_package(tmp_path):
    pytest.importorskip("jupyter_server_mathjax")
    dest = sphinx_mathjax.copy_mathjax(tmp_path / "_static")
    assert (dest / "MathJax.js").is_file() and (dest / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    assert (dest / "jax" / "input" / "TeX").is_dir() and not (dest / "localization").exists()
    with pytest.raises(IchsegError, match="no MathJax.js"):
        sphinx_mathjax.copy_mathjax(tmp_path / "other", source=tmp_path)


def test_a_cdn_mathjax_path_is_refused(tmp_path):
    class Builder:
        format = "html"

    class App:
        builder, outdir = Builder(), tmp_path

        class config:
            mathjax_path = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"

    with pytest.raises(IchsegError, match="from the network"):
        sphinx_mathjax._on_builder_inited(App())
    assert not (tmp_path / "_static").exists()


# -- the built book -----------------------------------------------------------------------------------
def _built_pages() -> list[Path]:
    if not (HTML / "index.html").is_file():
        if REQUIRED:
            pytest.fail(f"{HTML}: no built book (make book)")
        pytest.skip("no built book in _build/html")
    return sorted(p for p in HTML.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts)


def _main_text(html: str) -> str:
    """The page's main text as a reader sees it: tags and code listings (a hidden input) left out."""
    main = re.search(r"<main.*?</main>", html, re.S)
    text = main.group(0) if main else html
    text = re.sub(r'<div class="highlight-(ipython3|python3?|default)[^"]*"><div class="highlight"><pre>.*?</pre>', " ", text,
                  flags=re.S)
    return re.sub(r"<[^>]+>", " ", text)


def test_built_pages_have_no_placeholder_and_no_cdn():
    bad = []
    for page in _built_pages():
        html = page.read_text(errors="replace")
        if re.search(r"""(src|href)=["']https?://[^"']*(mathjax|jsdelivr|unpkg|cdnjs)""", html, re.I):
            bad.append(f"{page.relative_to(HTML)}: loads a script or style from a CDN")
        hit = PLACEHOLDER.search(_main_text(html))
        if hit:
            bad.append(f"{page.relative_to(HTML)}: placeholder {hit.group(0)!r}")
        # a Markdown table a cell displays, left unparsed: its separator row shows as text
        raw = re.search(r"\|\s*:?[-\u2013\u2014]{3,}", _main_text(html))
        if raw:
            bad.append(f"{page.relative_to(HTML)}: a Markdown table shown as text ({raw.group(0)!r})")
    assert not bad, "\n".join(bad)
    index = (HTML / "intro.html").read_text()
    assert '_static/mathjax/MathJax.js' in index
    # MathJax 2 must be told to process Sphinx's math elements inside the tex2jax_ignore sections
    config = re.search(r'<script type="text/x-mathjax-config">(.*?)</script>', index, re.S)
    assert config and "math" in json.loads(config.group(1).strip()[len("MathJax.Hub.Config("):-1])["tex2jax"]["processClass"]
    assert (HTML / "_static" / "mathjax" / "MathJax.js").is_file()


def test_built_pages_that_plot_show_images():
    pages = {p.relative_to(HTML).with_suffix("").as_posix(): p for p in _built_pages()}
    sources = {"notebooks/diffusion_process": ROOT / "book" / "notebooks" / "diffusion_process.ipynb"}
    sources.update({str(p.relative_to(ROOT).with_suffix("")): p for p in COMMITTED})
    missing = []
    for name, src in sources.items():
        if name not in pages:
            continue
        draws = any(PLOTS.search("".join(c["source"])) for c in _code_cells(json.loads(src.read_text())))
        main = _main_text_with_tags(pages[name].read_text(errors="replace"))
        # a committed evaluation's notebook keeps no pictures (ichseg.report.publish): its page says so instead
        if draws and "<img" not in main and FIGURE_DROPPED not in html.unescape(main):
            missing.append(name)
    assert not missing, f"pages that plot but show no image: {missing}"


def _main_text_with_tags(html: str) -> str:
    main = re.search(r"<main.*?</main>", html, re.S)
    return main.group(0) if main else html

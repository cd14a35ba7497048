"""The built book, opened in headless Chromium (Debian's chromium + chromedriver, driven by
Selenium; nothing is downloaded): the smoke results page shows Tables 1 and 2 with paper and
reproduction columns, and Figs. 1 and 3 as loaded images; an "ours" cell of Table 1 and a number
glued into the prose are the values of the ``metrics.json`` they come from (read here, rounded as
the page rounds them, and found in the rendered HTML).

Needs the book built with results (`make book`); `make test` builds it, then runs this test with
ICHSEG_REQUIRE_BOOK=1 so that a missing book or browser fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

browser_test = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
RESULTS_PAGE = HTML / "results" / "smoke" / "results.html"
SMOKE = ROOT / "results" / "smoke"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--window-size=1400,1000"]
REQUIRED = os.environ.get("ICHSEG_REQUIRE_BOOK") == "1"


def _need(condition: bool, why: str) -> None:
    if not condition:
        if REQUIRED:
            pytest.fail(why)
        pytest.skip(why)


# -- reading a rendered table and the numbers it should show ----------------------------------------
class _TableGrid(HTMLParser):
    """The first <table> of an HTML fragment as rows of cell texts (whitespace collapsed), with
    row- and column-spans repeated into every row and column they cover."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._pending: dict[int, list] = {}  # column -> [rows still covered, text] of a rowspan
        self._row: list | None = None
        self._cell: list[str] | None = None
        self._span = (1, 1)
        self._done = False

    def handle_starttag(self, tag, attrs):
        if self._done:
            return
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            a = dict(attrs)
            self._cell, self._span = [], (int(a.get("rowspan") or 1), int(a.get("colspan") or 1))

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if self._done:
            return
        if tag in ("td", "th") and self._cell is not None:
            self._row.append((" ".join("".join(self._cell).split()), *self._span))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._place(self._row))
            self._row = None
        elif tag == "table":
            self._done = True

    def _place(self, cells: list) -> list[str]:
        out, col, i = [], 0, 0
        while True:
            if col in self._pending:
                left, text = self._pending[col]
                out.append(text)
                if left <= 1:
                    del self._pending[col]
                else:
                    self._pending[col][0] = left - 1
                col += 1
            elif i < len(cells):
                text, rowspan, colspan = cells[i]
                i += 1
                for _ in range(colspan):
                    out.append(text)
                    if rowspan > 1:
                        self._pending[col] = [rowspan - 1, text]
                    col += 1
            elif any(c > col for c in self._pending):
                out.append("")
                col += 1
            else:
                return out


def table_cell(html: str, row: tuple[str, ...], column: tuple[str, ...]) -> str:
    """The text of the cell whose leading row headers are ``row`` and whose column headers (top
    down) are ``column``, in a table rendered from a DataFrame with MultiIndex rows and columns."""
    parser = _TableGrid()
    parser.feed(html)
    grid = parser.rows
    col = next((j for j in range(max(map(len, grid), default=0))
                if [r[j] for r in grid[:len(column)] if j < len(r)] == list(column)), None)
    assert col is not None, f"no column {column} in the table"
    hit = next((r for r in grid if r[:len(row)] == list(row)), None)
    assert hit is not None, f"no row {row} in the table"
    return hit[col]


def metrics_of(method: str, dataset: str, seed: int = 0, root: Path = SMOKE) -> dict:
    """The evaluation ``metrics.json`` of one run of a study folder."""
    return json.loads((root / "eval" / f"{method}-s{seed}" / dataset / "metrics.json").read_text())


def ours_cells(metrics: dict) -> dict[str, str]:
    """Table 1's "ours" IoU and Dice of a single-seed run, as the table rounds them (percent, 1 decimal)."""
    from ichseg.report import PAPER_DICE, PAPER_IOU

    return {PAPER_IOU: f"{100 * metrics['paper']['iou']:.1f}", PAPER_DICE: f"{100 * metrics['paper']['dice']:.1f}"}


def test_table_cell_reads_table1_as_pandas_renders_it(tmp_path):
    """The helpers the browser test relies on, on Table 1 of a synthetic study (no browser)."""
    from _study_helpers import write_study

    from ichseg import report

    write_study(tmp_path / "smoke")
    study = report.load_study(tmp_path / "smoke")
    html = report.table1(report.evaluation_table(study), "smoke", study.datasets).to_html()
    ours = report.ours_label(1, "smoke")
    for dataset, title in (("instance2022", "Instance2022"), ("bhsd", "BHSD*")):
        expected = ours_cells(metrics_of("full", dataset, root=tmp_path / "smoke"))
        for column, value in expected.items():
            assert table_cell(html, (title, "Ours [full]"), (ours, column)) == value
    assert table_cell(html, ("Instance2022", "Ours [full]"), ("paper (single run)", report.PAPER_DICE)) == "90.70"
    assert table_cell(html, ("BHSD*", "U-Net [unet]"), (ours, report.PAPER_DICE)) == "not run"
    with pytest.raises(AssertionError, match="no row"):
        table_cell(html, ("PhysioNet*", "Ours [full]"), (ours, report.PAPER_DICE))


# -- the browser ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    _need(bool(chromium and driver_path), "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _need(False, "selenium is not installed (pip install -e '.[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    # both paths given: Selenium Manager is not consulted, nothing is fetched
    drv = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


def _open(browser, page: Path):
    _need(page.is_file(), f"{page} not built: run `make book` first")
    browser.get(page.as_uri())
    # settled: loaded, with a body, and not a redirect (index.html forwards to the intro by a meta
    # refresh, during which the old document may have no body)
    for _ in range(100):
        if browser.execute_script("return document.readyState === 'complete' && document.body !== null"
                                  " && !document.querySelector('meta[http-equiv=refresh i]')"):
            break
        time.sleep(0.1)
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")  # lazily loaded images, if any
    return browser


def _images_loaded(browser, selector: str) -> list[dict]:
    return browser.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(i => "
        "({src: i.src.slice(0, 80), complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,"
        "  shown: i.getBoundingClientRect().width > 0}))", selector)


@browser_test
def test_results_page_shows_tables_and_figures(browser, tmp_path):
    from selenium.webdriver.common.by import By

    _open(browser, RESULTS_PAGE)
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "Table 1" in text and "Table 2" in text and "Fig. 1" in text and "Fig. 3" in text
    tables = [t for t in browser.find_elements(By.CSS_SELECTOR, "table") if t.is_displayed()]
    headers = [t.text for t in tables]
    table1 = next((h for h in headers if "Instance2022" in h and "U-Net" in h), None)
    assert table1 is not None, "Table 1 not found"
    assert "paper (single run)" in table1 and "ours (smoke" in table1
    # all six models of Table 1 were run by the smoke study: a row each, none "not run"
    for model in ("U-Net [unet]", "TransUNet [transunet]", "nnU-Net [nnunet]", "U-KAN [ukan]",
                  "MedSegDiffv2 [medsegdiffv2]", "Ours [full]"):
        assert model in table1, model
    assert "not run" not in table1
    assert "90.70" in table1  # the paper's own number, in its own column
    # an "ours" cell is the value of the metrics.json it comes from, rounded as the table rounds it
    _need((SMOKE / "study.json").is_file(), f"{SMOKE}/study.json missing: run `make book` first")
    n_seeds = len(json.loads((SMOKE / "study.json").read_text())["seeds"])
    assert n_seeds == 1, "ours_cells reads single-seed runs (the smoke profile's)"
    from ichseg.report import ours_label

    html = next(t.get_attribute("outerHTML") for t in tables if t.text == table1)
    for column, value in ours_cells(metrics_of("full", "instance2022")).items():
        assert table_cell(html, ("Instance2022", "Ours [full]"), (ours_label(n_seeds, "smoke"), column)) == value, column
    table2 = next((h for h in headers if "best iteration" in h), None)
    assert table2 is not None and "+ Transformer Block (Full Model)" in table2 and "85K" in table2
    assert "ours (smoke" in table2
    images = _images_loaded(browser, "main img")
    assert len(images) >= 4, images  # Fig. 1 + one Fig. 3 grid per dataset
    broken = [i for i in images if not (i["complete"] and i["w"] > 0 and i["shown"])]
    assert not broken, f"images not loaded or not visible: {broken}"
    shot = tmp_path / "results-smoke.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


@browser_test
def test_prose_pages_cite_this_runs_numbers(browser, tmp_path):
    from selenium.webdriver.common.by import By

    _open(browser, HTML / "protocol.html")
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "paper-protocol Dice of" in text and "nan%" not in text
    assert browser.find_elements(By.CSS_SELECTOR, "main table")  # the glued protocol table
    # the intro and the results page open with the verdict computed from the committed runs the book
    # answers with (the pre-registered evidence pass once complete, else cpu): the full model's
    # lesion-slice Dice there is the mean of its metrics.json files
    from ichseg.report.stats import mean_ci
    from ichseg.report.verdict import headline_profile, progress_markdown

    profile = headline_profile(ROOT / "results")
    progress = progress_markdown(ROOT / "results").replace("**", "").replace("`", "")
    cpu = ROOT / "results" / profile
    study = json.loads((cpu / "study.json").read_text())
    values = [json.loads((cpu / r["eval_dir"] / "instance2022" / "metrics.json").read_text())["strict"]["positive_slice_dice"]
              for r in study["runs"] if r.get("method", r.get("variant")) == "full"]
    m, h, n = mean_ci(values)
    for page in ("index.html", "results.html"):
        _open(browser, HTML / page)
        # Sphinx typesets apostrophes as ’
        text = " ".join(browser.find_element(By.TAG_NAME, "body").text.replace("\u2019", "'").split())
        assert f"full model's lesion-slice Dice is {100 * m:.1f} ± {100 * h:.1f}% ({n} seeds)" in text, page
        assert f"Verdict of the {profile} profile" in text.replace("`", "")
        assert progress in text  # a pass under way says how far it has come ("" once it answers)
        browser.execute_script("window.scrollTo(0, 0)")  # the first screen, where the answer is
        browser.save_screenshot(str(HTML.parent / f"screenshot-{page.removesuffix('.html')}.png"))
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "nav a")]
    assert any(h and h.endswith("results/smoke/results.html") for h in links)
    browser.save_screenshot(str(tmp_path / "results-prose.png"))


def _canvas_sum(browser) -> tuple[int, int]:
    """(sum of the viewer canvas's pixel values, count of non-black pixels)."""
    return tuple(browser.execute_script(
        "const c = document.querySelector('.ichseg-viewer canvas'), d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let s = 0, n = 0;"
        "for (let i = 0; i < d.length; i += 4) { s += d[i] + d[i + 1] + d[i + 2]; if (d[i] + d[i + 1] + d[i + 2] > 30) n++; }"
        "return [s, n];"))


@browser_test
def test_viewer_draws_the_volume_and_toggles_overlays(browser):
    """The slice viewer draws the CT on its canvas (non-blank pixels), and ticking an overlay or
    moving the slider changes what it draws; screenshots of the viewer, evidence and intro pages
    are written into the build folder."""
    from selenium.webdriver.common.by import By

    def settled(expected: str) -> None:
        for _ in range(50):
            if browser.find_element(By.CSS_SELECTOR, ".ichseg-viewer").get_attribute("data-drawn") == expected:
                return
            time.sleep(0.1)
        raise AssertionError(f"viewer never drew state {expected!r}")

    _open(browser, HTML / "viewer.html")
    slider = browser.find_element(By.CSS_SELECTOR, ".ichseg-viewer input[type=range]")
    start, last = int(slider.get_attribute("value")), int(slider.get_attribute("max"))
    settled(f"{start}:gt")
    base, lit = _canvas_sum(browser)
    assert lit > 0.2 * 512 * 512, "the CT is not drawn"
    box = browser.find_element(By.CSS_SELECTOR, ".ichseg-viewer input[type=checkbox][value=full]")
    box.click()
    settled(f"{start}:gt,full")
    assert _canvas_sum(browser)[0] != base, "ticking the full model's overlay changed nothing"
    step = start + 1 if start < last else start - 1
    browser.execute_script("const s = document.querySelector('.ichseg-viewer input[type=range]');"
                           f"s.value = {step}; s.dispatchEvent(new Event('input'));")
    settled(f"{step}:gt,full")
    browser.save_screenshot(str(HTML.parent / "screenshot-viewer.png"))
    _open(browser, HTML / "evidence.html")
    wide = browser.execute_script(
        "const a = document.querySelector('.bd-article') || document.querySelector('main'), m = a.getBoundingClientRect().right;"
        "return Array.from(a.querySelectorAll('*')).filter(e => e.getBoundingClientRect().right > m + 2"
        " && !(e.parentElement && e.parentElement.closest('table, pre, .cell_output, div.output_area')))"
        ".map(e => e.tagName).slice(0, 5);")
    assert not wide, f"elements wider than the content column: {wide}"
    browser.save_screenshot(str(HTML.parent / "screenshot-evidence.png"))


@browser_test
def test_maths_typesets_from_the_books_own_files(browser):
    """The method page's equations are typeset by the MathJax copied into the build (no network):
    every equation becomes MathJax output, no TeX delimiter is left in the text, and MathJax reports
    no file it failed to load (its fonts are the package's STIX-Web)."""
    _open(browser, HTML / "method.html")
    state = {}
    for _ in range(100):
        state = browser.execute_script(
            "const m = document.getElementById('MathJax_Message');"
            "return {src: Array.from(document.scripts).map(s => s.src).filter(s => /MathJax/.test(s)),"
            " done: !!(window.MathJax && MathJax.Hub && MathJax.Hub.queue && MathJax.Hub.queue.pending === 0"
            "           && MathJax.Hub.queue.running === 0),"
            " typeset: document.querySelectorAll('.MathJax, .MathJax_Display, .MathJax_SVG, .MathJax_SVG_Display').length,"
            " scripts: document.querySelectorAll('script[type^=\"math/tex\"]').length,"
            " raw: ['\\\\(', '\\\\['].filter(d => document.body.innerText.includes(d)),"
            " message: m ? m.textContent : ''}")
        if state["done"] and state["typeset"]:
            break
        time.sleep(0.1)
    assert state["src"] and all(s.startswith("file://") for s in state["src"]), state["src"]
    assert state["typeset"] >= state["scripts"] > 0 and not state["raw"], state  # every equation typeset, no TeX left
    assert "fail" not in state["message"].lower(), state["message"]

"""The built book, opened in headless Chromium (Debian's chromium + chromedriver, driven by
Selenium; nothing is downloaded): the smoke results page shows Tables 1 and 2 with paper and
reproduction columns, and Figs. 1 and 3 as loaded images.

Needs the book built with results (`make book`); `make test` builds it, then runs this test with
ICHSEG_REQUIRE_BOOK=1 so that a missing book or browser fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
RESULTS_PAGE = HTML / "results" / "smoke" / "results.html"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--window-size=1400,1000"]
REQUIRED = os.environ.get("ICHSEG_REQUIRE_BOOK") == "1"


def _need(condition: bool, why: str) -> None:
    if not condition:
        if REQUIRED:
            pytest.fail(why)
        pytest.skip(why)


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
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")  # lazily loaded images, if any
    return browser


def _images_loaded(browser, selector: str) -> list[dict]:
    return browser.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(i => "
        "({src: i.src.slice(0, 80), complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,"
        "  shown: i.getBoundingClientRect().width > 0}))", selector)


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
    table2 = next((h for h in headers if "Best iteration" in h), None)
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


def test_prose_pages_cite_this_runs_numbers(browser, tmp_path):
    from selenium.webdriver.common.by import By

    _open(browser, HTML / "protocol.html")
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "paper-protocol Dice of" in text and "nan%" not in text
    assert browser.find_elements(By.CSS_SELECTOR, "main table")  # the glued protocol table
    _open(browser, HTML / "results.html")
    assert [i for i in _images_loaded(browser, "main img") if i["w"] > 0]  # Fig. 1 pasted from the smoke run
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "nav a")]
    assert any(h and h.endswith("results/smoke/results.html") for h in links)
    browser.save_screenshot(str(tmp_path / "results-prose.png"))

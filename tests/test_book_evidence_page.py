"""The evidence page answers for whichever profile the book headlines: its code cells, run as the
book runs them (cwd holding ``results/``), render a pre-registered ``evidence`` pass when one is
committed beside ``cpu`` — its plan's claims in the verdict table, its name in the title and the
prose — and still run on the real ``cpu`` results alone."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from _study_helpers import write_study  # noqa: E402

from ichseg.engine.config import resolve_run_config  # noqa: E402
from ichseg.report.preregistration import FILE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAGE, REAL_CPU = ROOT / "book" / "evidence.md", ROOT / "results" / "cpu"
METHODS, SEEDS, DATASETS = ("medsegdiffv2", "resnet18", "full", "nnunet"), (0, 1), ("instance2022", "bhsd")


def code_cells(page: Path) -> list[str]:
    """The page's ``{code-cell}`` sources, cell options and IPython magics left out."""
    cells = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", page.read_text(), flags=re.S)
    return ["\n".join(l for l in c.splitlines() if not l.startswith((":", "%"))) for c in cells]


def run_page(book_dir: Path, monkeypatch) -> tuple[dict, list, dict]:
    """Execute the page's cells in ``book_dir``: (namespace, displayed objects, glued values)."""
    import IPython.display
    import myst_nb

    shown, glued = [], {}
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: glued.__setitem__(name, value))
    monkeypatch.chdir(book_dir)
    ns: dict = {}
    for i, cell in enumerate(code_cells(PAGE)):
        exec(compile(cell, f"{PAGE.name}, code cell {i + 1}", "exec"), ns)  # noqa: S102 - the page's own code
    plt.close("all")
    return ns, shown, glued


def _markdown(shown: list) -> str:
    return "\n".join(o.data for o in shown if type(o).__name__ == "Markdown")


def _book(tmp_path: Path) -> Path:
    book = tmp_path / "book"
    (book / "results").mkdir(parents=True)
    (book / "results" / "cpu").symlink_to(REAL_CPU, target_is_directory=True)
    return book


def test_page_renders_the_preregistered_evidence_pass(tmp_path, monkeypatch, plan):
    book = _book(tmp_path)
    root = book / "results" / "evidence"
    write_study(root, methods=METHODS, seeds=SEEDS, datasets=DATASETS, profile="evidence")
    for s in SEEDS:  # nnU-Net scores as the full model does (as in test_report_verdict_preregistered)
        for ds in DATASETS:
            shutil.copy(root / "eval" / f"full-s{s}" / ds / "slices.csv", root / "eval" / f"nnunet-s{s}" / ds / "slices.csv")
    for method in METHODS:  # each run's recorded config, as the engine writes it for the profile
        config = yaml.safe_dump(resolve_run_config("evidence", method), sort_keys=False)
        for s in SEEDS:
            (root / "runs" / f"{method}-s{s}" / "config.yaml").write_text(config)
    (root / FILE).write_text(yaml.safe_dump(plan, sort_keys=False))

    ns, shown, glued = run_page(book, monkeypatch)
    assert ns["RESULTS"] == Path("results/evidence") and ns["PROFILE"] == "evidence"
    assert list(ns["verdicts"]["id"]) == [c["id"] for c in plan["comparisons"]] + ["convergence"]
    at, table = next((i, o) for i, o in enumerate(shown)
                     if list(getattr(o, "index", pd.Index([])).names) == ["claim", "comparison"])
    assert list(table.index.get_level_values("comparison")) == list(ns["verdicts"]["comparison"])
    assert at == 1  # right after the one summary sentence
    assert table["ours: per-volume 3D Dice"].str.contains("Holm p").sum() == 4  # the four comparisons run
    text = _markdown(shown)
    assert text.startswith("**Verdict of the `evidence` profile**, pre-registered (commit `abc123def4`)")
    assert f"Holm-adjusted across the {len(plan['comparisons'])} comparisons" in text
    assert "The `evidence` pass is the study's evidence" in text and "`cpu`" not in text


def test_page_still_runs_on_the_real_cpu_results(tmp_path, monkeypatch):
    """No pre-registered pass beside it: the page answers for ``cpu`` with the paper's claim list."""
    if not (REAL_CPU / "study.json").is_file():
        pytest.skip("results/cpu is not committed in this checkout")
    ns, shown, glued = run_page(_book(tmp_path), monkeypatch)
    assert ns["PROFILE"] == "cpu"
    assert ns["study"] is not None and "id" not in ns["verdicts"]  # the unregistered claims
    text = _markdown(shown)
    assert text.startswith("**Verdict of the `cpu` profile** (") and "not pre-registered" in text
    assert "reach 90% of its final validation score" in text  # the unregistered convergence rule
    assert "`evidence`" not in text

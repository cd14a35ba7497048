"""Publishing the book as Jupyter Books are: `make publish` (ghp-import onto a local gh-pages
branch), the GitHub Actions workflow that builds from the lock file and the committed results, and
`ichseg report toc --require-any` that the committed-results build relies on."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _study_helpers import write_study

from ichseg.cli import main

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def test_book_workflow_builds_from_the_lock_and_committed_results_and_deploys():
    wf = yaml.safe_load(WORKFLOW.read_text())
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "push" in triggers and wf["permissions"]["pages"] == "write" and wf["permissions"]["id-token"] == "write"
    build, deploy = wf["jobs"]["build"], wf["jobs"]["deploy"]
    uses = [s.get("uses", "") for s in build["steps"]]
    runs = " ".join(s.get("run", "") for s in build["steps"])
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses)
    assert next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))["with"]["path"] == "_build/html"
    assert "requirements/lock.txt" in WORKFLOW.read_text()
    assert re.findall(r"\bmake (\S+)", runs) == ["venv", "book-committed"] and "ichseg" not in runs  # no study, no training
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages@")


def test_book_committed_target_requires_a_profile_but_runs_no_study():
    if not shutil.which("make"):
        pytest.skip("make is needed")
    dry = subprocess.run(["make", "-n", "book-committed", "STAMP="], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "report toc --require-any" in dry and "ichseg.report.book_build --jobs" in dry and " build book " in dry
    assert "ichseg study" not in dry and "papermill" not in dry


@pytest.fixture
def git_env(tmp_path):
    if not shutil.which("git") or not shutil.which("make"):
        pytest.skip("git and make are needed")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.org", GIT_CONFIG_GLOBAL=str(tmp_path / "gitconfig"), GIT_CONFIG_NOSYSTEM="1")
    return env


def test_make_publish_puts_the_built_html_on_a_local_gh_pages_branch(tmp_path, git_env):
    bindir = Path(sys.executable).parent
    if not (bindir / "ghp-import").exists():
        pytest.skip("ghp-import (the book extra) is not installed beside this Python")
    repo = tmp_path / "clone"
    repo.mkdir()
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, env=git_env, capture_output=True, text=True, check=True).stdout  # noqa: E731
    git("init", "-q", "-b", "main")
    shutil.copy(ROOT / "Makefile", repo / "Makefile")
    git("add", "Makefile")
    git("commit", "-q", "-m", "source")
    run = lambda: subprocess.run(["make", "publish", "STAMP=", f"BIN={bindir}"], cwd=repo, env=git_env,  # noqa: E731
                                 capture_output=True, text=True)

    refused = run()  # nothing built yet
    assert refused.returncode != 0 and "no book in _build/html" in refused.stderr
    html = repo / "_build" / "html"
    (html / "_static").mkdir(parents=True)
    (html / "index.html").write_text("<html><body>tiny book</body></html>")
    (html / "_static" / "style.css").write_text("body {}")
    done = run()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "git push origin gh-pages" in done.stdout
    files = set(git("ls-tree", "-r", "--name-only", "gh-pages").split())
    assert files == {".nojekyll", "index.html", "_static/style.css"}
    assert git("show", "gh-pages:index.html") == "<html><body>tiny book</body></html>"
    head = git("rev-parse", "--short", "main").strip()
    assert git("log", "-1", "--format=%s", "gh-pages").strip() == f"Book built from {head}"
    assert git("rev-parse", "--abbrev-ref", "HEAD").strip() == "main"  # the source branch stays checked out
    assert not git("remote")  # nothing was pushed anywhere


def _book_with_results(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: results\n")
    results = tmp_path / "results"
    results.mkdir()
    (book / "results").symlink_to(results, target_is_directory=True)
    return book, results


def test_toc_require_any_fails_without_committed_results_and_passes_with_one(tmp_path, capsys):
    book, results = _book_with_results(tmp_path)
    assert main(["report", "toc", "--book", str(book)]) == 0  # nothing required: an empty results chapter
    assert main(["report", "toc", "--book", str(book), "--require-any"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no profile has consistent results" in err[0]

    study = write_study(results / "gpu", profile="gpu")
    (results / "gpu" / "results.ipynb").write_text(json.dumps(
        {"cells": [], "metadata": {"papermill": {"parameters": {"study_stamp": study["stamp"]}, "exception": False}},
         "nbformat": 4, "nbformat_minor": 5}))
    assert main(["report", "toc", "--book", str(book), "--require-any"]) == 0
    assert main(["report", "toc", "--book", str(book), "--require", "smoke"]) == 2  # the smoke run is not committed


def test_a_later_seed_keeps_its_scores_and_drops_its_pictures(tmp_path):
    from ichseg.report.publish import prune_later_seeds

    for seed in (0, 1):
        d = tmp_path / f"full-s{seed}" / "bhsd"
        d.mkdir(parents=True)
        for name in ("metrics.json", "slices.csv", "qualitative.npz", "worst.npz", "volume.npz"):
            (d / name).write_text("x")
        prune_later_seeds(d.parent, seed)
    assert sorted(p.name for p in (tmp_path / "full-s1" / "bhsd").iterdir()) == ["metrics.json", "slices.csv"]
    assert len(list((tmp_path / "full-s0" / "bhsd").iterdir())) == 5


def test_an_evaluation_notebook_keeps_its_text_and_drops_its_figures(tmp_path):
    from ichseg.report.publish import FIGURE_DROPPED, drop_notebook_figures, evaluation_notebooks

    (tmp_path / "stamps").mkdir()
    (tmp_path / "notebooks").mkdir()
    image = {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"},
             "metadata": {"image/png": {"width": 640}}}
    text = {"output_type": "stream", "name": "stdout", "text": "lesion-slice Dice 0.61\n"}
    for kind, seed in (("evaluate", 0), ("evaluate", 1), ("train", 1)):
        name = f"{kind}-full-s{seed}"
        (tmp_path / "stamps" / f"{name}.json").write_text(json.dumps(
            {"kind": kind, "notebook": f"results/x/notebooks/{name}.ipynb", "parameters": {"seed": seed}}))
        (tmp_path / "notebooks" / f"{name}.ipynb").write_text(json.dumps(
            {"cells": [{"cell_type": "code", "source": "", "outputs": [text, image]}], "nbformat": 4, "nbformat_minor": 5}))
    found = evaluation_notebooks(tmp_path)
    assert [p.name for p in found] == ["evaluate-full-s0.ipynb", "evaluate-full-s1.ipynb"]  # not a training notebook
    drop_notebook_figures(found[0])
    outputs = json.loads(found[0].read_text())["cells"][0]["outputs"]
    assert outputs[0] == text and outputs[1]["data"] == {"text/plain": FIGURE_DROPPED} and not outputs[1]["metadata"]
    once = found[0].read_bytes()
    drop_notebook_figures(found[0])
    assert found[0].read_bytes() == once
    outputs[1]["data"]["text/plain"] = "[figure not kept: older words]"  # a note an earlier compaction left
    found[1].write_text(json.dumps({"cells": [{"cell_type": "code", "source": "", "outputs": outputs}]}))
    drop_notebook_figures(found[1])
    assert json.loads(found[1].read_text())["cells"][0]["outputs"][1]["data"] == {"text/plain": FIGURE_DROPPED}
    train = json.loads((tmp_path / "notebooks" / "train-full-s1.ipynb").read_text())
    assert "image/png" in train["cells"][0]["outputs"][1]["data"]

"""The commit a run records: ``-dirty`` means the code differed from the commit, not that the study
rewrote its own tracked results."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ichseg.engine.provenance import git_commit

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@example.org")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "ichseg").mkdir()
    (tmp_path / "ichseg" / "model.py").write_text("x = 1\n")
    (tmp_path / "results" / "cpu").mkdir(parents=True)
    (tmp_path / "results" / "cpu" / "metrics.json").write_text("{}\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "init")
    return tmp_path


def test_clean_checkout_records_the_bare_commit(repo):
    assert git_commit(repo) == git(repo, "rev-parse", "HEAD")


def test_rewritten_tracked_results_do_not_make_it_dirty(repo):
    (repo / "results" / "cpu" / "metrics.json").write_text('{"dice": 0.5}\n')
    (repo / "untracked.txt").write_text("scratch\n")
    assert git_commit(repo) == git(repo, "rev-parse", "HEAD")


def test_a_changed_code_file_makes_it_dirty_even_from_a_subfolder(repo):
    (repo / "ichseg" / "model.py").write_text("x = 2\n")
    (repo / "results" / "cpu" / "metrics.json").write_text('{"dice": 0.5}\n')
    assert git_commit(repo / "results") == git(repo, "rev-parse", "HEAD") + "-dirty"


def test_outside_a_repository_it_says_unknown(tmp_path):
    assert git_commit(tmp_path) == "unknown"

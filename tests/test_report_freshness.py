"""The results page's notice: which commit made a committed profile, and what code changed since."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

from ichseg.report.freshness import changed_files, freshness_notice, part_of


def _git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def _repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / "ichseg" / "models").mkdir(parents=True)
    (repo / "ichseg" / "models" / "unet.py").write_text("x = 1\n")
    (repo / "README.md").write_text("hello\n")
    _git(repo.parent, "init", "-q", str(repo))
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "one")
    return repo, _git(repo, "rev-parse", "HEAD")


def _study(commits, profile="cpu"):
    return SimpleNamespace(profile=profile, runs=[{"info": {"environment": {"git_commit": c}}} for c in commits])


def test_current_code_says_so_and_changes_are_listed_by_part(tmp_path):
    repo, first = _repo(tmp_path)
    assert changed_files(first, repo) == []
    assert "made by the code of this build" in freshness_notice(_study([first]), repo)
    (repo / "README.md").write_text("prose only\n")  # not code that makes numbers
    assert "made by the code of this build" in freshness_notice(_study([first]), repo)
    (repo / "ichseg" / "models" / "unet.py").write_text("x = 2\n")  # uncommitted change counts
    (repo / "ichseg" / "engine").mkdir()
    (repo / "ichseg" / "engine" / "train.py").write_text("y = 1\n")
    _git(repo, "add", "ichseg/engine/train.py")
    notice = freshness_notice(_study([first, first]), repo)
    assert f"commit `{first[:12]}`" in notice and "`ichseg.engine` (1 file)" in notice and "`ichseg.models` (1 file)" in notice


def test_unknown_commit_and_dirty_runs_are_named(tmp_path):
    repo, first = _repo(tmp_path)
    notice = freshness_notice(_study(["f" * 40, first + "-dirty"]), repo)
    assert "`ffffffffffff` is not in this checkout's history" in notice
    assert "uncommitted changes (`-dirty`)" in notice


def test_runs_re_scored_later_name_both_commits(tmp_path):
    """After ``ichseg study --keep-trained`` the evaluations are newer than the trainings: both count."""
    repo, first = _repo(tmp_path)
    (repo / "ichseg" / "models" / "unet.py").write_text("x = 3\n")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "two")
    second = _git(repo, "rev-parse", "HEAD")
    study = _study([first])
    study.runs[0]["metrics"] = {"bhsd": {"environment": {"git_commit": second}}}
    notice = freshness_notice(study, repo)
    assert f"`{first[:12]}` (trainings) and `{second[:12]}` (evaluations)" in notice
    assert "`ichseg.models` (1 file)" in notice  # changed since the trainings' commit


def test_part_of():
    assert part_of("ichseg/models/unet.py") == "ichseg.models"
    assert part_of("ichseg/cli.py") == "ichseg"
    assert part_of("book/notebooks/results.ipynb") == "book/notebooks"

"""What a run records about where its numbers come from: git commit, versions, device."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import torch

from .. import __version__


# what a study writes into the checkout: a committed profile's results are tracked files that its
# own re-run rewrites, which says nothing about the code the numbers came from
OUTPUT_PATHS = ("results",)


def git_commit(repo: Path | None = None) -> str:
    """The checked-out commit, or ``unknown``; suffixed ``-dirty`` when tracked files other than the
    study's outputs (``OUTPUT_PATHS``) differ from it."""
    cwd = repo or Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
        pathspec = [":(top)", *(f":(top,exclude){p}" for p in OUTPUT_PATHS)]
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *pathspec], cwd=cwd,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def environment(device: torch.device) -> dict:
    import numpy

    return {
        "ichseg": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "device": device_description(device),
        "git_commit": git_commit(),
    }

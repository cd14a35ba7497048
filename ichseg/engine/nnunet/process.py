"""nnunetv2 itself: is it installed, and running its steps as child processes.

Every nnU-Net step runs as a child process with ``nnUNet_raw``, ``nnUNet_preprocessed`` and
``nnUNet_results`` pointing into a work folder (the caller's ``os.environ`` is not touched), its
output appended to a log; a failed step raises ``IchsegError`` naming the command and the log.
Training and prediction run the small script ``trainer/ichseg_nnunet.py``, which calls nnU-Net's
Python API as its commands do (the design is on the book's baselines page).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping

from ...errors import IchsegError
from ..config import NnunetConfig
from ..devices import resolve_device

#: the nnunetv2 release this package is written and tested against (``nnUNet_extTrainer`` needs 2.8)
NNUNET_REQUIREMENT = "nnunetv2==2.8.1"
MIN_NNUNET = (2, 8)
TRAINER_DIR = Path(__file__).resolve().parent / "trainer"
RUNNER = TRAINER_DIR / "ichseg_nnunet.py"
PLANS = "nnUNetPlans"
#: the checkpoint nnU-Net predicts with (its default): the final one, so no validation case selects the model
CHECKPOINT = "checkpoint_final.pth"


def read_json(path: Path) -> dict | None:
    """A small JSON record (a stamp), or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def nnunet_version() -> str:
    """The installed nnunetv2 version; ``IchsegError`` when it is missing or too old."""
    hint = f"install it with `pip install {NNUNET_REQUIREMENT}` (or `pip install -e .` in the ichseg repository)"
    if importlib.util.find_spec("nnunetv2") is None:
        raise IchsegError(f"nnU-Net baseline: the package nnunetv2 is not installed; {hint}")
    try:
        version = importlib.metadata.version("nnunetv2")
    except importlib.metadata.PackageNotFoundError:
        raise IchsegError(f"nnU-Net baseline: nnunetv2 is importable but has no package metadata; {hint}") from None
    parts = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
    if parts < MIN_NNUNET:
        raise IchsegError(f"nnU-Net baseline: nnunetv2 {version} is too old (needs >= "
                          f"{'.'.join(map(str, MIN_NNUNET))}); {hint}")
    return version


def _entry_point(name: str) -> tuple[str, str]:
    """(module, function) of one of nnunetv2's console scripts, from its own metadata."""
    for ep in importlib.metadata.entry_points(group="console_scripts", name=name):
        module, _, func = ep.value.partition(":")
        return module.strip(), func.strip()
    raise IchsegError(f"nnU-Net baseline: nnunetv2 does not provide the command {name}; "
                      f"install it with `pip install {NNUNET_REQUIREMENT}`")


def command(name: str, args: list[str]) -> list[str]:
    """argv running nnunetv2's console script ``name`` with the current interpreter."""
    module, func = _entry_point(name)
    code = f"import sys; from {module} import {func} as main; sys.argv[0] = {name!r}; sys.exit(main())"
    return [sys.executable, "-c", code, *args]


def nnunet_device(cfg: NnunetConfig) -> str:
    """``cpu`` or ``cuda``: nnU-Net's ``-device`` argument for ``cfg.device`` (``auto`` resolved)."""
    return resolve_device(cfg.device, "nnunet.device").type


def child_env(roots: Mapping[str, Path], cfg: NnunetConfig, *, training: bool = False) -> dict[str, str]:
    """The child's environment: the caller's, plus nnU-Net's folders and settings.

    ``nnUNet_n_proc_DA`` is set for training only: nnU-Net's planner passes it to
    ``torch.set_num_threads``, which refuses 0."""
    env = dict(os.environ)
    env.update({k: str(Path(v).resolve()) for k, v in roots.items()})
    env["nnUNet_extTrainer"] = str(TRAINER_DIR)
    env["nnUNet_def_n_proc"] = str(cfg.processes)
    if cfg.threads is not None:  # BLAS/OpenMP pools of the child and its workers
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[k] = str(cfg.threads)
    if not training:
        env.pop("nnUNet_n_proc_DA", None)
    elif cfg.da_workers is not None:
        env["nnUNet_n_proc_DA"] = str(cfg.da_workers)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("MPLBACKEND", "Agg")
    return env


def roots_of(work_dir: Path) -> dict[str, Path]:
    return {"nnUNet_raw": work_dir / "nnUNet_raw", "nnUNet_preprocessed": work_dir / "nnUNet_preprocessed",
            "nnUNet_results": work_dir / "nnUNet_results"}


def run_step(display: str, argv: list[str], env: Mapping[str, str], log_path: Path, cwd: Path | None = None) -> float:
    """Run one nnU-Net step, its output appended to ``log_path``; seconds taken.

    A non-zero exit raises ``IchsegError`` with one line naming ``display`` and the log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {display}\n")
        log.flush()
        try:
            rc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=dict(env),
                                cwd=str(cwd) if cwd else None, check=False).returncode
        except OSError as exc:
            raise IchsegError(f"nnU-Net step `{display}` could not start ({exc}); see {log_path}") from None
    if rc != 0:
        raise IchsegError(f"nnU-Net step `{display}` failed with exit status {rc}; see {log_path}")
    return time.perf_counter() - t0


__all__ = ["CHECKPOINT", "NNUNET_REQUIREMENT", "PLANS", "RUNNER", "child_env", "command", "nnunet_device",
           "nnunet_version", "read_json", "roots_of", "run_step"]

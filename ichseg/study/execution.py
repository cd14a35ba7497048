"""Executing one stage: its notebook with papermill's Python API (kernel ``python3``, working
directory = the repository root), or its in-process body when it has no notebook.

Each kernel gets ``threads`` BLAS/OpenMP threads in its environment (``THREAD_VARIABLES``), so
stages run side by side keep the cores busy without oversubscription. A kernel that dies while
starting (e.g. a port taken between its choice and the kernel's bind: jupyter_client's port cache
only guards kernels of one process) is started again. A failing notebook raises ``StudyFailed``
naming the executed notebook, which papermill wrote, traceback included, before raising.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

from ..errors import IchsegError
from .planning import Stage

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# what a kernel that died while starting leaves in the message (nbclient / jupyter_client / zmq)
KERNEL_START_FAILURES = ("kernel died before replying", "kernel didn't respond", "address already in use")
KERNEL_START_ATTEMPTS = 3


class StudyFailed(IchsegError):
    """A stage failed; ``notebook`` is the executed notebook holding the traceback (or None)."""

    def __init__(self, message: str, stage: str, notebook: Path | None):
        super().__init__(message)
        self.stage, self.notebook = stage, notebook
        self.timing: dict | None = None  # the stage's row of the timing table


def _kernel_manager_class(env: dict[str, str]):
    """An AsyncKernelManager whose kernels get ``env`` on top of this process's environment
    (papermill passes no environment of its own to the kernel it starts)."""
    from jupyter_client.manager import AsyncKernelManager

    class StageKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):  # noqa: D401 - jupyter_client's signature
            kw["env"] = {**os.environ, **(kw.get("env") or {}), **env}
            return await AsyncKernelManager.start_kernel(self, **kw)

    return StageKernelManager


def _kernel_start_failure(exc: BaseException) -> bool:
    """Did the kernel fail to *start* (worth another start), rather than die running a cell?"""
    try:
        from nbclient.exceptions import DeadKernelError
    except ImportError:  # pragma: no cover
        DeadKernelError = ()  # noqa: N806
    if DeadKernelError and isinstance(exc, DeadKernelError):
        return False
    return any(m in str(exc).lower() for m in KERNEL_START_FAILURES)


def execute_stage(stage: Stage, root: Path, threads: int, rel: Callable[[Path], str],
                  log: Callable[[str], None]) -> None:
    """Run ``stage`` once (its notebook into ``stage.output``, or ``stage.run``)."""
    if stage.notebook is None:
        stage.run()
        return
    import papermill
    from papermill.exceptions import PapermillExecutionError

    stage.output.parent.mkdir(parents=True, exist_ok=True)
    env = {k: str(threads) for k in THREAD_VARIABLES}
    for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
        try:
            papermill.execute_notebook(
                str(stage.notebook), str(stage.output), parameters=stage.parameters, kernel_name="python3",
                cwd=str(root), progress_bar=False, log_output=False, kernel_manager_class=_kernel_manager_class(env),
            )
            return
        except PapermillExecutionError as exc:
            raise StudyFailed(f"stage {stage.id} failed in notebook {rel(stage.output)} (cell {exc.exec_count}: "
                              f"{exc.ename}: {exc.evalue})", stage.id, stage.output) from None
        except (RuntimeError, TimeoutError, OSError) as exc:
            if attempt == KERNEL_START_ATTEMPTS or not _kernel_start_failure(exc):
                raise
            log(f"{stage.id}: kernel start failed ({type(exc).__name__}: {exc}); starting it again")
            time.sleep(0.5 * attempt)


__all__ = ["KERNEL_START_ATTEMPTS", "StudyFailed", "THREAD_VARIABLES", "execute_stage"]

"""Fixtures shared by several test modules (pytest finds them by name; no import needed)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def single_thread():
    """One intra-op torch thread for a module's tests, restored afterwards. On a shared 2-core
    machine two OpenMP threads competing with other processes made a tiny forward ~100x slower
    (4.6 s instead of 0.05 s); and a thread count leaking into later modules changes the CPU
    reduction order, and with it their bit-exact resume comparisons.
    A module opts in with ``pytestmark = pytest.mark.usefixtures("single_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, request) -> Path:
    """One scratch folder per test module (its trained runs and prepared data are shared by its tests)."""
    return tmp_path_factory.mktemp(request.module.__name__.removeprefix("test_"))


PLAN_COMMIT = "abc123def4" + "0" * 30  # a known commit, so tests can read it back from the page
PLAN_THRESHOLD = 0.3


@pytest.fixture(scope="module")
def plan():
    """The evidence profile's real pre-registration (its comparisons and seeds), with a made-up seed
    SD (0.017), convergence threshold (``PLAN_THRESHOLD``) and commit (``PLAN_COMMIT``)."""
    from ichseg.report.preregistration import preregistration

    p = preregistration("evidence", seed_sd=0.017, convergence_threshold=PLAN_THRESHOLD)
    return {**p, "code_commit": PLAN_COMMIT}

"""Scheduling a pass (``ichseg.study.scheduling``): jobs sized to the machine, the critical path
that orders ready stages, and the timing table."""

from __future__ import annotations

import pytest

from ichseg.study import StudyPass, StudySpec
from ichseg.study.planning import Stage
from ichseg.study.scheduling import (check_jobs, critical_path_seconds, default_jobs, format_timings, run_stages,
                                     start_first_rank, threads_per_job)


def test_default_jobs_are_sized_to_the_machine():
    assert default_jobs(2, cuda=False) == 2 and threads_per_job(2, 2) == 1
    assert default_jobs(16, cuda=False) == 4 and threads_per_job(4, 16) == 4
    assert default_jobs(1, cuda=False) == 1 and default_jobs(16, cuda=True) == 1
    with pytest.raises(ValueError, match="--jobs: must be a positive integer, got 0"):
        StudyPass(StudySpec(profile="smoke", methods=["full"], jobs=0), log=lambda m: None)
    assert check_jobs(2, None) == (2, threads_per_job(2)) and check_jobs(3, 5) == (3, 5)



def test_critical_path_seconds_puts_the_longest_chain_first():
    """A chain of stages (train 200 s -> evaluate 100 s) outranks a longer single stage (250 s) and
    its own evaluation; an unrecorded stage counts 0 s, so a first pass keeps the plan order."""

    def st(i, *up):
        return Stage(id=i, kind="train", parameters={}, notebook=None, output=None, upstream=list(up))

    stages = [st("prep"), st("train-a", "prep"), st("eval-a", "train-a"), st("train-b", "prep"), st("eval-b", "train-b")]
    path = critical_path_seconds(stages, {"prep": 10, "train-a": 250, "eval-a": 20, "train-b": 200, "eval-b": 100})
    assert path == {"prep": 310.0, "train-a": 270.0, "eval-a": 20.0, "train-b": 300.0, "eval-b": 100.0}
    assert max(("train-a", "train-b"), key=path.get) == "train-b"
    fresh = critical_path_seconds(stages, {})
    assert set(fresh.values()) == {0.0}  # all tied: plan order


def test_a_first_pass_starts_the_profile_s_longest_trainings_first():
    """No stage timed yet: after the shared prep, the trainings of ``start_first`` start in its order,
    the others in plan order; a recorded chain still outranks the hint."""

    def st(i, method=None, *up):
        return Stage(id=i, kind="train", parameters={}, notebook=None, output=None, upstream=list(up), method=method)

    stages = [st("prep")] + [st(f"train-{m}", m, "prep") for m in ("unet", "full", "ukan", "nnunet")]
    started = []

    def run(order_seconds, first):
        started.clear()
        run_stages(stages, 1, order_seconds, lambda s: started.append(s.id) or {}, lambda row: None, start_first=first)
        return list(started)

    assert run({}, ("ukan", "full")) == ["prep", "train-ukan", "train-full", "train-unet", "train-nnunet"]
    assert run({}, ()) == ["prep", "train-unet", "train-full", "train-ukan", "train-nnunet"]  # plan order
    assert run({"train-unet": 5.0}, ("ukan", "full"))[:2] == ["prep", "train-unet"]
    assert StudyPass(StudySpec(profile="smoke"), log=lambda m: None).plan.start_first[0] == "nnunet"


def test_a_preparation_ranks_with_the_first_listed_method_it_feeds():
    """A listed method's evaluation needs a test set's preparation: that preparation must not wait
    behind the training of a method listed later, or the first method's chain stalls."""

    def st(i, method=None, *up):
        return Stage(id=i, kind="x", parameters={}, notebook=None, output=None, upstream=list(up), method=method)

    stages = [st("prep-train"), st("prep-test"), st("train-a", "a", "prep-train"), st("eval-a", "a", "train-a", "prep-test"),
              st("train-b", "b", "prep-train"), st("eval-b", "b", "train-b", "prep-test"), st("prep-unused")]
    rank = start_first_rank(stages, ("a", "b"))
    assert rank == {"prep-train": 2, "prep-test": 2, "train-a": 2, "eval-a": 2, "train-b": 1, "eval-b": 1, "prep-unused": 0}
    started = []
    run_stages(stages, 1, {}, lambda s: started.append(s.id) or {}, lambda row: None, start_first=("a", "b"))
    assert started.index("eval-a") < started.index("train-b")


def test_the_timing_table_names_each_stage_and_both_times():
    record = {"profile": "smoke", "status": "complete", "total_seconds": 12.0, "stage_seconds": 20.0, "jobs": 2,
              "threads_per_job": 1, "stages": [
                  {"id": "train-full-s0", "kind": "train", "status": "resumed", "seconds": 5.0, "last_run_seconds": 95.0,
                   "start": 0.0, "end": 5.0}]}
    lines = format_timings(record).splitlines()
    assert lines[0] == "study smoke: complete in 12.0 s wall (20.0 s of stages, 2 at a time, 1 thread(s) each)"
    assert lines[2].split() == ["train-full-s0", "train", "resumed", "5.0s", "95.0s", "0.0s", "5.0s"]

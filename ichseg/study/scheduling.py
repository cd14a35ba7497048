"""Scheduling a pass: how many stages at once, which ready stage first, and the timing table.

Up to ``jobs`` independent stages run at once; a stage starts when all its upstream stages have
completed; of the stages ready, the one heading the longest chain of remaining work starts first
(``critical_path_seconds``); among stages no pass has timed yet, those of the profile's
``study.start_first`` methods first, in its order (a data preparation ranks with the first listed
method downstream of it).
At the first failure no further stage starts, running ones finish, and the failure is raised.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable, Sequence

from ..utils.validate import check_int
from .execution import StudyFailed
from .planning import Stage



def default_jobs(cores: int | None = None, cuda: bool | None = None) -> int:
    """Concurrent stages for this machine: one per two cores up to 4 (small CPU stages scale
    poorly past a few threads each), at least 2 on a multi-core CPU; one on a CUDA machine, whose
    stages share the GPU."""
    cores = cores or os.cpu_count() or 1
    if cuda is None:
        try:
            import torch

            cuda = torch.cuda.is_available()
        except ImportError:  # pragma: no cover - torch is a dependency
            cuda = False
    if cuda or cores < 2:
        return 1
    return max(2, min(4, cores // 2))


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    return max(1, (cores or os.cpu_count() or 1) // max(1, jobs))


def check_jobs(jobs, threads) -> tuple[int, int]:
    """(jobs, threads per job) of a spec, refusing what is not a positive count in one line."""
    jobs = check_int("--jobs", jobs)
    return jobs, (check_int("--threads", threads) if threads else threads_per_job(jobs))


def _downstream(stages: list[Stage]) -> dict[str, list[str]]:
    """Each stage's id -> the ids of the stages that name it upstream."""
    below: dict[str, list[str]] = {s.id: [] for s in stages}
    for s in stages:
        for u in s.upstream:
            if u in below:
                below[u].append(s.id)
    return below


def critical_path_seconds(stages: list[Stage], seconds: dict[str, float]) -> dict[str, float]:
    """Each stage's own seconds plus the longest chain of stages downstream of it.

    ``stages`` in plan order (upstream before downstream); ``seconds``: what each stage took when it
    last ran (a stage without a record counts 0 s, so a first pass keeps the plan order). Starting
    the ready stage with the largest value first is critical-path list scheduling: a long chain
    (nnU-Net's training, then its evaluation) starts early instead of running alone at the end
    while the other jobs sit idle."""
    below = _downstream(stages)
    path: dict[str, float] = {}
    for s in reversed(stages):
        path[s.id] = float(seconds.get(s.id) or 0.0) + max((path[d] for d in below[s.id]), default=0.0)
    return path


def start_first_rank(stages: list[Stage], start_first: Sequence[str]) -> dict[str, int]:
    """Each stage's place in ``start_first`` (higher first; 0: its method is not listed), a stage
    with no method of its own (a data preparation) taking the highest of the stages downstream of
    it: it is part of their chains."""
    rank = {m: len(start_first) - i for i, m in enumerate(start_first)}
    below = _downstream(stages)
    out: dict[str, int] = {}
    for s in reversed(stages):
        out[s.id] = rank.get(s.method, 0) if s.method else max((out[d] for d in below[s.id]), default=0)
    return out


def run_stages(stages: list[Stage], jobs: int, seconds: dict[str, float], run_one: Callable[[Stage], dict],
               on_row: Callable[[dict], None], start_first: Sequence[str] = ()) -> None:
    """Every stage, up to ``jobs`` at once, each after its upstream stages, the ready stage heading
    the longest recorded chain first (then those of ``start_first``'s methods in its order, then
    plan order). ``run_one(stage)`` returns
    the stage's timing row (or raises ``StudyFailed`` carrying it); ``on_row`` gets each row as the
    stage finishes. At the first failure no further stage starts, running ones finish, and the
    failure is raised."""
    priority = critical_path_seconds(stages, seconds)
    rank = start_first_rank(stages, start_first)
    pending, done, running = list(stages), set(), {}
    failure: StudyFailed | None = None

    def next_ready() -> Stage | None:
        return max((s for s in pending if all(u in done for u in s.upstream)),
                   key=lambda s: (priority[s.id], rank[s.id]), default=None)

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="stage") as pool:
        while pending or running:
            while failure is None and len(running) < jobs and (ready := next_ready()) is not None:
                pending.remove(ready)
                running[pool.submit(run_one, ready)] = ready
            if not running:
                if failure is None and pending:  # an upstream id that no stage provides
                    raise StudyFailed(f"stage {pending[0].id}: upstream {pending[0].upstream} never completes",
                                      pending[0].id, None)
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                stage: Stage = running.pop(fut)
                try:
                    on_row(fut.result())
                    done.add(stage.id)
                except StudyFailed as exc:
                    on_row(exc.timing)
                    failure = failure or exc
    if failure is not None:
        raise failure


def timing_record(profile: str, status: str, rows: list[dict], order: list[str], total_seconds: float,
                  jobs: int, threads: int, finished: str) -> dict:
    """timings.json: the pass's rows in plan order, its wall time and the sum of its stages'."""
    index = {sid: i for i, sid in enumerate(order)}
    rows = sorted(rows, key=lambda r: index.get(r["id"], len(index)))
    return {"profile": profile, "status": status, "finished": finished, "total_seconds": total_seconds,
            "stage_seconds": round(sum(r["seconds"] for r in rows), 3), "jobs": jobs, "threads_per_job": threads,
            "cpu_count": os.cpu_count(), "stages": rows}


def format_timings(record: dict) -> str:
    """The timing table the driver prints (seconds this pass; seconds the stage's whole work took
    when it last ran: for a resumed training, the run's own time from its run.json)."""
    jobs = record.get("jobs", 1)
    head = f"study {record['profile']}: {record['status']} in {record['total_seconds']:.1f} s wall"
    if "stage_seconds" in record:
        head += f" ({record['stage_seconds']:.1f} s of stages, {jobs} at a time, {record.get('threads_per_job', '?')} thread(s) each)"
    lines = [head, f"{'stage':<34} {'kind':<9} {'status':<8} {'this pass':>10} {'last run':>10} {'start':>8} {'end':>8}"]
    for s in record["stages"]:
        last = s.get("last_run_seconds")
        span = (f"{s['start']:>7.1f}s {s['end']:>7.1f}s" if s.get("start") is not None else f"{'-':>8} {'-':>8}")
        lines.append(f"{s['id']:<34} {s['kind']:<9} {s['status']:<8} {s['seconds']:>9.1f}s "
                     f"{(f'{last:.1f}s' if last is not None else '-'):>10} {span}")
    return "\n".join(lines)


__all__ = ["check_jobs", "critical_path_seconds", "default_jobs", "format_timings",
           "run_stages", "threads_per_job", "timing_record"]

"""The study driver: prep -> train (method x seed) -> evaluate -> results, as papermill runs.

A pass is planned (``planning``: the run set and its stages), each stage is skipped when its
*stamp* matches the last completed one (``stamps``), run otherwise (``execution``: its notebook,
executed into ``results/<profile>/notebooks/``), up to ``jobs`` at a time in dependency order,
longest remaining chain first (``scheduling``). So re-running with nothing changed runs nothing,
and changing one method's parameters re-runs that method's training and evaluation and the
results page only.

A failing notebook stops the study with a ``StudyFailed`` naming the executed notebook: no further
stage starts, stages already running finish (their stamps are recorded), then the first failure is
raised. ``study.json`` (the run set and all stage stamps) is written only when every upstream stage
has completed, and the results notebook refuses a run set whose stamps no longer match
(``ichseg.report.load_study``), so a report never shows numbers from a mix of passes.

``keep_trained`` (``ichseg study --keep-trained``) keeps completed preparations and trainings
whose stamps changed only because the code did (``stamps.StampBook.kept``): the evaluations and the
results page are made again with the current code, the trainings stay those of their recorded commit.

A completed training whose weights are not on disk (results committed without them, read from a
fresh clone) is *settled* while every evaluation of it is current (``stamps.StampBook.settled``):
it is not trained again to remake what was already scored, so a clone completes a pass from where
its committed results stand.

Stamp records have ``status`` ``running`` while a stage executes (a killed training run with the
same stamp is *resumed* from its last checkpoint) and ``complete`` afterwards. A training stage
whose stamp changed starts from an empty run folder; a run folder without any stamp record
(trained beforehand, e.g. with torchrun) is resumed as is.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Callable

from ..utils import atomic_write_json
from ..utils.layout import run_info_path
from ..utils.stamps import STUDY_FILE, TIMINGS_FILE, study_stamp
from .execution import StudyFailed, execute_stage
from .planning import Plan, Stage, StudySpec, parse_overrides
from .scheduling import check_jobs, default_jobs, format_timings, run_stages, threads_per_job, timing_record
from .stamps import CODE_DEPS, StampBook, code_hash, last_seconds, now


class StudyPass:
    """One planned pass of the study (``plan``); ``run()`` executes it, ``dry_run()`` says what
    it would run. (A finished pass, read back for the report, is ``ichseg.report.Study``.)"""

    def __init__(self, spec: StudySpec, log: Callable[[str], None] = print):
        self.spec, self.log = spec, log
        self.jobs, self.threads = check_jobs(spec.jobs, spec.threads)
        self.plan = Plan(spec)
        self.profile, self.root, self.results_dir = self.plan.profile, self.plan.root, self.plan.results_dir
        self.stages = self.plan.stages
        self.stamps = StampBook(self.results_dir)
        self.downstream = {s.id: [t for t in self.stages if s.id in t.upstream] for s in self.stages}
        self.timings: list[dict] = []  # rows of this pass's timing table, as stages finish
        self._started = time.perf_counter()

    # the run set, as the plan resolved it
    methods = property(lambda self: self.plan.methods)
    seeds = property(lambda self: self.plan.seeds)
    seeds_of = property(lambda self: self.plan.seeds_of)
    configs = property(lambda self: self.plan.configs)
    datasets = property(lambda self: self.plan.datasets)

    def rel(self, path: Path) -> str:
        return self.plan.rel(path)

    def run_set(self) -> dict:
        return self.plan.run_set()

    def stamp_path(self, stage_id: str) -> Path:
        return self.stamps.path(stage_id)

    def execute(self, stage: Stage) -> None:
        execute_stage(stage, self.root, self.threads, self.rel, self.log)

    def _kept(self, stage: Stage) -> bool:
        if not self.spec.keep_trained or self.spec.force:
            return False
        return self.stamps.kept(stage, {t["id"] for t in self.timings if t.get("status") in ("ran", "resumed")})

    def _stands(self, stage: Stage) -> bool:
        """Can the last completed run of ``stage`` stand (current, kept, or a settled training)?"""
        stamp = self.stamps.stamps_of(stage)[0]
        return (self.stamps.is_current(stage, stamp, self.spec.force) or self._kept(stage)
                or self._settled(stage, stamp))

    def _settled(self, stage: Stage, stamp: str) -> bool:
        return not self.spec.force and self.stamps.settled(stage, stamp, self.downstream.get(stage.id, []))

    def _row(self, stage: Stage, status: str, seconds: float, last: float | None, start: float) -> dict:
        return {"id": stage.id, "kind": stage.kind, "status": status, "seconds": round(seconds, 3),
                "last_run_seconds": last, "notebook": self._nb(stage), "start": start, "end": self._clock()}

    def _run_stage(self, stage: Stage, label: str) -> dict:
        stamp, inputs_stamp = self.stamps.stamps_of(stage)
        prev = self.stamps.record(stage.id)
        if self.stamps.is_current(stage, stamp, self.spec.force) or self._kept(stage):
            kept = prev.get("stamp") != stamp
            self.log(f"{label}: kept as made (stamp {prev.get('stamp')}; the code changed since: --keep-trained)" if kept
                     else f"{label}: up to date (stamp {stamp}), skipped")
            return self._row(stage, "kept" if kept else "skipped", 0.0, prev.get("seconds"), self._clock())
        if self._settled(stage, stamp):
            self.log(f"{label}: complete (stamp {stamp}); its weights are not on disk and every evaluation of them is "
                     "current, so it is not trained again")
            return self._row(stage, "settled", 0.0, prev.get("seconds"), self._clock())
        resumed = prev.get("status") == "running" and prev.get("stamp") == stamp and not self.spec.force
        # Outputs this driver made for *other* inputs are removed; a run folder it has no record of
        # (e.g. trained beforehand with torchrun into the same folder) is kept, and the notebook
        # resumes it (the engine refuses one trained with another configuration).
        if (prev.get("stamp") and prev.get("stamp") != stamp) or self.spec.force:
            for p in stage.wipe:
                if p.exists():
                    shutil.rmtree(p)
        self.log(f"{label}: {'resuming' if resumed else 'running'} {self._nb(stage) or '(in-process)'}")
        # what the stage took when it last completed stays known while it runs again (the
        # scheduler's critical-path estimate of a pass restarted after an interruption)
        self.stamps.write(stage.id, {"stamp": stamp, "status": "running", "kind": stage.kind, "started": now(),
                                     "parameters": stage.parameters, "last_run_seconds": last_seconds(prev)})
        start, t0 = self._clock(), time.perf_counter()
        try:
            self.execute(stage)
            outputs = stage.collect() if stage.collect else {}
        except Exception as exc:
            failed = exc if isinstance(exc, StudyFailed) else StudyFailed(
                f"stage {stage.id} failed: {type(exc).__name__}: {exc}", stage.id, stage.output)
            failed.timing = self._record_failure(stage, stamp, time.perf_counter() - t0, start)
            if failed is exc:
                raise
            raise failed from exc
        seconds = time.perf_counter() - t0
        whole = _run_seconds(stage) if resumed else None  # a resumed training: the run's own time
        whole = round(whole if whole is not None else seconds, 3)
        self.stamps.write(stage.id, {
            "stamp": stamp, "inputs_stamp": inputs_stamp, "status": "complete", "kind": stage.kind, "finished": now(),
            "seconds": whole, "notebook": self._nb(stage), "parameters": stage.parameters, "outputs": outputs})
        self.log(f"{label}: done in {seconds:.1f} s")
        return self._row(stage, "resumed" if resumed else "ran", seconds, whole, start)

    def _record_failure(self, stage: Stage, stamp: str, seconds: float, start: float) -> dict:
        self.stamps.write(stage.id, {"stamp": stamp, "status": "failed", "kind": stage.kind, "finished": now(),
                                     "seconds": round(seconds, 3), "notebook": self._nb(stage)})
        return self._row(stage, "failed", seconds, None, start)

    def _clock(self) -> float:
        """Seconds since this pass started (the timing table's start / end columns)."""
        return round(time.perf_counter() - self._started, 3)

    def _nb(self, stage: Stage) -> str | None:
        return self.rel(stage.output) if stage.output is not None else None

    def _write_timings(self, status: str) -> dict:
        record = timing_record(self.profile, status, self.timings, [s.id for s in self.stages], self._clock(),
                               self.jobs, self.threads, now())
        atomic_write_json(self.results_dir / TIMINGS_FILE, record)
        return record

    def _write_run_set(self) -> str:
        """study.json once every stage before the results page completed; returns its stamp."""
        run_set = self.run_set()
        run_set["stages"] = {s.id: self.stamps.record(s.id)["stamp"] for s in self.stages}
        run_set["stamp"] = study_stamp(run_set)
        run_set["created"] = now()
        old = _read_json(self.results_dir / STUDY_FILE)
        if old.get("stamp") != run_set["stamp"]:
            atomic_write_json(self.results_dir / STUDY_FILE, run_set)
        return run_set["stamp"]

    def run(self) -> dict:
        """Execute the plan; returns the timing record (also written to timings.json)."""
        self._started, self.timings = time.perf_counter(), []
        self.results_dir.mkdir(parents=True, exist_ok=True)
        total = len(self.stages) + 1
        index = {s.id: i for i, s in enumerate(self.stages, 1)}
        self.log(f"study {self.profile}: {total} stages, {self.jobs} at a time, {self.threads} thread(s) each")
        try:
            run_stages(self.stages, self.jobs, {s.id: last_seconds(self.stamps.record(s.id)) for s in self.stages},
                       lambda s: self._run_stage(s, f"[{index[s.id]}/{total}] {s.id}"), self.timings.append,
                       start_first=self.plan.start_first)
            results = self.plan.results_stage(self._write_run_set())
            try:
                self.timings.append(self._run_stage(results, f"[{total}/{total}] results"))
            except StudyFailed as exc:
                self.timings.append(exc.timing)
                raise
        except StudyFailed:
            self.log(format_timings(self._write_timings("failed")))
            raise
        record = self._write_timings("complete")
        self.log(format_timings(record))
        return record

    def dry_run(self) -> list[tuple[str, str]]:
        """(stage, 'skip' | 'run') for the stages before the results page, from the stamps on disk.

        A stage downstream of one that will run is reported as 'run' (its upstream stamp changes).
        """
        plan, changed = [], set()
        for stage in self.stages:
            will = bool(set(stage.upstream) & changed) or not self._stands(stage)
            if will:
                changed.add(stage.id)
            plan.append((stage.id, "run" if will else "skip"))
        plan.append(("results", "run" if changed or not (self.results_dir / "results.ipynb").is_file() else "skip?"))
        return plan


def _run_seconds(stage: Stage) -> float | None:
    """A training's whole time from its run.json (a resumed stage ran only its last part)."""
    if stage.kind != "train" or stage.run_dir is None:
        return None
    seconds = _read_json(run_info_path(stage.run_dir)).get("wall_time_s")
    return float(seconds) if isinstance(seconds, (int, float)) else None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def run_study(spec: StudySpec, log: Callable[[str], None] = print) -> dict:
    return StudyPass(spec, log=log).run()


__all__ = ["CODE_DEPS", "Stage", "StudyFailed", "StudyPass", "StudySpec", "code_hash", "default_jobs", "format_timings",
           "parse_overrides", "run_study", "threads_per_job"]

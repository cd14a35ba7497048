"""The study driver: prep -> train (method x seed) -> evaluate -> results, as papermill runs.

Every stage is a parameterised notebook executed with papermill's Python API (kernel ``python3``,
working directory = the repository root) into ``results/<profile>/notebooks/``. Up to ``jobs``
independent stages run at once (``StudySpec.jobs``; a stage starts when all its upstream stages
have completed; of the stages ready, the one heading the longest chain of remaining work starts
first: ``critical_path_seconds``; without recorded durations, the stages of ``LONG_CHAIN_METHODS``
first), each kernel with ``cores // jobs`` BLAS/OpenMP threads
(``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` in its environment), so the cores are busy without
oversubscription. A kernel that dies while starting (e.g. a port taken between its choice and the
kernel's bind: jupyter_client's port cache only guards kernels of one process) is started again.
A stage is skipped when its *stamp* matches the last completed one: the stamp hashes the stage's
parameters, the notebook file, the resolved run config, the source of the ``ichseg`` packages it
depends on, and the stamps (and recorded outputs, e.g. the prepared data's fingerprint) of its
upstream stages. So re-running with nothing changed runs nothing, and changing one method's
parameters re-runs that method's training and evaluation and the results page only.

A failing notebook stops the study with a ``StudyFailed`` naming the executed notebook (papermill
writes it, with the traceback, before raising): no further stage starts, stages already running
finish (their stamps are recorded), then the first failure is raised. ``study.json`` (the run set and all
stage stamps) is written only when every upstream stage has completed, and the results notebook
refuses a run set whose stamps no longer match (``ichseg.report.load_study``), so a report never
shows numbers from a mix of passes.

``keep_trained`` (``ichseg study --keep-trained``) keeps completed preparations and trainings
whose stamps changed only because the code did (``Study.kept``): the evaluations and the results
page are made again with the current code, the trainings stay those of their recorded commit.

Stamp records: ``results/<profile>/stamps/<stage>.json`` with ``status`` ``running`` while a stage
executes (a killed training run with the same stamp is *resumed* from its last checkpoint) and
``complete`` afterwards. A training stage whose stamp changed starts from an empty run folder; a
run folder without any stamp record (trained beforehand, e.g. with torchrun) is resumed as is.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import yaml

from ..errors import ConfigError, IchsegError
from ..utils import atomic_write_json, config_hash, file_sha256
from ..utils.stamps import STAMPS_DIR, STUDY_FILE, TIMINGS_FILE, read_stamp, study_stamp
from .profiles import METHODS, study_settings

PACKAGE_DIR = Path(__file__).resolve().parents[1]
KEPT_KINDS = ("prep", "train")  # what --keep-trained keeps across code changes
# Methods whose train + evaluate chain was among the longest of the study on every profile measured
# here (nnU-Net plans, preprocesses, trains and predicts with mirroring in its own processes: cpu
# 2,200 s against at most 2,000 s for a diffusion method; smoke 342 s, second to the full model's
# 353 s, the others 120-339 s, of 2,483 s of stages). Of the
# ready stages with equal recorded chains (on a first pass: none recorded), theirs start first, so
# the chain does not run alone at the end while the other jobs have nothing left to do.
LONG_CHAIN_METHODS = ("nnunet",)
# ichseg sub-packages whose source enters each kind of stage's stamp
CODE_DEPS = {
    "prep": ("data", "engine/data.py", "utils", "errors.py"),
    "train": ("data", "diffusion", "engine", "metrics", "models", "utils", "errors.py"),
    "evaluate": ("data", "diffusion", "engine", "metrics", "models", "utils", "errors.py"),
    "results": ("report", "utils", "errors.py"),
}
NOTEBOOKS = {
    "prep": "data_prep/prepare.ipynb",
    "train": "book/notebooks/train.ipynb",
    "evaluate": "book/notebooks/evaluate.ipynb",
    "results": "book/notebooks/results.ipynb",
}
# parameters the driver can give a preparation notebook; only those it declares are passed
PREP_PARAMETER_CANDIDATES = ("profile", "dataset", "data_root", "overrides")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# what a kernel that died while starting leaves in the message (nbclient / jupyter_client / zmq)
KERNEL_START_FAILURES = ("kernel died before replying", "kernel didn't respond", "address already in use")
KERNEL_START_ATTEMPTS = 3


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


def _kernel_manager_class(env: dict[str, str]):
    """An AsyncKernelManager whose kernels get ``env`` on top of this process's environment
    (papermill passes no environment of its own to the kernel it starts)."""
    from jupyter_client.manager import AsyncKernelManager

    class StageKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):  # noqa: D401 - jupyter_client's signature
            kw["env"] = {**os.environ, **(kw.get("env") or {}), **env}
            return await AsyncKernelManager.start_kernel(self, **kw)

    return StageKernelManager


class StudyFailed(IchsegError):
    """A stage failed; ``notebook`` is the executed notebook holding the traceback (or None)."""

    def __init__(self, message: str, stage: str, notebook: Path | None):
        super().__init__(message)
        self.stage, self.notebook = stage, notebook
        self.timing: dict | None = None  # the stage's row of the timing table


def code_hash(parts: Iterable[str], package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 over the ``.py``/``.yaml`` files of the named sub-packages or files of ``ichseg``."""
    h = hashlib.sha256()
    for part in sorted(set(parts)):
        p = package_dir / part
        files = sorted(x for x in p.rglob("*") if x.suffix in (".py", ".yaml") and "__pycache__" not in x.parts) if p.is_dir() else [p]
        for f in files:
            if f.is_file():
                h.update(str(f.relative_to(package_dir)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@dataclass
class Stage:
    id: str
    kind: str  # prep | train | evaluate | results
    parameters: dict
    notebook: Path | None  # None: run in-process (``run``)
    output: Path | None  # executed notebook
    upstream: list[str] = field(default_factory=list)
    inputs: dict = field(default_factory=dict)  # more stamp inputs (resolved config, ...)
    outputs: list[Path] = field(default_factory=list)  # must exist for a skip
    wipe: list[Path] = field(default_factory=list)  # removed before a changed stage re-runs
    run: Callable[[], None] | None = None  # in-process body (when no notebook)
    collect: Callable[[], dict] | None = None  # outputs to record after running (e.g. data fingerprint)
    verify: Callable[[dict], bool] | None = None  # is a recorded output still there?


@dataclass
class StudySpec:
    """What one pass of the study runs."""

    profile: str  # name (smoke, gpu, paper) or a YAML file
    methods: list[str] | None = None  # default: the profile's study settings
    seeds: list[int] | None = None
    datasets: list[str] | None = None  # test datasets; default: the profile's data.test_datasets
    overrides: dict[str, list[str]] = field(default_factory=dict)  # "*" or method -> ["key=value"]
    evaluate: dict = field(default_factory=dict)  # sampler / steps / ensemble for the evaluate notebook
    root: Path = Path(".")
    results_root: Path | None = None  # default root/results
    data_root: Path | None = None  # default root/data
    notebooks: dict[str, Path] = field(default_factory=dict)  # kind -> notebook (default NOTEBOOKS)
    prepare: Callable[[dict, str, Path], Path] | None = None  # default ichseg.engine.data.ensure_prepared
    force: bool = False
    # keep every completed preparation and training as recorded, even where the code it depends on
    # changed since (``Study.kept``): re-score hours of training with a changed scorer
    keep_trained: bool = False
    jobs: int = 1  # stages run at once (the CLI's default: ``default_jobs()``)
    threads: int | None = None  # BLAS/OpenMP threads per stage kernel; default cores // jobs


def critical_path_seconds(stages: list[Stage], seconds: dict[str, float]) -> dict[str, float]:
    """Each stage's own seconds plus the longest chain of stages downstream of it.

    ``stages`` in plan order (upstream before downstream); ``seconds``: what each stage took when it
    last ran (a stage without a record counts 0 s, so a first pass keeps the plan order). Starting
    the ready stage with the largest value first is critical-path list scheduling: a long chain
    (nnU-Net's training, then its evaluation) starts early instead of running alone at the end
    while the other jobs sit idle."""
    below: dict[str, list[str]] = {s.id: [] for s in stages}
    for s in stages:
        for u in s.upstream:
            if u in below:
                below[u].append(s.id)
    path: dict[str, float] = {}
    for s in reversed(stages):
        path[s.id] = float(seconds.get(s.id) or 0.0) + max((path[d] for d in below[s.id]), default=0.0)
    return path


def parse_overrides(items: Iterable[str]) -> dict[str, list[str]]:
    """``["train.lr=2e-4", "full:train.iterations=50"]`` -> {"*": [...], "full": [...]}."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, _ = item.partition("=")
        if not sep:
            raise ConfigError(f"--set: expected [METHOD:]KEY=VALUE, got {item!r}")
        if ":" in key:
            method, assignment = item.split(":", 1)
            out.setdefault(method.strip(), []).append(assignment)
        else:
            out.setdefault("*", []).append(item)
    return out


class Study:
    """A planned pass of the study; ``run()`` executes it."""

    def __init__(self, spec: StudySpec, log: Callable[[str], None] = print):
        from ..engine.config import load_profile, resolve_run_config

        self.spec, self.log = spec, log
        self.timings: list[dict] = []  # rows of this pass's timing table, as stages finish
        self.root = Path(spec.root).resolve()
        base = load_profile(spec.profile)
        self.profile = base["profile"]
        self.description = base.get("description", "")
        settings = study_settings(self.profile)
        self.methods = list(spec.methods or settings["methods"])
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ConfigError(f"--methods: unknown {', '.join(unknown)}; known: {', '.join(METHODS)}")
        self.seeds = [int(s) for s in (spec.seeds if spec.seeds is not None else settings["seeds"])]
        # seeds per method: --seeds applies to every method; otherwise the profile's method_seeds
        # replace its seeds for the methods they name
        per_method = {} if spec.seeds is not None else settings["method_seeds"]
        self.seeds_of = {m: [int(s) for s in per_method.get(m, self.seeds)] for m in self.methods}
        self.seeds = sorted({s for m in self.methods for s in self.seeds_of[m]})
        unknown = set(spec.overrides) - {"*"} - set(self.methods)
        if unknown:
            raise ConfigError(f"--set: method(s) {', '.join(sorted(unknown))} are not in this study ({', '.join(self.methods)})")
        self.global_overrides = list(settings["overrides"]) + spec.overrides.get("*", [])
        self.overrides = {m: self.global_overrides + settings["method_overrides"].get(m, []) + spec.overrides.get(m, [])
                          for m in self.methods}
        self.results_dir = (Path(spec.results_root) if spec.results_root else self.root / "results").resolve() / self.profile
        self.data_root = (Path(spec.data_root) if spec.data_root else self.root / "data").resolve()
        self.notebooks = {k: (self.root / v) for k, v in NOTEBOOKS.items()}
        self.notebooks.update({k: Path(v).resolve() for k, v in spec.notebooks.items()})
        self.configs = {(m, s): resolve_run_config(spec.profile, m, self.overrides[m], seed=s) for m in self.methods for s in self.seeds_of[m]}
        # data preparation depends on the overrides shared by all methods only, so that one
        # method's override does not re-run every method's stages through the prep stamps
        self.prep_config = resolve_run_config(spec.profile, self.methods[0], self.global_overrides)
        first = self.prep_config
        self.train_dataset = first["data"].get("train_dataset", "instance2022")
        self.datasets = list(spec.datasets or first["data"].get("test_datasets") or [self.train_dataset])
        self.stages = self._plan()
        self.timings: list[dict] = []
        if isinstance(spec.jobs, bool) or not isinstance(spec.jobs, int) or spec.jobs < 1:
            raise ValueError(f"--jobs: must be a positive integer, got {spec.jobs!r}")
        self.jobs = spec.jobs
        self.threads = int(spec.threads) if spec.threads else threads_per_job(self.jobs)
        self._started = time.perf_counter()

    # -- paths as notebooks see them (relative to the repository root when inside it) -----------
    def rel(self, path: Path) -> str:
        path = Path(path).resolve()
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def _prepare(self, cfg: dict, dataset: str) -> Path:
        if self.spec.prepare is not None:
            return Path(self.spec.prepare(cfg, dataset, self.data_root))
        from ..engine.data import ensure_prepared

        return Path(ensure_prepared(cfg, dataset, self.data_root))

    # -- the plan ---------------------------------------------------------------------------------
    def _plan(self) -> list[Stage]:
        stages: list[Stage] = []
        nb_dir = self.results_dir / "notebooks"
        first_cfg = self.prep_config
        prep_nb = self.notebooks["prep"]
        for ds in dict.fromkeys([self.train_dataset, *self.datasets]):
            params = {"profile": self.spec.profile if isinstance(self.spec.profile, str) else self.profile,
                      "dataset": ds, "data_root": self.rel(self.data_root), "overrides": self.global_overrides}
            if prep_nb.is_file():
                import papermill

                declared = set(papermill.inspect_notebook(str(prep_nb)))
                params = {k: v for k, v in params.items() if k in declared}
            stage = Stage(
                id=f"prep-{ds}", kind="prep", parameters=params,
                notebook=prep_nb if prep_nb.is_file() else None,
                output=(nb_dir / f"prep-{ds}.ipynb") if prep_nb.is_file() else None,
                inputs={"data": first_cfg["data"], "dataset": ds},
            )
            stage.run = (lambda ds=ds: self._prepare(first_cfg, ds))
            stage.collect = (lambda ds=ds: self._prepared_record(first_cfg, ds))
            stage.verify = _prepared_still_there
            stages.append(stage)
        for m in self.methods:
            for s in self.seeds_of[m]:
                rid = f"{m}-s{s}"
                cfg = self.configs[(m, s)]
                run_dir = self.results_dir / "runs" / rid
                eval_dir = self.results_dir / "eval" / rid
                stages.append(Stage(
                    id=f"train-{rid}", kind="train",
                    parameters={"profile": str(self.spec.profile), "method": m, "seed": s, "overrides": self.overrides[m],
                                "out_dir": self.rel(run_dir), "data_root": self.rel(self.data_root)},
                    notebook=self.notebooks["train"], output=nb_dir / f"train-{rid}.ipynb",
                    upstream=[f"prep-{self.train_dataset}"],
                    inputs={"config": {k: x for k, x in cfg.items() if k != "evaluate"}},
                    # nnU-Net's model lives in its own folder layout (ichseg.engine.nnunet.run)
                    outputs=[run_dir / "run.json", run_dir / "train_log.csv",
                             run_dir / "nnunet" if m == "nnunet" else run_dir / "checkpoints" / "best.pt"],
                    wipe=[run_dir],
                ))
                ev = {"sampler": "", "steps": 0, "ensemble": 0, **self.spec.evaluate}  # "" / 0: the profile's
                stages.append(Stage(
                    id=f"evaluate-{rid}", kind="evaluate",
                    parameters={"profile": str(self.spec.profile), "method": m, "seed": s, "overrides": self.overrides[m],
                                "datasets": self.datasets, "run_dir": self.rel(run_dir), "out_dir": self.rel(eval_dir),
                                "data_root": self.rel(self.data_root), **ev},
                    notebook=self.notebooks["evaluate"], output=nb_dir / f"evaluate-{rid}.ipynb",
                    upstream=[f"train-{rid}", *(f"prep-{d}" for d in dict.fromkeys(self.datasets))],
                    inputs={"config": cfg},
                    outputs=[eval_dir / d / "metrics.json" for d in self.datasets],
                ))
        return stages

    def _prepared_record(self, cfg: dict, dataset: str) -> dict:
        path = self._prepare(cfg, dataset)  # a no-op when the notebook (or a former pass) prepared it
        manifest = json.loads((path / "manifest.json").read_text())
        return {"prepared": str(path), "fingerprint": manifest.get("fingerprint")}

    def run_set(self) -> dict:
        """The manifest written to study.json (without stamps)."""
        return {
            "profile": self.profile, "description": self.description,
            "methods": self.methods, "seeds": self.seeds, "datasets": self.datasets,
            "train_dataset": self.train_dataset,
            "runs": [{"method": m, "seed": s, "run_dir": f"runs/{m}-s{s}", "eval_dir": f"eval/{m}-s{s}",
                      "train_stage": f"train-{m}-s{s}", "evaluate_stage": f"evaluate-{m}-s{s}",
                      "overrides": self.overrides[m]} for m in self.methods for s in self.seeds_of[m]],
        }

    def results_stage(self, stamp: str) -> Stage:
        bench = self.root / "bench" / "out" / "sampling.json"
        return Stage(
            id="results", kind="results",
            parameters={"profile": self.profile, "results_dir": self.rel(self.results_dir), "study_stamp": stamp,
                        "bench_file": self.rel(bench)},
            notebook=self.notebooks["results"], output=self.results_dir / "results.ipynb",
            inputs={"bench": file_sha256(bench) if bench.is_file() else None},
        )

    # -- stamps -----------------------------------------------------------------------------------
    def stamp_path(self, stage_id: str) -> Path:
        return self.results_dir / STAMPS_DIR / f"{stage_id}.json"

    def stamps_of(self, stage: Stage) -> tuple[str, str]:
        """(stamp, inputs stamp): the stamp hashes the stage's parameters, inputs and upstream
        records, its notebook and the source it depends on; the inputs stamp is the same without
        code and notebook (what ``kept`` compares across a code change)."""
        upstream = {}
        for u in stage.upstream:
            rec = read_stamp(self.results_dir, u)
            upstream[u] = {"stamp": rec.get("stamp"), "outputs": rec.get("outputs")}
        inputs = {"kind": stage.kind, "parameters": stage.parameters, "inputs": stage.inputs, "upstream": upstream}
        code = {"notebook": file_sha256(stage.notebook) if stage.notebook else None,
                "code": code_hash(CODE_DEPS[stage.kind])}
        return config_hash({**inputs, **code}, length=16), config_hash(inputs, length=16)

    def stamp_of(self, stage: Stage) -> str:
        return self.stamps_of(stage)[0]

    def is_current(self, stage: Stage, stamp: str) -> bool:
        rec = read_stamp(self.results_dir, stage.id)
        if self.spec.force or rec.get("stamp") != stamp or rec.get("status") != "complete":
            return False
        if stage.output is not None and not stage.output.is_file():
            return False
        if not all(p.exists() for p in stage.outputs):
            return False
        return stage.verify(rec.get("outputs") or {}) if stage.verify else True

    def kept(self, stage: Stage) -> bool:
        """With ``keep_trained``: a preparation or training stage whose last completed run stays in
        use although its stamp no longer matches (the code changed since). Only what was made
        from the same inputs is kept: no upstream stage was made again in this pass, the recorded
        inputs stamp (everything but code and notebook, upstream stamps included) is this stage's,
        its outputs are still there, and a training run's recorded ``config.yaml`` holds every
        value of this stage's run config. (Records written before the inputs stamp existed are
        compared on their parameters and run config only.) The kept stamp stays on disk, so the
        stages downstream see the upstream they were made from, and each run keeps its commit."""
        if not self.spec.keep_trained or self.spec.force or stage.kind not in KEPT_KINDS:
            return False
        made = {t["id"] for t in self.timings if t.get("status") in ("ran", "resumed")}
        if made & set(stage.upstream):
            return False
        rec = read_stamp(self.results_dir, stage.id)
        if rec.get("status") != "complete" or rec.get("parameters") != stage.parameters:
            return False
        if "inputs_stamp" in rec and rec["inputs_stamp"] != self.stamps_of(stage)[1]:
            return False
        if not all(p.exists() for p in stage.outputs) or (stage.verify and not stage.verify(rec.get("outputs") or {})):
            return False
        if stage.kind == "train":
            recorded = Path(stage.parameters["out_dir"])
            recorded = recorded if recorded.is_absolute() else self.root / recorded
            try:
                run_cfg = yaml.safe_load((recorded / "config.yaml").read_text())
            except (OSError, yaml.YAMLError):
                return False
            return _holds(run_cfg, stage.inputs["config"])
        return True

    # -- execution --------------------------------------------------------------------------------
    def execute(self, stage: Stage) -> None:
        if stage.notebook is None:
            stage.run()
            return
        import papermill
        from papermill.exceptions import PapermillExecutionError

        stage.output.parent.mkdir(parents=True, exist_ok=True)
        env = {k: str(self.threads) for k in THREAD_VARIABLES}
        for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
            try:
                papermill.execute_notebook(
                    str(stage.notebook), str(stage.output), parameters=stage.parameters, kernel_name="python3",
                    cwd=str(self.root), progress_bar=False, log_output=False,
                    kernel_manager_class=_kernel_manager_class(env),
                )
                return
            except PapermillExecutionError as exc:
                raise StudyFailed(
                    f"stage {stage.id} failed in notebook {self.rel(stage.output)} (cell {exc.exec_count}: "
                    f"{exc.ename}: {exc.evalue})", stage.id, stage.output) from None
            except (RuntimeError, TimeoutError, OSError) as exc:
                if attempt == KERNEL_START_ATTEMPTS or not _kernel_start_failure(exc):
                    raise
                self.log(f"{stage.id}: kernel start failed ({type(exc).__name__}: {exc}); starting it again")
                time.sleep(0.5 * attempt)

    def _run_stage(self, stage: Stage, index: int, total: int) -> dict:
        stamp, inputs_stamp = self.stamps_of(stage)
        prev = read_stamp(self.results_dir, stage.id)
        label = f"[{index}/{total}] {stage.id}"
        if self.is_current(stage, stamp) or self.kept(stage):
            kept = prev.get("stamp") != stamp
            self.log(f"{label}: kept as made (stamp {prev.get('stamp')}; the code changed since: --keep-trained)" if kept
                     else f"{label}: up to date (stamp {stamp}), skipped")
            now = self._clock()
            return {"id": stage.id, "kind": stage.kind, "status": "kept" if kept else "skipped", "seconds": 0.0,
                    "last_run_seconds": prev.get("seconds"), "notebook": self._nb(stage), "start": now, "end": now}
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
        atomic_write_json(self.stamp_path(stage.id), {"stamp": stamp, "status": "running", "kind": stage.kind,
                                                      "started": _now(), "parameters": stage.parameters,
                                                      "last_run_seconds": _last_seconds(prev)})
        start = self._clock()
        t0 = time.perf_counter()
        try:
            self.execute(stage)
            outputs = stage.collect() if stage.collect else {}
        except StudyFailed as exc:
            exc.timing = self._record_failure(stage, stamp, time.perf_counter() - t0, start)
            raise
        except Exception as exc:
            failed = StudyFailed(f"stage {stage.id} failed: {type(exc).__name__}: {exc}", stage.id, stage.output)
            failed.timing = self._record_failure(stage, stamp, time.perf_counter() - t0, start)
            raise failed from exc
        seconds = time.perf_counter() - t0
        atomic_write_json(self.stamp_path(stage.id), {
            "stamp": stamp, "inputs_stamp": inputs_stamp, "status": "complete", "kind": stage.kind, "finished": _now(),
            "seconds": round(seconds, 3), "notebook": self._nb(stage), "parameters": stage.parameters,
            "outputs": outputs,
        })
        self.log(f"{label}: done in {seconds:.1f} s")
        return {"id": stage.id, "kind": stage.kind, "status": "resumed" if resumed else "ran",
                "seconds": round(seconds, 3), "last_run_seconds": round(seconds, 3), "notebook": self._nb(stage),
                "start": start, "end": self._clock()}

    def _record_failure(self, stage: Stage, stamp: str, seconds: float, start: float) -> dict:
        atomic_write_json(self.stamp_path(stage.id), {"stamp": stamp, "status": "failed", "kind": stage.kind,
                                                      "finished": _now(), "seconds": round(seconds, 3),
                                                      "notebook": self._nb(stage)})
        return {"id": stage.id, "kind": stage.kind, "status": "failed", "seconds": round(seconds, 3),
                "last_run_seconds": None, "notebook": self._nb(stage), "start": start, "end": self._clock()}

    def _clock(self) -> float:
        """Seconds since this pass started (the timing table's start / end columns)."""
        return round(time.perf_counter() - self._started, 3)

    def _nb(self, stage: Stage) -> str | None:
        return self.rel(stage.output) if stage.output is not None else None

    def _write_timings(self, status: str) -> dict:
        order = {s.id: i for i, s in enumerate(self.stages)}
        stages = sorted(self.timings, key=lambda r: order.get(r["id"], len(order)))  # plan order
        record = {"profile": self.profile, "status": status, "finished": _now(),
                  "total_seconds": self._clock(), "stage_seconds": round(sum(r["seconds"] for r in stages), 3),
                  "jobs": self.jobs, "threads_per_job": self.threads, "cpu_count": os.cpu_count(), "stages": stages}
        atomic_write_json(self.results_dir / TIMINGS_FILE, record)
        return record

    def _run_stages(self) -> None:
        """Every stage of the plan, up to ``jobs`` at once, each after its upstream stages; at the
        first failure no further stage starts, running ones finish, and the failure is raised."""
        total = len(self.stages) + 1
        index = {s.id: i for i, s in enumerate(self.stages, 1)}
        # the seconds each stage took when it last ran, from its stamp record
        last = {s.id: _last_seconds(read_stamp(self.results_dir, s.id)) for s in self.stages}
        priority = critical_path_seconds(self.stages, last)
        pending = list(self.stages)
        done: set[str] = set()
        running: dict[Future, Stage] = {}
        failure: StudyFailed | None = None
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="stage") as pool:
            while pending or running:
                while failure is None and len(running) < self.jobs:
                    ready = max((s for s in pending if all(u in done for u in s.upstream)),
                                key=lambda s: (priority[s.id], s.parameters.get("method") in LONG_CHAIN_METHODS),
                                default=None)  # then plan order
                    if ready is None:
                        break
                    pending.remove(ready)
                    running[pool.submit(self._run_stage, ready, index[ready.id], total)] = ready
                if not running:
                    if failure is None and pending:  # an upstream id that no stage provides
                        raise StudyFailed(f"stage {pending[0].id}: upstream {pending[0].upstream} never completes",
                                          pending[0].id, None)
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    stage = running.pop(fut)
                    try:
                        self.timings.append(fut.result())
                        done.add(stage.id)
                    except StudyFailed as exc:
                        self.timings.append(exc.timing)
                        failure = failure or exc
                    self._write_timings("running")
        if failure is not None:
            raise failure

    def run(self) -> dict:
        """Execute the plan; returns the timing record (also written to timings.json)."""
        self._started = time.perf_counter()
        self.timings = []
        self.results_dir.mkdir(parents=True, exist_ok=True)
        total = len(self.stages) + 1
        self.log(f"study {self.profile}: {len(self.stages) + 1} stages, {self.jobs} at a time, "
                 f"{self.threads} thread(s) each")
        try:
            self._run_stages()
            manifest = self.run_set()
            manifest["stages"] = {s.id: read_stamp(self.results_dir, s.id)["stamp"] for s in self.stages}
            manifest["stamp"] = study_stamp(manifest)
            manifest["created"] = _now()
            old = _read_json(self.results_dir / STUDY_FILE)
            if old.get("stamp") != manifest["stamp"]:
                atomic_write_json(self.results_dir / STUDY_FILE, manifest)
            try:
                self.timings.append(self._run_stage(self.results_stage(manifest["stamp"]), total, total))
            except StudyFailed as exc:
                self.timings.append(exc.timing)
                raise
        except StudyFailed:
            record = self._write_timings("failed")
            self.log(format_timings(record))
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
            will = bool(set(stage.upstream) & changed) or not (self.is_current(stage, self.stamp_of(stage))
                                                                 or self.kept(stage))
            if will:
                changed.add(stage.id)
            plan.append((stage.id, "run" if will else "skip"))
        plan.append(("results", "run" if changed or not (self.results_dir / "results.ipynb").is_file() else "skip?"))
        return plan


def _holds(recorded, wanted) -> bool:
    """Does the recorded (YAML) config hold every value of ``wanted``? (It may hold more: the
    engine adds what it reads from the data, e.g. the model's input size.)"""
    if isinstance(wanted, dict):
        return isinstance(recorded, dict) and all(k in recorded and _holds(recorded[k], v) for k, v in wanted.items())
    if isinstance(wanted, (list, tuple)):
        return isinstance(recorded, (list, tuple)) and len(recorded) == len(wanted) and all(
            _holds(r, w) for r, w in zip(recorded, wanted))
    return recorded == wanted


def _last_seconds(record: dict) -> float | None:
    """What a stage took when it last completed, from its stamp record (a running one keeps it)."""
    return record.get("seconds") if record.get("status") == "complete" else record.get("last_run_seconds")


def _kernel_start_failure(exc: BaseException) -> bool:
    """Did the kernel fail to *start* (worth another start), rather than die running a cell?"""
    try:
        from nbclient.exceptions import DeadKernelError
    except ImportError:  # pragma: no cover
        DeadKernelError = ()  # noqa: N806
    if DeadKernelError and isinstance(exc, DeadKernelError):
        return False
    return any(m in str(exc).lower() for m in KERNEL_START_FAILURES)


def _prepared_still_there(outputs: dict) -> bool:
    path = outputs.get("prepared")
    if not path:
        return False
    manifest = Path(path) / "manifest.json"
    return manifest.is_file() and json.loads(manifest.read_text()).get("fingerprint") == outputs.get("fingerprint")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def format_timings(record: dict) -> str:
    """The timing table the driver prints (seconds this pass; seconds when the stage last ran)."""
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


def run_study(spec: StudySpec, log: Callable[[str], None] = print) -> dict:
    return Study(spec, log=log).run()


__all__ = ["CODE_DEPS", "NOTEBOOKS", "Stage", "Study", "StudyFailed", "StudySpec", "code_hash", "critical_path_seconds",
           "default_jobs", "format_timings", "parse_overrides", "run_study", "threads_per_job"]

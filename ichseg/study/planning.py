"""Planning a pass: a ``StudySpec`` and the profile's settings -> the run set and its stages.

The run set (methods, seeds per method, overrides per method, datasets) is resolved once here, from
the profile's ``study`` section (``ichseg.study.profiles``) with the spec's options on top; every
run config is resolved (and so validated) before any stage starts. Each ``Stage`` carries its
folders as ``Path``s (``run_dir``, ``eval_dir``); notebooks receive them as strings relative to the
repository root (``Plan.rel``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..data.config import raw_source, train_dataset_of
from ..engine.config import ALL_METHODS, NNUNET, load_profile, resolve_run_config
from ..errors import ConfigError
from ..utils import file_sha256
from ..utils.layout import metrics_path, run_config_path, run_outputs
from .profiles import study_settings

NOTEBOOKS = {
    "prep": "data_prep/prepare.ipynb",
    "train": "book/notebooks/train.ipynb",
    "evaluate": "book/notebooks/evaluate.ipynb",
    "results": "book/notebooks/results.ipynb",
}
# parameters the driver can give a preparation notebook; only those it declares are passed
PREP_PARAMETER_CANDIDATES = ("profile", "dataset", "data_root", "overrides")


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
    run: Callable[[], object] | None = None  # in-process body (when no notebook)
    collect: Callable[[], dict] | None = None  # outputs to record after running (e.g. data fingerprint)
    verify: Callable[[dict], bool] | None = None  # is a recorded output still there?
    run_dir: Path | None = None  # a training's run folder (train and evaluate stages)
    eval_dir: Path | None = None  # an evaluation's folder (evaluate stages)
    method: str | None = None


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
    # changed since (``ichseg.study.stamps.kept``): re-score hours of training with a changed scorer
    keep_trained: bool = False
    jobs: int = 1  # stages run at once (the CLI's default: ``scheduling.default_jobs()``)
    threads: int | None = None  # BLAS/OpenMP threads per stage kernel; default cores // jobs


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


class Plan:
    """The run set of one pass and its stages (prep -> train -> evaluate; the results stage is
    made once the run set's stamp is known: ``results_stage``)."""

    def __init__(self, spec: StudySpec):
        self.spec = spec
        self.root = Path(spec.root).resolve()
        base = load_profile(spec.profile)
        self.profile = base["profile"]
        self._run_set_settings(spec, study_settings(spec.profile))
        self.results_dir = (Path(spec.results_root) if spec.results_root else self.root / "results").resolve() / self.profile
        self.data_root = (Path(spec.data_root) if spec.data_root else self.root / "data").resolve()
        self.notebooks = {k: (self.root / v) for k, v in NOTEBOOKS.items()}
        self.notebooks.update({k: Path(v).resolve() for k, v in spec.notebooks.items()})
        self.configs = {(m, s): resolve_run_config(spec.profile, m, self.overrides[m], seed=s)
                        for m in self.methods for s in self.seeds_of[m]}
        # data preparation depends on the overrides shared by all methods only, so that one
        # method's override does not re-run every method's stages through the prep stamps
        self.prep_config = resolve_run_config(spec.profile, self.methods[0], self.global_overrides)
        self.train_dataset = train_dataset_of(self.prep_config["data"])
        self.datasets = list(spec.datasets or self.prep_config["data"].get("test_datasets") or [self.train_dataset])
        self.description = describe(base.get("description", ""), self)
        self.stages = self._prep_stages() + [st for m in self.methods for s in self.seeds_of[m]
                                              for st in self._run_stages(m, s)]

    def _run_set_settings(self, spec: StudySpec, settings: dict) -> None:
        self.methods = list(spec.methods or settings["methods"])
        self.start_first = tuple(settings["start_first"])
        unknown = [m for m in self.methods if m not in ALL_METHODS]
        if unknown:
            raise ConfigError(f"--methods: unknown {', '.join(unknown)}; known: {', '.join(ALL_METHODS)}")
        seeds = [int(s) for s in (spec.seeds if spec.seeds is not None else settings["seeds"])]
        # seeds per method: --seeds applies to every method; otherwise the profile's method_seeds
        # replace its seeds for the methods they name
        per_method = {} if spec.seeds is not None else settings["method_seeds"]
        self.seeds_of = {m: [int(s) for s in per_method.get(m, seeds)] for m in self.methods}
        self.seeds = sorted({s for m in self.methods for s in self.seeds_of[m]})
        unknown = set(spec.overrides) - {"*"} - set(self.methods)
        if unknown:
            raise ConfigError(f"--set: method(s) {', '.join(sorted(unknown))} are not in this study ({', '.join(self.methods)})")
        self.global_overrides = list(settings["overrides"]) + spec.overrides.get("*", [])
        self.overrides = {m: self.global_overrides + settings["method_overrides"].get(m, []) + spec.overrides.get(m, [])
                          for m in self.methods}

    def rel(self, path: Path) -> str:
        """A path as notebooks see it: relative to the repository root when inside it."""
        path = Path(path).resolve()
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    @property
    def notebook_dir(self) -> Path:
        return self.results_dir / "notebooks"

    def prepare(self, dataset: str) -> Path:
        if self.spec.prepare is not None:
            return Path(self.spec.prepare(self.prep_config, dataset, self.data_root))
        from ..engine.data import ensure_prepared

        return Path(ensure_prepared(self.prep_config, dataset, self.data_root))

    def _prep_stages(self) -> list[Stage]:
        nb = self.notebooks["prep"]
        stages = []
        for ds in dict.fromkeys([self.train_dataset, *self.datasets]):
            params = {"profile": self.spec.profile if isinstance(self.spec.profile, str) else self.profile,
                      "dataset": ds, "data_root": self.rel(self.data_root), "overrides": self.global_overrides}
            if nb.is_file():
                import papermill

                declared = set(papermill.inspect_notebook(str(nb)))
                params = {k: v for k, v in params.items() if k in declared}
            stage = Stage(id=f"prep-{ds}", kind="prep", parameters=params, notebook=nb if nb.is_file() else None,
                          output=(self.notebook_dir / f"prep-{ds}.ipynb") if nb.is_file() else None,
                          inputs={"data": self.prep_config["data"], "dataset": ds}, verify=prepared_still_there)
            made: dict[str, Path] = {}
            stage.run = (lambda ds=ds, made=made: made.setdefault("path", self.prepare(ds)))
            # the folder the in-process body returned; after a notebook, the (no-op) preparation names it
            stage.collect = (lambda ds=ds, made=made: prepared_record(made.get("path") or self.prepare(ds)))
            stages.append(stage)
        return stages

    def _run_stages(self, m: str, s: int) -> list[Stage]:
        rid = f"{m}-s{s}"
        cfg = self.configs[(m, s)]
        run_dir, eval_dir = self.results_dir / "runs" / rid, self.results_dir / "eval" / rid
        common = {"profile": str(self.spec.profile), "method": m, "seed": s, "overrides": self.overrides[m]}
        train = Stage(
            id=f"train-{rid}", kind="train", method=m, run_dir=run_dir,
            parameters={**common, "out_dir": self.rel(run_dir), "data_root": self.rel(self.data_root)},
            notebook=self.notebooks["train"], output=self.notebook_dir / f"train-{rid}.ipynb",
            upstream=[f"prep-{self.train_dataset}"], inputs={"config": {k: x for k, x in cfg.items() if k != "evaluate"}},
            # every method's run folder holds the same files (nnU-Net's model in its own folder)
            outputs=[p for p in run_outputs(run_dir, own_folder=m == NNUNET) if p != run_config_path(run_dir)],
            wipe=[run_dir],
        )
        ev = {"sampler": "", "steps": 0, "ensemble": 0, **self.spec.evaluate}  # "" / 0: the profile's
        evaluate = Stage(
            id=f"evaluate-{rid}", kind="evaluate", method=m, run_dir=run_dir, eval_dir=eval_dir,
            parameters={**common, "datasets": self.datasets, "run_dir": self.rel(run_dir), "out_dir": self.rel(eval_dir),
                        "data_root": self.rel(self.data_root), **ev},
            notebook=self.notebooks["evaluate"], output=self.notebook_dir / f"evaluate-{rid}.ipynb",
            upstream=[f"train-{rid}", *(f"prep-{d}" for d in dict.fromkeys(self.datasets))],
            inputs={"config": cfg}, outputs=[metrics_path(eval_dir / d) for d in self.datasets],
        )
        return [train, evaluate]

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


def prepared_record(path: Path) -> dict:
    """What a preparation stage records: its folder and the data's fingerprint."""
    from ..data.preparation import read_manifest

    return {"prepared": str(path), "fingerprint": read_manifest(path).get("fingerprint")}


def prepared_still_there(outputs: dict) -> bool:
    """Does the recorded prepared folder still hold the recorded data?"""
    from ..data.preparation import read_manifest
    from ..errors import IchsegError

    if not outputs.get("prepared"):
        return False
    try:
        return read_manifest(Path(outputs["prepared"])).get("fingerprint") == outputs.get("fingerprint")
    except (IchsegError, OSError, json.JSONDecodeError):
        return False


def describe(text: str, plan: Plan) -> str:
    """The run set in one line: the profile's own words (what it is for: its ``description``, which
    states no setting), then what its settings say (size, patients, iterations per method, seeds),
    derived from the resolved run configs so the two cannot disagree."""
    data = plan.prep_config["data"]
    # the phantom's patient counts, where the training data is the phantom (a real folder has its own)
    cases = None if raw_source(data, plan.train_dataset) else (data.get("phantom") or {}).get("cases")
    if isinstance(cases, dict):
        patients = f"{cases[plan.train_dataset]} training-set patients" if cases.get(plan.train_dataset) else ""
    else:
        patients = f"{cases} patients per dataset" if cases else ""
    size = (data.get("prep") or {}).get("size")
    budgets: dict[int, list[str]] = {}
    for (m, _), c in plan.configs.items():
        n = c["train"].get("iterations")
        if n is not None and m not in budgets.get(n, []):
            budgets.setdefault(n, []).append(m)
    iterations = "; ".join(f"{n:,} iterations for {', '.join(ms)}" for n, ms in sorted(budgets.items()))
    counts: dict[int, list[str]] = {}
    for m in plan.methods:
        counts.setdefault(len(plan.seeds_of[m]), []).append(m)
    usual = max(counts, key=lambda n: len(counts[n]))
    seeds = "; ".join([f"{n} seeds for {', '.join(ms)}" for n, ms in sorted(counts.items(), reverse=True) if n != usual]
                      + [f"{usual} seed{'s' * (usual > 1)} for {'the others' if len(counts) > 1 else 'each method'}"])
    head = ", ".join(p for p in (text, f"{size}x{size}" if size else "", patients) if p)
    return "; ".join(p for p in (head, iterations, seeds) if p)


__all__ = ["NOTEBOOKS", "Plan", "Stage", "StudySpec", "describe", "parse_overrides", "prepared_record",
           "prepared_still_there"]

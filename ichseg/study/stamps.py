"""Stage stamps: what a stage was made from, and whether its last result can stand.

A stage's *stamp* hashes its parameters, inputs (the resolved run config, ...), the records of its
upstream stages, its notebook and the source of the ``ichseg`` packages it depends on
(``CODE_DEPS``); its *inputs stamp* is the same without code and notebook (what ``kept`` compares
across a code change). Records live in ``results/<profile>/stamps/<stage>.json`` (the format is
``ichseg.utils.stamps``'); ``StampBook`` reads each once per pass and keeps what this pass writes.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import yaml

from ..engine.config import NNUNET
from ..utils import atomic_write_json, config_hash, file_sha256
from ..utils.layout import model_path, read_run_config
from ..utils.stamps import STAMPS_DIR, read_stamp
from .planning import Stage

PACKAGE_DIR = Path(__file__).resolve().parents[1]
KEPT_KINDS = ("prep", "train")  # what --keep-trained keeps across code changes
# ichseg sub-packages whose source enters each kind of stage's stamp
CODE_DEPS = {
    "prep": ("data", "engine/data.py", "utils", "errors.py"),
    "train": ("data", "diffusion", "engine", "metrics", "models", "utils", "errors.py"),
    "evaluate": ("data", "diffusion", "engine", "metrics", "models", "utils", "errors.py"),
    "results": ("report", "utils", "errors.py"),
}


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


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class StampBook:
    """The stamp records of one pass: each read from disk once, then kept as this pass writes
    them; the code hash of each kind of stage computed once."""

    def __init__(self, results_dir: Path):
        self.results_dir = results_dir
        self._records: dict[str, dict] = {}
        self._code: dict[str, str] = {}

    def path(self, stage_id: str) -> Path:
        return self.results_dir / STAMPS_DIR / f"{stage_id}.json"

    def record(self, stage_id: str) -> dict:
        if stage_id not in self._records:
            self._records[stage_id] = read_stamp(self.results_dir, stage_id)
        return self._records[stage_id]

    def write(self, stage_id: str, record: dict) -> None:
        atomic_write_json(self.path(stage_id), record)
        self._records[stage_id] = record

    def code(self, kind: str) -> str:
        if kind not in self._code:
            from . import stamps  # looked up at call time, so a test can stand in for it

            self._code[kind] = stamps.code_hash(CODE_DEPS[kind])
        return self._code[kind]

    def stamps_of(self, stage: Stage, inputs_extra: dict | None = None) -> tuple[str, str]:
        """(stamp, inputs stamp) of ``stage`` as the upstream records stand now."""
        upstream = {u: {"stamp": self.record(u).get("stamp"), "outputs": self.record(u).get("outputs")}
                    for u in stage.upstream}
        inputs = {"kind": stage.kind, "parameters": stage.parameters, "inputs": {**stage.inputs, **(inputs_extra or {})},
                  "upstream": upstream}
        code = {"notebook": file_sha256(stage.notebook) if stage.notebook else None, "code": self.code(stage.kind)}
        return config_hash({**inputs, **code}, length=16), config_hash(inputs, length=16)

    def is_current(self, stage: Stage, stamp: str, force: bool = False) -> bool:
        """Did the last completed run of ``stage`` have this stamp, and are its outputs there?"""
        rec = self.record(stage.id)
        if force or rec.get("stamp") != stamp or rec.get("status") != "complete":
            return False
        if stage.output is not None and not stage.output.is_file():
            return False
        return _outputs_there(stage, rec)

    def kept(self, stage: Stage, made_this_pass: set[str]) -> bool:
        """With ``--keep-trained``: a preparation or training stage whose last completed run stays in
        use although its stamp no longer matches (the code changed since). Only what was made
        from the same inputs is kept: no upstream stage was made again in this pass, the recorded
        inputs stamp (everything but code and notebook, upstream stamps included) is this stage's,
        its outputs are still there, and a training run's recorded ``config.yaml`` holds every
        value of this stage's run config. (Records written before the inputs stamp existed are
        compared on their parameters and run config only.) The kept stamp stays on disk, so the
        stages downstream see the upstream they were made from, and each run keeps its commit."""
        if stage.kind not in KEPT_KINDS or made_this_pass & set(stage.upstream):
            return False
        rec = self.record(stage.id)
        if rec.get("status") != "complete" or rec.get("parameters") != stage.parameters or not _outputs_there(stage, rec):
            return False
        if stage.kind != "train":
            return "inputs_stamp" not in rec or rec["inputs_stamp"] == self.stamps_of(stage)[1]
        try:
            run_cfg = read_run_config(stage.run_dir)
        except (OSError, yaml.YAMLError):
            return False
        if "inputs_stamp" in rec and rec["inputs_stamp"] not in self._inputs_stamps(stage, run_cfg):
            return False
        return _holds(run_cfg, stage.inputs["config"])

    def settled(self, stage: Stage, stamp: str, downstream: list[Stage]) -> bool:
        """A completed training, this very stamp, whose weights are not on disk (committed results
        keep no weights, so a fresh clone has none), while every evaluation made from it is
        current: the weights are an intermediate product, as make treats one, and training again
        would only remake what those evaluations already scored. Whatever else the run folder
        holds (run.json, its log, its config) must be there; once any evaluation is stale, the
        training is needed and runs again."""
        rec = self.record(stage.id)
        if stage.kind != "train" or rec.get("status") != "complete" or rec.get("stamp") != stamp:
            return False
        model = model_path(stage.run_dir, own_folder=stage.parameters.get("method") == NNUNET)
        if model.exists() or not all(p.exists() for p in stage.outputs if p != model):
            return False
        evaluations = [d for d in downstream if d.kind == "evaluate"]
        return bool(evaluations) and all(self.is_current(d, self.stamps_of(d)[0]) for d in evaluations)

    def _inputs_stamps(self, stage: Stage, run_cfg: dict) -> set[str]:
        """This training's inputs stamp, and the one it had when run configs still carried the
        profile's description (the words, which no run depends on, as its config.yaml records them)."""
        stamps = {self.stamps_of(stage)[1]}
        if "description" in run_cfg:
            with_words = {"config": {**stage.inputs["config"], "description": run_cfg["description"]}}
            stamps.add(self.stamps_of(stage, with_words)[1])
        return stamps


def _outputs_there(stage: Stage, rec: dict) -> bool:
    if not all(p.exists() for p in stage.outputs):
        return False
    return stage.verify(rec.get("outputs") or {}) if stage.verify else True


def _holds(recorded, wanted) -> bool:
    """Does the recorded (YAML) config hold every value of ``wanted``? (It may hold more: the
    engine adds what it reads from the data, e.g. the model's input size.)"""
    if isinstance(wanted, dict):
        return isinstance(recorded, dict) and all(k in recorded and _holds(recorded[k], v) for k, v in wanted.items())
    if isinstance(wanted, (list, tuple)):
        return isinstance(recorded, (list, tuple)) and len(recorded) == len(wanted) and all(
            _holds(r, w) for r, w in zip(recorded, wanted))
    return recorded == wanted


def last_seconds(record: dict) -> float | None:
    """What a stage took when it last completed, from its stamp record (a running one keeps it)."""
    return record.get("seconds") if record.get("status") == "complete" else record.get("last_run_seconds")


__all__ = ["CODE_DEPS", "KEPT_KINDS", "StampBook", "code_hash", "last_seconds", "now"]

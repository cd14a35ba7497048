"""The one place where a method meets the functions that train and evaluate it.

``METHODS`` (``ichseg.engine.config``) names every method of the study; ``method_kind(name)``
says what kind it is: ``diffusion`` (the Table 2 variants), ``direct`` (the Table 1 baseline
networks) or ``nnunet`` (nnU-Net v2 through its own package). ``KINDS`` maps each kind to its
``train`` and ``evaluate_run`` functions; ``train_run`` and ``evaluate_run`` below look the kind up and
call them, so no training or evaluation code names another kind's trainer:

    diffusion, direct -> ichseg.engine.train.train_network, ichseg.engine.evaluate.evaluate_network_run
    nnunet            -> ichseg.engine.nnunet.train_nnunet_run, ichseg.engine.nnunet.evaluate_nnunet_run

A new kind of method is one entry here (and its name in ``method_kind``).

``BEYOND_PAPER_METHODS`` are diffusion methods that are not rows of the paper's Table 2
(``ichseg.models.registry.BEYOND_PAPER``: a ResNet18 branch from scratch, the full model with an
ImageNet or a from-scratch EfficientNet-Lite0 trunk). They train and evaluate as every diffusion
variant does; they are not in ``METHODS``, so a pass runs them only where its profile names them.
``ALL_METHODS`` is every name ``method`` accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..models.registry import BEYOND_PAPER
from ..utils import method_of
from .config import ALL_METHODS, DIFFUSION, DIRECT, METHODS, NNUNET, EvalConfig, method_kind
from .evaluate import evaluate_network_run
from .nnunet import evaluate_nnunet_run, train_nnunet_run
from .runlog import TrainResult, read_run_info
from .train import train_network


@dataclass(frozen=True)
class Method:
    """How one kind of method trains a run folder and evaluates it.

    ``train(cfg, out_dir, *, data_root, prepared, resume, progress) -> TrainResult``;
    ``evaluate_run(run_dir, prepared, out_dir, ecfg, *, dataset, split, method, device, progress) -> dict``
    (the ``metrics.json`` summary of ``ichseg.engine.scoring.write_evaluation``)."""

    train: Callable[..., TrainResult]
    evaluate_run: Callable[..., dict]


def _evaluate_nnunet(run_dir, prepared, out_dir, ecfg, *, dataset, split, method, device, progress) -> dict:
    # nnU-Net predicts on the device of its own config (nnunet.device) and shows its own progress
    return evaluate_nnunet_run(run_dir, prepared, out_dir, ecfg, dataset=dataset, split=split, method=method)


KINDS: dict[str, Method] = {
    DIFFUSION: Method(train=train_network, evaluate_run=evaluate_network_run),
    DIRECT: Method(train=train_network, evaluate_run=evaluate_network_run),
    NNUNET: Method(train=train_nnunet_run, evaluate_run=_evaluate_nnunet),
}


BEYOND_PAPER_METHODS: tuple[str, ...] = tuple(BEYOND_PAPER)


def method(name: str) -> Method:
    """The functions of method ``name`` (one of ``ALL_METHODS``: a Table 2 variant, one beyond the
    paper, a baseline or ``nnunet``)."""
    return KINDS[method_kind(name)]


def train_run(
    cfg: dict,
    out_dir: str | Path,
    *,
    data_root: str | Path = "data",
    prepared: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train ``cfg["method"]`` under a resolved run config (``resolve_run_config``) into ``out_dir``."""
    return method(cfg["method"]).train(cfg, out_dir, data_root=data_root, prepared=prepared, resume=resume,
                                       progress=progress)


def evaluate_run(
    run_dir: str | Path,
    prepared: str | Path,
    out_dir: str | Path,
    ecfg: EvalConfig | None = None,
    *,
    dataset: str | None = None,
    split: str = "test",
    method: str | None = None,
    device: str = "auto",
    progress: bool = True,
) -> dict:
    """Evaluate a training run folder of any method on a prepared split: the method recorded in
    its ``run.json`` (a folder without one is taken for a network run: its best checkpoint);
    ``method``: refuse a folder that holds another method."""
    recorded = method_of(read_run_info(run_dir))
    m = KINDS[method_kind(recorded) if recorded else DIFFUSION]
    return m.evaluate_run(run_dir, prepared, out_dir, ecfg or EvalConfig(), dataset=dataset, split=split,
                          method=method, device=device, progress=progress)


__all__ = ["ALL_METHODS", "BEYOND_PAPER_METHODS", "KINDS", "METHODS", "Method", "evaluate_run", "method", "train_run"]

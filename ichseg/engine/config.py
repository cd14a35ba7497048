"""Run configuration: a profile (YAML in ``ichseg/profiles``) + a method name + overrides.

A resolved run config is a plain nested dict with the sections below; it fully determines a run,
is written to the run folder and hashed (``run_config_hash``). Every section is validated by the
type that owns it when the config is resolved, so a wrong key or value fails there, in one line
naming the profile file and the key: ``data`` by ``ichseg.data.config`` (``PhantomSettings``,
``RealctSettings``, ``PrepConfig``), ``train`` / ``evaluate`` / ``nnunet`` by ``TrainConfig`` /
``EvalConfig`` / ``NnunetConfig`` here, ``diffusion`` by ``DiffusionConfig``, ``model`` and
``loss`` by the model's and loss's own configs, and the profile's ``study`` section by
``StudyConfig`` (what ``ichseg study`` runs; it never enters a run's config).

``METHODS`` names every method the study trains and evaluates, in the tables' order: the five
Table 2 variants, then the Table 1 baselines. It is the one list of them: the study driver, its
profiles and ``ichseg.engine.methods`` take it from here. Three kinds of method share the profiles
(``method_kind``):

- ``diffusion``: the Table 2 variants. Sections data, model, diffusion, loss (Eq. 4), train, evaluate.
- ``direct``: the Table 1 baselines U-Net, TransUNet, U-KAN (one forward pass). The profile's
  ``baselines`` section sizes them (``baselines.model`` for all, ``baselines.<name>.model`` for
  one); their optimiser, schedule and loss come from their official recipe
  (``ichseg.models.baselines.RECIPES``) written into ``train`` and ``loss``, then
  ``baselines.train`` / ``baselines.<name>.train|loss`` and ``--set`` override it. Only the
  iteration budget, batch, validation and seed are shared with the diffusion variants (as in the
  paper's comparison); no EMA (the official recipes keep none). No diffusion section.
- ``nnunet``: nnU-Net v2 run through its own package; section ``nnunet`` (``baselines.nnunet``),
  validated by ``NnunetConfig`` here; the adapter that runs it is ``ichseg.engine.nnunet``.

This module is the bottom of the engine: it imports no other engine module but ``devices``, so
every part of the engine (and the method adapters in ``ichseg.engine.nnunet``) can import it.
Which function trains and evaluates each kind is decided in one place, ``ichseg.engine.methods``.
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from ..data.config import check_data_section
from ..data.layouts import DATASETS
from ..diffusion import SAMPLERS, DiffusionConfig
from ..errors import ConfigError, IchsegError
from ..metrics import DIRECT_OUTPUTS, FUSIONS
from ..models.baselines import RECIPES, SegmentationLossConfig
from ..models.baselines.recipes import OPTIMIZERS, SCHEDULES
from ..models.registry import ALL_VARIANTS, BASELINES, BEYOND_PAPER_PREP, VARIANTS
from ..utils import config_hash
from ..utils.configs import dataclass_from_dict
from ..utils.validate import check_bool, check_choice, check_int, check_number
from .devices import AMP_MODES, DEVICES

SECTIONS = ("data", "model", "diffusion", "loss", "train", "evaluate")
# profile-only sections, resolved away per run: sizes and recipe overrides of the Table 1
# baselines (``baselines``), and what a pass of the study runs (``study``: ``StudyConfig``)
PROFILE_SECTIONS = SECTIONS + ("baselines", "study")
# the three kinds of method (``method_kind``); ``ichseg.engine.methods`` maps each to its functions
DIFFUSION, DIRECT, NNUNET = "diffusion", "direct", "nnunet"
METHOD_KINDS = (DIFFUSION, DIRECT, NNUNET)
SAMPLER_NAMES = tuple(SAMPLERS)  # ddpm, ddim, dpm-solver++ (ichseg.diffusion.samplers)
NNUNET_TRAINERS = ("nnUNetTrainer", "nnUNetTrainerIchseg")
#: nnU-Net's default run length (nnUNetTrainer.__init__)
NNUNET_DEFAULT_LENGTH = {"epochs": 1000, "iterations_per_epoch": 250, "val_iterations": 50}
NNUNET_CHANNEL_NAMES = ("noNorm", "CT", "zscore")
#: every method of the study, in the tables' order: the Table 2 variants (diffusion; MedSegDiff-v2
#: and the full model are Table 1 columns too), the Table 1 baseline networks, then nnU-Net
METHODS: tuple[str, ...] = (*VARIANTS, *BASELINES, NNUNET)
#: every name a profile may run: ``METHODS`` and the variants beyond the paper (``models.registry.BEYOND_PAPER``),
#: which a pass runs only where its profile names them
ALL_METHODS: tuple[str, ...] = (*METHODS, *(v for v in ALL_VARIANTS if v not in VARIANTS))


SELECTION_SCORES = ("dice", "strict_dice")  # validation scores that can choose the best checkpoint
VAL_ROWS = ("spread", "balanced")  # how the validation slices are chosen (train.val_rows)


@dataclass(frozen=True)
class TrainConfig:
    """Training recipe (paper §4.2): AdamW, linear LR decay to 0, EMA, fixed iteration budget.

    ``batch_size`` is the *global* batch: under torchrun each of the W ranks takes batch_size / W
    rows of the same global batch, so a run's arithmetic does not depend on W and ``lr`` is not
    rescaled.
    """

    iterations: int = 300
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.01
    ema_rate: float = 0.999
    eval_every: int = 50
    val_slices: int = 16
    # which validation slices: "spread", evenly over the split (its own share of lesion slices;
    # a small subset may hold one or none); "balanced", half of them lesion slices, so the score
    # that picks best.pt weighs keeping lesion-free slices empty and finding lesions alike
    val_rows: str = "spread"
    # checkpoint choice (best iteration) on the validation patients carved from the training
    # patients (prep.val_fraction); the paper chose on its test split, which flatters (Table 2)
    val_split: str = "val"
    val_sampler: str = "ddim"
    val_steps: int = 10
    val_ensemble: int = 2
    # which validation score picks best.pt (the paper does not say how its checkpoint was chosen):
    # "dice": the paper protocol on the map of evaluate.paper_fusion, the number Tables 1-2 report;
    # "strict_dice": Dice on the validation slices that hold a lesion (threshold 0.5)
    select_on: str = "dice"
    seed: int = 0
    augment: bool = True
    # share of each batch drawn from the training slices that hold a lesion (foreground
    # oversampling, as nnU-Net's 1/3; Isensee et al. 2021); 0 draws every row uniformly from all
    # slices, as the paper's and the released MedSegDiff code's data loaders do
    lesion_fraction: float = 0.0
    device: str = "auto"  # one of devices.DEVICES: auto | cpu | cuda
    amp: str = "none"  # one of devices.AMP_MODES: none | bf16 (CUDA, or a CPU with bf16 instructions)
    channels_last: bool = False
    compile: bool = False
    log_every: int = 10
    grad_clip: float = 0.0  # 0 disables
    # optimiser and schedule (paper §4.2: AdamW + linear decay to 0; baselines: their own recipe)
    optimizer: str = "adamw"  # one of ichseg.models.baselines.recipes.OPTIMIZERS
    momentum: float = 0.0  # SGD only
    lr_schedule: str = "linear"  # one of recipes.SCHEDULES, per iteration over the run
    poly_power: float = 0.9
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        for name in ("iterations", "batch_size", "eval_every", "val_slices", "val_steps", "val_ensemble", "log_every"):
            check_int(f"train.{name}", getattr(self, name))
        check_number("train.lr", self.lr, 0.0, low_open=True)
        check_number("train.lesion_fraction", self.lesion_fraction, 0.0, 1.0)
        check_number("train.ema_rate", self.ema_rate, 0.0, 1.0, high_open=True)
        check_number("train.min_lr", self.min_lr, 0.0, self.lr, high_open=True)
        check_int("train.seed", self.seed, 0)
        for name, known in (("val_sampler", SAMPLER_NAMES), ("device", DEVICES), ("amp", AMP_MODES),
                            ("optimizer", OPTIMIZERS), ("lr_schedule", SCHEDULES), ("val_rows", VAL_ROWS),
                            ("select_on", SELECTION_SCORES),
                            ("val_split", ("val", "train"))):  # never "test": no choice may look at the test patients
            check_choice(f"train.{name}", getattr(self, name), known)


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation: sampler, steps K, ensemble N (one batch of N·slices), slices per batch.

    ``paper_fusion`` names the map the paper-protocol columns score (``ichseg.metrics.FUSIONS``):
    ``medsegdiff`` (the released code's output path: anchor blend, STAPLE, 8-bit JPEG, then
    ``eval_seg``'s max-normalisation), ``medsegdiff-v2`` (that path without the anchor blend, as
    its sampling script runs the v2 network by default) or ``mean`` (the plain ensemble mean).
    Every fusion is recorded in ``metrics.json`` either way; the strict metrics and the
    uncertainty always use the plain mean.

    ``direct_output`` names what a direct segmenter (U-Net, TransUNet, U-KAN, nnU-Net: no
    ensemble, no anchor) hands to that output path (``ichseg.metrics.DIRECT_OUTPUTS``): ``mask``,
    its official prediction, the probability above ``threshold`` (each baseline's released code
    writes a hard segmentation), or ``probability``, its soft map, which max-normalisation turns
    into a full false positive on any lesion-free slice with a faint value. The paper does not
    say; its Table 1 baselines were run with their own code.
    """

    sampler: str = "dpm-solver++"
    steps: int = 20
    eta: float = 0.0
    ensemble: int = 5
    batch_slices: int = 16
    qualitative: int = 4  # fixed slices saved for the qualitative figure
    seed: int = 0
    threshold: float = 0.5  # strict protocol's single threshold
    paper_fusion: str = "medsegdiff"
    direct_output: str = "mask"

    def __post_init__(self) -> None:
        check_choice("evaluate.paper_fusion", self.paper_fusion, FUSIONS)
        check_choice("evaluate.direct_output", self.direct_output, DIRECT_OUTPUTS)
        check_choice("evaluate.sampler", self.sampler, SAMPLER_NAMES)
        for name in ("steps", "ensemble", "batch_slices"):
            check_int(f"evaluate.{name}", getattr(self, name))
        check_int("evaluate.qualitative", self.qualitative, 0)
        check_int("evaluate.seed", self.seed, 0)
        check_number("evaluate.eta", self.eta, 0.0, 1.0)
        check_number("evaluate.threshold", self.threshold, 0.0, 1.0, low_open=True, high_open=True)


@dataclass(frozen=True)
class NnunetConfig:
    """Settings of the nnU-Net baseline.

    configuration:  nnU-Net configuration; only ``2d`` (the book's baselines page says why).
    trainer:        ``nnUNetTrainer`` (nnU-Net's default recipe, 1000 x 250 iterations; the
                    length fields must keep their defaults) or ``nnUNetTrainerIchseg`` (the same
                    recipe with the run length below).
    epochs, iterations_per_epoch, val_iterations: run length (nnU-Net: 1000, 250, 50).
    dataset_id:     nnU-Net dataset id (1-999) of the exported dataset.
    fold:           always 0: the one fold of our train/test patient split.
    device:         ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``.
    seed:           seeds Python, NumPy and torch in the training process.
    channel_name:   nnU-Net channel name, i.e. its normalisation: ``noNorm`` (default: the
                    prepared values unchanged), ``CT`` or ``zscore``.
    tta:            mirroring test-time augmentation at prediction (nnU-Net's default: on).
    processes:      worker processes of nnU-Net's planning and preprocessing.
    threads:        torch threads of training and prediction; ``None`` = what nnU-Net's commands
                    set (all cores on CPU, 1 with CUDA). On a small shared CPU use 1: two
                    threads on two busy cores made a training step 4x slower here.
    da_workers:     augmentation workers during training; ``None`` = nnU-Net's default pool
                    (nondeterministic), 0 = in the training process (repeatable on CPU).
    validate:       after training, run nnU-Net's own validation of fold 0 (our test patients).
    """

    configuration: str = "2d"
    trainer: str = "nnUNetTrainer"
    epochs: int = 1000
    iterations_per_epoch: int = 250
    val_iterations: int = 50
    dataset_id: int = 501
    fold: int = 0
    device: str = "auto"
    seed: int = 0
    channel_name: str = "noNorm"
    tta: bool = True
    processes: int = 2
    threads: int | None = None
    da_workers: int | None = None
    validate: bool = False

    def __post_init__(self) -> None:
        if self.configuration != "2d":
            raise ConfigError(f"nnunet.configuration: only '2d' is supported, got {self.configuration!r}")
        check_choice("nnunet.trainer", self.trainer, NNUNET_TRAINERS)
        for name in NNUNET_DEFAULT_LENGTH:
            check_int(f"nnunet.{name}", getattr(self, name))
            if self.trainer == "nnUNetTrainer" and getattr(self, name) != NNUNET_DEFAULT_LENGTH[name]:
                raise ConfigError(f"nnunet.{name}: nnUNetTrainer has nnU-Net's fixed length ({name} = "
                                 f"{NNUNET_DEFAULT_LENGTH[name]}); use trainer nnUNetTrainerIchseg to change it")
        check_int("nnunet.dataset_id", self.dataset_id, 1, 999)
        if isinstance(self.fold, bool) or self.fold != 0:
            raise ConfigError(f"nnunet.fold: only fold 0 (our train/test patient split) exists, got {self.fold!r}")
        check_choice("nnunet.device", self.device, DEVICES)
        check_int("nnunet.seed", self.seed, 0)
        check_choice("nnunet.channel_name", self.channel_name, NNUNET_CHANNEL_NAMES)
        check_bool("nnunet.tta", self.tta)
        check_bool("nnunet.validate", self.validate)
        check_int("nnunet.processes", self.processes)
        if self.da_workers is not None:
            check_int("nnunet.da_workers", self.da_workers, 0)
        if self.threads is not None:
            check_int("nnunet.threads", self.threads)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "NnunetConfig":
        return dataclass_from_dict(cls, data or {}, "nnunet")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def training_key(self) -> dict[str, Any]:
        """The fields that determine the trained weights (not where or how fast they run)."""
        skip = {"device", "tta", "processes", "threads", "da_workers", "validate"}
        return {k: v for k, v in self.to_dict().items() if k not in skip}


def _check_assignment(name: str, assignment: Any) -> None:
    """A ``section.key=value`` string, as ``--set`` takes (applied later, to each run's config)."""
    key, sep, _ = assignment.partition("=") if isinstance(assignment, str) else ("", "", "")
    if not sep or key.strip().split(".")[0] not in PROFILE_SECTIONS + (NNUNET,) or "." not in key:
        raise ConfigError(f"{name}: expected SECTION.KEY=VALUE (e.g. train.iterations=3000), got {assignment!r}")


def _check_seeds(name: str, seeds: Any) -> None:
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise ConfigError(f"{name}: must be a non-empty list of seeds, got {seeds!r}")
    for seed in seeds:
        check_int(name, seed, 0)


def _check_per_method(name: str, table: Any, check) -> None:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{name}: must map method names to values, got {table!r}")
    for method, value in table.items():
        check_choice(name, method, ALL_METHODS)
        check(f"{name}.{method}", value)


def _check_assignments(name: str, items: Any) -> None:
    if not isinstance(items, (list, tuple)):
        raise ConfigError(f"{name}: must be a list of SECTION.KEY=VALUE strings, got {items!r}")
    for item in items:
        _check_assignment(name, item)


@dataclass(frozen=True)
class StudyConfig:
    """The profile's ``study`` section: what one pass of ``ichseg study`` runs (its options override it).

    methods:           the methods trained and evaluated (default: all of ``METHODS``).
    seeds:             training seeds of every method.
    overrides:         ``SECTION.KEY=VALUE`` assignments for every method's run config.
    method_seeds:      method -> seeds, replacing ``seeds`` for the methods it names.
    method_overrides:  method -> assignments, after ``overrides`` for the methods it names (as
                       ``--set METHOD:KEY=VALUE``, which comes after it).
    start_first:       methods whose stages start first, in this order, among ready stages no
                       earlier pass has timed (a fresh clone's first pass): the profile's longest
                       trainings, so that none of them runs alone at the end while other jobs idle.
    """

    methods: tuple = METHODS
    seeds: tuple = (0,)
    overrides: tuple = ()
    method_seeds: Mapping = field(default_factory=dict)
    method_overrides: Mapping = field(default_factory=dict)
    start_first: tuple = ("nnunet",)  # its plan, preprocessing, training and prediction chain is long

    def __post_init__(self) -> None:
        if not isinstance(self.methods, (list, tuple)) or not self.methods:
            raise ConfigError(f"study.methods: must be a non-empty list of methods, got {self.methods!r}")
        for m in self.methods:
            check_choice("study.methods", m, ALL_METHODS)
        _check_seeds("study.seeds", self.seeds)
        _check_assignments("study.overrides", self.overrides)
        _check_per_method("study.method_seeds", self.method_seeds, _check_seeds)
        _check_per_method("study.method_overrides", self.method_overrides, _check_assignments)
        if not isinstance(self.start_first, (list, tuple)):
            raise ConfigError(f"study.start_first: must be a list of methods, got {self.start_first!r}")
        for m in self.start_first:
            check_choice("study.start_first", m, ALL_METHODS)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and dicts (a caller's copy)."""
        return {"methods": list(self.methods), "seeds": [int(x) for x in self.seeds], "overrides": list(self.overrides),
                "method_seeds": {m: [int(x) for x in v] for m, v in self.method_seeds.items()},
                "method_overrides": {m: list(v) for m, v in self.method_overrides.items()},
                "start_first": list(self.start_first)}


def study_config(profile: Mapping[str, Any]) -> StudyConfig:
    """A loaded profile's ``study`` section, validated (defaults for a profile without one)."""
    return dataclass_from_dict(StudyConfig, profile.get("study") or {}, "study")


def train_config(cfg: Mapping[str, Any]) -> TrainConfig:
    return dataclass_from_dict(TrainConfig, cfg.get("train", {}), "train")


def eval_config(cfg: Mapping[str, Any]) -> EvalConfig:
    return dataclass_from_dict(EvalConfig, cfg.get("evaluate", {}), "evaluate")


def available_profiles() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("ichseg.profiles").iterdir() if p.name.endswith(".yaml"))


def profile_source(name_or_path: str | Path | Mapping[str, Any]) -> str:
    """The file a profile is read from, as errors name it (``ichseg/profiles/cpu.yaml``)."""
    if isinstance(name_or_path, Mapping):
        return f"profile {name_or_path.get('profile', '(a mapping)')}"
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        return str(path)
    return f"ichseg/profiles/{name_or_path}.yaml"


def load_profile(name_or_path: str | Path) -> dict:
    """A profile by name (``smoke``, ``gpu``, ``paper``) or by path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise IchsegError(f"{path}: profile file not found")
        text, name = path.read_text(), path.stem
    else:
        res = resources.files("ichseg.profiles") / f"{name_or_path}.yaml"
        if not res.is_file():
            raise IchsegError(f"profile: unknown name {str(name_or_path)!r}; known: {', '.join(available_profiles())}")
        text, name = res.read_text(), str(name_or_path)
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise IchsegError(f"{name_or_path}: a profile must be a YAML mapping")
    # "study": what a pass of the profile runs (methods, seeds); the study's, never part of a run
    unknown = set(data) - set(PROFILE_SECTIONS) - {"description", "study"}
    if unknown:
        raise IchsegError(f"{name_or_path}: unknown profile section(s) {', '.join(sorted(unknown))}; known: {', '.join(PROFILE_SECTIONS)}")
    data["profile"] = name
    return data


def apply_override(cfg: dict, assignment: str) -> None:
    """Apply one ``section.key[.sub]=value`` (value parsed as YAML: 50, 1e-4, true, [a, b])."""
    if "=" not in assignment:
        raise ConfigError(f"--set: expected key=value, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    if parts[0] not in PROFILE_SECTIONS + (NNUNET,) or len(parts) < 2:
        raise ConfigError(f"--set: key {key!r} must start with one of {', '.join(PROFILE_SECTIONS + (NNUNET,))} and name a field "
                         "(e.g. train.iterations)")
    node = cfg
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set: {key!r} goes through a non-mapping value")
    node[parts[-1]] = _parse_value(raw)


_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _parse_value(raw: str):
    """YAML scalars, plus floats such as ``3e-4`` that YAML 1.1 would leave as strings."""
    value = yaml.safe_load(raw)
    if isinstance(value, str) and _FLOAT.match(value.strip()):
        return float(value)
    return value


def method_kind(name: str) -> str:
    """``diffusion`` (a Table 2 variant, or one beyond the paper), ``direct`` (a Table 1 baseline
    network) or ``nnunet``."""
    if name in ALL_VARIANTS:
        return DIFFUSION
    if name in BASELINES:
        return DIRECT
    if name == NNUNET:
        return NNUNET
    raise ConfigError(f"method: unknown name {name!r}; known: {', '.join(ALL_METHODS)}")


def _merge(*parts: Mapping[str, Any] | None) -> dict:
    out: dict = {}
    for p in parts:
        out.update(dict(p or {}))
    return out


def _direct_sections(cfg: dict, name: str) -> None:
    """Replace the diffusion model's sections by the baseline's (recipe, then profile overrides)."""
    base = cfg.get("baselines") or {}
    own = base.get(name) or {}
    unknown = set(own) - {"model", "train", "loss"}
    if unknown:
        raise ConfigError(f"baselines.{name}: unknown key(s) {', '.join(sorted(unknown))}; known: loss, model, train")
    recipe = RECIPES[name]
    image_size = (cfg.get("model") or {}).get("image_size")
    cfg["model"] = _merge({"image_size": image_size} if image_size else {}, base.get("model"), own.get("model"))
    shared = {k: v for k, v in cfg["train"].items()
              if k not in ("lr", "weight_decay", "ema_rate", "optimizer", "momentum", "lr_schedule", "poly_power", "min_lr")}
    cfg["train"] = _merge(shared, {
        "optimizer": recipe.optimizer, "lr": recipe.lr, "momentum": recipe.momentum,
        "weight_decay": recipe.weight_decay, "lr_schedule": recipe.lr_schedule, "poly_power": recipe.poly_power,
        "min_lr": recipe.min_lr, "ema_rate": 0.0,
    }, base.get("train"), own.get("train"))
    cfg["loss"] = _merge({"bce_weight": recipe.bce_weight, "dice_weight": recipe.dice_weight,
                          "dice_over": recipe.dice_over},
                         base.get("loss"), own.get("loss"))
    cfg.pop("diffusion", None)


def resolve_run_config(
    profile: str | Path | Mapping[str, Any],
    method: str,
    overrides: Iterable[str] | None = None,
    *,
    iterations: int | None = None,
    seed: int | None = None,
) -> dict:
    """Profile + method name + overrides -> the full run config (every section validated).

    ``--set`` overrides of the ``baselines`` section apply before a baseline's sections are
    resolved from it; all others after, so ``--set train.lr=...`` wins over a recipe. A wrong key
    or value anywhere fails here, in one line naming the profile file and the key. The profile-only
    sections (``baselines``, ``study``) and its ``description`` are resolved away: a run depends on
    its own method's settings only.
    """
    cfg = copy.deepcopy(dict(profile)) if isinstance(profile, Mapping) else load_profile(profile)
    kind = method_kind(method)
    overrides = list(overrides or ())
    try:
        study_config(cfg)
        _resolve_sections(cfg, method, kind, overrides, iterations, seed)
        _check_sections(cfg, method, kind)
    except ConfigError as exc:
        where = profile_source(profile) + (f" with --set {' '.join(overrides)}" if overrides else "")
        raise ConfigError(f"{where}: {exc}") from None
    return cfg


def _variant_prep(cfg: dict, method: str) -> None:
    """The ``data.prep`` fields a variant beyond the paper sets (``BEYOND_PAPER_PREP``: 2.5D input)."""
    fields_ = BEYOND_PAPER_PREP.get(method)
    if fields_:
        data = cfg.setdefault("data", {})
        data["prep"] = {**dict(data.get("prep") or {}), **fields_}


def _resolve_sections(cfg: dict, method: str, kind: str, overrides: list[str], iterations: int | None,
                      seed: int | None) -> None:
    """The method's own sections from the profile's, then the overrides (in place)."""
    for s in SECTIONS:
        cfg.setdefault(s, {})
    cfg["method"] = method
    for assignment in overrides:
        if assignment.strip().startswith("study."):
            raise ConfigError(f"--set {assignment}: the study section says what `ichseg study` runs, not how a run "
                              "trains; use its options (--methods, --seeds, --set METHOD:KEY=VALUE)")
        if assignment.strip().startswith("baselines."):
            apply_override(cfg, assignment)
    _check_baselines(cfg.get("baselines") or {})
    if kind == DIRECT:
        _direct_sections(cfg, method)
    elif kind == NNUNET:
        cfg[NNUNET] = dict((cfg.get("baselines") or {}).get(NNUNET) or {})
        for s in ("model", "diffusion", "loss"):
            cfg.pop(s, None)
        cfg["train"] = {"seed": cfg["train"].get("seed", 0), "device": cfg["train"].get("device", "auto")}
    for s in ("baselines", "study", "description"):
        cfg.pop(s, None)
    _variant_prep(cfg, method)
    for assignment in overrides:
        if not assignment.strip().startswith("baselines."):
            apply_override(cfg, assignment)
    if iterations is not None:
        if kind == NNUNET:
            raise ConfigError("--iterations: nnU-Net trains by epochs; set nnunet.epochs / nnunet.iterations_per_epoch")
        cfg["train"]["iterations"] = int(iterations)
    if seed is not None:
        cfg["train"]["seed"] = int(seed)


def _check_baselines(base: Mapping[str, Any]) -> None:
    if not isinstance(base, Mapping):
        raise ConfigError(f"baselines: expected a mapping, got {type(base).__name__}")
    known = (*BASELINES, NNUNET, "model", "train", "loss")
    unknown = sorted(set(base) - set(known))
    if unknown:
        raise ConfigError(f"baselines: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")


def _check_sections(cfg: dict, method: str, kind: str) -> None:
    """Validate each section by the type that owns it; the engine's own sections are normalised
    (defaults filled in, so the hash is explicit), the others are checked as written (their
    defaults live with their owners, and the hashes of recorded runs stay what they were)."""
    from ..models import LossConfig, segmenter_config, variant_config

    check_data_section(cfg.get("data"), tuple(DATASETS))
    cfg["evaluate"] = asdict(eval_config(cfg))
    seed = check_int("train.seed", cfg["train"].get("seed", 0), 0)
    if kind == NNUNET:
        # one seed per run, as for every method: the study's seed is nnU-Net's
        cfg[NNUNET]["seed"] = seed
        cfg[NNUNET] = NnunetConfig.from_dict(cfg[NNUNET]).to_dict()
        return
    cfg["train"] = asdict(train_config(cfg))
    model = dict(cfg.get("model") or {})
    try:
        (segmenter_config if kind == DIRECT else variant_config)(method, **model)
    except ConfigError as exc:
        raise ConfigError(f"model: {exc}") from None
    if kind == DIRECT:
        cfg["loss"] = SegmentationLossConfig.from_dict(cfg["loss"]).to_dict()
        return
    dataclass_from_dict(LossConfig, cfg.get("loss") or {}, "loss")
    cfg["diffusion"] = DiffusionConfig.from_dict(cfg["diffusion"]).to_dict()


def run_config_hash(cfg: Mapping[str, Any]) -> str:
    """Hash of what determines the trained weights (evaluation settings excluded)."""
    return config_hash({k: v for k, v in cfg.items() if k not in ("evaluate", "description")})


def trained_run_hash(cfg: Mapping[str, Any]) -> str:
    """The ``run_hash`` that training a resolved run config records in its ``run.json``, known before
    it trains: a network's trainer first completes ``model`` with the input channels and side of the
    prepared slices (``ichseg.engine.train``), which are the preparation's window count and size;
    nnU-Net hashes the config as resolved."""
    if method_kind(cfg["method"]) == NNUNET:
        return run_config_hash(cfg)
    from ..data import PrepConfig

    prep = PrepConfig.from_dict(dict((cfg.get("data") or {}).get("prep") or {}))
    model = {**(cfg.get("model") or {}), "in_channels": prep.channels, "image_size": prep.size}
    return run_config_hash({**cfg, "model": model})


__all__ = [
    "DIFFUSION",
    "DIRECT",
    "EvalConfig",
    "ALL_METHODS",
    "METHODS",
    "METHOD_KINDS",
    "NNUNET",
    "NnunetConfig",
    "SECTIONS",
    "TrainConfig",
    "apply_override",
    "available_profiles",
    "eval_config",
    "method_kind",
    "load_profile",
    "resolve_run_config",
    "run_config_hash",
    "trained_run_hash",
    "StudyConfig",
    "profile_source",
    "study_config",
    "train_config",
]

"""Run configuration: a profile (YAML in ``ichseg/profiles``) + a variant name + overrides.

A resolved run config is a plain nested dict with the sections below; it fully determines a run,
is written to the run folder and hashed (``run_config_hash``). Each section is validated by the
dataclass that owns it (``TrainConfig``, ``EvalConfig`` here; ``DiffusionConfig``; the model's and
loss's own configs when the model is built).

Three kinds of method share the profiles (``method_kind``):

- ``diffusion``: the Table 2 variants. Sections data, model, diffusion, loss (Eq. 4), train, evaluate.
- ``direct``: the Table 1 baselines U-Net, TransUNet, U-KAN (one forward pass). The profile's
  ``baselines`` section sizes them (``baselines.model`` for all, ``baselines.<name>.model`` for
  one); their optimiser, schedule and loss come from their official recipe
  (``ichseg.models.baselines.RECIPES``) written into ``train`` and ``loss``, then
  ``baselines.train`` / ``baselines.<name>.train|loss`` and ``--set`` override it. Only the
  iteration budget, batch, validation and seed are shared with the diffusion variants (as in the
  paper's comparison); no EMA (the official recipes keep none). No diffusion section.
- ``nnunet``: nnU-Net v2 run through its own package; section ``nnunet`` (``baselines.nnunet``).
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from ..errors import ConfigError, IchsegError
from ..utils import config_hash
from ..utils.configs import dataclass_from_dict

SECTIONS = ("data", "model", "diffusion", "loss", "train", "evaluate")
# profile-only section: sizes and recipe overrides of the Table 1 baselines (resolved away per run)
PROFILE_SECTIONS = SECTIONS + ("baselines",)
NNUNET = "nnunet"
SAMPLER_NAMES = ("ddpm", "ddim", "dpm-solver++")


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
    # checkpoint choice (best iteration) on the validation patients carved from the training
    # patients (prep.val_fraction); the paper chose on its test split, which flatters (Table 2)
    val_split: str = "val"
    val_sampler: str = "ddim"
    val_steps: int = 10
    val_ensemble: int = 2
    seed: int = 0
    augment: bool = True
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "none"  # none | bf16 (CUDA only)
    channels_last: bool = False
    compile: bool = False
    log_every: int = 10
    grad_clip: float = 0.0  # 0 disables
    # optimiser and schedule (paper §4.2: AdamW + linear decay to 0; baselines: their own recipe)
    optimizer: str = "adamw"  # adamw | adam | sgd
    momentum: float = 0.0  # SGD only
    lr_schedule: str = "linear"  # linear | poly | cosine | constant, per iteration over the run
    poly_power: float = 0.9
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        for name in ("iterations", "batch_size", "eval_every", "val_slices", "val_steps", "val_ensemble", "log_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"train.{name}: must be a positive integer, got {v!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ConfigError(f"train.lr: must be a positive number, got {self.lr!r}")
        if not 0.0 <= float(self.ema_rate) < 1.0:
            raise ConfigError(f"train.ema_rate: must lie in [0, 1), got {self.ema_rate!r}")
        if self.val_sampler not in SAMPLER_NAMES:
            raise ConfigError(f"train.val_sampler: unknown value {self.val_sampler!r}; known: {', '.join(SAMPLER_NAMES)}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"train.device: unknown value {self.device!r}; known: auto, cpu, cuda")
        if self.amp not in ("none", "bf16"):
            raise ConfigError(f"train.amp: unknown value {self.amp!r}; known: none, bf16")
        if self.optimizer not in ("adamw", "adam", "sgd"):
            raise ConfigError(f"train.optimizer: unknown value {self.optimizer!r}; known: adamw, adam, sgd")
        if self.lr_schedule not in ("linear", "poly", "cosine", "constant"):
            raise ConfigError(f"train.lr_schedule: unknown value {self.lr_schedule!r}; known: linear, poly, cosine, constant")
        if not 0.0 <= float(self.min_lr) < float(self.lr):
            raise ConfigError(f"train.min_lr: must lie in [0, lr), got {self.min_lr!r}")
        if self.val_split not in ("val", "train"):  # never "test": no choice may look at the test patients
            raise ConfigError(f"train.val_split: unknown value {self.val_split!r}; known: val, train")


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation: sampler, steps K, ensemble N (one batch of N·slices), slices per batch.

    ``paper_fusion`` names the map the paper-protocol columns score (``ichseg.metrics.FUSIONS``):
    ``medsegdiff`` (the released code's output path: anchor blend, STAPLE, 8-bit JPEG, then
    ``eval_seg``'s max-normalisation), ``medsegdiff-v2`` (that path without the anchor blend, as
    its sampling script runs the v2 network by default) or ``mean`` (the plain ensemble mean).
    Every fusion is recorded in ``metrics.json`` either way; the strict metrics and the
    uncertainty always use the plain mean.
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

    def __post_init__(self) -> None:
        from ..metrics import FUSIONS

        if self.paper_fusion not in FUSIONS:
            raise ConfigError(f"evaluate.paper_fusion: unknown value {self.paper_fusion!r}; known: {', '.join(FUSIONS)}")
        if self.sampler not in SAMPLER_NAMES:
            raise ConfigError(f"evaluate.sampler: unknown value {self.sampler!r}; known: {', '.join(SAMPLER_NAMES)}")
        for name in ("steps", "ensemble", "batch_slices"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"evaluate.{name}: must be a positive integer, got {v!r}")


def train_config(cfg: Mapping[str, Any]) -> TrainConfig:
    return dataclass_from_dict(TrainConfig, cfg.get("train", {}), "train")


def eval_config(cfg: Mapping[str, Any]) -> EvalConfig:
    return dataclass_from_dict(EvalConfig, cfg.get("evaluate", {}), "evaluate")


def available_profiles() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("ichseg.profiles").iterdir() if p.name.endswith(".yaml"))


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
    unknown = set(data) - set(PROFILE_SECTIONS) - {"description"}
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
    """``diffusion`` (a Table 2 variant), ``direct`` (a Table 1 baseline network) or ``nnunet``."""
    from ..models.registry import BASELINES, VARIANTS

    if name in VARIANTS:
        return "diffusion"
    if name in BASELINES:
        return "direct"
    if name == NNUNET:
        return NNUNET
    raise ConfigError(f"variant: unknown name {name!r}; known: {', '.join([*VARIANTS, *BASELINES, NNUNET])}")


def _merge(*parts: Mapping[str, Any] | None) -> dict:
    out: dict = {}
    for p in parts:
        out.update(dict(p or {}))
    return out


def _direct_sections(cfg: dict, name: str) -> None:
    """Replace the diffusion model's sections by the baseline's (recipe, then profile overrides)."""
    from ..models.baselines import RECIPES

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
    variant: str,
    overrides: Iterable[str] | None = None,
    *,
    iterations: int | None = None,
    seed: int | None = None,
) -> dict:
    """Profile + method name + overrides -> the full run config (validated sections).

    ``--set`` overrides of the ``baselines`` section apply before a baseline's sections are
    resolved from it; all others after, so ``--set train.lr=...`` wins over a recipe.
    """
    cfg = copy.deepcopy(dict(profile)) if isinstance(profile, Mapping) else load_profile(profile)
    for s in SECTIONS:
        cfg.setdefault(s, {})
    kind = method_kind(variant)
    cfg["variant"] = variant
    overrides = list(overrides or ())
    for assignment in overrides:
        if assignment.strip().startswith("baselines."):
            apply_override(cfg, assignment)
    if kind == "direct":
        _direct_sections(cfg, variant)
    elif kind == NNUNET:
        cfg[NNUNET] = dict((cfg.get("baselines") or {}).get(NNUNET) or {})
        for s in ("model", "diffusion", "loss"):
            cfg.pop(s, None)
        cfg["train"] = {"seed": int(cfg["train"].get("seed", 0)), "device": cfg["train"].get("device", "auto")}
    cfg.pop("baselines", None)  # a run depends on its own method's settings only
    for assignment in overrides:
        if not assignment.strip().startswith("baselines."):
            apply_override(cfg, assignment)
    if iterations is not None:
        if kind == NNUNET:
            raise ConfigError("--iterations: nnU-Net trains by epochs; set nnunet.epochs / nnunet.iterations_per_epoch")
        cfg["train"]["iterations"] = int(iterations)
    if seed is not None:
        cfg["train"]["seed"] = int(seed)
    # validate and normalise the engine's own sections (defaults filled in, so the hash is explicit)
    cfg["evaluate"] = asdict(eval_config(cfg))
    if kind == NNUNET:
        from .nnunet import NnunetConfig

        # one seed per run, as for every method: the study's seed is nnU-Net's
        cfg[NNUNET]["seed"] = int(cfg["train"]["seed"])
        cfg[NNUNET] = NnunetConfig.from_dict(cfg[NNUNET]).to_dict()
        return cfg
    cfg["train"] = asdict(train_config(cfg))
    if kind == "direct":
        from ..models.baselines import SegmentationLossConfig

        cfg["loss"] = SegmentationLossConfig.from_dict(cfg["loss"]).to_dict()
        return cfg
    from ..diffusion import DiffusionConfig

    cfg["diffusion"] = DiffusionConfig.from_dict(cfg["diffusion"]).to_dict()
    return cfg


def run_config_hash(cfg: Mapping[str, Any]) -> str:
    """Hash of what determines the trained weights (evaluation settings excluded)."""
    return config_hash({k: v for k, v in cfg.items() if k not in ("evaluate", "description")})


__all__ = [
    "EvalConfig",
    "SECTIONS",
    "TrainConfig",
    "apply_override",
    "available_profiles",
    "eval_config",
    "method_kind",
    "load_profile",
    "resolve_run_config",
    "run_config_hash",
    "train_config",
]

"""The official training recipe of each Table 1 baseline, as data, and the pure helpers that turn
a recipe into an optimiser, a learning-rate schedule and a loss (used by the engine).

What the study takes from each recipe: the optimiser, its learning rate(s), momentum and weight
decay, the shape of the schedule and the loss weights. What it does not take: the number of
iterations / epochs and the batch size — every method of the study trains for the profile's shared
iteration budget, so each schedule is stretched over that budget and stepped per iteration (the
official U-KAN steps its cosine per epoch; TransUNet's poly is per iteration already).

One-logit losses: all three are trained with ``bce_weight · BCE + dice_weight · soft Dice`` on one
hemorrhage logit (``segmentation_loss``). For two classes, TransUNet's softmax cross-entropy over
(background, hemorrhage) equals BCE on the logit difference, so its CE term is kept exactly; its
Dice (official: averaged over both classes, background included, over the whole batch) becomes the
foreground soft Dice over the whole batch (``dice_over: batch``); U-Net and U-KAN (the UNeXt /
U-KAN ``BCEDiceLoss``) take one Dice per sample (``dice_over: sample``), as their code does.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F

from ...errors import ConfigError
from ...utils.configs import dataclass_from_dict
from ..losses import DICE_OVER, soft_dice_loss

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("poly", "cosine", "linear", "constant")


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _non_negative(obj, *names: str) -> None:
    for name in names:
        v = getattr(obj, name)
        if not _is_num(v) or v < 0:
            raise ConfigError(f"{name}: must be a non-negative number, got {v!r}")


@dataclass(frozen=True)
class Recipe:
    """How a baseline is trained.

    optimizer:     ``adam`` | ``adamw`` | ``sgd`` (Adam's weight decay is the L2 term of
                   ``torch.optim.Adam``, as the official U-KAN code uses it).
    lr:            base learning rate (of the non-KAN parameters for U-KAN; its KAN layers use
                   ``SegmenterConfig.kan_lr``).
    momentum:      SGD momentum (ignored by Adam/AdamW).
    weight_decay:  on every parameter group.
    lr_schedule:   ``poly`` (1 - i/T)^poly_power, ``cosine``, ``linear`` or ``constant``, over the
                   study's T iterations.
    poly_power:    exponent of ``poly``.
    min_lr:        the learning rate every group decays to (an absolute floor, as
                   ``CosineAnnealingLR(eta_min)``); 0 decays to zero.
    bce_weight / dice_weight: the loss ``bce_weight · BCE + dice_weight · soft Dice``.
    dice_over:     ``sample`` (one soft Dice per slice, averaged) or ``batch`` (one over the batch).
    source:        where the values come from and what was chosen where the source is silent.
    """

    optimizer: str
    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    poly_power: float = 0.9
    min_lr: float = 0.0
    bce_weight: float = 1.0
    dice_weight: float = 1.0
    dice_over: str = "sample"
    source: str = ""

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer: unknown value {self.optimizer!r}; known: {', '.join(OPTIMIZERS)}")
        if self.lr_schedule not in SCHEDULES:
            raise ConfigError(f"lr_schedule: unknown value {self.lr_schedule!r}; known: {', '.join(SCHEDULES)}")
        if self.dice_over not in DICE_OVER:
            raise ConfigError(f"dice_over: unknown value {self.dice_over!r}; known: {', '.join(DICE_OVER)}")
        if not _is_num(self.lr) or self.lr <= 0:
            raise ConfigError(f"lr: must be a positive number, got {self.lr!r}")
        _non_negative(self, "momentum", "weight_decay", "poly_power", "min_lr", "bce_weight", "dice_weight")
        if self.min_lr >= self.lr:
            raise ConfigError(f"min_lr: must be below lr ({self.lr}), got {self.min_lr!r}")
        if self.bce_weight + self.dice_weight <= 0:
            raise ConfigError("bce_weight: bce_weight and dice_weight are both 0 (no loss)")
        if not isinstance(self.source, str):
            raise ConfigError(f"source: must be a string, got {self.source!r}")

    def loss_config(self, dice_smooth: float = 1.0) -> "SegmentationLossConfig":
        return SegmentationLossConfig(self.bce_weight, self.dice_weight, dice_smooth, self.dice_over)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Recipe":
        return dataclass_from_dict(cls, data, "recipe")


RECIPES: Mapping[str, Recipe] = MappingProxyType({
    "unet": Recipe(
        optimizer="adam", lr=1e-4, weight_decay=1e-4, lr_schedule="cosine", min_lr=1e-5,
        bce_weight=0.5, dice_weight=1.0,
        source=(
            "Chosen, not Ronneberger et al. 2015's: they trained with SGD (momentum 0.99, one large tile per "
            "batch) on a pixel-weighted cross-entropy whose weight maps separate touching cells — nothing of "
            "which transfers to hemorrhage masks, where the problem is class imbalance (a lesion often covers "
            "<1% of a slice). The usual answer, BCE + soft Dice with Adam, is taken here in the exact form of "
            "the UNeXt / U-KAN code base (Adam lr 1e-4, weight decay 1e-4, cosine to 1e-5, 0.5 BCE + 1 Dice), "
            "so U-Net and U-KAN differ only in the architecture (and U-KAN's KAN learning rate)."
        ),
    ),
    "transunet": Recipe(
        optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4, lr_schedule="poly", poly_power=0.9,
        bce_weight=0.5, dice_weight=0.5, dice_over="batch",
        source=(
            "TransUNet official code (Chen et al. 2021, train/trainer.py): SGD lr 0.01, momentum 0.9, "
            "weight decay 1e-4, lr = 0.01 (1 - iter/max_iter)^0.9 per iteration, loss 0.5 CE + 0.5 Dice "
            "with the Dice summed over the whole batch (batch 24, 14k iterations on Synapse: replaced by "
            "the study's budget)."
        ),
    ),
    "ukan": Recipe(
        optimizer="adam", lr=1e-4, weight_decay=1e-4, lr_schedule="cosine", min_lr=1e-5,
        bce_weight=0.5, dice_weight=1.0,
        source=(
            "U-KAN official code (Li et al. 2025, Seg_UKAN/train.py): Adam lr 1e-4 and weight decay 1e-4; "
            "KAN-layer parameters at kan_lr 1e-2 (kan_weight_decay 1e-4); CosineAnnealingLR to min_lr 1e-5, "
            "stepped per epoch (here per iteration over the study's budget); BCEDiceLoss = 0.5 BCE + Dice "
            "(batch 8, 256x256 inputs)."
        ),
    ),
})
"""Baseline name -> its training recipe."""


# -- loss ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SegmentationLossConfig:
    """``bce_weight · BCE-with-logits + dice_weight · soft Dice`` (soft Dice on sigmoid over
    ``dice_over``: each sample and channel, averaged, or the whole batch; ``dice_smooth`` in
    numerator and denominator, so an empty mask asks for an empty prediction instead of giving 0/0)."""

    bce_weight: float = 0.5
    dice_weight: float = 1.0
    dice_smooth: float = 1.0
    dice_over: str = "sample"

    def __post_init__(self) -> None:
        if self.dice_over not in DICE_OVER:
            raise ConfigError(f"dice_over: unknown value {self.dice_over!r}; known: {', '.join(DICE_OVER)}")
        _non_negative(self, "bce_weight", "dice_weight", "dice_smooth")
        if self.bce_weight + self.dice_weight <= 0:
            raise ConfigError("bce_weight: bce_weight and dice_weight are both 0 (no loss)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SegmentationLossConfig":
        return dataclass_from_dict(cls, data, "segmentation loss")


def segmentation_loss(logits: torch.Tensor, mask: torch.Tensor,
                      config: SegmentationLossConfig | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one batch: ``logits`` (B, C, H, W), ``mask`` in [0, 1] of the same shape.
    Returns the loss and ``parts`` (floats: bce, dice — the unweighted terms — and total)."""
    config = config or SegmentationLossConfig()
    if not isinstance(logits, torch.Tensor) or not isinstance(mask, torch.Tensor) or logits.shape != mask.shape:
        raise ValueError(f"mask: shape {tuple(getattr(mask, 'shape', ()))} differs from the logits "
                         f"{tuple(getattr(logits, 'shape', ()))}")
    bce = F.binary_cross_entropy_with_logits(logits.float(), mask.float())
    dice = soft_dice_loss(logits, mask, config.dice_smooth, config.dice_over)
    total = config.bce_weight * bce + config.dice_weight * dice
    return total, {"bce": float(bce.detach()), "dice": float(dice.detach()), "total": float(total.detach())}


# -- optimiser and schedule ------------------------------------------------------------------------
def as_recipe(recipe_like: Recipe | str | Mapping[str, Any]) -> Recipe:
    """A ``Recipe``, a baseline name of ``RECIPES``, or a mapping of Recipe fields."""
    if isinstance(recipe_like, Recipe):
        return recipe_like
    if isinstance(recipe_like, str):
        if recipe_like not in RECIPES:
            raise ConfigError(f"recipe: unknown name {recipe_like!r}; known: {', '.join(RECIPES)}")
        return RECIPES[recipe_like]
    if isinstance(recipe_like, Mapping):
        return Recipe.from_dict(recipe_like)
    raise ConfigError(f"recipe: expected a Recipe, a name or a mapping, got {type(recipe_like).__name__}")


def build_optimizer(model: torch.nn.Module, recipe_like: Recipe | str | Mapping[str, Any]) -> torch.optim.Optimizer:
    """The recipe's optimiser over ``model.parameter_groups(lr, weight_decay)`` (U-KAN: two groups,
    KAN layers at ``kan_lr``), or over all trainable parameters for a model without that method."""
    r = as_recipe(recipe_like)
    if hasattr(model, "parameter_groups"):
        groups = model.parameter_groups(r.lr, r.weight_decay)
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": r.lr,
                   "weight_decay": r.weight_decay}]
    if r.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay)
    adam = torch.optim.AdamW if r.optimizer == "adamw" else torch.optim.Adam
    return adam(groups, lr=r.lr, weight_decay=r.weight_decay, fused=_fusable(groups))


def _fusable(groups: list[dict]) -> bool | None:
    """``True`` when every parameter is a floating-point tensor on the CPU or a CUDA device: Adam's
    fused kernel updates all of them in one pass (on a CPU the default per-tensor loop took ~5× as
    long, 12 % of a small model's training step); ``None`` leaves torch's default elsewhere."""
    params = [p for g in groups for p in g["params"]]
    ok = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return True if params and ok else None


def lr_lambda(schedule: str, iterations: int, power: float = 0.9, floor: float = 0.0) -> Callable[[int], float]:
    """Multiplier of the base learning rate at iteration ``i`` (0 … ``iterations``) for
    ``torch.optim.lr_scheduler.LambdaLR``: ``floor + (1 - floor) · s(i / iterations)`` with
    s = (1 - x)^power (poly), (1 + cos πx) / 2 (cosine), 1 - x (linear) or 1 (constant);
    iterations past the end keep the final value."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"schedule: unknown value {schedule!r}; known: {', '.join(SCHEDULES)}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ConfigError(f"iterations: must be a positive integer, got {iterations!r}")
    if not _is_num(power) or power < 0:
        raise ConfigError(f"power: must be a non-negative number, got {power!r}")
    if not _is_num(floor) or not 0.0 <= floor <= 1.0:
        raise ConfigError(f"floor: must lie in [0, 1], got {floor!r}")

    def shape(x: float) -> float:
        if schedule == "poly":
            return (1.0 - x) ** power
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * x))
        if schedule == "linear":
            return 1.0 - x
        return 1.0

    def factor(i: int) -> float:
        x = min(max(i, 0), iterations) / iterations
        return floor + (1.0 - floor) * shape(x)

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, recipe_like: Recipe | str | Mapping[str, Any],
                    iterations: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-iteration ``LambdaLR`` of the recipe's schedule over ``iterations``; each parameter
    group decays from its own learning rate to ``min_lr`` (as ``CosineAnnealingLR(eta_min)`` does
    for every group of the official U-KAN optimiser)."""
    r = as_recipe(recipe_like)
    lambdas = []
    for group in optimizer.param_groups:
        base = group.get("initial_lr", group["lr"])
        floor = min(r.min_lr / base, 1.0) if base > 0 else 0.0
        lambdas.append(lr_lambda(r.lr_schedule, iterations, r.poly_power, floor))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)

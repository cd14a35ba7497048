"""Training loss of §3.4 (Eq. 4): L_total = L_n + 1[iteration ≡ 0 (mod α)] · L_anc.

- L_n: the ε-prediction MSE (``GaussianDiffusion.eps_loss``) on the ε channel(s) of the output.
  The variance channel of ``learn_sigma`` is not part of L_n: it learns from the variational
  bound's term ``GaussianDiffusion.vb_terms`` with the mean detached (Nichol & Dhariwal 2021's
  hybrid loss), which needs x_t, t and the diffusion; the engine adds it, times ``vb_weight``,
  through ``extra`` (``DiffusionObjective``).
- L_anc on the condition branch's anchor logits:
  ``dice_ce``: soft Dice + β·BCE-with-logits, every α-th iteration (the paper, Eq. 4; α=5, β=10);
  ``mse``:     w·MSE(sigmoid(anchor), mask), the released MedSegDiff code's calibration loss
               (w=10, on every step: use ``LossConfig.medsegdiff_code()``);
  ``none``:    no anchor loss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..diffusion.gaussian import GaussianDiffusion
from ..utils.configs import dataclass_from_dict

ANCHOR_LOSSES = ("dice_ce", "mse", "none")


@dataclass(frozen=True)
class LossConfig:
    anchor_loss: str = "dice_ce"
    alpha: int = 5  # Eq. 4: the anchor loss is added on iterations ≡ 0 (mod α)
    beta: float = 10.0  # L_anc = L_dice + β L_ce
    mse_weight: float = 10.0  # the code's 10 × MSE(sigmoid(anchor), mask)
    dice_smooth: float = 1.0
    # weight of the per-timestep variational-bound term (learned variance only). 1, as the
    # released MedSegDiff code (MSE loss type: the term is added unscaled): one sampled term L_t
    # stands for the bound's sum of T terms, so this is Nichol & Dhariwal's λ = 1/T = 0.001.
    vb_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.anchor_loss not in ANCHOR_LOSSES:
            raise ConfigError(f"anchor_loss: unknown value {self.anchor_loss!r}; known: {', '.join(ANCHOR_LOSSES)}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int) or self.alpha < 1:
            raise ConfigError(f"alpha: must be a positive integer, got {self.alpha!r}")
        for name in ("beta", "mse_weight", "dice_smooth", "vb_weight"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ConfigError(f"{name}: must be a non-negative number, got {v!r}")

    @classmethod
    def medsegdiff_code(cls) -> "LossConfig":
        """The released MedSegDiff code: 10·MSE(sigmoid(anchor), mask) on every step."""
        return cls(anchor_loss="mse", alpha=1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LossConfig":
        return dataclass_from_dict(cls, data, "loss config")

    def anchor_active(self, iteration: int) -> bool:
        """The indicator of Eq. 4."""
        return self.anchor_loss != "none" and iteration % self.alpha == 0


#: what one soft Dice sums over: each sample (and channel) separately, averaged; or the whole batch
DICE_OVER = ("sample", "batch")


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0, over: str = "sample") -> torch.Tensor:
    """1 - (2Σpg + s)/(Σp + Σg + s), p = sigmoid(logits): per sample and channel, averaged
    (``over="sample"``), or one Dice per channel over the whole batch (``over="batch"``, the
    TransUNet code's form, in which the empty slices of a batch only add to Σp)."""
    if over not in DICE_OVER:
        raise ValueError(f"over: unknown value {over!r}; known: {', '.join(DICE_OVER)}")
    p = torch.sigmoid(logits.float())
    g = target.float()
    dims = tuple(range(2, p.ndim)) if over == "sample" else (0, *range(2, p.ndim))
    inter = (p * g).sum(dims)
    denom = p.sum(dims) + g.sum(dims)
    return (1.0 - (2.0 * inter + smooth) / (denom + smooth)).mean()


def anchor_loss(logits: torch.Tensor, mask: torch.Tensor, config: LossConfig) -> torch.Tensor:
    if logits.shape != mask.shape:
        raise ValueError(f"mask: shape {tuple(mask.shape)} differs from the anchor output {tuple(logits.shape)}")
    if config.anchor_loss == "dice_ce":
        ce = F.binary_cross_entropy_with_logits(logits.float(), mask.float())
        return soft_dice_loss(logits, mask, config.dice_smooth) + config.beta * ce
    if config.anchor_loss == "mse":
        return config.mse_weight * F.mse_loss(torch.sigmoid(logits.float()), mask.float())
    return logits.new_zeros(())


def total_loss(
    out,
    noise: torch.Tensor,
    mask: torch.Tensor,
    iteration: int,
    config: LossConfig | None = None,
    extra: Mapping[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 4 for one batch. ``out``: a ``ModelOutput``; ``noise``: the ε that made x_t; ``mask``:
    the ground truth in [0, 1] (B, C, H, W); ``iteration``: the global training step; ``extra``:
    further named terms added as they are (e.g. a variational-bound term). Returns the loss and
    ``parts`` (floats: eps, anchor — 0 when inactive —, any extra terms, total)."""
    config = config or LossConfig()
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
        raise ValueError(f"iteration: must be a non-negative integer, got {iteration!r}")
    c = noise.shape[1]
    l_n = GaussianDiffusion.eps_loss(out.eps[:, :c].float(), noise.float())
    total = l_n
    l_anc = None
    if config.anchor_active(iteration) and out.anchor is not None:
        l_anc = anchor_loss(out.anchor, mask, config)
        total = total + l_anc
    parts = {"eps": float(l_n.detach()), "anchor": float(l_anc.detach()) if l_anc is not None else 0.0}
    for name, term in (extra or {}).items():
        total = total + term
        parts[name] = float(term.detach())
    parts["total"] = float(total.detach())
    return total, parts

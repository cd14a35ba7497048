"""What one training step optimises and how a network is validated, per kind of method.

``DiffusionObjective``: Eq. 4 on a diffusion segmenter (x_t from the mask and a seeded ε, the
ε-MSE plus the anchor loss every α-th iteration), plus, with a learned variance
(``variance: learned_range``, the network's ``learn_sigma`` channel), the variational bound's
term with the mean detached (Nichol & Dhariwal 2021's hybrid loss, as the released MedSegDiff
code trains); validation samples masks with the profile's fast sampler. ``DirectObjective``: a Table 1 baseline's own loss (BCE + soft Dice on its logits);
validation takes sigmoid(logits). The training loop (``train``) is the same for both.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..metrics import fusion_maps, fusion_stages, paper_protocol, strict_protocol
from .config import TrainConfig, eval_config
from .inference import predict_direct, segment_slices


class _DiffusionForward(nn.Module):
    """The forward pass of one diffusion training step, returning only the outputs the loss uses.

    Under DistributedDataParallel(find_unused_parameters=True) every returned tensor must reach
    the loss: on iterations where Eq. 4's anchor term is off, the anchor logits are not returned,
    so the anchor head counts as unused instead of stalling the gradient reduction.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x_t, t, image, with_anchor: bool):
        out = self.model(x_t, t, image)
        return out.eps, (out.anchor if with_anchor else None)


class DiffusionObjective:
    kind = "diffusion"
    log_parts = ("eps", "anchor")

    def __init__(self, cfg: Mapping[str, Any], device: torch.device):
        from ..diffusion import DiffusionConfig, GaussianDiffusion
        from ..models.losses import LossConfig

        self.diffusion = GaussianDiffusion(DiffusionConfig.from_dict(cfg["diffusion"])).to(device)
        self.paper_fusion = eval_config(cfg).paper_fusion
        self.loss_cfg = LossConfig.from_dict(cfg.get("loss") or {})
        self.learned_variance = self.diffusion.config.variance == "learned_range"
        learn_sigma = bool((cfg.get("model") or {}).get("learn_sigma", False))
        if learn_sigma != self.learned_variance:
            raise ValueError(
                f"model.learn_sigma={str(learn_sigma).lower()} does not fit diffusion.variance="
                f"{self.diffusion.config.variance!r}: the variance channel and learned_range go together")

    def wrap(self, model: nn.Module) -> nn.Module:
        return _DiffusionForward(model)

    def loss(self, net: nn.Module, img, msk, it: int, generator: torch.Generator, shard: slice, global_batch: int,
             device, amp) -> tuple[torch.Tensor, dict]:
        from ..models import ModelOutput
        from ..models.losses import total_loss

        # t and ε are drawn for the whole global batch, then sharded: W ranks see what 1 rank would
        t = self.diffusion.sample_timesteps(global_batch, generator=generator)
        noise = torch.randn((global_batch,) + tuple(msk.shape[1:]), generator=generator)
        t, noise = t[shard].to(device), noise[shard].to(device)
        x_t, target = self.diffusion.training_pair(msk, t, noise)
        with amp:
            eps, anchor = net(x_t, t, img, self.loss_cfg.anchor_active(it))
        extra = None
        if self.learned_variance:
            c = msk.shape[1]
            # only Σ_θ learns from the bound: the mean's channel enters detached
            vb = self.diffusion.vb_terms(self.diffusion.encoding.encode(msk).float(), x_t.float(), t,
                                         eps[:, :c].detach().float(), eps[:, c:].float())
            extra = {"vb": self.loss_cfg.vb_weight * vb.mean()}
        return total_loss(ModelOutput(eps=eps, anchor=anchor), target, msk, it, self.loss_cfg, extra)

    def predict(self, model: nn.Module, images: torch.Tensor, tcfg: TrainConfig, device) -> ValidationMaps:
        gen = torch.Generator(device=device).manual_seed(tcfg.seed)
        prob, _, stages = segment_slices(model, self.diffusion, images, sampler=tcfg.val_sampler,
                                         steps=None if tcfg.val_sampler == "ddpm" else tcfg.val_steps,
                                         ensemble=tcfg.val_ensemble, generator=gen, device=device, amp=tcfg.amp,
                                         paper_stages=True)
        return ValidationMaps(prob, fusion_maps(stages)[self.paper_fusion].numpy())


class DirectObjective:
    kind = "direct"
    log_parts = ("bce", "dice")

    def __init__(self, cfg: Mapping[str, Any], device: torch.device):
        from ..models.baselines import SegmentationLossConfig

        self.loss_cfg = SegmentationLossConfig.from_dict(cfg.get("loss") or {})
        ecfg = eval_config(cfg)
        self.paper_fusion, self.direct_output, self.threshold = ecfg.paper_fusion, ecfg.direct_output, ecfg.threshold

    def wrap(self, model: nn.Module) -> nn.Module:
        return model

    def loss(self, net: nn.Module, img, msk, it: int, generator: torch.Generator, shard: slice, global_batch: int,
             device, amp) -> tuple[torch.Tensor, dict]:
        from ..models.baselines import segmentation_loss

        with amp:
            logits = net(img)
        return segmentation_loss(logits, msk, self.loss_cfg)

    def predict(self, model: nn.Module, images: torch.Tensor, tcfg: TrainConfig, device) -> ValidationMaps:
        prob, _ = predict_direct(model, images, device=device, amp=tcfg.amp)
        # no ensemble, no anchor: its mask (or probability) through the 8-bit image path, as the evaluation does
        stages = fusion_stages(prob.numpy()[:, None], ensemble=False, direct_output=self.direct_output,
                               threshold=self.threshold)
        return ValidationMaps(prob, fusion_maps(stages)[self.paper_fusion])


def make_objective(cfg: Mapping[str, Any], device: torch.device):
    from .config import method_kind

    kind = method_kind(cfg["method"])
    if kind == "diffusion":
        return DiffusionObjective(cfg, device)
    if kind == "direct":
        return DirectObjective(cfg, device)
    raise ConfigError(f"method: {cfg['method']!r} is not trained by this loop (kind {kind})")


class ValidationMaps(NamedTuple):
    """A validation pass's maps, (N, H, W) each: ``prob`` (the plain ensemble mean, or a direct
    model's sigmoid) and ``paper`` (the profile's ``evaluate.paper_fusion`` map, which the paper
    protocol scores at test time)."""

    prob: torch.Tensor
    paper: np.ndarray


def validation_scores(maps: ValidationMaps, masks: torch.Tensor) -> dict:
    """Paper-protocol Dice/IoU of the paper-fusion map (so a validation score measures what the
    test reports: the plain mean would turn any faint value on a lesion-free slice into a full
    false positive, which the 8-bit output path removes) and the strict positive-slice Dice of the
    probability thresholded at 0.5."""
    gt = masks[:, 0].numpy()
    paper = paper_protocol(np.asarray(maps.paper), gt)
    strict = strict_protocol(maps.prob.numpy(), gt)
    return {"dice": paper["dice"], "iou": paper["iou"], "strict_dice": strict["positive_slice_dice"]}


__all__ = ["DiffusionObjective", "DirectObjective", "ValidationMaps", "make_objective", "validation_scores"]

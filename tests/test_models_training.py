"""Gradient flow, the baseline's detached fusion, the cross-attention path, and overfitting."""

from __future__ import annotations

import pytest
import torch

from ichseg.diffusion import GaussianDiffusion
from ichseg.models import VARIANTS, ConditionFeatures, build_model
from ichseg.models.losses import LossConfig, total_loss

from _model_helpers import TINY, TINY_SHALLOW, blobs, inputs, unzero

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py

CROSS = [n for n, v in VARIANTS.items() if v["cross_attention"]]


def _batch(size=32, batch=2, seed=0):
    x_t, t, image = inputs(batch, size, seed=seed)
    noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(seed + 1))
    mask = (image > 0.5).float()
    return x_t, t, image, noise, mask


@pytest.mark.parametrize("name", list(VARIANTS))
def test_gradients_reach_every_parameter(name):
    # 64²: the six-level U-Net's middle block is then 2×2. At 32² it is one token, where softmax
    # over a single key is constant and the middle attention's query gets no gradient by design.
    torch.manual_seed(0)
    model = unzero(build_model(name, image_size=64, **TINY))
    x_t, t, image, noise, mask = _batch(size=64)
    loss, _ = total_loss(model(x_t, t, image), noise, mask, iteration=0)  # anchor active (0 ≡ 0 mod α)
    loss.backward()
    dead = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not dead, f"{name}: no gradient for {dead}"


def test_baseline_fusion_is_detached():
    """MedSegDiff-v2 as released: the diffusion loss gives no gradient to the condition U-Net."""
    model = unzero(build_model("medsegdiffv2", image_size=32, **TINY))
    x_t, t, image, noise, mask = _batch()
    loss, parts = total_loss(model(x_t, t, image), noise, mask, iteration=1)  # 1 ≢ 0 (mod 5): L_n only
    assert parts["anchor"] == 0.0
    loss.backward()
    cond_grads = [p.grad for p in model.condition.parameters()]
    assert all(g is None or not g.any() for g in cond_grads)
    assert model.diffusion.fusion_proj.weight.grad.any()  # the fusion itself is used (and trained)


def test_undetached_fusion_trains_the_condition_branch():
    model = unzero(build_model("medsegdiffv2", image_size=32, detach_fusion=False, **TINY))
    x_t, t, image, noise, mask = _batch()
    loss, _ = total_loss(model(x_t, t, image), noise, mask, iteration=1)
    loss.backward()
    assert any(p.grad is not None and p.grad.any() for p in model.condition.parameters())


@pytest.mark.parametrize("name", CROSS)
def test_cross_attention_keys_values_come_from_the_condition_branch(name):
    """Hold the concatenated image and the fused features fixed; change only the condition
    branch's input: ε changes, through the cross-attention keys/values alone."""
    torch.manual_seed(0)
    model = unzero(build_model(name, image_size=32, **TINY)).eval()
    x_t, t, image_a, _, _ = _batch(seed=0)
    image_b = inputs(2, 32, seed=7)[2]
    with torch.no_grad():
        a = model.encode_condition(image_a)
        b = model.encode_condition(image_b)
        mixed = ConditionFeatures(image=a.image, fusion=a.fusion, context=b.context, anchor=a.anchor)
        eps_a = model.denoise(x_t, t, a).eps
        eps_mixed = model.denoise(x_t, t, mixed).eps
        assert a.context is not None and a.context.shape[-1] == model.condition.context_dim
        assert (eps_mixed - eps_a).abs().max() > 1e-4
        # and without cross-attention there is no such path
        model.diffusion.bottleneck_cross = None
        for step in model.diffusion.up:
            step.cross = None
        torch.testing.assert_close(model.denoise(x_t, t, mixed).eps, model.denoise(x_t, t, a).eps)


def test_baseline_has_no_context_path():
    model = build_model("medsegdiffv2", image_size=32, **TINY)
    assert model.encode_condition(inputs(1, 32)[2]).context is None


@pytest.mark.parametrize("name", list(VARIANTS))
def test_overfits_one_fixed_batch(name):
    """Fixed blobs, t and noise; L_n + L_anc (anchor every step) falls >= 10x within 200 steps."""
    torch.manual_seed(0)
    image, mask = blobs(batch=4, size=32)
    t = torch.full((4,), 300, dtype=torch.long)
    noise = torch.randn(mask.shape, generator=torch.Generator().manual_seed(1))
    x_t, _ = GaussianDiffusion().training_pair(mask, t, noise)
    model = build_model(name, image_size=32, **TINY_SHALLOW)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    cfg = LossConfig(alpha=1)
    first = last = None
    for it in range(200):
        loss, parts = total_loss(model(x_t, t, image), noise, mask, it, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first or parts
        last = parts
        if parts["total"] <= first["total"] / 10 and parts["eps"] <= first["eps"] / 10:
            break
    assert last["total"] <= first["total"] / 10, (name, first, last, it)
    assert last["eps"] <= first["eps"] / 10, (name, first, last, it)


def _objective(variance: str, learn_sigma: bool):
    from ichseg.engine.objectives import DiffusionObjective

    cfg = {"diffusion": {"timesteps": 100, "variance": variance}, "model": {"learn_sigma": learn_sigma},
           "loss": {"anchor_loss": "none"}}
    return DiffusionObjective(cfg, torch.device("cpu"))


class _MeanAndVariance(torch.nn.Module):
    """ε̂ = a·x_t, v = tanh(b): one parameter for the mean, one for the variance channel."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(0.3))
        self.b = torch.nn.Parameter(torch.tensor(0.2))

    def forward(self, x_t, t, image, with_anchor):
        return torch.cat([self.a * x_t, torch.tanh(self.b).expand_as(x_t)], dim=1), None


def test_learned_variance_adds_the_bound_and_its_gradient_skips_the_mean():
    obj = _objective("learned_range", True)
    net = _MeanAndVariance()
    image, mask = blobs(batch=4, size=16)
    args = (image, mask, 1, torch.Generator().manual_seed(0), slice(0, 4), 4, "cpu", torch.autocast("cpu", enabled=False))
    loss, parts = obj.loss(net, *args)
    assert parts["vb"] > 0 and parts["total"] == pytest.approx(parts["eps"] + parts["vb"], rel=1e-6)
    loss.backward()
    grad_a, grad_b = float(net.a.grad), float(net.b.grad)
    assert grad_b != 0.0  # the variance channel learns from the bound
    # the mean's gradient is that of L_n alone: the bound does not reach it
    net.zero_grad()
    g = torch.Generator().manual_seed(0)
    t = obj.diffusion.sample_timesteps(4, generator=g)
    noise = torch.randn((4, 1, 16, 16), generator=g)
    x_t, target = obj.diffusion.training_pair(mask, t, noise)
    torch.mean((net.a * x_t - target) ** 2).backward()
    assert float(net.a.grad) == pytest.approx(grad_a, rel=1e-6)


def test_learn_sigma_and_learned_range_go_together():
    with pytest.raises(ValueError, match="learn_sigma"):
        _objective("learned_range", False)
    with pytest.raises(ValueError, match="learn_sigma"):
        _objective("fixed_small", True)

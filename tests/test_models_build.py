"""Every Table 2 variant builds from its name at several sizes and returns the promised shapes."""

from __future__ import annotations

import pytest
import torch

from ichseg.diffusion import DiffusionConfig, GaussianDiffusion, sample
from ichseg.errors import ConfigError
from ichseg.models import VARIANTS, ModelConfig, ModelOutput, build_model, make_eps_fn, variant_config

from _model_helpers import TINY, inputs

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py

SIZES = [32, 64, 256]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_builds_and_output_shapes(name, size):
    torch.manual_seed(0)
    model = build_model(name, image_size=size, **TINY)
    assert model.config == variant_config(name, image_size=size, **TINY)
    x_t, t, image = inputs(2, size)
    with torch.no_grad():
        out = model(x_t, t, image)
    assert isinstance(out, ModelOutput)
    assert out.eps.shape == (2, 1, size, size)
    assert out.anchor.shape == (2, 1, size, size)
    assert torch.isfinite(out.eps).all() and torch.isfinite(out.anchor).all()


@pytest.mark.parametrize("name", ["medsegdiffv2", "full"])
def test_learn_sigma_and_multichannel_image(name):
    model = build_model(name, image_size=32, learn_sigma=True, in_channels=3, **TINY)
    x_t, t, image = inputs(2, 32, channels=3)
    with torch.no_grad():
        out = model(x_t, t, image)
    assert out.eps.shape == (2, 2, 32, 32)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_forward_equals_denoise_of_encoded_condition(name):
    torch.manual_seed(0)
    model = build_model(name, image_size=32, **TINY).eval()
    x_t, t, image = inputs(2, 32)
    with torch.no_grad():
        a = model(x_t, t, image).eps
        feats = model.encode_condition(image)
        b = model.denoise(x_t, t, feats).eps
    torch.testing.assert_close(a, b)


def test_usable_as_sampler_eps_fn_with_cached_condition():
    torch.manual_seed(0)
    model = build_model("full", image_size=32, **TINY).eval()
    d = GaussianDiffusion(DiffusionConfig(timesteps=50))
    _, _, image = inputs(2, 32)
    calls = {"n": 0}
    encode = model.encode_condition

    def counting(img):
        calls["n"] += 1
        return encode(img)

    model.encode_condition = counting
    g = torch.Generator().manual_seed(0)
    masks = sample(d, make_eps_fn(model, image, 3), image, sampler="ddim", steps=5, ensemble=3, generator=g)
    assert masks.shape == (2, 3, 1, 32, 32)
    assert calls["n"] == 1  # the condition branch ran once for 5 steps
    g = torch.Generator().manual_seed(0)
    plain = sample(d, lambda x, t, c: model(x, t, c).eps, image, sampler="ddim", steps=5, ensemble=3, generator=g)
    torch.testing.assert_close(masks, plain)


@pytest.mark.parametrize("name", ["medsegdiffv2", "full"])
def test_cached_ensemble_eps_equals_the_uncached_model_call(name):
    """B = 3 images, N = 2 members: the cached features repeated with each image's members
    adjacent give the model's own output on the repeated condition, row by row."""
    torch.manual_seed(0)
    model = build_model(name, image_size=32, **TINY).eval()
    B, N = 3, 2
    _, _, image = inputs(B, 32, seed=1)
    x_t, t, _ = inputs(B * N, 32, seed=2)
    cond = image.repeat_interleave(N, dim=0)  # the samplers' layout
    with torch.no_grad():
        eps_fn = make_eps_fn(model, image, N)
        cached = eps_fn(x_t, t, cond)
        uncached = model(x_t, t, cond).eps
    torch.testing.assert_close(cached, uncached)
    assert eps_fn.features.anchor.shape == (B, 1, 32, 32)  # un-repeated, for the paper fusion
    with pytest.raises(ValueError, match="3 images x 2 members"):
        eps_fn(x_t[:4], t[:4], cond[:4])


def test_paper_default_sizes():
    cfg = ModelConfig()
    assert (cfg.image_size, cfg.base_channels, cfg.channel_mult, cfg.num_res_blocks) == (256, 128, (1, 1, 2, 2, 4, 4), 2)
    assert cfg.attention_fractions == (1 / 16,)  # 16×16 at 256²
    full = variant_config("full")
    assert full.effective_channel_mult == (1, 1, 2, 2, 4) and full.pretrained == "imagenet"


def test_attention_resolution_scales_with_image_size():
    for size, level in ((256, 4), (64, 4), (32, 4)):
        model = build_model("medsegdiffv2", image_size=size, **TINY)
        assert model.diffusion.attention_levels == [level]  # side = size/16 at any size


@pytest.mark.parametrize("bad", [
    dict(image_size=40),  # not divisible by 16
    dict(base_channels=0),
    dict(channel_mult=[]),
    dict(reduce_levels=6),
    dict(attention_fractions=[0.3]),
    dict(resnet_stem="vgg"),
])
def test_invalid_overrides_raise_value_error_naming_the_field(bad):
    key = next(iter(bad))
    with pytest.raises(ValueError, match=key if key != "image_size" else "image_size"):
        variant_config("full", **{**TINY, **bad})


def test_input_shape_errors_are_clear():
    model = build_model("medsegdiffv2", image_size=32, **TINY)
    x_t, t, image = inputs(2, 32)
    with pytest.raises(ValueError, match="image"):
        model(x_t, t, torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match="t:"):
        model(x_t, t[:1], image)
    with pytest.raises(ValueError, match="divisible"):
        model(torch.randn(2, 1, 36, 36), t, torch.randn(2, 1, 36, 36))


@pytest.mark.parametrize("variant", ["medsegdiffv2", "full"])
def test_anchor_starts_at_the_prior(variant):
    """``anchor_prior`` = 0.01 (the default): before training the anchor's sigmoid is about 0.01
    on an image, both condition branches; ``null`` keeps PyTorch's default, about 0.5."""
    torch.manual_seed(0)
    images = inputs(2, 32)[2]
    cal = torch.sigmoid(build_model(variant, image_size=32, **TINY).encode_condition(images).anchor)
    assert 0.002 < float(cal.median()) < 0.05
    torch.manual_seed(0)
    cal = torch.sigmoid(build_model(variant, image_size=32, **TINY, anchor_prior=None).encode_condition(images).anchor)
    assert 0.2 < float(cal.median()) < 0.8
    with pytest.raises(ConfigError, match="anchor_prior"):
        ModelConfig(anchor_prior=1.0)

"""The Table 1 baselines as direct segmenters: U-Net, TransUNet, U-KAN (CPU, tiny, one thread)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ichseg.data.config import PrepConfig
from ichseg.data.phantom import phantom_case
from ichseg.data.slices import preprocess_mask, preprocess_volume
from ichseg.data.volumes import Volume
from ichseg.errors import IchsegError
from ichseg.metrics.strict import slice_scores
from ichseg.models import (BASELINES, TABLE1_NAMES, VARIANTS, DiffusionSegmenter, DirectSegmenter, SegmenterConfig,
                           build_from_config, build_model, build_segmenter, is_direct, segmenter_config,
                           variant_config)
from ichseg.models.baselines import (RECIPES, UKAN, KANLinear, Recipe, SegmentationLossConfig, TransUNet, UNet,
                                     build_optimizer, build_scheduler, bspline_basis, lr_lambda, segmentation_loss)
from ichseg.models.baselines.transunet import npz_mapping
from ichseg.models.baselines.ukan import uniform_knots
from ichseg.models.losses import soft_dice_loss

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py

NAMES = list(BASELINES)
# every structure kept (levels, ResNet stages, ViT, tokenised KAN stages), widths shrunk
TINY = {
    "unet": dict(base_channels=4, channel_mult=(1, 2, 4)),
    "transunet": dict(base_channels=4, channel_mult=(2, 4, 4), resnet_units=(1, 1, 1), vit_hidden=16,
                      vit_layers=1, vit_heads=2, vit_mlp=16),
    "ukan": dict(base_channels=4, channel_mult=(1, 2, 4), kan_embed_dims=(16, 16)),
}


def tiny(name: str, size: int = 32, **kw):
    torch.manual_seed(0)
    return build_model(name, image_size=size, **{**TINY[name], **kw})


# -- shapes, gradients ----------------------------------------------------------------------------
@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("name", NAMES)
def test_output_shape(name, size):
    model = tiny(name, size)
    assert isinstance(model, DirectSegmenter) and model.config.arch == name
    out = model(torch.randn(2, 1, size, size))  # batch 2: U-KAN's bottleneck is 1×1 at 32²
    assert out.shape == (2, 1, size, size) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_forward_256(name):
    model = tiny(name, 256).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, 256, 256))
    assert out.shape == (1, 1, 256, 256)


@pytest.mark.parametrize("name", NAMES)
def test_three_channel_input_and_two_outputs(name):
    model = tiny(name, 32, in_channels=3, out_channels=2)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 2, 32, 32)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    model = tiny(name, 32)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 32, 32, generator=g)
    w = torch.randn(2, 1, 32, 32, generator=g)
    (model(x) * w).sum().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, dead


# -- configs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_config_round_trips(name):
    cfg = segmenter_config(name, image_size=64, channel_mult=[2, 2, 4], resnet_units=[1, 2, 1],
                           kan_embed_dims=[16, 32], dropout=0.2)
    assert cfg.channel_mult == (2, 2, 4) and cfg.kan_embed_dims == (16, 32)
    assert SegmenterConfig.from_dict(cfg.to_dict()) == cfg
    assert SegmenterConfig.from_yaml(cfg.to_yaml()) == cfg
    assert tiny(name).config == SegmenterConfig.from_dict(tiny(name).config.to_dict())
    with pytest.raises(ValueError, match="bogus"):
        SegmenterConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_official_sizes():
    unet, trans, ukan = (segmenter_config(n) for n in ("unet", "transunet", "ukan"))
    assert unet.widths == (64, 128, 256, 512, 1024)
    assert trans.widths == (256, 512, 1024) and trans.resnet_units == (3, 4, 9) and trans.token_grid == 16
    assert (trans.vit_hidden, trans.vit_layers, trans.vit_heads, trans.vit_mlp) == (768, 12, 12, 3072)
    assert trans.vit_weights is None  # ImageNet-21k weights unavailable: random init
    assert ukan.widths == (16, 32, 128) and ukan.kan_embed_dims == (160, 256)  # embed_dims [128, 160, 256]
    assert (ukan.kan_grid_size, ukan.kan_spline_order, ukan.kan_lr) == (5, 3, 1e-2)
    assert segmenter_config("transunet", image_size=224).token_grid == 14


@pytest.mark.parametrize("overrides, match", [
    (dict(arch="vnet"), "arch: unknown value 'vnet'"),
    (dict(norm="layer"), "norm: unknown value 'layer'"),
    (dict(image_size=100), "image_size: 100 is not divisible by 16"),
    (dict(base_channels=0), "base_channels: must be a positive integer"),
    (dict(channel_mult=[]), "channel_mult: must be a non-empty list"),
    (dict(channel_mult=3), "channel_mult: must be a list"),
    (dict(dropout=1.0), r"dropout: must lie in \[0, 1\)"),
    (dict(vit_hidden=10, vit_heads=4), "vit_hidden: must be divisible by vit_heads"),
    (dict(vit_weights="x.npz"), "vit_weights: only TransUNet"),
    (dict(kan_lr=0), "kan_lr: must be a positive number"),
    (dict(in_channels=True), "in_channels: must be a positive integer"),
])
def test_bad_configs_are_named(overrides, match):
    with pytest.raises(ValueError, match=match):
        SegmenterConfig(**overrides)


def test_bad_baseline_configs_are_named():
    with pytest.raises(ValueError, match="resnet_units: one entry per ResNet stage"):
        segmenter_config("transunet", resnet_units=(1, 1))
    with pytest.raises(ValueError, match="channel_mult: TransUNet's ResNet stages need widths of at least 8"):
        segmenter_config("transunet", base_channels=4, channel_mult=(1, 2, 4))
    with pytest.raises(ValueError, match="image_size: 48 is not divisible by 32"):
        segmenter_config("ukan", image_size=48)  # 3 conv + 2 KAN stages
    with pytest.raises(ValueError, match="arch: baseline 'unet' is arch 'unet'"):
        segmenter_config("unet", arch="ukan")


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_are_named(name):
    model = tiny(name, 64)
    with pytest.raises(ValueError, match=r"image: expected \(B, 1, H, W\)"):
        model(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"image: expected \(B, 1, H, W\)"):
        model(torch.randn(1, 64, 64))
    with pytest.raises(ValueError, match="must be divisible by"):
        model(torch.randn(2, 1, 64, 66))


def test_transunet_needs_its_image_size():
    with pytest.raises(ValueError, match="position embedding is sized for 64×64"):
        tiny("transunet", 64)(torch.randn(2, 1, 32, 32))


# -- registry -----------------------------------------------------------------------------------
def test_registry_dispatch():
    assert list(BASELINES) == ["unet", "transunet", "ukan"]
    assert dict(TABLE1_NAMES) == {"unet": "U-Net", "transunet": "TransUNet", "ukan": "U-KAN"}
    assert list(VARIANTS) == ["medsegdiffv2", "cross_attention", "reduce_layer", "resnet18", "full"]
    assert all(is_direct(n) for n in BASELINES) and not any(is_direct(n) for n in VARIANTS)
    net = build_model("unet", image_size=64, base_channels=8)
    assert type(net) is UNet and net.config.base_channels == 8 and net.config.image_size == 64
    assert type(build_segmenter("ukan", image_size=64, **TINY["ukan"])) is UKAN
    assert type(build_from_config(segmenter_config("transunet", image_size=32, **TINY["transunet"]))) is TransUNet
    diff = build_model("medsegdiffv2", image_size=32, base_channels=8, channel_mult=(1, 2), condition_channels=8,
                       condition_max_channels=16, num_head_channels=8)
    assert isinstance(diff, DiffusionSegmenter)


def test_unknown_names_and_keys():
    with pytest.raises(ValueError) as err:
        build_model("vnet")
    for name in [*VARIANTS, *BASELINES]:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="widht.*known:.*base_channels"):
        build_model("unet", widht=16)
    with pytest.raises(ValueError, match="Table 1 baseline"):
        variant_config("unet")
    with pytest.raises(ValueError, match="baseline: unknown name 'full'"):
        segmenter_config("full")
    with pytest.raises(ValueError, match="expected a ModelConfig or a SegmenterConfig"):
        build_from_config({"arch": "unet"})


# -- KANLinear --------------------------------------------------------------------------------------
def test_bspline_partition_of_unity():
    knots = uniform_knots(5, 3)
    assert len(knots) == 5 + 2 * 3 + 1 and torch.allclose(knots[3], torch.tensor(-1.0))
    x = torch.linspace(-1, 1 - 1e-4, 257)
    basis = bspline_basis(x, knots, 3)
    assert basis.shape == (257, 5 + 3)
    torch.testing.assert_close(basis.sum(-1), torch.ones(257))
    assert (basis >= 0).all()
    # outside the extended grid every function is 0
    assert bspline_basis(torch.tensor([-5.0, 5.0]), knots, 3).abs().sum() == 0


def test_bspline_order_1_hat_functions():
    # grid 2 on [-1, 1], order 1: knots -2, -1, 0, 1, 2 -> hats centred at -1, 0, 1
    knots = uniform_knots(2, 1)
    torch.testing.assert_close(knots, torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]))
    got = bspline_basis(torch.tensor([0.25, -0.5, -1.0]), knots, 1)
    want = torch.tensor([[0.0, 0.75, 0.25], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    torch.testing.assert_close(got, want)


def test_kan_linear_is_base_plus_spline():
    torch.manual_seed(0)
    layer = KANLinear(3, 2, grid_size=4, spline_order=2)
    x = torch.rand(5, 3) * 2 - 1
    y = layer(x)
    b = bspline_basis(x, layer.knots, 2)  # (5, 3, 6)
    want = torch.nn.functional.silu(x) @ layer.base_weight.T
    want = want + torch.einsum("nik,oik,oi->no", b, layer.spline_weight, layer.spline_scaler)
    torch.testing.assert_close(y, want)
    assert layer(x[None]).shape == (1, 5, 2)


def test_ukan_parameter_groups():
    model = tiny("ukan", 32)
    groups = model.parameter_groups(lr=1e-4, weight_decay=1e-4)
    by = {g["name"]: g for g in groups}
    kan_ids = {id(p) for m in model.modules() if isinstance(m, KANLinear) for p in m.parameters()}
    assert {id(p) for p in by["kan"]["params"]} == kan_ids and by["kan"]["lr"] == 1e-2
    assert by["other"]["lr"] == 1e-4 and not kan_ids & {id(p) for p in by["other"]["params"]}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert len(model.kan_parameters()) == 3 * 3 * 4  # 3 params × 3 KANLinear × (2 encoder + 2 decoder) blocks
    opt = build_optimizer(model, "ukan")
    assert isinstance(opt, torch.optim.Adam) and sorted(g["lr"] for g in opt.param_groups) == [1e-4, 1e-2]
    assert [g["lr"] for g in tiny("unet").parameter_groups(0.1)] == [0.1]


# -- TransUNet's ViT weights -----------------------------------------------------------------------
def _export_npz(model: TransUNet, path: Path, cls_token: bool = True) -> None:
    """The inverse of the loader's conversions: write ``model`` as an R50-ViT-B/16-style npz."""
    heads = model.config.vit_heads
    out = {}
    for key, t, kind in npz_mapping(model):
        t = t.detach()
        if kind == "conv":
            a = t.permute(2, 3, 1, 0)
        elif kind == "dense":
            a = t.T
        elif kind == "qkv":
            a = t.T.reshape(t.shape[1], heads, -1)
        elif kind == "out":
            a = t.T.reshape(heads, -1, t.shape[0])
        elif kind == "pos" and cls_token:
            a = torch.cat([torch.zeros(1, 1, t.shape[-1]), t], dim=1)
        else:
            a = t
        out[key] = a.numpy()
    out["cls"] = np.zeros((1, 1, model.config.vit_hidden), np.float32)  # unused keys are fine
    np.savez(path, **out)


def test_transunet_missing_or_bad_weights_file(tmp_path):
    missing = tmp_path / "weights" / "R50+ViT-B_16.npz"
    with pytest.raises(IchsegError, match="R50\\+ViT-B_16.npz") as err:
        build_model("transunet", image_size=32, vit_weights=str(missing), **TINY["transunet"])
    assert str(missing.parent) in str(err.value) and "Nothing is" in str(err.value)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not an npz")
    with pytest.raises(IchsegError, match="cannot read"):
        build_model("transunet", image_size=32, vit_weights=str(junk), **TINY["transunet"])


def test_transunet_loads_official_layout(tmp_path):
    src = tiny("transunet", 32, in_channels=3)
    path = tmp_path / "vit.npz"
    _export_npz(src, path)
    torch.manual_seed(5)
    dst = build_model("transunet", image_size=32, vit_weights=str(path), in_channels=3, **TINY["transunet"])
    for (key, a, _), (_, b, _) in zip(npz_mapping(src), npz_mapping(dst)):
        torch.testing.assert_close(a, b, msg=key)
    # grey input: the RGB root kernel summed = the official repeat-to-RGB; a larger grid: interpolated
    grey = build_model("transunet", image_size=64, vit_weights=str(path), **TINY["transunet"])
    torch.testing.assert_close(grey.encoder.root_conv.weight, src.encoder.root_conv.weight.sum(1, keepdim=True))
    assert grey.pos_embed.shape == (1, 16, 16)
    torch.testing.assert_close(grey.pos_embed[0, 0], src.pos_embed[0, 0])  # corners kept (align_corners)
    # load_pretrained=False builds the same architecture without reading the file
    cfg = segmenter_config("transunet", image_size=32, vit_weights=str(tmp_path / "gone.npz"), **TINY["transunet"])
    assert build_from_config(cfg, load_pretrained=False).config == cfg
    # a file for another size is refused, naming the tensor
    with pytest.raises(IchsegError, match="conv_root/kernel converts to shape"):
        build_model("transunet", image_size=32, vit_weights=str(path), **{**TINY["transunet"], "base_channels": 8})


# -- recipes -------------------------------------------------------------------------------------
def test_recipes_as_published():
    t, u, n = RECIPES["transunet"], RECIPES["ukan"], RECIPES["unet"]
    assert (t.optimizer, t.lr, t.momentum, t.weight_decay, t.lr_schedule, t.poly_power) == ("sgd", 0.01, 0.9, 1e-4,
                                                                                            "poly", 0.9)
    assert (t.bce_weight, t.dice_weight, t.dice_over) == (0.5, 0.5, "batch")  # trainer.py's DiceLoss: whole batch
    assert u.dice_over == n.dice_over == "sample"  # BCEDiceLoss: one Dice per sample
    assert (u.optimizer, u.lr, u.weight_decay, u.lr_schedule, u.min_lr) == ("adam", 1e-4, 1e-4, "cosine", 1e-5)
    assert (u.bce_weight, u.dice_weight) == (0.5, 1.0)
    assert n.optimizer == "adam" and "Ronneberger" in n.source
    assert all(r.source for r in RECIPES.values())
    assert Recipe.from_dict(t.to_dict()) == t
    with pytest.raises(ValueError, match="lr_schedule: unknown value 'step'"):
        Recipe("adam", 1e-3, lr_schedule="step")
    with pytest.raises(ValueError, match="recipe: unknown key"):
        Recipe.from_dict({"optimizer": "adam", "lr": 1e-3, "betas": 1})


def test_lr_lambda_values():
    poly = lr_lambda("poly", 100, 0.9)
    assert poly(0) == 1.0 and poly(50) == pytest.approx(0.5 ** 0.9) and poly(100) == 0.0 and poly(150) == 0.0
    cos = lr_lambda("cosine", 100)
    assert cos(0) == 1.0 and cos(50) == pytest.approx(0.5) and cos(100) == pytest.approx(0.0)
    assert lr_lambda("cosine", 100, floor=0.1)(100) == pytest.approx(0.1)
    assert lr_lambda("linear", 10)(5) == 0.5 and lr_lambda("constant", 10)(7) == 1.0
    with pytest.raises(ValueError, match="schedule: unknown value 'exp'"):
        lr_lambda("exp", 10)
    with pytest.raises(ValueError, match="iterations: must be a positive integer"):
        lr_lambda("poly", 0)


@pytest.mark.parametrize("name", NAMES)
def test_optimizer_and_schedule_per_recipe(name):
    model = tiny(name, 32)
    opt = build_optimizer(model, name)
    r = RECIPES[name]
    assert type(opt).__name__.lower() == r.optimizer
    if r.optimizer == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.9
    starts = [g["lr"] for g in opt.param_groups]
    sched = build_scheduler(opt, name, iterations=10)
    lrs = []
    for _ in range(10):
        opt.step()
        sched.step()
        lrs.append([g["lr"] for g in opt.param_groups])
    for start, end in zip(starts, lrs[-1]):
        assert end == pytest.approx(r.min_lr)  # every group decays to min_lr (0 for TransUNet's poly)
    mid = lrs[4]  # after 5 of 10 iterations
    for start, m in zip(starts, mid):
        shape = 0.5 ** r.poly_power if r.lr_schedule == "poly" else 0.5
        assert m == pytest.approx(r.min_lr + (start - r.min_lr) * shape)


def test_segmentation_loss():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1, 8, 8, generator=g)
    mask = (torch.rand(3, 1, 8, 8, generator=g) > 0.7).float()
    cfg = SegmentationLossConfig(bce_weight=0.5, dice_weight=1.0)
    loss, parts = segmentation_loss(logits, mask, cfg)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, mask)
    torch.testing.assert_close(loss, 0.5 * bce + soft_dice_loss(logits, mask))
    assert set(parts) == {"bce", "dice", "total"} and parts["total"] == pytest.approx(float(loss))
    assert SegmentationLossConfig.from_dict(cfg.to_dict()) == cfg == RECIPES["ukan"].loss_config()
    with pytest.raises(ValueError, match="mask: shape"):
        segmentation_loss(logits, mask[:, :, :4])
    with pytest.raises(ValueError, match="dice_weight: must be a non-negative"):
        SegmentationLossConfig(dice_weight=-1)
    with pytest.raises(ValueError, match="dice_over: unknown value 'pixel'"):
        SegmentationLossConfig(dice_over="pixel")


def test_batch_dice_is_one_dice_over_the_batch():
    """A batch of one lesion slice and one empty slice: per-sample Dice averages a lesion term and
    an empty-slice term (which punishes any positive mass on the empty slice by itself); the batch
    Dice pools both slices into one overlap ratio, by hand."""
    logits = torch.full((2, 1, 4, 4), -2.0)
    logits[0, 0, :2, :2] = 3.0
    mask = torch.zeros(2, 1, 4, 4)
    mask[0, 0, :2, :3] = 1.0
    p = torch.sigmoid(logits)
    inter = float((p * mask).sum())
    expected = 1 - (2 * inter + 1) / (float(p.sum()) + float(mask.sum()) + 1)
    assert float(soft_dice_loss(logits, mask, over="batch")) == pytest.approx(expected)
    per = [1 - (2 * float((p[i] * mask[i]).sum()) + 1) / (float(p[i].sum() + mask[i].sum()) + 1) for i in range(2)]
    assert float(soft_dice_loss(logits, mask)) == pytest.approx(sum(per) / 2)
    assert float(soft_dice_loss(logits, mask, over="batch")) != pytest.approx(sum(per) / 2)
    cfg = RECIPES["transunet"].loss_config()
    assert cfg.dice_over == "batch"
    loss, _ = segmentation_loss(logits, mask, cfg)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, mask)
    assert float(loss) == pytest.approx(0.5 * float(bce) + 0.5 * expected)


# -- each baseline overfits one batch of phantom slices ---------------------------------------------
def _phantom_batch(size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """4 slices from 4 phantom patients, each its slice with the largest hemorrhage, prepared as
    ``prepare_dataset`` does (brain window, antialiased resize, unit range; nearest-neighbour masks)."""
    cfg = PrepConfig(size=size)
    ornt = np.array([[0, 1], [1, 1], [2, 1]])
    images, masks = [], []
    for index in range(40):
        if len(images) == 4:
            break
        ph = phantom_case("instance2022", seed=0, index=index, in_plane=size)
        if not ph.labels.any():
            continue

        def vol(data):
            return Volume(Path(f"phantom{index}.nii.gz"), data, ph.affine, ph.affine, data.shape, ornt, ph.spacing)

        img = preprocess_volume(vol(ph.hu), cfg)
        msk = preprocess_mask(vol(ph.labels.astype(np.float32)), cfg)
        k = int(msk.reshape(len(msk), -1).sum(1).argmax())
        if msk[k].sum() < 90:  # the first four patients whose largest lesion slice has >= 90 pixels
            continue
        images.append(img[k])
        masks.append(msk[k][None])
    return torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(masks).astype(np.float32))


# widths up to 32 here: narrower nets leave the all-background phase of BCE too slowly for 150 steps
OVERFIT = {
    "unet": dict(base_channels=16, channel_mult=(1, 2, 2)),
    "transunet": dict(base_channels=8, channel_mult=(2, 4, 4), resnet_units=(1, 1, 1), vit_hidden=16,
                      vit_layers=1, vit_heads=2, vit_mlp=32),
    "ukan": dict(base_channels=16, channel_mult=(1, 1, 2), kan_embed_dims=(32, 32)),
}
MAX_STEPS = 150


@pytest.fixture(scope="module")
def phantom_batch():
    return _phantom_batch()


@pytest.mark.parametrize("name", NAMES)
def test_overfits_one_phantom_batch(name, phantom_batch):
    image, mask = phantom_batch
    assert image.shape == mask.shape == (4, 1, 64, 64) and (mask.sum((1, 2, 3)) >= 90).all()
    torch.manual_seed(0)
    model = build_model(name, image_size=64, **OVERFIT[name])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_cfg = SegmentationLossConfig(bce_weight=1.0, dice_weight=1.0)
    dice, step = 0.0, 0
    while step < MAX_STEPS and dice <= 0.8:
        model.train()
        for _ in range(10):
            loss, _ = segmentation_loss(model(image), mask, loss_cfg)
            opt.zero_grad()
            loss.backward()
            opt.step()
        step += 10
        model.eval()  # BatchNorm with running statistics, as at inference
        with torch.no_grad():
            dice = float(np.mean(slice_scores(torch.sigmoid(model(image)), mask)["dice"]))
    print(f"{name}: hard Dice {dice:.3f} after {step} steps")
    assert dice > 0.8 and math.isfinite(loss.item()), f"{name}: hard Dice {dice:.3f} after {step} steps"


def test_adam_recipes_use_the_fused_kernel_with_the_loop_s_numbers():
    """On a CPU the Adam family runs fused (one pass over all parameters); one step of it moves
    every parameter as torch's per-tensor reference loop does."""
    torch.manual_seed(0)
    model = tiny("unet", 32)
    ref = copy.deepcopy(model)
    opt = build_optimizer(model, "unet")
    assert opt.defaults["fused"] is True
    loop = torch.optim.Adam(ref.parameters(), lr=opt.defaults["lr"], weight_decay=opt.defaults["weight_decay"],
                            foreach=False)
    x = torch.randn(2, 1, 32, 32)
    for m, o in ((model, opt), (ref, loop)):
        for _ in range(3):
            o.zero_grad()
            m(x).square().mean().backward()
            o.step()
    for a, b in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert build_optimizer(model, "transunet").defaults.get("fused") in (None, False)  # SGD: torch's default

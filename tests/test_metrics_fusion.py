"""The paper protocol's output path (ichseg.metrics.fusion) against hand-computed cases and against
torchvision's own save_image / PIL read-back, which the released MedSegDiff code uses."""

from __future__ import annotations

import numpy as np
import pytest

from ichseg.metrics import FUSIONS, fuse, fusion_maps, fusion_stages, paper_slice_scores
from ichseg.metrics.fusion import anchor_blend, jpeg8_round_trip, staple, standardise, to_uint8

H = W = 16


def _disc(r=4, c=(8, 8)):
    yy, xx = np.mgrid[:H, :W]
    return ((yy - c[0]) ** 2 + (xx - c[1]) ** 2 < r * r).astype(np.float64)


def test_staple_of_the_released_code_is_the_mean_squared():
    rng = np.random.default_rng(0)
    m = rng.uniform(0, 1, (2, 5, H, W))
    np.testing.assert_allclose(staple(m), m.mean(axis=1) ** 2, rtol=1e-12)


def test_ddpm_blend_switches_on_the_dice_with_the_anchor():
    cal = _disc()[None] * 0.9 + 0.05  # soft anchor covering the disc
    agree = _disc()[None, None]  # a member that agrees: dice(s > 0, cal) high -> 0.5 cal + 0.5 s
    disagree = np.roll(_disc(), 7, axis=1)[None, None]  # a member elsewhere: dice low -> cal + 0.25 s
    out = anchor_blend(np.concatenate([agree, disagree], axis=1), cal, "ddpm")
    np.testing.assert_allclose(out[0, 0], np.clip(0.5 * cal[0] + 0.5 * agree[0, 0], 0, 1))
    np.testing.assert_allclose(out[0, 1], np.clip(cal[0] + 0.25 * disagree[0, 0], 0, 1))


def test_dpm_solver_blend_standardises_the_member_first():
    rng = np.random.default_rng(1)
    s = rng.normal(0.3, 0.2, (1, 2, H, W))
    z = standardise(s)
    flat = z.reshape(2, -1)
    np.testing.assert_allclose(flat.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(flat.std(axis=1, ddof=1), 1, rtol=1e-12)
    cal = np.full((1, H, W), 0.1)
    np.testing.assert_allclose(anchor_blend(s, cal, "dpm-solver++"), np.clip(cal[:, None] + 0.25 * z, 0, 1))
    # z-scoring is invariant to the encoding's affine map: {-1,1} and {0,1} samples blend alike
    np.testing.assert_allclose(anchor_blend(2 * s - 1, cal, "dpm-solver++"), anchor_blend(s, cal, "dpm-solver++"))


def test_to_uint8_is_save_images_rounding_and_faint_values_vanish():
    torch = pytest.importorskip("torch")
    x = np.array([[[0.0, 0.5 / 255 - 1e-4, 0.5 / 255 + 1e-4, 0.2, 0.999, 1.0, 1.3]]], dtype=np.float32)
    ref = torch.from_numpy(x).mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).numpy()
    np.testing.assert_array_equal(to_uint8(x), ref)
    assert to_uint8(x)[0, 0, 1] == 0 and to_uint8(x)[0, 0, 2] == 1


def test_jpeg_round_trip_equals_torchvision_save_image_and_pil_greyscale(tmp_path):
    torch = pytest.importorskip("torch")
    vutils = pytest.importorskip("torchvision.utils")
    from PIL import Image

    rng = np.random.default_rng(2)
    prob = np.clip(_disc(5) * 0.8 + rng.uniform(0, 0.05, (H, W)), 0, 1)[None]
    path = tmp_path / "x_output_ens.jpg"
    vutils.save_image(torch.from_numpy(prob.astype(np.float32)), fp=str(path), nrow=1, padding=10)
    ref = np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 255.0
    np.testing.assert_array_equal(jpeg8_round_trip(prob)[0], ref)
    np.testing.assert_array_equal(jpeg8_round_trip(prob), jpeg8_round_trip(prob))  # deterministic


def test_empty_slice_faint_noise_mean_fails_but_released_path_stays_empty():
    gt = np.zeros((1, H, W))
    members = np.full((1, 5, H, W), 0.01)  # faint positive everywhere, as an imperfect ensemble gives
    members[0, :, 3, 3] = 0.04
    mean = fuse("mean", members)
    assert paper_slice_scores(mean, gt)["dice"][0] < 0.01  # max-normalised: a full false positive
    # STAPLE squares 0.04 to 0.0016 < 0.5/255: the 8-bit image is all zero -> empty mask -> ~1
    paper = fuse("medsegdiff", members, cal=np.zeros((1, H, W)), sampler="ddpm")
    assert paper.max() == 0.0
    assert paper_slice_scores(paper, gt)["dice"][0] == pytest.approx(1.0)


def test_stages_are_cumulative_and_maps_match_the_named_fusions():
    rng = np.random.default_rng(3)
    members = np.clip(_disc()[None, None] + rng.normal(0, 0.2, (2, 3, H, W)), -1, 1)
    cal = np.clip(_disc()[None] * 0.7 + 0.1, 0, 1).repeat(2, axis=0)
    st = fusion_stages(members, cal, "ddpm")
    assert set(st) >= {"mean", "anchor_blend", "staple", "jpeg8", "v2_raw"}
    np.testing.assert_allclose(st["mean"], np.clip(members, 0, 1).mean(axis=1))
    np.testing.assert_allclose(st["staple"], anchor_blend(members, cal, "ddpm").mean(axis=1) ** 2)
    np.testing.assert_array_equal(st["jpeg8"], jpeg8_round_trip(st["staple"]))
    for name, m in fusion_maps(st).items():
        np.testing.assert_array_equal(m, fuse(name, members, cal, "ddpm"))
    # v2 default: no blend, the raw members (negative values too) through STAPLE and the JPEG
    np.testing.assert_array_equal(st["v2_raw"], jpeg8_round_trip(staple(members)))


def test_direct_segmenter_takes_the_image_path_only():
    prob = np.clip(_disc()[None] * 0.6 + 0.001, 0, 1)
    st = fusion_stages(prob[:, None], ensemble=False, direct_output="probability")
    np.testing.assert_array_equal(st["staple"], prob)  # no squaring of a single map
    np.testing.assert_array_equal(fuse("medsegdiff", prob[:, None], ensemble=False, direct_output="probability"),
                                  jpeg8_round_trip(prob))
    np.testing.assert_array_equal(fuse("mean", prob[:, None], ensemble=False, direct_output="probability"), prob)
    # its official output (the default): the mask above the threshold, then the same image path
    mask = (prob > 0.5).astype(float)
    np.testing.assert_array_equal(fuse("mean", prob[:, None], ensemble=False), mask)
    np.testing.assert_array_equal(fuse("medsegdiff", prob[:, None], ensemble=False), jpeg8_round_trip(mask))


def test_a_faint_direct_probability_on_a_lesion_free_slice_is_a_false_positive_only_as_a_soft_map():
    """Max-normalisation makes a soft map's faint background a full false positive; the baseline's
    official hard mask of the same probability is empty and scores 1 on a lesion-free slice."""
    prob = np.full((1, H, W), 0.02)
    prob[0, :4, :4] = 0.2  # well below 0.5: no pixel of the official prediction
    gt = np.zeros((1, H, W))
    soft = paper_slice_scores(fuse("medsegdiff", prob[:, None], ensemble=False, direct_output="probability"), gt)
    hard = paper_slice_scores(fuse("medsegdiff", prob[:, None], ensemble=False), gt)
    assert soft["dice"][0] < 0.5 and hard["dice"][0] == 1.0
    with pytest.raises(ValueError, match="direct_output: unknown value"):
        fuse("mean", prob[:, None], ensemble=False, direct_output="argmax")


def test_bad_names_and_shapes_are_named():
    with pytest.raises(ValueError, match="fusion: unknown value"):
        fuse("median", np.zeros((1, 2, H, W)))
    with pytest.raises(ValueError, match="sampler: unknown value"):
        fusion_stages(np.zeros((1, 2, H, W)), np.zeros((1, H, W)), "euler")
    with pytest.raises(ValueError, match="anchor: expected shape"):
        anchor_blend(np.zeros((1, 2, H, W)), np.zeros((2, H, W)), "ddpm")
    assert set(FUSIONS) == {"mean", "medsegdiff", "medsegdiff-v2"}


def test_all_zero_image_scores_as_an_empty_mask():
    gt = np.zeros((2, H, W))
    gt[1] = _disc()
    s = paper_slice_scores(np.zeros((2, H, W)), gt)
    assert s["dice"][0] == pytest.approx(1.0) and s["dice"][1] < 1e-5
    # without max-normalisation a faint image is thresholded as it is
    faint = np.full((1, H, W), 0.05)
    assert paper_slice_scores(faint, gt[:1], normalise=False)["dice"][0] == pytest.approx(1.0)
    assert paper_slice_scores(faint, gt[:1])["dice"][0] < 0.01

"""Metrics on hand-computed slices: the paper protocol (MedSegDiff's eval_seg) and strict ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ichseg.metrics import (
    evaluate,
    hd95,
    hd95_slice,
    lesion_volume_ml,
    paper_protocol,
    paper_slice_scores,
    strict_protocol,
    volume_hd95,
)

H = W = 16


def square(r0, r1, c0, c1) -> np.ndarray:
    m = np.zeros((H, W))
    m[r0:r1, c0:c1] = 1.0
    return m


def disc(radius_mm, center_mm=(20.0, 20.0), size=(80, 80), spacing=(0.5, 0.5)) -> np.ndarray:
    rr, cc = np.mgrid[: size[0], : size[1]]
    y, x = rr * spacing[0], cc * spacing[1]
    return np.hypot(y - center_mm[0], x - center_mm[1]) <= radius_mm


GT = square(2, 6, 2, 6)  # 16 pixels
CASES = {
    # name: (pred, gt, paper dice, paper iou)
    "perfect": (GT, GT, 1.0, 1.0),
    "disjoint": (square(10, 14, 10, 14), GT, 1e-4 / (32 + 1e-4), 1e-6 / (32 + 1e-6)),
    "half": (square(2, 4, 2, 6), GT, (16 + 1e-4) / (24 + 1e-4), (8 + 1e-6) / (16 + 1e-6)),
    "empty_empty": (np.zeros((H, W)), np.zeros((H, W)), 1.0, 1.0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_paper_protocol_hand_computed(name):
    pred, gt, dice, iou = CASES[name]
    s = paper_slice_scores(pred[None], gt[None])
    assert s["dice"][0] == pytest.approx(dice, rel=1e-12)
    assert s["iou"][0] == pytest.approx(iou, rel=1e-12)


def test_paper_protocol_faint_false_positive_on_empty_slice_becomes_full():
    pred = np.zeros((H, W))
    pred[8, 8] = 0.01  # far below every threshold before max-normalisation
    s = paper_slice_scores(pred[None], np.zeros((1, H, W)))
    assert s["dice"][0] == pytest.approx(1e-4 / (1 + 1e-4))
    assert s["iou"][0] == pytest.approx(1e-6 / (1 + 1e-6))


def test_paper_protocol_averages_over_thresholds_after_max_normalisation():
    pred = GT * 0.5  # half the lesion at the max, half at 0.4 of it
    pred[2:4, 2:6] = 0.5
    pred[4:6, 2:6] = 0.2
    s = paper_slice_scores(pred[None], GT[None])
    full = 1.0
    half = (16 + 1e-4) / (24 + 1e-4)
    assert s["dice"][0] == pytest.approx((2 * full + 3 * half) / 5)


def test_paper_protocol_study_mean_counts_empty_slices_as_perfect():
    pred = np.stack([CASES["half"][0], np.zeros((H, W))])
    gt = np.stack([GT, np.zeros((H, W))])
    r = paper_protocol(pred, gt)
    assert r["dice"] == pytest.approx(((16 + 1e-4) / (24 + 1e-4) + 1.0) / 2)
    assert r["n_slices"] == 2


def test_strict_marks_empty_empty_not_applicable_and_scores_positive_slices_only():
    pred = np.stack([CASES["half"][0], np.zeros((H, W)), square(0, 2, 0, 2)])
    gt = np.stack([GT, np.zeros((H, W)), np.zeros((H, W))])
    r = strict_protocol(pred, gt)
    assert np.isnan(r["per_slice"]["dice"][1])  # empty/empty: not applicable, never 1.0
    assert r["per_slice"]["dice"][2] == 0.0  # false positive on an empty slice
    assert r["n_empty_empty_slices"] == 1
    assert r["n_positive_slices"] == 1
    assert r["positive_slice_dice"] == pytest.approx(2 / 3)
    assert r["positive_slice_iou"] == pytest.approx(0.5)


def test_strict_threshold_is_not_max_normalised():
    faint = GT * 0.3
    r = strict_protocol(faint[None], GT[None], threshold=0.5)
    assert r["positive_slice_dice"] == 0.0


def test_volume_dice_regroups_slices_by_volume():
    # volume a: slices (half, perfect) -> inter 8+16, |p| 8+16, |g| 16+16 ; volume b: empty/empty
    pred = np.stack([CASES["half"][0], GT, np.zeros((H, W)), np.zeros((H, W))])
    gt = np.stack([GT, GT, np.zeros((H, W)), np.zeros((H, W))])
    r = strict_protocol(pred, gt, volume_ids=["a", "a", "b", "b"], spacing=(0.5, 0.5, 5.0))
    pv = r["per_volume"]
    assert list(pv["volume_id"]) == ["a", "b"]
    assert pv["dice"][0] == pytest.approx(2 * 24 / (24 + 32))
    assert np.isnan(pv["dice"][1])
    assert r["volume_dice"] == pytest.approx(2 * 24 / 56)
    assert r["volume_dice_n_not_applicable"] == 1
    vox_ml = 0.5 * 0.5 * 5.0 / 1000
    assert pv["gt_ml"][0] == pytest.approx(32 * vox_ml)
    assert pv["error_ml"][0] == pytest.approx(-8 * vox_ml)
    assert r["volume_abs_error_ml"] == pytest.approx(8 * vox_ml / 2)


def test_lesion_volume_ml():
    m = np.zeros((2, 20, 20), bool)
    m[0, :10, :10] = True
    ml = lesion_volume_ml(m, [(0.5, 0.5, 5.0), (0.5, 0.5, 5.0)])
    np.testing.assert_allclose(ml, [100 * 1.25 / 1000, 0.0])


@pytest.mark.parametrize("spacing", [(0.5, 0.5), (0.4, 0.8)])
def test_hd95_concentric_discs_is_the_radius_gap(spacing):
    size = (int(40 / spacing[0]), int(40 / spacing[1]))
    a = disc(10.0, size=size, spacing=spacing)
    b = disc(14.0, size=size, spacing=spacing)
    # every surface point of one circle is 4 mm from the other; pixelation costs about a pixel
    assert hd95_slice(a, b, spacing) == pytest.approx(4.0, abs=max(spacing))


def test_hd95_translated_discs_is_bounded_by_the_offset():
    a = disc(8.0, center_mm=(20.0, 18.0))
    b = disc(8.0, center_mm=(20.0, 23.0))  # 5 mm shift: Hausdorff distance 5 mm
    hd = hd95_slice(a, b, (0.5, 0.5))
    assert 3.5 <= hd <= 5.0 + 0.5
    assert hd95_slice(a, a, (0.5, 0.5)) == 0.0
    assert np.isnan(hd95_slice(a, np.zeros_like(a), (0.5, 0.5)))


def test_strict_reports_hd95_per_slice_in_mm():
    a, b = disc(10.0), disc(14.0)
    r = strict_protocol(a[None].astype(float), b[None].astype(float), spacing=(0.5, 0.5, 5.0))
    assert r["hd95_per_slice_mm"] == pytest.approx(4.0, abs=0.5)
    assert r["hd95_per_slice_n_not_applicable"] == 0
    assert "hd95_mm" not in r  # the 3D metric needs the volume ids


def ellipsoid(semi_mm, center_mm, shape, spacing) -> np.ndarray:
    """Boolean (Z, H, W) ellipsoid on a grid of voxel size ``spacing`` (z, row, col) mm."""
    grids = np.meshgrid(*[(np.arange(n) + 0.5) * s for n, s in zip(shape, spacing)], indexing="ij")
    return sum(((g - c) / a) ** 2 for g, c, a in zip(grids, center_mm, semi_mm)) <= 1.0


def test_hd95_3d_anisotropic_translation_along_z():
    """A lesion shifted by 2 slices of 5 mm: every directed distance is at most 10 mm, the
    caps facing the shift are 10 mm away; a wrong spacing order would give 2 x 0.5 mm."""
    sp = (5.0, 0.5, 0.5)
    a = ellipsoid((20.0, 8.0, 8.0), (40.0, 10.0, 10.0), (16, 40, 40), sp)
    b = np.roll(a, 2, axis=0)
    hd = hd95(a, b, sp)
    assert 5.0 <= hd <= 10.0 + 1e-9
    assert hd95(a, a, sp) == 0.0 and np.isnan(hd95(a, np.zeros_like(a), sp))


def test_volume_hd95_restacks_slices_by_volume_and_slice_index():
    sp = (0.5, 0.5, 5.0)  # (row, col, thickness) as strict_protocol takes it
    a = ellipsoid((20.0, 8.0, 8.0), (40.0, 10.0, 10.0), (16, 40, 40), (5.0, 0.5, 0.5))
    b = np.roll(a, 1, axis=0)  # one slice (5 mm) up
    want = hd95(a, b, (5.0, 0.5, 0.5))
    assert 2.5 < want <= 5.0
    # two volumes interleaved and shuffled; the slice index puts them back in order
    rng = np.random.default_rng(0)
    pred, gt = np.concatenate([b, a]), np.concatenate([a, a])
    ids = np.array(["v1"] * 16 + ["v0"] * 16)
    z = np.concatenate([np.arange(16), np.arange(16)])
    perm = rng.permutation(32)
    got = volume_hd95(pred[perm], gt[perm], ids[perm], sp, z[perm])
    assert got[0] == 0.0 and got[1] == pytest.approx(want)
    r = strict_protocol(pred[perm].astype(float), gt[perm].astype(float), volume_ids=ids[perm], spacing=sp,
                        slice_index=z[perm])
    assert r["hd95_mm"] == pytest.approx(want / 2) and r["hd95_n_not_applicable"] == 0
    np.testing.assert_allclose(r["per_volume"]["hd95_mm"], got)
    # without the slice index the shuffled order would scramble the volume: a different number
    assert volume_hd95(pred[perm], gt[perm], ids[perm], sp)[1] != pytest.approx(want)


@pytest.mark.parametrize("case", range(4))
def test_hd95_matches_medpy(case):
    """Differential test against medpy's ``metric.binary.hd95`` (the reference definition)."""
    binary = pytest.importorskip("medpy.metric.binary")
    rng = np.random.default_rng(case)
    shape, sp = [(12, 30, 30), (9, 24, 28), (40, 40), (10, 20, 20)][case], \
        [(5.0, 0.45, 0.45), (2.5, 0.9, 0.7), (0.6, 0.8), (1.0, 1.0, 1.0)][case]
    from scipy import ndimage

    a = ndimage.binary_opening(rng.random(shape) > 0.55, iterations=1)
    b = ndimage.binary_dilation(a, iterations=1) ^ (rng.random(shape) > 0.97)
    assert a.any() and b.any()
    assert hd95(a, b, sp) == pytest.approx(binary.hd95(a, b, voxelspacing=sp), rel=1e-12)
    assert hd95(b, a, sp) == pytest.approx(binary.hd95(b, a, voxelspacing=sp), rel=1e-12)


def test_accepts_torch_batches_with_channel_axis():
    pred = torch.from_numpy(np.stack([GT, GT]))[:, None].float()
    r = evaluate("paper", pred, pred)
    assert r["dice"] == 1.0 and r["iou"] == 1.0


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: paper_protocol(np.full((1, H, W), np.nan), GT[None]), "pred: contains NaN"),
        (lambda: strict_protocol(np.zeros((2, H, W)), GT[None]), "pred: shape"),
        (lambda: paper_protocol(np.zeros((H, W)), GT), "pred: expected shape"),
        (lambda: paper_protocol(-GT[None], GT[None]), "non-negative"),
        (lambda: evaluate("dice3d", GT[None], GT[None]), "protocol: unknown value 'dice3d'"),
        (lambda: strict_protocol(GT[None], GT[None], volume_ids=[1, 2]), "volume_ids"),
        (lambda: strict_protocol(GT[None], GT[None], spacing=(0.5, 0.5)), "spacing"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# -- chance level ------------------------------------------------------------------------------
def test_chance_dice_matches_random_placements():
    """Random placements of |P| pixels on a 32×32 slice with a fixed |G|-pixel lesion: the mean
    measured Dice agrees with the closed form within Monte-Carlo error."""
    from ichseg.metrics import chance_dice

    rng = np.random.default_rng(0)
    n, g_count = 32 * 32, 40
    gt = np.zeros(n, bool)
    gt[:g_count] = True
    for p_count in (10, 40, 300):
        dices = []
        for _ in range(4000):
            pred = np.zeros(n, bool)
            pred[rng.choice(n, p_count, replace=False)] = True
            dices.append(2 * (pred & gt).sum() / (p_count + g_count))
        expected = chance_dice([g_count], [p_count], n)[0]
        assert abs(np.mean(dices) - expected) < 3 * np.std(dices) / np.sqrt(len(dices)) + 1e-3


def test_chance_dice_edge_cases():
    from ichseg.metrics import all_foreground_dice, chance_dice

    out = chance_dice([0, 0, 10], [0, 5, 0], 100)
    assert np.isnan(out[0]) and out[1] == 0.0 and out[2] == 0.0
    assert chance_dice([100], [100], 100)[0] == pytest.approx(1.0)  # everything is lesion and predicted
    assert all_foreground_dice([10], 100)[0] == pytest.approx(20 / 110)
    with pytest.raises(ValueError, match="pixel counts"):
        chance_dice([101], [0], 100)
    with pytest.raises(ValueError, match="shape"):
        chance_dice([1, 2], [1], 100)

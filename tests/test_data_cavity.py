"""ichseg.data.cavity: inside the skull is where every in-plane ray meets the head's bone; soft tissue
outside a convex skull is not, the head rest is not skull, a slice without bone keeps everything,
and on the synthetic heads (and the real pydicom slices) every voxel of blood is inside."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ichseg.data.cavity import MIN_HITS, RAYS, head_of, inside_skull, inside_skull_slice, ray_hits

MM = 1.0


def _head(n=200, r_in=60.0, bone_mm=6.0, soft_mm=8.0, gap_deg=0.0, rest=False):
    """An axial slice (HU) and the distance (mm) from its centre: brain (30 HU) inside a bone ring,
    soft tissue (50 HU, a temporal muscle's HU) outside it, air beyond; ``gap_deg``: an opening in
    the ring; ``rest``: a head rest (bone-dense arc) apart from the head across air."""
    yy, xx = np.mgrid[:n, :n] - n / 2
    d, ang = np.hypot(yy, xx) * MM, np.degrees(np.arctan2(yy, xx)) % 360
    hu = np.full((n, n), -1000.0)
    hu[d < r_in + bone_mm + soft_mm] = 50.0
    hu[(d >= r_in) & (d < r_in + bone_mm) & ~(ang < gap_deg)] = 1500.0
    hu[d < r_in] = 30.0
    if rest:
        hu[(d >= r_in + bone_mm + soft_mm + 8) & (d < r_in + bone_mm + soft_mm + 11) & (yy > 20)] = 800.0
    return hu, d


def test_brain_inside_and_soft_tissue_outside_the_ring():
    hu, d = _head()
    inside = inside_skull_slice(hu, (MM, MM))
    assert inside[d < 60].all()
    # the bone is found on a 2 mm grid, so it may grow by up to 2 mm; beyond that, soft tissue is outside
    assert not inside[(d > 69) & (d < 74)].any()


def test_a_head_rest_is_not_skull():
    hu, d = _head(rest=True)
    assert not head_of(hu)[(d > 82) & (d < 85)].any()
    assert not inside_skull_slice(hu, (MM, MM))[(d > 69) & (d < 74)].any()


def test_an_opening_in_the_skull_costs_only_the_brain_that_sees_it_widely():
    hu, d = _head(gap_deg=30.0)  # 31 mm of arc: wider than the thin temporal squama lost to partial volume
    assert inside_skull_slice(hu, (MM, MM))[d < 58].all()  # all but the last 2 mm before the opening
    hu, d = _head(gap_deg=60.0)  # a craniectomy: brain near the opening is lost (--keep-outside-skull)
    inside = inside_skull_slice(hu, (MM, MM))
    assert inside[d < 30].all() and not inside[d < 60].all()


def test_a_slice_without_bone_keeps_everything():
    hu, _ = _head(bone_mm=0.0)
    assert inside_skull_slice(hu, (MM, MM)).all()


def test_ray_hits_count_directions_that_meet_bone():
    bone = np.zeros((101, 101), bool)
    bone[50, 80] = bone[50, 81] = True  # bone to the right of the centre only
    hits = ray_hits(bone, (1.0, 1.0))
    assert hits[50, 50] == 1 and hits[50, 80] == RAYS and hits[50, 90] == 1 and hits[10, 10] == 0
    ring, _ = _head()
    hits = ray_hits(ring > 300, (1.0, 1.0))
    _, d = _head()
    assert hits[100, 100] == RAYS and hits[(d > 66) & (d < 80)].max() < MIN_HITS  # outside a convex skull


def test_every_synthetic_voxel_of_blood_is_inside():
    from ichseg.data.phantom import DOMAINS, make_volume
    from ichseg.data.slices import axial_slices

    for seed in (1, 4):
        v = make_volume(np.random.default_rng(seed), DOMAINS["instance2022"], 128, 12, positive=True, with_tissue=True)
        t = {k: axial_slices(a) for k, a in v.tissue.items()}
        inside = inside_skull(np.ascontiguousarray(axial_slices(v.hu)), (v.spacing[1], v.spacing[0]))
        assert t["blood"].any() and inside[t["blood"]].all()
        assert inside[t["brain"] | t["csf"]].mean() > 0.999
        hu = axial_slices(v.hu)
        near_bone = np.stack([ndimage.binary_dilation(s > 300, iterations=2) for s in hu])
        scalp = t["head"] & ~(t["brain"] | t["csf"] | t["blood"]) & (hu > 20) & (hu < 100) & ~near_bone
        assert scalp.any() and inside[scalp].mean() < 0.02  # soft tissue outside the skull, clear of its bone


def test_the_real_slices_cranial_cavity_is_inside():
    realct = pytest.importorskip("ichseg.data.realct")
    try:
        slices = list(realct.available_slices())
    except Exception as exc:  # pydicom's test files absent: said by the realct tests
        pytest.skip(str(exc))
    for rs in slices:
        assert inside_skull_slice(rs.hu, (rs.pixel_mm, rs.pixel_mm))[rs.cavity].all(), rs.name

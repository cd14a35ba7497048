"""Hemorrhages inserted into the real whole-head CT by the phantom's own lesion generator: every
subtype, sizes from under 1 mL to over 30 mL, in the right compartment, blood HU, the rest of the
head untouched, 4.5 mm slices."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ichseg.data import invesalius, realvolume
from ichseg.data.layouts import SUBTYPES

pytestmark = pytest.mark.skipif(not invesalius.have_cranium(),
                                reason=f"{invesalius.CRANIUM_PATH} absent: {invesalius.INSTALL_HINT}")


@pytest.fixture(scope="module")
def made():
    vol = invesalius.read_cranium()
    maps, shift = realvolume.head_maps(vol)
    return vol, maps, shift, realvolume.lesion_copies(0, vol), realvolume.clean_volume(vol)


def test_head_maps_find_the_cranial_cavity_and_ventricles(made):
    _, maps, _, _, _ = made
    assert 950_000 < maps.brain.sum() < 1_700_000  # 0.95-1.7 L inside the skull, at 1 mm
    assert 10_000 < (maps.vent > 0.5).sum() < 80_000  # lateral ventricles, 10-80 mL
    vx = np.argwhere(maps.vent > 0.5)[:, 0] + maps.origin[0]
    assert (vx < -3).sum() > 0.25 * len(vx) and (vx > 3).sum() > 0.25 * len(vx)  # both sides of the midline


def test_every_subtype_at_several_sizes(made):
    _, _, _, copies, _ = made
    subs = [c.subtype for c in copies]
    assert set(subs) == set(SUBTYPES)
    assert all(subs.count(s) >= 2 for s in SUBTYPES)
    ml = np.array([c.ml for c in copies])
    assert ml.min() < 1.0 and ml.max() > 30.0
    for c in copies:  # the stored mask is what is recorded
        assert c.ml == pytest.approx(c.mask.sum() * np.prod(np.diag(c.affine)[:3]) / 1000, abs=1e-3)


def test_blood_where_the_subtype_belongs_and_the_rest_untouched(made):
    vol, _, _, copies, (clean, clean_aff) = made
    assert clean.shape == (256, 256, 36) and clean_aff[2, 2] == pytest.approx(4.5)
    for c in copies:
        k0, k1 = c.slices
        ref = clean[:, :, k0:k1 + 1]
        assert c.hu.shape == ref.shape and c.mask[:, :, [0, -1]].sum() == 0  # a blood-free slice either side
        assert np.allclose(c.affine[:3, 3], clean_aff[:3, 3] + clean_aff[:3, 2] * k0)
        m = c.mask
        # blood, partial volume and all (thin subarachnoid blood shares its 4.5 mm slab with CSF)
        assert (25 if c.subtype == "subarachnoid" else 40) <= np.median(c.hu[m]) <= 90, c.subtype
        # beyond 30 mm of the labelled blood the head is untouched (nearer: the oedema rim and blood
        # fractions under one half, e.g. the thin tips of a ventricle, are inserted but not labelled)
        far = ndimage.distance_transform_edt(~m, sampling=np.diag(c.affine)[:3]) > 30
        assert np.array_equal(c.hu[far], ref[far])
        assert np.median(ref[m]) < 60  # it replaced brain or CSF (partial-volumed with the inner table), not bone
        if c.subtype == "intraventricular":
            assert np.median(ref[m]) < 15  # ventricular CSF
        if c.subtype in ("subdural", "epidural"):  # against the inner table: bone within 5 mm in-plane
            near_bone = ndimage.binary_dilation(ref > 300, iterations=5, structure=np.ones((3, 3, 1), bool))
            assert (m & near_bone).sum() > 0.3 * m.sum()


def test_every_subtype_has_its_own_stream():
    assert set(realvolume.STREAM) == set(SUBTYPES) and len(set(realvolume.STREAM.values())) == len(SUBTYPES)

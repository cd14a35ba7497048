"""Preparing slices and mapping predictions back work a few slices at a time (memory of a 512²
scan); the result must not depend on how many (``SLICE_CHUNK``), in any file orientation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ichseg.data import PrepConfig, preprocess_volume, volume_from_slices
from ichseg.data import slices as slices_mod
from ichseg.data.volumes import volume_from_array, to_original_grid


def _volume(perm, flips, rng):
    """A volume stored along permuted, flipped axes (as scanners and converters write them)."""
    aff = np.eye(4)
    aff[:3, :3] = 0
    shape = [0, 0, 0]
    for i, (p, f) in enumerate(zip(perm, flips)):
        aff[p, i] = f * (0.5, 0.6, 5.0)[p]
        shape[i] = (40, 36, 7)[p]
    return volume_from_array("x.nii", rng.normal(40, 300, size=shape).astype(np.float32), aff)


@pytest.mark.parametrize("perm,flips", [((0, 1, 2), (1, 1, 1)), ((2, 0, 1), (-1, 1, -1)), ((1, 2, 0), (1, -1, 1))])
def test_results_do_not_depend_on_the_slice_chunk(monkeypatch, perm, flips):
    rng = np.random.default_rng(0)
    vol = _volume(perm, flips, rng)
    cfg = PrepConfig(size=16)
    pred = rng.random((vol.n_slices, 16, 16)).astype(np.float32)
    results = []
    for chunk in (1, 3, 100):
        monkeypatch.setattr(slices_mod, "SLICE_CHUNK", chunk)
        results.append((preprocess_volume(vol, cfg), volume_from_slices(pred, vol, order=1),
                        volume_from_slices(pred > 0.5, vol, order=0)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    prob = results[0][1]
    assert prob.shape == vol.original_shape and prob.flags.c_contiguous


def test_slices_of_file_grid_is_a_writable_view_in_slice_layout():
    rng = np.random.default_rng(1)
    for perm, flips in itertools.product(itertools.permutations(range(3)), [(1, -1, 1), (-1, 1, -1)]):
        vol = _volume(perm, flips, rng)
        out = np.zeros(vol.original_shape, dtype=np.float32)
        view = slices_mod.slices_of_file_grid(out, vol)
        canon = rng.random(vol.shape).astype(np.float32)
        view[...] = slices_mod.axial_slices(canon)
        assert np.shares_memory(view, out)
        assert np.array_equal(out, to_original_grid(canon, vol))

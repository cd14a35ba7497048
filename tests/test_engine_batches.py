"""The rows of each training batch: epoch-wise permutations, and foreground oversampling
(``train.lesion_fraction``) from a stream of its own, every window computable alone (exact resume)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ichseg.engine.config import TrainConfig
from ichseg.engine.train import batch_rows, stream_rows, validation_rows
from ichseg.errors import ConfigError


def test_uniform_batches_cover_each_epoch_once():
    n, batch = 37, 8
    rows = torch.cat([batch_rows(n, batch, 0, it)[1] for it in range(n // batch)])
    assert len(set(rows.tolist())) == len(rows) == (n // batch) * batch
    assert batch_rows(n, batch, 0, n // batch)[0] == 1  # the next iteration starts epoch 1


@pytest.mark.parametrize("start,count", [(0, 5), (3, 11), (9, 1), (10, 23)])
def test_a_stream_window_equals_the_same_window_of_the_whole_stream(start, count):
    whole = stream_rows(10, 7, 4, 0, 40)
    assert torch.equal(stream_rows(10, 7, 4, start, count), whole[start : start + count])
    for e in range(4):  # every epoch of the stream is a permutation
        assert sorted(whole[e * 10 : (e + 1) * 10].tolist()) == list(range(10))


def test_lesion_fraction_fills_the_batch_tail_with_lesion_rows_cycling_through_all_of_them():
    n, batch = 50, 8
    lesion = np.array([3, 11, 17, 20, 41])
    picked = []
    for it in range(10):
        epoch, rows = batch_rows(n, batch, 1, it, lesion, 0.5)
        assert len(rows) == batch
        assert set(rows[4:].tolist()) <= set(lesion.tolist())
        picked += rows[4:].tolist()
    # 40 lesion picks = 8 full passes over the 5 lesion rows, each pass a permutation
    for p in range(8):
        assert sorted(picked[p * 5 : (p + 1) * 5]) == sorted(lesion.tolist())
    # the uniform head is the plain sampler's at batch 4
    assert torch.equal(batch_rows(n, batch, 1, 7, lesion, 0.5)[1][:4], batch_rows(n, 4, 1, 7)[1])


def test_lesion_fraction_zero_or_no_lesion_rows_is_the_plain_sampler():
    plain = batch_rows(30, 6, 2, 5)
    assert torch.equal(batch_rows(30, 6, 2, 5, np.array([1, 2]), 0.0)[1], plain[1])
    assert torch.equal(batch_rows(30, 6, 2, 5, np.array([], dtype=int), 0.5)[1], plain[1])


def test_a_batch_of_lesion_rows_only_still_advances_the_epoch():
    lesion = np.arange(4)
    epochs = [batch_rows(20, 2, 0, it, lesion, 1.0)[0] for it in range(6)]
    assert epochs == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("bad", [-0.1, 1.5, True, "half"])
def test_lesion_fraction_outside_zero_one_is_refused(bad):
    with pytest.raises(ConfigError, match="train.lesion_fraction"):
        TrainConfig(lesion_fraction=bad)


def test_spread_validation_rows_are_evenly_spaced_and_fixed():
    assert validation_rows(10, 4).tolist() == [0, 3, 6, 9]
    assert validation_rows(3, 8).tolist() == [0, 1, 2]


@pytest.mark.parametrize("n_pos,count,want_pos", [(5, 8, 4), (2, 8, 2), (30, 7, 4), (0, 4, 0)])
def test_balanced_validation_rows_hold_lesion_and_lesion_free_slices_alike(n_pos, count, want_pos):
    positive = np.zeros(40, bool)
    positive[np.linspace(3, 37, n_pos).astype(int)] = True
    rows = validation_rows(40, count, positive)
    assert len(rows) == len(set(rows.tolist())) == count
    assert positive[rows].sum() == want_pos  # half (rounded up), or all there are


def test_val_rows_names_a_known_choice():
    with pytest.raises(ConfigError, match="train.val_rows"):
        TrainConfig(val_rows="random")

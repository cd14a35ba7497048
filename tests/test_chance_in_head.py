"""The head mask of a prepared slice and the chance level of Dice inside it (ichseg.metrics.chance)."""

from __future__ import annotations

import numpy as np
import pytest

from ichseg.data.slices import normalize, window
from ichseg.metrics import chance_dice, chance_dice_in_head, head_mask


def _synthetic_head_hu(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Air, a skull ring, brain with a CSF pocket at the window floor, and a bright scanner table
    below the head (a second, smaller component). Returns (HU slice, true head mask)."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size * 0.45, xx - size * 0.5)
    hu = np.full((size, size), -1000.0)
    head = r <= size * 0.35
    hu[head] = 1000.0  # skull
    hu[r <= size * 0.30] = 35.0  # brain
    hu[np.hypot(yy - size * 0.45, xx - size * 0.42) <= 3] = -5.0  # CSF: below the brain window's floor
    hu[size - 4:size - 2, size // 4:3 * size // 4] = 200.0  # table
    return hu, head


@pytest.mark.parametrize("how", ["unit", "symmetric", "zscore"])
def test_head_mask_is_the_filled_largest_component_under_every_normalisation(how):
    hu, head = _synthetic_head_hu()
    img = normalize(window(hu[None], ((40.0, 80.0),)).transpose(1, 0, 2, 3).copy(), how)  # (1, 1, H, W)
    mask = head_mask(img)
    assert mask.shape == (1, 64, 64)
    assert np.array_equal(mask[0], head)  # CSF hole filled, table and air left out
    assert np.array_equal(head_mask(img[0, 0]), head)  # (H, W) in, (H, W) out


def test_head_mask_of_an_air_slice_is_empty_and_channels_are_combined():
    assert not head_mask(np.zeros((2, 1, 16, 16))).any()
    hu, head = _synthetic_head_hu()
    # three windows (brain, subdural, bone): the head is found from any channel above its floor
    img = window(hu[None], ((40.0, 80.0), (80.0, 200.0), (600.0, 2800.0))).transpose(1, 0, 2, 3)
    assert np.array_equal(head_mask(img)[0], head)
    with pytest.raises(ValueError, match="image"):
        head_mask(np.zeros((1, 1, 1, 8, 8)))


def test_chance_inside_the_head_is_chance_on_the_head_area():
    # the same counts as chance_dice with the head's area as the slice size
    assert chance_dice_in_head([40], [60], [1000])[0] == pytest.approx(chance_dice([40], [60], 1000)[0])
    # inside a head of 1/4 of the slice, random pixels hit the lesion four times as often
    whole = chance_dice([40], [60], 4000)[0]
    assert chance_dice_in_head([40], [60], [1000])[0] == pytest.approx(4 * whole)
    # more predicted pixels than the head holds: the head, hence the lesion, is covered
    assert chance_dice_in_head([40], [3000], [1000])[0] == pytest.approx(2 * 40 / 3040)
    out = chance_dice_in_head([0, 0, 10], [0, 5, 0], [0, 100, 100])
    assert np.isnan(out[0]) and out[1] == 0.0 and out[2] == 0.0
    with pytest.raises(ValueError, match="shape"):
        chance_dice_in_head([1, 2], [1], [10, 10])

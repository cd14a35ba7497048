"""``worst.npz``: the slices an evaluation got most wrong, kept for the gallery of failures.

Picked from the per-slice scores the evaluation already has (``slices.csv``), no extra pass:

- ``lesion``: the ``WORST_K`` slices with a lesion whose strict Dice (prediction at the threshold
  against the ground truth, ``strict_dice``) is lowest; among equal Dice (most often 0, a missed
  lesion) the larger lesion first, then the earlier slice;
- ``empty``: the ``WORST_K`` lesion-free slices with the most predicted pixels (false positives),
  only those with at least one; the earlier slice first among equal counts.

The file holds, per kept slice in that order (lesion slices first): ``group`` ("lesion"/"empty"),
``row`` (index in the split's slice table), ``volume``, ``slice_index``, ``dice`` (strict, 0 on a
lesion-free slice with a false positive), ``gt_pixels``, ``pred_pixels``; and the arrays to draw it
(``image``: the first channel — the brain window — as uint8 on 0-255; ``mask`` and ``pred``: the
ground truth and the thresholded prediction as uint8), plus ``threshold`` and ``version``. Strings
are fixed-width unicode, so reading needs no pickle. At 128² the file is a few tens of kB.
``write_worst`` is its one writer, ``read_worst`` its one reader.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import IchsegError
from ..utils import atomic_write_bytes
from ..utils.images import to_u8

WORST_K = 6
VERSION = 1
GROUPS = ("lesion", "empty")
KEYS = ("group", "row", "volume", "slice_index", "dice", "gt_pixels", "pred_pixels", "image", "mask", "pred",
        "threshold", "version")


def worst_rows(per_slice: pd.DataFrame, k: int = WORST_K) -> dict[str, np.ndarray]:
    """Row positions (into ``per_slice``, the evaluation's per-slice table with ``gt_pixels``,
    ``pred_pixels`` and ``strict_dice``) of the worst lesion slices and of the lesion-free slices
    with the most predicted pixels, by the rules in the module docstring."""
    gt = per_slice["gt_pixels"].to_numpy(np.int64)
    pred = per_slice["pred_pixels"].to_numpy(np.int64)
    dice = per_slice["strict_dice"].to_numpy(np.float64)
    rows = np.arange(len(per_slice))
    lesion = rows[gt > 0]
    # np.lexsort sorts by the last key first: Dice up, then lesion size down, then row up
    lesion = lesion[np.lexsort((lesion, -gt[lesion], dice[lesion]))][:k]
    empty = rows[(gt == 0) & (pred > 0)]
    empty = empty[np.lexsort((empty, -pred[empty]))][:k]
    return {"lesion": lesion, "empty": empty}


def write_worst(path: str | Path, per_slice: pd.DataFrame, images: np.ndarray, gt: np.ndarray, prob: np.ndarray,
                threshold: float, k: int = WORST_K) -> Path:
    """Write ``worst.npz`` (atomically) for one evaluation: ``per_slice`` its per-slice table,
    ``images`` (N, C, H, W) or (N, H, W) in [0, 1], ``gt`` and ``prob`` (N, H, W)."""
    picks = worst_rows(per_slice, k)
    idx = np.concatenate([picks["lesion"], picks["empty"]]).astype(np.int64)
    img = np.asarray(images)
    img = img[:, 0] if img.ndim == 4 else img
    table = per_slice.reset_index(drop=True)
    volume = table["volume"].astype(str).to_numpy() if "volume" in table else np.full(len(table), "")
    order = table["slice_index"].to_numpy(np.int64) if "slice_index" in table else np.full(len(table), -1)
    arrays = {
        "group": np.array(["lesion"] * len(picks["lesion"]) + ["empty"] * len(picks["empty"]), dtype="<U6"),
        "row": idx.astype(np.int32),
        "volume": np.asarray(volume[idx], dtype=str),
        "slice_index": order[idx].astype(np.int32),
        "dice": table["strict_dice"].to_numpy(np.float32)[idx],
        "gt_pixels": table["gt_pixels"].to_numpy(np.int32)[idx],
        "pred_pixels": table["pred_pixels"].to_numpy(np.int32)[idx],
        "image": to_u8(img[idx]),
        "mask": (np.asarray(gt)[idx] > 0.5).astype(np.uint8),
        "pred": (np.asarray(prob)[idx] > threshold).astype(np.uint8),
        "threshold": np.float32(threshold),
        "version": np.int32(VERSION),
    }
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


@dataclass
class WorstSlices:
    """The contents of one ``worst.npz``; ``image`` back in [0, 1] (float32)."""

    group: np.ndarray
    row: np.ndarray
    volume: np.ndarray
    slice_index: np.ndarray
    dice: np.ndarray
    gt_pixels: np.ndarray
    pred_pixels: np.ndarray
    image: np.ndarray
    mask: np.ndarray
    pred: np.ndarray
    threshold: float

    def of(self, group: str) -> np.ndarray:
        """Positions of the kept slices of ``group`` ("lesion" or "empty"), worst first."""
        if group not in GROUPS:
            raise ValueError(f"worst slices: group must be one of {GROUPS}, not {group!r}")
        return np.flatnonzero(self.group == group)


def read_worst(path: str | Path) -> WorstSlices:
    """Read a ``worst.npz`` written by ``write_worst``; a missing, unreadable or incomplete file is
    an ``IchsegError`` naming it."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise IchsegError(f"{path}: cannot read the worst slices ({type(exc).__name__}: {exc})") from None
    missing = [k for k in KEYS if k not in data]
    if missing:
        raise IchsegError(f"{path}: not a worst-slice file (missing {', '.join(missing)})")
    if int(data["version"]) != VERSION:
        raise IchsegError(f"{path}: worst-slice file version {int(data['version'])}, this code reads {VERSION}")
    return WorstSlices(group=data["group"].astype(str), row=data["row"], volume=data["volume"].astype(str),
                       slice_index=data["slice_index"], dice=data["dice"], gt_pixels=data["gt_pixels"],
                       pred_pixels=data["pred_pixels"], image=data["image"].astype(np.float32) / 255.0,
                       mask=data["mask"].astype(bool), pred=data["pred"].astype(bool),
                       threshold=float(data["threshold"]))


__all__ = ["GROUPS", "WORST_K", "WorstSlices", "read_worst", "worst_rows", "write_worst"]

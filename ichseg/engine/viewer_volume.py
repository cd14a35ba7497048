"""The whole test volume an evaluation keeps for the book's slice viewer (``volume.npz``).

One volume per evaluation, chosen from the ground truth alone: among the split's volumes with a
lesion, the one whose lesion is the median in voxels (a typical case, not the easiest or the
hardest; every model's evaluation of a dataset picks the same one). Its slices in scan order, at
8 bits: the CT on the prepared intensities' 1st-99.5th percentile window of the volume, the
ground truth, the model's probability and its ensemble's uncertainty (scaled by ``unc_max``, kept
so that every model's map is drawn on one scale). About 20 slices of 128² compress to ~100 kB.
This module owns the file: ``volume_rows`` picks, ``write_volume`` writes, ``read_volume`` reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..utils.images import percentile_window, to_u8
from ..utils.layout import VIEWER_VOLUME


def volume_rows(table: pd.DataFrame, masks: np.ndarray) -> np.ndarray:
    """Row indices of the chosen volume's slices, in scan order (empty when no volume has a lesion
    or the table does not say which volume a slice belongs to)."""
    if "volume" not in table or not len(table):
        return np.zeros(0, dtype=int)
    vol = table["volume"].astype(str).to_numpy()
    voxels = pd.Series((np.asarray(masks) > 0.5).reshape(len(masks), -1).sum(axis=1)).groupby(vol).sum()
    voxels = voxels[voxels > 0].sort_values(kind="stable")
    if voxels.empty:
        return np.zeros(0, dtype=int)
    chosen = voxels.index[(len(voxels) - 1) // 2]
    rows = np.flatnonzero(vol == chosen)
    order = table["slice_index"].to_numpy(int)[rows] if "slice_index" in table else np.arange(len(rows))
    return rows[np.argsort(order, kind="stable")]


def write_volume(folder: str | Path, table: pd.DataFrame, rows: np.ndarray, images: np.ndarray, gt: np.ndarray,
                 prob: np.ndarray, unc: np.ndarray) -> Path | None:
    """Write ``volume.npz`` of ``rows`` into ``folder`` (an evaluation's temporary folder, made
    atomic by its caller); nothing when ``rows`` is empty."""
    if len(rows) == 0:
        return None
    img = np.asarray(images[rows], dtype=np.float32)
    img = img[:, 0] if img.ndim == 4 else img
    u = np.asarray(unc[rows], dtype=np.float32)
    unc_max = float(u.max()) if u.size and u.max() > 0 else 1.0
    path = Path(folder) / VIEWER_VOLUME
    np.savez_compressed(path, rows=rows.astype(np.int32), volume=str(table["volume"].iloc[rows[0]]),
                        slice_index=table["slice_index"].to_numpy(int)[rows].astype(np.int32)
                        if "slice_index" in table else np.arange(len(rows), dtype=np.int32),
                        image=to_u8(percentile_window(img)), mask=to_u8(gt[rows] > 0.5),
                        probability=to_u8(prob[rows]), uncertainty=to_u8(u / unc_max), unc_max=np.float32(unc_max))
    return path


def read_volume(path: str | Path) -> dict[str, np.ndarray] | None:
    """The arrays of a ``volume.npz`` as floats in [0, 1] (uncertainty in its own units), or None."""
    path = Path(path)
    if not path.is_file():
        return None
    with np.load(path) as z:
        out = {k: z[k] for k in z.files}
    for k in ("image", "mask", "probability"):
        out[k] = out[k].astype(np.float32) / 255
    out["uncertainty"] = out["uncertainty"].astype(np.float32) / 255 * float(out["unc_max"])
    out["volume"] = str(out["volume"])
    return out


__all__ = ["read_volume", "volume_rows", "write_volume"]

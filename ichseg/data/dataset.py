"""``SliceDataset``: a torch Dataset over one split of a prepared folder (memory-mapped).

Light augmentation (training only, switchable): a left-right flip (heads are roughly symmetric)
and a small in-plane rotation, drawn from a generator seeded by (seed, epoch, index), so a run
is reproducible whatever the data-loader worker layout. Image pixels are resampled bilinearly,
the mask by nearest neighbour (it stays in {0, 1}).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..errors import ConfigError
from .preparation import IMAGES, MASKS, SLICES, read_manifest

SPLITS = ("train", "val", "test")
#: columns of ``slices.csv`` giving the size of one *prepared* voxel: (row mm, column mm, slice mm)
PREPARED_SPACING = ("pixel_row_mm", "pixel_col_mm", "thickness_mm")


def prepared_spacing(table: pd.DataFrame) -> np.ndarray | None:
    """(N, 3) prepared voxel size (row mm, column mm, thickness mm) of the slices of ``table``,
    for lengths and volumes measured on prepared slices; None when the table does not have it
    (the scanner's ``spacing_*_mm`` would be wrong by the resize factor)."""
    if not all(c in table for c in PREPARED_SPACING):
        return None
    return table[list(PREPARED_SPACING)].to_numpy(float)


class SliceDataset(Dataset):
    """Slices of ``split`` in ``prepared_dir`` (a folder returned by ``prepare_dataset``).

    ``ds[i]`` -> {"image": (C, H, W) float32, "mask": (1, H, W) float32 in {0, 1},
    "index": the row of ``slices.csv`` this slice comes from}.
    """

    def __init__(self, prepared_dir: str | Path, split: str = "train", augment: bool = False, seed: int = 0,
                 flip_prob: float = 0.5, max_rotation_deg: float = 10.0):
        if split not in SPLITS:
            raise ConfigError(f"split: unknown value {split!r}; known: {', '.join(SPLITS)}")
        self.dir = Path(prepared_dir)
        self.manifest: dict = read_manifest(self.dir)
        slices = pd.read_csv(self.dir / SLICES, keep_default_na=False, na_values=[""],
                             dtype={"patient": str, "volume": str, "subtype": str, "drop_reason": str})
        slices[["subtype", "drop_reason"]] = slices[["subtype", "drop_reason"]].fillna("")
        self.table = slices[(slices["split"] == split) & (slices["kept"] == 1)]
        self._images = np.load(self.dir / IMAGES, mmap_mode="r")
        self._masks = np.load(self.dir / MASKS, mmap_mode="r")
        self._rows = self.table["row"].to_numpy(dtype=np.int64)
        self.split, self.augment, self.seed, self.epoch = split, bool(augment), int(seed), 0
        self.flip_prob, self.max_rotation_deg = float(flip_prob), float(max_rotation_deg)

    def __len__(self) -> int:
        return len(self._rows)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw (call once per epoch)."""
        self.epoch = int(epoch)

    @property
    def positive(self) -> np.ndarray:
        return self.table["positive"].to_numpy(dtype=np.int64) > 0

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} slices")
        row = self._rows[i]
        image = torch.from_numpy(np.array(self._images[row], dtype=np.float32))
        mask = torch.from_numpy(np.array(self._masks[row], dtype=np.float32))[None]
        if self.augment:
            image, mask = self._augment(image, mask, int(self.table.index[i]))
        return {"image": image, "mask": mask, "index": int(self.table.index[i])}

    def _augment(self, image: torch.Tensor, mask: torch.Tensor, key: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, key])
        flip, u = rng.random() < self.flip_prob, rng.uniform(-1.0, 1.0)
        if flip:
            image, mask = image.flip(-1), mask.flip(-1)
        angle = math.radians(u * self.max_rotation_deg)
        if angle:
            c, s = math.cos(angle), math.sin(angle)
            theta = torch.tensor([[[c, -s, 0.0], [s, c, 0.0]]], dtype=torch.float32)
            grid = F.affine_grid(theta, (1, 1) + tuple(image.shape[-2:]), align_corners=False)
            fill = image.amin(dim=(-2, -1), keepdim=True)  # background (air) outside the rotated field
            image = F.grid_sample((image - fill)[None], grid, mode="bilinear", padding_mode="zeros",
                                  align_corners=False)[0] + fill
            mask = F.grid_sample(mask[None], grid, mode="nearest", padding_mode="zeros", align_corners=False)[0]
        return image.contiguous(), mask.contiguous()

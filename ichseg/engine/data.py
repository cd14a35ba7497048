"""Where a run's data comes from: the real dataset folder named in the profile, or a generated one.

``ensure_prepared`` returns the prepared folder of one dataset for a run config, generating the
synthetic head CT (in that dataset's own layout, read back by the real ingestion path) when the
profile names no raw folder for it; for ``realct`` (real CT slices with inserted lesions,
``ichseg.data.realct``) the folder is written from the pydicom test slices the same way. Both steps
are no-ops when their outputs exist. ``load_split`` reads one split of a prepared folder as tensors.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import ConfigError, IchsegError

# Each dataset's phantom is drawn from another seed, so test sets never repeat training volumes.
PHANTOM_SEED_OFFSET = {"instance2022": 0, "bhsd": 1000, "physionet": 2000}


def raw_folder(cfg: Mapping[str, Any], dataset: str, data_root: Path) -> Path:
    """The folder ``dataset`` is read from: the profile's ``data.raw.<dataset>``, or one generated
    under ``data_root/raw`` (the real-CT set, or the phantom)."""
    from ..data.config import raw_source
    from ..data.layouts import get_layout

    data = cfg.get("data", {})
    src = raw_source(data, dataset)
    if src is not None:
        path = Path(src.folder).expanduser()
        if not path.is_dir():
            raise IchsegError(f"{path}: raw folder for {dataset} not found (profile data.raw.{dataset})")
        return path
    layout = get_layout(dataset)
    if not layout.generated:
        raise ConfigError(f"data.raw.{dataset}: {layout.title} cannot be generated; name its folder ({layout.expected})")
    if dataset == "realct":
        from ..data.config import RealctSettings
        from ..data.realct import write_realct

        rc = RealctSettings(**dict(data.get("realct") or {}))
        out = data_root / "raw" / f"realct-d{rc.draws}-s{rc.seed}{'-head' if rc.whole_head else ''}"
        if not (out / ".complete").exists():
            write_realct(out, draws=rc.draws, seed=rc.seed, whole_head=rc.whole_head)
            (out / ".complete").touch()
        return out
    from ..data.phantom import GENERATOR_VERSION, write_phantom

    ph = dict(data.get("phantom") or {})
    cases = ph.pop("cases", 16)  # a count, or one per dataset ({instance2022: 200, bhsd: 100, ...})
    if isinstance(cases, Mapping):
        if dataset not in cases:
            raise IchsegError(f"data.phantom.cases names no count for {dataset} (it names {', '.join(map(str, cases))})")
        cases = cases[dataset]
    cases = int(cases)
    seed = int(ph.pop("seed", 0)) + PHANTOM_SEED_OFFSET.get(dataset, 3000)
    # the folder name says which generator and options made it (an older phantom folder is not reused)
    opts = hashlib.sha256(json.dumps({**ph, "generator": GENERATOR_VERSION}, sort_keys=True, default=str).encode()).hexdigest()[:8]
    out = data_root / "raw" / f"atlas-{dataset}-n{cases}-s{seed}-{opts}"
    if not (out / ".complete").exists():
        write_phantom(out, layout=dataset, cases=cases, seed=seed, **ph)
        (out / ".complete").touch()
    return out


def ensure_prepared(cfg: Mapping[str, Any], dataset: str, data_root: str | Path = "data") -> Path:
    from ..data import PrepConfig, prepare_dataset
    from ..data.config import raw_source

    data_root = Path(data_root)
    raw = raw_folder(cfg, dataset, data_root)
    prep = PrepConfig.from_dict(dict(cfg.get("data", {}).get("prep") or {}))
    src = raw_source(cfg.get("data", {}), dataset)
    found = {"image_glob": src.images, "mask_glob": src.masks, "patient": src.patient} if src else {}
    return prepare_dataset(dataset, raw, data_root / "prepared", prep, **found)


def load_split(prepared: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """All slices of a split as tensors: images (N, C, H, W) float32, masks (N, 1, H, W) float32."""
    from ..data import SliceDataset

    ds = SliceDataset(prepared, split=split, augment=False)
    if len(ds) == 0:
        raise IchsegError(f"{prepared}: split {split!r} has no slices")
    items = [ds[i] for i in range(len(ds))]
    images = torch.stack([it["image"] for it in items]).float()
    masks = torch.stack([it["mask"] for it in items]).float()
    return images, masks, ds

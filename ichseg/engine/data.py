"""Where a run's data comes from: the real dataset folder named in the profile, or a phantom.

``ensure_prepared`` returns the prepared folder of one dataset for a run config, generating the
synthetic phantom (in that dataset's own layout, read back by the real ingestion path) when the
profile names no raw folder for it. Both steps are no-ops when their outputs exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..errors import IchsegError

# Each dataset's phantom is drawn from another seed, so test sets never repeat training volumes.
PHANTOM_SEED_OFFSET = {"instance2022": 0, "bhsd": 1000, "physionet": 2000}


def raw_folder(cfg: Mapping[str, Any], dataset: str, data_root: Path) -> Path:
    data = cfg.get("data", {})
    raw = (data.get("raw") or {}).get(dataset)
    if raw:
        path = Path(raw).expanduser()
        if not path.is_dir():
            raise IchsegError(f"{path}: raw folder for {dataset} not found (profile data.raw.{dataset})")
        return path
    from ..data.phantom import write_phantom

    ph = dict(data.get("phantom") or {})
    cases = int(ph.pop("cases", 16))
    seed = int(ph.pop("seed", 0)) + PHANTOM_SEED_OFFSET.get(dataset, 3000)
    out = data_root / "raw" / f"phantom-{dataset}-n{cases}-s{seed}"
    if not (out / ".complete").exists():
        write_phantom(out, layout=dataset, cases=cases, seed=seed, **ph)
        (out / ".complete").touch()
    return out


def ensure_prepared(cfg: Mapping[str, Any], dataset: str, data_root: str | Path = "data") -> Path:
    from ..data import PrepConfig, prepare_dataset

    data_root = Path(data_root)
    raw = raw_folder(cfg, dataset, data_root)
    prep = PrepConfig.from_dict(dict(cfg.get("data", {}).get("prep") or {}))
    return prepare_dataset(dataset, raw, data_root / "prepared", prep)

"""Why synthetic-trained models mark blood on a normal real skull base: intracranial HU by distance
from bone, on the real normal pydicom slice (a skull-base level) and on synthetic slices at the same
level (``skull_base_level``), plain, randomised, and randomised with the skull-base bone band
(``data.phantom.randomise.bone_band_hu``). Nothing is fitted to the real
slice: this only looks (it is the one normal real slice the transfer pilot scores false positives
on, so a generator change designed from this table is judged on the real whole head, never here).

Per band of distance from bone (HU > 300, the realism rule) inside the skull (the real slice's
segmented cranial cavity; the generator's intracranial map): the pixel count, the median HU and the
share of pixels at or above ``BLOODLIKE_HU``. Acute clot reads 60-90 HU and hyperacute blood 40-60
(``phantom.randomise.BLOOD_AGE``), grey matter at most ~45 (``kalender2011ct``): 55 HU and above is
read as blood far more often than as brain.

    .venv/bin/python bench/skull_base.py [--seeds 8]

Writes bench/measured/skull_base.json (the table the realism page renders).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ichseg.utils.atomic import atomic_write_text  # noqa: E402

BONE_HU, BLOODLIKE_HU = 300.0, 55.0
BANDS_MM = ((0.0, 1.5), (1.5, 3.0), (3.0, 5.0), (5.0, 8.0), (8.0, 15.0), (15.0, 60.0))
OUT = ROOT / "bench" / "measured" / "skull_base.json"
#: the bone band's amplitude range of the arm measured here (``randomise.bone_band_hu``; the transfer
#: pilot's third round trains with it), and the narrow band of its fourth round (amplitude, width in mm)
BAND_HU = (0.0, 40.0)
NARROW_BAND = {"bone_band_hu": [0.0, 60.0], "bone_band_mm": [1.0, 2.5]}


def band_table(hu: np.ndarray, inside: np.ndarray, pixel_mm: float) -> pd.DataFrame:
    """Per distance band: pixels inside the skull (not bone), their median HU and the share at or
    above ``BLOODLIKE_HU``; distance in mm from the nearest bone pixel."""
    hu = np.asarray(hu, np.float32)
    bone = hu > BONE_HU
    dist = ndimage.distance_transform_edt(~bone) * float(pixel_mm)
    soft = np.asarray(inside, bool) & ~bone
    rows = []
    for lo, hi in BANDS_MM:
        v = hu[soft & (dist > lo) & (dist <= hi)]
        rows.append({"band_mm": f"{lo:g}-{hi:g}", "pixels": int(v.size),
                     "median_hu": float(np.median(v)) if v.size else float("nan"),
                     "bloodlike_share": float(np.mean(v >= BLOODLIKE_HU)) if v.size else float("nan")})
    return pd.DataFrame(rows)


def pooled(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Several slices' band tables as one: pixels summed, median and share weighted by pixels."""
    t = pd.concat(tables, keys=range(len(tables)), names=["slice", "row"]).reset_index()
    out = []
    for band, g in t.groupby("band_mm", sort=False):
        w = g["pixels"].to_numpy(float)
        out.append({"band_mm": band, "pixels": int(w.sum()),
                    "median_hu": float(np.average(g["median_hu"], weights=w)) if w.sum() else float("nan"),
                    "bloodlike_share": float(np.average(g["bloodlike_share"], weights=w)) if w.sum() else float("nan")})
    return pd.DataFrame(out)


def skull_base_level(vol, cavity_mm2: float) -> int:
    """The synthetic slice (of a volume with tissue maps) at or below the level of its largest
    ventricles whose intracranial area is closest to ``cavity_mm2``, the real slice's cranial cavity:
    heads differ in size far less than slices between the skull base and the vertex do."""
    area = np.asarray(vol.tissue["brain"]).sum(axis=(0, 1)) * vol.spacing[0] * vol.spacing[1]
    ref = int(np.argmax(np.asarray(vol.tissue["ventricles"]).sum(axis=(0, 1))))
    return int(np.argmin(np.abs(area[: ref + 1] - cavity_mm2)))


def synthetic_tables(real, seeds: int, randomise=None) -> list[pd.DataFrame]:
    """One band table per synthetic patient (plain scanner layout of instance2022, lesion-free), at
    the skull-base level of ``real`` on the real slice's own grid size."""
    from ichseg.data.phantom import DOMAINS, make_volume

    cavity_mm2 = float(real.cavity.sum()) * real.pixel_mm ** 2
    tables = []
    for seed in range(seeds):
        vol = make_volume(np.random.default_rng([seed, 77]), DOMAINS["instance2022"], in_plane=real.hu.shape[0],
                          n_slices=30, positive=False, with_tissue=True, randomise=randomise)
        k = skull_base_level(vol, cavity_mm2)
        tables.append(band_table(vol.hu[:, :, k], vol.tissue["brain"][:, :, k], vol.spacing[0]))
    return tables


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8, help="synthetic patients per arm")
    args = ap.parse_args(argv)
    from ichseg.data.phantom.randomise import Randomise
    from ichseg.data.realct import available_slices

    real = next(rs for rs in available_slices() if rs.negative)
    band = Randomise.from_config({"bone_band_hu": list(BAND_HU)})
    tables = {f"real {real.name}": band_table(real.hu, real.cavity, real.pixel_mm),
              "synthetic, plain": pooled(synthetic_tables(real, args.seeds)),
              "synthetic, randomised": pooled(synthetic_tables(real, args.seeds, Randomise.from_config({}))),
              "synthetic, randomised + bone band": pooled(synthetic_tables(real, args.seeds, band)),
              "synthetic, randomised + narrow bone band": pooled(synthetic_tables(real, args.seeds,
                                                                                 Randomise.from_config(NARROW_BAND)))}
    record = {"bench": "skull_base", "seeds": args.seeds, "bone_band_hu": list(BAND_HU), "narrow_band": NARROW_BAND,
              "bone_hu": BONE_HU, "bloodlike_hu": BLOODLIKE_HU,
              "what": "intracranial HU by distance from bone at the real normal slice's level (skull base)",
              "tables": {k: json.loads(t.to_json(orient="records")) for k, t in tables.items()}}
    atomic_write_text(OUT, json.dumps(record, indent=1) + "\n")
    for k, t in tables.items():
        print(k)
        print(t.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

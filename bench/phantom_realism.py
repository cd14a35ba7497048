"""HU statistics per tissue class and noise power of the synthetic head CT, with and without
``data.phantom.randomise``, beside the two real pydicom head CT slices.

    .venv/bin/python bench/phantom_realism.py [--seeds 6] [--in-plane 512] [--out bench/measured/phantom_realism.json]

Real: the two axial slices of ``ichseg.data.realct`` (pydicom's skull-base slice and pydicom-data's
supratentorial slice), untouched. Synthetic: per seed one ``instance2022`` volume at 512 x 512 (its
cerebral slice with the most blood, ``realism.synthetic_slice``), once with the generator's own
draws and once with ``randomise: {}`` (every default on), seeds 0.. (the same patients). Every slice
is classified by the same rule (``realism.threshold_classes``). Per class: pixel count, mean and
standard deviation of HU, and ``hf_sd``, the standard deviation of HU less its 2-pixel Gaussian
smoothing (mostly noise). In parenchyma the noise power spectrum at 0.1, 0.2, 0.4 and 0.8
cycles/mm (``realism.noise_power``). Summary per condition: the mean over seeds and the spread
(standard deviation) between seeds of each number, the spread being what randomisation widens.
No model is trained or run; the real whole-head CT is not used here. Single-threaded.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLASSES = ("parenchyma", "csf", "bone")


def slice_stats(hu: np.ndarray, classes: dict, pixel_mm: float) -> dict:
    """Per class: pixels, mean, sd, hf_sd; parenchyma also its noise power spectrum."""
    from ichseg.data.realism import noise_power

    hu = np.asarray(hu, np.float32)
    hf = hu - ndimage.gaussian_filter(hu, 2.0)
    out = {"pixel_mm": round(float(pixel_mm), 4)}
    for name in CLASSES:
        m = classes[name]
        vals = hu[m]
        out[name] = {"pixels": int(m.sum()), "mean": round(float(vals.mean()), 2) if vals.size else None,
                     "sd": round(float(vals.std()), 2) if vals.size else None,
                     "hf_sd": round(float(hf[m].std()), 2) if vals.size else None}
    out["parenchyma"].update(noise_power(hu, classes["parenchyma"], pixel_mm))
    return out


def real() -> dict:
    from ichseg.data import realct
    from ichseg.data.realism import real_slice_classes

    return {rs.name: slice_stats(rs.hu, real_slice_classes(rs), rs.pixel_mm) for rs in realct.available_slices()}


def synthetic(seeds: int, in_plane: int, randomise) -> list[dict]:
    from ichseg.data.phantom.randomise import Randomise
    from ichseg.data.realism import synthetic_slice

    rows = []
    for s in range(seeds):
        hu, classes, vol = synthetic_slice(s, in_plane=in_plane, randomise=Randomise.from_config(randomise))
        rows.append({"seed": s, **slice_stats(hu, classes, vol.spacing[0])})
        print(f"seed {s} randomise={randomise is not None}: parenchyma {rows[-1]['parenchyma']['mean']} "
              f"sd {rows[-1]['parenchyma']['sd']} hf_sd {rows[-1]['parenchyma']['hf_sd']}", flush=True)
    return rows


def summarise(rows: list[dict]) -> dict:
    """Mean over seeds and spread between seeds of every per-class number and NPS value."""
    out = {}
    for name in CLASSES:
        for key in ("mean", "sd", "hf_sd"):
            v = np.array([r[name][key] for r in rows if r[name][key] is not None], float)
            out[f"{name}_{key}"] = {"mean": round(float(v.mean()), 2), "between_seed_sd": round(float(v.std()), 2)}
    have = [r["parenchyma"]["nps_hu2mm2"] for r in rows if "nps_hu2mm2" in r["parenchyma"]]
    for f in (have[0] if have else {}):
        v = np.array([h[f] for h in have], float)
        out[f"parenchyma_nps_{f}"] = {"mean": round(float(v.mean()), 3), "between_seed_sd": round(float(v.std()), 3),
                                      "seeds": len(v)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--in-plane", type=int, default=512)
    ap.add_argument("--out", default=str(ROOT / "bench" / "measured" / "phantom_realism.json"))
    args = ap.parse_args(argv)
    from ichseg.utils.atomic import atomic_write_json

    t0 = time.perf_counter()
    res = {"real": real()}
    for cond, opts in (("synthetic_off", None), ("synthetic_randomised", {})):
        rows = synthetic(args.seeds, args.in_plane, opts)
        res[cond] = {"per_seed": rows, "summary": summarise(rows)}
    res["machine"] = {"cpu": platform.processor() or platform.machine(), "threads": 1,
                      "seconds": round(time.perf_counter() - t0, 1), "seeds": args.seeds, "in_plane": args.in_plane}
    atomic_write_json(args.out, res)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())

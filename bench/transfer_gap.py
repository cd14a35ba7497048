"""Is the real slices' low Dice only harder lesions? The transfer pilot's real inserts are smaller
and fainter than the synthetic validation lesions; this compares each run's lesion-slice Dice on
them with its Dice on the *plain validation* lesions of like size and contrast, so what is left of
the gap is the real anatomy's. Reads the last round's evaluations (``bench/transfer_pilot.py``,
validation patients and the pydicom slices only: nothing here touches a test split or the real
whole head) and scores nothing anew.

A validation lesion slice matches a real insert when its lesion area is within a factor
``SIZE_FACTOR`` of the insert's and its contrast (lesion against its surroundings,
``lesion_contrast_hu``) within ``CONTRAST_HU``; a run's matched Dice is the mean over its real
inserts of their matches' mean (inserts with no match are counted and left out). Also per run: the
median of predicted over true lesion area, on the real inserts and on their matches (above 1: the
model marks more than the bleed). And per real image and subtype, each arm's runs pooled: Dice,
area ratio and the share of inserts with nothing marked on their slice.

    .venv/bin/python bench/transfer_gap.py [--out bench/out/transfer_pilot]

Writes bench/measured/transfer_gap.json (the table the realism page renders).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from transfer_pilot import ROUNDS, real_eval_name, run_dir_of  # noqa: E402

from ichseg.utils.atomic import atomic_write_text  # noqa: E402

OUT = ROOT / "bench" / "measured" / "transfer_gap.json"
SIZE_FACTOR, CONTRAST_HU = 1.5, 5.0


def lesion_slices(eval_dir: Path) -> pd.DataFrame:
    t = pd.read_csv(eval_dir / "slices.csv", keep_default_na=False, na_values=[""])
    pos = t[t.positive == 1].copy()
    pos["area_ratio"] = pos.pred_pixels / pos.gt_pixels
    return pos


def matches(real: pd.Series, val: pd.DataFrame) -> pd.DataFrame:
    """The validation lesion slices like one real insert in size and contrast."""
    size = val.gt_pixels.between(real.gt_pixels / SIZE_FACTOR, real.gt_pixels * SIZE_FACTOR)
    contrast = (val.lesion_contrast_hu - real.lesion_contrast_hu).abs() <= CONTRAST_HU
    return val[size & contrast]


def gap_row(real: pd.DataFrame, val: pd.DataFrame) -> dict:
    """One run: its Dice and area ratio on the real inserts, on all validation lesions and on the
    validation lesions matched to the inserts."""
    found = [matches(r, val) for _, r in real.iterrows()]
    matched = [m for m in found if len(m)]
    return {"real_dice": float(real.strict_dice.mean()), "validation_dice": float(val.strict_dice.mean()),
            "matched_validation_dice": float(np.mean([m.strict_dice.mean() for m in matched])) if matched else None,
            "real_area_ratio": float(real.area_ratio.median()),
            "matched_area_ratio": float(pd.concat(matched).area_ratio.median()) if matched else None,
            "inserts": len(real), "inserts_unmatched": len(found) - len(matched),
            "matches_per_insert_median": float(np.median([len(m) for m in found]))}


def lesion_profile(t: pd.DataFrame) -> dict:
    """Quartiles of lesion area (pixels at 128²) and contrast (HU) of a set of lesion slices."""
    q = lambda s: [round(float(v), 1) for v in s.quantile([0.25, 0.5, 0.75])]  # noqa: E731
    return {"area_px_quartiles": q(t.gt_pixels), "contrast_hu_quartiles": q(t.lesion_contrast_hu), "slices": len(t)}


def by_image(real: pd.DataFrame) -> list[dict]:
    """Per real image and subtype (an arm's runs pooled): lesion-slice Dice, median area ratio and
    the share of inserts with nothing marked on their slice."""
    return [{"image": image, "subtype": subtype, "dice": float(g.strict_dice.mean()),
             "area_ratio": float(g.area_ratio.median()), "missed": float((g.pred_pixels == 0).mean()), "inserts": len(g)}
            for (image, subtype), g in real.groupby(["patient", "subtype"])]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "transfer_pilot")
    ap.add_argument("--round", type=int, default=max(ROUNDS), choices=sorted(ROUNDS))
    args = ap.parse_args(argv)
    rnd = ROUNDS[args.round]
    runs, profiles, images = {}, {}, {}
    for arm in rnd.arms:
        pooled = []
        for seed in rnd.seeds:
            ev = run_dir_of(args.out, arm, seed) / "eval"
            real, val = lesion_slices(ev / real_eval_name(rnd)), lesion_slices(ev / "val_plain")
            runs[f"{arm}, seed {seed}"] = {"arm": arm, "seed": seed, **gap_row(real, val)}
            profiles.setdefault("real inserts", lesion_profile(real))
            profiles.setdefault("plain validation", lesion_profile(val))
            pooled.append(real)
        images[arm] = by_image(pd.concat(pooled))
    record = {"bench": "transfer_gap", "round": args.round, "size_factor": SIZE_FACTOR, "contrast_hu": CONTRAST_HU,
              "what": "lesion-slice Dice on the real pydicom inserts against plain-validation lesions of like size "
                      "and contrast, per run of the transfer pilot's round",
              "lesions": profiles, "runs": runs, "by_image": images}
    atomic_write_text(OUT, json.dumps(record, indent=1) + "\n")
    print(pd.DataFrame(runs).T.drop(columns=["arm", "seed"]).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

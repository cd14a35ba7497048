"""Measurement: a trained checkpoint on the real whole-head CT (``ichseg.data.realvolume``), per
subtype and size. Test data only: nothing is fitted or chosen on it.

The cases are the untouched head (every predicted voxel a false positive) and its copies with one
inserted hemorrhage each (every subtype, 0.3 mL to > 30 mL). Each goes through exactly what
``ichseg predict`` does (the checkpoint's own preparation, its default sampling settings, the
probability mapped back onto the scan's grid, threshold 0.5), and is scored on that grid:

- lesion-slice Dice: per axial slice holding inserted blood, Dice of the predicted mask (the
  study's strict per-slice Dice, ``ichseg.metrics.strict.overlap_scores``), averaged over slices;
- detected: the prediction overlaps the inserted lesion in 3D;
- volume error: (predicted mL - inserted mL) / inserted mL, everything predicted in the copy's slab;
- false positive mL on the clean head.

All cases come from one head, so they are one cluster: no interval here holds test-set variation.

    .venv/bin/python bench/real_anatomy.py [--checkpoint results/cpu/model/full.pt] [--threads 1]
        [--steps K --ensemble N]   # other sampling than predict's default
        [--keep-outside-skull | --also-kept]   # predict's inside-the-skull rule off, or also scored without it
        [--in-domain data/prepared/instance2022/<hash>]

``--in-domain``: the same checkpoint with the same sampling on the test split of a prepared synthetic
cohort (the one it was trained on), recorded beside the real-anatomy numbers (``in_domain``): what
the real head loses against the data the model knows.

Prints a table and writes bench/out/real_anatomy.json (``--out bench/measured/real_anatomy.json``
replaces the record the realism page renders).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZE_LABELS = ("0.3-1 mL", "1-10 mL", "10-30 mL", "> 30 mL")


def _volume(hu: np.ndarray, affine: np.ndarray, name: str):
    """An in-memory RAS+ ``Volume`` (what ``load_volume`` returns for a file written this way)."""
    from ichseg.data import Volume

    ornt = np.array([[0, 1], [1, 1], [2, 1]], float)
    spacing = tuple(float(abs(affine[i, i])) for i in range(3))
    return Volume(Path(name), hu.astype(np.float32), affine, affine, tuple(hu.shape), ornt, spacing)


def predict_probability(pr, vol) -> np.ndarray:
    """``ichseg predict``'s probability on the scan's own grid (without writing files): the
    ``Predictor``'s own preparation, sampling and mapping back, kept inside the skull unless it was
    loaded with ``inside_skull=False``."""
    from ichseg.engine.predict import _on_scan_grid, inside_skull_of

    prob, unc, _ = pr.segment(pr.slices(vol, vol.path), vol.path.name)
    keep = inside_skull_of(vol) if pr.inside_skull else None
    return _on_scan_grid(vol, prob, unc, None, pr.threshold, keep)["probability"].astype(np.float32)


def score_case(pred: np.ndarray, gt: np.ndarray, voxel_ml: float) -> dict:
    """Scores of one case on the scan's grid (``pred``, ``gt`` boolean, axial last)."""
    from ichseg.metrics.strict import overlap_scores

    pred_ml = float(pred.sum() * voxel_ml)
    if not gt.any():
        return {"fp_ml": pred_ml, "pred_ml": pred_ml}
    dice, _ = overlap_scores(pred, gt, axis=(0, 1))
    pos = gt.any(axis=(0, 1))
    gt_ml = float(gt.sum() * voxel_ml)
    return {"slice_dice": [float(d) for d in dice[pos]], "lesion_slice_dice": float(np.mean(dice[pos])),
            "detected": bool((pred & gt).any()), "gt_ml": gt_ml, "pred_ml": pred_ml,
            "volume_error": (pred_ml - gt_ml) / gt_ml}


def measure(checkpoint: str | Path, seed: int = 0, threshold: float = 0.5, device: str = "cpu",
            overrides: dict | None = None, inside_skull: bool = True) -> dict:
    """Every case of the real whole-head set scored with ``checkpoint`` (sampling: predict's default,
    ``overrides`` replacing settings); returns per-case rows and the summary per subtype and size class."""
    from ichseg.data import invesalius, realvolume
    from ichseg.engine.predict import Predictor

    # the model, its configuration and the sampling settings exactly as `ichseg predict` loads them
    pr = Predictor.load(checkpoint, overrides or {}, device=device, progress=False, inside_skull=inside_skull)
    head = invesalius.read_cranium()
    clean, aff = realvolume.clean_volume(head)
    cases = [("clean", "", clean, np.zeros(clean.shape, bool), aff)]
    cases += [(f"{c.subtype}-{c.ml}", c.subtype, c.hu, c.mask, c.affine) for c in realvolume.lesion_copies(seed, head)]
    rows = []
    for name, sub, hu, gt, affine in cases:
        t0 = time.perf_counter()
        prob = predict_probability(pr, _volume(hu, affine, name))
        voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
        row = {"case": name, "subtype": sub, "slices": int(hu.shape[2]),
               **score_case(prob >= threshold, gt, voxel_ml), "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "slice_dice"}), flush=True)
    return {"checkpoint": str(checkpoint), "evaluate": pr.ecfg.__dict__, "threshold": threshold, "seed": seed,
            "inside_skull": inside_skull,
            "cases": rows, "summary": summarise(rows)}


def in_domain(checkpoint: str | Path, prepared: Path, ecfg, out_dir: Path) -> dict:
    """Lesion-slice Dice of ``checkpoint`` on the test split of ``prepared`` with the sampling ``ecfg``."""
    from ichseg.engine.evaluate import evaluate_checkpoint

    m = evaluate_checkpoint(checkpoint, prepared, out_dir, ecfg, split="test", device="cpu", progress=False)
    return {"prepared": str(prepared.relative_to(ROOT) if prepared.is_relative_to(ROOT) else prepared), "split": "test",
            "lesion_slice_dice": float(m["strict"]["positive_slice_dice"]), "lesion_slices": int(m["strict"]["n_positive_slices"]),
            "volume_dice": m["strict"].get("volume_dice")}


def _size_class(ml: float) -> str:
    from ichseg.data.realvolume import SIZE_BINS_ML

    return next((lab for lab, (lo, hi) in zip(SIZE_LABELS, SIZE_BINS_ML) if lo <= ml < hi), "other")


def summarise(rows: list[dict]) -> dict:
    """Overall, per subtype and per size class: lesion-slice Dice (over all lesion slices),
    detection rate, mean absolute and mean signed volume error; false-positive mL on the clean head."""
    les = [r for r in rows if r["subtype"]]

    def block(rs):
        dice = [d for r in rs for d in r["slice_dice"]]
        return {"cases": len(rs), "lesion_slices": len(dice), "lesion_slice_dice": float(np.mean(dice)) if dice else None,
                "detected": float(np.mean([r["detected"] for r in rs])) if rs else None,
                "volume_error_mean": float(np.mean([r["volume_error"] for r in rs])) if rs else None,
                "volume_error_abs_mean": float(np.mean([abs(r["volume_error"]) for r in rs])) if rs else None}

    out = {"overall": block(les), "clean_head_fp_ml": [r["fp_ml"] for r in rows if not r["subtype"]]}
    out["per_subtype"] = {s: block([r for r in les if r["subtype"] == s]) for s in sorted({r["subtype"] for r in les})}
    out["per_size"] = {k: block([r for r in les if _size_class(r["gt_ml"]) == k]) for k in SIZE_LABELS}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=str(ROOT / "results" / "cpu" / "model" / "full.pt"))
    ap.add_argument("--seed", type=int, default=0, help="seed of the lesion copies")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=None, help="sampling steps (default: predict's)")
    ap.add_argument("--ensemble", type=int, default=None, help="samples a slice (default: predict's)")
    ap.add_argument("--in-domain", type=Path, default=None, metavar="PREPARED",
                    help="also score the test split of this prepared synthetic cohort with the same sampling")
    ap.add_argument("--keep-outside-skull", action="store_true",
                    help="as `ichseg predict --keep-outside-skull`: score everything the model marks")
    ap.add_argument("--also-kept", action="store_true",
                    help="also score with everything kept and record that summary beside (``kept_outside_skull``)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "real_anatomy.json"))
    args = ap.parse_args(argv)
    import platform

    import torch

    from ichseg.engine.provenance import environment

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    sampling = {"steps": args.steps, "ensemble": args.ensemble}
    res = measure(args.checkpoint, seed=args.seed, overrides=sampling, inside_skull=not args.keep_outside_skull)
    if args.also_kept and not args.keep_outside_skull:
        res["kept_outside_skull"] = measure(args.checkpoint, seed=args.seed, overrides=sampling, inside_skull=False)["summary"]
    ckpt = Path(args.checkpoint).resolve()
    res = {"bench": "real_anatomy",
           "what": f"{ckpt.relative_to(ROOT) if ckpt.is_relative_to(ROOT) else ckpt} on the real whole-head CT "
                   "(InVesalius Cranium.inv3) with inserted hemorrhages; test only, one cluster (one head): no interval",
           "environment": {**environment(torch.device("cpu")), "machine": "2-core shared x86_64 CPU",
                           "cpu": platform.processor() or platform.machine(), "threads": args.threads,
                           "seconds": round(time.perf_counter() - t0, 1)},
           **res}
    if args.in_domain:
        from ichseg.engine.inference import eval_settings

        res["in_domain"] = in_domain(args.checkpoint, args.in_domain.resolve(), eval_settings(res["evaluate"]),
                                     ROOT / "bench" / "out" / "real_anatomy_in_domain")
        print(f"in domain ({res['in_domain']['prepared']}, test): lesion-slice Dice {res['in_domain']['lesion_slice_dice']:.3f}")
    s = res["summary"]
    print(f"clean head: {s['clean_head_fp_ml']} mL predicted")
    for name, b in [("overall", s["overall"]), *s["per_subtype"].items(), *s["per_size"].items()]:
        if b["cases"]:
            print(f"{name:18s} n={b['cases']:2d}  lesion-slice Dice {b['lesion_slice_dice']:.3f}  detected {b['detected']:.2f}  "
                  f"volume error {b['volume_error_mean']:+.2f} (|.| {b['volume_error_abs_mean']:.2f})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

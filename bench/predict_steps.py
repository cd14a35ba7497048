"""Quality against sampling cost for ``ichseg predict``'s default, on validation patients only.

    .venv/bin/python bench/predict_steps.py --prepared data/prepared/instance2022/<hash> \
        [--checkpoint results/cpu/model/full.pt] [--out bench/measured/predict_steps.json]

The committed model was evaluated with DDIM, 5 steps, 3 samples (15 denoiser passes a slice); on
this 2-core CPU that is ~0.27 s of CPU a 128² slice, 93 % of it in the denoiser. Fewer passes are
faster in proportion; whether they lose anything is measured here on the *validation* split of the
prepared cohort (every lesion slice, and as many lesion-free slices, every k-th in order), never
the test split. Each setting sees the same slices and the same seed.

Rule, fixed before the run: the default is the setting with the fewest denoiser passes
(steps x samples) of at least ``MIN_ENSEMBLE`` samples (the volume range and the uncertainty map are
the spread of the samples) whose validation lesion-slice Dice (at 0.5) is at least the reference's
minus ``TOLERANCE`` and whose share of lesion-free slices left clean is at least the reference's
minus ``TOLERANCE`` (ties: the higher Dice). ``--rechoose`` applies the rule to a written record
again without sampling. ``--apply`` writes the chosen setting into the checkpoint
(``ichseg.engine.weights.set_predict_settings``), where ``ichseg predict`` takes it as its default. The record keeps every setting with its patient-clustered
95 % interval of the difference from the reference, and the CPU seconds a slice (one thread).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ichseg.engine.data import load_split  # noqa: E402
from ichseg.engine.evaluate import load_trained_model  # noqa: E402
from ichseg.engine.devices import inference_amp  # noqa: E402
from ichseg.engine.inference import eval_settings, segment  # noqa: E402
from ichseg.engine.provenance import environment  # noqa: E402
from ichseg.utils import atomic_write_json  # noqa: E402
from ichseg.metrics import slice_scores  # noqa: E402
from ichseg.report.stats import two_level_bootstrap  # noqa: E402

REFERENCE = (5, 3)
GRID = [(5, 3), (5, 2), (4, 2), (3, 3), (3, 2), (2, 3), (2, 2), (5, 1), (3, 1)]
TOLERANCE = 0.01
MIN_ENSEMBLE = 2
RULE = (f"fewest passes with >= {MIN_ENSEMBLE} samples whose lesion-slice Dice and empty-clean share are "
        f">= the reference's - {TOLERANCE}")


def choose(rows: list[dict]) -> dict:
    """The rule above over the measured rows (the first is the reference)."""
    ref = rows[0]
    ok = [r for r in rows if r["ensemble"] >= MIN_ENSEMBLE
          and r["lesion_slice_dice"] >= ref["lesion_slice_dice"] - TOLERANCE
          and r["empty_clean_share"] >= ref["empty_clean_share"] - TOLERANCE]
    return min(ok, key=lambda r: (r["passes"], -r["lesion_slice_dice"]))


def validation_slices(prepared: Path):
    """Every validation lesion slice and as many lesion-free ones (evenly spaced), with their patients."""
    images, masks, ds = load_split(prepared, "val")
    patients = np.asarray(ds.table["patient"].astype(str))
    pos = masks.flatten(1).amax(1) > 0.5
    neg_idx = torch.nonzero(~pos).flatten()
    keep_neg = neg_idx[torch.linspace(0, len(neg_idx) - 1, int(pos.sum())).round().long()]
    idx = torch.cat([torch.nonzero(pos).flatten(), keep_neg])
    return images[idx], masks[idx], patients[idx.numpy()]


def score(model, diffusion, cfg, images, masks, steps: int, ensemble: int, threshold: float) -> dict:
    gen = torch.Generator().manual_seed(0)
    c0 = time.process_time()
    prob, _ = segment(model, diffusion, images, sampler="ddim", steps=steps, ensemble=ensemble,
                             batch_slices=8, generator=gen, device="cpu",
                             amp=inference_amp(torch.device("cpu"), cfg["train"].get("amp", "none")))
    cpu_s = (time.process_time() - c0) / len(images)
    pred = prob.numpy().reshape(masks.shape[0], *masks.shape[-2:]) >= threshold
    per = slice_scores(pred, masks.numpy()[:, 0] >= 0.5)
    pos = per["gt_positive"]
    clean = ~pred.reshape(len(images), -1).any(1)
    return {"steps": steps, "ensemble": ensemble, "passes": steps * ensemble, "cpu_s_per_slice": round(cpu_s, 4),
            "lesion_slice_dice": float(per["dice"][pos].mean()), "empty_clean_share": float(clean[~pos].mean()),
            "_dice": per["dice"], "_clean": clean, "_pos": pos}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prepared", type=Path, required=True, help="a prepared cohort; only its val split is read")
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "results" / "cpu" / "model" / "full.pt")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "measured" / "predict_steps.json")
    ap.add_argument("--rechoose", action="store_true", help="apply the rule to --out's rows again; no sampling")
    ap.add_argument("--apply", action="store_true",
                    help="write the chosen setting into --checkpoint (an exported model) as predict's default")
    args = ap.parse_args(argv)
    if args.rechoose or args.apply:
        return rechoose(args)
    torch.set_num_threads(1)
    model, diffusion, cfg, _ = load_trained_model(args.checkpoint, torch.device("cpu"))
    evaluated = eval_settings(cfg)
    assert (evaluated.steps, evaluated.ensemble) == REFERENCE, (evaluated.steps, evaluated.ensemble)
    images, masks, patients = validation_slices(args.prepared)
    rows = []
    for steps, ens in GRID:
        r = score(model, diffusion, cfg, images, masks, steps, ens, evaluated.threshold)
        rows.append(r)
        print(f"ddim {steps} steps x {ens}: {r['cpu_s_per_slice']:.3f} s/slice, lesion-slice Dice "
              f"{r['lesion_slice_dice']:.3f}, empty clean {r['empty_clean_share']:.3f}", flush=True)
    ref = rows[0]
    pos = ref["_pos"]
    for r in rows:
        for key, mask in (("_dice", pos), ("_clean", ~pos)):
            b = two_level_bootstrap(r[key][mask][None].astype(float), ref[key][mask][None].astype(float),
                                    patients[mask], seed=0)
            name = "lesion_slice_dice" if key == "_dice" else "empty_clean_share"
            r[f"{name}_minus_reference_ci95"] = [round(b.low, 4), round(b.high, 4)]
    chosen = choose(rows)
    for r in rows:
        for k in ("_dice", "_clean", "_pos"):
            r.pop(k)
    rec = {"bench": "predict_steps", "checkpoint": str(args.checkpoint.relative_to(ROOT) if args.checkpoint.is_relative_to(ROOT) else args.checkpoint),
           "split": "val", "prepared": str(args.prepared), "slices": len(images), "lesion_slices": int(pos.sum()),
           "patients": int(len(set(patients))), "sampler": "ddim", "reference": list(REFERENCE),
           "rule": RULE,
           "chosen": {"steps": chosen["steps"], "ensemble": chosen["ensemble"]}, "rows": rows,
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "environment": environment(torch.device("cpu"))}
    atomic_write_json(args.out, rec)
    print(f"chosen: ddim {chosen['steps']} steps x {chosen['ensemble']}; wrote {args.out}")
    return 0


def rechoose(args) -> int:
    from ichseg.engine.weights import set_predict_settings

    rec = json.loads(args.out.read_text())
    if args.rechoose:
        chosen = choose(rec["rows"])
        rec.update(rule=RULE, chosen={"steps": chosen["steps"], "ensemble": chosen["ensemble"]})
        atomic_write_json(args.out, rec)
    print(f"chosen: ddim {rec['chosen']['steps']} steps x {rec['chosen']['ensemble']} ({rec['rule']})")
    if args.apply:
        out = args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out
        set_predict_settings(args.checkpoint, {"sampler": rec["sampler"], **rec["chosen"]},
                             f"{out.as_posix()}: {rec['rule']}, on {rec['patients']} validation patients")
        print(f"wrote the setting into {args.checkpoint}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

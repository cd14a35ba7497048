"""Sampling cost vs quality: time per slice and Dice for DDPM (all T steps) vs DDIM and
DPM-Solver++ at K ∈ {5, 10, 20, 50}, ensemble 5, for one trained model.

    .venv/bin/python bench/sampling.py --checkpoint results/smoke/runs/full-s0/checkpoints/best.pt \
        --prepared data/prepared/instance2022/<hash> [--slices 8] [--ddpm-slices 2] [--device cpu|cuda]

Every sampler sees the same test slices (the first ``--ddpm-slices`` of them also by DDPM, whose
row compares on those only). Prints a table and writes bench/out/sampling.json, which the book's
results page plots when present.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ichseg.engine.evaluate import load_trained_model
from ichseg.engine.inference import segment_slices
from ichseg.engine.provenance import environment
from ichseg.engine.data import load_split
from ichseg.engine.devices import resolve_device
from ichseg.metrics import paper_slice_scores, strict_protocol
from ichseg.utils import method_of


def measure(model, diffusion, images, masks, sampler, steps, ensemble, device) -> dict:
    gen = torch.Generator(device=device).manual_seed(0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    prob, _ = segment_slices(model, diffusion, images, sampler=sampler, steps=steps, ensemble=ensemble,
                             batch_slices=len(images), generator=gen, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    sec = (time.perf_counter() - t0) / len(images)
    p, g = prob.numpy(), masks[:, 0].numpy()
    return {"sampler": sampler, "steps": steps or diffusion.num_timesteps, "slices": len(images),
            "s_per_slice": sec, "paper_dice": float(paper_slice_scores(p, g)["dice"].mean()),
            "positive_slice_dice": strict_protocol(p, g)["positive_slice_dice"], "prob": p}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--prepared", type=Path, required=True)
    ap.add_argument("--slices", type=int, default=8, help="test slices for the fast samplers (positives first)")
    ap.add_argument("--ddpm-slices", type=int, default=2, help="of those, how many also run the 1000-step DDPM")
    ap.add_argument("--ensemble", type=int, default=5)
    ap.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 50])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "sampling.json")
    args = ap.parse_args()

    dev = resolve_device(args.device)
    model, diffusion, cfg, _ = load_trained_model(args.checkpoint, dev)
    images, masks, _ = load_split(args.prepared, "test")
    area = masks.flatten(1).sum(1)
    order = torch.argsort(-area, stable=True)[: args.slices]  # lesion slices first: Dice is informative there
    images, masks = images[order], masks[order]

    rows = []
    if args.ddpm_slices > 0:
        rows.append(measure(model, diffusion, images[: args.ddpm_slices], masks[: args.ddpm_slices], "ddpm", None,
                            args.ensemble, dev))
    for sampler in ("ddim", "dpm-solver++"):
        for k in args.steps:
            rows.append(measure(model, diffusion, images, masks, sampler, k, args.ensemble, dev))
    ref = rows[0] if args.ddpm_slices > 0 else None
    for r in rows:
        if ref is not None:  # Dice on the DDPM slices, to compare like with like
            sub = r["prob"][: args.ddpm_slices]
            r["paper_dice_on_ddpm_slices"] = float(paper_slice_scores(sub, masks[: args.ddpm_slices, 0].numpy())["dice"].mean())
            r["dice_gap_vs_ddpm"] = r["paper_dice_on_ddpm_slices"] - ref["paper_dice"]
            r["speedup_vs_ddpm"] = ref["s_per_slice"] / r["s_per_slice"]
        del r["prob"]

    print(f"Sampling: variant {method_of(cfg)} at {cfg['model']['image_size']}², ensemble {args.ensemble}, device {dev}")
    print(f"{'sampler':<13}{'K':>6}{'slices':>7}{'s/slice':>10}{'Dice':>8}{'posDice':>9}{'ΔDice vs DDPM':>15}{'speed-up':>10}")
    for r in rows:
        gap = f"{100 * r['dice_gap_vs_ddpm']:+.2f} pt" if "dice_gap_vs_ddpm" in r else "-"
        sp = f"{r['speedup_vs_ddpm']:.0f}x" if "speedup_vs_ddpm" in r else "-"
        print(f"{r['sampler']:<13}{r['steps']:>6}{r['slices']:>7}{r['s_per_slice']:>10.3f}{r['paper_dice']:>8.3f}"
              f"{r['positive_slice_dice']:>9.3f}{gap:>15}{sp:>10}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"bench": "sampling", "checkpoint": str(args.checkpoint), "variant": method_of(cfg),
                                    "image_size": cfg["model"]["image_size"], "ensemble": args.ensemble,
                                    "environment": environment(dev), "rows": rows}, indent=2, default=float) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

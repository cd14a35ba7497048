"""Scheduler overhead: milliseconds per sampler step at 256×256, batch 5 (one slice, ensemble 5).

The ε-model is trivial (one multiply), so the time is the sampler's own arithmetic. For scale, the
same table shows one forward pass of a single 3×3 convolution with 64 output channels, a tiny
fraction of any real diffusion U-Net. Prints a table and writes bench/out/diffusion.json.

    .venv/bin/python bench/diffusion.py [--size 256] [--ensemble 5] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from ichseg.diffusion import DiffusionConfig, GaussianDiffusion, sample


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--ensemble", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "diffusion.json")
    args = ap.parse_args()

    dev = torch.device(args.device)
    d = GaussianDiffusion(DiffusionConfig()).to(dev)
    cond = torch.zeros(1, 1, args.size, args.size, device=dev)
    trivial = lambda x, t, c: 0.1 * x  # noqa: E731
    runs = [("ddpm", 1000), ("ddim", 50), ("ddim", 20), ("dpm-solver++", 20), ("dpm-solver++", 10)]
    rows = []
    for sampler, steps in runs:
        gen = torch.Generator(device=dev).manual_seed(0)
        total = timed(
            lambda: sample(d, trivial, cond, sampler=sampler, steps=None if sampler == "ddpm" else steps,
                           ensemble=args.ensemble, generator=gen),
            repeats=1 if steps >= 1000 else 5,
        )
        rows.append({"sampler": sampler, "steps": steps, "ms_per_step": 1000 * total / steps, "ms_total": 1000 * total})

    conv = torch.nn.Conv2d(2, 64, 3, padding=1).to(dev)
    x = torch.zeros(args.ensemble, 2, args.size, args.size, device=dev)
    with torch.no_grad():
        conv_ms = 1000 * timed(lambda: conv(x), repeats=20)

    print(f"Sampler overhead at {args.size}x{args.size}, batch {args.ensemble}, device {dev} (trivial eps-model)")
    print(f"{'sampler':<14}{'steps':>6}{'ms/step':>10}{'ms total':>11}")
    for r in rows:
        print(f"{r['sampler']:<14}{r['steps']:>6}{r['ms_per_step']:>10.3f}{r['ms_total']:>11.1f}")
    print(f"reference: one 3x3 conv (2->64 ch) forward on the same batch: {conv_ms:.3f} ms")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "bench": "diffusion_sampler_overhead", "size": args.size, "batch": args.ensemble, "device": str(dev),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
        "rows": rows, "reference_conv_ms": conv_ms,
    }, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

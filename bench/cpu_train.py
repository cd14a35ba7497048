"""CPU training speed options, timed interleaved in one process (``bench/_timing.py``): the full
model's optimiser step (forward, Eq. 4 loss, backward, AdamW) at the ``smoke`` size (64², base 8)
and a ``cpu`` size (128², base 16), under each candidate:

- ``fp32 1 thread``   the reference: one BLAS/OpenMP thread (what each of ``ichseg study --jobs N``
                      stages gets on an N-core machine);
- ``fp32 N threads``  all cores in one process (the old serial study);
- ``channels_last``   NHWC memory format (TrainConfig.channels_last);
- ``bf16 autocast``   CPU bf16 autocast (TrainConfig.amp = bf16 is CUDA-only today);
- ``compile``         torch.compile, inductor on the CPU (TrainConfig.compile; ``--compile``: its
                      compilation takes minutes here, reported separately).

    .venv/bin/python bench/cpu_train.py [--sizes smoke cpu] [--rounds 5] [--batch 8] [--compile]

Prints a table of seconds per step (median), the ratio to the reference and images/s per core,
and writes bench/out/cpu_train.json. Ratios, not absolute times, are what survives a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _setup import build, model_config, n_params, train_step  # noqa: E402
from _timing import interleave  # noqa: E402

from ichseg.engine.devices import cpu_has_bf16  # noqa: E402
from ichseg.engine.provenance import environment  # noqa: E402

SIZES = {"smoke": (64, 8), "cpu": (128, 16)}


def measure(size_name: str, batch: int, rounds: int, with_compile: bool, skip=()) -> list[dict]:
    size, base = SIZES[size_name]
    cfg = model_config("smoke", "full", size, base)
    dev = torch.device("cpu")
    cores = os.cpu_count() or 1
    options = {"fp32 1 thread": {}, f"fp32 {cores} threads": {}, "channels_last": {"channels_last": True},
               "bf16 autocast": {"bf16": True}}
    if with_compile:
        options["compile"] = {"compile": True}
    options = {k: v for k, v in options.items() if not any(k.startswith(s) for s in skip)}
    steps, params, compile_s = {}, None, None
    for name, kw in options.items():
        torch.manual_seed(0)
        model, diffusion = build(cfg, dev)
        params = n_params(model)
        steps[name] = train_step(model, diffusion, batch, dev, **kw)
    if with_compile:
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        steps["compile"]()  # compilation (forward and backward graphs)
        compile_s = time.perf_counter() - t0
    setup = {k: (lambda: torch.set_num_threads(1)) for k in steps}
    setup[f"fp32 {cores} threads"] = lambda: torch.set_num_threads(cores)
    res = interleave(steps, rounds=rounds, warmup=1, setup=setup)
    torch.set_num_threads(1)
    ref = res["fp32 1 thread"]["median"]
    rows = []
    for name, r in res.items():
        threads = cores if name.startswith(f"fp32 {cores}") else 1
        rows.append({"size": size_name, "image_size": size, "base_channels": base, "params_M": params / 1e6,
                     "batch": batch, "option": name, "threads": threads, "s_per_step": r["median"],
                     "speedup_vs_1_thread": ref / r["median"], "images_per_s": batch / r["median"],
                     "images_per_s_per_core": batch / r["median"] / threads, "all_s": r["all"],
                     "compile_s": compile_s if name == "compile" else None})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (minutes of compilation)")
    ap.add_argument("--skip", nargs="*", default=[], help="leave out options whose name starts so (e.g. bf16)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "cpu_train.json")
    args = ap.parse_args()
    rows = []
    for s in args.sizes:
        rows += measure(s, args.batch, args.rounds, args.compile, args.skip)
    print(f"CPU training options, full model, batch {args.batch}, medians of {args.rounds} interleaved rounds")
    print(f"{'size':<7}{'option':<18}{'threads':>8}{'s/step':>9}{'vs 1 thread':>12}{'img/s':>8}{'img/s/core':>11}")
    for r in rows:
        print(f"{r['size']:<7}{r['option']:<18}{r['threads']:>8}{r['s_per_step']:>9.3f}{r['speedup_vs_1_thread']:>11.2f}x"
              f"{r['images_per_s']:>8.2f}{r['images_per_s_per_core']:>11.2f}"
              + (f"  (compilation {r['compile_s']:.0f} s)" if r["compile_s"] else ""))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"bench": "cpu_train", "environment": environment(torch.device("cpu")),
                                    "cpu_has_bf16": cpu_has_bf16(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

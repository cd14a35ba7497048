"""Where large CPU tensors come from: glibc's default (blocks above the mmap threshold mapped and
unmapped at every allocation) against ``ichseg.engine.devices.reuse_large_allocations`` (served
from the heap and kept for reuse), on the full model at the ``smoke`` (64²) and ``cpu`` (128²)
sizes: one optimiser step at batch 8, and one sampling batch of the evaluation (``--slices``
slices x 3 samples, DDIM 5 steps, the condition encoded once).

An allocator setting holds for a whole process, so each measurement is a fresh one-thread process,
the two settings alternated round by round (ratios survive a shared machine). Each process reports
wall, user and system seconds of its timed calls; the system share is the kernel zero-filling
freshly mapped pages.

    .venv/bin/python bench/cpu_allocator.py [--rounds 3] [--sizes smoke cpu] [--slices 24]

Prints the table and writes bench/out/cpu_allocator.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ichseg.utils import atomic_write_json

SIZES = {"smoke": (64, 8), "cpu": (128, 8)}
SETTINGS = ("glibc default", "heap (reuse_large_allocations)")


def child(size_name: str, setting: str, task: str, slices: int, calls: int) -> dict:
    """One process's measurement (run as ``--child``)."""
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from _setup import build, model_config, train_step

    from ichseg.engine.devices import reuse_large_allocations
    from ichseg.engine.inference import segment

    torch.set_num_threads(1)
    applied = reuse_large_allocations() if setting == SETTINGS[1] else False
    size, base = SIZES[size_name]
    dev = torch.device("cpu")
    torch.manual_seed(0)
    model, diffusion = build(model_config("cpu", "full", size, base), dev)
    if task == "train":
        fn = train_step(model, diffusion, 8, dev)
    else:
        model.eval()
        images = torch.rand(slices, 1, size, size)

        def fn():
            segment(model, diffusion, images, sampler="ddim", steps=5, ensemble=3, batch_slices=slices,
                    generator=torch.Generator().manual_seed(0), device=dev)
    fn()  # warm-up: first-touch of the weights, oneDNN primitive caches
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(calls):
        fn()
    r1, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t0
    return {"wall_s": wall / calls, "user_s": (r1.ru_utime - r0.ru_utime) / calls,
            "sys_s": (r1.ru_stime - r0.ru_stime) / calls, "applied": applied}


def run_child(*args) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--child", *map(str, args)], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--slices", type=int, default=24, help="slices in the sampling batch (x 3 samples)")
    ap.add_argument("--calls", type=int, default=3, help="timed calls per process")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "cpu_allocator.json")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        size, setting, task, slices, calls = a.child
        print(json.dumps(child(size, setting, task, int(slices), int(calls))))
        return
    rows = []
    for size in a.sizes:
        for task in ("train", "sample"):
            got = {s: [] for s in SETTINGS}
            for _ in range(a.rounds):
                for s in SETTINGS:
                    got[s].append(run_child(size, s, task, a.slices, a.calls))
            base = statistics.median(r["wall_s"] for r in got[SETTINGS[0]])
            for s in SETTINGS:
                med = {k: statistics.median(r[k] for r in got[s]) for k in ("wall_s", "user_s", "sys_s")}
                rows.append({"size": size, "task": task, "setting": s, **med, "speedup": base / med["wall_s"],
                             "applied": all(r["applied"] for r in got[s]) if s == SETTINGS[1] else None})
    what = {"train": "optimiser step, batch 8", "sample": f"sampling batch, {a.slices} slices x 3"}
    print(f"{'size':6} {'task':34} {'setting':32} {'wall s':>7} {'user s':>7} {'sys s':>7} {'speed-up':>8}")
    for r in rows:
        print(f"{r['size']:6} {what[r['task']]:34} {r['setting']:32} {r['wall_s']:7.2f} {r['user_s']:7.2f} "
              f"{r['sys_s']:7.2f} {r['speedup']:7.2f}x")
    import torch  # the parent times nothing: its allocator setting does not matter

    from ichseg.engine.provenance import environment

    a.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(a.out, {"bench": "cpu_allocator", "environment": environment(torch.device("cpu")), "rows": rows,
                              "rounds": a.rounds, "calls": a.calls, "sizes": a.sizes, "slices": a.slices})


if __name__ == "__main__":
    main()

"""What ``ichseg study --jobs 2`` buys on real work: the same training steps (full model, smoke
size) run as two 1-thread processes at once (two stages of ``--jobs 2``) against one process with
all cores doing them one after another (the serial study, each kernel with every core), alternated
A, B, A, B, ... and summarised by the median wall time.

    .venv/bin/python bench/study_jobs.py [--steps 3] [--rounds 2] [--size 64 --base 8]

Prints the table and writes bench/out/study_jobs.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKER = """
import sys, torch
sys.path.insert(0, {bench!r})
from _setup import build, model_config, train_step
cfg = model_config("smoke", "full", {size}, {base})
model, diffusion = build(cfg, torch.device("cpu"))
step = train_step(model, diffusion, 8, torch.device("cpu"))
step()  # warm-up, as a stage's first iteration
for _ in range({steps}):
    step()
"""


def run(procs: int, threads: int, steps: int, size: int, base: int) -> float:
    code = WORKER.format(bench=str(HERE), size=size, base=base, steps=steps)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    ps = [subprocess.Popen([sys.executable, "-c", code], env=env) for _ in range(procs)]
    if any(p.wait() for p in ps):
        raise SystemExit("a worker failed")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3, help="timed steps per stage")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--base", type=int, default=8)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "study_jobs.json")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    serial, parallel = [], []
    for _ in range(args.rounds):
        # serial study: two stages one after another, each with every core
        serial.append(run(1, cores, args.steps, args.size, args.base) + run(1, cores, args.steps, args.size, args.base))
        parallel.append(run(2, max(1, cores // 2), args.steps, args.size, args.base))  # --jobs 2
    s, p = statistics.median(serial), statistics.median(parallel)
    print(f"two stages of {args.steps} training steps (full model, {args.size}², base {args.base}, batch 8), "
          f"medians of {args.rounds} alternated rounds")
    print(f"{'serial, ' + str(cores) + ' threads each':<32}{s:>8.1f} s")
    print(f"{'--jobs 2, ' + str(max(1, cores // 2)) + ' thread(s) each':<32}{p:>8.1f} s   ({s / p:.2f}x)")
    import torch  # the parent times nothing

    from ichseg.engine.provenance import environment

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"bench": "study_jobs", "environment": environment(torch.device("cpu")),
                                    "cores": cores, "steps": args.steps, "size": args.size, "base": args.base,
                                    "serial_s": serial, "jobs2_s": parallel, "speedup": s / p}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

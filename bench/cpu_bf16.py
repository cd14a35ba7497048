"""bf16 autocast on the CPU in the real engine: the full model at the ``cpu`` profile's size trained
with ``train.amp`` none and bf16, same seeds, two 1-thread trainings at a time (as ``ichseg study
--jobs 2`` runs them), and what each reached on validation.

    .venv/bin/python bench/cpu_bf16.py [--iterations 250] [--seeds 0 1] [--runs-dir /tmp/cpu_bf16]
        [--out bench/out/cpu_bf16.json]

Each pair (fp32, bf16) of a seed runs at once, so both see the same machine load. A run folder that
already holds a finished training is summarised, not trained again. The record gives per run the
wall time of the training loop (``wall_time_s`` of its last log row: training and validation) and
the last validation scores, so the speed-up and the change in Dice can be set against the
seed-to-seed spread. Needs a CPU with bf16 instructions (``ichseg.engine.devices.cpu_has_bf16``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch

from ichseg.engine.devices import cpu_has_bf16
from ichseg.engine.provenance import environment

AMPS = ("none", "bf16")


def finished(run: Path, iterations: int) -> bool:
    log = run / "train_log.csv"
    if not log.exists():
        return False
    done = pd.read_csv(log)["iteration"]
    return len(done) > 0 and int(done.iloc[-1]) >= iterations


def train(run: Path, seed: int, amp: str, iterations: int, eval_every: int, data_root: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ichseg.cli", "train", "--profile", "cpu", "--method", "full", "--seed", str(seed),
           "--iterations", str(iterations), "--set", f"train.eval_every={eval_every}", "--set", f"train.amp={amp}",
           "--out", str(run), "--data-root", str(data_root), "--no-progress"]
    log = open(run.with_suffix(".log"), "w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=250)
    ap.add_argument("--eval-every", type=int, default=125)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--runs-dir", type=Path, default=Path("/tmp/cpu_bf16"))
    ap.add_argument("--data-root", type=Path, default=Path("data"))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "cpu_bf16.json")
    args = ap.parse_args()
    if not cpu_has_bf16():
        raise SystemExit("cpu_bf16: this CPU has no bf16 instructions (AVX-512 BF16 or AMX); nothing to measure")
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        runs = {amp: args.runs_dir / f"full-{amp}-s{seed}" for amp in AMPS}
        jobs = [train(run, seed, amp, args.iterations, args.eval_every, args.data_root)
                for amp, run in runs.items() if not finished(run, args.iterations)]
        for job in jobs:
            if job.wait() != 0:
                raise SystemExit(f"cpu_bf16: a training failed; see the .log files in {args.runs_dir}")
    rows = []
    for seed in args.seeds:
        for amp in AMPS:
            last = pd.read_csv(args.runs_dir / f"full-{amp}-s{seed}" / "train_log.csv").iloc[-1]
            rows.append({"seed": seed, "amp": amp, "iterations": int(last["iteration"]), "loss": float(last["loss"]),
                         "val_dice": float(last["dice"]), "val_strict_dice": float(last["strict_dice"]),
                         "train_wall_s": float(last["wall_time_s"])})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"bench": "cpu_bf16", "environment": environment(torch.device("cpu")),
                                    "profile": "cpu", "method": "full", "threads_per_run": 1, "runs_at_once": 2,
                                    "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Sizing of the ``evidence`` profile's pass on this CPU: seconds per training iteration and per
evaluated slice of every diffusion method, one thread, bf16 autocast (the profile's ``train.amp``),
and the pass's 2-core wall time those imply.

Each method trains ``--steps`` optimiser steps (Eq. 4 with α = 5, so five steps hold one anchor
step) on a fixed synthetic batch of the profile's size, after one untimed step; its evaluation cost
is one condition pass over ``batch_slices`` slices and one denoising call over their ensemble,
scaled to the profile's sampling steps. The ``cpu`` profile's full model is timed alongside as the
reference: its in-pass seconds per iteration and per evaluation are in ``results/cpu/timings.json``,
and their ratio to its bench time converts this bench's times into in-pass times (data loading,
validation and two stages sharing the machine included).

    .venv/bin/python bench/evidence_sizing.py [--steps 5] [--profile evidence]

Prints a table and the pass estimate, and writes bench/measured/evidence_sizing.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _setup import build, train_step  # noqa: E402

from ichseg.engine.commands.models import study_methods  # noqa: E402
from ichseg.engine.config import DIFFUSION, load_profile, method_kind, resolve_run_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "measured" / "evidence_sizing.json"
# in-pass seconds of the cpu profile's full model (3,000 iterations; one evaluation at 5 DDIM steps
# x 3 samples), from results/cpu/timings.json: the reference that converts bench time to pass time
CPU_REFERENCE = {"train": "train-full-s2", "evaluate": "evaluate-full-s2", "iterations": 3000}


def step_seconds(cfg: dict, steps: int) -> float:
    torch.manual_seed(0)
    model, diffusion = build(cfg, torch.device("cpu"))
    step = train_step(model, diffusion, cfg["train"]["batch_size"], torch.device("cpu"), bf16=True)
    step()  # untimed: allocations, first-call overheads
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps


def slice_seconds(cfg: dict) -> float:
    """Seconds per evaluated slice: condition once, ``steps`` denoising calls of ``ensemble`` rows."""
    ev = cfg["evaluate"]
    n, ens, k = ev["batch_slices"], ev["ensemble"], ev["steps"]
    model, _ = build(cfg, torch.device("cpu"))
    model.eval()
    size = cfg["model"]["image_size"]
    image = torch.randn(n, 1, size, size)
    amp = torch.autocast("cpu", dtype=torch.bfloat16) if cfg["train"].get("amp") == "bf16" else nullcontext()
    with torch.no_grad(), amp:
        t0 = time.perf_counter()
        feats = model.encode_condition(image)
        t1 = time.perf_counter()
        rep = feats.repeat_interleave(ens)
        model.denoise(torch.randn(n * ens, 1, size, size), torch.full((n * ens,), 500), rep)
        t2 = time.perf_counter()
    return ((t1 - t0) + k * (t2 - t1)) / n


def reference_pass_seconds() -> dict:
    stages = json.loads((ROOT / "results" / "cpu" / "timings.json").read_text())["stages"]
    rows = {r["id"]: r.get("last_run_seconds") or r["seconds"] for r in stages}
    return {"train_s_per_it": rows[CPU_REFERENCE["train"]] / CPU_REFERENCE["iterations"],
            "evaluate_s": rows[CPU_REFERENCE["evaluate"]]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--profile", default="evidence")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    profile = load_profile(args.profile)
    methods, overrides = study_methods(profile)
    cfgs = {"cpu:full": resolve_run_config("cpu", "full")}
    cfgs.update({m: resolve_run_config(profile, m, overrides[m]) for m in methods
                 if method_kind(m) == DIFFUSION and m != "full_lite0_scratch"})  # same network as full_lite0
    rows = {}
    for name, cfg in cfgs.items():
        rows[name] = {"train_s_per_it": step_seconds(cfg, args.steps), "eval_s_per_slice": slice_seconds(cfg)}
        print(f"{name:<20} {rows[name]['train_s_per_it']:.3f} s/it   {rows[name]['eval_s_per_slice']:.3f} s/slice",
              flush=True)
    ref = reference_pass_seconds()
    bench_ref = rows["cpu:full"]
    factor_train = ref["train_s_per_it"] / bench_ref["train_s_per_it"]
    factor_eval = ref["evaluate_s"] / bench_ref["eval_s_per_slice"]  # in-pass evaluation seconds per bench s/slice
    for name, r in rows.items():
        r["pass_s_per_it"] = r["train_s_per_it"] * factor_train
        r["pass_evaluate_s"] = r["eval_s_per_slice"] * factor_eval
    out = {"profile": args.profile, "threads": 1, "amp": "bf16", "steps": args.steps, "torch": torch.__version__,
           "reference": {**ref, "factor_train": factor_train, "factor_eval": factor_eval}, "methods": rows}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["reference"], indent=1))
    for name, r in rows.items():
        print(f"{name:<20} in pass: {r['pass_s_per_it']:.2f} s/it, evaluation {r['pass_evaluate_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

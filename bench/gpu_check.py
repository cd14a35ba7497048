"""One-command GPU check: training throughput and bf16 MFU of the full model and MedSegDiff-v2 at
the paper's 256² widths (``ichseg/profiles/paper.yaml``), and seconds per slice of the 5-sample,
20-step DPM-Solver++ ensemble at 64 slices per batch with the condition encoded once.

    bash bench/gpu_check.sh            # or: make gpu-check      (a CUDA machine, ≤ 8 minutes)
    .venv/bin/python bench/gpu_check.py --dry-run --out-dir /tmp/x   # CPU, tiny sizes (the test)

The denoising step is also timed under ``torch.compile`` (``--compile``, inductor's default mode on
CUDA): the ensemble calls the same network on the same shapes K times, and inductor fuses the
element-wise chains between its convolutions. CUDA graphs (``--compile reduce-overhead``) remove
launch overhead, which at 256² and 320 masks per call is nothing against about 2 s of arithmetic
per call on an H200, and their capture did not fit the 8 minutes there. Goals printed beside the numbers: MFU ≥ 40 %
(3 × forward FLOPs × images/s ÷ the GPU's dense bf16 peak), ≤ 0.1 s per slice. Writes
``gpu_check.json`` (all rows), ``train_gpu.json`` and ``sampling_gpu.json`` to ``--out-dir``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from train import bench_variant  # noqa: E402

from ichseg.diffusion import DiffusionConfig, GaussianDiffusion  # noqa: E402
from ichseg.engine.config import resolve_run_config  # noqa: E402
from ichseg.engine.inference import segment_slices  # noqa: E402
from ichseg.engine.provenance import environment  # noqa: E402
from ichseg.models import build_model  # noqa: E402
from ichseg.utils import atomic_write_json  # noqa: E402

# dense bf16 peaks (TFLOP/s) by device name; --peak-tflops overrides
PEAKS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A6000": 155.0, "RTX 6000 Ada": 364.0}
GOALS = {"mfu": 0.40, "s_per_slice": 0.1}
DRY = ["model.image_size=32", "model.base_channels=8", "model.channel_mult=[1,2,2,4]", "model.num_res_blocks=1",
       "model.condition_channels=8"]


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAKS.items() if k in name), None)


def sampling_row(cfg: dict, device: torch.device, slices: int, steps: int, ensemble: int, bf16: bool,
                 compile_mode: str | None, repeats: int) -> dict:
    model = build_model(cfg["method"], **{**cfg["model"], "pretrained": "none"}).to(device).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    if compile_mode:
        model.denoise = torch.compile(model.denoise, mode=compile_mode, dynamic=False)
    diffusion = GaussianDiffusion(DiffusionConfig.from_dict(cfg["diffusion"])).to(device)
    size = model.config.image_size
    images = torch.randn(slices, model.config.in_channels, size, size, generator=torch.Generator().manual_seed(0))

    def run() -> None:
        segment_slices(model, diffusion, images, sampler="dpm-solver++", steps=steps, ensemble=ensemble,
                       batch_slices=slices, generator=torch.Generator(device=device).manual_seed(0), device=device,
                       amp="bf16" if bf16 else "none")

    t0 = time.perf_counter()
    run()  # warm-up (and compilation)
    warm = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    sec = sorted(times)[len(times) // 2]
    return {"variant": cfg["method"], "image_size": size, "slices_per_batch": slices, "steps": steps,
            "ensemble": ensemble, "compile": compile_mode or "none", "bf16": bf16, "first_call_s": warm,
            "s_per_batch": sec, "s_per_slice": sec / slices}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, few iterations: checks the script and its JSON")
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--variants", nargs="+", default=["full", "medsegdiffv2"])
    ap.add_argument("--batch", type=int, default=None, help="training batch (default: the profile's, 32)")
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--slices", type=int, default=64, help="slices per sampling batch")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--ensemble", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2, help="timed sampling batches after the warm-up (median)")
    ap.add_argument("--compile", choices=["none", "default", "reduce-overhead", "max-autotune"], default=None,
                    help="torch.compile mode for the timed network (default: default on CUDA, none on CPU)")
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "out")
    ap.add_argument("--commit", default=None,
                    help="the commit the working tree was copied from (a device machine's copy has its own git, or none)")
    args = ap.parse_args(argv)

    if args.dry_run:
        device, overrides = torch.device("cpu"), DRY
        args.batch, args.train_steps, args.slices, args.steps, args.repeats = 2, 1, 2, 2, 1
        args.compile = args.compile or "none"
    else:
        if not torch.cuda.is_available():
            raise SystemExit("gpu_check: no CUDA device (use --dry-run to check the script on a CPU)")
        device, overrides = torch.device("cuda"), []
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        args.compile = args.compile or "default"
    bf16 = device.type == "cuda"
    peak = peak_tflops(device, args.peak_tflops)
    started = time.perf_counter()

    env = environment(device)
    if args.commit:  # a copied tree's own git (if any) does not know the commit it was copied from
        env["source_commit"] = args.commit
    train_rows, sample_rows = [], []

    def dump(done: bool) -> dict:
        """Write what is measured so far (the 8-minute bound of gpu_check.sh may cut the run short)."""
        full = [r["mfu"] for r in train_rows if r["variant"] == "full" and r["mfu"] is not None]
        best_mfu = max(full) if full else None
        best_slice = min((r["s_per_slice"] for r in sample_rows), default=None)
        summary = {"complete": done, "best_full_mfu": best_mfu, "best_s_per_slice": best_slice, "goals": GOALS,
                   "mfu_goal_met": None if best_mfu is None else best_mfu >= GOALS["mfu"],
                   "s_per_slice_goal_met": None if best_slice is None else best_slice <= GOALS["s_per_slice"],
                   "seconds": time.perf_counter() - started, "dry_run": args.dry_run, "peak_tflops": peak}
        args.out_dir.mkdir(parents=True, exist_ok=True)
        record = {"bench": "gpu_check", "profile": args.profile, "environment": env, "summary": summary,
                  "train": train_rows, "sampling": sample_rows}
        atomic_write_json(args.out_dir / "gpu_check.json", record)
        atomic_write_json(args.out_dir / "train_gpu.json", {"bench": "train", "profile": args.profile,
                                                            "environment": env, "rows": train_rows})
        atomic_write_json(args.out_dir / "sampling_gpu.json", {"bench": "sampling_speed", "profile": args.profile,
                                                               "environment": env, "rows": sample_rows})
        return record

    def train(v: str, mode: str | None) -> None:
        cfg = resolve_run_config(args.profile, v, overrides)
        # training is compiled in the default mode (TrainConfig.compile): CUDA graphs would
        # have to capture the optimiser step too, and their capture time eats the 8 minutes
        try:
            row = bench_variant(v, cfg, args.batch or cfg["train"]["batch_size"], args.train_steps, device, bf16,
                                compile=mode is not None)
        except Exception as exc:  # a compile failure is a finding, not the end of the check
            if mode is None:
                raise
            print(f"train {v} compile failed: {type(exc).__name__}: {exc}", flush=True)
            train_rows.append({"variant": v, "compile": True, "error": f"{type(exc).__name__}: {exc}", "mfu": None})
            return
        row["mfu"] = row["achieved_TFLOPs"] / peak if peak else None
        train_rows.append(row)
        mfu = "-" if row["mfu"] is None else f"{100 * row['mfu']:.1f}%"
        print(f"train {v:<14} compile={bool(mode)!s:<5} {row['images_per_s']:9.1f} img/s  "
              f"{row['achieved_TFLOPs']:8.2f} TFLOP/s  MFU {mfu}", flush=True)

    def sample(mode: str | None) -> None:
        cfg = resolve_run_config(args.profile, "full", overrides)
        try:
            row = sampling_row(cfg, device, args.slices, args.steps, args.ensemble, bf16, mode, args.repeats)
        except Exception as exc:
            if mode is None:
                raise
            print(f"sample compile={mode} failed: {type(exc).__name__}: {exc}", flush=True)
            return
        sample_rows.append(row)
        print(f"sample full compile={row['compile']:<16} {row['s_per_slice']:.4f} s/slice "
              f"({row['slices_per_batch']} slices × {row['ensemble']} samples × {row['steps']} steps)", flush=True)

    # Eager rows first, compiled ones after: compilation takes minutes, and if the 8-minute bound
    # cuts the check short, every eager number is already written.
    tasks = [(train, v, None) for v in args.variants] + [(sample, None)]
    if args.compile != "none":
        compiled_train = [(train, v, args.compile) for v in args.variants]
        tasks += compiled_train[:1] + [(sample, args.compile)] + compiled_train[1:]
    for fn, *fn_args in tasks:
        fn(*fn_args)
        dump(False)

    record = dump(True)
    summary = record["summary"]
    best_mfu, best_slice = summary["best_full_mfu"], summary["best_s_per_slice"]
    print(f"best full-model MFU {'-' if best_mfu is None else f'{100 * best_mfu:.1f}%'} (goal ≥ {100 * GOALS['mfu']:.0f}%), "
          f"{best_slice:.4f} s/slice (goal ≤ {GOALS['s_per_slice']}); {summary['seconds']:.0f} s; wrote {args.out_dir}/gpu_check.json")
    return record


if __name__ == "__main__":
    main()

"""Per-variant cost of the networks: forward+backward time, peak memory, parameters, FLOPs and
achieved TFLOP/s.

    .venv/bin/python bench/models.py [--variants full medsegdiffv2] [--cpu-size 64] [--cpu-batch 8]
        [--cpu-set base_channels=32] [--steps 3] [--threads 1]

CPU path (always): every variant at ``--cpu-size``² (64), batch ``--cpu-batch`` (8), with the
paper's architecture except the ``--cpu-set`` overrides (default ``base_channels=32`` so that a
2-core machine finishes in minutes). Each variant runs in its own subprocess so that its peak
resident memory (``ru_maxrss``) is its own.
GPU path (when CUDA is available): paper sizes at 256², batch 32, bf16 autocast, peak memory from
``torch.cuda.max_memory_allocated``.

One step = forward of the whole model (condition branch + diffusion U-Net), Eq. 4 loss with the
anchor term active, backward (no optimiser: this measures the network, not AdamW). Forward FLOPs
come from ``ichseg.models.count_flops`` (FlopCounterMode on a meta copy); a training step is
counted as 3 × forward. Prints a table and writes bench/out/models.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ichseg.models import VARIANTS, build_from_config, count_flops, variant_config  # noqa: E402
from ichseg.models.cli import parse_overrides  # noqa: E402
from ichseg.models.losses import LossConfig, total_loss  # noqa: E402

OUT = ROOT / "bench" / "out" / "models.json"


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(variant: str, size: int, batch: int, steps: int, overrides: dict, device: str, bf16: bool) -> dict:
    config = variant_config(variant, image_size=size, **{**overrides, "pretrained": "none"})
    with torch.device("meta"):
        fwd_flops = count_flops(build_from_config(config), size)["forward"] * batch
    dev = torch.device(device)
    model = build_from_config(config).to(dev)
    g = torch.Generator(device=dev).manual_seed(0)
    image = torch.randn(batch, config.in_channels, size, size, device=dev, generator=g)
    mask = (torch.rand(batch, 1, size, size, device=dev, generator=g) > 0.9).float()
    x_t = torch.randn(batch, 1, size, size, device=dev, generator=g)
    noise = torch.randn(batch, 1, size, size, device=dev, generator=g)
    t = torch.randint(0, 1000, (batch,), device=dev, generator=g)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else nullcontext()

    def step() -> None:
        with amp:
            out = model(x_t, t, image)
        loss, _ = total_loss(out, noise, mask, 0, LossConfig())
        model.zero_grad(set_to_none=True)
        loss.backward()

    rss_before = _rss_mb()
    step()  # warm-up: allocations, kernel selection
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    sec = sorted(times)[len(times) // 2]  # median
    row = {
        "variant": variant,
        "device": device,
        "image_size": size,
        "batch": batch,
        "dtype": "bf16-autocast" if bf16 else "float32",
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "forward_GFLOPs": fwd_flops / 1e9,
        "fwd_bwd_ms": sec * 1e3,
        "images_per_s": batch / sec,
        "achieved_TFLOPs": 3 * fwd_flops / sec / 1e12,
        "overrides": overrides,
    }
    if dev.type == "cuda":
        row["peak_mem_MB"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        row["peak_mem_MB"] = peak
        row["step_mem_MB"] = max(peak - rss_before, 0.0)  # growth over the resident model + inputs
    return row


def format_rows(rows: list[dict]) -> str:
    head = (f"{'variant':<16} {'dev':<4} {'size':>4} {'B':>3} {'params M':>9} {'fwd GF':>8} {'fwd+bwd ms':>11} "
            f"{'img/s':>7} {'TFLOP/s':>8} {'peak MB':>8}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['variant']:<16} {r['device']:<4} {r['image_size']:>4} {r['batch']:>3} {r['params_M']:>9.2f} "
            f"{r['forward_GFLOPs']:>8.1f} {r['fwd_bwd_ms']:>11.0f} {r['images_per_s']:>7.2f} "
            f"{r['achieved_TFLOPs']:>8.3f} {r['peak_mem_MB']:>8.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--cpu-size", type=int, default=64)
    p.add_argument("--cpu-batch", type=int, default=8)
    p.add_argument("--cpu-set", action="append", default=None, metavar="KEY=VALUE",
                   help="ModelConfig overrides for the CPU path (default: base_channels=32)")
    p.add_argument("--steps", type=int, default=3, help="timed steps (median reported) after one warm-up")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads on CPU (default 1: on a shared 2-core machine two OpenMP threads "
                        "competing with other processes measured up to 15x slower and erratic; 0 = torch's default)")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one CPU variant, print JSON
    args = p.parse_args(argv)
    cpu_over = parse_overrides(args.cpu_set if args.cpu_set is not None else ["base_channels=32"])
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.one:
        print(json.dumps(measure(args.one, args.cpu_size, args.cpu_batch, args.steps, cpu_over, "cpu", False)))
        return 0

    cpu_rows = []
    for v in args.variants:
        cmd = [sys.executable, __file__, "--one", v, "--cpu-size", str(args.cpu_size),
               "--cpu-batch", str(args.cpu_batch), "--steps", str(args.steps)]
        cmd += [f"--cpu-set={s}" for s in (args.cpu_set if args.cpu_set is not None else ["base_channels=32"])]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode:
            print(res.stderr, file=sys.stderr)
            return res.returncode
        cpu_rows.append(json.loads(res.stdout.strip().splitlines()[-1]))

    report = {
        "cpu": {
            "threads": args.threads or torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
            "rows": cpu_rows,
        },
    }
    print(f"CPU: {args.cpu_size}x{args.cpu_size}, batch {args.cpu_batch}, float32, overrides {cpu_over}, "
          f"{report['cpu']['threads']} threads of {os.cpu_count()} cores (1-min load {os.getloadavg()[0]:.1f}: "
          f"other processes on a shared machine slow these numbers)")
    print(format_rows(cpu_rows))

    if torch.cuda.is_available():
        gpu_rows = [measure(v, 256, 32, max(args.steps, 5), {}, "cuda", True) for v in args.variants]
        report["gpu"] = {"name": torch.cuda.get_device_name(), "rows": gpu_rows}
        print(f"\nGPU ({report['gpu']['name']}): 256x256, batch 32, bf16 autocast, paper widths")
        print(format_rows(gpu_rows))
    else:
        reason = "CUDA is not available on this machine: the GPU path (256x256, batch 32, bf16) was not run"
        report["gpu"] = {"skipped": reason}
        print(f"\nGPU: {reason}.")

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

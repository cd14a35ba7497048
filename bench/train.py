"""Training throughput: images/s per variant for one profile's model size, and on a GPU the
bf16 model-FLOP utilisation (MFU = 3 × forward FLOPs × images/s ÷ peak; forward FLOPs from
``ichseg.models.count_flops``, backward counted as twice the forward).

    .venv/bin/python bench/train.py [--profile smoke] [--variants full medsegdiffv2] [--batch 8]
        [--steps 5] [--device cpu|cuda] [--peak-tflops 989]

Synthetic batches (the data path is not timed); one optimiser step = forward, Eq. 4 loss,
backward, AdamW. Prints a table and writes bench/out/train.json.
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from ichseg.diffusion import DiffusionConfig, GaussianDiffusion
from ichseg.engine.config import resolve_run_config
from ichseg.engine.provenance import environment
from ichseg.engine.devices import resolve_device
from ichseg.models import VARIANTS, build_model, count_flops
from ichseg.models.losses import LossConfig, total_loss


def bench_variant(variant: str, cfg: dict, batch: int, steps: int, device: torch.device, bf16: bool,
                  compile: bool = False) -> dict:
    model_cfg = {**cfg["model"], "pretrained": "none"}
    model = build_model(variant, **model_cfg).to(device)
    size, ch = model.config.image_size, model.config.in_channels
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    d = GaussianDiffusion(DiffusionConfig.from_dict(cfg["diffusion"])).to(device)
    net = torch.compile(model) if compile else model  # TrainConfig.compile
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator(device=device).manual_seed(0)
    img = torch.randn(batch, ch, size, size, device=device, generator=g)
    msk = (torch.rand(batch, 1, size, size, device=device, generator=g) > 0.9).float()
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else nullcontext()

    def step(i: int) -> None:
        t = torch.randint(0, d.num_timesteps, (batch,), device=device, generator=g)
        noise = torch.randn(msk.shape, device=device, generator=g)
        x_t, target = d.training_pair(msk, t, noise)
        with amp:
            out = net(x_t, t, img)
        loss, _ = total_loss(out, target, msk, i, LossConfig())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step(0)  # warm-up (allocations, kernels, compilation)
    step(0)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for i in range(1, steps + 1):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    sec = (time.perf_counter() - t0) / steps
    with torch.device("meta"):
        meta = build_model(variant, **model_cfg)
    fwd = count_flops(meta, size)["forward"]
    return {"variant": variant, "image_size": size, "compile": compile, "batch": batch, "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
            "s_per_step": sec, "images_per_s": batch / sec, "forward_GFLOPs_per_image": fwd / 1e9,
            "achieved_TFLOPs": 3 * fwd * batch / sec / 1e12,
            "peak_mem_GiB": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--batch", type=int, default=None, help="default: the profile's train.batch_size")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (H100 SXM: 989)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "train.json")
    args = ap.parse_args()
    dev = resolve_device(args.device)
    bf16 = dev.type == "cuda"
    rows = []
    for v in args.variants:
        cfg = resolve_run_config(args.profile, v, args.overrides)
        rows.append(bench_variant(v, cfg, args.batch or cfg["train"]["batch_size"], args.steps, dev, bf16))
        if bf16:
            rows[-1]["mfu"] = rows[-1]["achieved_TFLOPs"] / args.peak_tflops
    print(f"Training throughput, profile {args.profile}, device {dev}{' (bf16 autocast)' if bf16 else ''}")
    print(f"{'variant':<16}{'size':>5}{'batch':>6}{'params M':>9}{'s/step':>8}{'img/s':>8}{'GF/img':>8}{'TFLOP/s':>9}{'MFU':>7}")
    for r in rows:
        mfu = f"{100 * r['mfu']:.1f}%" if "mfu" in r else "-"
        print(f"{r['variant']:<16}{r['image_size']:>5}{r['batch']:>6}{r['params_M']:>9.2f}{r['s_per_step']:>8.3f}"
              f"{r['images_per_s']:>8.1f}{r['forward_GFLOPs_per_image']:>8.2f}{r['achieved_TFLOPs']:>9.3f}{mfu:>7}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"bench": "train", "profile": args.profile, "environment": environment(dev),
                                    "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

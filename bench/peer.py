"""Side by side with a peer implementation: lucidrains' ``med-seg-diff-pytorch`` 0.3.3 (MedSegDiff,
Wu et al.) against our full model at a matched parameter count, same resolution and batch,
timed interleaved in one process (``bench/_timing.py``).

    .venv/bin/python bench/peer.py [--size 64] [--batch 8] [--peer-dim 32] [--rounds 5]
        [--peer-steps 5] [--threads 1] [--out bench/out/peer.json]

Optional bench dependency, not installed by ``make``: the peer itself without its pinned
dependencies, plus the one import it needs that the venv lacks (einops and tqdm are there):

    .venv/bin/pip install --no-deps med-seg-diff-pytorch==0.3.3
    .venv/bin/pip install beartype

Two measurements:
- training: images/s of one optimiser step (forward, loss, backward, AdamW) — the peer's
  ``MedSegDiff(Unet)`` forward returns its ε-MSE; ours is Eq. 4 (ε-MSE + anchor loss);
- one slice's 5-sample ensemble: the peer's own sampler is its 1000-step ancestral DDPM
  (``p_sample_loop``; its condition encoder runs at every step), of which ``--peer-steps``
  steps are timed and the total *extrapolated* ×1000/steps (every step costs the same: one
  network call on the same shapes); ours is DPM-Solver++ at 20 steps with the condition encoded
  once (``ichseg.engine.inference.segment_slices``), timed in full.
Our network's base width is chosen as the one (multiple of 8) whose parameter count is nearest
the peer's; the report fails when they differ by more than 10 %.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _setup import build, model_config, n_params, train_step  # noqa: E402
from _timing import interleave  # noqa: E402

from ichseg.engine.inference import segment_slices  # noqa: E402
from ichseg.engine.provenance import environment  # noqa: E402


def peer_model(dim: int, size: int, in_channels: int):
    try:
        from med_seg_diff_pytorch import MedSegDiff, Unet
    except ImportError as exc:
        raise SystemExit(f"bench/peer.py needs the peer: pip install --no-deps med-seg-diff-pytorch==0.3.3 "
                         f"and pip install beartype ({exc})") from None
    unet = Unet(dim=dim, image_size=size, mask_channels=1, input_img_channels=in_channels, dim_mults=(1, 2, 4, 8))
    return MedSegDiff(unet, timesteps=1000)


def peer_train_step(diff, batch: int, size: int, in_channels: int, seed: int = 0):
    opt = torch.optim.AdamW(diff.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(batch, in_channels, size, size, generator=g)
    msk = (torch.rand(batch, 1, size, size, generator=g) > 0.9).float()

    def step() -> float:
        loss = diff(msk, img)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def forward_gflops(peer, ours, size: int, in_channels: int) -> tuple[float, float, float]:
    """Forward GFLOPs per image (torch's FlopCounterMode): the peer's network (its condition
    encoder included, as at every step of its sampler), our condition branch, our denoiser
    (``ichseg.models.card.count_flops``, the count the architecture page shows)."""
    from torch.utils.flop_counter import FlopCounterMode

    from ichseg.models.card import count_flops

    x = torch.zeros(1, in_channels, size, size)
    m = torch.zeros(1, 1, size, size)
    t = torch.zeros(1, dtype=torch.long)
    with torch.no_grad(), FlopCounterMode(display=False) as f:
        peer.model(m, t, x)
    ours_flops = count_flops(ours, size)
    return f.get_total_flops() / 1e9, ours_flops["condition"] / 1e9, ours_flops["denoise"] / 1e9


def matched_base(target: int, size: int, profile: str, lo: int = 8, hi: int = 128) -> tuple[int, int]:
    best = None
    for base in range(lo, hi + 1, 8):
        with torch.device("meta"):
            model, _ = build(model_config(profile, "full", size, base), torch.device("meta"))
        n = n_params(model)
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (base, n)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--peer-dim", type=int, default=32, help="the peer's Unet dim (32: 13.0 M parameters)")
    ap.add_argument("--base", type=int, default=None, help="our base width (default: matched to the peer's size)")
    ap.add_argument("--profile", default="gpu", help="our architecture's profile (paper widths / depth)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--peer-steps", type=int, default=5, help="peer sampling steps timed (extrapolated to 1000)")
    ap.add_argument("--ensemble", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20, help="our DPM-Solver++ steps")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "peer.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev, ch = torch.device("cpu"), 1

    torch.manual_seed(0)
    peer = peer_model(args.peer_dim, args.size, ch)
    n_peer = n_params(peer.model)
    base, n_ours = (args.base, None) if args.base else matched_base(n_peer, args.size, args.profile)
    torch.manual_seed(0)
    ours, diffusion = build(model_config(args.profile, "full", args.size, base), dev, in_channels=ch)
    n_ours = n_params(ours)
    ratio = n_ours / n_peer
    print(f"peer Unet dim {args.peer_dim}: {n_peer / 1e6:.2f} M parameters; ours base {base}: {n_ours / 1e6:.2f} M ({ratio:.2f}x)")

    peer_gf, cond_gf, den_gf = forward_gflops(peer, ours, args.size, ch)

    # -- training, interleaved
    train = interleave({"peer": peer_train_step(peer, args.batch, args.size, ch),
                        "ours": train_step(ours, diffusion, args.batch, dev)}, rounds=args.rounds, warmup=1)

    # -- one slice's ensemble
    g = torch.Generator().manual_seed(1)
    image = torch.randn(1, ch, args.size, args.size, generator=g)
    cond = image.repeat(args.ensemble, 1, 1, 1)
    peer.eval()

    @torch.no_grad()
    def peer_steps() -> None:
        x = torch.randn(args.ensemble, 1, args.size, args.size, generator=g)
        for t in range(999, 999 - args.peer_steps, -1):
            x, _ = peer.p_sample(x, t, cond)

    def ours_ensemble() -> None:
        segment_slices(ours, diffusion, image, sampler="dpm-solver++", steps=args.steps, ensemble=args.ensemble,
                       batch_slices=1, generator=torch.Generator().manual_seed(0), device=dev)

    sampling = interleave({"peer": peer_steps, "ours": ours_ensemble}, rounds=max(3, args.rounds // 2), warmup=1)
    peer_total = sampling["peer"]["median"] * 1000 / args.peer_steps
    ours_total = sampling["ours"]["median"]
    row = {
        "size": args.size, "batch": args.batch, "threads": args.threads, "peer_dim": args.peer_dim, "base_channels": base,
        "peer_params_M": n_peer / 1e6, "ours_params_M": n_ours / 1e6, "param_ratio": ratio,
        "peer_forward_GFLOPs": peer_gf, "ours_condition_GFLOPs": cond_gf, "ours_denoise_GFLOPs": den_gf,
        "peer_train_images_per_s": args.batch / train["peer"]["median"],
        "ours_train_images_per_s": args.batch / train["ours"]["median"],
        "train_speedup": train["peer"]["median"] / train["ours"]["median"],
        "peer_step_s_per_denoise": sampling["peer"]["median"] / args.peer_steps,
        "peer_ensemble_s_extrapolated": peer_total, "peer_steps_timed": args.peer_steps,
        "ours_ensemble_s": ours_total, "ours_steps": args.steps, "ensemble": args.ensemble,
        "ensemble_time_fraction": ours_total / peer_total,
        "train_raw": train, "sampling_raw": sampling,
    }
    print(f"Peer med-seg-diff-pytorch 0.3.3 vs ours (full), {args.size}², batch {args.batch}, {args.threads} thread(s), "
          f"medians of {args.rounds} interleaved rounds")
    print(f"{'':<28}{'peer':>12}{'ours':>12}{'ours/peer':>11}")
    print(f"{'parameters (M)':<28}{n_peer / 1e6:>12.2f}{n_ours / 1e6:>12.2f}{ratio:>10.2f}x")
    print(f"{'forward GFLOP/image':<28}{peer_gf:>12.2f}{cond_gf + den_gf:>12.2f}{(cond_gf + den_gf) / peer_gf:>10.2f}x")
    print(f"{'  per denoising step':<28}{peer_gf:>12.2f}{den_gf:>12.2f}{den_gf / peer_gf:>10.2f}x")
    print(f"{'training images/s':<28}{row['peer_train_images_per_s']:>12.2f}{row['ours_train_images_per_s']:>12.2f}"
          f"{row['train_speedup']:>10.2f}x")
    print(f"{'ensemble s/slice':<28}{peer_total:>12.1f}{ours_total:>12.2f}{100 * row['ensemble_time_fraction']:>10.2f}%")
    print(f"  (peer: 1000-step DDPM, {args.peer_steps} steps timed and extrapolated; ours: DPM-Solver++ "
          f"{args.steps} steps, ensemble {args.ensemble})")
    if abs(ratio - 1) > 0.10:
        print(f"WARNING: parameter counts differ by {100 * abs(ratio - 1):.0f} % (> 10 %)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"bench": "peer", "peer": "med-seg-diff-pytorch 0.3.3",
                                    "environment": environment(dev), "rows": [row]}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""``ichseg export CHECKPOINT --out FILE [--dtype float16]``: the weights of a run to hand out."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..weights import DTYPES, export_weights


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="a training checkpoint (runs/<run>/checkpoints/best.pt)")
    p.add_argument("--out", type=Path, required=True, help="the weights file to write")
    p.add_argument("--dtype", choices=list(DTYPES), default="float16", help="storage type of the weights (default float16)")
    p.add_argument("--note", default="", help="a line stored in the file (e.g. what data it was trained on)")


def run(args: argparse.Namespace) -> int:
    out = export_weights(args.checkpoint, args.out, dtype=args.dtype, note=args.note)
    print(f"{out}: {out.stat().st_size / 1e6:.1f} MB, EMA weights of {args.checkpoint} ({args.dtype})")
    return 0

"""``ichseg phantom OUT --layout L --cases N --seed S``: atlas-based synthetic head CT in a dataset's layout."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .phantom import DOMAINS

    p.add_argument("out", type=Path, help="folder to write (created)")
    p.add_argument("--layout", required=True, choices=list(DOMAINS), help="the dataset whose folder layout and scan geometry to copy")
    p.add_argument("--cases", type=int, default=10, help="how many patients (volumes) to write")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed writes the same files")
    p.add_argument("--in-plane", type=int, default=512, help="pixels per side (default 512, as the real datasets; "
                   "128 is ~15x faster)")
    p.add_argument("--slices", type=int, default=None, help="slices per volume (default: the layout's range)")
    p.add_argument("--randomise", action="store_true", help="per-patient randomisation of tissue HU, scanner, "
                   "artefacts and bleeds at its defaults (data.phantom.randomise: {})")


def run(args: argparse.Namespace) -> int:
    from .phantom import write_phantom

    out = write_phantom(args.out, args.layout, args.cases, args.seed, in_plane=args.in_plane, slices=args.slices,
                        randomise={} if args.randomise else None)
    n = sum(1 for _ in Path(out).rglob("*.nii*"))
    print(f"wrote {args.cases} {args.layout} phantom case(s) ({n} NIfTI files) to {out}")
    return 0

"""``ichseg predict --checkpoint CKPT SCAN.nii[.gz] --out DIR``"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..predict import predict_scan
from .common import add_sampling_arguments, eval_config_from


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scan", type=Path, help="head CT volume (.nii or .nii.gz)")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="output folder (mask/probability/uncertainty NIfTI, summary.json)")
    p.add_argument("--threshold", type=float, default=0.5, help="probability threshold of the mask")
    add_sampling_arguments(p)
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    s = predict_scan(args.checkpoint, args.scan, args.out, eval_config_from(args), device=args.device,
                     threshold=args.threshold, progress=not args.no_progress)
    print(f"{args.out}: hemorrhage volume {s['hemorrhage_volume_ml']} mL on {len(s['slices_with_hemorrhage'])} slices")
    return 0

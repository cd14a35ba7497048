"""``ichseg evaluate --checkpoint CKPT --prepared DIR --out DIR [--sampler ...]``"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import add_sampling_arguments, sampling_overrides


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, required=True, help="a run's checkpoints/best.pt or last.pt, or exported weights")
    p.add_argument("--prepared", type=Path, required=True, help="a prepared dataset folder (`ichseg prepare`)")
    p.add_argument("--out", type=Path, required=True,
                   help="folder for metrics.json, slices.csv, qualitative.npz, worst.npz")
    p.add_argument("--dataset", default=None, help="dataset name recorded in metrics.json (default: the prepared folder's)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="which split of --prepared to score")
    p.add_argument("--method", "--variant", dest="method", default=None,
                   help="refuse a checkpoint of another method (--variant: deprecated alias of --method; default: any)")
    add_sampling_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in logs)")


def run(args: argparse.Namespace) -> int:
    from ..evaluate import evaluate_checkpoint
    from ..inference import eval_settings
    from ..predict import check_checkpoint_file

    # the settings of the run's own profile, each flag given replacing its value
    ecfg = eval_settings(check_checkpoint_file(args.checkpoint), sampling_overrides(args))
    summary = evaluate_checkpoint(args.checkpoint, args.prepared, args.out, ecfg, dataset=args.dataset,
                                  split=args.split, device=args.device, method=args.method,
                                  progress=not args.no_progress)
    print(json.dumps({"paper": summary["paper"], "positive_slice_dice": summary["strict"]["positive_slice_dice"],
                      "seconds_per_slice": summary["seconds_per_slice"]}))
    return 0

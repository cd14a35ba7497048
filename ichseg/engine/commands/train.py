"""``ichseg train --profile P --method M [--iterations N] [--out DIR] [--resume] [--set k=v ...]``"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import resolve_run_config
from ..methods import train_run


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="smoke", help="profile name (smoke, gpu, paper) or a YAML file")
    p.add_argument("--method", "--variant", dest="method", required=True,
                   help="method to train: a Table 2 variant (see `ichseg models`), unet, transunet, ukan or nnunet "
                        "(--variant: deprecated alias of --method)")
    p.add_argument("--iterations", type=int, default=None, help="override train.iterations")
    p.add_argument("--seed", type=int, default=None, help="override train.seed")
    p.add_argument("--out", type=Path, default=None, help="run folder (default results/<profile>/runs/<method>-s<seed>)")
    p.add_argument("--data-root", type=Path, default=Path("data"), help="where raw phantoms and prepared data live")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set train.batch_size=4 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in logs)")


def run(args: argparse.Namespace) -> int:
    cfg = resolve_run_config(args.profile, args.method, args.overrides, iterations=args.iterations, seed=args.seed)
    out = args.out or Path("results") / cfg["profile"] / "runs" / f"{args.method}-s{cfg['train']['seed']}"
    res = train_run(cfg, out, data_root=args.data_root, resume=args.resume, progress=not args.no_progress)
    if res.best_score is None:  # nnU-Net keeps its own final checkpoint
        print(f"{res.run_dir}: trained {res.best_iteration} iterations")
    else:
        print(f"{res.run_dir}: best validation {res.selected_on} {res.best_score:.4f} at iteration {res.best_iteration}")
    return 0

"""``ichseg study --profile smoke|gpu|paper [--methods ...] [--seeds ...] [--datasets ...] [--set [METHOD:]K=V] [--jobs N]``"""

from __future__ import annotations

import argparse
from pathlib import Path

from .driver import StudyPass
from .planning import StudySpec, parse_overrides
from .scheduling import default_jobs


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="smoke", help="profile name (smoke, gpu, paper) or a YAML file")
    p.add_argument("--methods", "--variants", dest="methods", nargs="+", default=None,
                   help="methods to train (default: the profile's: the Table 2 variants and the Table 1 baselines "
                        "unet, transunet, ukan, nnunet); --variants: deprecated alias of --methods")
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="training seeds (default: the profile's; gpu: 0 1 2)")
    p.add_argument("--datasets", nargs="+", default=None, help="test datasets (default: the profile's data.test_datasets)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="[METHOD:]KEY=VALUE",
                   help="config override for every method, or for one with a METHOD: prefix (repeatable)")
    p.add_argument("--sampler", default=None, help="evaluation sampler (default: the profile's evaluate.sampler)")
    p.add_argument("--steps", type=int, default=None, help="evaluation sampling steps")
    p.add_argument("--ensemble", type=int, default=None, help="evaluation ensemble size")
    p.add_argument("--root", type=Path, default=Path("."), help="repository root (notebooks are read from here)")
    p.add_argument("--results", type=Path, default=None, help="results folder (default ROOT/results); the profile's folder goes inside")
    p.add_argument("--data-root", type=Path, default=None, help="raw phantoms and prepared data (default ROOT/data)")
    p.add_argument("--jobs", type=int, default=None,
                   help="stages run at once, each after its upstream stages (default: sized to the machine, "
                        "e.g. 2 on a 2-core CPU, 1 on a CUDA machine)")
    p.add_argument("--threads", type=int, default=None, help="BLAS/OpenMP threads per stage (default: cores // jobs)")
    p.add_argument("--force", action="store_true", help="re-run every stage even when its stamp matches")
    p.add_argument("--keep-trained", action="store_true",
                   help="keep completed data preparations and trainings made from the same inputs even where the "
                        "code changed since; re-run the evaluations and the results page")
    p.add_argument("--dry-run", action="store_true", help="print which stages would run, run nothing")


def run(args: argparse.Namespace) -> int:
    evaluate = {k: getattr(args, k) for k in ("sampler", "steps", "ensemble") if getattr(args, k) is not None}
    spec = StudySpec(profile=args.profile, methods=args.methods, seeds=args.seeds, datasets=args.datasets,
                     overrides=parse_overrides(args.overrides), evaluate=evaluate, root=args.root,
                     results_root=args.results, data_root=args.data_root, force=args.force, keep_trained=args.keep_trained,
                     jobs=default_jobs() if args.jobs is None else args.jobs, threads=args.threads)
    study = StudyPass(spec)
    if args.dry_run:
        for stage, action in study.dry_run():
            print(f"{action:>5}  {stage}")
        return 0
    study.run()
    print(f"results: {study.rel(study.results_dir)} (notebooks under {study.rel(study.results_dir / 'notebooks')})")
    return 0

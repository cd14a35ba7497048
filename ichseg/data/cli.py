"""``ichseg prepare``: a dataset folder -> prepared slices (see ``preparation``).

``prepare`` exposes every ``PrepConfig`` field as an option (``--size``, ``--window`` ...), so the
command line cannot drift from the config.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from .config import PrepConfig


def _none_or_float(text: str) -> float | None:
    return None if text.lower() in ("none", "null", "all") else float(text)


_TYPES = {"size": int, "seed": int, "context": int, "test_fraction": float, "val_fraction": float, "negative_ratio": _none_or_float}


# -- ichseg prepare ----------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    from .layouts import DATASETS

    p.add_argument("--dataset", required=True, choices=list(DATASETS), help="dataset layout of --raw")
    p.add_argument("--raw", required=True, type=Path, help="the dataset folder as its publisher ships it")
    p.add_argument("--out", required=True, type=Path, help="prepared data go to OUT/<dataset>/<hash of the config and the source folder>/")
    p.add_argument("--skip-bad", action="store_true", help="record unusable files and go on without them")
    p.add_argument("--image-glob", help="glob (relative to --raw) for image files of a renamed folder")
    p.add_argument("--mask-glob", help="glob (relative to --raw) for mask files of a renamed folder")
    p.add_argument("--patient-pattern", help="regular expression whose first group is the patient in a file's name "
                                             "(scans of one patient share a split; default: the layout's rule)")
    p.add_argument("--workers", type=int, default=1, help="parallel reader processes (default 1)")
    group = p.add_argument_group("preparation (PrepConfig fields, paper §4.1)")
    for f in fields(PrepConfig):
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=_TYPES.get(f.name, str),
                           default=f.default, help=f"default: {f.default}")


def run(args: argparse.Namespace) -> int:
    from .preparation import prepare_dataset

    config = PrepConfig.from_dict({f.name: getattr(args, f.name) for f in fields(PrepConfig)})
    path = prepare_dataset(args.dataset, args.raw, args.out, config, skip_bad=args.skip_bad,
                           image_glob=args.image_glob, mask_glob=args.mask_glob, patient=args.patient_pattern,
                           workers=max(1, args.workers), log=print)
    print(f"prepared: {path}")
    return 0

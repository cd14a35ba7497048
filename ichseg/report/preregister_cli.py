"""``ichseg preregister --profile NAME [--seed-sd X | --pilot FILE.json] [--results DIR]``: write a
pass's plan (``ichseg.report.preregistration``) before any of its test evaluations."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..engine.config import load_profile
from .preregistration import FILE, read_pilot, write_preregistration


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", required=True,
                   help="the profile whose pass is planned (a name such as evidence, or a YAML file); its study "
                        "section names the methods and seeds")
    sd = p.add_mutually_exclusive_group()
    sd.add_argument("--seed-sd", type=float, default=None, metavar="X",
                    help="seed standard deviation of the validation lesion-slice Dice (0-1) measured in a pilot; "
                         "gives each comparison's smallest detectable difference (default: none, the plan omits them)")
    sd.add_argument("--pilot", type=Path, default=None, metavar="FILE.json",
                    help="a pilot's json (bench/evidence_pilot.py, validation patients only) to read the seed "
                         "standard deviation from; the plan records the file and what the pilot found")
    p.add_argument("--results", type=Path, default=Path("results"),
                   help="results folder; the plan is written to RESULTS/<profile>/" + FILE)


def run(args: argparse.Namespace) -> int:
    profile = load_profile(str(args.profile))
    seed_sd, pilot = args.seed_sd, None
    if args.pilot is not None:
        seed_sd, pilot = read_pilot(args.pilot, profile["profile"])
    path = write_preregistration(profile, root=args.results, seed_sd=seed_sd, pilot=pilot)
    print(f"pre-registration: {path} — commit it before any test evaluation of {profile['profile']}")
    return 0

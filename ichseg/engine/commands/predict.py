"""``ichseg predict SCAN_OR_FOLDER... --checkpoint CKPT --out DIR``"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_sampling_arguments, sampling_overrides


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scans", type=Path, nargs="+", metavar="SCAN",
                   help="head CT scan(s): a NIfTI volume (.nii, .nii.gz), a folder holding one DICOM CT series (or "
                        "one file of it), or a folder holding such scans (one prediction each)")
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="the model: a .pt file of `ichseg train` (checkpoints/best.pt) or `ichseg export` "
                        "(e.g. results/cpu/model/full.pt)")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder: the prediction of one scan, or one subfolder per scan and summary.csv")
    p.add_argument("--series", default=None, metavar="UID|NUMBER|DESCRIPTION",
                   help="the DICOM series to segment where a folder holds several (its UID or the UID's last digits, "
                        "its series number or its description, as the error listing them shows); applies to every "
                        "DICOM scan named")
    p.add_argument("--threshold", type=float, default=None,
                   help="probability at which a voxel counts as hemorrhage (default: the profile's evaluate.threshold)")
    p.add_argument("--allow-non-hu", action="store_true",
                   help="skip the check that a scan looks like CT in Hounsfield units (air near -1000 HU), for "
                        "a CT cropped so tightly that no air is left in it; anything else gives wrong answers")
    p.add_argument("--keep-outside-skull", action="store_true",
                   help="keep what the model marks outside the skull (default: left out, since an intracranial "
                        "hemorrhage lies inside it; summary.json says how much was); for a skull opened by surgery")
    add_sampling_arguments(p)
    from ..predict import CPU_BATCH_SLICES

    for action in p._actions:
        if action.dest == "batch_slices":
            action.help = (f"slices sampled together; lower it if memory runs short (default: the profile's "
                           f"evaluate.batch_slices, at most {CPU_BATCH_SLICES} on a CPU)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for sampling (default: torch's, one per core); on a machine other jobs keep "
                        "busy, 1 is several times faster than threads that wait for each other")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (e.g. in logs)")


def _line(out: Path, s: dict) -> str:
    rng = s.get("hemorrhage_volume_range_ml")
    spread = f"ensemble members {rng[0]}-{rng[1]} mL, " if rng else ""
    outside = s.get("outside_skull_ml")
    left = f"; {outside} mL outside the skull left out" if outside else ""
    return (f"{out}: hemorrhage volume {s['hemorrhage_volume_ml']} mL ({spread}ABC/2 {s['abc2']['volume_ml']} mL) "
            f"on {len(s['slices_with_hemorrhage'])} slices{left}")


def run(args: argparse.Namespace) -> int:
    from ...errors import IchsegError
    from ..predict import (TABLE, Predictor, check_checkpoint_file, check_out_dir, expand_inputs, is_dicom_input,
                           predict_many)

    # everything the user named is checked before the model loads and before anything is written
    scans = expand_inputs(args.scans)
    if args.threads is not None:
        import torch

        from ...utils.validate import check_int

        torch.set_num_threads(check_int("--threads", args.threads))
    if args.series is not None and not any(is_dicom_input(s) for s in scans):
        raise IchsegError(f"--series {args.series!r} picks a DICOM series, and no scan given is DICOM")
    single = scans == [Path(args.scans[0])]
    check_checkpoint_file(args.checkpoint)
    if single:
        check_out_dir(args.out)
    else:
        check_out_dir(args.out, own=(TABLE,))
    predictor = Predictor.load(args.checkpoint, sampling_overrides(args), device=args.device, threshold=args.threshold,
                               hu_check=not args.allow_non_hu, progress=not args.no_progress, series=args.series,
                               inside_skull=not args.keep_outside_skull)
    if single:
        print(_line(args.out, predictor(scans[0], args.out)))
        return 0
    rows = predict_many(predictor, scans, args.out, log=print)
    bad = sum(r["status"] == "error" for r in rows)
    print(f"{args.out / TABLE}: {len(rows) - bad} of {len(rows)} scans segmented "
          f"({sum(r['status'] == 'skipped' for r in rows)} done earlier), {bad} failed")
    if bad:
        print(f"ichseg predict: error: {bad} scan(s) failed; their errors are in {args.out / TABLE}", file=sys.stderr)
        return 2
    return 0

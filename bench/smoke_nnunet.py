"""The ``smoke`` profile's nnU-Net budget, sized on the validation patients: the shortest run of
nnU-Net's own trainer (its schedule: poly learning-rate decay over the run's epochs, so each
length is a run of its own, not a prefix of a longer one) whose validation predictions beat both
references the study's outcome check holds every Table 1 model to: the in-head chance level of
lesion-slice Dice, and an all-empty prediction under the paper's protocol.

Each candidate trains at the profile's other settings (one thread, no augmentation workers, no
mirroring at prediction) into ``--out/<epochs>x<iterations>`` and is scored on the ``val`` split of
the prepared Instance2022 phantom; nothing here reads a test split. Rule, fixed before the runs
(``RULE``).

    .venv/bin/python bench/smoke_nnunet.py [--candidates 5x20 10x20 ...] [--out bench/out/smoke_nnunet]

Writes ``bench/measured/smoke_nnunet.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ichseg.engine.commands.models import study_methods  # noqa: E402
from ichseg.engine.config import eval_config, load_profile, resolve_run_config  # noqa: E402
from ichseg.engine.methods import evaluate_run, train_run  # noqa: E402
from ichseg.engine.provenance import environment  # noqa: E402
from ichseg.engine.runlog import read_run_info  # noqa: E402
from ichseg.utils import atomic_write_json  # noqa: E402

OUT = ROOT / "bench" / "measured" / "smoke_nnunet.json"
# epochs x iterations per epoch; 2x10 is the old budget. The first four were planned; when none
# passed, 15x25 and 20x25 were added, and 20x25 stopped once 15x25 passed (the rule cannot pick it)
CANDIDATES = ("2x10", "5x20", "8x20", "10x25", "15x25")
RULE = ("the smoke profile takes the candidate of fewest iterations whose validation lesion-slice Dice beats "
        "the in-head chance level and whose paper-protocol Dice beats an all-empty prediction's; none: the "
        "longest, and the outcome test keeps recording the shortfall")


def candidate_config(profile: str, candidate: str) -> dict:
    epochs, per_epoch = (int(v) for v in candidate.split("x"))
    _, overrides = study_methods(load_profile(profile))
    return resolve_run_config(profile, "nnunet", overrides["nnunet"] + [
        f"baselines.nnunet.epochs={epochs}", f"baselines.nnunet.iterations_per_epoch={per_epoch}"])


def score(metrics: dict) -> dict:
    strict, paper = metrics["strict"], metrics["paper"]
    row = {"lesion_slice_dice": strict["positive_slice_dice"],
           "chance_in_head": strict["chance_positive_slice_dice_in_head"],
           "paper_dice": paper["dice"], "all_empty_paper_dice": paper["all_empty_dice"]}
    row["beats_both"] = bool(row["lesion_slice_dice"] > row["chance_in_head"]
                             and row["paper_dice"] > row["all_empty_paper_dice"])
    return row


def run_candidate(profile: str, candidate: str, out: Path, data_root: Path) -> dict:
    cfg = candidate_config(profile, candidate)
    run_dir = out / candidate
    if read_run_info(run_dir).get("status") != "complete":
        train_run(cfg, run_dir, data_root=data_root, progress=False)
    info = read_run_info(run_dir)
    metrics = evaluate_run(run_dir, Path(info["data"]["prepared"]), run_dir / "val", eval_config(cfg), split="val",
                           progress=False)
    iterations = cfg["nnunet"]["epochs"] * cfg["nnunet"]["iterations_per_epoch"]
    # train_s: nnU-Net's own clock over its epochs (its log), without planning and preprocessing
    return {"candidate": candidate, "iterations": iterations, "train_s": info.get("wall_time_s"), **score(metrics)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "smoke_nnunet")
    ap.add_argument("--data-root", type=Path, default=ROOT / "data")
    ap.add_argument("--machine-note", default="", help="how busy the machine was, for the record")
    args = ap.parse_args()
    rows = []
    for c in args.candidates:
        rows.append(run_candidate(args.profile, c, args.out, args.data_root))
        print(json.dumps(rows[-1]), flush=True)
    passing = sorted((r for r in rows if r["beats_both"]), key=lambda r: r["iterations"])
    chosen = (passing or sorted(rows, key=lambda r: -r["iterations"]))[0]["candidate"]
    rec = {"bench": "smoke_nnunet", "profile": args.profile, "split": "val", "rule": RULE,
           "chosen": chosen, "any_beats_both": bool(passing), "runs": rows,
           "machine": "2-core shared CPU, nnU-Net on 1 thread" + (f"; {args.machine_note}" if args.machine_note else ""),
           "environment": environment(torch.device("cpu"))}
    atomic_write_json(OUT, rec)
    print(f"chosen {chosen}; wrote {OUT}")


if __name__ == "__main__":
    main()

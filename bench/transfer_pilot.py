"""Which training recipe transfers from synthetic to real head CT? Chosen on validation patients and
on the real pydicom slices (with lesions inserted under a seed of their own), never on the real
whole-head volume or any test split.

Arms, each the full model at the ``cpu`` profile's settings and the shipped model's budget
(3,000 iterations), seed 0:
- ``plain``: the profile's synthetic data, as the shipped model was trained;
- ``randomise``: ``data.phantom.randomise: {}`` (per-patient tissue HU, blood age, contrast, bias
  field, noise, resolution, cupping, streaks, heterogeneous bleeds; SynthSeg's recipe);
- ``randomise_context1``: the same with ``data.prep.context: 1`` (2.5D: the neighbouring slices as
  input channels).
Each is scored on (a) the validation patients of the plain synthetic cohort, (b) those of the
randomised cohort, (c) the pydicom slices with inserted lesions (``realct`` without the whole head,
``REALCT_SEED``): lesion-slice Dice at 0.5 overall and per subtype, and the predicted area on the
untouched slice. Rule, fixed before the runs: the recipe for the shipped model is the arm with the
highest lesion-slice Dice on (c) whose Dice on (a) is no more than 0.03 below ``plain``'s; ties
(within 0.01): the simpler arm (the order above).

    .venv/bin/python bench/transfer_pilot.py [--only plain randomise] [--arms-out bench/out/transfer_pilot]

Resumable (each run continues from its last checkpoint); writes bench/measured/transfer_pilot.json
once every arm has finished.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ichseg.engine.commands.models import study_methods  # noqa: E402
from ichseg.engine.config import load_profile, resolve_run_config  # noqa: E402
from ichseg.engine.evaluate import evaluate_checkpoint  # noqa: E402
from ichseg.engine.inference import eval_settings  # noqa: E402
from ichseg.engine.methods import train_run  # noqa: E402
from ichseg.utils import atomic_write_json  # noqa: E402

OUT = ROOT / "bench" / "measured" / "transfer_pilot.json"
ARMS = {"plain": [], "randomise": ["data.phantom.randomise={}"],
        "randomise_context1": ["data.phantom.randomise={}", "data.prep.context=1"]}
ITERATIONS = 3000
REALCT_SEED = 1000  # inserts of their own: the evidence pass's realct set uses seed 0
DICE_MARGIN, TIE = 0.03, 0.01


def arm_config(arm: str) -> dict:
    base = load_profile("cpu")
    _, overrides = study_methods(base)
    return resolve_run_config(base, "full", overrides["full"] + ARMS[arm], iterations=ITERATIONS, seed=0)


def prepared_of(run_dir: Path) -> Path:
    return Path(json.loads((run_dir / "run.json").read_text())["data"]["prepared"])


def real_slices(root: Path, context: int) -> Path:
    """The pydicom slices with lesions inserted under ``REALCT_SEED``, prepared at 128² (``context``
    neighbours: a single slice has none, so the prepared channels repeat it)."""
    from ichseg.data import PrepConfig, prepare_dataset
    from ichseg.data.realct import write_realct

    raw = root / f"realct-slices-s{REALCT_SEED}"
    if not (raw / "realct.json").exists():
        write_realct(raw, draws=6, seed=REALCT_SEED, whole_head=False)
    return prepare_dataset("realct", raw, root / "prepared", PrepConfig(size=128, test_fraction=0.15, context=context))


def scores(eval_dir: Path) -> dict:
    m = json.loads((eval_dir / "metrics.json").read_text())["strict"]
    t = pd.read_csv(eval_dir / "slices.csv", keep_default_na=False, na_values=[""])
    pos = t[t.positive == 1]
    out = {"lesion_slice_dice": float(m["positive_slice_dice"]), "lesion_slices": int(len(pos)),
           "per_subtype": {s: float(g.strict_dice.mean()) for s, g in pos.groupby("subtype")}}
    neg = t[t.positive == 0]
    if len(neg):
        out["negative_pred_px_mean"] = float(neg.pred_pixels.mean())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=list(ARMS), help="train and score only these arms, then exit")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "transfer_pilot")
    ap.add_argument("--data-root", type=Path, default=ROOT / "data")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    arms = args.only or list(ARMS)
    results = {}
    for arm in arms:
        cfg = arm_config(arm)
        run_dir = args.out / arm
        train_run(cfg, run_dir, data_root=args.data_root, resume=(run_dir / "train_log.csv").exists(), progress=False)
        ecfg = eval_settings(cfg)
        ckpt = run_dir / "checkpoints" / "best.pt"
        res = {"config_hash": json.loads((run_dir / "run.json").read_text())["run_hash"]}
        context = int(cfg["data"]["prep"].get("context", 0) or 0)
        plain_run = run_dir if arm == "plain" else args.out / "plain"
        sets = {"val_plain": (prepared_of(plain_run) if (plain_run / "run.json").exists() else None, "val"),
                "val_own": (prepared_of(run_dir), "val"),
                "real_slices": (real_slices(args.out / "_real", context), "test")}
        for name, (prepared, split) in sets.items():
            if name == "val_plain" and context:
                continue  # the plain cohort has one channel
            if prepared is None:  # the plain arm has not run yet (--only): the run over every arm scores it
                print(f"{arm}: {name} left for the run over every arm (the plain arm's cohort is not prepared yet)")
                continue
            ev = run_dir / "eval" / name
            if not (ev / "metrics.json").exists():
                evaluate_checkpoint(ckpt, prepared, ev, ecfg, dataset=name, split=split, device="cpu", progress=False)
            res[name] = scores(ev)
        results[arm] = res
        print(arm, json.dumps(res), flush=True)
    if args.only:
        return 0
    plain = results["plain"]["val_plain"]["lesion_slice_dice"]
    ok = [a for a in ARMS if results[a].get("val_plain", results[a]["val_own"])["lesion_slice_dice"] >= plain - DICE_MARGIN]
    best = max(results[a]["real_slices"]["lesion_slice_dice"] for a in ok)
    chosen = next(a for a in ok if results[a]["real_slices"]["lesion_slice_dice"] >= best - TIE)
    rec = {"bench": "transfer_pilot", "iterations": ITERATIONS, "realct_seed": REALCT_SEED, "arms": results,
           "rule": f"highest real-slice lesion Dice among arms within {DICE_MARGIN} of plain on plain validation; "
                   f"ties within {TIE}: the simpler", "chosen": chosen}
    from ichseg.engine.provenance import environment

    rec["environment"] = environment(torch.device("cpu"))
    atomic_write_json(OUT, rec)
    print(f"chosen: {chosen}; wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

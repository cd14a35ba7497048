"""``ichseg predict``'s shipped model against nnU-Net's predictor on the same volumes: seconds a
slice and peak memory on this CPU, and Dice against the truth.

    .venv/bin/python bench/predict_vs_nnunet.py [--nnunet-run results/evidence/runs/nnunet-s0] [--rounds 2]
    .venv/bin/python bench/predict_vs_nnunet.py --stand-in bench/out/nnunet_standin   # timings only

Committed results keep no weights. Where the pass's nnU-Net run is not on disk, ``--stand-in RUN``
times a short training of the same configuration (``ichseg train --profile evidence --method
nnunet --set baselines.nnunet.epochs=1 ...``): only the run length may differ from the committed
run's recorded config (refused otherwise, naming the keys), so the network, its plans and the
predictor's work are the pass's; its masks are not the pass's model's, so the record keeps its
timings and memory and leaves out its Dice on these volumes.

The volumes are ``bench/predict_cpu.py``'s (the README's demo patient, 128² × 31 slices, and a
512² × 120-slice head with a hemorrhage; synthetic, never a test split). Each segmenter runs as a
whole command in a fresh single-threaded process, interleaved with the other so the load of the
shared machine falls on both alike (``_timing.interleave``): ``ichseg predict`` with the shipped
model at its own defaults, and nnU-Net's predictor (``nnUNetPredictor.predict_single_npy_array``,
as the study's nnU-Net evaluation calls it: its final checkpoint, mirroring as the run evaluated) on the same 128²
slices ``ichseg predict`` prepares (the shipped model's ``data.prep``), its probability taken back to
the scan's grid the same way (``volume_from_slices``, threshold 0.5). Only the segmenter differs.
Peak memory is each process's VmHWM at exit.

Beside the timings, from the committed results of the pass the nnU-Net run belongs to: each
method's lesion-slice Dice on the synthetic Instance2022 test split (mean over its seeds) and its
evaluation's seconds a slice (the study's sampler settings, which are not ``predict``'s).

Writes ``bench/measured/predict_vs_nnunet.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleave  # noqa: E402
from predict_cpu import WEIGHTS, make_volumes, run_predict, scores  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NNUNET_RUN = REPO / "results" / "evidence" / "runs" / "nnunet-s0"
OUT = REPO / "bench" / "measured" / "predict_vs_nnunet.json"
HEADLINE = ("full", "medsegdiffv2", "nnunet")  # the rows the record's study table keeps
RUN_LENGTH = ("epochs", "iterations_per_epoch", "val_iterations")  # what a stand-in may change


def nnunet_model_dir(run: Path) -> Path:
    """The trained model folder (``.../nnUNet_results/Dataset*/<trainer>__<plans>__2d``) inside an
    nnU-Net run of the study."""
    found = sorted(p.parent.parent for p in Path(run).glob("**/fold_0/checkpoint_final.pth"))
    if not found:
        raise SystemExit(f"{run}: no trained nnU-Net model (fold_0/checkpoint_final.pth); train the run first")
    return found[0]


def nnunet_segment(scan: Path, model_dir: Path, out: Path, tta: bool = True) -> dict:
    """The child's work: read ``scan`` as ``ichseg predict`` does, prepare its slices with the
    shipped model's settings, predict them with nnU-Net, write ``out/mask.nii.gz`` on the scan's
    grid; returns the seconds of each part."""
    import torch

    from ichseg.data import PrepConfig, preprocess_volume, volume_from_slices
    from ichseg.data.volumes import write_nifti
    from ichseg.engine.checkpoint import load_checkpoint
    from ichseg.engine.predict import load_scan

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    cfg = load_checkpoint(WEIGHTS)["config"]
    vol, _ = load_scan(scan)
    slices = preprocess_volume(vol, PrepConfig.from_dict(dict(cfg["data"].get("prep") or {})))  # (Z, C, H, W)
    t1 = time.perf_counter()
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=tta, perform_everything_on_device=False,
                                device=torch.device("cpu"), verbose=False, verbose_preprocessing=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(model_dir), (0,), "checkpoint_final.pth")
    t2 = time.perf_counter()
    image = np.ascontiguousarray(slices.transpose(1, 0, 2, 3), dtype=np.float32)  # (C, Z, H, W), as nnU-Net reads
    _, prob = predictor.predict_single_npy_array(image, {"spacing": [max(float(vol.spacing[2]), 1.0), 1.0, 1.0]},
                                                 None, None, True)
    t3 = time.perf_counter()
    mask = (volume_from_slices(np.asarray(prob[1], dtype=np.float32), vol, order=1) >= 0.5).astype(np.uint8)
    out.mkdir(parents=True, exist_ok=True)
    write_nifti(out / "mask.nii.gz", mask, vol.original_affine, dtype=np.uint8)
    n = len(slices)
    return {"read_prepare": round(t1 - t0, 3), "load_model": round(t2 - t1, 3), "segment": round(t3 - t2, 3),
            "segment_per_slice": round((t3 - t2) / max(n, 1), 4), "map_and_write": round(time.perf_counter() - t3, 3),
            "slices": n}


def nnunet_tta(run: Path) -> bool:
    """Whether the run's evaluation mirrored (``nnunet.tta`` of its recorded config)."""
    from ichseg.utils.layout import read_run_config

    return bool((read_run_config(run).get("nnunet") or {}).get("tta", True))


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def stand_in_differences(stand_in: Path, run: Path) -> list[str]:
    """The recorded config keys in which ``stand_in`` differs from ``run``, beyond the run length."""
    from ichseg.utils.layout import read_run_config

    a, b = _flat(read_run_config(stand_in)), _flat(read_run_config(run))
    allowed = {f"nnunet.{k}" for k in RUN_LENGTH}
    return sorted(k for k in set(a) | set(b) if k not in allowed and a.get(k) != b.get(k))


def run_nnunet(scan: Path, model_dir: Path, out: Path, tta: bool) -> dict:
    """``nnunet_segment`` in a fresh single-threaded process (nnU-Net's environment as the study
    sets it for its prediction child): wall and CPU seconds, peak RSS (MB)."""
    from ichseg.engine.config import NnunetConfig
    from ichseg.engine.nnunet.process import child_env

    shutil.rmtree(out, ignore_errors=True)
    env = {**child_env({"nnUNet_results": model_dir.parent.parent}, NnunetConfig.from_dict({"threads": 1, "processes": 1})),
           "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", str(scan), str(model_dir), str(out), str(int(tta))],
                          env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"nnU-Net child failed: {(proc.stdout + proc.stderr)[-2000:]}")
    child = json.loads((out / "child.json").read_text())
    return {"wall_s": wall, **child, "load_average_1min": round(os.getloadavg()[0], 2)}


def _child(scan: str, model_dir: str, out: str, tta: str) -> int:
    timings = nnunet_segment(Path(scan), Path(model_dir), Path(out), tta=bool(int(tta)))
    with open("/proc/self/status") as fh:
        hwm = int(next(line for line in fh if line.startswith("VmHWM")).split()[1])
    t = os.times()
    (Path(out) / "child.json").write_text(json.dumps({"timings_s": timings, "peak_rss_mb": hwm / 1024.0,
                                                      "cpu_s": t.user + t.system}))
    return 0


def study_scores(results_dir: Path, dataset: str = "instance2022", methods=HEADLINE) -> dict:
    """Per method of ``methods`` in a committed study folder: lesion-slice Dice on ``dataset``'s test
    split (mean and each seed's) and its evaluations' seconds a slice (median over seeds)."""
    out = {}
    for m in methods:
        rows = []
        for metrics in sorted(Path(results_dir).glob(f"eval/{m}-s*/{dataset}/metrics.json")):
            rec = json.loads(metrics.read_text())
            rows.append((int(metrics.parent.parent.name.rsplit("-s", 1)[1]), rec["strict"]["positive_slice_dice"],
                         rec.get("seconds_per_slice")))
        if rows:
            secs = [s for _, _, s in rows if s is not None]
            out[m] = {"seeds": [s for s, _, _ in rows], "lesion_slice_dice": [d for _, d, _ in rows],
                      "lesion_slice_dice_mean": float(np.mean([d for _, d, _ in rows])),
                      "evaluation_seconds_per_slice_median": float(np.median(secs)) if secs else None}
    return out


def bench_volume(name: str, scan: Path, label: Path, model_dir: Path, tta: bool, work: Path, rounds: int,
                 stand_in: bool = False) -> dict:
    runs: dict[str, list[dict]] = {"ichseg": [], "nnunet": []}
    cands = {"ichseg": lambda: runs["ichseg"].append(run_predict(REPO, scan, work / f"{name}-ichseg")),
             "nnunet": lambda: runs["nnunet"].append(run_nnunet(scan, model_dir, work / f"{name}-nnunet", tta))}
    timing = interleave(cands, rounds=rounds, warmup=1)
    out = {}
    for k, rs in runs.items():
        rs = rs[1:]  # the untimed first run compiles the modules' bytecode
        row = {"wall_s_median": round(timing[k]["median"], 2), "wall_s_all": [round(x, 2) for x in timing[k]["all"]],
               "peak_rss_mb": round(max(r["peak_rss_mb"] for r in rs), 1),
               "process_cpu_s_all": [round(r["cpu_s"], 2) for r in rs], **scores(work / f"{name}-{k}", label)}
        if k == "ichseg":
            summary = json.loads((work / f"{name}-ichseg" / "summary.json").read_text())
            row.update(timings_s=summary.get("timings_s"), settings=summary["evaluate"],
                       segment_s_per_slice=(summary.get("timings_s") or {}).get("segment_per_slice"))
        else:
            row.update(timings_s=rs[-1]["timings_s"], segment_s_per_slice=rs[-1]["timings_s"]["segment_per_slice"],
                       settings={"mirroring": tta, "checkpoint": "checkpoint_final.pth", "tile_step_size": 0.5})
            if stand_in:  # not the pass's model: its masks say nothing of the pass's nnU-Net
                row.update({k: None for k in ("lesion_slice_dice", "dice_3d")})
        out[k] = row
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return _child(*argv[1:5])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nnunet-run", type=Path, default=NNUNET_RUN, help="an nnU-Net run of the study (trained)")
    p.add_argument("--stand-in", type=Path, default=None,
                   help="a short training of --nnunet-run's configuration to time instead (see the module doc)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved timed rounds per volume")
    p.add_argument("--volumes", nargs="*", default=None, help="names of the volumes to run (default: all)")
    p.add_argument("--machine-note", default="", help="how busy the machine was (other jobs), for the record")
    p.add_argument("--work", type=Path, default=Path("/tmp/ichseg-bench-vs-nnunet"))
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    import torch

    from ichseg.engine.provenance import environment
    from ichseg.engine.runlog import read_run_info
    from ichseg.utils import atomic_write_json

    timed = args.stand_in or args.nnunet_run
    if args.stand_in is not None and (diff := stand_in_differences(args.stand_in, args.nnunet_run)):
        raise SystemExit(f"{args.stand_in}: not a stand-in for {args.nnunet_run}: its config differs in {', '.join(diff)}")
    model_dir, tta = nnunet_model_dir(timed), nnunet_tta(args.nnunet_run)
    args.work.mkdir(parents=True, exist_ok=True)
    results_dir = args.nnunet_run.resolve().parent.parent
    root = results_dir.parents[1]  # the checkout the run lives in: this one, or a pass's pinned worktree
    torch.set_num_threads(1)  # the record names the threads each timed process used
    record = {"bench": "predict_vs_nnunet", "environment": environment(torch.device("cpu")),
              "machine": "2-core shared CPU, 1 thread per process" + (f"; {args.machine_note}" if args.machine_note else ""),
              "checkpoint": str(WEIGHTS.relative_to(REPO)),
              "nnunet_model": (str(model_dir.resolve().relative_to(root)) if args.stand_in is None else
                               {"stand_in_for": str(args.nnunet_run.resolve().relative_to(root)), "iterations": read_run_info(args.stand_in).get("iterations"),
                                "why": "the pass's weights are not kept in git; the same network and plans trained "
                                       "briefly: timings and memory only, no Dice on these volumes"}),
              "study": {"results": str(results_dir.relative_to(root)), "dataset": "instance2022", "split": "test",
                        "methods": study_scores(results_dir)},
              "volumes": {}}
    for name, (scan, label) in make_volumes(args.work).items():
        if args.volumes and name not in args.volumes:
            continue
        record["volumes"][name] = bench_volume(name, scan, label, model_dir, tta, args.work, args.rounds,
                                               stand_in=args.stand_in is not None)
        print(name, json.dumps({k: (v["segment_s_per_slice"], v["peak_rss_mb"], v["lesion_slice_dice"])
                                for k, v in record["volumes"][name].items()}), flush=True)
    atomic_write_json(args.out, record)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Speed and peak memory of ``ichseg predict`` on this CPU, before and after a change, on the same volumes.

    .venv/bin/python bench/predict_cpu.py --baseline-src DIR [--rounds 2] [--out bench/measured/predict_cpu.json]

Two synthetic head CTs (never the study's test split): the README's demo patient (128², 31 slices,
``ichseg phantom --seed 9000``) and a 512², 120-slice volume with a hemorrhage (``make_volume``,
seed 11), both with their true masks. Each candidate is the whole command, ``ichseg predict`` in a
fresh single-threaded process (import, model load, reading, sampling, writing), with the committed
model (``results/cpu/model/full.pt``) at its profile's settings: "before" runs the source tree
``--baseline-src`` (e.g. ``git archive <commit> | tar -x -C DIR``), "after" this one. Candidates run
interleaved (``_timing.interleave``: before, after, before, after, ...) so the load other users put
on the shared machine hits both alike; the record keeps every run and the ratio of the medians.
Peak memory is the process's maximum resident set (VmHWM, read by the process itself at exit); CPU seconds
(the process's, and the sampling's per slice where the code records it) are kept beside the wall clock,
which other jobs on the shared machine inflate far more, with the load average after each run. The masks of both are scored
against the truth on the lesion slices (mean 2D Dice) and in 3D, and against each other.

nnU-Net's predictor is timed beside it only where a trained nnU-Net model is committed; the
``cpu`` profile commits its run's log and config but not its checkpoint, which the record says.
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

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleave  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "results" / "cpu" / "model" / "full.pt"
NNUNET_RUN = REPO / "results" / "cpu" / "runs" / "nnunet-s0"


def make_volumes(root: Path) -> dict[str, tuple[Path, Path]]:
    """name -> (scan, true mask), written once into ``root``."""
    from ichseg.data.phantom import DOMAINS, make_volume, write_phantom
    from ichseg.data.volumes import write_nifti

    small = root / "demo_128"
    if not small.exists():
        write_phantom(small, "instance2022", cases=1, seed=9000, in_plane=128)
    big = root / "ct_512x120"
    if not (big / "label.nii.gz").exists():
        big.mkdir(parents=True, exist_ok=True)
        v = make_volume(np.random.default_rng(11), DOMAINS["instance2022"], 512, 120, positive=True)
        write_nifti(big / "ct.nii.gz", np.rint(v.hu), v.affine)
        write_nifti(big / "label.nii.gz", (v.labels > 0).astype(np.uint8), v.affine, dtype=np.uint8)
    return {"128x128x31": (small / "train_2" / "data" / "001.nii.gz", small / "train_2" / "label" / "001.nii.gz"),
            "512x512x120": (big / "ct.nii.gz", big / "label.nii.gz")}


#: the child runs the CLI and leaves its peak resident memory (VmHWM: this process's own, unlike
#: wait4's ru_maxrss, which Linux carries over from the parent across fork and exec)
_CHILD = """import os, sys
hwm_file = sys.argv.pop(1)
from ichseg.cli import main
try:
    rc = main(sys.argv[1:])
finally:
    with open('/proc/self/status') as fh:
        hwm = next(l for l in fh if l.startswith('VmHWM')).split()[1]
    t = os.times()
    open(hwm_file, 'w').write(f"{hwm} {t.user + t.system}")
sys.exit(rc)
"""


def run_predict(src: Path, scan: Path, out: Path) -> dict:
    """One ``ichseg predict`` in a fresh single-threaded process: wall seconds, peak RSS (MB), what it printed."""
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: modules compiled once, not at every start
    log, hwm = out.with_name(out.name + ".log"), out.with_name(out.name + ".hwm")
    t0 = time.perf_counter()
    with open(log, "wb") as fh:
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(hwm), "predict", str(scan), "--checkpoint",
                               str(WEIGHTS), "--out", str(out), "--no-progress"], env=env, cwd=src, stdout=fh,
                              stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    text = log.read_text().strip()
    if proc.returncode != 0:
        raise RuntimeError(f"{src}: predict failed: {text[-2000:]}")
    kb, cpu = hwm.read_text().split()
    return {"wall_s": wall, "cpu_s": float(cpu), "peak_rss_mb": int(kb) / 1024.0, "stdout": text.splitlines()[-1],
            "load_average_1min": round(os.getloadavg()[0], 2)}


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int((a & b).sum()) / s


def scores(out: Path, label: Path, other: Path | None = None) -> dict:
    pred = np.asarray(nib.load(str(out / "mask.nii.gz")).dataobj) > 0
    truth = np.asarray(nib.load(str(label)).dataobj) > 0
    lesion = np.flatnonzero(truth.any(axis=(0, 1)))
    row = {"lesion_slices": int(lesion.size),
           "lesion_slice_dice": float(np.mean([dice(pred[..., k], truth[..., k]) for k in lesion])),
           "dice_3d": dice(pred, truth)}
    if other is not None:
        ref = np.asarray(nib.load(str(other / "mask.nii.gz")).dataobj) > 0
        row["dice_vs_before"] = dice(pred, ref)
        row["voxels_differing"] = int((pred ^ ref).sum())
    return row


def bench_volume(name: str, scan: Path, label: Path, srcs: dict[str, Path], work: Path, rounds: int,
                 warmup: int = 0) -> dict:
    runs: dict[str, list[dict]] = {k: [] for k in srcs}
    cands = {k: (lambda k=k: runs[k].append(run_predict(srcs[k], scan, work / f"{name}-{k}"))) for k in srcs}
    timing = interleave(cands, rounds=rounds, warmup=warmup)
    for k in runs:
        runs[k] = runs[k][warmup:]  # the untimed first run compiles the modules' bytecode
    n = nib.load(str(scan)).shape[2]
    out = {"slices": n, "candidates": {}}
    for k in srcs:
        summary = json.loads((work / f"{name}-{k}" / "summary.json").read_text())
        rss = max(r["peak_rss_mb"] for r in runs[k])
        t = summary.get("timings_s") or {}
        out["candidates"][k] = {
            "wall_s_median": round(timing[k]["median"], 2), "wall_s_all": [round(x, 2) for x in timing[k]["all"]],
            "wall_s_per_slice": round(timing[k]["median"] / n, 4),
            "segment_s_per_slice": t.get("segment_per_slice"), "timings_s": t,
            "segment_cpu_s_per_slice": t.get("segment_cpu_per_slice"),
            "process_cpu_s_all": [round(r["cpu_s"], 2) for r in runs[k]],
            "load_average_1min_after_each_run": [r["load_average_1min"] for r in runs[k]],
            "peak_rss_mb": round(rss, 1), "peak_rss_mb_all": [round(r["peak_rss_mb"], 1) for r in runs[k]], "settings": summary["evaluate"], "line": runs[k][-1]["stdout"],
            "hemorrhage_volume_ml": summary["hemorrhage_volume_ml"],
            **scores(work / f"{name}-{k}", label, None if k == "before" else work / f"{name}-before"),
        }
    if {"before", "after"} <= set(srcs):
        cpu = {k: sorted(r["cpu_s"] for r in runs[k]) for k in ("before", "after")}
        out["ratio_after_over_before"] = {
            "wall_s_median": round(timing["after"]["median"] / timing["before"]["median"], 3),
            "process_cpu_s_min": round(cpu["after"][0] / cpu["before"][0], 3),
            "peak_rss": round(out["candidates"]["after"]["peak_rss_mb"] / out["candidates"]["before"]["peak_rss_mb"], 3)}
    truth = np.asarray(nib.load(str(label)).dataobj) > 0
    out["true_volume_ml"] = round(float(truth.sum()) * float(np.prod(nib.load(str(label)).header.get_zooms()[:3])) / 1000, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline-src", type=Path, required=True, help="source tree of the code to compare against")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds on the 128² volume")
    p.add_argument("--rounds-512", type=int, default=1, help="interleaved rounds on the 512² volume (a minute a run)")
    p.add_argument("--volumes", nargs="*", default=None, help="names of the volumes to run (default: all)")
    p.add_argument("--baseline-note", default="", help="what the baseline tree is (e.g. its commit), for the record")
    p.add_argument("--machine-note", default="", help="how busy the machine was (other jobs), for the record")
    p.add_argument("--work", type=Path, default=Path("/tmp/ichseg-bench-predict"))
    p.add_argument("--out", type=Path, default=REPO / "bench" / "measured" / "predict_cpu.json")
    args = p.parse_args(argv)
    from ichseg.engine.provenance import environment
    from ichseg.utils import atomic_write_json
    import torch

    args.work.mkdir(parents=True, exist_ok=True)
    vols = make_volumes(args.work)
    srcs = {"before": args.baseline_src.resolve(), "after": REPO}
    record = {
        "bench": "predict_cpu", "environment": environment(torch.device("cpu")),
        "machine": "2-core shared CPU (other users' load varies; compare the ratios), 1 thread per run"
                   + (f"; {args.machine_note}" if args.machine_note else ""),
        "load_average_1_5_15min_at_start": [round(x, 2) for x in os.getloadavg()],
        "checkpoint": str(WEIGHTS.relative_to(REPO)), "baseline": args.baseline_note,
        "nnunet": ("skipped: no trained nnU-Net model is committed (results/cpu/runs/nnunet-s0 holds its config and "
                   "training log only)" if not any(NNUNET_RUN.glob("**/*.pth")) else "present but not timed"),
        "volumes": {},
    }
    for name, (scan, label) in vols.items():
        if args.volumes and name not in args.volumes:
            continue
        rounds = args.rounds_512 if name.startswith("512") else args.rounds
        record["volumes"][name] = bench_volume(name, scan, label, srcs, args.work, rounds, warmup=int(not record["volumes"]))
        record["volumes"][name]["rounds"] = rounds
        print(name, json.dumps(record["volumes"][name].get("ratio_after_over_before")), flush=True)
    atomic_write_json(args.out, record)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

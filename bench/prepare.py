"""Benchmark: Instance2022-sized phantom volumes prepared per second.

Goal: 100 volumes of 512 x 512 x ~30 (the real INSTANCE 2022 size)
prepared in <= 60 s on this 2-core machine. The phantom folder holds ``--unique`` generated
volumes copied under new names up to ``--volumes`` (generation is not what is measured);
preparation then reads, hashes, checks, reorients, windows, resizes to 256 and writes every one.

    .venv/bin/python bench/prepare.py [--volumes 100] [--workers 1 2]

It also times the synthetic head CT generator itself (``make_volume``, one core, after the
once-per-process atlas load, which is timed separately): per volume at the real size (512 x 512,
30 slices; goal <= 5 s) and at the smoke profile's size (128 x 128, 16-20 slices).
``--generation-only`` skips the preparation benchmark.

Prints a table and writes bench/out/prepare.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ichseg.data import PrepConfig, prepare_dataset  # noqa: E402
from ichseg.data.phantom import write_phantom  # noqa: E402


def make_raw(raw: Path, volumes: int, unique: int, in_plane: int, slices: int) -> float:
    t0 = time.perf_counter()
    write_phantom(raw, "instance2022", cases=unique, seed=0, in_plane=in_plane, slices=slices)
    data, label = raw / "train_2" / "data", raw / "train_2" / "label"
    for i in range(unique, volumes):
        src = f"{i % unique + 1:03d}.nii.gz"
        shutil.copyfile(data / src, data / f"{i + 1:03d}.nii.gz")
        shutil.copyfile(label / src, label / f"{i + 1:03d}.nii.gz")
    return time.perf_counter() - t0


def time_generation(sizes=((512, 30), (128, 18)), repeats: int = 3) -> list[dict]:
    """CPU and wall seconds per generated volume (the atlas load timed on its own, first)."""
    import numpy as np

    from ichseg.data.atlas import load_atlas
    from ichseg.data.phantom import DOMAINS, _level, make_volume

    rows = []
    c0, w0 = time.process_time(), time.perf_counter()
    load_atlas()
    rows.append({"what": "atlas load + derived maps (once per process)", "cpu_s": round(time.process_time() - c0, 2),
                 "wall_s": round(time.perf_counter() - w0, 2)})
    for in_plane, slices in sizes:
        c0, w0 = time.process_time(), time.perf_counter()
        _level(1 if DOMAINS["instance2022"].fov_mm / in_plane < 1.5 else 2)  # the level grid, also once per process
        make_volume(np.random.default_rng(99), DOMAINS["instance2022"], in_plane, slices)
        first_cpu = time.process_time() - c0
        cpu, wall = [], []
        for r in range(repeats):
            c0, w0 = time.process_time(), time.perf_counter()
            make_volume(np.random.default_rng(r), DOMAINS["instance2022"], in_plane, slices)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        rows.append({"what": f"volume {in_plane}x{in_plane}x{slices}", "first_cpu_s": round(first_cpu, 2),
                     "cpu_s": round(sum(cpu) / repeats, 2), "wall_s": round(sum(wall) / repeats, 2),
                     "repeats": repeats})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--volumes", type=int, default=100)
    ap.add_argument("--unique", type=int, default=10, help="distinct phantoms generated (copied up to --volumes)")
    ap.add_argument("--in-plane", type=int, default=512)
    ap.add_argument("--slices", type=int, default=30)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "prepare.json")
    ap.add_argument("--generation-only", action="store_true", help="only time the generator")
    args = ap.parse_args()

    generation = time_generation()
    print("synthetic head CT generation (one core):")
    for g in generation:
        print(f"  {g['what']:<48} cpu {g['cpu_s']:6.2f} s   wall {g['wall_s']:6.2f} s")
    if args.generation_only:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"bench": "prepare", "generation": generation}, indent=2) + "\n")
        return 0

    rows = []
    with tempfile.TemporaryDirectory(prefix="ichseg-bench-") as tmp:
        raw = Path(tmp) / "raw"
        gen_s = make_raw(raw, args.volumes, min(args.unique, args.volumes), args.in_plane, args.slices)
        raw_mb = sum(p.stat().st_size for p in raw.rglob("*.nii.gz")) / 1e6
        for workers in args.workers:
            out = Path(tmp) / f"out{workers}"
            t0 = time.perf_counter()
            prepared = prepare_dataset("instance2022", raw, out, PrepConfig(size=args.size), workers=workers)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            prepare_dataset("instance2022", raw, out, PrepConfig(size=args.size), workers=workers)
            rerun = time.perf_counter() - t0
            manifest = json.loads((prepared / "manifest.json").read_text())
            rows.append({
                "workers": workers, "volumes": args.volumes, "seconds": round(first, 2),
                "volumes_per_s": round(args.volumes / first, 2),
                "slices_per_s": round(manifest["counts"]["source_slices"] / first, 1),
                "rerun_noop_s": round(rerun, 3), "goal_s": 60.0, "meets_goal": first * 100 / args.volumes <= 60.0,
            })
    result = {
        "bench": "prepare", "dataset": "instance2022 phantom", "in_plane": args.in_plane, "slices": args.slices,
        "size": args.size, "raw_mb": round(raw_mb, 1), "generation_s": round(gen_s, 1),
        "cpu_count": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(),
        "results": rows, "generation": generation,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"phantom: {args.volumes} volumes {args.in_plane}x{args.in_plane}x{args.slices} "
          f"({raw_mb:.0f} MB .nii.gz, {args.unique} distinct, generated in {gen_s:.1f} s); {os.cpu_count()} CPUs")
    print(f"{'workers':>7} {'seconds':>8} {'vol/s':>7} {'slices/s':>9} {'rerun s':>8}  goal (100 vol <= 60 s)")
    for r in rows:
        print(f"{r['workers']:>7} {r['seconds']:>8.2f} {r['volumes_per_s']:>7.2f} {r['slices_per_s']:>9.1f} "
              f"{r['rerun_noop_s']:>8.3f}  {'met' if r['meets_goal'] else 'NOT met'}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where the shipped model marks blood on a normal real head: the untouched InVesalius head (test
only, ``ichseg.data.realvolume.clean_volume``) through exactly what ``ichseg predict`` does
(``bench/real_anatomy.py``'s path) with everything the model marks kept, the false-positive volume
per axial slice by height, the share of it outside the cranial cavity, what ``ichseg predict``'s
inside-the-skull rule (``ichseg.data.cavity``, on by default) keeps of it, and the slices with the
most of it drawn. It describes the test head for the book's readers; nothing is
fitted, tuned or chosen on it.

    .venv/bin/python bench/real_head_negatives.py [--checkpoint results/cpu/model/full.pt] [--threads 1]

Writes bench/measured/real_head_negatives.json and book/images/real_head_negatives.png.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from real_anatomy import _volume, predict_probability  # noqa: E402

OUT = ROOT / "bench" / "measured" / "real_head_negatives.json"
FIGURE = ROOT / "book" / "images" / "real_head_negatives.png"
CAVITY_MARGIN_MM = 3.0
THIRDS = ("lower third (skull base)", "middle third", "upper third (vertex)")


def per_slice(pred: np.ndarray, voxel_ml: float, slice_mm: float, kept: np.ndarray | None = None) -> list[dict]:
    """False-positive mL per axial slice (axis 2, inferior first) with its height above the first;
    with ``kept`` (what ``ichseg predict`` keeps of ``pred``), that too (``kept_ml``)."""
    rows = [{"slice": k, "height_mm": round(k * slice_mm, 1), "fp_ml": float(pred[:, :, k].sum() * voxel_ml)}
            for k in range(pred.shape[2])]
    if kept is not None:
        for k, r in enumerate(rows):
            r["kept_ml"] = float(kept[:, :, k].sum() * voxel_ml)
    return rows


def by_third(rows: list[dict], key: str = "fp_ml") -> dict[str, float]:
    """The mL (``key`` of each row) in the lower, middle and upper third of the head's slices."""
    parts = np.array_split(np.array([r[key] for r in rows]), 3)
    return {name: float(p.sum()) for name, p in zip(THIRDS, parts)}


def outside_share(pred: np.ndarray, inside: np.ndarray) -> float:
    """The share of the marked voxels outside ``inside`` (0 when nothing is marked)."""
    n = int(pred.sum())
    return float((pred & ~inside).sum() / n) if n else 0.0


def cranial_cavity(head, margin_mm: float = CAVITY_MARGIN_MM) -> np.ndarray:
    """The head's cranial cavity (``realvolume.cavity``, brain-like HU inside the skull) grown by
    ``margin_mm`` in plane, so an extra-axial rim against the inner table counts as inside, on the
    4.5 mm slices the model sees (a thick slice is inside where most of it is)."""
    from scipy import ndimage

    from ichseg.data import realvolume

    mm = float(head.spacing[0])
    grown = ndimage.binary_dilation(realvolume.cavity(head), structure=np.ones((3, 3, 1), bool),
                                    iterations=max(1, round(margin_mm / mm)))
    return realvolume.thick(grown.astype(np.float32)) >= 0.5


def figure(hu: np.ndarray, pred: np.ndarray, inside: np.ndarray, rule: np.ndarray, rows: list[dict], shown: int = 4) -> bytes:
    """Left: false-positive mL per slice by height; right: the ``shown`` slices with the most, at the
    brain window, anterior up, the predicted mask outlined in red, the cranial cavity in cyan and the
    boundary of ``ichseg predict``'s inside-the-skull rule (``rule``) dashed in yellow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    worst = sorted(sorted(rows, key=lambda r: -r["fp_ml"])[:shown], key=lambda r: r["slice"])
    fig = plt.figure(figsize=(10, 3.4))
    grid = fig.add_gridspec(1, shown + 2)
    ax = fig.add_subplot(grid[0, :2])
    ax.barh([r["height_mm"] for r in rows], [r["fp_ml"] for r in rows], height=3.6, color="tab:red")
    ax.set_xlabel("marked as blood (mL)")
    ax.set_ylabel("height above the first slice (mm)")
    ax.set_title("normal real head, per slice", fontsize=10)
    for i, r in enumerate(worst):
        a = fig.add_subplot(grid[0, 2 + i])
        k = r["slice"]
        a.imshow(np.rot90(hu[:, :, k]), cmap="gray", vmin=0, vmax=80)  # brain window 40/80
        if inside[:, :, k].any():
            a.contour(np.rot90(inside[:, :, k]), [0.5], colors="cyan", linewidths=0.6)
        if rule[:, :, k].any() and not rule[:, :, k].all():
            a.contour(np.rot90(rule[:, :, k]), [0.5], colors="yellow", linewidths=0.6, linestyles="dashed")
        if pred[:, :, k].any():
            a.contour(np.rot90(pred[:, :, k]), [0.5], colors="red", linewidths=0.8)
        a.set_title(f"{r['height_mm']:.0f} mm: {r['fp_ml']:.1f} mL", fontsize=9)
        a.axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=str(ROOT / "results" / "cpu" / "model" / "full.pt"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--threshold", type=float, default=0.5)
    args = ap.parse_args(argv)
    import torch

    from ichseg.data import invesalius, realvolume
    from ichseg.data.slices import from_axial_slices
    from ichseg.engine.predict import Predictor, inside_skull_of
    from ichseg.engine.provenance import environment
    from ichseg.utils import atomic_write_bytes, atomic_write_json

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    pr = Predictor.load(args.checkpoint, {}, device="cpu", progress=False, inside_skull=False)  # the model's own marks
    head = invesalius.read_cranium()
    hu, affine = realvolume.clean_volume(head)
    vol = _volume(hu, affine, "clean")
    pred = predict_probability(pr, vol) >= args.threshold
    rule = from_axial_slices(inside_skull_of(vol))
    kept = pred & rule  # what `ichseg predict` keeps by default
    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    rows = per_slice(pred, voxel_ml, abs(float(affine[2, 2])), kept)
    inside = cranial_cavity(head)
    ckpt = Path(args.checkpoint).resolve()
    record = {"bench": "real_head_negatives", "checkpoint": str(ckpt.relative_to(ROOT) if ckpt.is_relative_to(ROOT) else ckpt),
              "what": "false-positive mL per axial slice of the untouched real head (test only, one head)",
              "threshold": args.threshold, "evaluate": dict(pr.ecfg.__dict__), "fp_ml": float(pred.sum() * voxel_ml),
              "by_third": by_third(rows), "cavity_margin_mm": CAVITY_MARGIN_MM,
              "outside_cavity_share": outside_share(pred, inside),
              "predict_keeps_ml": float(kept.sum() * voxel_ml), "predict_keeps_by_third": by_third(rows, "kept_ml"),
              "slices": rows,
              "environment": {**environment(torch.device("cpu")), "threads": args.threads,
                              "seconds": round(time.perf_counter() - t0, 1)}}
    atomic_write_json(OUT, record)
    atomic_write_bytes(FIGURE, figure(hu, pred, inside, rule, rows))
    print(f"{record['fp_ml']:.2f} mL marked, {100 * record['outside_cavity_share']:.0f}% outside the cranial cavity, "
          f"{record['predict_keeps_ml']:.2f} mL kept by predict's inside-the-skull rule; by third: " + ", ".join(f"{k} {v:.2f}" for k, v in record["by_third"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

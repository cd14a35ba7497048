"""``ichseg report compact``: make a profile's results small enough to commit, losing nothing shown.

An evaluation writes its per-slice table with full float precision and the arrays of the
qualitative figure (Fig. 3) as float32. At 128² one evaluation's ``qualitative.npz`` is about
300 kB and a pass holds fifty of them. Compacting stores the figure's maps as float16 on a grid of
1/2048 (their values are probabilities, uncertainties and windowed intensities in [0, 1], drawn at
8 bits; the grid keeps them to 2.5e-4 and lets the compression see their repeats) and the ground
truth as uint8, and stores ``slices.csv`` with six significant digits (every table and claim of the
book rounds far coarser) as ``slices.csv.gz`` (the per-slice tables of a pass were a third of its
committed bytes; gzip keeps a sixth; ``collect.slice_scores_path`` reads either). Runs the book does
not draw in Fig. 3 keep their arrays too. The executed notebooks' figures (PNG) are re-encoded with a
palette of 256 colours, which matplotlib's flat colours, grey CT windows and colour maps fit (about
half the bytes at 128²); a figure is replaced only when that saves a tenth. A later seed's
evaluation keeps its scores and drops its pictures, and every evaluation's notebook keeps its text
and drops its figures (~0.3 MB each at 128²): the book draws them from the first seed's arrays
(Fig. 3, the viewer, the gallery). The viewer's whole test volumes (``volume.npz``) are kept for the first seed of each
Table 1 model only, the ones the book's viewer shows, with their overlays on the viewer's 16 steps.
``compact_evaluation`` does all of it to one evaluation folder (as a running pass commits it).
Idempotent; every file is replaced atomically. Stage stamps do not hash outputs, so compacted
results stay consistent.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..utils import atomic_write_bytes, atomic_write_text
from ..utils.layout import QUALITATIVE, SLICE_SCORES, VIEWER_VOLUME, WORST
from .collect import SLICE_SCORES_GZ, load_study, slice_scores_path

SIGNIFICANT = "%.6g"
GRID = 2048  # figure maps are rounded to multiples of 1/GRID (within 2.5e-4; they are drawn at 8 bits)


def prune_viewer_volumes(eval_dir: Path, method: str) -> None:
    """Keep an evaluation's ``volume.npz`` only where the book's viewer shows it: a Table 1 model's
    (a pass evaluates every method on every dataset; a later seed's goes with ``prune_later_seeds``)."""
    from .paper import TABLE1_ORDER

    if method not in TABLE1_ORDER:
        for f in Path(eval_dir).glob(f"*/{VIEWER_VOLUME}"):
            f.unlink()


def prune_later_seeds(eval_dir: Path, seed: int, first: int = 0) -> None:
    """Fig. 3, the gallery and the viewer show each model's first seed only: a later seed's
    evaluation keeps its scores (``metrics.json``, the per-slice table) and drops its pictures."""
    if int(seed) != int(first):
        for name in (QUALITATIVE, WORST, VIEWER_VOLUME):
            for f in Path(eval_dir).glob(f"*/{name}"):
                f.unlink()


#: what an evaluation notebook shows where its figures were
FIGURE_DROPPED = ("[figure not kept: an evaluation's pictures are in the book, drawn from its first seed's arrays "
                  "(qualitative.npz, worst.npz, volume.npz): Fig. 3 of the results page, the slice viewer and the "
                  "gallery; its scores are in metrics.json and the per-slice table]")


def _rewrite_outputs(path: Path, change) -> None:
    """Rewrite one executed notebook where ``change(output)`` altered any cell output in place
    (it returns whether it did); untouched otherwise."""
    nb = json.loads(path.read_text())
    changed = [change(out) for cell in nb.get("cells", []) for out in cell.get("outputs", [])]
    if any(changed):
        atomic_write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def _drop_figure(out: dict) -> bool:
    """An image output replaced by ``FIGURE_DROPPED``; so is the note a figure dropped earlier left,
    when its words have changed since."""
    data = out.get("data", {})
    earlier = str(data.get("text/plain", "")).startswith(FIGURE_DROPPED[:len("[figure not kept:")])
    if not any(k.startswith("image/") for k in data) and not (earlier and data["text/plain"] != FIGURE_DROPPED):
        return False
    out["data"] = {"text/plain": FIGURE_DROPPED}
    out.get("metadata", {}).clear()
    return True


def drop_notebook_figures(path: Path) -> None:
    """Rewrite one executed notebook with each image output replaced by ``FIGURE_DROPPED`` (text
    outputs kept): an evaluation's notebook, whose pictures the book draws elsewhere."""
    _rewrite_outputs(path, _drop_figure)


def evaluation_notebooks(results_dir: Path) -> list[Path]:
    """The executed notebooks of a study's evaluations (from the stage stamps, which name each
    stage's notebook and kind)."""
    out = []
    for stamp in sorted((Path(results_dir) / "stamps").glob("*.json")):
        rec = json.loads(stamp.read_text())
        if rec.get("kind") == "evaluate" and rec.get("notebook"):
            nb = Path(results_dir) / "notebooks" / Path(rec["notebook"]).name
            if nb.is_file():
                out.append(nb)
    return out


def compact_qualitative(path: Path) -> None:
    """Rewrite one ``qualitative.npz``: floating maps as float16, the mask as uint8, rows as int32."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    out = {}
    for k, a in arrays.items():
        if k == "mask":
            out[k] = a.astype(np.uint8)
        elif k == "rows":
            out[k] = a.astype(np.int32)
        elif np.issubdtype(a.dtype, np.floating):
            out[k] = (np.round(a.astype(np.float32) * GRID) / GRID).astype(np.float16)
        else:
            out[k] = a
    buf = io.BytesIO()
    np.savez_compressed(buf, **out)
    atomic_write_bytes(path, buf.getvalue())


def compact_volume(path: Path) -> None:
    """Rewrite one ``volume.npz`` with its overlays (probability, uncertainty) on the viewer's own
    ``OVERLAY_LEVELS`` steps, which it rounds them to when it draws them: the same picture, a
    third of the bytes. The CT and the ground truth stay as they are."""
    from ..utils.images import to_u8
    from .viewer import OVERLAY_LEVELS

    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    for k in ("probability", "uncertainty"):
        arrays[k] = to_u8(np.round(arrays[k].astype(np.float32) / 255 * OVERLAY_LEVELS) / OVERLAY_LEVELS)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def compact_evaluation(eval_dir: Path, method: str, seed: int, first: int = 0) -> list[Path]:
    """One evaluation folder as it is committed: a later seed's pictures dropped
    (``prune_later_seeds``), the viewer's volume kept for a Table 1 model only, and what is left
    compacted (figure arrays, viewer volume, per-slice table); returns its files."""
    prune_later_seeds(eval_dir, seed, first)
    prune_viewer_volumes(eval_dir, method)
    for ds in sorted(d for d in Path(eval_dir).iterdir() if d.is_dir()):
        if (ds / QUALITATIVE).is_file():
            compact_qualitative(ds / QUALITATIVE)
        if (ds / VIEWER_VOLUME).is_file():
            compact_volume(ds / VIEWER_VOLUME)
        if slice_scores_path(ds).is_file():
            compact_slices(slice_scores_path(ds))
    return sorted(f for f in Path(eval_dir).rglob("*") if f.is_file())


def compact_slices(path: Path) -> Path:
    """Store one per-slice table (``slices.csv``, or its ``.gz`` again) as ``slices.csv.gz`` with
    ``SIGNIFICANT`` digits for its floating columns, then remove the plain file; returns the new path.
    The gzip header carries no time, so the same table gives the same bytes."""
    table = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"patient": str})
    for col in table.select_dtypes("float").columns:  # counts read back as float beside empty cells stay whole
        values = table[col].dropna()
        if len(values) and (values % 1 == 0).all():
            table[col] = table[col].astype("Int64")
    out = path.parent / SLICE_SCORES_GZ
    text = table.to_csv(index=False, float_format=SIGNIFICANT).encode("utf-8")
    atomic_write_bytes(out, gzip.compress(text, compresslevel=9, mtime=0))
    (path.parent / SLICE_SCORES).unlink(missing_ok=True)
    return out


def compact_png(data: bytes, keep: float = 0.9) -> bytes:
    """One PNG with a 256-colour palette (no dithering), or unchanged unless that is below ``keep``
    of its size; a figure with any transparent pixel stays as it is."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        if "A" in im.getbands() and im.getchannel("A").getextrema()[0] < 255:
            return data
        paletted = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    paletted.save(buf, "PNG", optimize=True)
    return buf.getvalue() if len(buf.getvalue()) < keep * len(data) else data


def _compact_figure(out: dict) -> bool:
    png = out.get("data", {}).get("image/png")
    if not isinstance(png, str):
        return False
    raw = base64.b64decode(png)
    new = compact_png(raw)
    if new is raw:
        return False
    out["data"]["image/png"] = base64.b64encode(new).decode("ascii")
    return True


def compact_notebook(path: Path) -> None:
    """Rewrite one executed notebook with its PNG outputs through ``compact_png``."""
    _rewrite_outputs(path, _compact_figure)


def compact_results(results_dir: str | Path) -> dict[str, int]:
    """Compact every evaluation and executed notebook of a consistent study folder; returns the
    number of files and their size in bytes before and after (``before``, ``after``)."""
    study = load_study(results_dir)  # refuses stale or incomplete results: compact what the book shows
    notebooks = sorted(Path(results_dir).glob("*.ipynb")) + sorted((Path(results_dir) / "notebooks").glob("*.ipynb"))
    evaluations = [f for run in study.runs for f in run["eval_dir"].rglob("*") if f.is_file()]
    before = sum(f.stat().st_size for f in evaluations + notebooks)
    for nb in evaluation_notebooks(Path(results_dir)):
        drop_notebook_figures(nb)
    for nb in notebooks:
        compact_notebook(nb)
    evaluations = [f for run in study.runs for f in compact_evaluation(run["eval_dir"], run["method"], run["seed"], study.seeds[0])]
    files = evaluations + notebooks
    return {"files": len(files), "before": before, "after": sum(f.stat().st_size for f in files)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", type=Path, help="a profile's study folder, e.g. results/cpu")


def run(args: argparse.Namespace) -> int:
    got = compact_results(args.results)
    print(f"report compact: {got['files']} files of {args.results}, {got['before'] / 1e6:.1f} MB -> {got['after'] / 1e6:.1f} MB")
    return 0


__all__ = ["FIGURE_DROPPED", "compact_evaluation", "compact_notebook", "compact_png", "compact_qualitative", "compact_results",
           "compact_slices", "compact_volume", "drop_notebook_figures", "evaluation_notebooks", "prune_later_seeds",
           "prune_viewer_volumes"]

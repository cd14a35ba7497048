"""A picture to check a prediction: ``preview.png`` and a one-page ``report.html`` beside the masks.

Opening three NIfTI files in a viewer is too much to check one result, so each prediction gets:

- ``preview.png``: the axial slices with hemorrhage and their neighbours (at most ``MAX_SLICES``,
  two rows, so twelve panels stay legible on a laptop screen). Top row: the CT in the brain window
  (level 40, width 80 HU, where acute blood at 50-90 HU stands out from 20-45 HU brain) with the
  mask's outline. Bottom row: the ensemble's per-voxel spread (standard deviation of the members'
  masks, in [0, 1]) on one fixed colour scale 0 .. ``UNCERTAINTY_MAX`` shared by every panel and
  every scan, so a bright panel means the same everywhere. Slices are shown in the radiological
  convention (patient's right on the image's left, anterior at the top) and labelled with their
  index. An empty mask shows a few central slices under "no hemorrhage found".
- ``report.html``: one self-contained page (the PNG embedded as base64, inline style, no link to
  anything) with the scan's name, the hemorrhage volume with its range, the ABC/2 estimate, the
  slices involved and any further lines the caller passes.

Arrays are (X, Y, Z) in RAS+ as ``Volume.data`` holds them; ``canonical`` brings an array on the
file's own grid (what ``volume_from_slices`` returns) there. Both files are written atomically.
One call after a prediction, e.g. into the folder being assembled::

    write_scan_report(folder, vol.data, canonical(mask_vol, vol), canonical(unc_vol, vol), vol.spacing,
                      name=scan_name, volume_ml=..., volume_range_ml=(lo, hi), abc2_ml=...,
                      slices=summary["slices_with_hemorrhage"],
                      slice_labels=vol.source_slice(np.arange(vol.n_slices)))
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..utils.atomic import atomic_write_bytes, atomic_write_text

#: brain window (level, width) in HU
WINDOW = (40.0, 80.0)
#: top of the uncertainty scale: the spread (population SD) of members in [0, 1] cannot exceed 0.5
UNCERTAINTY_MAX = 0.5
#: at most this many slices (two panels each): twelve panels stay legible
MAX_SLICES = 6
#: slices shown around the centre when nothing was found
EMPTY_SLICES = 3
PANEL_IN, COLORBAR_IN, TITLE_IN, DPI = 2.4, 0.9, 0.5, 100
OUTLINE = "#ff3030"


def canonical(array: np.ndarray, vol) -> np.ndarray:
    """An array on ``vol``'s file grid (as predict writes it) -> (X, Y, Z) RAS+ like ``vol.data``."""
    from nibabel import orientations as ornt_mod

    return ornt_mod.apply_orientation(np.asarray(array), vol.ornt)


def choose_slices(mask: np.ndarray, max_slices: int = MAX_SLICES) -> list[int]:
    """Axial indices to show: the slices with hemorrhage and their neighbours. If they are more
    than ``max_slices``: all involved slices and neighbours as room allows, or (more involved
    slices than room) involved slices spread evenly from the first to the last, with the largest."""
    nz = mask.shape[2]
    area = np.asarray(mask > 0).sum(axis=(0, 1))
    involved = np.flatnonzero(area)
    if involved.size == 0:
        first = max(0, nz // 2 - EMPTY_SLICES // 2)
        return list(range(first, min(nz, first + EMPTY_SLICES)))
    near = {int(k) + d for k in involved for d in (-1, 0, 1)} & set(range(nz))
    if len(near) <= max_slices:
        return sorted(near)
    if involved.size <= max_slices:
        picks = {int(k) for k in involved}
        return sorted(picks | set(sorted(near - picks)[: max_slices - len(picks)]))
    picks = [int(involved[i]) for i in np.unique(np.linspace(0, involved.size - 1, max_slices).round().astype(int))]
    largest = int(np.argmax(area))
    if largest not in picks:
        picks[int(np.argmin([abs(p - largest) for p in picks]))] = largest
    return sorted(set(picks))


def preview_size(n_slices: int) -> tuple[int, int]:
    """(width, height) in pixels of a preview showing ``n_slices`` slices."""
    return (round((n_slices * PANEL_IN + COLORBAR_IN) * DPI), round((2 * PANEL_IN + TITLE_IN) * DPI))


def _check(hu, mask, uncertainty, spacing) -> None:
    if hu.ndim != 3 or mask.shape != hu.shape or uncertainty.shape != hu.shape:
        raise ValueError(f"scan_report: HU {hu.shape}, mask {mask.shape} and uncertainty {uncertainty.shape} "
                         "must be one (X, Y, Z) grid")
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"scan_report: spacing must be three positive voxel sizes in mm, got {spacing}")


def _display(a: np.ndarray) -> np.ndarray:
    """(X, Y) RAS+ slice -> image rows = anterior first, columns = patient's right first (radiological)."""
    return a[::-1, ::-1].T


def _draw(fig, hu, mask, unc, spacing, zs: list[int], labels: Sequence) -> None:
    lo, hi = WINDOW[0] - WINDOW[1] / 2, WINDOW[0] + WINDOW[1] / 2
    n = len(zs)
    width = n * PANEL_IN + COLORBAR_IN  # inches; margins below are placed in inches too
    left, right = 0.3 / width, (n * PANEL_IN) / width
    grid = fig.add_gridspec(2, n, left=left, right=right - 0.05 / width, top=1 - TITLE_IN / (2 * PANEL_IN + TITLE_IN),
                            bottom=0.02, wspace=0.04, hspace=0.12)
    aspect = spacing[1] / spacing[0]  # displayed rows run along y, columns along x
    shown = None
    for c, z in enumerate(zs):
        top, bottom = fig.add_subplot(grid[0, c]), fig.add_subplot(grid[1, c])
        outline = _display(mask[:, :, z] > 0).astype(np.float32)
        top.imshow(_display(hu[:, :, z]), cmap="gray", vmin=lo, vmax=hi, aspect=aspect, interpolation="nearest")
        spread = np.nan_to_num(np.asarray(unc[:, :, z], dtype=np.float32), nan=0.0)
        shown = bottom.imshow(_display(spread), cmap="magma", vmin=0.0, vmax=UNCERTAINTY_MAX, aspect=aspect,
                              interpolation="nearest")
        if outline.any():
            top.contour(outline, levels=[0.5], colors=OUTLINE, linewidths=1.0)
            bottom.contour(outline, levels=[0.5], colors="white", linewidths=0.6)
        ml = float(outline.sum()) * float(np.prod(spacing)) / 1000.0
        top.set_title(f"slice {labels[z]}" + (f"  {ml:.2f} mL" if outline.any() else ""), fontsize=9)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
        if c == 0:
            top.set_ylabel(f"CT  L{WINDOW[0]:g} W{WINDOW[1]:g}", fontsize=9)
            bottom.set_ylabel("ensemble spread", fontsize=9)
            top.text(0.03, 0.5, "R", transform=top.transAxes, color="yellow", fontsize=9, va="center")
    cax = fig.add_axes([right + 0.1 / width, 0.04, 0.15 / width, 0.40])
    bar = fig.colorbar(shown, cax=cax)
    bar.set_label(f"SD of members (fixed 0-{UNCERTAINTY_MAX:g})", fontsize=8)
    bar.ax.tick_params(labelsize=7)


def preview_figure(hu: np.ndarray, mask: np.ndarray, uncertainty: np.ndarray, spacing: Sequence[float], *,
                   title: str = "", slice_labels: Sequence | None = None):
    """The preview as a matplotlib ``Figure`` (no pyplot state); arrays (X, Y, Z) RAS+."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    hu, mask = np.asarray(hu, dtype=np.float32), np.asarray(mask)
    unc = np.asarray(uncertainty)  # NaN shown as 0, slice by slice (_draw): no copy of the volume
    _check(hu, mask, unc, spacing)
    zs = choose_slices(mask)
    labels = list(range(hu.shape[2])) if slice_labels is None else list(slice_labels)
    width, height = preview_size(len(zs))
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    _draw(fig, hu, mask, unc, spacing, zs, labels)
    n = int(np.any(mask > 0, axis=(0, 1)).sum())
    status = f"hemorrhage on {n} slice(s)" if n else "no hemorrhage found"
    fig.suptitle(f"{title}  -  {status}" if title else status, fontsize=11)
    return fig


def preview_png(hu: np.ndarray, mask: np.ndarray, uncertainty: np.ndarray, spacing: Sequence[float], *,
                title: str = "", slice_labels: Sequence | None = None) -> bytes:
    """The preview image as PNG bytes (see the module docstring); arrays (X, Y, Z) RAS+."""
    fig = preview_figure(hu, mask, uncertainty, spacing, title=title, slice_labels=slice_labels)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})  # no tool URL in the file
    return buf.getvalue()


def _slice_ranges(slices: Sequence[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    ks = sorted({int(k) for k in slices})
    runs, start = [], None
    for i, k in enumerate(ks):
        start = k if start is None else start
        if i + 1 == len(ks) or ks[i + 1] != k + 1:
            runs.append(f"{start}" if start == k else f"{start}-{k}")
            start = None
    return ", ".join(runs)


def _rows(volume_ml, volume_range_ml, abc2_ml, slices, details: Mapping) -> list[tuple[str, str]]:
    rows = []
    if volume_ml is not None:
        text = f"{volume_ml:.1f} mL"
        if volume_range_ml is not None:
            text += f" (ensemble members {volume_range_ml[0]:.1f}-{volume_range_ml[1]:.1f} mL)"
        rows.append(("Hemorrhage volume", text))
    if abc2_ml is not None:
        rows.append(("ABC/2 estimate", f"{abc2_ml:.1f} mL"))
    if slices is not None:
        rows.append(("Slices with hemorrhage", f"{len(set(slices))}: {_slice_ranges(slices)}" if len(slices) else "none"))
    rows += [(str(k), str(v)) for k, v in details.items()]
    return rows


def report_html(name: str, png: bytes, *, volume_ml: float | None = None,
                volume_range_ml: Sequence[float] | None = None, abc2_ml: float | None = None,
                slices: Sequence[int] | None = None, details: Mapping | None = None, found: bool = True) -> str:
    """One self-contained HTML page: the facts as a table and the preview embedded as base64;
    ``found=False`` states that no hemorrhage was found."""
    rows = _rows(volume_ml, volume_range_ml, abc2_ml, slices, details or {})
    table = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    verdict = "" if found else '<p class="none">No hemorrhage found.</p>'
    image = base64.b64encode(png).decode("ascii")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ichseg: {html.escape(name)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1em; }}
th, td {{ text-align: left; padding: 0.2em 1em 0.2em 0; }}
img {{ max-width: 100%; height: auto; }}
.none {{ font-weight: bold; }}
.small {{ font-size: 0.85em; color: #555; }}
</style>
</head>
<body>
<h1>{html.escape(name)}</h1>
{verdict}
<table>
{table}
</table>
<img alt="preview of {html.escape(name)}" src="data:image/png;base64,{image}">
<p class="small">Top: CT in the brain window (level {WINDOW[0]:g}, width {WINDOW[1]:g} HU) with the predicted
hemorrhage outlined. Bottom: the spread of the ensemble's members per voxel, on one fixed scale
(0 to {UNCERTAINTY_MAX:g}) for every scan. Patient's right on the image's left. Research software, not for
clinical use.</p>
</body>
</html>
"""


def write_scan_report(out_dir: str | os.PathLike, hu: np.ndarray, mask: np.ndarray, uncertainty: np.ndarray,
                      spacing: Sequence[float], *, name: str, volume_ml: float | None = None,
                      volume_range_ml: Sequence[float] | None = None, abc2_ml: float | None = None,
                      slices: Sequence[int] | None = None, slice_labels: Sequence | None = None,
                      details: Mapping | None = None) -> dict[str, Path]:
    """Write ``preview.png`` and ``report.html`` into ``out_dir`` (each atomically); returns their paths.

    hu, mask, uncertainty: (X, Y, Z) RAS+ (``Volume.data``'s convention; see ``canonical``);
    spacing: (x, y, z) mm; slice_labels: the number printed for each axial index (e.g. the file's
    own slice index, ``vol.source_slice(np.arange(vol.n_slices))``, to match summary.json);
    slices: the slices involved as the summary lists them; details: extra rows (label -> text).
    """
    out_dir = Path(out_dir)
    png = preview_png(hu, mask, uncertainty, spacing, title=name, slice_labels=slice_labels)
    page = report_html(name, png, volume_ml=volume_ml, volume_range_ml=volume_range_ml, abc2_ml=abc2_ml,
                       slices=slices, details=details, found=bool(np.any(np.asarray(mask) > 0)))
    return {"preview": atomic_write_bytes(out_dir / "preview.png", png),
            "report": atomic_write_text(out_dir / "report.html", page)}

"""An interactive slice viewer for the book: the test slices of each dataset that every model was
sampled on (``qualitative.npz`` of the evaluation), with the ground truth, each model's probability
and the full model's uncertainty as overlays that a reader toggles.

The page is one self-contained HTML block: every layer is an 8-bit greyscale PNG embedded as a
``data:`` URL, drawn by ~80 lines of plain JavaScript on a 2D canvas (no WebGL, no library, no
network), so it works from a copy of the book opened as ``file://``. The slices are the evaluation's
own fixed picks (chosen from the ground truth only), not a choice made by looking at the scores.
"""

from __future__ import annotations

import base64
import html
import io
import json

import numpy as np

from ..utils.images import percentile_window, to_u8
from .paper import TABLE1_ORDER, dataset_title, method_title

FULL = "full"
#: overlay colours (RGB) per layer kind; each model gets its own from MODEL_COLOURS
GT_COLOUR, UNC_COLOUR = (0, 220, 255), (180, 255, 60)
MODEL_COLOURS = ((255, 80, 40), (255, 200, 0), (230, 60, 200), (90, 160, 255), (255, 140, 160), (120, 255, 160))
#: grey levels of an overlay (a probability or the uncertainty). The page blends an overlay at most
#: 75 % opaque, where steps of 1/16 are not told apart, and a diffusion model's ensemble mean has a
#: different value in nearly every pixel: 256 levels made its PNG ~6x larger (the CT keeps all 256)
OVERLAY_LEVELS = 16


def png_data_url(array: np.ndarray, vmax: float = 1.0, levels: int | None = None) -> str:
    """A 2D array in [0, vmax] as an 8-bit greyscale PNG ``data:`` URL; with ``levels``, rounded to
    that many steps above zero first (a smaller file, the same picture at overlay opacity)."""
    from PIL import Image

    scaled = np.clip(np.asarray(array, dtype=np.float32) / (vmax or 1.0), 0.0, 1.0)
    if levels:
        scaled = np.round(scaled * levels) / levels
    buf = io.BytesIO()
    Image.fromarray(to_u8(scaled), mode="L").save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _ct(image: np.ndarray, windowed: bool = False) -> np.ndarray:
    """The CT in [0, 1]: as given when already windowed (a whole volume, on one window), else on
    the slice's own 1st-99.5th percentile window."""
    img = np.asarray(image, dtype=float)
    img = img[0] if img.ndim == 3 else img
    return img if windowed else percentile_window(img)


def viewer_payload(items_by_dataset: dict[str, dict[str, dict]], order=TABLE1_ORDER) -> dict:
    """The viewer's data: per dataset (``{dataset: {method: qualitative arrays}}``, as
    ``collect.qualitative`` gives them) the slices every shown model shares, each with its layers."""
    layers, slices, areas = [{"key": "gt", "label": "ground truth", "colour": GT_COLOUR}], [], []
    methods = [m for m in order if any(m in items for items in items_by_dataset.values())]
    for i, m in enumerate(methods):
        layers.append({"key": m, "label": method_title(m), "colour": MODEL_COLOURS[i % len(MODEL_COLOURS)]})
    layers.append({"key": "unc", "label": f"uncertainty ({method_title(FULL)})", "colour": UNC_COLOUR})
    for ds, items in items_by_dataset.items():
        shown = [m for m in methods if m in items]
        if not shown:
            continue
        rows = [int(r) for r in items[shown[0]]["rows"]]
        for m in shown[1:]:
            rows = [r for r in rows if r in set(map(int, items[m]["rows"]))]
        pos = {m: {int(r): k for k, r in enumerate(items[m]["rows"])} for m in shown}
        unc_from = FULL if FULL in items else None
        # one uncertainty scale for every slice of the dataset
        unc_max = float(np.max(items[unc_from]["uncertainty"])) if unc_from else 1.0
        for r in rows:
            ref = items[shown[0]]
            entry = {"dataset": dataset_title(ds), "slice": r, "ct": png_data_url(_ct(ref["image"][pos[shown[0]][r]], bool(ref.get("windowed")))),
                     "layers": {"gt": png_data_url(ref["mask"][pos[shown[0]][r]])}}
            areas.append((entry["dataset"], int((np.asarray(ref["mask"][pos[shown[0]][r]]) > 0.5).sum())))
            for m in shown:
                entry["layers"][m] = png_data_url(items[m]["probability"][pos[m][r]], levels=OVERLAY_LEVELS)
            if unc_from:
                entry["layers"]["unc"] = png_data_url(items[unc_from]["uncertainty"][pos[unc_from][r]], vmax=unc_max,
                                                       levels=OVERLAY_LEVELS)
            slices.append(entry)
    return {"layers": layers, "slices": slices, "start": start_slice(areas)}


def start_slice(areas: list[tuple[str, int]]) -> int:
    """Where the viewer opens, given each slice's (dataset, ground-truth pixels): the first dataset's
    slice with the most ground truth (a whole volume's first slices lie below the head, with nothing
    to look at); 0 when none has a lesion."""
    first = [k for k, (ds, _) in enumerate(areas) if ds == areas[0][0]] if areas else []
    best = max(first, key=lambda k: (areas[k][1], -k), default=0)
    return best if first and areas[best][1] > 0 else 0


_SCRIPT = """
(function () {
  const root = document.getElementById("%(id)s"), data = JSON.parse(root.querySelector("script[type='application/json']").textContent);
  const canvas = root.querySelector("canvas"), ctx = canvas.getContext("2d"), slider = root.querySelector("input[type=range]");
  const label = root.querySelector(".ichseg-viewer-label"), boxes = root.querySelectorAll("input[type=checkbox]");
  const cache = {};
  function img(url) {
    if (!cache[url]) { cache[url] = new Promise(ok => { const im = new Image(); im.onload = () => ok(im); im.src = url; }); }
    return cache[url];
  }
  function pixels(im) {
    const c = document.createElement("canvas"); c.width = im.width; c.height = im.height;
    const x = c.getContext("2d"); x.drawImage(im, 0, 0); return x.getImageData(0, 0, im.width, im.height);
  }
  async function draw() {
    const s = data.slices[+slider.value];
    label.textContent = s.dataset + ", slice " + s.slice + " (" + (+slider.value + 1) + " of " + data.slices.length + ")";
    const ct = pixels(await img(s.ct)), out = new ImageData(ct.width, ct.height);
    for (let p = 0; p < ct.data.length; p += 4) { out.data[p] = out.data[p + 1] = out.data[p + 2] = ct.data[p]; out.data[p + 3] = 255; }
    for (const box of boxes) {
      if (!box.checked || !s.layers[box.value]) continue;
      const layer = data.layers.find(l => l.key === box.value), px = pixels(await img(s.layers[box.value]));
      for (let p = 0; p < px.data.length; p += 4) {
        const a = 0.75 * px.data[p] / 255;
        if (a < 0.02) continue;
        for (let k = 0; k < 3; k++) out.data[p + k] = (1 - a) * out.data[p + k] + a * layer.colour[k];
      }
    }
    const c = document.createElement("canvas"); c.width = ct.width; c.height = ct.height; c.getContext("2d").putImageData(out, 0, 0);
    ctx.imageSmoothingEnabled = false; ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(c, 0, 0, canvas.width, canvas.height);
    root.dataset.drawn = String(+slider.value) + ":" + Array.from(boxes).filter(b => b.checked).map(b => b.value).join(",");
  }
  slider.addEventListener("input", draw);
  boxes.forEach(b => b.addEventListener("change", draw));
  draw();
})();
"""


def viewer_html(payload: dict, element_id: str = "ichseg-viewer", size: int = 512) -> str:
    """The self-contained viewer: a canvas, a slice slider and one checkbox per overlay."""
    if not payload["slices"]:
        raise ValueError("viewer_html: no slices to show")
    boxes = "".join(
        f'<label style="margin-right:1em;white-space:nowrap"><input type="checkbox" value="{html.escape(l["key"])}"'
        f'{" checked" if l["key"] == "gt" else ""}> <span style="display:inline-block;width:.9em;height:.9em;'
        f'background:rgb{tuple(l["colour"])}"></span> {html.escape(l["label"])}</label>' for l in payload["layers"])
    data = json.dumps(payload).replace("</", "<\\/")
    return (f'<div id="{element_id}" class="ichseg-viewer">'
            f'<script type="application/json">{data}</script>'
            f'<div><input type="range" min="0" max="{len(payload["slices"]) - 1}" value="{int(payload.get("start", 0))}" '
            f'style="width:{size}px" '
            f'aria-label="slice"> <span class="ichseg-viewer-label"></span></div>'
            f'<canvas width="{size}" height="{size}" style="max-width:100%;image-rendering:pixelated"></canvas>'
            f'<div class="ichseg-viewer-layers">{boxes}</div>'
            f'<script>{_SCRIPT % {"id": element_id}}</script></div>')


__all__ = ["png_data_url", "start_slice", "viewer_html", "viewer_payload"]

"""The book's slice viewer: every layer of every shared slice embedded as a PNG the page can draw
offline, one checkbox per overlay, and nothing fetched from the network."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from ichseg.report.viewer import _SCRIPT, png_data_url, viewer_html, viewer_payload


def _items(rows, value):
    n = len(rows)
    img = np.linspace(0, 1, n * 8 * 8).reshape(n, 1, 8, 8)
    mask = np.zeros((n, 8, 8))
    mask[:, 2:5, 2:5] = 1
    return {"rows": np.array(rows), "image": img, "mask": mask, "probability": np.full((n, 8, 8), value),
            "uncertainty": np.full((n, 8, 8), 0.1 * value)}


def test_png_round_trips_the_scaled_values():
    from PIL import Image

    url = png_data_url(np.array([[0.0, 0.5], [1.0, 2.0]]))
    assert url.startswith("data:image/png;base64,")
    px = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    assert px.tolist() == [[0, 128], [255, 255]]  # clipped at vmax


def test_overlays_are_stored_in_a_few_levels_and_so_small():
    from PIL import Image

    from ichseg.report.viewer import OVERLAY_LEVELS

    yy, xx = np.mgrid[:64, :64]
    blob = np.exp(-((yy - 30) ** 2 + (xx - 24) ** 2) / 200.0)  # an ensemble mean: a bleed, and faint
    prob = np.clip(blob + 0.02 * np.random.default_rng(0).random((64, 64)), 0, 1)  # noise in every pixel
    fine, coarse = png_data_url(prob), png_data_url(prob, levels=OVERLAY_LEVELS)
    px = np.asarray(Image.open(io.BytesIO(base64.b64decode(coarse.split(",", 1)[1]))), dtype=float) / 255
    assert len(np.unique(px)) <= OVERLAY_LEVELS + 1
    assert np.abs(px - prob).max() <= 0.5 / OVERLAY_LEVELS + 1 / 255  # the nearest level
    assert len(coarse) < len(fine) / 2
    payload = viewer_payload({"bhsd": {"full": _items([1], 0.51)}})
    layer = payload["slices"][0]["layers"]["full"]
    value = np.asarray(Image.open(io.BytesIO(base64.b64decode(layer.split(",", 1)[1]))))[0, 0]
    assert value == round(round(0.51 * OVERLAY_LEVELS) / OVERLAY_LEVELS * 255)  # the payload's overlays use it


def test_payload_keeps_only_slices_every_model_shares():
    payload = viewer_payload({"instance2022": {"full": _items([3, 5, 7], 0.9), "unet": _items([5, 7, 9], 0.4)},
                              "bhsd": {"full": _items([1], 0.2)}})
    assert [(s["dataset"], s["slice"]) for s in payload["slices"]] == [("Instance2022", 5), ("Instance2022", 7), ("BHSD", 1)]
    keys = [layer["key"] for layer in payload["layers"]]
    assert keys == ["gt", "unet", "full", "unc"]  # Table 1 order, ground truth first, uncertainty last
    assert set(payload["slices"][0]["layers"]) == {"gt", "unet", "full", "unc"}
    assert set(payload["slices"][2]["layers"]) == {"gt", "full", "unc"}
    assert len({tuple(layer["colour"]) for layer in payload["layers"]}) == len(keys)


def test_html_is_self_contained():
    text = viewer_html(viewer_payload({"bhsd": {"full": _items([1, 2], 0.5)}}))
    assert not re.search(r"(src|href)=[\"']https?:", text) and "http" not in _SCRIPT
    data = json.loads(re.search(r'<script type="application/json">(.*?)</script>', text, re.S).group(1))
    assert len(data["slices"]) == 2 and 'max="1"' in text
    assert text.count('type="checkbox"') == len(data["layers"])
    with pytest.raises(ValueError):
        viewer_html({"layers": [], "slices": []})


@pytest.mark.skipif(shutil.which("node") is None, reason="no node to parse the script")
def test_script_parses(tmp_path):
    js = tmp_path / "viewer.js"
    js.write_text(_SCRIPT % {"id": "x"})
    subprocess.run(["node", "--check", str(js)], check=True)


def test_the_viewer_opens_on_the_first_datasets_slice_with_the_most_blood():
    items = _items([0, 1, 2, 3], 0.5)
    items["mask"][0] = 0  # a whole volume's first slice: below the head, no lesion
    items["mask"][2, :, :] = 1  # the largest bleed
    other = _items([7], 0.5)
    other["mask"][0, :, :] = 1  # as large, but in the second dataset
    payload = viewer_payload({"instance2022": {"full": items}, "bhsd": {"full": other}})
    assert payload["start"] == 2 and 'value="2"' in viewer_html(payload)
    items["mask"][:] = 0
    assert viewer_payload({"instance2022": {"full": items}})["start"] == 0  # no lesion: the first slice

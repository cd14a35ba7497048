"""The picture to check a prediction: preview.png (the right slices, CT window, outline, one fixed
uncertainty scale) and a self-contained report.html; an empty mask gives a sensible preview."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest

from ichseg.engine import scan_report
from ichseg.engine.scan_report import canonical, choose_slices, preview_size, write_scan_report


def _case(nz=12, lesion=range(4, 7)):
    """A 40 x 36 head-like slab: brain at 30 HU in air, a 70 HU blob on ``lesion`` slices."""
    x, y = np.meshgrid(np.arange(40), np.arange(36), indexing="ij")
    head = ((x - 20) / 17.0) ** 2 + ((y - 18) / 15.0) ** 2 < 1
    hu = np.where(head[..., None], 30.0, -1000.0).repeat(nz, axis=2).astype(np.float32)
    mask = np.zeros(hu.shape, np.uint8)
    blob = ((x - 12) ** 2 + (y - 20) ** 2) < 16
    for k in lesion:
        mask[blob, k] = 1
        hu[blob, k] = 70.0
    unc = np.where(mask > 0, 0.3, 0.02).astype(np.float32)
    return hu, mask, unc


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_slices_with_hemorrhage_and_their_neighbours():
    mask = np.zeros((4, 4, 20), np.uint8)
    mask[1, 1, [5, 6, 7]] = 1
    assert choose_slices(mask) == [4, 5, 6, 7, 8]
    mask[1, 1, 0] = 1  # 7 candidates > 6: every involved slice, then neighbours as room allows
    assert choose_slices(mask) == [0, 1, 4, 5, 6, 7]
    big = np.zeros((4, 4, 30), np.uint8)
    big[:2, :, 3:23] = 1
    big[:, :, 12] = 1  # the largest slice (not on the even spread) is always shown
    picks = choose_slices(big)
    assert len(picks) == 6 and picks[0] == 3 and picks[-1] == 22 and 12 in picks
    assert choose_slices(np.zeros((4, 4, 9))) == [3, 4, 5]  # nothing found: the central slices
    assert choose_slices(np.zeros((4, 4, 2))) == [0, 1]


def test_files_are_written_and_valid(tmp_path):
    hu, mask, unc = _case()
    paths = write_scan_report(tmp_path, hu, mask, unc, (0.5, 0.6, 5.0), name="case <007>", volume_ml=12.34,
                              volume_range_ml=(10.0, 15.5), abc2_ml=11.0, slices=[4, 5, 6],
                              details={"Series": "Head 5mm"})
    assert set(paths) == {"preview", "report"} and sorted(p.name for p in tmp_path.iterdir()) == ["preview.png", "report.html"]
    png = paths["preview"].read_bytes()
    assert _png_size(png) == preview_size(5)  # slices 3-7: the three involved and two neighbours
    page = paths["report"].read_text()
    embedded = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page).group(1)
    assert base64.b64decode(embedded) == png
    rest = page.replace(embedded, "")
    assert not re.search(r"https?:|//|<script|<link|url\(|src=\"(?!data:)", rest, re.IGNORECASE)  # nothing to fetch
    for text in ("case &lt;007&gt;", "12.3 mL (ensemble members 10.0-15.5 mL)", "ABC/2", "11.0 mL", "3: 4-6", "Head 5mm"):
        assert text in page, text
    assert "No hemorrhage found" not in page
    assert b"matplotlib.org" not in png


def test_preview_shows_window_outline_and_one_uncertainty_scale():
    from PIL import Image

    hu, mask, unc = _case()
    img = np.asarray(Image.open(io.BytesIO(scan_report.preview_png(hu, mask, unc, (1.0, 1.0, 5.0)))).convert("RGB"))
    red = (img[..., 0] > 235) & (img[..., 1] < 70) & (img[..., 2] < 70)  # the outline's #ff3030
    assert red.sum() > 50  # the outline colour is drawn
    h = img.shape[0]
    assert not red[h // 2 :].any()  # only on the CT row
    # one fixed scale: doubling the spread changes the picture, a per-panel rescale would not
    brighter = np.asarray(Image.open(io.BytesIO(scan_report.preview_png(hu, mask, unc * 1.5, (1.0, 1.0, 5.0)))).convert("RGB"))
    assert np.abs(brighter[h // 2 :].astype(int) - img[h // 2 :]).sum() > 0
    assert np.array_equal(brighter[: h // 2 - 10], img[: h // 2 - 10])


def test_empty_mask_gives_central_slices_and_says_so(tmp_path):
    hu, mask, unc = _case(nz=9, lesion=())
    paths = write_scan_report(tmp_path, hu, mask, unc, (1.0, 1.0, 5.0), name="negative", volume_ml=0.0, slices=[])
    assert _png_size(paths["preview"].read_bytes()) == preview_size(3)
    page = paths["report"].read_text()
    assert "No hemorrhage found." in page and "<td>none</td>" in page


def test_slice_labels_and_radiological_display():
    hu, mask, unc = _case(nz=3, lesion=(1,))
    shown = scan_report._display(hu[:, :, 1])
    # RAS+: x grows to the patient's right, y anteriorly; the picture puts right on the left, anterior on top
    assert shown[0, 0] == hu[-1, -1, 1] and shown[-1, -1] == hu[0, 0, 1] and shown.shape == (36, 40)
    fig = scan_report.preview_figure(hu, mask, unc, (1, 1, 4), title="x", slice_labels=[30, 20, 10])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["slice 30", "slice 20  0.18 mL", "slice 10"]  # 45 voxels of 4 mm³
    assert fig._suptitle.get_text() == "x  -  hemorrhage on 1 slice(s)"
    bars = [ax for ax in fig.axes if ax.get_ylabel().startswith("SD of members")]
    assert len(bars) == 1 and bars[0].get_ylim() == (0.0, scan_report.UNCERTAINTY_MAX)  # one colorbar, fixed


def test_canonical_matches_the_volume_reader(tmp_path):
    from ichseg.data import load_volume
    from ichseg.data.volumes import write_nifti

    arr = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)
    write_nifti(tmp_path / "a.nii.gz", arr, np.diag([-1.0, 1.0, -2.0, 1.0]))
    vol = load_volume(tmp_path / "a.nii.gz")
    assert np.array_equal(canonical(arr, vol), vol.data)


def test_mismatched_grids_are_refused():
    hu, mask, unc = _case(nz=3, lesion=(1,))
    with pytest.raises(ValueError, match="must be one"):
        scan_report.preview_png(hu, mask[:, :, :2], unc, (1, 1, 5))
    with pytest.raises(ValueError, match="spacing"):
        scan_report.preview_png(hu, mask, unc, (1, 0, 5))

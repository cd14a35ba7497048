"""The whole test volume an evaluation keeps for the book's viewer (``ichseg.engine.viewer_volume``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from _study_helpers import synthetic_split, write_eval, write_study

from ichseg.engine.viewer_volume import read_volume, volume_rows
from ichseg.report import collect
from ichseg.report.publish import compact_results
from ichseg.report.viewer import viewer_html, viewer_payload


def test_the_median_lesion_volume_is_picked_from_the_ground_truth_in_scan_order():
    masks = np.zeros((9, 4, 4), np.float32)
    table = pd.DataFrame({"volume": ["a"] * 3 + ["b"] * 3 + ["c"] * 3, "slice_index": [2, 0, 1] * 3})
    masks[0, :1, :1] = 1            # a: 1 voxel
    masks[3, :2, :2] = 1            # b: 4 voxels (the median)
    masks[4, :1, :2] = 1            # b: +2 -> 6
    masks[6:, :, :] = 1             # c: 48 voxels
    rows = volume_rows(table, masks)
    assert list(rows) == [4, 5, 3]  # volume b, slices 0, 1, 2
    assert len(volume_rows(table, np.zeros_like(masks))) == 0  # no lesion: nothing kept
    assert len(volume_rows(table.drop(columns="volume"), masks)) == 0


def test_evaluation_writes_a_small_volume_the_viewer_scrolls(tmp_path):
    images, masks, ds = synthetic_split(n=20, size=32)
    m = write_eval(tmp_path / "ev", "full", "instance2022", "h", n=20, size=32)
    vol = read_volume(tmp_path / "ev" / "volume.npz")
    rows = volume_rows(ds.table, masks)
    assert m["n_slices"] == 20 and len(rows) == 5
    assert vol["volume"] == ds.table["volume"][rows[0]] and list(vol["rows"]) == list(rows)
    assert list(vol["slice_index"]) == sorted(vol["slice_index"])
    np.testing.assert_array_equal(vol["mask"], masks[rows])  # the ground truth, exactly
    assert vol["image"].min() >= 0 and vol["image"].max() <= 1 and vol["image"].std() > 0.1  # windowed CT
    assert (vol["probability"][masks[rows] == 0] == 0).all()  # the helper's prediction is empty off the lesion
    assert (tmp_path / "ev" / "volume.npz").stat().st_size < 20_000


def test_viewer_scrolls_a_volume_and_compaction_keeps_only_the_shown_ones(tmp_path):
    write_study(tmp_path / "r", methods=("medsegdiffv2", "cross_attention", "full"), seeds=(0, 1))
    study = collect.load_study(tmp_path / "r")
    items = collect.viewer_volumes(study, "instance2022")
    assert set(items) == {"medsegdiffv2", "cross_attention", "full"}
    payload = viewer_payload({"instance2022": items})
    assert len(payload["slices"]) == 5 and [s["slice"] for s in payload["slices"]] == [0, 1, 2, 3, 4]
    assert "data:image/png;base64," in viewer_html(payload)
    shown = {m: items[m] for m in ("medsegdiffv2", "full")}
    before = viewer_payload({"instance2022": shown})
    volumes = sorted((tmp_path / "r" / "eval").rglob("*-s0/*/volume.npz"))
    assert all(len(np.unique(np.load(v)["uncertainty"])) > 17 for v in volumes)
    compact_results(tmp_path / "r")
    kept = sorted(str(p.relative_to(tmp_path / "r" / "eval")) for p in (tmp_path / "r" / "eval").rglob("volume.npz"))
    # Table 1 models, first seed: cross_attention (a Table 2 step) and seed 1 are not in the viewer
    assert kept == [f"{m}-s0/{d}/volume.npz" for m in ("full", "medsegdiffv2") for d in ("bhsd", "instance2022")]
    # the overlays stored on the viewer's own steps: the same page
    assert viewer_payload({"instance2022": collect.viewer_volumes(collect.load_study(tmp_path / "r"), "instance2022")}) == before
    assert all(len(np.unique(np.load(v)[k])) <= 17 for v in volumes if v.is_file() for k in ("probability", "uncertainty"))

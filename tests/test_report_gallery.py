"""The gallery of worst slices: one row per model that kept its worst slices, the models whose
evaluation predates them named under the figure, read through ``collect.worst``."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from _study_helpers import prediction, synthetic_split, write_eval, write_study  # noqa: E402

from ichseg.report import collect  # noqa: E402
from ichseg.report.gallery import (absent_sentence, gallery_figure, gallery_profiles, gallery_views,  # noqa: E402
                                   zoom_box)
from ichseg.report.paper import method_title  # noqa: E402
from ichseg.utils.layout import WORST  # noqa: E402

METHODS = ("medsegdiffv2", "full", "unet")


@pytest.fixture(scope="module")
def worst_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("gallery") / "smoke"
    write_study(root, methods=METHODS, datasets=("instance2022",))
    (root / "eval" / "unet-s0" / "instance2022" / WORST).unlink()  # an evaluation from before worst.npz
    # the full model marks 1, 3, 5, ... pixels on the lesion-free slices 1, 3, 5, ...
    _, masks, _ = synthetic_split()
    prob = prediction(masks, 0.7, np.random.default_rng(0))
    for i in range(1, len(prob), 2):
        prob[i].ravel()[:i] = 0.9
    run_hash = json.loads((root / "runs" / "full-s0" / "run.json").read_text())["run_hash"]
    write_eval(root / "eval" / "full-s0" / "instance2022", "full", "instance2022", run_hash, prob=prob)
    return collect.load_study(root)


def _image_rows(fig) -> list[int]:
    """Rows (by the panel's position from the top) of the axes that show an image."""
    tops = sorted({round(ax.get_position().y1, 3) for ax in fig.axes if ax.images}, reverse=True)
    return [sum(round(ax.get_position().y1, 3) == t for ax in fig.axes if ax.images) for t in tops]


def test_one_row_per_model_with_worst_slices_and_the_others_named(worst_study):
    items = collect.worst(worst_study, "instance2022")
    assert set(items) == set(METHODS) and items["unet"] is None
    fig = gallery_figure(items, "instance2022")
    try:
        rows = _image_rows(fig)
        assert len(rows) == 2  # medsegdiffv2 and full; unet has no worst.npz
        assert rows == [min(6, len(items[v].of("lesion"))) for v in ("medsegdiffv2", "full")]
        titles = [ax.get_title() for ax in fig.axes if ax.images]
        assert all(t.startswith("Dice ") for t in titles)
        labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
        assert [lab.replace("\n", " ") for lab in labels] == [method_title("medsegdiffv2"), method_title("full")]
        sentence = fig.get_supxlabel().replace("\n", " ")
        assert method_title("unet") in sentence and method_title("full") not in sentence
        assert len(fig.legends) == 1 and [t.get_text() for t in fig.legends[0].get_texts()][0] == "ground truth"
    finally:
        plt.close(fig)


def test_the_false_positive_gallery_titles_the_pixels_marked(worst_study):
    items = collect.worst(worst_study, "instance2022")
    assert len(items["medsegdiffv2"].of("empty")) == 0  # its made-up prediction marks no lesion-free slice
    fig = gallery_figure(items, "instance2022", group="empty")
    try:
        titles = [ax.get_title().split("\n")[0] for ax in fig.axes if ax.images]
        assert titles == [f"{n} px marked" for n in (19, 17, 15, 13, 11, 9)]  # the full model's row
        texts = " ".join(t.get_text().replace("\n", " ") for ax in fig.axes for t in ax.texts)
        assert "every lesion-free slice left empty" in texts  # the baseline's row
    finally:
        plt.close(fig)


def test_a_gallery_without_any_worst_slices_is_refused():
    with pytest.raises(ValueError, match="no model on instance2022 has worst slices"):
        gallery_figure({"unet": None}, "instance2022")


def test_the_zoom_holds_both_outlines_and_half_the_slice_at_least():
    mask, pred = np.zeros((64, 64), bool), np.zeros((64, 64), bool)
    mask[10:14, 50:60], pred[30:33, 2:5] = True, True
    ys, xs = zoom_box(mask, pred)
    assert ys.stop - ys.start == xs.stop - xs.start >= 32
    assert mask[ys, xs].sum() == mask.sum() and pred[ys, xs].sum() == pred.sum()
    assert zoom_box(np.zeros((8, 8)), np.zeros((8, 8))) == (slice(0, 8), slice(0, 8))


def test_the_book_finds_the_profiles_with_worst_slices_and_names_the_others(tmp_path):
    write_study(tmp_path / "gpu", methods=("full",), datasets=("instance2022", "realct"), profile="gpu")
    write_study(tmp_path / "cpu", methods=("full",), datasets=("instance2022",), profile="cpu")
    (tmp_path / "cpu" / "eval" / "full-s0" / "instance2022" / WORST).unlink()
    studies, without = gallery_profiles(tmp_path)
    assert [s.profile for s in studies] == ["gpu"] and without == ["cpu"]
    assert gallery_views(studies[0]) == [("instance2022", "lesion"), ("instance2022", "empty"), ("realct", "lesion")]
    assert absent_sentence(without, any_shown=True) == ("The `cpu` profile was evaluated before the evaluation kept "
                                                        "its worst slices, so it is not shown.")
    assert "`evidence` profile" in absent_sentence(without, any_shown=False)
    assert absent_sentence([], any_shown=True) == ""

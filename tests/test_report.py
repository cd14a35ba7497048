"""The report layer on synthetic study folders (written by the engine's own writers, see
``_study_helpers``): CI arithmetic, tables (paper numbers only in paper
columns), stale-result refusal, figures and the generated table of contents."""

from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from _study_helpers import write_study  # noqa: E402

from ichseg import report  # noqa: E402
from ichseg.report.toc import generate_toc  # noqa: E402


def test_mean_ci_is_the_t_interval():
    m, h, n = report.mean_ci([1.0, 2.0, 3.0])
    # s = 1, t_{0.975, 2} = 4.302653
    assert (m, n) == (2.0, 3) and h == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    m, h, n = report.mean_ci([0.5, float("nan")])
    assert (m, n) == (0.5, 1) and math.isnan(h)
    assert report.mean_ci([])[2] == 0
    assert report.format_mean_ci(0.8881, 0.012, 3, scale=100) == "88.81 ± 1.20"
    assert report.format_mean_ci(0.8881, float("nan"), 1, scale=100) == "88.81"
    assert report.summarise([], missing="not run") == "not run"
    assert report.ci_band([0.5]) == (0.5, 0.5)


def test_failed_seeds_stay_visible():
    """A seed without a number (NaN) is counted, never dropped silently from a mean nor shown as
    "not run"."""
    nan = float("nan")
    assert report.summarise([0.9, nan, 0.8], scale=100) == report.summarise([0.9, 0.8], scale=100) + " (2/3 seeds)"
    assert report.summarise([nan, None, nan]) == "failed (0/3 seeds)"
    assert report.summarise([nan], failed="n/a") == "n/a (0/1 seeds)"
    assert report.summarise([0.5, 0.7]) == report.format_mean_ci(*report.mean_ci([0.5, 0.7]))
    assert report.summarise([]) == "not run"


def test_tables_show_failed_seeds(tmp_path):
    write_study(tmp_path / "gpu", methods=("medsegdiffv2", "full"), seeds=(0, 1, 2), profile="gpu")
    evals = report.evaluation_table(report.load_study(tmp_path / "gpu"))
    metric_cols = ["dice", "iou", *report.collect.STRICT_KEYS]
    one = (evals["method"] == "full") & (evals["seed"] == 1)
    evals.loc[one, metric_cols] = float("nan")  # seed 1 of the full model failed
    evals.loc[evals["method"] == "medsegdiffv2", metric_cols] = float("nan")  # every seed failed
    head = "ours (gpu, mean ± 95% CI, 3 seeds)"
    t2 = report.table2(evals, "gpu")
    full, base = t2.loc["+ Transformer Block (Full Model) [full]"], t2.loc[f"{report.method_title('medsegdiffv2')} [medsegdiffv2]"]
    for col in (report.LESION_DICE, report.VOLUME_DICE, report.PAPER_DICE):
        assert full[(head, col)].endswith("(2/3 seeds)") and "±" in full[(head, col)]
        assert base[(head, col)] == "failed (0/3 seeds)"
    t1 = report.table1(evals, "gpu")
    assert t1.loc[("Instance2022", "MedSegDiffv2 [medsegdiffv2]")][(head, report.PAPER_DICE)] == "failed (0/3 seeds)"
    strict = report.strict_table(evals, "gpu")
    row = strict.loc[("Instance2022", report.method_title("medsegdiffv2"))]
    assert row.iloc[0] == "failed (0/3 seeds)" and "not run" not in set(row)
    # a test split without a lesion slice: the lesion-level scores do not apply, the paper's does
    full = evals["method"] == "full"
    evals.loc[full, "dice"] = 0.97
    evals.loc[full, ["positive_slice_dice", "volume_dice"]] = float("nan")
    row = report.table2(evals, "gpu").loc["+ Transformer Block (Full Model) [full]"]
    assert [row[(head, c)] for c in (report.LESION_DICE, report.VOLUME_DICE)] == ["– (0/3 seeds)"] * 2
    assert row[(head, report.PAPER_DICE)].startswith("97.0")


def test_paper_numbers_are_the_papers_tables():
    p = report.paper_numbers()
    assert p["table1"]["instance2022"]["ours"] == {"iou": 88.81, "dice": 90.70}
    assert p["table1"]["physionet"]["nnunet"] == {"iou": 87.46, "dice": 88.82}
    assert p["table2"]["cross_attention"]["best_iteration"] == 55000
    assert list(p["table2"]) == list(report.VARIANT_ORDER)


def test_table1_keeps_paper_and_ours_apart(tmp_path):
    write_study(tmp_path / "smoke")
    study = report.load_study(tmp_path / "smoke")
    evals = report.evaluation_table(study)
    t1 = report.table1(evals, "smoke", study.datasets)
    tops = list(dict.fromkeys(c[0] for c in t1.columns))
    assert tops == ["ours (smoke, 1 seed)", "paper (single run)", report.ALL_EMPTY_COLUMN]
    row = t1.loc[("Instance2022", "Ours [full]")]
    assert row[("paper (single run)", report.PAPER_DICE)] == "90.70"
    ours = evals.query("method == 'full' and dataset == 'instance2022'")["dice"].iloc[0]
    assert row[("ours (smoke, 1 seed)", report.PAPER_DICE)] == f"{100 * ours:.1f}"
    # last, the paper-protocol Dice of predicting nothing on the same slices, read from metrics.json
    metrics = json.loads((tmp_path / "smoke" / "eval" / "full-s0" / "instance2022" / "metrics.json").read_text())
    assert row[(report.ALL_EMPTY_COLUMN, report.PAPER_DICE)] == f"{100 * metrics['paper']['all_empty_dice']:.1f}"
    # a Table 1 model this study did not run says so in its "ours" cells
    unet = t1.loc[("Instance2022", "U-Net [unet]")]
    assert unet[("ours (smoke, 1 seed)", report.PAPER_IOU)] == "not run" and unet[("paper (single run)", report.PAPER_IOU)] == "76.92"
    # no paper number ever appears in an "ours" column
    paper_values = {f"{v:.2f}" for ds in report.paper_numbers()["table1"].values() for m in ds.values() for v in m.values()}
    ours_cells = set(t1.xs("ours (smoke, 1 seed)", axis=1, level=0).to_numpy().ravel())
    assert not (ours_cells & paper_values)
    assert "BHSD*" in t1.index.get_level_values(0)
    banner = report.study_banner(study)
    assert "Profile `smoke`" in banner and "BHSD: synthetic phantom" in banner and "not comparable" in banner


def test_table2_and_strict_tables_with_three_seeds(tmp_path):
    write_study(tmp_path / "gpu", methods=("medsegdiffv2", "cross_attention", "full"), seeds=(0, 1, 2), profile="gpu")
    study = report.load_study(tmp_path / "gpu")
    evals = report.evaluation_table(study)
    t2 = report.table2(evals, "gpu")
    head = "ours (gpu, mean ± 95% CI, 3 seeds)"
    assert (head, report.PAPER_DICE) in t2.columns
    full = t2.loc["+ Transformer Block (Full Model) [full]"]
    sel = evals.query("method == 'full' and dataset == 'instance2022'")["dice"]
    m, h, n = report.mean_ci(sel)
    assert n == 3 and full[(head, report.PAPER_DICE)] == f"{100 * m:.1f} ± {100 * h:.1f}"
    assert full[("paper (single run)", "best iteration")] == "85K"
    # variants not run keep the paper's row and say "not run" for ours
    assert t2.loc["+ Reduce Layer [reduce_layer]"][(head, report.PAPER_DICE)] == "not run"
    strict = report.strict_table(evals, "gpu")
    assert strict.shape == (3 * 2, len(report.STRICT_COLUMNS)) and "±" in strict.iloc[0, 1]
    assert any("HD95, 3D per volume" in c[1] for c in strict.columns)
    # both chance levels, the one inside the head the higher (the head is a part of the slice)
    cols = [c[1] for c in strict.columns]
    for_slice, in_head = (strict.iloc[:, cols.index(report.STRICT_COLUMNS[k])] for k in
                          ("chance_positive_slice_dice", "chance_positive_slice_dice_in_head"))
    assert all(float(h.split(" ")[0]) > float(s.split(" ")[0]) for s, h in zip(for_slice, in_head))
    breakdown = report.protocol_breakdown(report.slices_table(study))
    assert breakdown["empty_fraction"].eq(0.5).all()
    assert (breakdown["paper_dice_empty"] > breakdown["paper_dice_lesion"]).all()
    nums = report.headline_numbers(evals, breakdown)
    assert nums["empty_fraction_instance2022"] == pytest.approx(50.0)
    assert math.isnan(nums["resnet18_instance2022_dice"]) and nums["n_seeds"] == 3
    assert nums["full_instance2022_dice"] == pytest.approx(100 * m)


def test_stale_stamps_are_refused(tmp_path):
    d = tmp_path / "smoke"
    manifest = write_study(d)
    report.load_study(d, expected_stamp=manifest["stamp"])
    with pytest.raises(report.StaleResultsError, match="not the expected"):
        report.load_study(d, expected_stamp="something-else")
    # a stage re-ran since (its stamp on disk changed) -> the run set is stale
    stamp_file = d / "stamps" / "train-full-s0.json"
    stamp_file.write_text(json.dumps({"stamp": "new", "status": "complete"}))
    with pytest.raises(report.StaleResultsError, match="train-full-s0"):
        report.load_study(d)
    stamp_file.write_text(json.dumps({"stamp": manifest["stages"]["train-full-s0"], "status": "complete"}))
    # an evaluation made from another checkpoint than the run's
    m = d / "eval" / "full-s0" / "bhsd" / "metrics.json"
    data = json.loads(m.read_text())
    data["run_hash"] = "other"
    m.write_text(json.dumps(data))
    with pytest.raises(report.StaleResultsError, match="evaluates run other"):
        report.load_study(d)


def test_figures(tmp_path):
    write_study(tmp_path / "gpu", methods=("medsegdiffv2", "resnet18", "full"), seeds=(0, 1), profile="gpu")
    study = report.load_study(tmp_path / "gpu")
    curves = report.curves_table(study)
    fig = report.convergence_figure(curves)
    assert len(fig.axes) == 2 and all(ax.collections for ax in fig.axes)  # CI bands with 2 seeds
    # one legend for both panels, legible, one distinct colour per variant; each panel titled by its metric
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [report.method_title(v) for v in ("medsegdiffv2", "resnet18", "full")]
    assert min(t.get_fontsize() for t in legend.get_texts()) >= 9
    assert len({h.get_color() for h in legend.legend_handles}) == 3
    assert ["IoU" in fig.axes[0].get_title(), "Dice" in fig.axes[1].get_title()] == [True, True]
    plt.close(fig)
    with pytest.raises(ValueError, match="no Table 2 variant"):  # a study of the baselines alone: the page says so
        report.convergence_figure(curves[curves["method"] == "unet"])
    items = report.qualitative(study, "bhsd")
    assert set(items) == {"medsegdiffv2", "resnet18", "full"}
    fig = report.qualitative_figure(items, "bhsd")  # the Table 1 models only (resnet18 is an ablation row)
    # 3 slices x (CT, GT, 2 models, uncertainty), then a colour bar for the probabilities and one for the uncertainty
    assert len(fig.axes) == 3 * (2 + 2 + 1) + 2
    assert [ax.get_xlabel() or ax.get_ylabel() for ax in fig.axes[-2:]] == ["probability of blood", "std over samples"]
    # every slice's uncertainty is drawn on one scale (the overlay is the panel's last image)
    limits = {fig.axes[5 * i + 4].get_images()[-1].get_clim() for i in range(3)}
    assert len(limits) == 1
    # the models' probabilities are drawn over the CT, not instead of it
    assert len(fig.axes[2].get_images()) == 2
    plt.close(fig)
    fig = report.qualitative_figure(items, "bhsd", order=None)  # every method given
    assert len(fig.axes) == 3 * (2 + 3 + 1) + 2
    plt.close(fig)
    run = study.runs[0]
    import pandas as pd

    fig = report.training_figure(pd.read_csv(run["run_dir"] / "train_log.csv"), "t")
    plt.close(fig)
    assert report.read_sampling_bench(tmp_path / "absent.json") is None
    # the shape bench/sampling.py writes
    rows = [{"sampler": "ddpm", "steps": 1000, "slices": 2, "s_per_slice": 9.0, "paper_dice": 0.6, "positive_slice_dice": 0.4}]
    rows += [{"sampler": smp, "steps": k, "slices": 8, "s_per_slice": k * 0.01, "paper_dice": 0.5 + k / 1000,
              "positive_slice_dice": float("nan") if k == 5 else 0.3} for smp in ("ddim", "dpm-solver++") for k in (5, 10, 50)]
    (tmp_path / "s.json").write_text(json.dumps({"bench": "sampling", "rows": rows}))
    bench = report.read_sampling_bench(tmp_path / "s.json")
    assert bench["seconds_per_slice"].tolist()[0] == 9.0
    fig = report.sampling_figure(bench)
    assert len(fig.axes) == 2 and len(fig.axes[0].get_lines()) == 3 * 2
    plt.close(fig)
    (tmp_path / "bad.json").write_text("{not json")
    assert report.read_sampling_bench(tmp_path / "bad.json") is None
    assert np.isfinite(report.evaluation_table(study)["dice"]).all()


def _fake_results_notebook(path, stamp, exception=False):
    path.write_text(json.dumps({"cells": [], "metadata": {"papermill": {"parameters": {"study_stamp": stamp},
                                                                         "exception": exception}},
                                "nbformat": 4, "nbformat_minor": 5}))


def test_generated_toc_lists_consistent_profiles_only(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: method\n  - file: results\n  - file: references\n")
    results = tmp_path / "results"
    (book / "results").symlink_to(results, target_is_directory=True)
    gpu = write_study(results / "gpu", seeds=(0, 1, 2), profile="gpu")
    smoke = write_study(results / "smoke")
    _fake_results_notebook(results / "gpu" / "results.ipynb", gpu["stamp"])
    _fake_results_notebook(results / "smoke" / "results.ipynb", "an-older-run-set")
    (results / "gpu" / "notebooks").mkdir()
    for name in ("train-full-s0", "train-gone-s0", "evaluate-full-s0"):
        (results / "gpu" / "notebooks" / f"{name}.ipynb").write_text("{}")
    (results / "gpu" / "timings.json").write_text(json.dumps({"profile": "gpu", "status": "complete", "total_seconds": 3.0,
                                                               "stages": [{"id": "train-full-s0", "kind": "train",
                                                                           "status": "ran", "seconds": 3.0, "last_run_seconds": 3.0}]}))
    messages = []
    out, listed = generate_toc(book, log=messages.append)
    assert listed == ["gpu"] and any("leaving out profile smoke" in m for m in messages)
    toc = yaml.safe_load(out.read_text())
    entry = toc["chapters"][1]["sections"][0]
    assert entry["file"] == "results/gpu/results" and "3 seeds" in entry["title"]
    files = [s["file"] for s in entry["sections"]]
    assert files == ["generated/gpu/timings", "generated/gpu/notebooks"]
    # the executed notebooks sit under one entry, in the run set's order (a leftover run is not listed)
    assert [s["file"] for s in entry["sections"][1]["sections"]] == ["results/gpu/notebooks/train-full-s0",
                                                                     "results/gpu/notebooks/evaluate-full-s0"]
    # a training's time is its run.json's wall time (1.0 s), not the driver's record of the stage (3.0 s)
    assert "| train-full-s0 | train | ran | 3.0 | 1.0 |" in (book / "generated" / "gpu" / "timings.md").read_text()
    _fake_results_notebook(results / "smoke" / "results.ipynb", smoke["stamp"])
    _, listed = generate_toc(book, log=messages.append)
    assert listed == ["gpu", "smoke"]


def test_results_that_name_the_method_variant_read_as_those_that_say_method(tmp_path):
    """The committed results were written when run.json, metrics.json and study.json named a run's
    method ``variant`` (``variants``): the report reads them as it reads today's files."""
    methods = ("medsegdiffv2", "full", "unet")
    studies = {}
    for old in (False, True):
        root = tmp_path / ("old" if old else "new") / "cpu"
        manifest = write_study(root, methods=methods, seeds=(0, 1), profile="cpu", old_keys=old)
        assert ("variants" in manifest) is old and all(("variant" in r) is old for r in manifest["runs"])
        studies[old] = report.load_study(root)
    new, old = studies[False], studies[True]
    assert old.methods == new.methods == list(methods)
    assert [r["method"] for r in old.runs] == [r["method"] for r in new.runs] == [m for m in methods for _ in (0, 1)]
    evals = report.evaluation_table(old)
    assert list(evals["method"].unique()) == list(methods)
    pd.testing.assert_frame_equal(evals, report.evaluation_table(new))
    pd.testing.assert_frame_equal(report.curves_table(old), report.curves_table(new))
    pd.testing.assert_frame_equal(report.provenance_table(old), report.provenance_table(new))
    assert set(report.qualitative(old, "bhsd")) == set(methods)
    assert "`medsegdiffv2`, `full`, `unet`" in report.study_banner(old)
    assert report.table1(evals, "cpu").equals(report.table1(report.evaluation_table(new), "cpu"))
    assert report.run_summary({"variant": "unet", "profile": "cpu", "nnunet": {
        "configuration": "2d", "trainer": "t", "epochs": 1, "iterations_per_epoch": 1, "channel_name": "CT"}}).startswith(
        "**U-Net** (`unet`)")
    # the book's table of contents lists the old folder's notebooks, in its run order
    book = tmp_path / "book"
    book.mkdir()
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: results\n")
    (book / "results").symlink_to(tmp_path / "old", target_is_directory=True)
    _fake_results_notebook(old.results_dir / "results.ipynb", old.manifest["stamp"])
    (old.results_dir / "notebooks").mkdir()
    (old.results_dir / "notebooks" / "train-unet-s1.ipynb").write_text("{}")
    out, listed = generate_toc(book, log=lambda m: None)
    entry = yaml.safe_load(out.read_text())["chapters"][0]["sections"][0]
    assert listed == ["cpu"] and "3 methods × 2 seeds" in entry["title"]
    assert [s["file"] for s in entry["sections"][0]["sections"]] == ["results/cpu/notebooks/train-unet-s1"]


def test_protocol_breakdown_and_table_show_each_step_of_the_released_output_path():
    import pandas as pd

    n = 4
    t = pd.DataFrame({"method": "full", "seed": 0, "dataset": "instance2022", "positive": [True, True, False, False],
                      "paper_dice": [0.5, 0.7, 1.0, 1.0], "strict_dice": [0.4, 0.6, float("nan"), float("nan")],
                      "paper_dice_mean": [0.5, 0.7, 0.0, 0.0], "paper_dice_anchor_blend": [0.5, 0.7, 0.0, 1.0],
                      "paper_dice_staple": [0.5, 0.6, 1.0, 1.0], "paper_dice_jpeg8": [0.5, 0.7, 1.0, 1.0],
                      "paper_dice_no_max_norm": [0.4, 0.6, 1.0, 1.0], "paper_dice_v2_raw": [0.3, 0.3, 0.0, 1.0]})
    b = report.protocol_breakdown(t)
    assert len(b) == 1 and b["n_slices"].iloc[0] == n
    assert b["step_mean"].iloc[0] == pytest.approx(0.3) and b["step_jpeg8"].iloc[0] == pytest.approx(0.8)
    assert b["paper_dice_empty_mean"].iloc[0] == 0.0 and b["paper_dice_empty"].iloc[0] == 1.0
    table = report.protocol_table(b, "smoke")
    path = [c for c in table.columns if "released output path" in c[0]]
    assert len(path) == 7 and table.iloc[0][path[0]] == "30.0"
    # evaluations written before the steps were recorded: n/a, not an error
    old = report.protocol_table(report.protocol_breakdown(t[["method", "seed", "dataset", "positive", "paper_dice",
                                                             "strict_dice"]]), "smoke")
    assert old.iloc[0][path].str.startswith(report.tables.MISSING).all()  # an evaluation from before the steps were recorded
    from ichseg.report.tables import STRICT_COLUMNS

    evals = pd.DataFrame(columns=["method", "seed", "dataset", "n_slices", "iou", *STRICT_COLUMNS])
    nums = report.headline_numbers(evals, b)
    assert nums["full_instance2022_step_jpeg8"] == pytest.approx(80.0)


def test_headline_counts_the_methods_above_the_all_empty_prediction_on_their_seed_means():
    rows = [  # method, seed, dice, all-empty dice: "a" beats it on the mean of its seeds, "b" only on one seed
        ("a", 0, 0.70, 0.60), ("a", 1, 0.58, 0.60), ("b", 0, 0.65, 0.60), ("b", 1, 0.50, 0.60), ("c", 0, 0.61, 0.60)]
    from ichseg.report.collect import STRICT_KEYS

    evals = pd.DataFrame([dict(method=m, seed=s, dataset="instance2022", dice=d, all_empty_dice=e, iou=d, n_slices=10,
                               **dict.fromkeys(STRICT_KEYS, 0.5)) for m, s, d, e in rows])
    nums = report.headline_numbers(evals, pd.DataFrame(columns=["dataset", "method", "empty_fraction"]))
    assert nums["beats_empty_instance2022"] == 2.0  # a (0.64) and c; not b (0.575)
    assert math.isnan(nums["beats_empty_bhsd"])


def test_contrast_table_splits_lesion_slice_dice_by_how_far_the_lesion_stands_out():
    """Lesion slices only (NaN contrast = no lesion), per seed the band mean, then mean over seeds;
    headers count the band's slices once; evaluations without the column give an empty table."""
    contrast = [10.0, 15.0, 30.0, 50.0, float("nan")]
    rows = []
    for method, base in (("full", 0.0), ("medsegdiffv2", 0.1)):
        for seed in (0, 1):
            for c, dice in zip(contrast, (0.2, 0.4, 0.8, 0.6, 1.0)):
                rows.append({"method": method, "seed": seed, "dataset": "instance2022", "lesion_contrast_hu": c,
                             "strict_dice": dice + base + 0.02 * seed, "paper_dice": 0.5})
    slices = pd.DataFrame(rows)
    t = report.contrast_table(slices, "cpu")
    assert [c[1] for c in t.columns] == ["< 20 HU (2 slices)", "20-40 HU (1 slices)", "≥ 40 HU (1 slices)",
                                         "all (4 slices)"]
    full = t.loc[report.method_title("full")].tolist()
    assert full[0].startswith("31.0 ±") and full[1].startswith("81.0 ±") and full[3].startswith("51.0 ±")
    assert t.loc[report.method_title("medsegdiffv2")].iloc[2].startswith("71.0 ±")
    assert t.columns[0][0] == "ours (cpu, mean ± 95% CI, 2 seeds): lesion-slice Dice at 0.5 (%) by lesion contrast"
    assert report.contrast_table(slices, "cpu", score="paper_dice").loc[report.method_title("full")].iloc[3] == "50.0 ± 0.0"
    assert report.contrast_table(slices.drop(columns="lesion_contrast_hu"), "cpu").empty
    assert report.contrast_table(slices, "cpu", "bhsd").empty  # no lesion slice of that set


def test_patient_table_scores_each_test_patients_lesion_slices():
    """Per patient with lesion slices (lesion-free slices left out), per seed the mean over that
    patient's lesion slices, then mean over seeds; patients ordered by id, counted once."""
    rows = []
    for seed in (0, 1):
        for patient, positive, dice in (("7", 1, 0.9), ("7", 1, 0.7), ("12", 1, 0.1), ("12", 0, 1.0), ("3", 0, 1.0)):
            rows.append({"method": "full", "seed": seed, "dataset": "instance2022", "patient": patient,
                         "positive": positive, "strict_dice": dice + 0.02 * seed})
    t = report.patient_table(pd.DataFrame(rows), "cpu")
    assert [c[1] for c in t.columns] == ["patient 7 (2 slices)", "patient 12 (1 slices)", "all (3 slices)"]
    full = t.loc[report.method_title("full")].tolist()
    assert full[0].startswith("81.0 ±") and full[1].startswith("11.0 ±") and full[2].startswith("57.7 ±")
    assert report.patient_table(pd.DataFrame(rows), "cpu", "bhsd").empty


def test_profile_notes_are_the_opening_comments_without_marks():
    from ichseg.errors import IchsegError
    from ichseg.report.collect import profile_notes

    notes = profile_notes("cpu")
    assert notes.startswith("cpu: the evidence profile.")
    assert "Sizing" in notes and "description:" not in notes  # stops at the first key
    assert not any(line.startswith("#") for line in notes.splitlines())
    with pytest.raises(IchsegError, match="unknown name 'nope'"):
        profile_notes("nope")


def test_run_set_description_reads_the_runs_own_config_not_the_profile_file(tmp_path):
    """Committed results are described as they were made (their config.yaml and run list); without
    results, the profile as it is now."""
    import yaml

    from ichseg.engine.config import resolve_run_config
    from ichseg.report.collect import Study, run_set_description

    cfg = resolve_run_config("smoke", "full")
    cfg["data"]["phantom"]["cases"] = 7
    cfg["train"]["iterations"] = 1234
    runs = []
    for method, seed in (("full", 0), ("full", 1), ("medsegdiffv2", 0), ("cross_attention", 0), ("unet", 0)):
        run_dir = tmp_path / "runs" / f"{method}-s{seed}"
        run_dir.mkdir(parents=True)
        own = resolve_run_config("smoke", "unet") if method == "unet" else cfg
        if method == "full":  # trained longer than the other variants: named beside the usual budget
            own = {**cfg, "train": {**cfg["train"], "iterations": 2468}}
        (run_dir / "config.yaml").write_text(yaml.safe_dump(own))
        runs.append({"method": method, "run_dir": run_dir})
    text = run_set_description("smoke", Study(tmp_path, {"profile": "smoke"}, runs))
    assert "7 synthetic patients per dataset" in text
    assert "1,234 iterations of batch 4 per diffusion run; 2,468 for full (amp" in text, text
    assert "Seeds: 2 for full; 1 for medsegdiffv2, cross_attention, unet." in text
    now = run_set_description("smoke", None)
    assert f"{resolve_run_config('smoke', 'full')['train']['iterations']:,} iterations" in now and "7 synthetic" not in now
    assert "Seeds" not in now  # no run says how many


def test_report_compact_shrinks_the_evaluations_and_changes_no_number_the_book_shows(tmp_path, capsys):
    """``ichseg report compact``: float16 figure maps and six-digit slice tables; every table of the
    report is unchanged to its printed precision, Fig. 3 still draws, a second run changes nothing."""
    from ichseg.cli import main as cli_main

    root = tmp_path / "smoke"
    write_study(root, methods=("medsegdiffv2", "full", "unet"), seeds=(0, 1))
    study = report.load_study(root)
    before = {"t1": report.table1(report.evaluation_table(study), "smoke").to_string(),
              "slices": report.slices_table(study), "q": report.qualitative(study, "instance2022")}
    npz = sorted(root.glob("eval/*-s0/*/qualitative.npz"))  # the first seed's: a later seed's are dropped
    npz_bytes = sum(f.stat().st_size for f in npz)
    tables = sorted(root.rglob("slices.csv"))
    table_bytes = sum(f.stat().st_size for f in tables)
    assert len(npz) < len(list(root.rglob("qualitative.npz")))
    assert cli_main(["report", "compact", str(root)]) == 0
    assert "MB ->" in capsys.readouterr().out
    study = report.load_study(root)  # still consistent
    after = report.slices_table(study)
    assert report.table1(report.evaluation_table(study), "smoke").to_string() == before["t1"]
    pd.testing.assert_frame_equal(after, before["slices"], check_dtype=False, rtol=1e-5)
    q = report.qualitative(study, "instance2022")
    for method, arrays in q.items():
        assert arrays["probability"].dtype == np.float16 and arrays["mask"].dtype == np.uint8
        np.testing.assert_allclose(arrays["probability"], before["q"][method]["probability"], atol=5e-4)
        np.testing.assert_array_equal(arrays["rows"], before["q"][method]["rows"])
    plt.close(report.qualitative_figure(q, "instance2022"))
    assert sum(f.stat().st_size for f in npz) < 0.75 * npz_bytes
    assert sorted(root.rglob("qualitative.npz")) == npz
    gz = sorted(root.rglob("slices.csv.gz"))  # every per-slice table stored gzipped, none left plain
    assert [f.with_suffix("") for f in gz] == tables and not list(root.rglob("slices.csv"))
    assert sum(f.stat().st_size for f in gz) < 0.5 * table_bytes
    files = sorted(root.rglob("eval/*/*/*"))
    contents = [f.read_bytes() for f in files]
    assert cli_main(["report", "compact", str(root)]) == 0  # idempotent, to the byte (no time in the gzip header)
    assert sorted(root.rglob("eval/*/*/*")) == files and [f.read_bytes() for f in files] == contents


def test_report_compact_stores_notebook_figures_with_a_palette_once(tmp_path):
    """The executed notebooks' PNG figures: a 256-colour palette when that saves a tenth, same pixel
    size, the figure's colours within a palette step; text outputs untouched; a second pass is a no-op."""
    import base64
    import io

    from PIL import Image

    from ichseg.report.publish import compact_notebook, compact_png

    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    ax.imshow(np.random.default_rng(0).random((64, 64)).cumsum(0), cmap="magma")
    ax.plot([0, 63], [0, 63], color="tab:green")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    png = base64.b64encode(buf.getvalue()).decode("ascii")
    nb = {"cells": [{"cell_type": "code", "source": "", "metadata": {}, "execution_count": 1,
                     "outputs": [{"output_type": "display_data", "metadata": {}, "data": {"image/png": png, "text/plain": "<Figure>"}},
                                 {"output_type": "stream", "name": "stdout", "text": "Dice 0.5\n"}]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "evaluate-full-s0.ipynb"
    path.write_text(json.dumps(nb))
    compact_notebook(path)
    out = json.loads(path.read_text())["cells"][0]["outputs"]
    new = base64.b64decode(out[0]["data"]["image/png"])
    assert len(new) < 0.9 * len(buf.getvalue()) and out[1]["text"] == "Dice 0.5\n"
    old_im = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), float)
    new_im = np.asarray(Image.open(io.BytesIO(new)).convert("RGB"), float)
    assert new_im.shape == old_im.shape and np.abs(new_im - old_im).mean() < 3.0
    text = path.read_text()
    compact_notebook(path)
    assert path.read_text() == text
    clear = io.BytesIO()
    Image.new("RGBA", (32, 32), (255, 0, 0, 0)).save(clear, "PNG")
    assert compact_png(clear.getvalue(), keep=10.0) == clear.getvalue()  # transparency is kept as it is


def test_subtype_figure_shows_each_subtype_at_its_largest_slice():
    from types import SimpleNamespace

    hu = np.full((16, 16, 4), 30.0)
    labels = np.zeros((16, 16, 4), np.uint8)
    labels[2:5, 2:5, 1] = 1
    labels[2:9, 2:9, 3] = 2
    labels[1:3, 1:3, 2] = 2
    vol = SimpleNamespace(hu=hu, labels=labels)
    fig = report.figures.subtype_figure([vol], ("epidural", "subdural", "subarachnoid"),
                                        {"epidural": 1, "subdural": 2, "subarachnoid": 3})
    assert [ax.get_title() for ax in fig.axes[:2]] == ["epidural", "subdural"]  # no subarachnoid voxel: left out
    plt.close(fig)
    with pytest.raises(ValueError):
        report.figures.subtype_figure([vol], ("subarachnoid",), {"subarachnoid": 3})


def test_every_method_a_profile_may_run_has_a_title():
    """Rows beyond the paper read as their registry title (marked as beyond the paper), not as ids."""
    from ichseg.engine.config import ALL_METHODS
    from ichseg.report.paper import method_title

    titles = {m: method_title(m) for m in ALL_METHODS}
    assert all(t != m for m, t in titles.items()), [m for m, t in titles.items() if t == m]
    assert "beyond the paper" in titles["full_lite0"] and method_title("no-such-method") == "no-such-method"

"""ichseg.report.bench: the committed benchmark records render into the reproduction guide's tables
cell for cell, and a missing or foreign record stops the build with a line naming the file."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from ichseg.errors import IchsegError
from ichseg.report import bench

MEASURED = Path(__file__).resolve().parents[1] / "bench" / "measured"


@pytest.fixture(scope="module")
def records():
    return {name: bench.load_record(MEASURED, name) for name in bench.RECORDS}


def test_every_committed_record_names_its_machine_and_commit(records):
    for name, record in records.items():
        line = bench.provenance(record)
        env = record["environment"]
        assert env["device"] in line and env["torch"] in line, name
        assert (env.get("source_commit") or env["git_commit"])[:12] in line, name


def test_study_jobs_table_is_the_median_ratio_of_its_record(records):
    rec = records["study_jobs"]
    table = bench.study_jobs_table(rec)
    assert table.iloc[0, 0] == statistics.median(rec["serial_s"])
    assert table.iloc[1, 0] == statistics.median(rec["jobs2_s"])
    assert table["speed-up"].iloc[1] == pytest.approx(rec["speedup"])


def test_cpu_train_table_cells_are_the_records_rows(records):
    rec = records["cpu_train"]
    table = bench.cpu_train_table(rec)
    assert len(table) == len(rec["rows"])
    for row in rec["rows"]:
        cell = table.xs(row["option"], level="option").loc[lambda t, s=row["size"]: t.index.str.startswith(s)]
        assert cell["s per step (median)"].item() == row["s_per_step"]
        assert cell["speed-up vs 1 thread"].item() == row["speedup_vs_1_thread"]


def test_option_speedup_is_the_records_row(records):
    rec = records["cpu_train"]
    for row in rec["rows"]:
        assert bench.option_speedup(rec, row["size"], row["option"]) == row["speedup_vs_1_thread"]
    with pytest.raises(IchsegError, match="no single row for option 'turbo'"):
        bench.option_speedup(rec, "cpu", "turbo")


def test_cpu_allocator_table_cells_are_the_records_rows(records):
    rec = records["cpu_allocator"]
    table = bench.cpu_allocator_table(rec)
    assert list(table["wall s"]) == [r["wall_s"] for r in rec["rows"]]
    assert list(table["speed-up"]) == [r["speedup"] for r in rec["rows"]]


def test_peer_table_ratios_are_the_records(records):
    row = records["peer"]["rows"][0]
    table = bench.peer_table(records["peer"])
    assert table.loc["training images/s", "ours ÷ peer"] == pytest.approx(row["train_speedup"])
    ensemble = [q for q in table.index if q.startswith("one slice")][0]
    assert table.loc[ensemble, "ours ÷ peer"] == pytest.approx(row["ensemble_time_fraction"])
    assert table.loc["parameters (M)", "ours ÷ peer"] == pytest.approx(row["param_ratio"])
    assert abs(row["param_ratio"] - 1) <= 0.10  # the comparison is at a matched size


def test_gpu_tables_are_the_records_rows(records):
    gpu = records["gpu_check"]
    table = bench.gpu_train_table(gpu)
    for row in gpu["train"]:
        if "error" in row:
            continue
        cell = table.loc[(row["variant"], "torch.compile" if row["compile"] else "eager")]
        assert cell["MFU (%)"] == pytest.approx(100 * row["mfu"])
        assert cell["images/s"] == row["images_per_s"]
    sampling = bench.gpu_sampling_table(gpu, records["gpu_sampling_compiled"])
    rows = gpu["sampling"] + records["gpu_sampling_compiled"]["rows"]
    assert list(sampling["s per slice"]) == [r["s_per_slice"] for r in rows]
    assert gpu["summary"]["best_s_per_slice"] >= sampling["s per slice"].min()



def test_predict_steps_table_and_sentence_are_the_records(records):
    rec, cpu = records["predict_steps"], records["predict_cpu"]
    table = bench.predict_steps_table(rec)
    assert len(table) == len(rec["rows"]) and (table["default"] == "✓").sum() == 1
    row = table[table["default"] == "✓"].iloc[0]
    assert (row["steps"], row["samples"]) == (rec["chosen"]["steps"], rec["chosen"]["ensemble"])
    assert row["samples"] >= 2  # the range and the uncertainty need a spread
    ref = table[(table["steps"] == rec["reference"][0]) & (table["samples"] == rec["reference"][1])].iloc[0]
    assert row["lesion-slice Dice (val)"] >= ref["lesion-slice Dice (val)"] - 0.01
    assert row["denoiser passes"] == min(t["denoiser passes"] for _, t in table.iterrows()
                                         if t["samples"] >= 2 and t["lesion-slice Dice (val)"] >= ref["lesion-slice Dice (val)"] - 0.01
                                         and t["lesion-free slices left clean"] >= ref["lesion-free slices left clean"] - 0.01)
    sentence = bench.predict_default_sentence(rec, cpu)
    assert f"{row['steps']} steps and {row['samples']} samples" in sentence
    after = bench.predict_speed(cpu)["128x128x31"]["after"]
    assert (after["settings"]["steps"], after["settings"]["ensemble"]) == (row["steps"], row["samples"])
    assert f"{after['cpu_s_per_slice']:.2f} s of CPU a slice" in sentence

def test_options_worth_adopting_need_the_gain_at_every_size():
    def row(size, option, threads, speedup):
        return {"size": size, "option": option, "threads": threads, "speedup_vs_1_thread": speedup}

    rec = {"rows": [row("smoke", "fp32 1 thread", 1, 1.0), row("cpu", "fp32 1 thread", 1, 1.0),
                    row("smoke", "fp32 2 threads", 2, 1.9), row("cpu", "fp32 2 threads", 2, 1.9),
                    row("smoke", "bf16 autocast", 1, 1.4), row("cpu", "bf16 autocast", 1, 1.5),
                    row("smoke", "channels_last", 1, 1.1), row("cpu", "channels_last", 1, 1.6)]}
    assert bench.options_worth_adopting(rec) == ["bf16 autocast"]
    assert bench.options_worth_adopting(rec, at=1.45) == []


def test_gpu_check_coverage_says_what_a_cut_short_check_measured():
    rec = {"summary": {"complete": False, "seconds": 426.5},
           "train": [{"variant": "full", "compile": False}, {"variant": "full", "compile": True}],
           "sampling": [{"compile": "none"}]}
    said = bench.gpu_check_coverage(rec)
    assert "426 s in" in said and "full training (compiled)" in said and "sampling (eager)" in said
    assert bench.gpu_check_coverage({"summary": {"complete": True}}) == "it measured every row"


@pytest.mark.parametrize("content, problem", [
    (None, "no such benchmark record"),
    ("{not json", "not a readable JSON record"),
    (json.dumps({"bench": "peer", "environment": {}}), "expected 'study_jobs'"),
    (json.dumps({"bench": "study_jobs"}), "has no 'environment'"),
])
def test_a_bad_record_is_one_line_naming_the_file(tmp_path, content, problem):
    if content is not None:
        (tmp_path / "study_jobs.json").write_text(content)
    with pytest.raises(IchsegError) as err:
        bench.load_record(tmp_path, "study_jobs")
    message = str(err.value)
    assert str(tmp_path / "study_jobs.json") in message and problem in message and "\n" not in message


def test_cpu_bf16_table_and_verdict_are_the_records_rows(records):
    rec = records["cpu_bf16"]
    table = bench.cpu_bf16_table(rec)
    by = {(r["seed"], r["amp"]): r for r in rec["rows"]}
    for seed in table.index:
        assert table.loc[seed, "validation Dice, bf16"] == by[(seed, "bf16")]["val_dice"]
        assert table.loc[seed, "bf16 speed-up"] == pytest.approx(by[(seed, "none")]["train_wall_s"]
                                                                 / by[(seed, "bf16")]["train_wall_s"])
    verdict = bench.bf16_within_seed_spread(rec)["val_strict_dice"]
    changes = [abs(by[(s, "bf16")]["val_strict_dice"] - by[(s, "none")]["val_strict_dice"]) for s in table.index]
    assert verdict["largest_change"] == pytest.approx(max(changes))
    assert verdict["within"] == (verdict["largest_change"] <= verdict["seed_spread"])


def test_gpu_goals_are_the_best_rows_against_the_records_goals(records):
    gpu, compiled = records["gpu_check"], records["gpu_sampling_compiled"]
    goals = bench.gpu_goals(gpu, compiled)
    full_mfu = [100 * r["mfu"] for r in gpu["train"] if r.get("variant") == "full" and r.get("mfu") is not None]
    assert goals["MFU"]["best"] == pytest.approx(max(full_mfu))
    assert goals["seconds per slice"]["best"] == min(r["s_per_slice"] for r in gpu["sampling"] + compiled["rows"])
    assert goals["MFU"]["met"] == (max(full_mfu) >= 100 * gpu["summary"]["goals"]["mfu"])


@pytest.mark.parametrize("met, said", [
    ((True, True), "both goals are met"), ((False, False), "neither goal is met"),
    ((True, False), "only the MFU goal is met"), ((False, True), "only the seconds per slice goal is met"),
])
def test_goals_verdict_says_which_goal_is_met(met, said):
    goals = {"MFU": {"met": met[0]}, "seconds per slice": {"met": met[1]}}
    assert bench.goals_verdict(goals) == said


def test_bf16_verdict_follows_the_seed_spread():
    def rows(change):
        return {"rows": [{"seed": 0, "amp": "none", "val_dice": 0.70, "val_strict_dice": 0.60},
                         {"seed": 1, "amp": "none", "val_dice": 0.72, "val_strict_dice": 0.66},
                         {"seed": 0, "amp": "bf16", "val_dice": 0.70 + change, "val_strict_dice": 0.60},
                         {"seed": 1, "amp": "bf16", "val_dice": 0.72, "val_strict_dice": 0.66}]}

    assert bench.bf16_verdict(rows(0.01)).startswith("two short runs per precision show no change")
    assert bench.bf16_verdict(rows(0.05)).startswith("in paper-protocol Dice the change exceeds")


def test_small_lesions_table_is_the_records_summary(records):
    rec = records["small_lesions"]
    table = bench.small_lesions_table(rec)
    for name, b in rec["by_size"].items():
        row = table.loc[name.replace("-", "–")]
        assert row["phantoms"] == b["cases"] and row["detected"] == f"{b['detected']}/{b['cases']}"
        assert row["median 3D Dice"] == b["median_dice_3d"]


def test_predict_vs_nnunet_table_and_sentence_are_the_records(records):
    rec = records["predict_vs_nnunet"]
    table = bench.predict_vs_nnunet_table(rec)
    assert len(table) == sum(len(v) for v in rec["volumes"].values())
    for (name, vol), block in zip(rec["volumes"].items(), [table.iloc[i:i + 2] for i in range(0, len(table), 2)]):
        for (key, r), (_, row) in zip(vol.items(), block.iterrows()):
            assert row["segmenter"] == bench.SEGMENTERS[key]
            assert row["s a slice (segmenting)"] == r["segment_s_per_slice"] and row["peak memory, MB"] == r["peak_rss_mb"]
    sentence = bench.predict_vs_nnunet_sentence(rec)
    for m, r in rec["study"]["methods"].items():
        assert f"{m} {100 * r['lesion_slice_dice_mean']:.1f} %" in sentence
    if isinstance(rec["nnunet_model"], dict):  # a stand-in's masks are not the pass's model's: no Dice shown
        assert "stand-in" in sentence and table[table["segmenter"] == bench.SEGMENTERS["nnunet"]]["lesion-slice Dice"].isna().all()

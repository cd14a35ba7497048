"""The committed benchmark records (``bench/measured/*.json``) as the reproduction guide's tables.

Each ``bench/*.py`` script writes one JSON record (``"bench"``: which script, ``"environment"``:
the machine, torch and commit it ran on, and its rows). The records measured for this book are
committed under ``bench/measured/``; the guide renders them through the functions here, so every
speed it quotes is read from a file, never typed in. A missing or malformed record raises
``BenchRecordError`` naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import IchsegError

# file stem -> the "bench" value its script writes
RECORDS = {
    "study_jobs": "study_jobs",
    "cpu_train": "cpu_train",
    "cpu_bf16": "cpu_bf16",
    "cpu_allocator": "cpu_allocator",
    "peer": "peer",
    "gpu_check": "gpu_check",
    "gpu_sampling_compiled": "sampling_speed",
    "predict_steps": "predict_steps",
    "predict_cpu": "predict_cpu",
    "predict_vs_nnunet": "predict_vs_nnunet",
    "small_lesions": "small_lesions",
}


class BenchRecordError(IchsegError):
    """A benchmark record that is missing, unreadable or of another benchmark."""


def load_record(folder: Path | str, name: str) -> dict:
    """Read ``folder/<name>.json`` and check it is the record of the benchmark ``name`` stands for."""
    if name not in RECORDS:
        raise BenchRecordError(f"unknown benchmark record {name!r}; known: {', '.join(RECORDS)}")
    path = Path(folder) / f"{name}.json"
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise BenchRecordError(f"{path}: no such benchmark record (run bench/{name}.py --out {path})") from None
    except (OSError, ValueError) as exc:
        raise BenchRecordError(f"{path}: not a readable JSON record ({exc})") from None
    if not isinstance(record, dict) or record.get("bench") != RECORDS[name]:
        got = record.get("bench") if isinstance(record, dict) else type(record).__name__
        raise BenchRecordError(f"{path}: holds the record of {got!r}, expected {RECORDS[name]!r}")
    if "environment" not in record:
        raise BenchRecordError(f"{path}: has no 'environment' (machine, torch, commit it was measured on)")
    return record


def provenance(record: dict) -> str:
    """One line: what the record was measured on (device, platform, torch, commit)."""
    env = record["environment"]
    commit = str(env.get("source_commit") or env.get("git_commit", "?"))  # source_commit: a copied tree's origin
    short = commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")
    return f"{env.get('device', '?')}; {env.get('platform', '?')}; torch {env.get('torch', '?')}; commit {short}"


def study_jobs_table(record: dict) -> pd.DataFrame:
    """Two training stages run one after another with every core vs at once with one thread each."""
    cores = record["cores"]
    serial = pd.Series(record["serial_s"]).median()
    jobs = pd.Series(record["jobs2_s"]).median()
    return pd.DataFrame(
        {"wall time (s, median)": [serial, jobs], "speed-up": [1.0, serial / jobs]},
        index=pd.Index([f"one after another, {cores} threads each", f"--jobs 2, {max(1, cores // 2)} thread(s) each"],
                       name=f"two stages of {record['steps']} training steps ({record['size']}², base {record['base']})"),
    )


def cpu_train_table(record: dict) -> pd.DataFrame:
    """Seconds per optimiser step of each CPU option and its speed-up over one fp32 thread."""
    rows = pd.DataFrame(record["rows"])
    rows["size"] = [f"{r.size} ({r.image_size}², base {r.base_channels})" for r in rows.itertuples()]
    return rows.set_index(["size", "option"])[["threads", "s_per_step", "speedup_vs_1_thread", "images_per_s_per_core"]] \
        .rename(columns={"s_per_step": "s per step (median)", "speedup_vs_1_thread": "speed-up vs 1 thread",
                         "images_per_s_per_core": "images/s per core"})


def option_speedup(record: dict, size: str, option: str) -> float:
    """One CPU option's speed-up over one fp32 thread at one size (``smoke``, ``cpu``)."""
    rows = [r for r in record["rows"] if r["size"] == size and r["option"] == option]
    if len(rows) != 1:
        raise BenchRecordError(f"cpu_train record: no single row for option {option!r} at size {size!r}")
    return float(rows[0]["speedup_vs_1_thread"])


ADOPT_AT = 1.3  # a CPU option is worth turning on when it gains at least this much over one fp32 thread


def options_worth_adopting(record: dict, at: float = ADOPT_AT) -> list[str]:
    """CPU options (other than more threads in one process) at least ``at``× faster per core at every size."""
    rows = pd.DataFrame(record["rows"])
    rows = rows[rows["threads"] == 1]
    worst = rows.groupby("option")["speedup_vs_1_thread"].min()
    return [o for o, v in worst.items() if o != "fp32 1 thread" and v >= at]


def cpu_bf16_table(record: dict) -> pd.DataFrame:
    """Per seed: validation scores and training wall time in fp32 and bf16, and bf16's speed-up."""
    rows = pd.DataFrame(record["rows"]).pivot(index="seed", columns="amp",
                                               values=["val_dice", "val_strict_dice", "train_wall_s"])
    table = pd.DataFrame({
        "validation Dice, fp32": rows[("val_dice", "none")], "validation Dice, bf16": rows[("val_dice", "bf16")],
        "lesion-slice Dice, fp32": rows[("val_strict_dice", "none")],
        "lesion-slice Dice, bf16": rows[("val_strict_dice", "bf16")],
        "training s, fp32": rows[("train_wall_s", "none")], "training s, bf16": rows[("train_wall_s", "bf16")],
    })
    table["bf16 speed-up"] = table["training s, fp32"] / table["training s, bf16"]
    return table


def bf16_within_seed_spread(record: dict) -> dict:
    """bf16's largest change of a validation score (same seed) against the spread between seeds in
    fp32: ``within`` when the change is no larger than the spread."""
    rows = pd.DataFrame(record["rows"])
    out = {}
    for score in ("val_dice", "val_strict_dice"):
        by = rows.pivot(index="seed", columns="amp", values=score)
        change = float((by["bf16"] - by["none"]).abs().max())
        spread = float(by["none"].max() - by["none"].min())
        out[score] = {"largest_change": change, "seed_spread": spread, "within": change <= spread}
    return out


def bf16_verdict(record: dict) -> str:
    """What the bf16 runs say, in words, from ``bf16_within_seed_spread``."""
    names = {"val_dice": "paper-protocol", "val_strict_dice": "lesion-slice"}
    beyond = [names[k] for k, v in bf16_within_seed_spread(record).items() if not v["within"]]
    if not beyond:
        return "two short runs per precision show no change beyond what a seed does, and cannot show a small one"
    return (f"in {' and '.join(beyond)} Dice the change exceeds the difference between the two seeds, which two "
            "seeds measure poorly: these runs neither clear bf16 nor condemn it")


def gpu_goals(check: dict, *sampling_records: dict) -> dict:
    """Best full-model MFU (%) and fastest seconds per slice over the records, each against its goal."""
    goals = check["summary"]["goals"]
    mfu = gpu_train_table(check).xs("full", level="variant")["MFU (%)"].max()
    per_slice = gpu_sampling_table(check, *sampling_records)["s per slice"].min()
    return {"MFU": {"best": float(mfu), "goal": 100 * goals["mfu"], "met": bool(mfu >= 100 * goals["mfu"])},
            "seconds per slice": {"best": float(per_slice), "goal": goals["s_per_slice"],
                                  "met": bool(per_slice <= goals["s_per_slice"])}}


def goals_verdict(goals: dict) -> str:
    met = [name for name, g in goals.items() if g["met"]]
    if len(met) == len(goals):
        return "both goals are met" if len(goals) == 2 else "every goal is met"
    if not met:
        return "neither goal is met" if len(goals) == 2 else "no goal is met"
    return f"only the {' and '.join(met)} goal{'s' * (len(met) > 1)} {'are' if len(met) > 1 else 'is'} met"


def gpu_check_coverage(record: dict) -> str:
    """What a (possibly cut-short) GPU check measured: 'complete', or which rows it has."""
    if record["summary"].get("complete"):
        return "it measured every row"
    done = [f"{r['variant']} training ({'compiled' if r['compile'] else 'eager'})" for r in record["train"]]
    done += [f"sampling ({'eager' if r['compile'] == 'none' else 'compiled, ' + r['compile']})" for r in record["sampling"]]
    return (f"its time bound stopped it; its last record, written {round(record['summary']['seconds'])} s in, holds "
            + ", ".join(done))


def cpu_allocator_table(record: dict) -> pd.DataFrame:
    """Wall, user and system seconds per call under glibc's default and with large blocks reused."""
    what = {"train": "optimiser step, batch 8", "sample": f"sampling batch, {record['slices']} slices × 3 samples"}
    rows = pd.DataFrame(record["rows"])
    rows["call"] = rows["task"].map(what)
    return rows.set_index(["size", "call", "setting"])[["wall_s", "user_s", "sys_s", "speedup"]].rename(
        columns={"wall_s": "wall s", "user_s": "user s", "sys_s": "system s", "speedup": "speed-up"})


def peer_table(record: dict) -> pd.DataFrame:
    """The peer against our full model at a matched parameter count: size, cost, speed."""
    r = record["rows"][0]
    ours_fwd = r["ours_condition_GFLOPs"] + r["ours_denoise_GFLOPs"]
    table = pd.DataFrame(
        [("parameters (M)", r["peer_params_M"], r["ours_params_M"]),
         ("forward GFLOP per image", r["peer_forward_GFLOPs"], ours_fwd),
         ("GFLOP per denoising step", r["peer_forward_GFLOPs"], r["ours_denoise_GFLOPs"]),
         ("training images/s", r["peer_train_images_per_s"], r["ours_train_images_per_s"]),
         (f"one slice's {r['ensemble']}-sample ensemble (s)", r["peer_ensemble_s_extrapolated"], r["ours_ensemble_s"])],
        columns=["quantity", f"peer ({record['peer']})", "ours (full model)"],
    ).set_index("quantity")
    table["ours ÷ peer"] = table.iloc[:, 1] / table.iloc[:, 0]
    return table


def gpu_train_table(record: dict) -> pd.DataFrame:
    """Training throughput and bf16 model-FLOP utilisation per variant, eager and compiled."""
    rows = pd.DataFrame([r for r in record["train"] if "error" not in r])
    rows["mode"] = rows["compile"].map({False: "eager", True: "torch.compile"})
    table = rows.set_index(["variant", "mode"])[["batch", "params_M", "images_per_s", "achieved_TFLOPs", "mfu",
                                                 "peak_mem_GiB"]]
    table["mfu"] = 100 * pd.to_numeric(table["mfu"])  # None (no known peak, a CPU dry run) -> NaN
    return table.rename(columns={"params_M": "params (M)", "images_per_s": "images/s", "achieved_TFLOPs": "TFLOP/s",
                                 "mfu": "MFU (%)", "peak_mem_GiB": "peak memory (GiB)"})


def gpu_sampling_table(*records: dict) -> pd.DataFrame:
    """Seconds per slice of the ensemble, one row per record row (eager, compiled)."""
    rows = pd.DataFrame([r for rec in records for r in rec.get("sampling", rec.get("rows", []))])
    rows["mode"] = rows["compile"].map(lambda m: "eager" if m == "none" else f"torch.compile ({m})")
    return rows.set_index("mode")[["slices_per_batch", "ensemble", "steps", "first_call_s", "s_per_batch",
                                   "s_per_slice"]].rename(
        columns={"slices_per_batch": "slices per batch", "first_call_s": "first call (s)",
                 "s_per_batch": "s per batch", "s_per_slice": "s per slice"})


def predict_steps_table(record: dict) -> pd.DataFrame:
    """``bench/predict_steps.py``: each sampling setting's cost and validation scores, the chosen one marked."""
    chosen = (record["chosen"]["steps"], record["chosen"]["ensemble"])
    rows = []
    for r in record["rows"]:
        lo, hi = r["lesion_slice_dice_minus_reference_ci95"]
        rows.append({"steps": r["steps"], "samples": r["ensemble"], "denoiser passes": r["passes"],
                     "CPU s / slice": r["cpu_s_per_slice"], "lesion-slice Dice (val)": r["lesion_slice_dice"],
                     "Δ vs evaluated (95 % CI)": f"{100 * lo:+.1f} to {100 * hi:+.1f} pt",
                     "lesion-free slices left clean": r["empty_clean_share"],
                     "default": "✓" if (r["steps"], r["ensemble"]) == chosen else ""})
    return pd.DataFrame(rows)


def predict_speed(record: dict) -> dict[str, dict]:
    """``bench/predict_cpu.py``: per volume, the current code's CPU seconds a slice, peak memory (MB),
    3D Dice and settings, and the same for the baseline it was compared with."""
    out = {}
    for name, vol in record["volumes"].items():
        cand = vol["candidates"]
        out[name] = {k: {"cpu_s_per_slice": c.get("segment_cpu_s_per_slice"), "peak_mb": c.get("peak_rss_mb"),
                         "dice_3d": c.get("dice_3d"), "settings": c.get("settings", {})}
                     for k, c in cand.items()}
    return out


def predict_default_sentence(steps_record: dict, cpu_record: dict) -> str:
    """One sentence: the sampling ``ichseg predict`` uses by default, why, and what it costs here."""
    ch, ref = steps_record["chosen"], steps_record["reference"]
    rows = {(r["steps"], r["ensemble"]): r for r in steps_record["rows"]}
    c, r0 = rows[(ch["steps"], ch["ensemble"])], rows[tuple(ref)]
    speed = predict_speed(cpu_record)
    parts = []
    for name, cands in speed.items():
        after = cands.get("after", {})
        if after.get("cpu_s_per_slice") is not None:
            parts.append(f"{after['cpu_s_per_slice']:.2f} s of CPU a slice and {after['peak_mb'] / 1024:.1f} GB at most "
                         f"for a {name.replace('x', ' × ', 1).replace('x', ' × ')} scan")
    return (f"By default `ichseg predict` samples with DDIM, {ch['steps']} steps and {ch['ensemble']} samples a slice: "
            f"on {steps_record['patients']} validation patients it scored a lesion-slice Dice of "
            f"{c['lesion_slice_dice']:.3f} against {r0['lesion_slice_dice']:.3f} with the {ref[0]} steps and {ref[1]} "
            f"samples the profile evaluates with, at {c['passes']} denoiser passes a slice instead of {r0['passes']}. "
            f"On one thread of this 2-core CPU that is " + "; ".join(parts) + ".")


SEGMENTERS = {"ichseg": "ichseg predict (shipped model)", "nnunet": "nnU-Net predictor"}


def predict_vs_nnunet_table(record: dict) -> pd.DataFrame:
    """``bench/predict_vs_nnunet.py``: per volume and segmenter, seconds a slice of the segmenting
    itself, the whole command's median wall seconds, peak memory and lesion-slice Dice on the volume
    (absent where the nnU-Net model timed is a stand-in, not the pass's)."""
    rows = []
    for name, vol in record["volumes"].items():
        for key, r in vol.items():
            rows.append({"volume": name.replace("x", " × "), "segmenter": SEGMENTERS.get(key, key),
                         "s a slice (segmenting)": r.get("segment_s_per_slice"), "command, s": r.get("wall_s_median"),
                         "peak memory, MB": r.get("peak_rss_mb"), "lesion-slice Dice": r.get("lesion_slice_dice")})
    return pd.DataFrame(rows)


def predict_vs_nnunet_sentence(record: dict) -> str:
    """What the nnU-Net model timed is, and the study's lesion-slice Dice of the methods beside it."""
    model = record.get("nnunet_model")
    study = record.get("study") or {}
    if isinstance(model, dict):
        what = (f"The nnU-Net model timed is a stand-in for `{model['stand_in_for']}`: the same network and plans "
                f"trained {model['iterations']} iterations, so its masks are not scored here.")
    else:
        what = f"The nnU-Net model timed is `{model}`."
    scores = [f"{m} {100 * r['lesion_slice_dice_mean']:.1f} % ({len(r['seeds'])} seeds)"
              for m, r in (study.get("methods") or {}).items()]
    quality = (f" Their quality is the study's: lesion-slice Dice on the {study.get('split', 'test')} split of "
               f"{study.get('dataset')} in `{study.get('results')}`: " + ", ".join(scores) + ".") if scores else ""
    return what + quality


def small_lesions_table(record: dict) -> pd.DataFrame:
    """``bench/small_lesions.py``: per true-volume class, phantoms, detected, median 3D Dice and volume errors."""
    rows = []
    for name, b in record["by_size"].items():
        if not b["cases"]:
            continue
        rows.append({"true volume": name.replace("-", "–"), "phantoms": b["cases"],
                     "detected": f"{b['detected']}/{b['cases']}", "median 3D Dice": b["median_dice_3d"],
                     "median |volume error| (mL)": b["median_abs_volume_error_ml"],
                     "median volume error": f"{100 * b['median_relative_volume_error']:+.0f} %".replace("-", "−")})
    return pd.DataFrame(rows).set_index("true volume")

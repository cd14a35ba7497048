"""The realism page's tables, from the records the benchmarks write (never typed):
``bench/measured/realism.json`` (HU per tissue class, ``bench/realism.py``)
``bench/measured/real_anatomy.json`` (the shipped model on the real head with inserted
hemorrhages, ``bench/real_anatomy.py``) and ``bench/measured/transfer_pilot.json`` (which training
recipe the shipped model got, ``bench/transfer_pilot.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

def read_record(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def tissue_table(record: dict, comparison: str = "whole_head") -> pd.DataFrame:
    """Rows: tissue; one column per image of ``comparison`` (``whole_head`` or ``pydicom_slices``):
    "median (p5–p95), sd" in HU, "none" where the class is absent."""
    t = pd.DataFrame(record[comparison]["table"])

    def cell(r) -> str:
        if not r["pixels"]:
            return "none"
        fmt = "{:.0f}" if abs(r["median"]) >= 100 else "{:.1f}"
        return f"{fmt.format(r['median'])} ({fmt.format(r['p5'])}–{fmt.format(r['p95'])}), sd {fmt.format(r['std'])}".replace(
            "-", "−")

    t["cell"] = t.apply(cell, axis=1)
    out = t.pivot(index="tissue", columns="source", values="cell")
    order = [x for x in ("parenchyma", "csf", "bone", "blood") if x in out.index]
    out = out.loc[order, list(dict.fromkeys(t["source"]))]
    out.index = [{"csf": "CSF"}.get(i, i) for i in out.index]
    out.index.name = "tissue (HU)"
    return out


def bone_p95(record: dict, comparison: str = "pydicom_slices") -> dict[str, float]:
    """The 95th percentile of bone HU per source ("synthetic", "real": the real images' mean)."""
    t = pd.DataFrame(record[comparison]["table"])
    bone = t[t["tissue"] == "bone"]
    real = bone[bone["source"].str.startswith("real")]
    return {"synthetic": float(bone[bone["source"] == "synthetic"]["p95"].iloc[0]), "real": float(real["p95"].mean())}


def anatomy_table(record: dict) -> pd.DataFrame:
    """Overall, per subtype and per size class: cases, lesion slices, lesion-slice Dice, detected
    (k/n), mean signed volume error."""
    s = record["summary"]
    blocks = [("all inserted", s["overall"]), *s["per_subtype"].items(),
              *((k.replace("-", "–"), b) for k, b in s["per_size"].items())]  # size classes, smallest first
    rows = []
    for name, b in blocks:
        if not b["cases"]:
            continue
        rows.append({"lesions": name, "cases": b["cases"], "lesion slices": b["lesion_slices"],
                     "lesion-slice Dice": f"{b['lesion_slice_dice']:.2f}",
                     "detected": f"{round(b['detected'] * b['cases'])}/{b['cases']}",
                     "mean volume error": f"{100 * b['volume_error_mean']:+.0f} %".replace("-", "−")})
    return pd.DataFrame(rows).set_index("lesions")


def anatomy_facts(record: dict) -> dict[str, float]:
    """The numbers the page's sentences quote: false-positive mL on the clean head, the largest
    size class's lesion-slice Dice, overall Dice, detection and volume error, seconds."""
    s = record["summary"]
    largest = [b for b in s["per_size"].values() if b["cases"]][-1]  # size classes are recorded smallest first
    return {"clean_fp_ml": float(max(s["clean_head_fp_ml"])), "largest_dice": float(largest["lesion_slice_dice"]),
            "overall_dice": float(s["overall"]["lesion_slice_dice"]),
            "detected_pct": 100 * float(s["overall"]["detected"]),
            "volume_error_pct": 100 * float(s["overall"]["volume_error_mean"]),
            "seconds": float((record.get("machine") or record.get("environment") or {}).get("seconds", float("nan")))}


ARM_TITLES = {"plain": "plain synthetic", "randomise": "randomised synthetic",
              "randomise_context1": "randomised, 2.5D (±1 slice)", "randomise_band": "randomised + skull-base band",
              "randomise_band_narrow": "randomised + narrow skull-base band",
              "randomise_band_lite0": "randomised + skull-base band, Lite0 network (evidence profile)",
              "randomise_band_long": "randomised + skull-base band, 6,000 iterations"}

#: the real pydicom slices by the level they cut (``ichseg.data.realct`` describes them)
IMAGE_TITLES = {"J2K_pixelrep_mismatch.dcm": "skull base", "693_UNCR.dcm": "supratentorial"}


def transfer_table(record: dict) -> pd.DataFrame:
    """One row per arm of the transfer pilot: lesion-slice Dice on the plain cohort's validation
    patients, on the arm's own cohort's, on the real pydicom slices (overall and per subtype), and
    the pixels marked on the untouched real slice; the chosen arm flagged."""
    rows = []
    for arm, r in record["arms"].items():
        real = r["real_slices"]
        row = {"training data": ARM_TITLES.get(arm, arm) + (" (chosen)" if arm == record["chosen"] else ""),
               "validation, plain cohort": r.get("val_plain", {}).get("lesion_slice_dice"),
               "validation, own cohort": r["val_own"]["lesion_slice_dice"],
               "real slices": real["lesion_slice_dice"]}
        row.update({f"real: {k}": v for k, v in sorted(real["per_subtype"].items())})
        row["px marked, untouched real slice"] = real.get("negative_pred_px_mean")
        rows.append(row)
    out = pd.DataFrame(rows).set_index("training data")
    dice = [c for c in out.columns if not c.startswith("px")]
    out[dice] = out[dice].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}")
    out["px marked, untouched real slice"] = out["px marked, untouched real slice"].map(
        lambda v: "—" if pd.isna(v) else f"{v:.0f}")
    return out


UNMARKED = "most inserts unmarked, one slice and subtype (%)"


def transfer_round2_table(record: dict) -> pd.DataFrame:
    """The transfer pilot's second round: per arm, each seed's run and the mean over seeds (the
    rule's numbers): lesion-slice Dice on plain validation patients, on the arm's own, on the real
    pydicom slices (overall and per subtype), and the area (mm²) marked on the untouched real slice;
    the chosen arm's mean row flagged."""
    rows = []
    for arm, runs in record["runs"].items():
        title = ARM_TITLES.get(arm, arm)
        for seed, r in sorted(runs.items(), key=lambda kv: int(kv[0])):
            real = r["real_slices"]
            row = {"training data": f"{title}, seed {seed}", "validation, plain cohort": r["val_plain"]["lesion_slice_dice"],
                   "validation, own cohort": r["val_own"]["lesion_slice_dice"], "real slices": real["lesion_slice_dice"]}
            row.update({f"real: {k}": v for k, v in sorted(real["per_subtype"].items())})
            row["mm² marked, untouched real slice"] = real.get("negative_pred_mm2_mean")
            rows.append(row)
        m = record["means"][arm]
        row = {"training data": f"{title}, mean" + (" (chosen)" if arm == record["chosen"] else ""),
               "validation, plain cohort": m["val_plain_dice"], "real slices": m["real_dice"],
               "mm² marked, untouched real slice": m["untouched_mm2"]}
        if "unmarked_max" in m:  # round 4's term
            row[UNMARKED] = m["unmarked_max"]
        rows.append(row)
    out = pd.DataFrame(rows).set_index("training data")
    dice = [c for c in out.columns if not c.startswith("mm²") and c != UNMARKED]
    out[dice] = out[dice].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}")
    area = "mm² marked, untouched real slice"
    out[area] = out[area].map(lambda v: "—" if pd.isna(v) else f"{v:.0f}")
    if UNMARKED in out:
        out[UNMARKED] = out[UNMARKED].map(lambda v: "—" if pd.isna(v) else f"{100 * v:.0f}")
    return out


def challenger_outcome(record: dict, round_no: int, incumbent: str = "randomise_band") -> str:
    """A challenger round's decision in words (``bench/transfer_pilot.py``, rounds 5 on): which
    recipe the rule keeps or takes, and the two means it weighed most, challenger first."""
    challenger = next(a for a in record["means"] if a != incumbent)
    inc, new = record["means"][incumbent], record["means"][challenger]
    chosen = record["chosen"]
    verb = "stays" if chosen == incumbent else "replaces the shipped recipe"
    return (f"By round {round_no}'s rule, **{ARM_TITLES.get(chosen, chosen)}** {verb}: "
            f"{ARM_TITLES.get(challenger, challenger)} scores {new['val_plain_dice']:.2f} on plain validation and "
            f"{new['real_dice']:.2f} on the real slices, against {inc['val_plain_dice']:.2f} and {inc['real_dice']:.2f}.")


def retrained_sentence(record: dict) -> str:
    """How far runs trained again from their configs landed from the runs an earlier record scored
    (the record's ``retrained``; empty when it has none)."""
    info = record.get("retrained")
    if not info or not info["seeds"]:
        return ""
    seeds = info["seeds"].values()
    same = all(s["same_run_hash"] for s in seeds)
    shift = max(v for s in seeds for k, v in s.items() if k.endswith("_shift"))
    return (f"The {ARM_TITLES.get(info['arm'], info['arm'])} runs were trained again from their configs "
            f"(seeds {', '.join(info['seeds'])}): {'the same' if same else 'different'} run hashes as in "
            f"`{info['from_record']}`, validation lesion-slice Dice within {shift:.3f} of the scores it recorded.")


def transfer_gap_table(record: dict) -> pd.DataFrame:
    """``bench/transfer_gap.py``'s record: per run, lesion-slice Dice on the real inserts, on all
    plain-validation lesions and on those matched to the inserts in size and contrast, and the
    median predicted/true lesion area on the inserts and on their matches."""
    rows = {f"{ARM_TITLES.get(r['arm'], r['arm'])}, seed {r['seed']}": {
        "real inserts": r["real_dice"], "validation, all lesions": r["validation_dice"],
        "validation, matched lesions": r["matched_validation_dice"],
        "area ratio, real inserts": r["real_area_ratio"], "area ratio, matched lesions": r["matched_area_ratio"]}
        for r in record["runs"].values()}
    out = pd.DataFrame.from_dict(rows, orient="index").rename_axis("training data")
    return out.map(lambda v: "—" if v is None or pd.isna(v) else f"{v:.2f}")


def transfer_image_table(record: dict) -> pd.DataFrame:
    """``bench/transfer_gap.py``'s per-image rows: per real slice and subtype (rows), per arm the
    lesion-slice Dice and the share of inserts left unmarked (%)."""
    cols = {}
    for arm, rows in record["by_image"].items():
        title = ARM_TITLES.get(arm, arm)
        for r in rows:
            key = (IMAGE_TITLES.get(r["image"], r["image"]), r["subtype"])
            cols.setdefault((title, "Dice"), {})[key] = f"{r['dice']:.2f}"
            cols.setdefault((title, "unmarked (%)"), {})[key] = f"{100 * r['missed']:.0f}"
    out = pd.DataFrame(cols)
    out.index.names, out.columns.names = ["real slice", "subtype"], ["training data", ""]
    return out


def unmarked_shifts(record: dict, arm: str, against: str, at_least: float = 0.25) -> list[dict]:
    """Where ``arm`` leaves at least ``at_least`` more of the inserts unmarked than ``against``:
    image (its title), subtype and both shares."""
    base = {(r["image"], r["subtype"]): r["missed"] for r in record["by_image"][against]}
    return [{"image": IMAGE_TITLES.get(r["image"], r["image"]), "subtype": r["subtype"], "arm": r["missed"],
             "against": base[(r["image"], r["subtype"])]}
            for r in record["by_image"][arm] if r["missed"] - base.get((r["image"], r["subtype"]), 1.0) >= at_least]


def transfer_gap_facts(record: dict) -> dict:
    """Means over the record's runs: the gap between matched validation Dice and real-insert Dice,
    and the share of that gap the lesions' size and contrast explain (all lesions against matched)."""
    runs = [r for r in record["runs"].values() if r["matched_validation_dice"] is not None]
    mean = lambda k: sum(r[k] for r in runs) / len(runs)  # noqa: E731
    total = mean("validation_dice") - mean("real_dice")
    lesions = mean("validation_dice") - mean("matched_validation_dice")
    return {"real": mean("real_dice"), "all": mean("validation_dice"), "matched": mean("matched_validation_dice"),
            "gap": total, "explained_by_lesions": lesions / total if total else float("nan"), "runs": len(runs)}


def skull_base_table(record: dict) -> pd.DataFrame:
    """``bench/skull_base.py``'s record as one table: per band of distance from bone (rows), per
    source the median HU and the share of blood-like pixels (%)."""
    cols = {}
    for source, rows in record["tables"].items():
        t = pd.DataFrame(rows).set_index("band_mm")
        cols[(source, "median HU")] = t["median_hu"].map(lambda v: "—" if pd.isna(v) else f"{v:.0f}")
        cols[(source, f"≥ {record['bloodlike_hu']:g} HU (%)")] = t["bloodlike_share"].map(
            lambda v: "—" if pd.isna(v) else f"{100 * v:.1f}")
    out = pd.DataFrame(cols)
    out.index = [f"{b} mm" for b in out.index]
    out.index.name = "distance from bone"
    return out


def rim_contrast(rows: list[dict], near: str = "1.5-3", far: str = "15-60") -> tuple[float, float]:
    """(median HU of the band ``near`` bone, median HU of the band ``far`` from it) of one source
    of ``bench/skull_base.py``'s record: beside bone, brighter or darker than deep brain."""
    by = {r["band_mm"]: r["median_hu"] for r in rows}
    return float(by[near]), float(by[far])


def _per_run(r: pd.DataFrame) -> dict[str, float]:
    """One run's scores on the real-anatomy set (``slices.csv`` rows of dataset ``realct``)."""
    pos = r[r["positive"] == 1]
    out = {"all inserted": float(pos["strict_dice"].mean()) if len(pos) else float("nan")}
    for sub, g in pos.groupby("subtype"):
        out[str(sub)] = float(g["strict_dice"].mean())
    ml = r["pred_pixels"] * r["pixel_row_mm"] * r["pixel_col_mm"] * r["thickness_mm"] / 1000.0
    overlap = (r["strict_dice"].fillna(0) > 0) & (r["gt_pixels"] > 0)
    v = r.assign(_ml=ml, _hit=overlap).groupby(["patient", "volume"]).agg(
        gt=("gt_pixels", "sum"), pred=("pred_pixels", "sum"), ml=("_ml", "sum"), hit=("_hit", "any"))
    lesion, nan = v["gt"] > 0, float("nan")
    out["detected (%)"] = 100 * float(v["hit"][lesion].mean()) if lesion.any() else nan
    # the median: a lesion of a few pixels at the model's grid would dominate a mean of ratios
    out["median volume error (%)"] = (100 * float(((v["pred"] - v["gt"]) / v["gt"])[lesion].median())
                                      if lesion.any() else nan)
    out["predicted on clean images (mL)"] = float(v["ml"][~lesion].mean()) if (~lesion).any() else nan
    return out


def profile_anatomy_table(slices: pd.DataFrame, methods=("medsegdiffv2", "full", "nnunet")) -> pd.DataFrame:
    """A committed profile's models on its real-anatomy test set (``realct``: real images with
    inserted hemorrhages, and untouched ones): per method (columns) the lesion-slice Dice overall
    and per subtype, the share of inserted lesions detected, the median signed volume error and the
    mL predicted on a clean image; each the mean over seeds with its 95 % interval (a bare value
    for one seed)."""
    from .stats import summarise

    r = slices[(slices["dataset"] == "realct") & slices["method"].isin(methods)]
    cols = {}
    for m in [m for m in methods if m in set(r["method"])]:
        runs = [_per_run(g) for _, g in r[r["method"] == m].groupby("seed")]
        keys = list(dict.fromkeys(k for run in runs for k in run))
        cols[m] = {k: summarise([run.get(k, float("nan")) for run in runs],
                                scale=1 if k.endswith(("(%)", "(mL)")) else 100, digits=1) for k in keys}
    table = pd.DataFrame(cols)
    table.index.name = "real-anatomy set"
    return table


__all__ = ["anatomy_facts", "anatomy_table", "bone_p95", "profile_anatomy_table", "read_record", "tissue_table",
           "transfer_gap_facts", "transfer_gap_table", "transfer_image_table", "unmarked_shifts"]

"""``prepare_dataset``: a dataset folder -> a prepared, fingerprinted cache of 2D slices.

Steps (paper §4.1; every choice is a ``PrepConfig`` field):

1. find (image, mask) pairs with the dataset's layout and check every header;
2. split *patients* with a recorded seed: Instance2022 90/10 train/test, then ``val_fraction``
   of the training patients become a validation split (checkpoint choice never looks at test);
   BHSD and PhysioNet sample 10% of patients for test (the rest are not used);
3. read, reorient, window, resize and normalise every volume of a used patient;
4. in the training split only, downsample negative slices to ``negative_ratio`` per positive
   (paper: 1:1); the validation and test splits keep every slice;
5. write, atomically, ``images.npy`` (N, C, S, S) float32, ``masks.npy`` (N, S, S) uint8,
   ``slices.csv`` (one row per *source* slice: kept ones point at their array row, dropped ones
   say why) and ``manifest.json`` (config, sources with size and sha256, counts, fingerprint).

Re-running with the same config on the same files returns at once without writing.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from ..errors import IchsegError
from ..utils.atomic import atomic_directory, atomic_write_json, atomic_write_text
from ..utils.hashing import config_hash, file_sha256
from .config import PrepConfig
from .layouts import ROLE_TEST_SAMPLE, Case, Discovery, get_layout
from .slices import lesion_contrast_hu, prepared_pixel_mm, preprocess_mask, preprocess_volume
from .volumes import check_same_grid, load_pair, read_header

PREP_VERSION = 3  # bump when the preparation code changes what it writes
MANIFEST, SLICES, IMAGES, MASKS = "manifest.json", "slices.csv", "images.npy", "masks.npy"
BAD_FILES, SUMMARY = "bad_files.csv", "summary.txt"
REASON_DOWNSAMPLED = "negative downsampled (training split)"
REASON_NOT_SAMPLED = "patient not in the test sample"
REASON_BAD_FILE = "bad file (see bad_files.csv)"
SLICE_COLUMNS = ["patient", "volume", "source_file", "mask_file", "slice_index", "source_slice", "split",
                 "kept", "row", "drop_reason", "positive", "subtype", "lesion_px", "lesion_voxels",
                 "lesion_contrast_hu", "spacing_row_mm", "spacing_col_mm", "thickness_mm", "pixel_row_mm", "pixel_col_mm"]


# ----------------------------------------------------------------------------------------------
# splitting
# ----------------------------------------------------------------------------------------------
def split_patients(patients, role: str, test_fraction: float, seed: int, val_fraction: float = 0.0) -> dict[str, str]:
    """Patient -> 'train' / 'val' / 'test' / 'unused', seeded, independent of file order.

    The test share is rounded, with at least one test patient (and, for a train/test split, at
    least one training patient when there are two or more). Then, for a train/test split only,
    ``val_fraction`` of the remaining training patients (rounded, at least one, never all) become
    the validation split, drawn with its own seeded generator so the test patients do not
    depend on it.
    """
    patients = sorted(set(patients))
    n = len(patients)
    n_test = max(1, int(round(test_fraction * n)))
    if role != ROLE_TEST_SAMPLE and n >= 2:
        n_test = min(n_test, n - 1)
    order = np.random.default_rng(seed).permutation(n)
    test = {patients[i] for i in order[:n_test]}
    rest = "unused" if role == ROLE_TEST_SAMPLE else "train"
    out = {p: ("test" if p in test else rest) for p in patients}
    train = [p for p in patients if out[p] == "train"]
    if val_fraction > 0 and len(train) >= 2:
        n_val = min(max(1, int(round(val_fraction * len(train)))), len(train) - 1)
        for i in np.random.default_rng([seed, 2]).permutation(len(train))[:n_val]:
            out[train[i]] = "val"
    return out


def downsample_negatives(positive: np.ndarray, ratio: float | None, seed: int) -> np.ndarray:
    """Boolean keep-mask over training slices: all positives, ``ratio`` negatives per positive."""
    positive = np.asarray(positive, bool)
    keep = np.ones(positive.shape, bool)
    if ratio is None:
        return keep
    neg = np.flatnonzero(~positive)
    n_keep = min(neg.size, int(round(ratio * positive.sum())))
    chosen = np.random.default_rng([seed, 1]).choice(neg, size=n_keep, replace=False) if n_keep else []
    keep[neg] = False
    keep[np.asarray(chosen, dtype=int)] = True
    return keep


# ----------------------------------------------------------------------------------------------
# one volume
# ----------------------------------------------------------------------------------------------
@dataclass
class _CaseResult:
    case: Case
    rows: pd.DataFrame | None = None
    image_file: Path | None = None
    masks: np.ndarray | None = None
    error: tuple[Path, str] | None = None


def _error_of(exc: IchsegError, case: Case) -> tuple[Path, str]:
    text = str(exc)
    for p in (case.image, case.mask):
        if text.startswith(f"{p}:"):
            return p, text[len(str(p)) + 1:].strip()
    return case.image, text


def _process_case(index: int, case: Case, split: str, discovery: Discovery, config: PrepConfig, workdir: Path,
                  root: Path, max_bytes: int | None) -> _CaseResult:
    """Read and prepare one volume; errors come back as data (so a pool can carry them)."""
    try:
        image, mask = load_pair(case.image, case.mask, max_bytes=max_bytes)
        slices = preprocess_volume(image, config)
        masks = preprocess_mask(mask, config)
        subtypes = discovery.layout.slice_subtypes(case, mask, discovery)
    except IchsegError as exc:
        return _CaseResult(case, error=_error_of(exc, case))
    z = image.n_slices
    out = workdir / f"{index:05d}.npy"
    np.save(out, slices)
    lesion_vox = (mask.data > 0).sum(axis=(0, 1))
    lesion_px = masks.reshape(z, -1).sum(axis=1)
    rows = _rows(case, split, root, z, image.source_slice(np.arange(z)), image.spacing, image.shape, config.size)
    rows["positive"] = (lesion_px > 0).astype(int)
    rows["subtype"] = subtypes
    rows["lesion_px"] = lesion_px.astype(int)
    rows["lesion_voxels"] = lesion_vox.astype(int)
    # measured on the source grid; only for slices that keep a lesion at the prepared size
    rows["lesion_contrast_hu"] = np.where(lesion_px > 0, np.round(lesion_contrast_hu(image, mask), 2), np.nan)
    return _CaseResult(case, rows, out, masks)


def _rows(case: Case, split: str, root: Path, z: int, source_slice, spacing, shape, size: int) -> pd.DataFrame:
    """The table rows of one volume's slices. ``spacing_*``/``thickness_mm``: the source voxel size;
    ``pixel_*_mm``: the size of one pixel of the prepared (resized) slice, the one every length and
    volume computed on prepared slices must use."""
    pixel_row, pixel_col = prepared_pixel_mm(spacing, shape, size)
    return pd.DataFrame({
        "patient": case.patient, "volume": case.volume,
        "source_file": _rel(case.image, root), "mask_file": _rel(case.mask, root),
        "slice_index": np.arange(z), "source_slice": np.asarray(source_slice, int), "split": split,
        "kept": 0, "row": -1, "drop_reason": "", "positive": pd.array([pd.NA] * z, dtype="Int8"),
        "subtype": "", "lesion_px": pd.array([pd.NA] * z, dtype="Int64"),
        "lesion_voxels": pd.array([pd.NA] * z, dtype="Int64"), "lesion_contrast_hu": np.nan,
        # slices are (rows = y, cols = x) of the RAS+ volume, see slices.axial_slices
        "spacing_row_mm": round(spacing[1], 6), "spacing_col_mm": round(spacing[0], 6),
        "thickness_mm": round(spacing[2], 6),
        "pixel_row_mm": round(pixel_row, 6), "pixel_col_mm": round(pixel_col, 6),
    })


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------------------------
# sources, fingerprint, up-to-date check
# ----------------------------------------------------------------------------------------------
def _stat_sources(files: list[Path], root: Path) -> list[dict]:
    out = []
    for p in files:
        st = p.stat()
        out.append({"path": _rel(p, root), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return out


def read_manifest(prepared: str | Path) -> dict:
    """The ``manifest.json`` of a prepared folder: the one reader of that file."""
    path = Path(prepared) / MANIFEST
    if not path.is_file():
        raise IchsegError(f"{path}: not found; is {prepared} a folder written by `ichseg prepare`?")
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise IchsegError(f"{path}: not a JSON manifest ({exc})") from None


def _fingerprint(dataset: str, config: PrepConfig, skip_bad: bool, sources: list[dict]) -> str:
    return config_hash({
        "prep_version": PREP_VERSION, "dataset": dataset, "config": config.to_dict(), "skip_bad": skip_bad,
        "sources": [[s["path"], s["size"], s["sha256"]] for s in sources],
    }, length=16)


def _up_to_date(target: Path, dataset: str, config: PrepConfig, skip_bad: bool, stats: list[dict],
                root: Path) -> tuple[bool, list[dict] | None]:
    """(True, None) when ``target`` holds this very preparation; else (False, hashed sources or None)."""
    manifest_path = target / MANIFEST
    if not manifest_path.is_file():
        return False, None
    try:
        old = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return False, None
    if old.get("prep_version") != PREP_VERSION or old.get("config") != config.to_dict() \
            or old.get("skip_bad") != skip_bad or old.get("dataset") != dataset:
        return False, None
    if not all((target / f).is_file() for f in (SLICES, IMAGES, MASKS)):
        return False, None
    recorded = [{k: s[k] for k in ("path", "size", "mtime_ns")} for s in old.get("sources", [])]
    if recorded == stats:  # same files, untouched: no need to hash them again
        return True, None
    hashed = _hash_sources(stats, root)
    return _fingerprint(dataset, config, skip_bad, hashed) == old.get("fingerprint"), hashed


def _hash_sources(stats: list[dict], root: Path) -> list[dict]:
    return [dict(s, sha256=file_sha256(root / s["path"]) if not Path(s["path"]).is_absolute()
                 else file_sha256(s["path"])) for s in stats]


# ----------------------------------------------------------------------------------------------
# the whole dataset
# ----------------------------------------------------------------------------------------------
def prepared_dir(out: str | Path, dataset: str, config: PrepConfig | None, raw: str | Path,
                 image_glob: str | None = None, mask_glob: str | None = None, patient: str | None = None) -> Path:
    """Where ``prepare_dataset`` puts ``dataset`` from the folder ``raw`` (the layout's located
    root) prepared with ``config``: out/<dataset>/<hash of the config, raw's resolved path and the
    file patterns and patient pattern>/. Two sources never share a folder (one profile's phantom cohort and another's,
    or the phantom and the real data), so preparing one cannot replace the slices another run is
    reading; the same source whose files changed is prepared again in its own folder
    (``_up_to_date``)."""
    key = {"prep": (config or PrepConfig()).to_dict(), "source": str(Path(raw).resolve())}
    if image_glob or mask_glob:
        key["globs"] = [image_glob, mask_glob]
    if patient is not None:
        key["patient"] = patient
    return Path(out) / dataset / config_hash(key)


def prepare_dataset(dataset: str, raw: str | Path, out: str | Path, config: PrepConfig | None = None,
                    skip_bad: bool = False, *, image_glob: str | None = None, mask_glob: str | None = None,
                    patient: str | None = None, workers: int = 1, max_bytes: int | None = None,
                    log: Callable[[str], None] | None = None) -> Path:
    """Prepare ``dataset`` from the folder ``raw`` into ``prepared_dir(out, ...)`` and return it.

    ``skip_bad``: instead of stopping at the first unusable file, record it (manifest, ``bad_files.csv``)
    and go on without it. ``image_glob``, ``mask_glob``, ``patient``: a folder laid out otherwise
    (``Layout.discover``). ``workers`` > 1 reads volumes in parallel processes.
    """
    log = log or (lambda msg: None)
    config = config or PrepConfig()
    layout = get_layout(dataset)
    discovery = layout.discover(raw, image_glob, mask_glob, patient)
    root = discovery.root
    target = prepared_dir(out, dataset, config, root, image_glob, mask_glob, patient)

    bad: list[tuple[Path, str]] = list(discovery.problems)
    if bad and not skip_bad:
        _raise_bad(bad)
    stats = _stat_sources(discovery.source_files(), root)
    fresh, hashed = _up_to_date(target, dataset, config, skip_bad, stats, root)
    if fresh:
        log(f"{target}: up to date (fingerprint unchanged), nothing to do")
        return target
    t0 = time.perf_counter()
    sources = hashed if hashed is not None else _hash_sources(stats, root)
    fingerprint = _fingerprint(dataset, config, skip_bad, sources)

    # 1. headers (cheap) for every case; 2. patient split over all discovered patients
    split_of = split_patients([c.patient for c in discovery.cases], layout.role,
                              layout.test_fraction(config.test_fraction), config.seed, config.val_fraction)
    tables: list[pd.DataFrame] = []
    header_of = _read_headers(discovery.cases, split_of, root, config, skip_bad, max_bytes, bad, tables)
    headers_ok = list(header_of)
    log(f"{layout.title}: {len(discovery.cases)} volumes of {len(split_of)} patients found under {root}; "
        f"reading {len(headers_ok)}")

    with atomic_directory(target, replace=True) as tmp:
        work = tmp / "_work"
        work.mkdir()
        results = _run_cases(headers_ok, split_of, discovery, config, work, root, max_bytes, workers)
        kept_masks, image_files = _collect_cases(results, header_of, split_of, root, config, skip_bad, bad, tables)
        table = _finalise_table(tables, config)
        counts = _write_arrays(tmp, table, tables, kept_masks, image_files, config)
        counts = _counts(table, bad, counts)
        table.to_csv(tmp / SLICES, index=False)
        if bad:
            pd.DataFrame([{"file": _rel(p, root), "error": msg} for p, msg in bad]).to_csv(tmp / BAD_FILES, index=False)
        manifest = {
            "prep_version": PREP_VERSION, "dataset": dataset, "title": layout.title, "role": layout.role,
            "raw": str(root.resolve()), "config": config.to_dict(), "config_hash": config.hash(),
            "skip_bad": skip_bad, "fingerprint": fingerprint, "sources": sources, "counts": counts,
            "paper_counts": layout.paper_counts,
            "bad_files": [{"file": _rel(p, root), "error": msg} for p, msg in bad],
            "patients": {s: sorted(p for p, v in split_of.items() if v == s) for s in ("train", "val", "test", "unused")},
            "arrays": {"images": [int(counts["kept"]), config.channels, config.size, config.size],
                       "masks": [int(counts["kept"]), config.size, config.size]},
            "seconds": round(time.perf_counter() - t0, 3),
        }
        atomic_write_text(tmp / SUMMARY, format_summary(manifest) + "\n")
        atomic_write_json(tmp / MANIFEST, manifest)
        for f in work.iterdir():
            f.unlink()
        work.rmdir()
        for f in tmp.iterdir():  # temp files are created private; the cache is meant to be shared
            f.chmod(0o644)
        tmp.chmod(0o755)
    log(format_summary(manifest))
    return target


def _read_headers(cases: list[Case], split_of: dict, root: Path, config: PrepConfig, skip_bad: bool,
                  max_bytes: int | None, bad: list, tables: list[pd.DataFrame]) -> dict:
    """Each case's image header (cheap), in discovery order, for the cases to read; the slices of a
    patient the split does not sample go to ``tables`` as dropped, unusable files to ``bad``."""
    header_of = {}
    for case in cases:
        try:
            ih, mh = read_header(case.image, max_bytes=max_bytes), read_header(case.mask, max_bytes=max_bytes)
            check_same_grid(ih, mh)
        except IchsegError as exc:
            if not skip_bad:
                raise
            bad.append(_error_of(exc, case))
            continue
        if split_of[case.patient] == "unused":
            t = _rows(case, "unused", root, ih.n_slices, _header_source_slice(ih), ih.canonical_spacing,
                      ih.canonical_shape, config.size)
            t["drop_reason"] = REASON_NOT_SAMPLED
            tables.append(t)
        else:
            header_of[case] = ih
    return header_of


def _collect_cases(results, header_of: dict, split_of: dict, root: Path, config: PrepConfig, skip_bad: bool,
                   bad: list, tables: list[pd.DataFrame]) -> tuple[dict[int, np.ndarray], dict[int, Path]]:
    """The read cases' rows into ``tables`` (a failed case's slices as dropped); the kept masks and
    image files by table index."""
    kept_masks: dict[int, np.ndarray] = {}
    image_files: dict[int, Path] = {}
    for res in results:
        if res.error is not None:
            if not skip_bad:
                raise IchsegError(f"{res.error[0]}: {res.error[1]}")
            bad.append(res.error)
            h = header_of[res.case]  # its slices are accounted for as dropped
            t = _rows(res.case, split_of[res.case.patient], root, h.n_slices, _header_source_slice(h),
                      h.canonical_spacing, h.canonical_shape, config.size)
            t["drop_reason"] = REASON_BAD_FILE
            tables.append(t)
            continue
        kept_masks[len(tables)], image_files[len(tables)] = res.masks, res.image_file
        tables.append(res.rows)
    return kept_masks, image_files


def _header_source_slice(h) -> np.ndarray:
    src_axis = int(np.nonzero(h.ornt[:, 0] == 2)[0][0])
    k = np.arange(h.n_slices)
    return np.where(h.ornt[src_axis, 1] < 0, h.shape[src_axis] - 1 - k, k)


def _raise_bad(bad: list[tuple[Path, str]]) -> None:
    path, msg = bad[0]
    more = f" (and {len(bad) - 1} more problem(s); --skip-bad records them and goes on)" if len(bad) > 1 else ""
    raise IchsegError(f"{path}: {msg}{more}")


def _run_cases(cases, split_of, discovery, config, work, root, max_bytes, workers) -> Iterator[_CaseResult]:
    """Results in case order, lazily: a strict run stops at the first bad volume."""
    # workers get a light copy of the discovery: the layout and its side tables, not every case
    light = Discovery(discovery.layout, discovery.root, [], aux=discovery.aux)
    args = [(i, c, split_of[c.patient], light, config, work, root, max_bytes) for i, c in enumerate(cases)]
    if workers <= 1 or len(cases) < 2:
        yield from (_process_case(*a) for a in args)
        return
    import multiprocessing as mp

    # spawn: a forked child would inherit torch's thread-pool state
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_worker_init)
    try:
        futures = [pool.submit(_process_case, *a) for a in args]
        for f in futures:
            yield f.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _finalise_table(tables: list[pd.DataFrame], config: PrepConfig) -> pd.DataFrame:
    """One table of all source slices: training negatives downsampled, kept rows numbered."""
    if not tables:
        raise IchsegError("no usable volume left to prepare")
    table = pd.concat(tables, ignore_index=True)
    table["positive"] = table["positive"].astype("Int8")
    train = np.flatnonzero(((table["split"] == "train") & (table["drop_reason"] == "")).to_numpy())
    keep = np.zeros(len(table), bool)
    # validation and test keep every slice: they are scored on the natural share of empty slices
    keep[np.flatnonzero((table["split"].isin(("val", "test")) & (table["drop_reason"] == "")).to_numpy())] = True
    if train.size:
        pos = table["positive"].to_numpy(dtype=float, na_value=0)[train] > 0
        kt = downsample_negatives(pos, config.negative_ratio, config.seed)
        keep[train[kt]] = True
        table.loc[train[~kt], "drop_reason"] = REASON_DOWNSAMPLED
    if not keep.any():
        raise IchsegError("no usable slice left to prepare (every volume was unusable or dropped)")
    table["kept"] = keep.astype(int)
    table["row"] = -1
    table.loc[keep, "row"] = np.arange(int(keep.sum()))
    return table


def _write_arrays(tmp: Path, table: pd.DataFrame, tables, kept_masks, image_files, config) -> dict:
    n = int(table["kept"].sum())
    images = np.lib.format.open_memmap(tmp / IMAGES, mode="w+", dtype=np.float32,
                                       shape=(n, config.channels, config.size, config.size))
    masks = np.lib.format.open_memmap(tmp / MASKS, mode="w+", dtype=np.uint8, shape=(n, config.size, config.size))
    start = 0
    for i, t in enumerate(tables):
        stop = start + len(t)
        if i in image_files:
            keep = table["kept"].to_numpy()[start:stop].astype(bool)
            rows = table["row"].to_numpy()[start:stop][keep]
            if rows.size:
                vol = np.load(image_files[i], mmap_mode="r")
                images[rows] = vol[keep]
                masks[rows] = kept_masks[i][keep]
        start = stop
    images.flush()
    masks.flush()
    del images, masks
    return {"kept": n}


def _counts(table: pd.DataFrame, bad, counts: dict) -> dict:
    total = len(table)
    dropped = table.loc[table["kept"] == 0, "drop_reason"].value_counts().to_dict()
    kept = int(table["kept"].sum())
    if kept + sum(dropped.values()) != total:  # every source slice is kept or dropped with a reason
        raise RuntimeError(f"slice accounting failed: {kept} kept + {dropped} != {total}")
    splits = {}
    for split in ("train", "val", "test"):
        part = table[table["split"] == split]
        k = part[part["kept"] == 1]
        pos = int((k["positive"] == 1).sum())
        splits[split] = {
            "patients": int(part["patient"].nunique()), "volumes": int(part["volume"].nunique()),
            "source_slices": len(part), "source_positive": int((part["positive"] == 1).sum()),
            "slices": len(k), "positive": pos, "negative": len(k) - pos,
        }
    return {
        "source_slices": total, "kept": kept, "dropped": {str(k): int(v) for k, v in dropped.items()},
        "splits": splits, "unused_slices": int((table["split"] == "unused").sum()),
        "bad_files": len(bad),
    }


# ----------------------------------------------------------------------------------------------
# summary: our counts beside the paper's (§4.1)
# ----------------------------------------------------------------------------------------------
def summary_table(manifest: dict) -> pd.DataFrame:
    """Slice counts of one prepared dataset beside those paper §4.1 reports."""
    c, paper = manifest["counts"], manifest.get("paper_counts", {})
    tr, te = c["splits"]["train"], c["splits"]["test"]
    rows = []
    if manifest.get("role") != ROLE_TEST_SAMPLE:
        rows += [("train slices before downsampling", paper.get("train_before_downsampling"), tr["source_slices"]),
                 ("train slices (kept)", paper.get("train"), tr["slices"]),
                 ("  train positive", paper.get("train_positive"), tr["positive"]),
                 ("  train negative", paper.get("train_negative"), tr["negative"]),
                 ("train patients", None, tr["patients"])]
        va = c["splits"].get("val")
        if va and va["patients"]:  # carved from the training patients; the paper has none
            rows += [("validation slices", None, va["slices"]), ("  validation positive", None, va["positive"]),
                     ("validation patients", None, va["patients"])]
    rows += [("test slices", paper.get("test"), te["slices"]), ("  test positive", None, te["positive"]),
             ("  test negative", None, te["negative"]), ("test patients", None, te["patients"]),
             ("test volumes", None, te["volumes"])]
    df = pd.DataFrame(rows, columns=["quantity", "paper (§4.1)", "ours"])
    df.insert(0, "dataset", manifest.get("title", manifest["dataset"]))
    df["paper (§4.1)"] = df["paper (§4.1)"].astype("Int64")
    return df


def format_summary(manifest: dict) -> str:
    c = manifest["counts"]
    lines = [f"{manifest.get('title', manifest['dataset'])} prepared with config {manifest['config_hash']} "
             f"(fingerprint {manifest['fingerprint']}; 'paper' = counts reported in paper §4.1 on the real data, "
             f"'ours' = this preparation)",
             summary_table(manifest).astype(object).fillna("-").to_string(index=False),
             f"source slices {c['source_slices']} = kept {c['kept']} + dropped "
             + (", ".join(f"{v} {k}" for k, v in sorted(c["dropped"].items())) or "0")]
    if c["bad_files"]:
        lines.append(f"bad files skipped: {c['bad_files']} (listed in {BAD_FILES})")
    return "\n".join(lines)

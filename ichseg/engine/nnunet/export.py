"""Dataset export: prepared slices -> an nnU-Net raw dataset (one case per patient).

``imagesTr``/``labelsTr`` hold the train and validation patients, ``imagesTs`` the test patients'
images only; ``cases.csv`` maps each case's z-slices back to prepared rows, so nnU-Net's
predictions land on the very slices every other model is scored on. ``write_splits`` writes our
patient split as nnU-Net's fold 0. (Why cases are patients, why the in-plane spacing is 1 and why
the channel is ``noNorm``: the book's baselines page.)
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ...data import SliceDataset
from ...data.preparation import IMAGES, MASKS, read_manifest
from ...errors import ConfigError, IchsegError
from ...utils import atomic_directory, atomic_write_json
from ..config import NNUNET_CHANNEL_NAMES
from .process import read_json

CASES = "cases.csv"
#: the export's stamp, in the raw dataset folder
EXPORT_STAMP = "ichseg_export.json"
EXPORT_VERSION = 2
FILE_ENDING = ".nii.gz"


def dataset_name(dataset_id: int, name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name or ""):
        raise ConfigError(f"nnunet dataset name: use letters, digits, '_' and '-' only, got {name!r}")
    return f"Dataset{int(dataset_id):03d}_{name}"


def _case_ids(patients: list[str]) -> dict[str, str]:
    """Patient -> a file-name-safe, unique nnU-Net case id (readable: derived from the patient)."""
    out, used = {}, set()
    for p in patients:
        base = re.sub(r"[^A-Za-z0-9-]+", "-", str(p)).strip("-") or "case"
        cid, k = base, 1
        while cid.lower() in used:
            k += 1
            cid = f"{base}-{k}"
        used.add(cid.lower())
        out[p] = cid
    return out


def case_table(prepared: str | Path, splits: tuple[str, ...] = ("train", "val", "test")) -> pd.DataFrame:
    """One row per kept slice of ``splits``: case, z (position in the case), split, patient,
    volume, row (of the prepared arrays), slice (index of ``slices.csv``), thickness_mm."""
    parts = []
    for split in splits:
        t = SliceDataset(prepared, split=split).table
        parts.append(pd.DataFrame({"split": split, "patient": t["patient"].astype(str).to_numpy(),
                                   "volume": t["volume"].astype(str).to_numpy(), "row": t["row"].to_numpy(int),
                                   "slice": t.index.to_numpy(int), "thickness_mm": t["thickness_mm"].to_numpy(float)}))
    table = pd.concat(parts, ignore_index=True)
    ids = _case_ids(list(dict.fromkeys(table["patient"])))
    table.insert(0, "case", table["patient"].map(ids))
    table.insert(1, "z", table.groupby("case").cumcount())
    return table


def _write_case(folder: Path, case: str, images: np.ndarray, thickness: float, labels_folder: Path | None,
                masks: np.ndarray | None) -> None:
    """images (Z, C, H, W) -> <case>_000c.nii.gz; masks (Z, H, W) -> labels/<case>.nii.gz.

    Voxel (x, y, z) of the NIfTI file = pixel (row y, column x) of slice z, so nnU-Net's
    SimpleITK reader returns (Z, H, W) arrays in our slice order."""
    import nibabel as nib

    affine = np.diag([1.0, 1.0, max(float(thickness), 1.0), 1.0])

    def save(arr: np.ndarray, path: Path) -> None:
        img = nib.Nifti1Image(np.ascontiguousarray(arr.transpose(2, 1, 0)), affine)
        img.header.set_xyzt_units("mm")
        nib.save(img, str(path))

    for c in range(images.shape[1]):
        save(np.asarray(images[:, c], dtype=np.float32), folder / f"{case}_{c:04d}{FILE_ENDING}")
    if labels_folder is not None:
        save(np.asarray(masks, dtype=np.uint8), labels_folder / f"{case}{FILE_ENDING}")


def _export_stamp(manifest: dict, dataset_id: int, name: str, channel_name: str) -> dict:
    return {"export_version": EXPORT_VERSION, "dataset": manifest.get("dataset"),
            "prepared_fingerprint": manifest.get("fingerprint"), "prepared_config": manifest.get("config"),
            "dataset_id": int(dataset_id), "name": name, "channel_name": channel_name}


def export_raw_dataset(prepared: str | Path, nnunet_raw: str | Path, *, dataset_id: int = 501, name: str | None = None,
                       channel_name: str = "noNorm") -> Path:
    """Write the nnU-Net raw dataset ``nnunet_raw/DatasetXXX_<name>/`` of a prepared folder.

    ``imagesTr``/``labelsTr``: one case per patient of the train and validation splits (their kept
    slices stacked along z); ``imagesTs``: the test patients' images; ``dataset.json``;
    ``cases.csv`` (case, z -> split, prepared row, slices.csv index). Built in a temporary folder
    and renamed into place; returns at once when the folder already holds this export.
    """
    prepared, nnunet_raw = Path(prepared), Path(nnunet_raw)
    manifest = read_manifest(prepared)
    name = name or f"ICH{manifest.get('dataset', 'data')}"
    if channel_name not in NNUNET_CHANNEL_NAMES:
        raise ConfigError(f"nnunet.channel_name: unknown value {channel_name!r}; known: {', '.join(NNUNET_CHANNEL_NAMES)}")
    folder_name = dataset_name(dataset_id, name)
    target = nnunet_raw / folder_name
    stamp = _export_stamp(manifest, dataset_id, name, channel_name)
    if read_json(target / EXPORT_STAMP) == stamp:
        return target
    if nnunet_raw.is_dir():
        clash = sorted(p.name for p in nnunet_raw.glob(f"Dataset{int(dataset_id):03d}_*") if p.name != folder_name)
        if clash:
            raise IchsegError(f"{nnunet_raw}: dataset id {dataset_id} is already used by {clash[0]}; "
                              "choose another nnunet.dataset_id or another work folder")
    cases = case_table(prepared)
    if not (cases["split"] == "train").any():
        raise IchsegError(f"{prepared}: the train split has no slices; nnU-Net cannot be trained on "
                          f"{manifest.get('dataset')} (a test-only dataset: use `predict` with a trained model)")
    if not (cases["split"] == "val").any():
        raise IchsegError(f"{prepared}: the validation split has no slices; nnU-Net's validation fold would be "
                          "empty (set prep.val_fraction > 0)")
    images = np.load(prepared / IMAGES, mmap_mode="r")
    masks = np.load(prepared / MASKS, mmap_mode="r")
    if masks.ndim == 4:  # (N, 1, H, W) also accepted
        masks = masks[:, 0]
    n_channels = int(images.shape[1])
    with atomic_directory(target, replace=True) as tmp:
        for sub in ("imagesTr", "labelsTr", "imagesTs"):
            (tmp / sub).mkdir()
        for case, part in cases.groupby("case", sort=False):
            rows = part["row"].to_numpy(int)
            img, msk = images[rows], masks[rows]
            thick = float(np.median(part["thickness_mm"]))
            if part["split"].iloc[0] == "test":  # images only: no test label reaches nnU-Net
                _write_case(tmp / "imagesTs", case, img, thick, None, None)
            else:
                _write_case(tmp / "imagesTr", case, img, thick, tmp / "labelsTr", msk)
        n_cases = int(cases.loc[cases["split"] != "test", "case"].nunique())
        atomic_write_json(tmp / "dataset.json", {
            "name": name,
            "description": f"{manifest.get('title', manifest.get('dataset'))}: prepared slices "
                           f"(config {manifest.get('config_hash')}, fingerprint {manifest.get('fingerprint')}), "
                           "one case per patient, exported by ichseg",
            "channel_names": {str(c): channel_name for c in range(n_channels)},
            "labels": {"background": 0, "hemorrhage": 1},
            "numTraining": n_cases,
            "file_ending": FILE_ENDING,
            "overwrite_image_reader_writer": "SimpleITKIO",
        })
        cases.drop(columns=["thickness_mm"]).to_csv(tmp / CASES, index=False)
        atomic_write_json(tmp / EXPORT_STAMP, stamp)
        for p in tmp.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        tmp.chmod(0o755)
    return target


def read_cases(raw_dataset: str | Path) -> pd.DataFrame:
    path = Path(raw_dataset) / CASES
    if not path.is_file():
        raise IchsegError(f"{path}: not found; is {raw_dataset} a dataset written by export_raw_dataset?")
    return pd.read_csv(path, dtype={"case": str, "patient": str, "volume": str, "split": str})


def write_splits(raw_dataset: str | Path, preprocessed_dataset: str | Path) -> Path:
    """``splits_final.json`` with one fold: train = our train-split patients' cases, val = our
    validation-split patients' cases (patient-disjoint from each other and from the test
    patients by construction, checked)."""
    cases = read_cases(raw_dataset)
    per_case = cases.groupby("case", sort=False).agg(split=("split", "unique"), patient=("patient", "unique"))
    if (per_case["split"].map(len) != 1).any() or (per_case["patient"].map(len) != 1).any():
        raise IchsegError(f"{Path(raw_dataset) / CASES}: a case spans several patients or splits")
    split_of = per_case["split"].map(lambda s: s[0])
    train, val = sorted(split_of.index[split_of == "train"]), sorted(split_of.index[split_of == "val"])
    patients = {s: set(cases.loc[cases["split"] == s, "patient"]) for s in ("train", "val", "test")}
    if patients["train"] & patients["val"] or (patients["train"] | patients["val"]) & patients["test"] \
            or not train or not val:
        raise IchsegError(f"{raw_dataset}: the train/validation/test split is not patient-disjoint or a split is empty")
    path = Path(preprocessed_dataset) / "splits_final.json"
    atomic_write_json(path, [{"train": train, "val": val}])
    return path


def export_images(prepared: str | Path, split: str, folder: str | Path) -> pd.DataFrame:
    """Images of one split as nnU-Net input files (one case per patient) in ``folder``; the case
    table (rows in ``SliceDataset(prepared, split).table`` order)."""
    prepared, folder = Path(prepared), Path(folder)
    read_manifest(prepared)
    cases = case_table(prepared, (split,))
    if cases.empty:
        raise IchsegError(f"{prepared}: split {split!r} has no slices")
    images = np.load(prepared / IMAGES, mmap_mode="r")
    folder.mkdir(parents=True, exist_ok=True)
    for case, part in cases.groupby("case", sort=False):
        _write_case(folder, case, images[part["row"].to_numpy(int)], float(np.median(part["thickness_mm"])), None, None)
    return cases


__all__ = ["CASES", "EXPORT_STAMP", "EXPORT_VERSION", "case_table", "dataset_name", "export_images",
           "export_raw_dataset", "read_cases", "write_splits"]

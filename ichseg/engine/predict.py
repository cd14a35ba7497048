"""Segment a user's head CT scans with a trained checkpoint (``ichseg predict``).

A scan goes through the same preparation as the training data (the run config's ``data.prep``),
every axial slice is segmented (batched, with an ensemble) under the settings the checkpoint's
profile evaluates with (``eval_settings``) or those an exported checkpoint carries for prediction
(``weights.set_predict_settings``: chosen on validation patients), each option given replacing
one; the outputs are mapped back onto the input's own voxel grid and affine so they overlay the
scan in any viewer:
``mask.nii.gz`` (uint8), ``probability.nii.gz`` and ``uncertainty.nii.gz`` (float32), a picture to
check them (``preview.png`` and the self-contained ``report.html`` of ``scan_report``) and
``summary.json`` (volume in mL with the spread of the ensemble members' volumes, the ABC/2
estimate, the slices involved, the settings used, and what was read: for a DICOM series its
number, description, spacing and the corrections applied, never a patient identifier).

A scan is a NIfTI file, a folder holding one DICOM CT series or one file of such a series
(``ichseg.data.dicom``: HU through the rescale, the affine from the patient geometry, gantry tilt
and uneven spacing corrected); a folder with several series is refused with their list, and
``series`` picks one.

Inside the skull: an intracranial hemorrhage lies inside the skull, and soft tissue outside it (the
temporal muscles, the face) reads like blood, so by default the probability is kept only where
``ichseg.data.cavity.inside_skull`` says a hemorrhage can be, and ``summary.json`` records how much
was marked outside and left out (``outside_skull_ml``); ``inside_skull=False``
(``--keep-outside-skull``) keeps everything, e.g. for a skull opened by surgery.

Writing: the files are made in a staging folder and moved into ``--out`` one by one, the summary
last (it marks a finished prediction; the earlier one is removed first). Only the files a
prediction writes are ever replaced; anything else in the folder is left alone.

Two seams let other readers and writers plug in with one call each: ``load_scan`` (path ->
``Volume`` + metadata) and ``write_extras`` (files beside the NIfTI outputs).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..data.volumes import Volume, check_hounsfield, dicom_files, is_nifti_name
from ..errors import IchsegError
from ..metrics.volume import abc2, mask_volume_ml, volume_spread
from ..utils import atomic_write_json, method_of
from .checkpoint import load_checkpoint
from .config import EvalConfig
from .devices import inference_amp, resolve_device
from .evaluate import model_from_state
from .inference import eval_settings, segment
from .provenance import environment
from .weights import PREDICT

SUMMARY = "summary.json"
VOLUME_DEFINITIONS = (
    "hemorrhage_volume_ml: voxels of mask.nii.gz (ensemble mean >= threshold) x voxel volume; "
    "hemorrhage_volume_range_ml: min-max of the ensemble members' own mask volumes (each member mapped and "
    "thresholded alike); the mean's mask keeps only voxels most members agree on, so it can lie below the range; "
    "abc2: Kothari et al., Stroke 1996, on the mask; "
    "outside_skull_ml: what the ensemble mean marked outside the skull (ichseg.data.cavity), left out of the mask "
    "and the volumes (null: kept, --keep-outside-skull)"
)
NIFTI_OUTPUTS = ("mask.nii.gz", "probability.nii.gz", "uncertainty.nii.gz")
#: slices sampled together on a CPU unless --batch-slices says otherwise: a GPU-sized batch (the
#: cpu profile evaluates 32 slices x 3 members at once) holds ~0.5 GB more activations and is no
#: faster on a CPU (bench/predict_cpu.py); with ddim / dpm-solver++ the result does not depend on
#: it (each slice starts from the same stream of noise in any batch, and nothing else is drawn)
CPU_BATCH_SLICES = 8
_STAGING = ".ichseg-predict-"  # prefix of the staging folder (hidden; removed on success and failure)
REPLACING = ".ichseg-predict-replacing"  # marks a folder whose earlier prediction is being replaced


# -- inputs --------------------------------------------------------------------------------------------
def check_checkpoint_file(path: str | Path) -> Path:
    """Refuse, in one line, what cannot be a checkpoint before torch reads it (a NIfTI, a folder,
    any file that is not a zip archive, which is how torch saves)."""
    path = Path(path)
    if path.is_dir():
        raise IchsegError(f"{path}: a folder, not a checkpoint; --checkpoint takes a .pt file "
                          f"(a run's checkpoints/best.pt, or the weights of `ichseg export`)")
    if not path.is_file():
        raise IchsegError(f"{path}: checkpoint not found")
    with open(path, "rb") as fh:
        head = fh.read(352)
    if is_nifti_name(path) or head[344:348] in (b"n+1\x00", b"ni1\x00") or head[:2] == b"\x1f\x8b":
        raise IchsegError(f"{path}: a NIfTI volume, not a checkpoint; give it as the scan and the model's .pt "
                          f"file as --checkpoint (e.g. results/cpu/model/full.pt)")
    if head[:4] != b"PK\x03\x04":
        raise IchsegError(f"{path}: not a checkpoint (not a PyTorch file); --checkpoint takes a .pt file written by "
                          f"`ichseg train` or `ichseg export`")
    return path


def load_scan(path: str | Path, *, series: str | None = None, hu_check: bool = True) -> tuple[Volume, dict]:
    """The seam every scan enters by: (volume in HU, RAS+; metadata for the summary).

    A NIfTI file, a DICOM file (its series) or a folder holding a DICOM series, read by
    ``ichseg.data.dicom.load_scan`` (``series`` picks one of several; NIfTI takes none). Then the
    volume must look like CT in Hounsfield units (``check_hounsfield``) unless ``hu_check`` is off."""
    from ..data.dicom import load_scan as read_scan

    path = Path(path)
    vol, meta = read_scan(path, series)
    if vol.n_slices < 1:
        raise IchsegError(f"{path}: the volume has no axial slices")
    if hu_check:
        check_hounsfield(vol)
    return vol, meta


def is_dicom_input(path: Path) -> bool:
    """A scan that is not a NIfTI file: a DICOM series folder or one of its files."""
    return not (Path(path).is_file() and is_nifti_name(path))


def expand_inputs(paths: list[Path]) -> list[Path]:
    """The scans named on the command line: a NIfTI file, a DICOM file's series folder... as given;
    a folder holding DICOM files is one scan (a series); any other folder stands for the NIfTI
    files and the DICOM series folders directly inside it. A path that does not exist, or a folder
    with no scan, is refused in one line before anything is read or written."""
    scans: list[Path] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise IchsegError(f"{p}: file not found")
        if p.is_dir() and not dicom_files(p):
            inside = sorted(q for q in p.iterdir() if not q.name.startswith(".")
                            and ((q.is_file() and is_nifti_name(q)) or (q.is_dir() and dicom_files(q))))
            if not inside:
                raise IchsegError(f"{p}: a folder with no NIfTI volume (.nii, .nii.gz) and no DICOM series in it")
            scans.extend(inside)
        else:
            scans.append(p)
    return scans


def scan_names(scans: list[Path]) -> list[str]:
    """One output subfolder name per scan (its file name without .nii/.nii.gz, or its folder's
    name), made unique in order (``name``, ``name-2``, ...) so a rerun maps each scan to its folder."""
    from ..data.volumes import volume_id

    names, seen = [], {}
    for s in scans:
        base = volume_id(s) if s.is_file() else s.name
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return names


# -- outputs -------------------------------------------------------------------------------------------
def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists():
        p = p.parent
    return p


def check_out_dir(out_dir: Path, *, own: tuple[str, ...] = (SUMMARY,)) -> None:
    """Refuse an ``--out`` that cannot take a prediction, creating nothing: one that is a file, lies
    under a file or an unwritable folder, or is a non-empty folder with files of someone else's and
    no earlier prediction (``own[0]``, or the marker of one being replaced, ``REPLACING``) in it."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise IchsegError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir():
        entries = [p.name for p in out_dir.iterdir() if not p.name.startswith(".")]  # hidden: staging, .DS_Store
        if entries and own[0] not in entries and not (out_dir / REPLACING).is_file():
            raise IchsegError(f"{out_dir}: exists, is not empty and holds no earlier prediction; choose another --out")
    base = _nearest_existing(out_dir)
    if not base.is_dir():
        raise IchsegError(f"{out_dir}: cannot write there ({base} is a file)")
    if not os.access(base, os.W_OK | os.X_OK):
        raise IchsegError(f"{out_dir}: cannot write there ({base} is not writable)")


def write_extras(outdir: Path, *, volume: Volume, probability: np.ndarray, uncertainty: np.ndarray,
                 mask: np.ndarray, summary: dict) -> list[str]:
    """The files beside the NIfTI outputs, written into ``outdir`` (the staging folder; arrays on the
    scan's own grid, ``volume`` its RAS+ view); returns their names, which the summary lists so a
    later prediction replaces them: ``preview.png`` and ``report.html`` (``scan_report``)."""
    from .scan_report import canonical, write_scan_report

    written = write_scan_report(
        outdir, volume.data, canonical(mask, volume), canonical(uncertainty, volume), volume.spacing,
        name=Path(summary["scan"]).name, volume_ml=summary["hemorrhage_volume_ml"],
        volume_range_ml=summary.get("hemorrhage_volume_range_ml"), abc2_ml=(summary.get("abc2") or {}).get("volume_ml"),
        slices=summary["slices_with_hemorrhage"], slice_labels=volume.source_slice(np.arange(volume.n_slices)),
        details=report_details(summary))
    return [Path(p).name for p in written.values()]


def report_details(summary: dict) -> dict:
    """The report's further rows: what was read, and how it was segmented."""
    meta, ev = summary.get("input") or {}, summary.get("evaluate") or {}
    if meta.get("format") == "dicom":
        read = (f"DICOM series #{meta.get('series_number') or '?'} '{meta.get('series_description') or 'no description'}'"
                f", {meta.get('n_files')} files, slices every {meta.get('slice_spacing_mm')} mm")
    else:
        read = "NIfTI"
    rows = {"Input": read, "Voxel size (mm)": " x ".join(f"{v:g}" for v in meta.get("spacing_mm") or [])}
    if meta.get("corrections"):
        rows["Corrections"] = "; ".join(meta["corrections"])
    rows["Model"] = f"{Path(summary['checkpoint']).name} ({summary.get('method')})"
    rows["Sampling"] = (f"{ev.get('sampler')}, {ev.get('steps')} steps, {ev.get('ensemble')} members, "
                        f"threshold {summary.get('threshold')}")
    outside = summary.get("outside_skull_ml")
    rows["Outside the skull"] = ("kept (--keep-outside-skull)" if outside is None else
                                 f"{outside:.1f} mL marked there, left out of the mask and the volumes")
    return rows


def _publish(staging: Path, out_dir: Path) -> None:
    """Move the staged files into ``out_dir``: the earlier summary goes first (the folder then holds
    no finished prediction), the new one comes last; an earlier prediction's files this one did not
    write are removed; nothing else in the folder is touched."""
    old = out_dir / SUMMARY
    previous: list[str] = []
    if old.is_file():
        try:
            previous = list(json.loads(old.read_text()).get("files", []))
        except (OSError, ValueError, AttributeError):
            previous = []
    # while files are swapped the folder holds no finished prediction, but says it is ours to finish
    (out_dir / REPLACING).write_text("ichseg predict is replacing its files here\n")
    old.unlink(missing_ok=True)
    names = json.loads((staging / SUMMARY).read_text())["files"]
    for name in names:
        if name != SUMMARY:
            os.replace(staging / name, out_dir / name)
    for name in set(previous) - set(names) - {SUMMARY}:
        if "/" not in name and (out_dir / name).is_file():
            (out_dir / name).unlink()
    os.replace(staging / SUMMARY, out_dir / SUMMARY)
    (out_dir / REPLACING).unlink()


def write_prediction(out_dir: Path, build) -> None:
    """Run ``build(staging)`` (it writes the files and their summary) and publish the result: a new
    folder appears whole (renamed into place); an existing one gets only its own files replaced."""
    out_dir = Path(out_dir)
    fresh = not out_dir.exists()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING if not fresh else f".{out_dir.name}.", suffix=".tmp",
                                    dir=out_dir.parent if fresh else out_dir))
    try:
        build(staging)
        if fresh:
            staging.chmod(0o777 & ~_umask())
            os.replace(staging, out_dir)
        else:
            _publish(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- one scan ------------------------------------------------------------------------------------------
@dataclass
class Predictor:
    """A loaded checkpoint and the settings it samples with; ``__call__`` segments one volume."""

    checkpoint: Path
    model: torch.nn.Module
    diffusion: Any
    cfg: dict
    ecfg: EvalConfig
    device: torch.device
    threshold: float
    hu_check: bool = True
    progress: bool = True
    inside_skull: bool = True  # keep the probability only inside the skull (module docstring)
    series: str | None = None  # the DICOM series to read where a folder holds several
    settings_from: str = "the profile's evaluation settings"  # where the sampling defaults came from
    timings: dict = field(default_factory=dict)

    @classmethod
    def load(cls, checkpoint: str | Path, overrides: Mapping[str, Any] | None = None, *, device: str = "auto",
             threshold: float | None = None, hu_check: bool = True, progress: bool = True,
             series: str | None = None, inside_skull: bool = True) -> "Predictor":
        checkpoint = check_checkpoint_file(checkpoint)
        dev = resolve_device(device, "--device")
        state = load_checkpoint(checkpoint)
        model, diffusion, cfg, _ = model_from_state(state, dev, source=checkpoint)
        chosen = state.get(PREDICT) or {}
        del state
        # the profile's evaluation settings, then those chosen for prediction, then the options given
        ecfg = eval_settings(eval_settings(cfg, chosen.get("settings")), overrides)
        settings_from = (f"chosen for prediction on validation patients ({chosen['chosen_by']})" if chosen
                         else "the profile's evaluation settings")
        if dev.type == "cpu" and (overrides or {}).get("batch_slices") in (None, 0) and ecfg.batch_slices > CPU_BATCH_SLICES:
            ecfg = dataclasses.replace(ecfg, batch_slices=CPU_BATCH_SLICES)
        return cls(checkpoint, model, diffusion, cfg, ecfg, dev, ecfg.threshold if threshold is None else float(threshold),
                   hu_check, progress, bool(inside_skull), series, settings_from)

    def settings(self) -> dict:
        """What decides a prediction's result (a finished one is reused when these match)."""
        return {"checkpoint": str(Path(self.checkpoint).resolve()), "evaluate": dict(self.ecfg.__dict__),
                "threshold": self.threshold, "hu_check": self.hu_check, "series": self.series,
                "inside_skull": self.inside_skull}

    def slices(self, vol: Volume, scan: Path) -> torch.Tensor:
        from ..data import PrepConfig, preprocess_volume

        prep = PrepConfig.from_dict(dict(self.cfg.get("data", {}).get("prep") or {}))
        slices = torch.from_numpy(preprocess_volume(vol, prep))
        want = (self.cfg["model"]["in_channels"], self.cfg["model"]["image_size"])
        if (slices.shape[1], slices.shape[-1]) != want:
            raise IchsegError(f"{self.checkpoint}: expects {want[0]}-channel {want[1]}² slices; "
                              f"preparation of {scan} gave {tuple(slices.shape[1:])}")
        return slices

    def segment(self, slices: torch.Tensor, label: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(probability, uncertainty, members (Z, N, S, S) or None for a direct segmenter)."""
        ecfg, members = self.ecfg, []
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(slices), desc=f"segment {label}", unit="slice", leave=False)
        gen = torch.Generator(device=self.device).manual_seed(ecfg.seed)
        try:
            prob, unc = segment(self.model, self.diffusion, slices, sampler=ecfg.sampler,
                                steps=None if ecfg.sampler == "ddpm" else ecfg.steps, eta=ecfg.eta,
                                ensemble=ecfg.ensemble, batch_slices=ecfg.batch_slices, generator=gen,
                                device=self.device, amp=inference_amp(self.device, self.cfg["train"].get("amp", "none")),
                                progress=bar, on_members=members.append)
        finally:
            if bar is not None:
                bar.close()
        return prob, unc, (torch.cat(members) if members else None)

    def __call__(self, scan: str | Path, out_dir: str | Path) -> dict:
        """Segment ``scan`` into ``out_dir``; returns the summary written there."""
        t0 = time.perf_counter()
        scan, out_dir = Path(scan), Path(out_dir)
        check_out_dir(out_dir)
        vol, meta = load_scan(scan, series=self.series if is_dicom_input(scan) else None, hu_check=self.hu_check)
        slices = self.slices(vol, scan)
        t1, c1 = time.perf_counter(), time.process_time()
        prob, unc, members = self.segment(slices, scan.name)
        t2, c2 = time.perf_counter(), time.process_time()
        maps = _on_scan_grid(vol, prob, unc, members, self.threshold, inside_skull_of(vol) if self.inside_skull else None)
        del prob, unc, members, slices
        summary = self._summary(scan, vol, meta, maps)
        # where the time went: reading and preparing, sampling (also per slice, and the CPU time of this
        # process per slice, which other jobs on a shared machine inflate less than the wall clock),
        # mapping back and writing
        summary["timings_s"] = {"read": round(t1 - t0, 3), "segment": round(t2 - t1, 3),
                                "segment_per_slice": round((t2 - t1) / max(vol.n_slices, 1), 4),
                                "segment_cpu_per_slice": round((c2 - c1) / max(vol.n_slices, 1), 4)}

        def build(staging: Path) -> None:
            from ..data.volumes import write_nifti

            write_nifti(staging / "mask.nii.gz", maps["mask"], vol.original_affine, dtype=np.uint8)
            write_nifti(staging / "probability.nii.gz", maps["probability"], vol.original_affine, dtype=np.float32)
            write_nifti(staging / "uncertainty.nii.gz", maps["uncertainty"], vol.original_affine, dtype=np.float32)
            extras = write_extras(staging, volume=vol, probability=maps["probability"],
                                  uncertainty=maps["uncertainty"], mask=maps["mask"], summary=summary)
            summary["files"] = [*NIFTI_OUTPUTS, *extras, SUMMARY]
            summary["seconds"] = round(time.perf_counter() - t0, 2)
            summary["timings_s"]["map_and_write"] = round(time.perf_counter() - t2, 3)
            atomic_write_json(staging / SUMMARY, summary)

        write_prediction(out_dir, build)
        return summary

    def _summary(self, scan: Path, vol: Volume, meta: dict, maps: dict) -> dict:
        src_axis = int(np.nonzero(vol.ornt[:, 0] == 2)[0][0])  # the file's axis that is axial
        other = tuple(a for a in range(3) if a != src_axis)
        involved = np.flatnonzero(maps["mask"].any(axis=other))
        # the mask is back on the scan's own voxel grid, so the scan's voxel size is the unit here
        voxel_ml = abs(float(np.linalg.det(vol.original_affine[:3, :3]))) / 1000.0
        from nibabel import orientations as ornt_mod

        spread = volume_spread([v * voxel_ml for v in maps["member_voxels"]])
        return {
            "scan": str(scan),
            "input": meta,
            "checkpoint": str(self.checkpoint),
            "method": method_of(self.cfg),
            "shape": list(maps["mask"].shape),
            "hemorrhage_volume_ml": round(mask_volume_ml(maps["mask"], voxel_ml), 3),
            "hemorrhage_volume_range_ml": None if spread["samples"] == 0 else [round(spread["min_ml"], 3), round(spread["max_ml"], 3)],
            "ensemble_volumes_ml": [round(v * voxel_ml, 3) for v in maps["member_voxels"]],
            "outside_skull_ml": None if maps["outside_voxels"] is None else round(maps["outside_voxels"] * voxel_ml, 3),
            "abc2": _rounded(abc2(ornt_mod.apply_orientation(maps["mask"], vol.ornt), vol.spacing)),
            "voxel_volume_ml": voxel_ml,
            "slice_axis": src_axis,
            "slices_with_hemorrhage": [int(k) for k in involved],
            "threshold": self.threshold,
            "probability": "mean of the ensemble members' masks (the strict protocol's map)",
            "volume_definitions": VOLUME_DEFINITIONS,
            "evaluate": dict(self.ecfg.__dict__),
            "evaluate_defaults_from": self.settings_from,
            "settings": self.settings(),
            "environment": environment(self.device),
        }


def _rounded(d: dict) -> dict:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}


def inside_skull_of(vol: Volume) -> np.ndarray:
    """Where a hemorrhage can be in ``vol`` (``ichseg.data.cavity``), in ``axial_slices`` layout."""
    from ..data.cavity import inside_skull
    from ..data.slices import axial_slices

    return inside_skull(axial_slices(vol.data), (vol.spacing[1], vol.spacing[0]))  # a view: slice by slice


def _on_scan_grid(vol: Volume, prob: torch.Tensor, unc: torch.Tensor, members: torch.Tensor | None,
                  threshold: float, keep: np.ndarray | None = None) -> dict:
    """The maps on the scan's own grid; each member's mask is mapped and thresholded the way the
    probability is, so the members' volumes (their spread) are measured as the volume itself. The
    members are only counted, a few slices at a time (``slices_on_file_grid``), so the full-size
    arrays in memory are the outputs alone. ``keep`` (``axial_slices`` layout of the scan, e.g.
    ``inside_skull_of``): the probability and every member are kept only there, and the voxels the
    mean marked elsewhere are counted (``outside_voxels``; None without ``keep``)."""
    from ..data import volume_from_slices
    from ..data.slices import slices_of_file_grid, slices_on_file_grid

    def counted(z0: int, chunk: np.ndarray) -> int:
        hit = chunk >= threshold
        return int(np.count_nonzero(hit if keep is None else hit & keep[z0 : z0 + len(chunk)]))

    member_voxels = [sum(counted(z0, chunk) for z0, chunk in slices_on_file_grid(members[:, i].numpy(), vol, order=1))
                     for i in range(0 if members is None else members.shape[1])]
    prob_vol = volume_from_slices(prob.numpy(), vol, order=1)
    outside = None
    if keep is not None:
        view = slices_of_file_grid(prob_vol, vol)  # the probability in the layout of ``keep``: writes go through
        outside = int(np.count_nonzero((view >= threshold) & ~keep))
        view[~keep] = 0.0
    mask = (prob_vol >= threshold).astype(np.uint8)
    return {"probability": prob_vol, "uncertainty": volume_from_slices(unc.numpy(), vol, order=1),
            "mask": mask, "member_voxels": member_voxels, "outside_voxels": outside}


def predict_scan(
    checkpoint: str | Path,
    scan: str | Path,
    out_dir: str | Path,
    ecfg: EvalConfig | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    device: str = "auto",
    threshold: float | None = None,
    hu_check: bool = True,
    progress: bool = True,
    series: str | None = None,
    inside_skull: bool = True,
) -> dict:
    """Segment one scan (a NIfTI file, a DICOM series folder or file) into ``out_dir``.

    The sampling settings are the checkpoint profile's (``eval_settings``) with ``overrides``
    replacing values; ``ecfg`` fixes them all instead. Nothing is created before the inputs check."""
    check_checkpoint_file(checkpoint)
    check_out_dir(Path(out_dir))
    if not Path(scan).exists():
        raise IchsegError(f"{scan}: file not found")
    predictor = Predictor.load(checkpoint, overrides, device=device, threshold=threshold, hu_check=hu_check,
                               progress=progress, series=series, inside_skull=inside_skull)
    if ecfg is not None:
        predictor.ecfg = ecfg
        predictor.threshold = ecfg.threshold if threshold is None else float(threshold)
    return predictor(scan, out_dir)


# -- many scans ----------------------------------------------------------------------------------------
TABLE = "summary.csv"
TABLE_COLUMNS = ("scan", "status", "volume_ml", "volume_min_ml", "volume_max_ml", "abc2_ml", "slices",
                 "outside_skull_ml", "seconds", "output", "error")


def _row(scan: Path, out: Path, status: str, summary: dict | None = None, error: str = "") -> dict:
    s = summary or {}
    rng = s.get("hemorrhage_volume_range_ml") or [None, None]
    return {"scan": str(scan), "status": status, "volume_ml": s.get("hemorrhage_volume_ml"),
            "volume_min_ml": rng[0], "volume_max_ml": rng[1], "abc2_ml": (s.get("abc2") or {}).get("volume_ml"),
            "slices": len(s["slices_with_hemorrhage"]) if "slices_with_hemorrhage" in s else None,
            "outside_skull_ml": s.get("outside_skull_ml"), "seconds": s.get("seconds"), "output": str(out), "error": error}


def _finished(out: Path, settings: dict) -> dict | None:
    """The summary of a finished prediction in ``out`` made with the same settings, else None."""
    try:
        summary = json.loads((out / SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and summary.get("settings") == settings else None


def _write_table(path: Path, rows: list[dict]) -> None:
    import csv
    import io

    from ..utils import atomic_write_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    atomic_write_text(path, buf.getvalue())


def predict_many(predictor: Predictor, scans: list[Path], out_dir: str | Path, *, log=None) -> list[dict]:
    """Segment each scan into ``out_dir/<scan name>/`` and keep ``out_dir/summary.csv`` (one row a
    scan, rewritten after each): a scan finished earlier with the same settings is skipped
    (``skipped``), a bad one is recorded with its one-line error (``error``) and the next one goes on."""
    out_dir = Path(out_dir)
    check_out_dir(out_dir, own=(TABLE,))
    names, rows = scan_names(scans), []
    bar = None
    if predictor.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(scans), desc="scans", unit="scan")
    try:
        for scan, name in zip(scans, names):
            out = out_dir / name
            done = _finished(out, predictor.settings())
            if done is not None:
                rows.append(_row(scan, out, "skipped", done))
            else:
                try:
                    rows.append(_row(scan, out, "ok", predictor(scan, out)))
                except IchsegError as exc:
                    rows.append(_row(scan, out, "error", error=str(exc).splitlines()[0]))
            if log is not None:
                log(_table_line(rows[-1]))
            _write_table(out_dir / TABLE, rows)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return rows


def _table_line(row: dict) -> str:
    if row["status"] == "error":
        return f"{row['scan']}: error: {row['error']}"
    return f"{row['scan']}: {row['status']}, {row['volume_ml']} mL -> {row['output']}"

"""Dataset folders as their publishers ship them (their download pages and papers), in a registry by name.

Each layout finds (image, mask) pairs under a ``--raw`` root, groups them by patient, says what
role the dataset plays in the study (paper §4.1: Instance2022 is split 90/10 for training and
testing; BHSD and PhysioNet are test-only, sampled at 10% of patients) and where per-slice
hemorrhage subtypes come from. When a folder does not match, the error lists what was expected
and, if the folder matches another layout, names it. A glob override (relative to the root)
handles renamed folders; images and masks are then paired by file name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ConfigError, IchsegError
from ..utils.validate import check_pattern
from .volumes import Volume, is_nifti_name, volume_id

ROLE_TRAIN_TEST = "train_test"  # patient-level train/test split (Instance2022)
ROLE_TEST_SAMPLE = "test_sample"  # test-only, a sample of patients (BHSD, PhysioNet)
SUBTYPES = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural")


@dataclass(frozen=True)
class Case:
    """One labelled volume: the image, its mask, the patient it belongs to."""

    patient: str
    volume: str
    image: Path
    mask: Path


@dataclass
class Discovery:
    """What a layout found under a root: cases, extra source files, and files that cannot be used."""

    layout: "Layout"
    root: Path
    cases: list[Case]
    extra_files: list[Path] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)
    aux: dict = field(default_factory=dict)

    def source_files(self) -> list[Path]:
        files = [p for c in self.cases for p in (c.image, c.mask)] + list(self.extra_files)
        return sorted(set(files))


def _nifti_files(folder: Path, pattern: str = "*") -> list[Path]:
    return sorted(p for p in folder.glob(pattern) if p.is_file() and is_nifti_name(p))


def _strip_channel(vid: str) -> str:
    """nnU-Net images carry a channel suffix (``CASE_0000``); masks do not."""
    return re.sub(r"_\d{4}$", "", vid)


class Layout:
    """Base class: subclasses set the class attributes and implement ``_find``."""

    name: str = ""
    title: str = ""
    role: str = ROLE_TRAIN_TEST
    expected: str = ""  # human-readable description of the folder, for errors
    paper_counts: dict[str, int] = {}
    test_share: float | None = None  # share of patients tested whatever the profile's test_fraction (None: the profile's)
    generated: bool = True  # without data.raw the study generates it (the phantom, or the real-CT set)

    # -- to implement ----------------------------------------------------------------------------
    def signature(self, root: Path) -> bool:
        """True when ``root`` looks like this dataset's folder."""
        raise NotImplementedError

    def _find(self, root: Path) -> Discovery:
        raise NotImplementedError

    def patient_of(self, vid: str) -> str:
        return vid

    def slice_subtypes(self, case: Case, mask: Volume, discovery: Discovery) -> list[str]:
        """Per canonical axial slice, the hemorrhage subtype(s) present ('' when none or unknown)."""
        return [""] * mask.n_slices

    def test_fraction(self, configured: float) -> float:
        """The share of patients tested: the layout's own ``test_share``, else the profile's."""
        return configured if self.test_share is None else self.test_share

    def writer(self, out: Path, rng: np.random.Generator) -> "LayoutWriter":
        """How generated cases are written in this layout's folder (``rng``: for made-up ids)."""
        raise ConfigError(f"layout: {self.name} cannot be written")

    # -- shared ------------------------------------------------------------------------------------
    def discover(self, raw: str | Path, image_glob: str | None = None, mask_glob: str | None = None,
                 patient: str | None = None) -> Discovery:
        """The cases under ``raw``: found by the layout, or by the globs (relative to ``raw``) for a
        folder laid out otherwise; ``patient``: a regular expression whose first group is a file's
        patient (``RawSource.patient``), in place of the layout's rule."""
        raw = Path(raw).expanduser()
        if not raw.is_dir():
            raise IchsegError(f"{raw}: raw folder not found (expected a {self.title} folder: {self.expected})")
        if image_glob or mask_glob:
            if not (image_glob and mask_glob):
                raise ConfigError("image_glob and mask_glob: give both or neither")
            found = self._from_globs(raw, image_glob, mask_glob)
        else:
            root = self._locate(raw)
            found = self._find(root)
        if not found.cases and not found.problems:
            raise IchsegError(f"{raw}: no {self.title} volumes found; expected {self.expected}{self._hint(raw)}")
        if patient is not None:
            found.cases = _grouped(found.cases, patient)
        return found

    def _locate(self, raw: Path) -> Path:
        """``raw`` itself, or its only sub-folder matching the layout (an unpacked archive's top folder)."""
        if self.signature(raw):
            return raw
        subs = [d for d in sorted(raw.iterdir()) if d.is_dir() and self.signature(d)]
        if len(subs) == 1:
            return subs[0]
        raise IchsegError(f"{raw}: not a {self.title} folder; expected {self.expected}{self._hint(raw)}")

    def _hint(self, raw: Path) -> str:
        others = [lay.title for lay in DATASETS.values() if lay is not self and _matches(lay, raw)]
        if others:
            return f" (this looks like a {others[0]} folder: use --dataset {_name_of(others[0])})"
        if raw.is_dir():
            entries = sorted(p.name + ("/" if p.is_dir() else "") for p in raw.iterdir())[:8]
            return f" (found: {', '.join(entries) if entries else 'an empty folder'})"
        return ""

    def _pair(self, root: Path, images: list[Path], masks: list[Path], mask_hint: Callable[[str], str]) -> Discovery:
        by_id = {}
        for m in masks:
            by_id.setdefault(volume_id(m), m)
        cases, problems, used = [], [], set()
        for img in images:
            vid = _strip_channel(volume_id(img))
            mask = by_id.get(vid)
            if mask is None:
                problems.append((img, f"no mask found for this image (expected {mask_hint(vid)})"))
                continue
            used.add(mask)
            cases.append(Case(self.patient_of(vid), vid, img, mask))
        for m in masks:
            if m not in used:
                problems.append((m, "mask without an image"))
        return Discovery(self, root, cases, problems=problems)

    def _from_globs(self, raw: Path, image_glob: str, mask_glob: str) -> Discovery:
        images, masks = _nifti_files(raw, image_glob), _nifti_files(raw, mask_glob)
        if not images:
            raise IchsegError(f"{raw}: --image-glob {image_glob!r} matches no .nii/.nii.gz file")
        found = self._pair(raw, images, masks, lambda vid: f"a file {vid}.nii[.gz] matching {mask_glob!r}")
        self._add_aux(raw, found)
        return found

    def _add_aux(self, root: Path, found: Discovery) -> None:
        """Hook: attach side files (CSV, dataset.json) found under ``root``."""


class LayoutWriter:
    """Writes cases into a layout's folder as its publisher ships it: ``paths`` says where case
    ``index``'s image and mask go, ``add`` records the subtypes present per slice (along the file's
    own slice axis), ``finish`` writes the side files (CSV, dataset.json)."""

    def __init__(self, layout: Layout, out: Path, rng: np.random.Generator):
        self.layout, self.out, self.rng = layout, Path(out), rng

    def paths(self, index: int) -> tuple[Path, Path]:
        raise NotImplementedError

    def add(self, index: int, slice_subtypes: list[set[str]]) -> None:
        """Hook: the subtypes of case ``index`` per slice, for side files that list them."""

    def finish(self, cases: int) -> None:
        """Hook: side files, once every case is written."""


def _grouped(cases: list[Case], pattern: str) -> list[Case]:
    """``cases`` with the patient the first group of ``pattern`` finds in each volume's name."""
    rx = check_pattern("patient pattern", pattern, "the patient")
    out = []
    for c in cases:
        m = rx.search(c.volume)
        if m is None or not m.group(1):
            raise IchsegError(f"{c.image}: the patient pattern {pattern!r} finds no patient in {c.volume!r}")
        out.append(replace(c, patient=m.group(1)))
    return out


def _matches(layout: Layout, raw: Path) -> bool:
    try:
        return raw.is_dir() and (layout.signature(raw) or any(d.is_dir() and layout.signature(d) for d in raw.iterdir()))
    except OSError:
        return False


def _name_of(title: str) -> str:
    return next(k for k, v in DATASETS.items() if v.title == title)


class Instance2022(Layout):
    """INSTANCE 2022 challenge training set: ``train_2/data/001.nii.gz`` + ``train_2/label/001.nii.gz``."""

    name, title, role = "instance2022", "Instance2022", ROLE_TRAIN_TEST
    expected = "train_2/data/NNN.nii.gz and train_2/label/NNN.nii.gz (or a folder 'train' instead of 'train_2')"
    paper_counts = {"train": 1381, "train_positive": 691, "train_negative": 690, "test": 299,
                    "train_before_downsampling": 2687}

    def _split_dir(self, root: Path) -> Path | None:
        for name in ("train_2", "train"):
            d = root / name
            if (d / "data").is_dir() and (d / "label").is_dir():
                return d
        if (root / "data").is_dir() and (root / "label").is_dir():
            return root
        return None

    def signature(self, root: Path) -> bool:
        return self._split_dir(root) is not None

    def _find(self, root: Path) -> Discovery:
        d = self._split_dir(root)
        if d is None:  # _locate checked the signature; kept for direct callers
            raise IchsegError(f"{root}: not a {self.title} folder; expected {self.expected}")
        rel = d.relative_to(root) if d != root else Path(".")
        return self._pair(root, _nifti_files(d / "data"), _nifti_files(d / "label"),
                          lambda vid: f"{rel / 'label' / vid}.nii.gz")

    def writer(self, out: Path, rng: np.random.Generator) -> LayoutWriter:
        return _Instance2022Writer(self, out, rng)


class _Instance2022Writer(LayoutWriter):
    def paths(self, index: int) -> tuple[Path, Path]:
        name = f"{index + 1:03d}.nii.gz"
        return self.out / "train_2" / "data" / name, self.out / "train_2" / "label" / name


class BHSD(Layout):
    """BHSD, nnU-Net style: ``imagesTr/``, ``labelsTr/``, ``imagesTs/``, ``labelsTs/``, ``dataset.json``."""

    name, title, role = "bhsd", "BHSD", ROLE_TEST_SAMPLE
    expected = ("imagesTr/ and labelsTr/ (and/or imagesTs/ and labelsTs/) with ID_<patient>_ID_<series>.nii.gz "
                "files, plus dataset.json")
    paper_counts = {"test": 681}
    _ID = re.compile(r"^(ID_[0-9A-Za-z]+)_ID_[0-9A-Za-z]+$")
    DEFAULT_LABELS = {1: "epidural", 2: "intraparenchymal", 3: "intraventricular", 4: "subarachnoid", 5: "subdural"}

    def signature(self, root: Path) -> bool:
        return any((root / f"images{s}").is_dir() and (root / f"labels{s}").is_dir() for s in ("Tr", "Ts"))

    def patient_of(self, vid: str) -> str:
        """Group series of one patient (RSNA ids: ``ID_<patient>_ID_<series>``, as BHSD names its files)."""
        m = self._ID.match(vid)
        return m.group(1) if m else vid

    def _find(self, root: Path) -> Discovery:
        images, masks = [], []
        for s in ("Tr", "Ts"):
            if (root / f"images{s}").is_dir():
                images += _nifti_files(root / f"images{s}")
                masks += _nifti_files(root / f"labels{s}") if (root / f"labels{s}").is_dir() else []
        found = self._pair(root, images, masks, lambda vid: f"labelsTr/{vid}.nii.gz or labelsTs/{vid}.nii.gz")
        self._add_aux(root, found)
        return found

    def _add_aux(self, root: Path, found: Discovery) -> None:
        labels = dict(self.DEFAULT_LABELS)
        meta = root / "dataset.json"
        if meta.is_file():
            found.extra_files.append(meta)
            try:
                spec = json.loads(meta.read_text()).get("labels", {})
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
                raise IchsegError(f"{meta}: not valid JSON ({exc})") from None
            parsed = {}
            for k, v in spec.items():  # nnU-Net v2 {"name": value} or v1 {"value": "name"}
                value, name = (v, k) if isinstance(v, int) else (k, v)
                if str(value).isdigit() and int(value) > 0:
                    parsed[int(value)] = str(name).lower()
            labels = parsed or labels
        found.aux["labels"] = labels

    def slice_subtypes(self, case: Case, mask: Volume, discovery: Discovery) -> list[str]:
        return subtypes_from_labels(mask, discovery.aux.get("labels", self.DEFAULT_LABELS))

    def writer(self, out: Path, rng: np.random.Generator) -> LayoutWriter:
        return _BHSDWriter(self, out, rng)


class _BHSDWriter(LayoutWriter):
    """RSNA-style ids, about one patient in five with a second series; even cases in Tr, odd in Ts."""

    patient: str | None = None

    def _hex(self, n: int) -> str:
        return "".join(self.rng.choice(list("0123456789abcdef"), size=n))

    def paths(self, index: int) -> tuple[Path, Path]:
        if self.patient is None or self.rng.random() > 0.2:
            self.patient = f"ID_{self._hex(9)}"
        name = f"{self.patient}_ID_{self._hex(10)}.nii.gz"
        part = "Tr" if index % 2 == 0 else "Ts"
        return self.out / f"images{part}" / name, self.out / f"labels{part}" / name

    def finish(self, cases: int) -> None:
        from ..utils.atomic import atomic_write_json

        codes = {name: code for code, name in sorted(BHSD.DEFAULT_LABELS.items())}
        atomic_write_json(self.out / "dataset.json", {
            "name": f"{self.layout.title} phantom", "channel_names": {"0": "CT"}, "file_ending": ".nii.gz",
            "labels": {"background": 0, **codes}, "numTraining": (int(cases) + 1) // 2,
        })


class PhysioNet(Layout):
    """PhysioNet CT-ICH v1.3.1: ``ct_scans/NNN.nii``, ``masks/NNN.nii``, ``hemorrhage_diagnosis_raw_ct.csv``."""

    name, title, role = "physionet", "PhysioNet CT-ICH", ROLE_TEST_SAMPLE
    expected = "ct_scans/NNN.nii, masks/NNN.nii and hemorrhage_diagnosis_raw_ct.csv"
    paper_counts = {"test": 346}
    CSV = "hemorrhage_diagnosis_raw_ct.csv"
    #: the published CSV's columns, in its order
    CSV_COLUMNS = ["PatientNumber", "SliceNumber", "Intraventricular", "Intraparenchymal", "Subarachnoid",
                   "Epidural", "Subdural", "No_Hemorrhage", "Fracture_Yes_No"]
    FIRST_NUMBER = 49  # the published volumes are numbered from 049
    CSV_SUBTYPES = {"Epidural": "epidural", "Intraparenchymal": "intraparenchymal",
                    "Intraventricular": "intraventricular", "Subarachnoid": "subarachnoid", "Subdural": "subdural"}

    def signature(self, root: Path) -> bool:
        return (root / "ct_scans").is_dir() and (root / "masks").is_dir()

    def _find(self, root: Path) -> Discovery:
        found = self._pair(root, _nifti_files(root / "ct_scans"), _nifti_files(root / "masks"),
                           lambda vid: f"masks/{vid}.nii")
        self._add_aux(root, found)
        return found

    def _add_aux(self, root: Path, found: Discovery) -> None:
        csv = root / self.CSV
        if not csv.is_file():
            return  # subtypes then stay unknown; the masks are all that is needed
        found.extra_files.append(csv)
        import pandas as pd  # here, not at the top: the dataset names are read without loading pandas

        try:
            table = pd.read_csv(csv)
        except Exception as exc:
            raise IchsegError(f"{csv}: cannot read the CSV ({type(exc).__name__}: {exc})") from None
        need = {"PatientNumber", "SliceNumber", *self.CSV_SUBTYPES}
        if not need <= set(table.columns):
            raise IchsegError(f"{csv}: missing column(s) {', '.join(sorted(need - set(table.columns)))}")
        flags = table[list(self.CSV_SUBTYPES)].fillna(0).astype(int).to_numpy() > 0
        names = np.array(list(self.CSV_SUBTYPES.values()))
        found.aux["subtypes"] = {
            (int(p), int(s)): "+".join(sorted(names[f]))
            for p, s, f in zip(table["PatientNumber"], table["SliceNumber"], flags)
        }

    def slice_subtypes(self, case: Case, mask: Volume, discovery: Discovery) -> list[str]:
        table = discovery.aux.get("subtypes")
        if table is None or not case.volume.isdigit():
            return [""] * mask.n_slices
        # SliceNumber counts from 1 along the file's own slice axis
        src = mask.source_slice(np.arange(mask.n_slices)) + 1
        return [table.get((int(case.volume), int(s)), "") for s in src]

    def writer(self, out: Path, rng: np.random.Generator) -> LayoutWriter:
        return _PhysioNetWriter(self, out, rng)


class _PhysioNetWriter(LayoutWriter):
    """``ct_scans/NNN.nii``, ``masks/NNN.nii`` and the per-slice subtype CSV."""

    def __init__(self, layout: "PhysioNet", out: Path, rng: np.random.Generator):
        super().__init__(layout, out, rng)
        self.rows: list[list[int]] = []

    def number(self, index: int) -> int:
        return self.layout.FIRST_NUMBER + index

    def paths(self, index: int) -> tuple[Path, Path]:
        name = f"{self.number(index):03d}.nii"
        return self.out / "ct_scans" / name, self.out / "masks" / name

    def add(self, index: int, slice_subtypes: list[set[str]]) -> None:
        flags = lambda present: [int(self.layout.CSV_SUBTYPES[c] in present) for c in self.layout.CSV_COLUMNS if c in self.layout.CSV_SUBTYPES]
        for k, present in enumerate(slice_subtypes):
            unknown = set(present) - set(self.layout.CSV_SUBTYPES.values())
            if unknown:
                raise ConfigError(f"{self.layout.title}: no CSV column for subtype(s) {', '.join(sorted(unknown))}")
            self.rows.append([self.number(index), k + 1, *flags(present), int(not present), 0])

    def finish(self, cases: int) -> None:
        from ..utils.atomic import atomic_write_text

        import pandas as pd

        table = pd.DataFrame(self.rows, columns=self.layout.CSV_COLUMNS)
        atomic_write_text(self.out / self.layout.CSV, table.to_csv(index=False))


class OwnData(Layout):
    """A researcher's own scans, trained and tested as INSTANCE 2022 is (split by patient; paper
    §4.1): ``images/CASE.nii.gz`` with ``masks/CASE.nii.gz`` (any mask value above 0 is hemorrhage),
    or any other names through ``data.raw.own``'s ``images`` and ``masks`` globs and ``patient``
    pattern (``RawSource``). The paper has no number for it; it cannot be generated."""

    name, title, role = "own", "Own data", ROLE_TRAIN_TEST
    generated = False
    expected = ("images/CASE.nii.gz and masks/CASE.nii.gz, or other names through data.raw.own: "
                "{folder, images, masks, patient} (--image-glob, --mask-glob, --patient-pattern)")

    def signature(self, root: Path) -> bool:
        return (root / "images").is_dir() and (root / "masks").is_dir()

    def _find(self, root: Path) -> Discovery:
        return self._pair(root, _nifti_files(root / "images"), _nifti_files(root / "masks"),
                          lambda vid: f"masks/{vid}.nii.gz")


class RealCT(PhysioNet):
    """Real head CT with inserted hemorrhages (``ichseg.data.realct``), in the PhysioNet folder format
    plus ``realct.json``. Its volumes are lesion draws on a few real images (two slices, one whole
    head): each real image is one "patient", so every interval clusters its copies together, and all
    of them are tested (a 10% sample of three would leave one)."""

    name, title, role = "realct", "Real CT, inserted lesions", ROLE_TEST_SAMPLE
    expected = "ct_scans/NNN.nii, masks/NNN.nii, hemorrhage_diagnosis_raw_ct.csv and realct.json (ichseg.data.realct)"
    paper_counts = {}
    test_share = 1.0
    FIRST_NUMBER = 1
    META = "realct.json"
    FORMAT = 2  # realct.json's "format": 2 adds the real whole-head volume and one cluster per real image

    def signature(self, root: Path) -> bool:
        return super().signature(root) and (root / self.META).is_file()

    def _find(self, root: Path) -> Discovery:
        found = super()._find(root)
        meta = root / self.META
        try:
            spec = json.loads(meta.read_text()) if meta.is_file() else {"format": self.FORMAT, "cases": {}}
            source = {vid: str(info["source"]) for vid, info in spec["cases"].items()}
            written = int(spec.get("format", 1))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise IchsegError(f"{meta}: not a realct case list ({type(exc).__name__}: {exc})") from None
        if written < self.FORMAT:
            raise IchsegError(f"{meta}: a realct set of an older format ({written}, now {self.FORMAT}: without the real "
                              f"whole-head volume); delete {root} and it is written again")
        found.cases = [replace(c, patient=source.get(c.volume, "realct")) for c in found.cases]
        return found

    def _add_aux(self, root: Path, found: Discovery) -> None:
        super()._add_aux(root, found)
        if (root / self.META).is_file():
            found.extra_files.append(root / self.META)


def subtypes_from_labels(mask: Volume, names: dict[int, str]) -> list[str]:
    """Per axial slice, the names of the labels present, joined with '+' (sorted)."""
    labels = sorted(names)
    present = np.stack([(mask.data == lab).any(axis=(0, 1)) for lab in labels]) if labels else np.zeros((0, mask.n_slices), bool)
    order = np.argsort([names[lab] for lab in labels])
    return ["+".join(names[labels[i]] for i in order if present[i, k]) for k in range(mask.n_slices)]


DATASETS: dict[str, Layout] = {lay.name: lay for lay in (Instance2022(), BHSD(), PhysioNet(), RealCT(), OwnData())}


def get_layout(name: str) -> Layout:
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(f"dataset: unknown value {name!r}; known: {', '.join(DATASETS)}") from None

"""``PrepConfig``: every choice of the slice preparation of paper §4.1, as one validated record.

The config (with the dataset name and the source folder) names the prepared folder
(``preparation.prepared_dir``) and enters the fingerprint of the prepared data, so two preparations are comparable exactly when
their configs are equal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from ..errors import ConfigError
from ..utils.configs import dataclass_from_dict
from ..utils.hashing import config_hash
from ..utils.validate import check_bool, check_choice, check_int, check_keys, check_number, check_pattern

#: HU windows as (level, width). ``brain`` (L40/W80) is the usual reading window for acute blood;
#: ``multi`` stacks brain, subdural (L80/W200) and bone (L600/W2800) as 3 channels, the common
#: 3-window encoding of head CT for networks with RGB-shaped inputs.
WINDOWS: dict[str, tuple[tuple[float, float], ...]] = {
    "brain": ((40.0, 80.0),),
    "subdural": ((80.0, 200.0),),
    "stroke": ((40.0, 40.0),),
    "bone": ((600.0, 2800.0),),
    "multi": ((40.0, 80.0), (80.0, 200.0), (600.0, 2800.0)),
}
#: image resampling: antialiased bilinear (paper §4.1 only says "resized to 256x256")
IMAGE_RESIZE = ("bilinear_aa",)
#: mask resampling: nearest neighbour, or area-weighted coverage thresholded at 0.5
MASK_RESIZE = ("nearest", "area")
#: after windowing to [0, 1]: keep ``unit`` [0, 1], map to ``symmetric`` [-1, 1], or ``zscore``
#: (per slice, over the head: pixels above the window floor)
NORMALIZE = ("unit", "symmetric", "zscore")


def _choice(name: str, value: Any, known) -> None:
    check_choice(name, value, known)


@dataclass(frozen=True)
class PrepConfig:
    """How volumes become 2D training/test slices (paper §4.1).

    size:            output height = width in pixels (paper: 256).
    window:          HU window preset, see ``WINDOWS`` (default brain L40/W80; ``multi`` -> 3 channels).
    image_resize:    image resampling, see ``IMAGE_RESIZE``.
    mask_resize:     mask resampling, see ``MASK_RESIZE``.
    normalize:       intensity normalisation after windowing, see ``NORMALIZE``.
    test_fraction:   Instance2022: share of patients held out for test (paper: 90/10 split);
                     BHSD / PhysioNet: share of patients sampled for the test set (paper: 10%).
    val_fraction:    Instance2022: share of the *training* patients set aside as a validation
                     split for choosing checkpoints (best iteration) and nnU-Net's validation
                     fold, so that no choice is made on the test patients. The paper names none
                     (it reports its best iteration on the test split); 0 disables it. Unused
                     for the test-only datasets (every sampled patient stays in test).
    negative_ratio:  negatives kept per positive slice in the *training* split (paper: 1:1);
                     ``None`` keeps all. The validation and test splits keep every slice.
    seed:            seeds the patient split (test, then validation), the test sample and the
                     negative downsampling.
    context:         2.5D input (beyond the paper, which segments single slices): the ``context``
                     neighbouring slices below and above each slice join it as extra channels
                     (the slice's own windows first, then the neighbours from the lowest up; edge
                     slices repeat the end slice). A radiologist tells blood from a calcification
                     or a partial-volumed bone edge by scrolling through the adjacent slices; the
                     neighbours give the network that view. 0 (default): one slice, and the
                     config's dict and hash are those without this field.
    """

    size: int = 256
    window: str = "brain"
    image_resize: str = "bilinear_aa"
    mask_resize: str = "nearest"
    normalize: str = "unit"
    test_fraction: float = 0.1
    val_fraction: float = 0.1
    negative_ratio: float | None = 1.0
    seed: int = 0
    context: int = 0

    def __post_init__(self) -> None:
        check_int("size", self.size, 8, 2048)
        _choice("window", self.window, tuple(WINDOWS))
        _choice("image_resize", self.image_resize, IMAGE_RESIZE)
        _choice("mask_resize", self.mask_resize, MASK_RESIZE)
        _choice("normalize", self.normalize, NORMALIZE)
        check_number("test_fraction", self.test_fraction, 0.0, 1.0, low_open=True, high_open=True)
        check_number("val_fraction", self.val_fraction, 0.0, 1.0, high_open=True)
        if self.negative_ratio is not None:
            check_number("negative_ratio", self.negative_ratio, 0.0)
        check_int("seed", self.seed, 0)
        check_int("context", self.context, 0, 8)

    @property
    def windows(self) -> tuple[tuple[float, float], ...]:
        return WINDOWS[self.window]

    @property
    def channels(self) -> int:
        return len(self.windows) * (2 * self.context + 1)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not d["context"]:  # one slice: the dict (and so every prepared folder's hash) as before 2.5D existed
            del d["context"]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PrepConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"prep config: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**dict(data))

    def hash(self) -> str:
        return config_hash(self.to_dict())

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class PhantomSettings:
    """``data.phantom``: the synthetic head CT generated for a dataset the profile gives no raw
    folder (``ichseg.data.phantom.write_phantom``).

    cases:     patients per dataset: one count, or one per dataset ({instance2022: 200, bhsd: 100}).
    seed:      seeds the draw (each dataset adds its own offset, so test sets never repeat training
               volumes).
    in_plane:  pixels per side (the real datasets are 512).
    slices:    slices per volume: a count or [min, max] (default: the layout's own range).
    randomise: per-patient randomisation of tissue HU, scanner, artefacts and bleeds, one mapping
               (``ichseg.data.phantom.randomise.Randomise``, each option with its reason and
               source); absent: off, and the volumes are those drawn without it, bit for bit.
    """

    cases: Any = 16
    seed: int = 0
    in_plane: int = 512
    slices: Any = None
    randomise: Any = None

    def __post_init__(self) -> None:
        counts = self.cases.items() if isinstance(self.cases, Mapping) else [(None, self.cases)]
        for dataset, n in counts:
            check_int("data.phantom.cases" + (f".{dataset}" if dataset else ""), n)
        check_int("data.phantom.seed", self.seed, 0)
        check_int("data.phantom.in_plane", self.in_plane, 16, 1024)
        if self.randomise is not None:
            from .phantom.randomise import Randomise

            Randomise.from_config(self.randomise)
        if self.slices is None:
            return
        lo_hi = list(self.slices) if isinstance(self.slices, (list, tuple)) else [self.slices, self.slices]
        if len(lo_hi) != 2:
            raise ConfigError(f"data.phantom.slices: must be a count or [min, max], got {self.slices!r}")
        lo, hi = (check_int("data.phantom.slices", v, 2, 512) for v in lo_hi)
        if lo > hi:
            raise ConfigError(f"data.phantom.slices: need min <= max, got {self.slices!r}")


@dataclass(frozen=True)
class RealctSettings:
    """``data.realct``: real CT with inserted lesions (``ichseg.data.realct``): ``draws`` lesion
    copies of each real slice, seeded by ``seed``; ``whole_head``: also the real whole-head volume,
    clean and with lesion copies of every subtype (needs Debian's ``invesalius-examples``)."""

    draws: int = 6
    seed: int = 0
    whole_head: bool = True

    def __post_init__(self) -> None:
        check_int("data.realct.draws", self.draws)
        check_int("data.realct.seed", self.seed, 0)
        check_bool("data.realct.whole_head", self.whole_head)


@dataclass(frozen=True)
class RawSource:
    """``data.raw.<dataset>``: where a real dataset lies. A folder path, the folder as its publisher
    ships it (the layout finds the files); or, for a folder laid out otherwise (a hospital's own
    export), a mapping: ``folder``; ``images`` and ``masks``, globs relative to it whose files are
    paired by name (``CASE.nii.gz``, or nnU-Net's ``CASE_0000.nii.gz``, with the mask ``CASE.nii.gz``);
    ``patient``, a regular expression whose first group finds the patient in a file's name
    (default: the layout's rule; INSTANCE 2022's makes every file its own patient). Scans of one
    patient must share a split, or the test patients are not unseen."""

    folder: str
    images: str | None = None
    masks: str | None = None
    patient: str | None = None


def raw_source(data: Mapping[str, Any] | None, dataset: str) -> RawSource | None:
    """``data.raw.<dataset>`` of a run config's data section, checked; None where it names none
    (the dataset is then generated: the phantom, or the real-CT set)."""
    what = f"data.raw.{dataset}"
    value = ((data or {}).get("raw") or {}).get(dataset)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return RawSource(value)
    if not isinstance(value, Mapping) or "folder" not in value:
        raise ConfigError(f"{what}: must be a folder path or a mapping with a folder "
                          f"({{folder: PATH, images: GLOB, masks: GLOB, patient: REGEX}}), got {value!r}")
    src = dataclass_from_dict(RawSource, value, what)
    for key in ("folder", "images", "masks", "patient"):
        v = getattr(src, key)
        if v is not None and (not isinstance(v, str) or not v):
            raise ConfigError(f"{what}.{key}: must be a non-empty string, got {v!r}")
    if (src.images is None) != (src.masks is None):
        raise ConfigError(f"{what}: give the images and masks globs both or neither")
    if src.patient is not None:
        check_pattern(f"{what}.patient", src.patient, "the patient")
    return src


#: the dataset a profile trains on when its data section names none (the paper's)
TRAIN_DATASET = "instance2022"


def train_dataset_of(data: Mapping[str, Any]) -> str:
    """The dataset a run config's ``data`` section trains on."""
    return (data or {}).get("train_dataset") or TRAIN_DATASET


DATA_KEYS = ("train_dataset", "test_datasets", "raw", "phantom", "realct", "prep")


def check_data_section(data: Mapping[str, Any] | None, datasets) -> None:
    """Validate a run config's ``data`` section as written (nothing filled in: the section enters
    the run's hash as the profile wrote it). ``datasets``: the dataset names a profile may use."""
    data = check_keys("data", data or {}, DATA_KEYS)
    check_choice("data.train_dataset", train_dataset_of(data), datasets)
    tests = data.get("test_datasets") or []
    if not isinstance(tests, (list, tuple)):
        raise ConfigError(f"data.test_datasets: must be a list of dataset names, got {tests!r}")
    for name in tests:
        check_choice("data.test_datasets", name, datasets)
    for name in check_keys("data.raw", data.get("raw") or {}, datasets):
        raw_source(data, name)
    dataclass_from_dict(PhantomSettings, data.get("phantom") or {}, "data.phantom")
    dataclass_from_dict(RealctSettings, data.get("realct") or {}, "data.realct")
    try:
        PrepConfig.from_dict(dict(check_keys("data.prep", data.get("prep") or {}, PrepConfig.field_names())))
    except ConfigError as exc:
        raise ConfigError(f"data.prep.{exc}") from None

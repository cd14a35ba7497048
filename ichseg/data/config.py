"""``PrepConfig``: every choice of the slice preparation of paper §4.1, as one validated record.

The config (with the dataset name and the source folder) names the prepared folder
(``preparation.prepared_dir``) and enters the fingerprint of the prepared data, so two preparations are comparable exactly when
their configs are equal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from ..errors import ConfigError
from ..utils.hashing import config_hash

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
    if value not in known:
        raise ConfigError(f"{name}: unknown value {value!r}; known: {', '.join(known)}")


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

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 8 <= self.size <= 2048:
            raise ConfigError(f"size: must be an integer in [8, 2048], got {self.size!r}")
        _choice("window", self.window, tuple(WINDOWS))
        _choice("image_resize", self.image_resize, IMAGE_RESIZE)
        _choice("mask_resize", self.mask_resize, MASK_RESIZE)
        _choice("normalize", self.normalize, NORMALIZE)
        if isinstance(self.test_fraction, bool) or not isinstance(self.test_fraction, (int, float)) \
                or not 0.0 < float(self.test_fraction) < 1.0:
            raise ConfigError(f"test_fraction: must be a number in (0, 1), got {self.test_fraction!r}")
        if isinstance(self.val_fraction, bool) or not isinstance(self.val_fraction, (int, float)) \
                or not 0.0 <= float(self.val_fraction) < 1.0:
            raise ConfigError(f"val_fraction: must be a number in [0, 1), got {self.val_fraction!r}")
        if self.negative_ratio is not None and (
                isinstance(self.negative_ratio, bool) or not isinstance(self.negative_ratio, (int, float))
                or float(self.negative_ratio) < 0):
            raise ConfigError(f"negative_ratio: must be a number >= 0 or null, got {self.negative_ratio!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed: must be an integer >= 0, got {self.seed!r}")

    @property
    def windows(self) -> tuple[tuple[float, float], ...]:
        return WINDOWS[self.window]

    @property
    def channels(self) -> int:
        return len(self.windows)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PrepConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"prep config: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**dict(data))

    def hash(self) -> str:
        return config_hash(self.to_dict())

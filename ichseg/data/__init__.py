"""The data layer: NIfTI volumes -> checked, canonical HU arrays -> 2D slices as paper §4.1
prepares them -> a fingerprinted, memory-mappable cache -> a torch Dataset.

Modules: ``volumes`` (reading/writing NIfTI), ``layouts`` (dataset folders by name),
``config`` (``PrepConfig``), ``slices`` (window/resize/normalise and the way back onto the
file's grid), ``preparation`` (``prepare_dataset``), ``dataset`` (``SliceDataset``),
``phantom`` (synthetic head CT in each layout), ``cli`` (``ichseg prepare`` / ``ichseg phantom``).
"""

from typing import TYPE_CHECKING

from ..utils.lazy import lazy_attributes
from .config import WINDOWS, PrepConfig
from .slices import preprocess_mask, preprocess_volume, volume_from_slices
from .volumes import Volume, load_pair, load_volume, write_nifti

# imported on first use: these pull in pandas, which reading and segmenting a scan never needs
__getattr__ = lazy_attributes(__name__, {
    "SliceDataset": ".dataset", "prepared_spacing": ".dataset", "DATASETS": ".layouts", "Case": ".layouts",
    "get_layout": ".layouts", "prepare_dataset": ".preparation", "prepared_dir": ".preparation",
    "summary_table": ".preparation"})

if TYPE_CHECKING:  # what the lazy names are, for type checkers and the import graph
    from .dataset import SliceDataset, prepared_spacing
    from .layouts import DATASETS, Case, get_layout
    from .preparation import prepare_dataset, prepared_dir, summary_table

__all__ = [
    "DATASETS", "WINDOWS", "Case", "PrepConfig", "SliceDataset", "Volume", "get_layout", "load_pair",
    "load_volume", "prepare_dataset", "prepared_dir", "prepared_spacing", "preprocess_mask", "preprocess_volume",
    "summary_table", "volume_from_slices", "write_nifti",
]

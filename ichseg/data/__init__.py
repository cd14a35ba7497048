"""The data layer: NIfTI volumes -> checked, canonical HU arrays -> 2D slices as paper §4.1
prepares them -> a fingerprinted, memory-mappable cache -> a torch Dataset.

Modules: ``volumes`` (reading/writing NIfTI), ``layouts`` (dataset folders by name),
``config`` (``PrepConfig``), ``slices`` (window/resize/normalise and the way back onto the
file's grid), ``preparation`` (``prepare_dataset``), ``dataset`` (``SliceDataset``),
``phantom`` (synthetic head CT in each layout), ``cli`` (``ichseg prepare`` / ``ichseg phantom``).
"""

from .config import WINDOWS, PrepConfig
from .dataset import SliceDataset, prepared_spacing
from .layouts import DATASETS, Case, get_layout
from .preparation import prepare_dataset, prepared_dir, summary_table
from .slices import preprocess_mask, preprocess_volume, volume_from_slices
from .volumes import Volume, load_pair, load_volume, write_nifti

__all__ = [
    "DATASETS", "WINDOWS", "Case", "PrepConfig", "SliceDataset", "Volume", "get_layout", "load_pair",
    "load_volume", "prepare_dataset", "prepared_dir", "prepared_spacing", "preprocess_mask", "preprocess_volume",
    "summary_table", "volume_from_slices", "write_nifti",
]

"""nnU-Net v2 as one method of the study (Table 1, column "nnU-Net"): the adapter to its package.

``pipeline``: export of the prepared slices, nnU-Net's planning, training and prediction in child
processes, and scoring with the study's ``write_evaluation``; ``run``: a run folder like every
other method's (``train_nnunet_run``, ``evaluate_nnunet_run``, which ``ichseg.engine.methods``
calls for the ``nnunet`` kind); ``trainer/``: the trainer class nnU-Net finds by name. The
settings are ``ichseg.engine.config.NnunetConfig`` (the ``nnunet`` section of a run config).
Nothing else in the engine imports this package but ``ichseg.engine.methods``.
"""

from ..config import NnunetConfig
from .pipeline import (CASES, CHECKPOINT, NNUNET_REQUIREMENT, case_table, dataset_name, evaluate_nnunet, export_images,
                       export_raw_dataset, nnunet_device, nnunet_version, predict, read_cases, train_nnunet,
                       write_splits)
from .run import NNUNET_LOG_COLUMNS, evaluate_nnunet_run, parse_training_logs, train_nnunet_run

__all__ = [
    "CASES", "CHECKPOINT", "NNUNET_LOG_COLUMNS", "NNUNET_REQUIREMENT", "NnunetConfig", "case_table", "dataset_name",
    "evaluate_nnunet", "evaluate_nnunet_run", "export_images", "export_raw_dataset", "nnunet_device",
    "nnunet_version", "parse_training_logs", "predict", "read_cases", "train_nnunet", "train_nnunet_run",
    "write_splits",
]

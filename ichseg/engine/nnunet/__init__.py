"""nnU-Net v2 as one method of the study (Table 1, column "nnU-Net"): the adapter to its package.

``export``: the prepared slices as an nnU-Net raw dataset and our split as its fold 0;
``training``: nnU-Net's planning, preprocessing and training in child processes (``process``);
``prediction``: a trained model on any prepared split; ``evaluation``: scoring with the study's
``write_evaluation``; ``run``: a run folder like every
other method's (``train_nnunet_run``, ``evaluate_nnunet_run``, which ``ichseg.engine.methods``
calls for the ``nnunet`` kind); ``trainer/``: the trainer class nnU-Net finds by name. The
settings are ``ichseg.engine.config.NnunetConfig`` (the ``nnunet`` section of a run config).
Nothing else in the engine imports this package but ``ichseg.engine.methods``.
"""

from ..config import NnunetConfig
from .evaluation import evaluate_nnunet
from .export import CASES, case_table, dataset_name, export_images, export_raw_dataset, read_cases, write_splits
from .prediction import predict
from .process import CHECKPOINT, NNUNET_REQUIREMENT, nnunet_device, nnunet_version
from .training import train_nnunet
from .run import NNUNET_LOG_COLUMNS, evaluate_nnunet_run, parse_training_logs, train_nnunet_run

__all__ = [
    "CASES", "CHECKPOINT", "NNUNET_LOG_COLUMNS", "NNUNET_REQUIREMENT", "NnunetConfig", "case_table", "dataset_name",
    "evaluate_nnunet", "evaluate_nnunet_run", "export_images", "export_raw_dataset", "nnunet_device",
    "nnunet_version", "parse_training_logs", "predict", "read_cases", "train_nnunet", "train_nnunet_run",
    "write_splits",
]

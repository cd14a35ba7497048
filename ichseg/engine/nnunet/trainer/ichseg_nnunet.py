"""``nnUNetTrainerIchseg`` (nnU-Net's default trainer with a configurable run length) and the
child-process entry points ``ichseg.engine.nnunet`` runs for training and prediction.

The trainer changes nothing but the run length: epochs, training iterations per epoch and
validation iterations per epoch (nnU-Net: 1000 x 250, 50), and writes ``checkpoint_latest.pth``
more often on short runs so an interrupted run loses little. Architecture, plans, augmentation,
loss, optimiser and its poly schedule (over the shortened number of epochs) are nnU-Net's own.
The paper profile trains nnU-Net's unchanged ``nnUNetTrainer``.

Run as a script, ``python ichseg_nnunet.py train|predict '<json>'``:

* ``train`` trains one fold as ``nnUNetv2_train`` does (``get_trainer_from_args`` ->
  ``maybe_load_checkpoint`` -> ``run_training``), through nnU-Net's Python API with the class
  passed directly, the random generators seeded and the torch thread count set first;
* ``predict`` predicts input files as ``nnUNetv2_predict_from_modelfolder`` does
  (``nnUNetPredictor.initialize_from_trained_model_folder``, nnU-Net's preprocessing, sliding
  window with Gaussian weighting, optional mirroring, resampling back), one case at a time in
  this process (``predict_single_npy_array``), and saves the class probabilities of each case
  as ``<case>.npz`` (key ``probabilities``, (classes, Z, H, W)) like ``--save_probabilities``.
  Unlike the command line it does not start preprocessing/export worker pools and does not
  force the torch thread count to the number of cores: on a small shared CPU both cost more
  than the prediction itself.

Only nnunetv2, torch, numpy and the standard library are imported: nnU-Net may import this file
as a top-level module when it looks a trainer class up by name (``nnUNet_extTrainer``).
"""

from __future__ import annotations

import json
import os
import random
import sys

import numpy as np
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class nnUNetTrainerIchseg(nnUNetTrainer):
    """nnU-Net's default trainer; the run length comes from the class attributes below.

    The training child sets them before it builds the trainer; at prediction time nnU-Net only
    uses the (inherited) network builder, so their values do not matter there.
    """

    epochs: int = 1000
    iterations_per_epoch: int = 250
    val_iterations: int = 50

    # the signature must stay nnUNetTrainer's: its __init__ records its own arguments by name
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        cls = type(self)
        self.num_epochs = int(cls.epochs)
        self.num_iterations_per_epoch = int(cls.iterations_per_epoch)
        self.num_val_iterations_per_epoch = int(cls.val_iterations)
        # nnU-Net saves checkpoint_latest every 50 epochs; keep about five per run when shorter
        self.save_every = max(1, min(50, self.num_epochs // 5))


def _setup(args: dict) -> torch.device:
    """Device, thread count (None: as nnU-Net's commands set it) and seeds."""
    device = torch.device(args["device"])
    threads = args.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    elif device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)  # as nnUNetv2_train / _predict -device cpu do
    else:
        torch.set_num_threads(1)
    seed = int(args.get("seed", 0))
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return device


def train_fold(args: dict) -> None:
    """Train one fold as ``nnUNetv2_train DATASET CONFIGURATION FOLD -tr TRAINER [--c]`` does."""
    from batchgenerators.utilities.file_and_folder_operations import join, load_json
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.run.run_training import maybe_load_checkpoint
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    if args["trainer"] == "nnUNetTrainer":
        cls = nnUNetTrainer
    elif args["trainer"] == "nnUNetTrainerIchseg":
        cls = nnUNetTrainerIchseg
        cls.epochs, cls.iterations_per_epoch = int(args["epochs"]), int(args["iterations_per_epoch"])
        cls.val_iterations = int(args["val_iterations"])
    else:
        raise SystemExit(f"unknown trainer {args['trainer']!r}")
    device = _setup(args)
    dataset_name = maybe_convert_to_dataset_name(int(args["dataset_id"]))
    base = join(str(nnUNet_preprocessed), dataset_name)
    plans = load_json(join(base, args.get("plans", "nnUNetPlans") + ".json"))
    plans["continue_training"] = bool(args["continue_training"])
    trainer = cls(plans=plans, configuration=args["configuration"], fold=int(args["fold"]),
                  dataset_json=load_json(join(base, "dataset.json")), device=device)
    maybe_load_checkpoint(trainer, bool(args["continue_training"]), False, None)
    if device.type == "cuda":  # nnU-Net's own setting (fast, not bitwise deterministic)
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = True
    trainer.run_training()
    if args.get("validate"):
        trainer.perform_actual_validation(False)


def predict_cases(args: dict) -> None:
    """Predict every ``<case>_0000<ending>`` of ``args['input']`` into ``args['output']/<case>.npz``."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    device = _setup(args)
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=bool(args["tta"]),
                                perform_everything_on_device=device.type == "cuda", device=device,
                                verbose=False, verbose_preprocessing=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(args["model_dir"], (int(args["fold"]),), args["checkpoint"])
    ending = predictor.dataset_json["file_ending"]
    n_channels = len(predictor.dataset_json["channel_names"])
    reader = predictor.plans_manager.image_reader_writer_class()
    os.makedirs(args["output"], exist_ok=True)
    for case in args["cases"]:
        files = [os.path.join(args["input"], f"{case}_{c:04d}{ending}") for c in range(n_channels)]
        image, props = reader.read_images(files)
        _, probabilities = predictor.predict_single_npy_array(image, {"spacing": props["spacing"]}, None, None, True)
        np.savez_compressed(os.path.join(args["output"], f"{case}.npz"),
                            probabilities=np.asarray(probabilities, dtype=np.float32))
        print(f"predicted {case}: {tuple(image.shape)}", flush=True)


if __name__ == "__main__":
    command, payload = sys.argv[1], json.loads(sys.argv[2])
    {"train": train_fold, "predict": predict_cases}[command](payload)

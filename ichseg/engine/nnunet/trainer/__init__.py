"""nnU-Net trainer classes of the study, kept apart so nnU-Net can find them by name.

nnU-Net records a trainer's *class name* in every checkpoint and looks the class up again by
that name when it predicts (``recursive_find_trainer_class_by_name``): first inside
``nnunetv2.training.nnUNetTrainer``, then in the folders listed in the environment variable
``nnUNet_extTrainer`` (nnunetv2 >= 2.8). ``ichseg.engine.nnunet`` sets that variable to *this*
folder for its child processes only, so nothing is written into site-packages. nnU-Net imports
every module of the folder as a top-level module, so the modules here import only nnunetv2,
torch and the standard library, never ``ichseg``.
"""

"""``ichseg predict`` loads only what it uses: importing its modules and loading the committed
model pull in neither pandas, matplotlib (the preview imports it when it draws), torchvision (and
the torch._dynamo / triton it brings) nor the training loop or the nnU-Net adapter; each costs
resident memory on a CPU that the prediction of a large scan needs (bench/predict_cpu.py)."""

from __future__ import annotations

from _import_helpers import loaded_after

UNUSED = ("pandas", "matplotlib", "seaborn", "torchvision", "torch._dynamo", "triton", "nnunetv2",
          "ichseg.engine.nnunet", "ichseg.engine.train", "ichseg.engine.scoring", "ichseg.models.card")


def _loaded_after(code: str) -> list[str]:
    """The modules of ``UNUSED`` in sys.modules after running ``code`` in a fresh interpreter."""
    return loaded_after(code, UNUSED)


def test_predict_path_imports_nothing_it_does_not_use():
    code = ("from ichseg.cli import main\n"
            "import ichseg.engine.commands.predict, ichseg.engine.predict\n"
            "from ichseg.engine.predict import Predictor\n"
            "Predictor.load('results/cpu/model/full.pt', device='cpu', progress=False)")
    assert _loaded_after(code) == []


def test_the_probe_sees_an_import():
    """The check can fail: the package re-exports still import on first use."""
    loaded = _loaded_after("import ichseg.engine, ichseg.models\nichseg.engine.train_run\nichseg.models.model_card\n"
                           "from ichseg.engine.evaluate import write_evaluation")
    assert {"ichseg.engine.train", "ichseg.models.card", "ichseg.engine.scoring", "pandas"} <= set(loaded)

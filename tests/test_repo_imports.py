"""The layers of ichseg hold: each imports only the ones below it (.importlinter, import-linter).

cli -> study / report -> engine -> data / diffusion / models / metrics -> utils / errors
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_layers_contract_is_kept():
    cli = pytest.importorskip("importlinter.cli", reason="import-linter (the dev extra) is not installed")
    assert cli.lint_imports(config_filename=str(ROOT / ".importlinter"), no_cache=True) == 0, \
        "run `lint-imports` for the imports that break the layers"

"""What the data tests share; a helper module, not tests."""

from __future__ import annotations

import builtins


def hide_pydicom(monkeypatch) -> None:
    """Make every ``import pydicom...`` fail for the rest of the test, as on an install without the
    realct extra."""
    real_import = builtins.__import__

    def no_pydicom(name, *args, **kwargs):
        if name.startswith("pydicom"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pydicom)

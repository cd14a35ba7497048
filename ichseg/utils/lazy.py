"""Package attributes imported on first use (PEP 562), so importing one module of a package does
not import every module its ``__init__`` re-exports (e.g. ``ichseg predict`` never loads pandas,
the nnU-Net adapter or the FLOP counter)."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_attributes(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``names[attr]`` (a module relative to
    the package, e.g. ``".dataset"``) when ``attr`` is first asked for, and caches it."""

    def __getattr__(attr: str) -> Any:
        module = names.get(attr)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {attr!r}")
        value = getattr(importlib.import_module(module, package), attr)
        setattr(importlib.import_module(package), attr, value)
        return value

    return __getattr__

"""Module attributes imported on first use (PEP 562), so importing one module of a package does
not import every module its ``__init__`` re-exports (e.g. ``ichseg predict`` never loads pandas,
the nnU-Net adapter or the FLOP counter)."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy_attributes(module: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``module`` (its ``__name__``) that imports ``names[attr]`` (a
    module relative to ``module``'s package, e.g. ``".dataset"``) when ``attr`` is first asked for,
    and caches it on ``module``."""

    def __getattr__(attr: str) -> Any:
        target = names.get(attr)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {attr!r}")
        owner = sys.modules[module]
        value = getattr(importlib.import_module(target, owner.__package__), attr)
        setattr(owner, attr, value)
        return value

    return __getattr__

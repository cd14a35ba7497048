"""Which method a record names: the one reader of the ``method`` key of the study's files.

A run config, ``run.json``, a checkpoint's ``config``, an evaluation's ``metrics.json`` and a
``study.json`` run entry name the method they belong to under ``method``; files written before the
key had that name (the committed ``results/`` and weights) call it ``variant``. Every reader goes
through ``method_of`` (``methods_of`` for the list of ``study.json``), so both read alike.
"""

from __future__ import annotations

from typing import Any, Mapping

#: the key of the method in records written now, and the one older records used
METHOD_KEY, OLD_METHOD_KEY = "method", "variant"


def method_of(record: Mapping[str, Any], default: Any = None) -> Any:
    """The method a record names (``method``, or ``variant`` in an older file); ``default`` if neither."""
    return record.get(METHOD_KEY, record.get(OLD_METHOD_KEY, default))


def methods_of(manifest: Mapping[str, Any]) -> list[str]:
    """The methods of a ``study.json`` run set (``methods``, or ``variants`` in an older file)."""
    return list(manifest.get(METHOD_KEY + "s", manifest.get(OLD_METHOD_KEY + "s", [])))


__all__ = ["METHOD_KEY", "OLD_METHOD_KEY", "method_of", "methods_of"]

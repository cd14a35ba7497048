"""Shared checks of configuration values: each raises ``ConfigError`` with one line that starts
with the setting's name (``train.iterations: must be a positive integer, got 0``)."""

from __future__ import annotations

import re
from numbers import Integral, Real
from typing import Any, Iterable

from ..errors import ConfigError


def is_int(value: Any) -> bool:
    """An integer that is not a bool (YAML's ``true`` is no count)."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def check_int(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int in [minimum, maximum]; the message says "a positive integer" for the
    usual minimum of 1 and no maximum."""
    if not is_int(value) or value < minimum or (maximum is not None and value > maximum):
        if maximum is not None:
            want = f"an integer in [{minimum}, {maximum}]"
        else:
            want = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"{name}: must be {want}, got {value!r}")
    return int(value)


def check_number(name: str, value: Any, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float in the interval [low, high] (``low_open`` / ``high_open``: that end
    excluded; None: unbounded)."""
    ok = is_number(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        if low is not None and high is not None:
            want = f"lie in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            want = f"be a number {'>' if low_open else '>='} {low:g}"
        else:
            want = "be a number"
        raise ConfigError(f"{name}: must {want}, got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, known: Iterable) -> Any:
    known = tuple(known)
    if value not in known:
        raise ConfigError(f"{name}: unknown value {value!r}; known: {', '.join(map(str, known))}")
    return value


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name}: must be true or false, got {value!r}")
    return value


def check_keys(name: str, data: Any, known: Iterable[str]) -> dict:
    """``data`` as a dict whose keys are all in ``known`` (listed in the message otherwise)."""
    from collections.abc import Mapping

    if not isinstance(data, Mapping):
        raise ConfigError(f"{name}: expected a mapping, got {type(data).__name__}")
    known = sorted(known)
    unknown = sorted(set(map(str, data)) - set(known))
    if unknown:
        raise ConfigError(f"{name}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return dict(data)


__all__ = ["check_bool", "check_choice", "check_int", "check_keys", "check_number", "is_int", "is_number"]


def check_pattern(name: str, pattern: str, captures: str = "the match", example: str = r"^(\w+?)_") -> re.Pattern:
    """A regular expression with at least one group (its first: ``captures``), compiled."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{name}: not a regular expression ({exc}): {pattern!r}") from None
    if rx.groups < 1:
        raise ConfigError(f"{name}: needs a group that captures {captures}, e.g. {example!r}, got {pattern!r}")
    return rx


"""Round trips of the study's flat, frozen config dataclasses through plain dicts and YAML."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Mapping

import yaml

from ..errors import ConfigError


def dataclass_from_dict(cls, data: Mapping[str, Any], what: str):
    """``cls(**data)`` for a dataclass, refusing a non-mapping or unknown keys (listing the known
    ones) in one line that starts with ``what``."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what}: expected a mapping, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{what}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    return cls(**dict(data))


class DictRoundTrip:
    """Mixin for a frozen dataclass: ``to_dict`` / ``from_dict`` / ``to_yaml`` / ``from_yaml`` /
    ``field_names``. ``_what`` names the config in errors; ``_list_fields`` are tuple fields written
    as lists (YAML-friendly); ``from_dict`` refuses unknown keys, listing the known ones."""

    _what = "config"
    _list_fields: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for name in self._list_fields:
            d[name] = list(d[name])
        return d

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        return dataclass_from_dict(cls, data, cls._what)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=True)

    @classmethod
    def from_yaml(cls, text: str):
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{cls._what}: YAML must hold a mapping")
        return cls.from_dict(data)


__all__ = ["DictRoundTrip", "dataclass_from_dict"]

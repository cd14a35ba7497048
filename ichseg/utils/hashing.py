"""Stable hashes of configurations and files, used to stamp prepared data and runs."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any


def config_hash(config: Any, length: int = 12) -> str:
    """SHA-256 of a JSON-serialisable config with sorted keys (stable across runs and machines)."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()

"""Checkpoints: ``.pt`` files written atomically and read with ``torch.load(weights_only=True)``.

A checkpoint holds only tensors and plain containers/numbers/strings (model, EMA, optimizer and
scheduler state, RNG state as a ByteTensor, the iteration, and the run config as a JSON string),
so loading never unpickles arbitrary objects; a file that needs more is refused.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Any

import torch

from ..errors import IchsegError
from ..utils import atomic_write_bytes

FORMAT = "ichseg-checkpoint-v1"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Serialise to memory, then write atomically (temp file + fsync + rename)."""
    payload = dict(state)
    payload["format"] = FORMAT
    if "config" in payload and not isinstance(payload["config"], str):
        payload["config"] = json.dumps(payload["config"], sort_keys=True)
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise IchsegError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IchsegError(f"{path}: refused: the checkpoint holds pickled objects beyond tensors ({first})") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise IchsegError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise IchsegError(f"{path}: not an ichseg checkpoint (missing format tag {FORMAT!r})")
    state["config"] = json.loads(state["config"]) if isinstance(state.get("config"), str) else state.get("config")
    return state

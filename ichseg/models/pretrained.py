"""ImageNet ResNet18 weights for the condition branch (§3.2), from local disk only.

``pretrained: imagenet`` means torchvision's ``ResNet18_Weights.IMAGENET1K_V1``, whose file is
``resnet18-f37072fd.pth`` (the first 8 hex digits of its sha256 are in the name). It is looked up
in ``weights_path`` when given, else in the torch hub cache (``torch.hub.get_dir()/checkpoints``,
i.e. ``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``). Nothing is ever
downloaded (the study's machines have no internet) and nothing falls back to
random initialisation: a missing, unreadable, truncated or foreign file raises ``IchsegError``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ..errors import IchsegError

RESNET18_FILE = "resnet18-f37072fd.pth"
RESNET18_SHA256_PREFIX = "f37072fd"
RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"


def hub_checkpoint_dir() -> Path:
    """Where torchvision would cache the file: ``torch.hub.get_dir()/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_resnet18_weights(weights_path: str | None = None) -> Path:
    """The weights file to load: ``weights_path`` if given, else the hub cache's ``resnet18-f37072fd.pth``."""
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise IchsegError(
                f"weights_path: ResNet18 weights file {str(path)!r} does not exist; expected torchvision's "
                f"{RESNET18_FILE} (ResNet18_Weights.IMAGENET1K_V1)"
            )
        return path
    path = hub_checkpoint_dir() / RESNET18_FILE
    if not path.is_file():
        raise IchsegError(
            f"pretrained: imagenet needs torchvision's ResNet18 ImageNet weights {RESNET18_FILE}, not found at "
            f"{path}. Nothing is downloaded: copy the file there (get it on a connected machine from "
            f"{RESNET18_URL}, or with torchvision.models.resnet18(weights='IMAGENET1K_V1')), set TORCH_HOME, "
            f"or pass weights_path=/path/to/{RESNET18_FILE}; or use pretrained: none to train from scratch."
        )
    return path


def sha256_prefix(path: Path, n: int = 8) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:n]


def load_resnet18_state_dict(weights_path: str | None = None, verify: bool = True) -> dict[str, torch.Tensor]:
    """Read (and by default hash-check) the ResNet18 ImageNet state dict from local disk."""
    path = resolve_resnet18_weights(weights_path)
    if verify:
        got = sha256_prefix(path)
        if got != RESNET18_SHA256_PREFIX:
            raise IchsegError(
                f"weights_path: {path} is not torchvision's {RESNET18_FILE}: its sha256 starts {got}, expected "
                f"{RESNET18_SHA256_PREFIX} (truncated, corrupt or other weights; set verify_weights: false to "
                f"load a different ResNet18 state dict on purpose)"
            )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable pickle, truncated zip, ...
        raise IchsegError(f"weights_path: cannot read ResNet18 weights {path}: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or "conv1.weight" not in state:
        raise IchsegError(f"weights_path: {path} does not hold a torchvision ResNet18 state dict")
    return state


def load_into_resnet18(model: torch.nn.Module, weights_path: str | None = None, verify: bool = True) -> None:
    """Copy the weights into a torchvision ``resnet18()``; every key must match (strict)."""
    state = load_resnet18_state_dict(weights_path, verify)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise IchsegError(f"weights_path: the file does not match torchvision's ResNet18: {exc}") from exc

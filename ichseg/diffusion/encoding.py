"""Binary mask <-> diffusion space.

``symmetric`` maps {0,1} to {-1,1} (Ho et al. / most diffusion segmenters);
``binary`` keeps {0,1}, as the released MedSegDiff code does. In both, the predicted x0 is
clipped to [-1, 1] while sampling: the released code's behaviour for ``binary``
(github.com/KidsWithTokens/MedSegDiff) and the data range for ``symmetric``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MaskEncoding:
    name: str
    scale: float  # x = scale * m + shift
    shift: float
    clip_range: tuple[float, float] = (-1.0, 1.0)

    def encode(self, mask: torch.Tensor) -> torch.Tensor:
        """mask in [0,1] (B,C,H,W) -> diffusion space."""
        return mask * self.scale + self.shift

    def to_mask_units(self, x: torch.Tensor) -> torch.Tensor:
        """diffusion space -> mask units ({0,1} mask), not clamped: the space of the released
        MedSegDiff code's samples, whatever this encoding (``binary``: unchanged)."""
        return (x - self.shift) / self.scale

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """diffusion space -> mask space, clamped to [0,1] (a soft mask / probability)."""
        return self.to_mask_units(x).clamp(0.0, 1.0)

    def clip(self, x0: torch.Tensor) -> torch.Tensor:
        return x0.clamp(*self.clip_range)


MASK_ENCODINGS: dict[str, MaskEncoding] = {
    "symmetric": MaskEncoding("symmetric", scale=2.0, shift=-1.0),
    "binary": MaskEncoding("binary", scale=1.0, shift=0.0),
}

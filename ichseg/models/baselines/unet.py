"""U-Net (Ronneberger, Fischer & Brox, MICCAI 2015), 2D, as the Table 1 baseline.

Contracting path: per level two 3×3 conv + norm + ReLU, then a 2×2 max-pool; the widths are
``base_channels * channel_mult`` (the paper: 64, 128, 256, 512, 1024). Expanding path: a 2×2
transposed conv halves the width and doubles the side, the skip of the same level is concatenated,
then two 3×3 conv + norm + ReLU; a 1×1 conv gives the logits.

Deviations from the 2015 paper, all common practice since: "same" padding (the paper's unpadded
convs shrink 572² to 388² and need overlap-tiling), a normalisation layer after every conv (BatchNorm
appeared after the paper), and dropout only if ``dropout > 0`` (the paper puts drop-out "at the end
of the contracting path" without giving a rate).
"""

from __future__ import annotations

import torch
from torch import nn

from .common import ConvNormReLU, DirectSegmenter
from .config import SegmenterConfig


class DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: str):
        super().__init__(ConvNormReLU(cin, cout, norm), ConvNormReLU(cout, cout, norm))


class UNet(DirectSegmenter):
    def __init__(self, config: SegmenterConfig):
        super().__init__(config)
        c = config
        widths = c.widths
        self.down = nn.ModuleList()
        cin = c.in_channels
        for w in widths:
            self.down.append(DoubleConv(cin, w, c.norm))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(c.dropout) if c.dropout > 0 else nn.Identity()
        self.upconv = nn.ModuleList()
        self.up = nn.ModuleList()
        for deep, shallow in zip(widths[:0:-1], widths[-2::-1]):
            self.upconv.append(nn.ConvTranspose2d(deep, shallow, 2, stride=2))
            self.up.append(DoubleConv(2 * shallow, shallow, c.norm))
        self.head = nn.Conv2d(widths[0], c.out_channels, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        self._check_image(image)
        skips = []
        h = image
        for i, block in enumerate(self.down):
            if i:
                h = self.pool(h)
            h = block(h)
            skips.append(h)
        h = self.drop(skips.pop())
        for upconv, block in zip(self.upconv, self.up):
            h = block(torch.cat([skips.pop(), upconv(h)], dim=1))
        return self.head(h)

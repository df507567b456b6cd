"""Channel plans of timm's pruned ECA-ResNets, as plain data (no torch here).

Read from timm 1.0.31's ``timm/models/_pruned/ecaresnet50d_pruned.txt`` and
``ecaresnet101d_pruned.txt`` (knapsack pruning, Aflalo et al. 2020, arXiv:2002.08258): per stage the
output channels (every block of a stage shares them, as the residual adds need), and per block the
output channels of its first 1x1 conv and of its 3x3 conv, flat in block order (the spec keys
``out_channels`` and ``block_widths``). The stems and the ECA kernels are those of the unpruned nets.
"""

from __future__ import annotations

ECARESNET50D_PRUNED = dict(
    out_channels=(19, 171, 818, 2022),
    block_widths=(47, 18, 52, 22, 64, 35, 85, 37, 107, 80, 120, 85, 125, 87, 198, 126, 255, 232, 256, 233, 253, 235,
                  256, 225, 256, 239, 492, 237, 512, 500, 512, 490),
)

ECARESNET101D_PRUNED = dict(
    out_channels=(26, 142, 278, 2042),
    block_widths=(45, 25, 53, 20, 60, 27, 81, 24, 93, 49, 102, 54, 122, 78, 101, 25, 239, 160, 234, 156, 250, 176,
                  253, 191, 251, 175, 230, 128, 244, 154, 244, 159, 238, 97, 244, 149, 253, 181, 245, 119, 255, 216,
                  256, 201, 253, 149, 254, 141, 256, 190, 256, 217, 255, 156, 256, 155, 256, 232, 256, 214, 499, 289,
                  512, 512, 512, 502),
)

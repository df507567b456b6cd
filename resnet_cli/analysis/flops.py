"""Counting multiply-accumulates (MACs). 1 MAC = 2 FLOPs.

The default convention is torchvision's: convolutions (1-D and 2-D, including fixed filters such as
blur pools) and linear layers only, batch as given; biases, norms, activations, pooling and the
residual add count 0.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode


def conv_linear_macs(model: torch.nn.Module, input_shape: tuple[int, ...]) -> int:
    """Conv + linear MACs of one forward pass on a (N, C, H, W) input, counted by
    ``torch.utils.flop_counter.FlopCounterMode`` on the meta device (no memory, no compute).

    FlopCounterMode counts 2 FLOPs per multiply-accumulate for convolutions and matrix products,
    so MACs = FLOPs / 2.
    """
    was_training = model.training
    model.eval()
    try:
        x = torch.empty(input_shape, device="meta")
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2

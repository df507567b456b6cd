"""Small hand-written networks for tests/test_byo.py, loaded by path (``tests/nets_for_tests.py:make_tiny_resnet``)
as a user's file would be. Their parameter and MAC counts are worked out by hand in the tests."""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    """A basic residual block (He et al. 2015, fig. 2): two 3x3 convs, 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int, relu: nn.Module):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = relu  # one ReLU shared by the whole network, called many times
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else None)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.down is None else self.down(x)))


class TinyResNet(nn.Module):
    """stem 3x3/2 conv -> layer1 (width, stride 1) -> layer2 (2 x width, stride 2) -> pool -> fc."""

    def __init__(self, num_classes: int = 10, width: int = 8):
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(3, width, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = Block(width, width, 1, self.relu)
        self.layer2 = Block(width, 2 * width, 2, self.relu)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def make_tiny_resnet(num_classes: int = 10, width: int = 8) -> nn.Module:
    return TinyResNet(num_classes, width)


class SeqHead(nn.Module):
    """Reads the feature map column by column with an LSTM: (N, C, H, W) -> (N, W, C*H) -> last state."""

    def __init__(self, features: int, hidden: int):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=True)

    def forward(self, x):
        seq = x.permute(0, 3, 1, 2).flatten(2)
        out, _ = self.lstm(seq)
        return out[:, -1]


class ConvLSTM(nn.Module):
    """Not ResNet-like: a 3x3 conv (1 -> 4 channels, with bias) on an (N, 1, 8, W) input, an LSTM over
    the columns (input 4 x 8 = 32, hidden 8), and a linear head. Takes H = 8 only."""

    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.rnn = SeqHead(4 * 8, 8)
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(self.rnn(self.act(self.conv(x))))


def make_conv_lstm(num_classes: int = 5) -> nn.Module:
    return ConvLSTM(num_classes)


class Attention(nn.Module):
    """Single-head self-attention written out: qkv linear, softmax(q k^T / sqrt(d)) v, projection."""

    def __init__(self, dim: int):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        weights = (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(dim=-1)
        return self.proj(weights @ v)


class TinyViT(nn.Module):
    """Not ResNet-like: a 4x4/4 patch conv (3 -> 16), one pre-norm transformer block (attention and a
    16 -> 32 -> 16 MLP), token mean, linear head."""

    def __init__(self, num_classes: int = 10, dim: int = 16):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 4, 4)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return self.head(x.mean(dim=1))


def make_tiny_vit(num_classes: int = 10) -> nn.Module:
    return TinyViT(num_classes)


class Tied(nn.Module):
    """Two 3x3 convs that share one weight tensor, and one conv module called twice."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.b = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.b.weight = self.a.weight
        self.c = nn.Conv2d(4, 4, 1, bias=False)

    def forward(self, x):
        return self.c(self.c(self.b(self.a(x))))


def make_tied() -> nn.Module:
    return Tied()


class ViewFlatten(TinyResNet):
    """The old idiom ``x.view(x.size(0), -1)``: fine for real batches, impossible for an empty one."""

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.pool(self.layer2(self.layer1(x)))
        return self.fc(x.view(x.size(0), -1))


def make_view_flatten() -> nn.Module:
    return ViewFlatten()


def make_raises(depth: int = 50) -> nn.Module:
    raise ValueError(f"depth {depth} is not supported by this factory")


def make_not_module() -> dict:
    return {"conv": "not a module"}


NOT_CALLABLE = 42

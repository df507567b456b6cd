"""resnet-cli's resnet50 vs torchvision's resnet50: throughput ratio at the same settings (goal >= 1.0).

Both models get the same weights (resnet-cli's state_dict loaded strictly into the peer, whose
output is then checked to match), the same input, threads and timer (bench's runner), and are
measured in alternating rounds so a drifting machine affects both alike. The printed ratio is
resnet-cli images/s / peer images/s: the median over rounds of (peer median latency / resnet-cli
median latency), each pair measured back to back. The aten operator counts of one forward pass are
printed too: a noise-free check that both do the same work.

Without torchvision installed the torchvision comparison is skipped with a message; the script then
compares against a reference written here line for line after torchvision's models/resnet.py
(``Bottleneck`` with the stride on the 3x3 conv, ``conv1x1`` + BN downsample, one shared ReLU per
block), which must produce the same output from the same weights before it is timed.

    python3 benchmarks/bench_vs_torchvision.py                    # batch 8, 224x224, 1 thread, CPU
    python3 benchmarks/bench_vs_torchvision.py --device cuda --batch 64 --channels-last --dtype bf16
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from resnet_cli.bench.device import TORCH_DTYPES, load_average  # noqa: E402
from resnet_cli.bench.runner import make_timer, measure  # noqa: E402
from resnet_cli.models import build_model  # noqa: E402


class RefBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class RefResNet50(nn.Module):
    """torchvision.models.resnet50's architecture (ResNet v1.5), written out."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(64, 3)
        self.layer2 = self._make_layer(128, 4, 2)
        self.layer3 = self._make_layer(256, 6, 2)
        self.layer4 = self._make_layer(512, 3, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(2048, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
        layers = [RefBottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * 4
        layers += [RefBottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def peers() -> list[tuple[str, nn.Module]]:
    out = []
    try:
        import torchvision
    except ImportError:
        print("torchvision is not installed: skipping the torchvision comparison "
              "(pip install torchvision to run it); comparing against the written-out reference instead")
    else:
        out.append((f"torchvision {torchvision.__version__} resnet50", torchvision.models.resnet50()))
    out.append(("reference resnet50 (torchvision's layout, written out)", RefResNet50()))
    return out


def aten_ops(model: nn.Module, x: torch.Tensor) -> Counter:
    """How many times each aten operator runs in one forward pass (a noise-free view of the work done)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    counts: Counter = Counter()

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            counts[str(func.overloadpacket)] += 1
            return func(*args, **(kwargs or {}))

    with torch.inference_mode(), Count():
        model(x)
    return counts


def prepare(model: nn.Module, state: dict, device, dtype, channels_last: bool) -> nn.Module:
    model.load_state_dict(state, strict=True)
    model = model.to(device=device, dtype=dtype).eval()
    return model.to(memory_format=torch.channels_last) if channels_last else model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=sorted(TORCH_DTYPES))
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=5, help="timed iterations per measurement, each side")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench_vs_torchvision: no CUDA device here; run it on CPU (default) or on a CUDA machine")
        return 0
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), TORCH_DTYPES[args.dtype]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    ours = build_model("resnet50")
    state = ours.state_dict()
    ours = prepare(ours, state, device, dtype, args.channels_last)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device, dtype=dtype)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    timer = make_timer(device)
    print(f"batch {args.batch}, {args.size}x{args.size}, {args.dtype}, {'channels_last' if args.channels_last else 'contiguous'}, "
          f"{args.threads} thread(s), {args.device}, torch {torch.__version__}, load average {load_average()}")

    def median_ms(model) -> float:
        with torch.inference_mode():
            return statistics.median(measure(lambda: model(x), timer, warmup=3, iters=args.iters).times_ms)

    for name, peer in peers():
        peer = prepare(peer, state, device, dtype, args.channels_last)
        with torch.inference_mode():
            same = torch.allclose(ours(x).float(), peer(x).float(), rtol=1e-3, atol=1e-3)
        if not same:
            print(f"{name}: outputs differ from resnet-cli's with the same weights; not comparable")
            return 1
        ops_ours, ops_peer = aten_ops(ours, x), aten_ops(peer, x)
        diff = {k: (ops_ours[k], ops_peer[k]) for k in ops_ours.keys() | ops_peer.keys() if ops_ours[k] != ops_peer[k]}
        print(f"{name}: aten ops per forward: resnet-cli {sum(ops_ours.values())}, peer {sum(ops_peer.values())}"
              + (f"; differ (resnet-cli, peer): {diff}" if diff else " (identical counts per operator)"))
        ours_ms, peer_ms = [], []
        for i in range(args.rounds):
            ours_ms.append(median_ms(ours))
            peer_ms.append(median_ms(peer))
            print(f"  round {i + 1}: resnet-cli {ours_ms[-1]:.2f} ms, peer {peer_ms[-1]:.2f} ms", flush=True)
        ratio = statistics.median(p / o for o, p in zip(ours_ms, peer_ms))  # = ours images/s / peer images/s
        print(f"{name}: same outputs; throughput ratio resnet-cli / peer = {ratio:.4f} (goal >= 1.0; "
              f"per-round ratios {', '.join(f'{p / o:.3f}' for o, p in zip(ours_ms, peer_ms))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

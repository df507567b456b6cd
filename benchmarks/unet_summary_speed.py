"""Speed of ``resnet-cli summary "unet(encoder=resnet50)" --size 1024`` (issue 12) against a bare
torchinfo summary of segmentation_models_pytorch's ``smp.Unet("resnet50")`` at 1x3x1024x1024,
measured as a user sees it: whole processes, cold start.

The peer is what one would write by hand::

    import torch, torchinfo, segmentation_models_pytorch as smp
    torchinfo.summary(smp.Unet("resnet50", encoder_weights=None), (1, 3, 1024, 1024), device="cpu")

torchinfo runs a real forward pass (~170 GMACs here); resnet-cli runs an empty batch through the
same architecture (module names and numbers checked against smp in tests/test_unet.py).
smp is not a dependency of resnet-cli: without it this script times resnet-cli alone and says so.
Each command runs in a fresh interpreter, in alternating rounds; the figures are medians.

    python3 benchmarks/unet_summary_speed.py              # 3 rounds of each
    python3 benchmarks/unet_summary_speed.py --rounds 5
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys

from summary_speed import load, run  # noqa: E402  (this folder is on sys.path when run as a script)


PEER = """
import torch, torchinfo, segmentation_models_pytorch as smp
torchinfo.summary(smp.Unet("resnet50", encoder_weights=None), (1, 3, 1024, 1024), device="cpu")
"""
OURS = [sys.executable, "-m", "resnet_cli", "summary", "unet(encoder=resnet50)", "--size", "1024"]


def wall(argv: list[str]) -> float:
    """Seconds ``argv`` takes from the repository root (summary_speed's runner; exits on a failure)."""
    return run(argv)["wall_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    args = parser.parse_args()
    have_smp = importlib.util.find_spec("segmentation_models_pytorch") is not None
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {load()}")
    ours, peer = [], []
    for _ in range(args.rounds):
        ours.append(wall(OURS))
        if have_smp:
            peer.append(wall([sys.executable, "-c", PEER]))
    print(f"resnet-cli summary \"unet(encoder=resnet50)\" --size 1024: median {statistics.median(ours):.2f} s "
          f"(rounds: {', '.join(f'{t:.2f}' for t in ours)})")
    if not have_smp:
        print("segmentation_models_pytorch is not installed in this interpreter: no peer to compare with "
              "(run this script with a python that has it, e.g. a venv with segmentation-models-pytorch==0.6.0)")
    else:
        ratio = statistics.median(ours) / statistics.median(peer)
        print(f"peer torchinfo.summary(smp.Unet('resnet50'), (1, 3, 1024, 1024)): median "
              f"{statistics.median(peer):.2f} s (rounds: {', '.join(f'{t:.2f}' for t in peer)})")
        print(f"ratio resnet-cli / peer: {ratio:.2f} ({'faster' if ratio < 1 else 'slower'} than the peer)")
    print(load())


if __name__ == "__main__":
    main()

"""The grid's relative speed vs torch.utils.benchmark on the same two networks, in the same run.

``resnet-cli bench resnet18 resnet50 --format json`` (a fresh process per case and round, resnet18
the reference) gives resnet50's throughput relative to resnet18's. torch.utils.benchmark's
``Timer.blocked_autorange`` then measures both models' median latency in this process, in rounds
before and after the grid so a drifting machine touches both sides. Goals: the grid says resnet18 is
the faster (relative < 1 for resnet50, marked significant or not), and its relative is within 10% of
``Timer median(resnet18) / Timer median(resnet50)`` (same batch, so the latency ratio is the
throughput ratio).

    python3 benchmarks/bench_grid_vs_timer.py                  # 128x128, batch 4, 1 thread, CPU
    python3 benchmarks/bench_grid_vs_timer.py --size 224 --batch 32 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.utils import benchmark  # noqa: E402

from resnet_cli.models import build_model  # noqa: E402


def timer_medians(models: dict, x, threads: int, seconds: float, rounds: int) -> dict:
    """Median latency (ms) per model over ``rounds`` alternating Timer rounds."""
    out = {name: [] for name in models}
    with torch.inference_mode():
        for _ in range(rounds):
            for name, model in models.items():
                t = benchmark.Timer(stmt="model(x)", globals={"model": model, "x": x}, num_threads=threads)
                t.timeit(3)
                out[name].append(t.blocked_autorange(min_run_time=seconds).median * 1e3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-time", type=float, default=3.0, help="the grid's --min-time per case (all rounds)")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench_grid_vs_timer: no CUDA device here; run it on CPU (default) or on a CUDA machine")
        return 0
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    models = {name: build_model(name).to(device).eval() for name in ("resnet18", "resnet50")}
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    per_round = args.min_time / args.rounds

    before = timer_medians(models, x, args.threads, per_round, (args.rounds + 1) // 2)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "resnet_cli", "bench", "resnet18", "resnet50", "--size", str(args.size),
                           "--batch", str(args.batch), "--threads", str(args.threads), "--device", args.device,
                           "--rounds", str(args.rounds), "--min-time", str(args.min_time), "--format", "json"],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode:
        print(f"bench failed ({done.returncode}): {done.stderr.strip()[-800:]}")
        return 1
    after = timer_medians(models, x, args.threads, per_round, args.rounds // 2)
    grid = json.loads(done.stdout)
    r18, r50 = grid["cases"]
    timer = {n: statistics.median(before[n] + after[n]) for n in models}
    timer_relative = timer["resnet18"] / timer["resnet50"]
    ratio = r50["relative"] / timer_relative
    print(f"resnet18 vs resnet50, batch {args.batch}, {args.size}x{args.size}, {args.threads} thread(s), {args.device}, "
          f"torch {torch.__version__}, load average {os.getloadavg()[0]:.2f}")
    print(f"grid: resnet18 median {r18['latency_ms']['median']:.2f} ms, resnet50 median "
          f"{r50['latency_ms']['median']:.2f} ms over {args.rounds} rounds in fresh processes; resnet50 relative "
          f"{r50['relative']:.3f} ({r50['relative_low']:.3f}-{r50['relative_high']:.3f}), "
          f"{'significant' if r50['significant'] else 'no significant difference'}")
    print(f"Timer: resnet18 median {timer['resnet18']:.2f} ms, resnet50 median {timer['resnet50']:.2f} ms; "
          f"resnet18 / resnet50 = {timer_relative:.3f}")
    sign = "resnet18 faster: right sign" if r50["relative"] < 1 else "WRONG SIGN"
    print(f"grid relative / Timer relative = {ratio:.3f} (goal: within 10%, 0.90 .. 1.10): "
          f"{'ok' if abs(ratio - 1) <= 0.10 else 'OUTSIDE GOAL'}; {sign}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

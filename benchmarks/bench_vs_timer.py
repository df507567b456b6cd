"""bench's median latency vs torch.utils.benchmark.Timer(...).blocked_autorange() on the same model,
batch and thread count. Goal: the ratio within 3% (0.97 .. 1.03).

Rounds alternate (bench, Timer, bench, Timer, ...) so a drifting machine affects both alike; the printed
ratio is the median over rounds of (bench median / Timer median), each pair measured back to back.
On a busy machine (load average above the core count) the rounds scatter by more than 3% whatever
the tool: run it on a quiet one.

    python3 benchmarks/bench_vs_timer.py                      # resnet18, batch 8, 224x224, 1 thread, CPU
    python3 benchmarks/bench_vs_timer.py --variant resnet50 --device cuda --threads 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils import benchmark  # noqa: E402

from resnet_cli.bench.config import BenchConfig  # noqa: E402
from resnet_cli.bench.device import load_average  # noqa: E402
from resnet_cli.bench.session import Session  # noqa: E402
from resnet_cli.models import build_model, get_spec  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="resnet18")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--min-time", type=float, default=2.0,
                        help="bench's --min-time; Timer then runs as long as bench's timed loop did")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench_vs_timer: no CUDA device here; run it on CPU (default) or on a CUDA machine")
        return 0

    spec = get_spec(args.variant)
    cfg = BenchConfig(variant=args.variant, spec=spec, state_dict=None, strict=True, device=args.device,
                      dtype="fp32", channels_last=False, compile_mode=None, batches=(args.batch,), max_batch=False,
                      size=(args.size, args.size), warmup=5, iters=None, min_time_s=args.min_time,
                      threads=args.threads, peak_tflops=1.0, force=False)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    model = build_model(spec).to(device).eval()
    x = torch.randn(args.batch, spec.in_chans, args.size, args.size, device=device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    bench_ms, timer_ms = [], []
    for i in range(args.rounds):
        result = Session(cfg).run().results[0]
        bench_ms.append(result.latency_ms.median)
        timed_s = result.latency_ms.mean * result.iterations / 1e3
        timer = benchmark.Timer(stmt="model(x)", globals={"model": model, "x": x}, num_threads=args.threads)
        with torch.inference_mode():
            timer.timeit(3)  # warm-up, as bench does before timing
            m = timer.blocked_autorange(min_run_time=timed_s)  # as long as bench's timed loop ran
        timer_ms.append(m.median * 1e3)
        print(f"round {i + 1}: bench median {bench_ms[-1]:.3f} ms ({result.iterations} iterations), "
              f"Timer median {timer_ms[-1]:.3f} ms ({len(m.times)} blocks of {m.number_per_run})", flush=True)

    ratio = statistics.median(b / t for b, t in zip(bench_ms, timer_ms))
    print(f"{args.variant}, batch {args.batch}, {args.size}x{args.size}, {args.threads} thread(s), {args.device}, "
          f"torch {torch.__version__}, load average {load_average()}")
    print("per-round ratios: " + ", ".join(f"{b / t:.3f}" for b, t in zip(bench_ms, timer_ms)))
    print(f"ratio bench / Timer (median latency) = {ratio:.4f}  (goal: within 3%, 0.97 .. 1.03): "
          f"{'ok' if abs(ratio - 1) <= 0.03 else 'OUTSIDE GOAL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

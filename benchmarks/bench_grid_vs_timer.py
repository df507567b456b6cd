"""The grid's relative speed vs torch.utils.benchmark on the same two networks, in the same run.

The grid is run through its own machinery (``bench.grid``: a fresh process per case and round, the
rounds alternating, pooled medians, ``compare``) for resnet18 (the reference) and resnet50; right
after each of its runs, in this process, ``Timer.blocked_autorange`` times the same model for as long,
so every grid run has a Timer measurement next to it in time and a drifting machine touches both
alike. Goals: the grid says resnet18 is the faster (relative < 1 for resnet50), and its relative is
within 10% of ``Timer median(resnet18) / Timer median(resnet50)`` (same batch, so the latency ratio is
the throughput ratio).

    python3 benchmarks/bench_grid_vs_timer.py                  # 128x128, batch 4, 1 thread, CPU
    python3 benchmarks/bench_grid_vs_timer.py --size 224 --batch 32 --device cuda
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.utils import benchmark  # noqa: E402

from resnet_cli.bench import grid as g  # noqa: E402
from resnet_cli.models import build_model, resolve  # noqa: E402


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
    names = ("resnet18", "resnet50")
    models = {n: build_model(n).to(device).eval() for n in names}
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    iters, per_round = g.split_over_rounds(None, args.min_time, args.rounds)
    cases = g.expand([(n, resolve(n)[1].to_string(), (args.size, args.size)) for n in names], ("fp32",), (False,),
                     (args.batch,))
    timer_ms = {n: [] for n in names}

    def job_for(case, batch, peak):
        return {"variant": case.variant, "spec": case.spec, "weights": None, "strict": True, "device": args.device,
                "dtype": "fp32", "channels_last": False, "compile_mode": None, "batch": batch,
                "size": [args.size, args.size], "warmup": 5, "iters": iters, "min_time_s": per_round,
                "threads": args.threads, "peak_tflops": peak or 1.0, "force": False, "retry": True}

    def run(job):
        reply = g.run_in_subprocess(job)  # the grid's run, in a fresh process
        t = benchmark.Timer(stmt="model(x)", globals={"model": models[job["variant"]], "x": x},
                            num_threads=args.threads)
        with torch.inference_mode():
            t.timeit(3)
            timer_ms[job["variant"]].append(t.blocked_autorange(min_run_time=per_round).median * 1e3)
        return reply

    grid = g.Grid(cases, job_for, run, args.rounds)
    grid.run()
    rep = g.report(grid, 0, device=args.device, process="subprocess", warmup=5, iters=None, min_time_s=per_round,
                   threads=args.threads, compile_mode=None, sort="run")
    r18, r50 = rep.cases
    if r18.latency_ms is None or r50.latency_ms is None:
        print(f"a grid case failed: {r18.error or r50.error}")
        return 1
    timer = {n: statistics.median(v) for n, v in timer_ms.items()}
    timer_relative = timer["resnet18"] / timer["resnet50"]
    ratio = r50.relative / timer_relative
    print(f"resnet18 vs resnet50, batch {args.batch}, {args.size}x{args.size}, {args.threads} thread(s), {args.device}, "
          f"torch {torch.__version__}, load average {os.getloadavg()[0]:.2f}")
    print(f"grid: resnet18 median {r18.latency_ms.median:.2f} ms, resnet50 median {r50.latency_ms.median:.2f} ms over "
          f"{args.rounds} rounds in fresh processes; resnet50 relative {r50.relative:.3f} "
          f"({r50.relative_low:.3f}-{r50.relative_high:.3f}), "
          f"{'significant' if r50.significant else 'no significant difference'}")
    print(f"Timer (right after each grid run): resnet18 median {timer['resnet18']:.2f} ms, resnet50 median "
          f"{timer['resnet50']:.2f} ms; resnet18 / resnet50 = {timer_relative:.3f}")
    sign = "resnet18 faster: right sign" if r50.relative < 1 else "WRONG SIGN"
    print(f"grid relative / Timer relative = {ratio:.3f} (goal: within 10%, 0.90 .. 1.10): "
          f"{'ok' if abs(ratio - 1) <= 0.10 else 'OUTSIDE GOAL'}; {sign}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`bench --mode train` vs torch.utils.benchmark.Timer timing the same training step, and vs a plain
training loop written by hand. Goals: bench / Timer within 3% (0.97 .. 1.03), and bench never slower
than the hand-written loop (ratio <= 1.03, the noise of one round).

Each round runs the three methods one after another, in an order that rotates from round to round
(so none always runs first or always follows the same other one), each for ``--min-time`` seconds
of steps; a drifting machine affects all alike. Each printed ratio is the median over rounds of the
per-round ratio of medians, printed next to each method's round-to-round scatter. The hand-written loop is what a
tutorial writes: ``opt.zero_grad(); loss = F.cross_entropy(model(x), y); loss.backward(); opt.step()``,
timed per step with ``time.perf_counter`` (CUDA: after ``torch.cuda.synchronize()``). On a busy
machine (load average above the core count) rounds scatter by more than 3% whatever the tool.

    python3 benchmarks/train_vs_timer.py                      # resnet18, batch 8, 112x112, sgd, 1 thread, CPU
    python3 benchmarks/train_vs_timer.py --variant resnet50 --size 224 --batch 64 --device cuda --amp bf16
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils import benchmark  # noqa: E402

from resnet_cli.bench.config import BenchConfig  # noqa: E402
from resnet_cli.bench.device import load_average, synchronize  # noqa: E402
from resnet_cli.bench.session import Session  # noqa: E402
from resnet_cli.bench.train import make_optimizer, make_train_step  # noqa: E402
from resnet_cli.models import build_model, get_spec  # noqa: E402


def hand_loop_ms(model, x, y, optimizer: str, amp, device, min_time_s: float) -> float:
    """Median ms per step of the loop a tutorial writes (3 warm-up steps, then steps for ``min_time_s``)."""
    opt = make_optimizer(optimizer, model.parameters())
    times: list[float] = []
    i = 0
    while i < 3 or sum(times) < min_time_s * 1e3:
        i += 1
        synchronize(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()
        synchronize(device)
        if i > 3:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="resnet18")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--optimizer", default="sgd", choices=["sgd", "momentum", "adamw"])
    parser.add_argument("--amp", default=None, choices=["bf16"])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--min-time", type=float, default=2.0)
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("train_vs_timer: no CUDA device here; run it on CPU (default) or on a CUDA machine")
        return 0

    spec = get_spec(args.variant)
    cfg = BenchConfig(variant=args.variant, spec=spec, state_dict=None, strict=True, device=args.device,
                      dtype="fp32", channels_last=False, compile_mode=None, batches=(args.batch,), max_batch=False,
                      size=(args.size, args.size), warmup=3, iters=None, min_time_s=args.min_time,
                      threads=args.threads, peak_tflops=1.0, force=False, mode="train", optimizer=args.optimizer,
                      amp=args.amp)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    shape = (args.batch, spec.in_chans, args.size, args.size)

    def by_bench():
        return Session(cfg).run().results[0].latency_ms.median

    def by_timer():
        step = make_train_step(build_model(spec).to(device), args.optimizer, shape, amp=args.amp, device=device)
        sync = "torch.cuda.synchronize()" if device.type == "cuda" else "pass"
        timer = benchmark.Timer(stmt=f"step(); {sync}", globals={"step": step, "torch": torch},
                                num_threads=args.threads)
        timer.timeit(3)
        return timer.blocked_autorange(min_run_time=args.min_time).median * 1e3

    def by_hand():
        model = build_model(spec).to(device).train()
        x = torch.randn(shape, device=device)
        y = torch.randint(0, spec.num_classes or 1, (args.batch,), device=device)
        return hand_loop_ms(model, x, y, args.optimizer, args.amp, device, args.min_time)

    methods = {"bench": by_bench, "Timer": by_timer, "hand loop": by_hand}
    times: dict[str, list[float]] = {name: [] for name in methods}
    for i in range(args.rounds):
        # The order rotates, so no method always runs first, or always right after the same other one.
        names = list(methods)
        order = names[i % 3:] + names[:i % 3]
        for name in order:
            times[name].append(methods[name]())
            gc.collect()  # nothing of one method's model, optimizer or input is alive during the next
        print(f"round {i + 1} ({', '.join(order)}): " + ", ".join(f"{k} {v[-1]:.2f} ms" for k, v in times.items()),
              flush=True)
    bench_ms, timer_ms, hand_ms = times["bench"], times["Timer"], times["hand loop"]
    vs_timer = statistics.median(b / t for b, t in zip(bench_ms, timer_ms))
    vs_hand = statistics.median(b / h for b, h in zip(bench_ms, hand_ms))
    print(f"{args.variant}, batch {args.batch}, {args.size}x{args.size}, {args.optimizer}"
          f"{', ' + args.amp + ' autocast' if args.amp else ''}, {args.threads} thread(s), {args.device}, "
          f"torch {torch.__version__}, load average {load_average()}")
    print("round-to-round scatter (slowest / fastest round - 1): "
          + ", ".join(f"{k} {max(v) / min(v) - 1:.1%}" for k, v in times.items()))
    print(f"ratio bench / Timer (median step time) = {vs_timer:.4f}  (goal 0.97 .. 1.03): "
          f"{'ok' if abs(vs_timer - 1) <= 0.03 else 'OUTSIDE GOAL'}")
    print(f"ratio bench / hand-written loop = {vs_hand:.4f}  (goal <= 1.03): "
          f"{'ok' if vs_hand <= 1.03 else 'OUTSIDE GOAL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

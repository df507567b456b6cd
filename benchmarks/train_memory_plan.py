"""The memory plan's peak (``summary --pass train``) vs the peak of the same training step run for real
on the CPU (live tensor bytes from torch.profiler memory events, ``bench.train.cpu_step_peak``), at sizes
too large for the test suite. Goal: within 5% for every case.

    python3 benchmarks/train_memory_plan.py              # resnet18/50 at 224 and a CIFAR net, several batches
    python3 benchmarks/train_memory_plan.py --quick      # two small cases
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from resnet_cli.analysis.memory_plan import plan_memory  # noqa: E402
from resnet_cli.bench.memory import human_bytes, plan_error_percent  # noqa: E402
from resnet_cli.bench.train import cpu_step_peak, make_train_step  # noqa: E402
from resnet_cli.models import build_model, get_spec  # noqa: E402

CASES = [  # variant, size, batch, optimizer, amp, channels_last
    ("resnet18", 224, 8, "sgd", None, False), ("resnet18", 224, 16, "adamw", None, True),
    ("resnet50", 224, 4, "momentum", None, False), ("resnet50", 160, 8, "adamw", "bf16", False),
    ("resnet56", 32, 128, "momentum", None, False), ("resnet56", 64, 32, "sgd", None, False),
]
QUICK = [("resnet18", 96, 4, "sgd", None, False), ("resnet20", 32, 64, "momentum", None, False)]


def main() -> int:
    cases = QUICK if "--quick" in sys.argv[1:] else CASES
    torch.set_num_threads(1)
    worst = 0.0
    print("| variant | input | optimizer | plan peak | real CPU step peak | error | plan s |")
    print("|---|---|---|---:|---:|---:|---:|")
    for variant, size, batch, optimizer, amp, cl in cases:
        spec = get_spec(variant)
        shape = (batch, spec.in_chans, size, size)
        t0 = time.perf_counter()
        plan = plan_memory(lambda: build_model(spec), shape, optimizer=optimizer, amp=amp, channels_last=cl,
                           device_type="cpu")
        plan_s = time.perf_counter() - t0
        torch.manual_seed(0)
        model = build_model(spec)
        if cl:
            model = model.to(memory_format=torch.channels_last)
        step = make_train_step(model, optimizer, shape, amp=amp, channels_last=cl)
        step()
        real = cpu_step_peak(step)
        err = plan_error_percent(plan.peak_bytes, real)
        worst = max(worst, abs(err))
        setting = optimizer + (f", {amp} autocast" if amp else "") + (", channels-last" if cl else "")
        print(f"| {variant} | {'x'.join(map(str, shape))} | {setting} | {human_bytes(plan.peak_bytes, 2)} | "
              f"{human_bytes(real, 2)} | {err:+.2f}% | {plan_s:.1f} |", flush=True)
    print(f"worst error {worst:.2f}% (goal: within 5%): {'ok' if worst <= 5 else 'OUTSIDE GOAL'}")
    return 0 if worst <= 5 else 1


if __name__ == "__main__":
    sys.exit(main())

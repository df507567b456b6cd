"""GPU check for `resnet-cli bench` (run on a CUDA machine; about 7 minutes, 2 of them train mode).

Measures resnet50 at 224x224, batch 64 and 256, in three settings -- fp32; bf16 + channels-last;
bf16 + channels-last + torch.compile -- through the same Session the CLI uses (CUDA events,
synchronisation, cudnn.benchmark, peak GEMM, max allocated/reserved memory), prints one table, then
checks the CUDA-only paths: the out-of-memory retry (memory capped with
``set_per_process_memory_fraction``), the CLI's JSON on ``--device cuda``, and data-parallel training
(``bench --mode train --nproc N``: NCCL, one GPU per rank; with one GPU only ``--nproc 1``, said so).

Train mode (``bench --mode train``): resnet50 at 224x224, batch 64 and 256, fp32 and bf16 AMP +
channels-last, SGD with momentum, with the forward/backward/optimizer split; prints the measured peak
of a step (``max_memory_allocated``) next to the memory plan's and fails when they differ by more than
10%; then ``--max-batch`` in train mode under an 8 GiB cap (the batch found and its peak).

    python3 benchmarks/gpu_check.py            # exit 0: all checks passed (or no CUDA device: skipped)
    python3 benchmarks/gpu_check.py --train    # the train-mode part only (about 2 minutes)
    python3 benchmarks/gpu_check.py --ddp      # the --nproc part only (about 1 minute)

Without a CUDA device it says so in one line and exits 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BUDGET_S = 270  # leave room under the 5-minute limit
SETTINGS = [("fp32", "fp32", False, None), ("bf16 + channels-last", "bf16", True, None),
            ("bf16 + channels-last + compile", "bf16", True, "default")]
BATCHES = (64, 256)
TRAIN_SETTINGS = [("train fp32", "fp32", None, False), ("train bf16 AMP + channels-last", "fp32", "bf16", True)]
PLAN_TOLERANCE_PERCENT = 10.0
MAX_BATCH_CAP_BYTES = 8 * 2 ** 30


def config(dtype: str, channels_last: bool, compile_mode, batches, **kw):
    from resnet_cli.bench.config import BenchConfig
    from resnet_cli.models import get_spec

    base = dict(variant="resnet50", spec=get_spec("resnet50"), state_dict=None, strict=True, device="cuda",
                dtype=dtype, channels_last=channels_last, compile_mode=compile_mode, batches=tuple(batches),
                max_batch=False, size=(224, 224), warmup=5, iters=None, min_time_s=1.0, threads=None,
                peak_tflops=None, force=False)
    base.update(kw)
    return BenchConfig(**base)


def row(label: str, report, r) -> str:
    from resnet_cli.bench.memory import human_bytes

    lat = r.latency_ms
    util = "-" if r.utilization is None else f"{100 * r.utilization:.1f}%"
    peak = "-" if report.peak is None else f"{report.peak.tflops:.1f}"
    batch = str(r.batch_size) + ("" if r.batch_size == r.requested_batch_size else f" (of {r.requested_batch_size})")
    return (f"| {label} | {batch} | {lat.median:.3f} | {lat.p5:.3f} … {lat.p95:.3f} | {r.images_per_sec:,.0f} | "
            f"{r.tflops:.1f} | {peak} | {util} | {human_bytes(r.peak_memory_bytes)} / "
            f"{human_bytes(r.peak_reserved_bytes)} | {r.first_call_ms:,.0f} | {r.iterations} |")


def check_ddp(failures: list[str]) -> None:
    """``bench --mode train --nproc N`` on the GPUs (NCCL, one GPU per rank, resnet50 batch 64 per rank): the
    ranks' weights must be bit-identical afterwards and every rank must report its all-reduce. With one GPU
    only ``--nproc 1`` can run (NCCL over one rank, no baseline): it says so and checks that."""
    import torch

    gpus = torch.cuda.device_count()
    nproc = min(gpus, 8)
    if gpus == 1:
        print("DDP: this machine has one GPU, so --nproc N > 1 (one GPU per rank) cannot be checked here; "
              "checking --nproc 1 (NCCL over one rank, the CUDA-event all-reduce timing)")
    cmd = [sys.executable, "-m", "resnet_cli", "bench", "resnet50", "--mode", "train", "--device", "cuda",
           "--nproc", str(nproc), "--batch", "64", "--iters", "20", "--timeout", "120", "--format", "json"]
    env = dict(os.environ, RESNET_CLI_DDP_TEST_CHECKSUM="1")
    try:
        run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=240)
    except subprocess.TimeoutExpired:
        failures.append(f"DDP --nproc {nproc}: no answer within 240 s")
        return
    if run.returncode != 0:
        failures.append(f"DDP --nproc {nproc}: exit {run.returncode}: {run.stderr.strip()[-300:]}")
        return
    data = json.loads(run.stdout)
    ranks = data["ranks"]
    if [r["rank"] for r in ranks] != list(range(nproc)) or data["backend"] != "nccl":
        failures.append(f"DDP --nproc {nproc}: ranks {[r['rank'] for r in ranks]}, backend {data['backend']}")
    if len({r["param_checksum"] for r in ranks}) != 1:
        failures.append(f"DDP --nproc {nproc}: the ranks' weights differ after the steps (no all-reduce?)")
    if any(r["allreduce"] is None or not 0 < r["allreduce"]["share"] <= 1 for r in ranks):
        failures.append(f"DDP --nproc {nproc}: a rank without a plausible all-reduce share")
    if [r["device"] for r in ranks] != [f"cuda:{i}" for i in range(nproc)]:
        failures.append(f"DDP --nproc {nproc}: devices {[r['device'] for r in ranks]}, not cuda:LOCAL_RANK")
    eff = data["scaling_efficiency"]
    if nproc > 1 and not (eff is not None and 0 < eff <= 1.1):
        failures.append(f"DDP --nproc {nproc}: scaling efficiency {eff} outside (0, 1.1]")
    for r in ranks:
        comm = r["allreduce"] or {}
        print(f"DDP rank {r['rank']} ({r['device']}): {r['images_per_sec']:,.0f} images/s, step median "
              f"{r['latency_ms']['median']:.2f} ms, all-reduce {comm.get('latency_ms', {}).get('median', 0):.2f} ms "
              f"({100 * comm.get('share', 0):.1f}%) over {comm.get('buckets')} buckets")
    base = data["baseline"]
    print(f"DDP total {data['images_per_sec']:,.0f} images/s on {nproc} GPU(s)"
          + (f"; one process {base['images_per_sec']:,.0f}; scaling efficiency {100 * eff:.1f}%" if base else ""))


def train_check(failures: list[str]) -> None:
    """bench --mode train on resnet50: throughput, the phase split, and measured peak vs the plan."""
    from resnet_cli.bench.memory import human_bytes
    from resnet_cli.bench.session import Hooks, Session

    lines = ["| setting | batch | step ms | images/s | TFLOP/s | util | fwd / bwd / opt ms | plan peak | "
             "max allocated | plan error |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, dtype, amp, cl in TRAIN_SETTINGS:
        report = Session(config(dtype, cl, None, BATCHES, mode="train", optimizer="momentum", amp=amp, detail=True,
                                min_time_s=1.0), Hooks(note=lambda t: print(f"  {t}", file=sys.stderr, flush=True))).run()
        for r in report.results:
            util = "-" if r.utilization is None else f"{100 * r.utilization:.1f}%"
            split = " / ".join(f"{(r.phase_ms or {}).get(k, float('nan')):.1f}" for k in ("forward", "backward",
                                                                                          "optimizer"))
            err = r.plan_error_percent
            lines.append(f"| {label} | {r.batch_size} | {r.latency_ms.median:.2f} | {r.images_per_sec:,.0f} | "
                         f"{r.tflops:.1f} | {util} | {split} | {human_bytes(r.plan_peak_bytes, 2)} | "
                         f"{human_bytes(r.step_peak_bytes, 2)} | {'-' if err is None else f'{err:+.1f}%'} |")
            if err is None or abs(err) > PLAN_TOLERANCE_PERCENT:
                failures.append(f"{label} batch {r.batch_size}: plan {r.plan_peak_bytes} vs measured "
                                f"{r.step_peak_bytes} bytes ({err}% off; tolerance {PLAN_TOLERANCE_PERCENT}%)")
        for w in report.warnings:
            print(f"  warning: {w}", file=sys.stderr)
    print("train mode: resnet50 224x224, SGD momentum 0.9, one step = zero_grad, forward, loss, backward, step; "
          "TFLOP/s from the counted training FLOPs")
    print("\n".join(lines))
    max_batch_check(failures)


def max_batch_check(failures: list[str]) -> None:
    """bench --mode train --max-batch under a memory cap (the search's steps start at the plan's answer):
    the batch found must be above 1 and its measured peak within the cap."""
    import torch

    from resnet_cli.bench.session import Hooks, Session

    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(min(1.0, MAX_BATCH_CAP_BYTES / total))
    notes: list[str] = []
    try:
        start = time.monotonic()
        report = Session(config("fp32", True, None, (1,), mode="train", optimizer="momentum", amp="bf16",
                                max_batch=True, iters=3, min_time_s=0.0), Hooks(note=notes.append)).run()
        r = report.results[0]
        print(f"train --max-batch, memory capped at {MAX_BATCH_CAP_BYTES / 2 ** 30:.0f} GiB (bf16 AMP + channels-last): "
              f"batch {r.batch_size} in {time.monotonic() - start:.0f} s; plan {r.plan_peak_bytes}, measured "
              f"{r.step_peak_bytes} bytes; {'; '.join(notes)}")
        if r.step_peak_bytes is None or r.step_peak_bytes > MAX_BATCH_CAP_BYTES or r.batch_size < 2:
            failures.append(f"train --max-batch under a {MAX_BATCH_CAP_BYTES}-byte cap: batch {r.batch_size}, "
                            f"measured peak {r.step_peak_bytes}")
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device here (torch {torch.__version__}, CUDA build: {torch.version.cuda}); "
              "nothing to check -- run this on a machine with an NVIDIA GPU")
        return 0
    from resnet_cli.bench.session import Hooks, Session

    start = time.monotonic()
    failures: list[str] = []
    if "--train" in sys.argv[1:] or "--ddp" in sys.argv[1:]:
        (train_check if "--train" in sys.argv[1:] else check_ddp)(failures)
        print(f"total {time.monotonic() - start:.0f} s; " + ("all checks passed" if not failures else "FAILED:"))
        for f in failures:
            print(f"  - {f}")
        return 1 if failures else 0
    lines = ["| setting | batch | median ms | p5 … p95 ms | images/s | TFLOP/s | peak TFLOP/s | util | "
             "max alloc / reserved | 1st call ms | iters |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    env = None
    for label, dtype, cl, mode in SETTINGS:
        if time.monotonic() - start > BUDGET_S - 60:
            failures.append(f"{label}: skipped, out of time budget")
            continue
        report = Session(config(dtype, cl, mode, BATCHES),
                         Hooks(note=lambda t: print(f"  {t}", file=sys.stderr, flush=True))).run()
        env = report.environment
        for r in report.results:
            lines.append(row(label, report, r))
            if not (r.utilization is None or 0 < r.utilization <= 1.0):
                failures.append(f"{label} batch {r.batch_size}: utilisation {r.utilization:.2f} outside (0, 1]")
            if r.peak_reserved_bytes is None or r.peak_memory_bytes > r.peak_reserved_bytes:
                failures.append(f"{label} batch {r.batch_size}: allocated/reserved memory inconsistent")
        for w in report.warnings:
            print(f"  warning: {w}", file=sys.stderr)
        print(f"  {label}: done at {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)

    print(f"resnet50, 224x224, {env.device_name if env else '?'}, torch {torch.__version__}, CUDA "
          f"{torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, TF32 convs {torch.backends.cudnn.allow_tf32}")
    print("FLOPs: conv+linear, 2 per MAC (8.18 GFLOPs per image); util = achieved / measured dense GEMM rate "
          "in the same dtype")
    print("\n".join(lines))

    # The OOM retry on real CUDA memory: cap this process at ~3 GiB and ask for batch 1024 in fp32.
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(min(1.0, 3 * 2 ** 30 / total))
    try:
        report = Session(config("fp32", False, None, (1024,), iters=3, min_time_s=0.0, peak_tflops=1.0)).run()
        r = report.results[0]
        print(f"OOM retry: asked batch 1024 with memory capped at 3 GiB, measured batch {r.batch_size} "
              f"({r.images_per_sec:,.0f} images/s); warning: {report.warnings[-1] if report.warnings else '-'}")
        if not r.batch_size < 1024:
            failures.append("OOM retry: batch 1024 did not run out of memory under a 3 GiB cap")
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)

    train_check(failures)

    cli = subprocess.run([sys.executable, "-m", "resnet_cli", "bench", "resnet50", "--device", "cuda", "--batch", "32",
                          "--iters", "20", "--format", "json"], cwd=REPO, capture_output=True, text=True,
                         env=dict(os.environ), timeout=120)
    if cli.returncode != 0:
        failures.append(f"CLI on cuda: exit {cli.returncode}: {cli.stderr.strip()[-300:]}")
    else:
        data = json.loads(cli.stdout)
        r = data["results"][0]
        print(f"CLI --device cuda: batch 32 median {r['latency_ms']['median']:.3f} ms, "
              f"{r['images_per_sec']:,.0f} images/s, device {data['environment']['device_name']}")
    check_ddp(failures)
    print(f"total {time.monotonic() - start:.0f} s; " + ("all checks passed" if not failures else "FAILED:"))
    for f in failures:
        print(f"  - {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

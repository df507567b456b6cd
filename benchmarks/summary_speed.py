"""Speed of ``resnet-cli summary`` (issue 4), measured as a user sees it: whole processes, cold start.

(a) ``resnet-cli summary resnet152 --batch 64 --size 2048``: wall time and peak resident memory of the
    process (goals: under 5 s and 1.5 GiB). The activations of a real forward pass there are ~900 GiB.
(b) ``resnet-cli summary resnet50`` against a bare peer script,
    ``import torch, torchinfo; torchinfo.summary(resnet50, (1, 3, 224, 224))`` (goal: ratio <= 1.25).
    torchvision is not installed here, so the peer builds its resnet50 with
    ``resnet_cli.build_model("resnet50")`` (torchvision's architecture and initialisation) on the CPU.
(c) the layer table of resnet152 (422 rows) rendered for a colour terminal (bold stages, dim zero-MAC
    rows, share bars) against the plain text a pipe gets, in this process (goal: ratio <= 1.25).

Each command runs in a fresh interpreter, in alternating rounds so that a drifting machine affects
both sides alike; the printed figures are medians over rounds. Peak memory is the child's
``ru_maxrss``, read by a one-child wrapper process so that nothing else is mixed in.

    python3 benchmarks/summary_speed.py              # 5 rounds of each
    python3 benchmarks/summary_speed.py --rounds 3 --only b
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

PEER = """
import torch, torchinfo
from resnet_cli import build_model
resnet50 = build_model("resnet50")
torchinfo.summary(resnet50, (1, 3, 224, 224))
"""

# Runs one command as its only child and prints {"wall_s": ..., "peak_rss_bytes": ...}.
WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
wall = time.perf_counter() - start
if done.returncode:
    sys.exit(f"command failed ({done.returncode}): {done.stderr.strip()[-500:]}")
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
print(json.dumps({"wall_s": wall, "peak_rss_bytes": peak_kib * 1024}))
"""


def run(argv: list[str]) -> dict:
    """Wall time and peak RSS of ``argv`` run once from the repository root."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", WRAPPER, *argv], cwd=ROOT, env=env, capture_output=True,
                         text=True)
    if out.returncode:
        sys.exit(f"benchmark aborted: {out.stderr.strip()}")
    return json.loads(out.stdout)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "resnet_cli", *args]


def load() -> str:
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per measurement (default 5)")
    parser.add_argument("--only", choices=("a", "b", "c"), help="run one of the measurements")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {load()}")

    if args.only in (None, "a"):
        big = [run(cli("summary", "resnet152", "--batch", "64", "--size", "2048")) for _ in range(args.rounds)]
        walls = [r["wall_s"] for r in big]
        wall = statistics.median(walls)
        peak = max(r["peak_rss_bytes"] for r in big)
        print(f"(a) summary resnet152 --batch 64 --size 2048: median wall {wall:.2f} s "
              f"(rounds: {', '.join(f'{t:.2f}' for t in walls)}), peak RSS {peak / 2**30:.2f} GiB "
              f"[goals: < 5 s, < 1.5 GiB: {'met' if wall < 5 and peak < 1.5 * 2**30 else 'MISSED'}]")

    if args.only in (None, "b"):
        ours, peer = [], []
        for _ in range(args.rounds):
            ours.append(run(cli("summary", "resnet50"))["wall_s"])
            peer.append(run([sys.executable, "-c", PEER])["wall_s"])
        ratio = statistics.median(ours) / statistics.median(peer)
        print(f"(b) summary resnet50: median {statistics.median(ours):.2f} s; peer torchinfo.summary(resnet50): "
              f"median {statistics.median(peer):.2f} s; ratio {ratio:.2f} "
              f"[goal <= 1.25: {'met' if ratio <= 1.25 else 'MISSED'}]")
        print(f"    rounds ours: {', '.join(f'{t:.2f}' for t in ours)}; peer: {', '.join(f'{t:.2f}' for t in peer)}")
    if args.only in (None, "c"):
        ratio, fancy, plain = terminal_render(args.rounds)
        print(f"(c) resnet152 layer table: colour terminal {fancy * 1e3:.1f} ms, plain {plain * 1e3:.1f} ms (medians); "
              f"ratio {ratio:.2f} [goal <= 1.25: {'met' if ratio <= 1.25 else 'MISSED'}]")
    print(load())


def terminal_render(rounds: int) -> tuple[float, float, float]:
    """(terminal / plain, terminal s, plain s): median render times of the summary table, alternating."""
    import io
    import time

    sys.path.insert(0, str(ROOT))
    from rich.console import Console

    from resnet_cli import summarize
    from resnet_cli.render.summary import summary_table

    s = summarize("resnet152", 224)
    times = {True: [], False: []}
    for _ in range(max(rounds, 3)):
        for fancy in (True, False):
            con = Console(file=io.StringIO(), width=200, force_terminal=fancy, color_system="truecolor" if fancy else None)
            t0 = time.perf_counter()
            for r in summary_table(s):
                con.print(r, crop=False)
            times[fancy].append(time.perf_counter() - t0)
    fancy, plain = statistics.median(times[True]), statistics.median(times[False])
    return fancy / plain, fancy, plain


if __name__ == "__main__":
    main()

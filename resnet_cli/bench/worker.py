"""One round of one case of a bench grid: the single-case runner (:class:`session.Session`) on one
batch, answered as a plain dict with the raw per-iteration times.

The same :func:`execute` runs in this process (``--same-process``) or in a fresh interpreter
(``python -m resnet_cli.bench.worker``: one JSON job on stdin, one JSON answer on stdout), so the two
paths differ only in the transport. A fresh interpreter per run keeps one model's allocator state,
oneDNN caches and CUDA context from changing the next one's speed (timm #955).

A job: ``{"variant", "spec", "weights", "strict", "device", "dtype", "channels_last", "compile_mode",
"batch", "size": [H, W], "warmup", "iters", "min_time_s", "threads", "peak_tflops", "force", "retry"}``.
An answer: ``{"ok": true, "run": {...}}`` (see :func:`execute`) or ``{"ok": false, "error", "exit_code"}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ..errors import ResnetCliError


def execute(job: dict) -> dict:
    """Run one job; returns the run: ``report`` (the single-case JSON of ``bench --format json``) and
    ``times_ms`` (every timed iteration of its one batch, in order).

    Raises:
        UsageError, RuntimeFailure: as ``bench`` does; KeyboardInterrupt: Ctrl-C (nothing is kept).
    """
    from ..models import resolve
    from ..render import export
    from .config import BenchConfig
    from .session import Hooks, Session

    state_dict = None
    if job.get("weights"):
        from ..analysis.checkpoint import load_weights

        loaded = load_weights(job["weights"], job["spec"], strict=job["strict"])
        spec, state_dict = loaded.spec, loaded.state_dict
    else:
        spec = resolve(job["spec"])[1]
    cfg = BenchConfig(variant=job["variant"], spec=spec, state_dict=state_dict, strict=job["strict"],
                      device=job["device"], dtype=job["dtype"], channels_last=job["channels_last"],
                      compile_mode=job["compile_mode"], batches=(job["batch"],), max_batch=False,
                      size=tuple(job["size"]), warmup=job["warmup"], iters=job["iters"], min_time_s=job["min_time_s"],
                      threads=job["threads"], peak_tflops=job["peak_tflops"], force=job["force"], retry=job["retry"],
                      **_extra(job))
    times: list[float] = []
    report = Session(cfg, Hooks(on_measurement=lambda result, m: times.extend(m.times_ms))).run()
    if report.interrupted:
        raise KeyboardInterrupt
    return {"report": export.as_plain(report), "times_ms": times}


def _extra(job: dict) -> dict:
    """The job's settings beyond the ones above that ``BenchConfig`` knows (e.g. a ``mode``), passed on."""
    import dataclasses

    from .config import BenchConfig

    known = {f.name for f in dataclasses.fields(BenchConfig)}
    fixed = {"variant", "spec", "weights", "strict", "device", "dtype", "channels_last", "compile_mode", "batch",
             "size", "warmup", "iters", "min_time_s", "threads", "peak_tflops", "force", "retry"}
    return {k: v for k, v in job.items() if k in known and k not in fixed and k != "batches"}


def answer(job: dict) -> tuple[dict, int]:
    """(the answer to ``job``, the exit status): errors become ``{"ok": false, ...}``."""
    try:
        return {"ok": True, "run": execute(job)}, 0
    except ResnetCliError as exc:
        return {"ok": False, "error": str(exc).replace("\n", " "), "exit_code": exc.exit_code}, exc.exit_code
    except KeyboardInterrupt:
        return {"ok": False, "error": "interrupted", "exit_code": 130}, 130
    except Exception as exc:  # noqa: BLE001  (a bug in one case must not take the other cases' rows)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return {"ok": False, "error": f"internal error: {type(exc).__name__}: {first}", "exit_code": 1}, 1


def main(argv: Any = None) -> int:
    job = json.loads(sys.stdin.read())
    import gc

    import torch  # noqa: F401  (then freeze torch's objects out of the collector, as the CLI does)

    gc.freeze()
    reply, code = answer(job)
    sys.stdout.write(json.dumps(reply, allow_nan=False) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())

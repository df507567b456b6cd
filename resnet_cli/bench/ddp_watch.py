"""Watching the ranks of a data-parallel run from the launcher: each rank rewrites ``local<R>.json``
(phase, a progress counter, its raw timings so far) every :data:`STATUS_INTERVAL_S`; the
:class:`Watchdog` reads them and, when no rank has progressed for ``--timeout`` seconds, names the
rank(s) furthest behind and stops the run. No torch here.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Callable, Optional

#: How often a rank rewrites its status file (seconds).
STATUS_INTERVAL_S = 0.5
#: A rank gets at least this long to start (spawn, import torch) before it counts as hung.
START_GRACE_S = 60.0


def read_status(directory: str, local_ranks: int) -> dict[int, dict]:
    """Every local rank's last status (missing or half-written files are left out)."""
    out = {}
    for r in range(local_ranks):
        try:
            with open(os.path.join(directory, f"local{r}.json"), encoding="utf-8") as fh:
                out[r] = json.load(fh)
        except (OSError, ValueError):
            continue
    return out


def _where(s: dict) -> str:
    raw = s.get("raw") or s.get("baseline") or {}
    steps = 1 + len(raw.get("warmup_ms") or []) + len(raw.get("times_ms") or []) if raw.get("first_call_ms") else 0
    return f"{s.get('phase', 'starting')}, after {steps} finished training step{'s' if steps != 1 else ''}"


def hang_verdict(status: dict[int, dict], local_ranks: int, started_at: float, now: float,
                 timeout_s: float) -> Optional[str]:
    """The one-line message when no local rank has progressed for ``timeout_s`` seconds (a rank that
    never wrote its status: :data:`START_GRACE_S` at least), else None.

    Blame goes to the stale ranks furthest behind (fewest progress beats; every rank counts the same
    events, so beats compare across ranks), leaving out ranks that wait on purpose (for the baseline,
    for the gather) unless every rank waits."""
    live = {r: s for r, s in status.items() if s.get("phase") != "done"}
    missing = [r for r in range(local_ranks) if r not in status]
    if not live and not missing:
        return None
    last = max([s.get("progress_at", started_at) for s in live.values()] + ([started_at] if missing else []))
    if now - last < timeout_s:
        return None
    if missing and now - started_at < max(timeout_s, START_GRACE_S):
        return None  # still importing torch (seconds on a busy machine)
    if missing:
        names = ", ".join(str(r) for r in missing)
        return (f"local rank{'s' if len(missing) > 1 else ''} {names} did not start within "
                f"{max(timeout_s, START_GRACE_S):g} s; the run was stopped")
    working = {r: s for r, s in live.items() if not s.get("waiting")} or live
    low = min(s.get("beats", 0) for s in working.values())
    blamed = sorted(r for r, s in working.items() if s.get("beats", 0) == low)
    if len(blamed) == len(live) and len(live) > 1:
        s = live[blamed[0]]
        return (f"ranks {', '.join(str(live[r].get('rank', r)) for r in blamed)} all stopped at the same point "
                f"({_where(s)}) with no progress for {timeout_s:g} s (--timeout): a collective never completed "
                "(a rank on another node, or the interconnect); the run was stopped")
    s = live[blamed[0]]
    others = "" if len(live) == 1 else "; the other ranks were waiting for it"
    return (f"rank {s.get('rank', blamed[0])} hung: no progress for {timeout_s:g} s ({_where(s)}){others}; "
            "the run was stopped (--timeout)")


class Watchdog(threading.Thread):
    """Polls the status files; on a hang stores the verdict and sends this process SIGTERM, which
    torchrun's agent turns into a shutdown of every rank. ``note`` gets rank 0's phase changes."""

    def __init__(self, directory: str, local_ranks: int, timeout_s: float, note: Callable[[str], None]):
        super().__init__(daemon=True, name="resnet-cli-ddp-watchdog")
        self.directory, self.local_ranks, self.timeout_s, self.note = directory, local_ranks, timeout_s, note
        self.verdict: Optional[str] = None
        self.started_at = time.time()
        self._stop = threading.Event()
        self._armed = threading.Lock()  # held by stop(): no SIGTERM once the agent's handlers are gone
        self._phase = None

    def run(self) -> None:
        while not self._stop.wait(STATUS_INTERVAL_S):
            status = read_status(self.directory, self.local_ranks)
            phase = status.get(0, {}).get("phase")
            if phase and phase != self._phase and ("baseline" in phase or "training steps" in phase):
                self._phase = phase
                self.note(f"rank 0: {phase}")
            verdict = hang_verdict(status, self.local_ranks, self.started_at, time.time(), self.timeout_s)
            if verdict is not None:
                with self._armed:
                    if not self._stop.is_set():
                        self.verdict = verdict
                        os.kill(os.getpid(), signal.SIGTERM)
                return

    def stop(self) -> None:
        with self._armed:
            self._stop.set()

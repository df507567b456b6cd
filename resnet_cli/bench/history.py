"""Reading measured cases back for ``resnet-cli plot``: a ``--save`` history (JSON Lines: single-run,
grid and data-parallel lines) or one ``bench --format json`` document, one line or pretty-printed over
many (single run, grid, or a data-parallel ``--nproc`` run). No torch here.

Every point must come from one device; a later record of the same case (variant, dtype, layout,
mode, optimizer, amp, compile mode, threads, ranks, batch, input size) supersedes an earlier one, as a
history is appended to. Errors name the file and the line.

A data-parallel run (``--nproc N``) is a point of its own series (``world_size`` N): its ``batch_size``
is the batch per rank (what ``--batch`` took), its images/s the total over the ranks and its latency
rank 0's step; its one-process baseline is a point with ``world_size`` 1.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Optional

from ..errors import RuntimeFailure, UsageError


@dataclass(frozen=True)
class Point:
    """One measured case, as plotted. Latencies in ms (one forward pass of the whole batch); ``gmacs``:
    GMACs of one image (conv+linear, 1 MAC = 2 FLOPs); ``line``: where it was read (1-based; 0 for a
    JSON document)."""

    variant: str
    dtype: str
    channels_last: bool
    batch_size: int
    input_size: tuple[int, ...]
    images_per_sec: float
    latency_ms: dict
    gmacs: Optional[float]
    device: str
    device_name: str
    line: int
    mode: str = "eval"
    world_size: int = 1  # data-parallel ranks (``bench --nproc``); batch_size is then per rank
    optimizer: Optional[str] = None  # a training step's optimizer (None in eval)
    amp: Optional[str] = None  # --amp's autocast dtype (None: no autocast)
    compile_mode: Optional[str] = None  # torch.compile mode (None: eager)
    threads: Optional[int] = None  # torch intra-op threads of the run (None: not recorded)

    @property
    def key(self) -> tuple:
        """The case's identity: a later point with the same key supersedes an earlier one."""
        return (self.variant, self.dtype, self.channels_last, self.mode, self.optimizer, self.amp, self.compile_mode,
                self.threads, self.world_size, self.batch_size, self.input_size)


def _need(record: dict, path: str, where: str, *keys: str):
    value = record
    for key in keys:
        if not isinstance(value, dict) or key not in value or value[key] is None:
            raise UsageError(f"{path} {where}: no {'.'.join(keys)!r}; expected a record written by "
                             "'resnet-cli bench --save' or 'bench --format json'")
        value = value[key]
    return value


def _number(value, path: str, where: str, name: str, integer: bool = False) -> float:
    """``value`` as a finite number (an integer >= 1 with ``integer``).

    Raises:
        UsageError: a non-number, a bool, NaN or +-Infinity (Python's json writes and reads those), or
            for ``integer`` a fraction or a value below 1; the message names the file, the line and the field.
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer:
        ok = float(value).is_integer() and value >= 1
    if not ok:
        shown = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else repr(value)
        shown = {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}.get(shown, shown)
        what = "a whole number of 1 or more" if integer else "a finite number"
        raise UsageError(f"{path} {where}: {name} is {shown[:40]}, not {what}; expected a record written by "
                         "'resnet-cli bench --save' or 'bench --format json'")
    return int(value) if integer else float(value)


def _latencies(value, path: str, where: str, name: str) -> dict:
    if not isinstance(value, dict):
        raise UsageError(f"{path} {where}: {name} is not an object of latencies in ms; expected a record written "
                         "by 'resnet-cli bench --save' or 'bench --format json'")
    for key in _LATENCY_KEYS:  # what the latency plot draws (p25/p75: the median stands in when absent)
        if value.get(key) is None:
            raise UsageError(f"{path} {where}: no '{name}.{key}'; expected a record written by "
                             "'resnet-cli bench --save' or 'bench --format json'")
    return {k: (v if v is None or k == "n" else _number(v, path, where, f"{name}.{k}")) for k, v in value.items()}


_LATENCY_KEYS = ("p5", "median", "p95")


def _gmacs(flops, path: str, where: str, name: str = "flops_per_image") -> Optional[float]:
    """GMACs per image of a FLOPs field (None when absent or 0)."""
    return _number(flops, path, where, name) / 2e9 if flops else None


def _threads(*values) -> Optional[int]:
    """The first whole number among ``values`` (the thread count asked for, then the one measured)."""
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    return None


def _text(value) -> Optional[str]:
    return None if value is None else str(value)


def _from_saved(rec: dict, path: str, line: int) -> Point:
    """A ``--save`` line (single run or grid case)."""
    where = f"line {line}"
    settings, result = _need(rec, path, where, "settings"), _need(rec, path, where, "result")
    flops = rec.get("flops_per_image")
    env = rec.get("environment") or {}
    size = settings.get("input_size") or rec.get("input_size") or ()
    world = _number(rec["world_size"], path, where, "world_size", integer=True) if rec.get("world_size") else 1
    batch_key = "batch_per_rank" if world > 1 else "batch_size"  # a DDP line's batch_size is the global batch
    mode = str(result.get("mode") or settings.get("mode") or rec.get("mode") or "eval")
    return Point(variant=str(_need(rec, path, where, "variant")), dtype=str(_need(rec, path, where, "settings", "dtype")),
                 channels_last=bool(settings.get("channels_last")),
                 batch_size=_number(_need(rec, path, where, "result", batch_key), path, where,
                                    f"result.{batch_key}", integer=True), input_size=tuple(size),
                 images_per_sec=_number(_need(rec, path, where, "result", "images_per_sec"), path, where,
                                        "result.images_per_sec"),
                 latency_ms=_latencies(_need(rec, path, where, "result", "latency_ms"), path, where,
                                       "result.latency_ms"),
                 gmacs=_gmacs(flops, path, where), device=str(_need(rec, path, where, "settings", "device")),
                 device_name=str(env.get("device_name", "")), line=line,
                 mode=mode, world_size=world,
                 optimizer=_text(settings.get("optimizer")) if mode == "train" else None,
                 amp=_text(settings.get("amp")),
                 compile_mode=_text(settings.get("compile_mode")),
                 threads=_threads(settings.get("threads"), env.get("threads")))


def _from_ddp(doc: dict, path: str) -> list[Point]:
    """A ``bench --nproc N --format json`` document: the one-process baseline (world size 1) and the
    N-rank run (images/s the total, latency rank 0's step, batch per rank); a run without figures
    (interrupted) gives no point."""
    env = doc.get("environment") or {}
    world = _number(_need(doc, path, "", "world_size"), path, "", "world_size", integer=True)
    runs = []
    if doc.get("baseline"):
        runs.append(("baseline", 1, doc["baseline"], doc["baseline"].get("images_per_sec")))
    ranks = doc.get("ranks") or []
    if ranks and doc.get("images_per_sec") is not None:
        runs.append(("rank 0", world, ranks[0], doc["images_per_sec"]))
    out = []
    for where, size, rank, total in runs:
        out.append(Point(variant=str(_need(doc, path, "", "variant")), dtype=str(_need(doc, path, "", "dtype")),
                         channels_last=bool(doc.get("channels_last")),
                         batch_size=_number(_need(rank, path, where, "batch_size"), path, where, "batch_size", True),
                         input_size=tuple(doc.get("input_size") or ()),
                         images_per_sec=_number(total, path, where, "images_per_sec"),
                         latency_ms=_latencies(_need(rank, path, where, "latency_ms"), path, where, "latency_ms"),
                         gmacs=None, device=str(doc.get("device_type") or _need(env, path, "", "device")),
                         device_name=str(env.get("device_name", "")), line=0, mode=str(doc.get("mode") or "train"),
                         world_size=size, optimizer=_text(doc.get("optimizer")), amp=_text(doc.get("amp")),
                         compile_mode=_text(doc.get("compile_mode")),
                         threads=_threads(doc.get("threads_per_rank"), env.get("threads"))))
    return out


def _from_document(doc: dict, path: str) -> list[Point]:
    env = doc.get("environment") or {}
    if "cases" in doc:  # a grid
        out = []
        for i, c in enumerate(doc["cases"]):
            if c.get("latency_ms") is None:
                continue  # a case that failed has nothing to plot
            where = f"case {i + 1}"
            out.append(Point(variant=str(_need(c, path, where, "variant")), dtype=str(_need(c, path, where, "dtype")),
                             channels_last=bool(c.get("channels_last")),
                             batch_size=_number(_need(c, path, where, "batch_size"), path, where, "batch_size", True),
                             input_size=tuple(c.get("input_size") or ()),
                             images_per_sec=_number(_need(c, path, where, "images_per_sec"), path, where,
                                                    "images_per_sec"),
                             latency_ms=_latencies(c["latency_ms"], path, where, "latency_ms"),
                             gmacs=(_number(c["gmacs"], path, where, "gmacs") if c.get("gmacs") is not None else None),
                             device=str(_need(doc, path, "", "device")),
                             device_name=str(env.get("device_name", "")), line=0, mode=str(c.get("mode") or "eval"),
                             optimizer=_text(c.get("optimizer")), amp=_text(c.get("amp")),
                             compile_mode=_text(doc.get("compile_mode")),
                             threads=_threads(doc.get("threads"), env.get("threads"))))
        return out
    flops = _number(_need(doc, path, "", "flops_per_image"), path, "", "flops_per_image")
    out = []
    for i, r in enumerate(_need(doc, path, "", "results")):
        where = f"result {i + 1}"
        out.append(Point(variant=str(_need(doc, path, "", "variant")), dtype=str(_need(doc, path, "", "dtype")),
                         channels_last=bool(doc.get("channels_last")),
                         batch_size=_number(_need(r, path, where, "batch_size"), path, where, "batch_size", True),
                         input_size=tuple(doc.get("input_size") or ()),
                         images_per_sec=_number(_need(r, path, where, "images_per_sec"), path, where,
                                                "images_per_sec"),
                         latency_ms=_latencies(_need(r, path, where, "latency_ms"), path, where, "latency_ms"),
                         gmacs=flops / 2e9, device=str(_need(doc, path, "", "device")),
                         device_name=str(env.get("device_name", "")), line=0, mode=str(r.get("mode") or "eval"),
                         optimizer=_text(doc.get("optimizer")) if (r.get("mode") or "eval") == "train" else None,
                         amp=_text(doc.get("amp")), compile_mode=_text(doc.get("compile_mode")),
                         threads=_threads(doc.get("threads"), env.get("threads"))))
    return out


def load(path: str) -> tuple[list[Point], int]:
    """(the points of ``path``, how many earlier records of the same case were superseded).

    Raises:
        RuntimeFailure: the file cannot be read.
        UsageError: not JSON / JSON Lines, a record without the fields a plot needs, records from more
            than one device, or no measured case at all (the message names the line).
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise RuntimeFailure(f"cannot read {path!r} ({getattr(exc, 'strerror', None) or exc}); give a file written "
                             "by 'resnet-cli bench --save' or 'bench --format json'") from None
    points: list[Point] = []
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and ("cases" in doc or "results" in doc):
        points = _from_document(doc, path)
    elif isinstance(doc, dict) and "ranks" in doc and "settings" not in doc:  # one --nproc run (not a --save line)
        points = _from_ddp(doc, path)
    elif isinstance(doc, dict) and "settings" in doc:  # one --save record (a one-line history, or pretty-printed)
        points = [_from_saved(doc, path, 1)]
    elif doc is not None:  # one whole-file document of another kind
        raise UsageError(f"{path} is one JSON document but not a bench report (no 'cases', 'results' or 'ranks'); "
                         "give a 'bench --save' history (JSON Lines) or a 'bench --format json' file")
    else:
        for number, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except ValueError as exc:
                raise UsageError(f"{path} line {number} is not JSON ({exc.msg} at column {exc.colno}); each line of a "
                                 "--save history is one JSON record") from None
            if not isinstance(rec, dict):
                raise UsageError(f"{path} line {number} is not a JSON object; expected a 'bench --save' record")
            points.append(_from_saved(rec, path, number))
    if not points:
        raise UsageError(f"{path} holds no measured case; give a 'bench --save' history or a 'bench --format json' file")
    first = points[0]
    for p in points[1:]:
        if (p.device, p.device_name) != (first.device, first.device_name):
            raise UsageError(f"{path} line {p.line} was measured on {p.device} ({p.device_name or '?'}) but line "
                             f"{first.line} on {first.device} ({first.device_name or '?'}); plot one device at a time "
                             "(keep the lines of one device in a file of their own)")
    latest = {p.key: p for p in points}
    return list(latest.values()), len(points) - len(latest)

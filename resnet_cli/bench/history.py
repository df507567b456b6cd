"""Reading measured cases back for ``resnet-cli plot``: a ``--save`` history (JSON Lines, single-run or
grid lines) or one ``bench --format json`` document (single run or grid). No torch here.

Every point must come from one device; a later record of the same case (variant, dtype, layout,
batch, input size) supersedes an earlier one, as a history is appended to. Errors name the file and
the line.
"""

from __future__ import annotations

import json
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

    @property
    def key(self) -> tuple:
        return (self.variant, self.dtype, self.channels_last, self.mode, self.batch_size, self.input_size)


def _need(record: dict, path: str, where: str, *keys: str):
    value = record
    for key in keys:
        if not isinstance(value, dict) or key not in value or value[key] is None:
            raise UsageError(f"{path} {where}: no {'.'.join(keys)!r}; expected a record written by "
                             "'resnet-cli bench --save' or 'bench --format json'")
        value = value[key]
    return value


def _from_saved(rec: dict, path: str, line: int) -> Point:
    """A ``--save`` line (single run or grid case)."""
    where = f"line {line}"
    settings, result = _need(rec, path, where, "settings"), _need(rec, path, where, "result")
    flops = rec.get("flops_per_image")
    env = rec.get("environment") or {}
    size = settings.get("input_size") or rec.get("input_size") or ()
    return Point(variant=str(_need(rec, path, where, "variant")), dtype=str(_need(rec, path, where, "settings", "dtype")),
                 channels_last=bool(settings.get("channels_last")),
                 batch_size=int(_need(rec, path, where, "result", "batch_size")), input_size=tuple(size),
                 images_per_sec=float(_need(rec, path, where, "result", "images_per_sec")),
                 latency_ms=dict(_need(rec, path, where, "result", "latency_ms")),
                 gmacs=flops / 2e9 if flops else None, device=str(_need(rec, path, where, "settings", "device")),
                 device_name=str(env.get("device_name", "")), line=line,
                 mode=str(result.get("mode") or settings.get("mode") or "eval"))


def _from_document(doc: dict, path: str) -> list[Point]:
    env = doc.get("environment") or {}
    if "cases" in doc:  # a grid
        out = []
        for i, c in enumerate(doc["cases"]):
            if c.get("latency_ms") is None:
                continue  # a case that failed has nothing to plot
            where = f"case {i + 1}"
            out.append(Point(variant=str(_need(c, path, where, "variant")), dtype=str(_need(c, path, where, "dtype")),
                             channels_last=bool(c.get("channels_last")), batch_size=int(_need(c, path, where, "batch_size")),
                             input_size=tuple(c.get("input_size") or ()),
                             images_per_sec=float(_need(c, path, where, "images_per_sec")), latency_ms=dict(c["latency_ms"]),
                             gmacs=c.get("gmacs"), device=str(_need(doc, path, "", "device")),
                             device_name=str(env.get("device_name", "")), line=0, mode=str(c.get("mode") or "eval")))
        return out
    flops = _need(doc, path, "", "flops_per_image")
    return [Point(variant=str(_need(doc, path, "", "variant")), dtype=str(_need(doc, path, "", "dtype")),
                  channels_last=bool(doc.get("channels_last")), batch_size=int(r["batch_size"]),
                  input_size=tuple(doc.get("input_size") or ()), images_per_sec=float(r["images_per_sec"]),
                  latency_ms=dict(r["latency_ms"]), gmacs=flops / 2e9, device=str(_need(doc, path, "", "device")),
                  device_name=str(env.get("device_name", "")), line=0, mode=str(r.get("mode") or "eval"))
            for r in _need(doc, path, "", "results")]


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

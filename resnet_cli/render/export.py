"""Machine-readable exports, one small function per format (hyperfine's exporter split).

``rows`` are flat dicts (one per table row); ``payload`` is a record (a dataclass) or a dict.
JSON is ``dataclasses.asdict`` plus ``schema_version``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from typing import Any, Iterable, Sequence

SCHEMA_VERSION = 2


def as_plain(obj: Any, _path: str = "", _nulls: list | None = None) -> Any:
    """Dataclasses, tuples and nested containers as JSON-ready dicts and lists. A float that is not
    finite (NaN: nothing measured; infinity: a division by a vanishing figure) becomes None, JSON's
    null; ``_nulls`` (when given) collects the dotted paths so replaced."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: as_plain(getattr(obj, f.name), f"{_path}{f.name}.", _nulls) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): as_plain(v, f"{_path}{k}.", _nulls) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [as_plain(v, f"{_path}{i}.", _nulls) for i, v in enumerate(obj)]
    if isinstance(obj, float) and not math.isfinite(obj):  # NaN and Infinity are not JSON
        if _nulls is not None:
            _nulls.append(f"{_path.rstrip('.')} ({obj!r})")
        return None
    return obj


def strict_dumps(data: Any, **kwargs) -> str:
    """``json.dumps`` that refuses NaN and Infinity (``allow_nan=False``): every document resnet-cli
    writes parses with strict parsers (jq, JavaScript's JSON.parse, ``parse_constant`` raising)."""
    return json.dumps(data, allow_nan=False, **kwargs)


def to_json(payload: Any) -> str:
    """One JSON document with ``schema_version`` first. Values that could not be measured (not
    finite) are null, and a top-level ``null_values`` list names them with what they were."""
    nulls: list[str] = []
    data = as_plain(payload, "", nulls)
    if isinstance(data, dict):
        data = {"schema_version": SCHEMA_VERSION, **data}
        if nulls:
            data["null_values"] = [f"{n}: not measurable, written as null" for n in nulls]
    return strict_dumps(data, indent=2)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):  # not measured: empty, as None
        return ""
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    if isinstance(value, dict):
        return strict_dumps(as_plain(value), separators=(",", ":"))
    return str(value)


def to_csv(rows: Sequence[dict], columns: Iterable[str] | None = None) -> str:
    """CSV with a header row; lists as ``1x64x56x56``, missing values empty."""
    columns = list(columns or (rows[0].keys() if rows else []))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def to_markdown(rows: Sequence[dict], columns: Iterable[str] | None = None, numeric: Iterable[str] = ()) -> str:
    """A GitHub pipe table; ``numeric`` columns are right-aligned and '|' in cells is escaped."""
    columns = list(columns or (rows[0].keys() if rows else []))
    numeric = set(numeric)
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---:" if c in numeric else "---" for c in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)).replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines) + "\n"

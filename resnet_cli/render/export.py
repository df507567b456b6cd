"""Machine-readable exports, one small function per format (hyperfine's exporter split).

``rows`` are flat dicts (one per table row); ``payload`` is a record (a dataclass) or a dict.
JSON is ``dataclasses.asdict`` plus ``schema_version``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from typing import Any, Iterable, Sequence

SCHEMA_VERSION = 2


def as_plain(obj: Any) -> Any:
    """Dataclasses, tuples and nested containers as JSON-ready dicts and lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: as_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): as_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [as_plain(v) for v in obj]
    if isinstance(obj, float) and obj != obj:  # NaN is not JSON
        return None
    return obj


def to_json(payload: Any) -> str:
    """One JSON document with ``schema_version`` first."""
    data = as_plain(payload)
    if isinstance(data, dict):
        data = {"schema_version": SCHEMA_VERSION, **data}
    return json.dumps(data, indent=2)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
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

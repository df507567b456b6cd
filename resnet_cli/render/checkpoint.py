"""Tables for ``resnet-cli inspect`` from a ``CheckpointReport``. Computes nothing."""

from __future__ import annotations

from rich.table import Table

from .tables import keep_whole

#: Columns of the one-row CSV / Markdown form of a report.
COLUMNS = ["file", "format", "matches", "closest", "exact", "variant", "num_params", "in_chans", "num_classes",
           "missing_keys", "unexpected_keys", "shape_mismatches"]
#: Key rows shown in the table before "... more" (JSON lists them all).
MAX_KEY_ROWS = 25


def _shape(shape) -> str:
    return "x".join(map(str, shape)) or "scalar"


def report_row(report) -> dict:
    """The report as one flat row: names joined by spaces, key lists as counts."""
    return {"file": report.file, "format": report.format, "matches": " ".join(report.matches),
            "closest": " ".join(report.closest), "exact": report.exact, "variant": report.variant,
            "num_params": report.num_params, "in_chans": report.in_chans, "num_classes": report.num_classes,
            "missing_keys": len(report.missing_keys), "unexpected_keys": len(report.unexpected_keys),
            "shape_mismatches": len(report.shape_mismatches)}


def _verdict(report) -> str:
    if report.spec is None:
        return f"not a ResNet resnet-cli builds: {report.reason}"
    if report.exact and report.matches:
        names = ", ".join(report.matches)
        return names if len(report.matches) == 1 else f"{names} (the state_dict cannot tell these apart)"
    if report.exact:
        return "no named variant: a custom spec (below)"
    closest = ", ".join(report.closest) if report.closest else "the custom spec below"
    return f"none exactly; closest: {closest} (key differences below)"


def report_tables(report) -> list:
    """A summary table and, when keys differ, a table of the keys (first ``MAX_KEY_ROWS``)."""
    summary = Table(title=f"Checkpoint {report.file}", title_justify="left", show_header=False)
    summary.add_column("field", style="bold")
    summary.add_column("value", overflow="fold")
    rows = [("format", report.format + (f", state_dict under '{report.wrapper_key}'" if report.wrapper_key else "")
             + (f", prefix '{report.prefix}' stripped" if report.prefix else "")),
            ("tensors", f"{report.num_tensors} ({', '.join(report.dtypes)})"),
            ("parameters", f"{report.num_params:,} ({report.num_params / 1e6:.2f} M)"),
            ("matches", _verdict(report))]
    if report.spec is not None:
        rows += [("variant", report.variant), ("spec", report.spec),
                 ("input / classes", f"in_chans {report.in_chans}, num_classes {report.num_classes}"),
                 ("not in a state_dict", ", ".join(report.undetermined)),
                 ("keys", "all match" if report.exact else
                  f"{len(report.missing_keys)} missing, {len(report.unexpected_keys)} unexpected, "
                  f"{len(report.shape_mismatches)} of another shape")]
    for field, value in rows:
        summary.add_row(field, value)
    problems = ([(k, "missing", "", "") for k in report.missing_keys]
                + [(k, "unexpected", "", "") for k in report.unexpected_keys]
                + [(m.key, "shape", _shape(m.checkpoint), _shape(m.expected)) for m in report.shape_mismatches])
    if report.spec is None or not problems:
        return [summary]
    keys = Table(title=f"Keys that do not fit {report.variant}", title_justify="left", header_style="bold")
    for name in ("key", "problem", "in file", "in network"):
        keys.add_column(name)
    for row in problems[:MAX_KEY_ROWS]:
        keys.add_row(*row)
    if len(problems) > MAX_KEY_ROWS:
        keys.add_row(f"... {len(problems) - MAX_KEY_ROWS} more (--format json lists all)", "", "", "")
    return [summary, keep_whole(keys, longest=80)]

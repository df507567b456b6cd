"""``resnet-cli list``: every variant, from the registry alone (no torch)."""

from __future__ import annotations

from typing import Optional

import typer

from ..errors import UsageError
from . import app
from .common import Format, emit, format_option

COLUMNS = ["name", "family", "block", "layers", "width", "stem", "shortcut", "attention", "norm", "input_size",
           "source"]


def variant_rows(family: Optional[str], pattern: Optional[str] = None, typed: bool = False) -> list[dict]:
    """One dict per variant (optionally one family, optionally names matching a shell-style glob such
    as ``seresnext*``, case-insensitive), in registry order: the table's text, or with ``typed`` the
    JSON record, where ``layers`` (blocks per stage) and ``input_size`` (C, H, W) are lists of ints,
    ``width`` the first stage's planes (int; the spec's ``widths[0]`` times the wide factor) beside
    ``width_label`` (the table's text: ``64``, ``32x4d``, ``128 (x2)``, ``64 (pruned)``), ``groups`` and
    ``width_per_group`` ints, and ``stage_channels`` each stage's output channels.

    Raises:
        UsageError: an unknown family, or a pattern that matches no name.
    """
    from fnmatch import fnmatchcase

    from ..models import FAMILIES, VARIANTS

    if family is not None and family.lower() not in FAMILIES:
        raise UsageError(f"--family {family!r} is not a family; use one of {', '.join(FAMILIES)}")
    rows = []
    for v in VARIANTS.values():
        if family is not None and v.family != family.lower():
            continue
        if pattern is not None and not fnmatchcase(v.name, pattern.lower()):
            continue
        s = v.spec
        block = "-".join(s.stage_blocks) if s.stage_blocks else s.block
        rows.append({
            "name": v.name, "family": v.family,
            "block": ("preact " if s.preact else "") + block + (" (stride in 1x1)" if s.stride_in_1x1 else ""),
            "layers": "-".join(map(str, s.layers)), "width": s.describe_width() + (" (pruned)" if s.block_widths else ""),
            "stem": s.stem + ("" if s.stem_pool == "max" else f" (pool: {s.stem_pool})"),
            "shortcut": s.shortcut, "attention": s.attn if s.attn == "none" or s.se_ratio == 1 / 16 or s.attn != "se"
            else f"se (ratio {s.se_ratio:g})",
            "norm": s.norm + ("" if s.conv == "plain" else f" + {s.conv} conv") + ("" if s.aa == "none" else f" + aa:{s.aa}"),
            "input_size": "x".join(map(str, s.input_size)),
            "source": v.source,
        })
        if typed:
            label = rows[-1]["width"]
            rows[-1].update({"layers": list(s.layers), "width": s.stage_planes[0], "input_size": list(s.input_size)})
            rows[-1].update({"width_label": label, "groups": s.groups, "width_per_group": s.width_per_group,
                             "stage_channels": list(s.stage_channels)})
    if pattern is not None and not rows:
        where = f" in family {family.lower()}" if family is not None else ""
        raise UsageError(f"no variant matches {pattern!r}{where}; patterns are shell globs such as 'seresnext*' "
                         "or '*_v1' (run 'resnet-cli list' for every name)")
    return rows


@app.command("list")
def list_variants(
    pattern: Optional[str] = typer.Argument(None, help="Only names matching this shell glob, e.g. 'seresnext*'."),
    family: Optional[str] = typer.Option(None, "--family", help="Only this family: torchvision, timm, cifar or paper."),
    fmt: Format = format_option(),
) -> None:
    """List every variant: family, block type, blocks per stage, width/groups, stem, shortcut, input size
    and source (the library or paper whose architecture it is)."""
    rows = variant_rows(family, pattern, typed=fmt == Format.json)
    from ..render.tables import simple_table

    emit(fmt, {"variants": rows}, rows, COLUMNS, lambda _: simple_table(rows, COLUMNS, title="ResNet variants"))

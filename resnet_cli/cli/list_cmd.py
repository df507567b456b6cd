"""``resnet-cli list``: every variant, from the registry alone (no torch)."""

from __future__ import annotations

from typing import Optional

import typer

from ..errors import UsageError
from . import app
from .common import Format, emit, format_option

COLUMNS = ["name", "family", "block", "layers", "width", "stem", "shortcut", "attention", "norm", "input_size"]


def variant_rows(family: Optional[str]) -> list[dict]:
    """One dict per variant (optionally one family), in registry order."""
    from ..models import FAMILIES, VARIANTS

    if family is not None and family.lower() not in FAMILIES:
        raise UsageError(f"--family {family!r} is not a family; use one of {', '.join(FAMILIES)}")
    rows = []
    for v in VARIANTS.values():
        if family is not None and v.family != family.lower():
            continue
        s = v.spec
        rows.append({
            "name": v.name, "family": v.family,
            "block": ("preact " if s.preact else "") + s.block,
            "layers": "-".join(map(str, s.layers)), "width": s.describe_width(),
            "stem": s.stem + ("" if s.stem_pool == "max" else f" (pool: {s.stem_pool})"),
            "shortcut": s.shortcut, "attention": s.attn if s.attn == "none" or s.se_ratio == 1 / 16 or s.attn != "se"
            else f"se (ratio {s.se_ratio:g})",
            "norm": s.norm + ("" if s.conv == "plain" else f" + {s.conv} conv") + ("" if s.aa == "none" else f" + aa:{s.aa}"),
            "input_size": "x".join(map(str, s.input_size)),
        })
    return rows


@app.command("list")
def list_variants(
    family: Optional[str] = typer.Option(None, "--family", help="Only this family: torchvision, timm or cifar."),
    fmt: Format = format_option(),
) -> None:
    """List every variant: family, block type, blocks per stage, width/groups, stem, shortcut and input size."""
    rows = variant_rows(family)
    from ..render.tables import simple_table

    emit(fmt, {"variants": rows}, rows, COLUMNS, lambda _: simple_table(rows, COLUMNS, title="ResNet variants"))

"""The summary layer table on a colour terminal: stage rows bold, zero-MAC rows dim, a bar per row's
share of MACs; plain text (as before) when piped or with NO_COLOR."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from resnet_cli import summarize
from resnet_cli.render.summary import summary_table
from resnet_cli.render.tables import _bar


@pytest.fixture(scope="module")
def summary():
    return summarize("resnet(depth=10, widths=8-16-32-64)", 32, depth=2, engine="torch")


def render(summary, **console) -> str:
    buf = io.StringIO()
    con = Console(file=buf, width=200, **console)
    for r in summary_table(summary):
        con.print(r, crop=False)
    return buf.getvalue()


def test_terminal_table_marks_stages_zero_mac_rows_and_shares(summary):
    out = render(summary, force_terminal=True, color_system="truecolor")
    lines = out.splitlines()
    header = next(line for line in lines if "Layer" in line and "Type" in line)
    assert "share" in header and "\x1b[1m" in header
    assert any(line.startswith("\x1b[1mlayer1 ") for line in lines)  # a stage row, bold
    assert any(line.startswith("\x1b[2mbn1 ") for line in lines)  # no MACs: dim
    conv1 = next(line for line in lines if line.startswith("conv1 "))  # MACs, not a stage: plain
    share = next(r for r in summary.layers if r.name == "conv1").macs_percent / 100
    assert _bar(share, 10, True) in conv1


def test_piped_and_no_color_tables_stay_plain(summary):
    for console in ({"force_terminal": False}, {"force_terminal": True, "no_color": True}):
        out = render(summary, **console)
        table = out.split("\n\n")[0]
        assert "share" not in table and "\x1b[" not in table and "-----" in table


def test_bar_in_eighths_and_ascii():
    assert _bar(1.0, 10, True) == "█" * 10 and _bar(0.0, 10, True) == ""
    assert _bar(0.25, 10, True) == "██▌" and _bar(0.25, 10, False) == "##"

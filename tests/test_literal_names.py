"""User-given names (file names, factory names, specs) reach the terminal literally: rich markup
(``[red]``) and emoji codes (``:factory:``, ``:smile:``) in them are shown, not rendered, in every
command's table and title (the consoles of render/console.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from resnet_cli.cli import app

FACTORY = """import torch.nn as nn
def factory(width=8, num_classes=10):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))
"""


def cli(*args):
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("own.py", "[red]x.py"):
        (tmp_path / name).write_text(FACTORY)
    return tmp_path


@pytest.mark.parametrize("name", ["own.py:factory", "[red]x.py:factory"])
def test_skips_title_shows_the_name_as_given(files, name):
    result = cli("skips", name, "--size", "32")
    assert result.exit_code == 0, result.stderr
    assert f"{name}: encoder stages at 32x32" in result.stdout
    assert "\U0001f3ed" not in result.stdout + result.stderr  # the :factory: emoji


def test_compare_and_bench_show_markup_in_a_file_name(files):
    result = cli("compare", "resnet20", "[red]x.py:factory", "--size", "32")
    assert result.exit_code == 0, result.stderr
    assert "[red]x.py:factory" in result.stdout
    result = cli("bench", "[red]x.py:factory", "--size", "32", "--batch", "1", "--iters", "1", "--warmup", "1",
                 "--threads", "1", "--peak-tflops", "1")
    assert result.exit_code == 0, result.stderr
    assert "resnet-cli bench: [red]x.py:factory" in result.stdout


def test_inspect_title_shows_emoji_codes_and_markup(files):
    import torch

    torch.save({"conv.weight": torch.zeros(8, 3, 3, 3), "fc.weight": torch.zeros(10, 8)}, files / ":smile:[b]x.pth")
    result = cli("inspect", ":smile:[b]x.pth")
    assert "Checkpoint :smile:[b]x.pth" in result.stdout, (result.exit_code, result.stdout, result.stderr)
    assert "\U0001f604" not in result.stdout  # :smile:

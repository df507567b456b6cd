"""``resnet_cli.compare`` and ``resnet-cli compare``: variants side by side."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import load_reference
from resnet_cli import compare
from resnet_cli.cli import app
from resnet_cli.errors import UsageError
from resnet_cli.render.summary import COMPARE_COLUMNS

TORCHVISION = load_reference("torchvision")["models"]
TIMM = load_reference("timm")["models"]
runner = CliRunner()


def test_compare_at_a_common_size_matches_reference():
    c = compare(["resnet18", "resnet50", "resnet101d", "resnetv2_50"], (224, 224))
    rows = {r.variant: r for r in c.variants}
    assert list(rows) == ["resnet18", "resnet50", "resnet101d", "resnetv2_50"]
    for name, ref in (("resnet18", TORCHVISION["resnet18"]), ("resnet50", TORCHVISION["resnet50"]),
                      ("resnet101d", TIMM["resnet101d"]), ("resnetv2_50", TIMM["resnetv2_50"])):
        assert (rows[name].params, rows[name].macs, rows[name].flops) == (ref["num_params"], ref["macs_224"],
                                                                           2 * ref["macs_224"])
        assert rows[name].input_size == (224, 224)
    assert rows["resnet18"].conv_layers == 1 + 16 + 3  # stem, 8 blocks x 2, 3 projection shortcuts
    assert rows["resnet50"].conv_layers == 1 + 48 + 4
    assert rows["resnet50"].stage_channels == (256, 512, 1024, 2048) and rows["resnet18"].stage_channels[-1] == 512
    assert rows["resnet101d"].default_input_size == (3, 256, 256)
    assert {r.output_stride for r in c.variants} == {32}
    assert "torchvision" in c.note and "FLOPs = 2 x MACs" in c.note


def test_compare_defaults_to_each_variants_own_size():
    c = compare(["resnet20", "resnet101d", "resnet50(output_stride=8)"])
    rows = {r.variant: r for r in c.variants}
    assert rows["resnet20"].input_size == (32, 32) and rows["resnet20"].macs == load_reference("cifar")["models"][
        "resnet20"]["macs_32"]
    assert rows["resnet101d"].input_size == (256, 256) and rows["resnet101d"].macs > TIMM["resnet101d"]["macs_224"]
    assert rows["resnet50(output_stride=8)"].output_stride == 8


def test_compare_rejects_bad_input():
    with pytest.raises(UsageError, match="resnet50"):
        compare(["resnet18", "resnet5"])
    with pytest.raises(UsageError, match="at least one"):
        compare([])
    with pytest.raises(UsageError, match="too small"):
        compare(["resnetblur50"], (16, 16))


def test_cli_compare_formats():
    result = runner.invoke(app, ["compare", "resnet18", "resnet34", "--size", "224", "-f", "json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [v["variant"] for v in data["variants"]] == ["resnet18", "resnet34"]
    assert set(data["variants"][0]) == set(COMPARE_COLUMNS)
    assert data["variants"][1]["macs"] == TORCHVISION["resnet34"]["macs_224"]
    csv_out = runner.invoke(app, ["compare", "resnet18", "resnet34", "-f", "csv"])
    assert csv_out.stdout.splitlines()[0].split(",") == COMPARE_COLUMNS and len(csv_out.stdout.splitlines()) == 3
    md = runner.invoke(app, ["compare", "resnet18", "resnet34", "-f", "markdown"])
    assert md.stdout.startswith("| variant |") and "| resnet34 |" in md.stdout
    table = runner.invoke(app, ["compare", "resnet18", "resnet34"])
    assert "3,663,761,408" in table.stdout and "Conv layers" in table.stdout


@pytest.mark.parametrize("args", [["resnet18", "resnet5"], ["resnet18", "--size", "224x"], []])
def test_cli_compare_bad_input_exits_2(args):
    result = runner.invoke(app, ["compare", *args])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr

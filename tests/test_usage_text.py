"""What the help and the error messages say matches what the commands accept."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from resnet_cli.cli import app

runner = CliRunner()


def test_compare_takes_one_variant_and_its_help_says_so():
    help_text = runner.invoke(app, ["compare", "--help"], env={"COLUMNS": "200"}).stdout
    assert "One or more variants" in help_text and "Two or more" not in help_text
    result = runner.invoke(app, ["compare", "resnet18", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [row["variant"] for row in json.loads(result.stdout)["variants"]] == ["resnet18"]


def test_compare_with_no_variant_is_a_usage_error():
    assert runner.invoke(app, ["compare"]).exit_code == 2

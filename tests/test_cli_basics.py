"""The app shell: --help, --version, list, exit codes, one-line errors, and no torch at start-up."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from conftest import variant_names
from resnet_cli.cli import app

runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("list", "summary", "compare", "bench", "skips", "inspect"):
        assert command in result.stdout


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("resnet-cli ")


def test_list_table_shows_every_variant():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    for name in variant_names():
        assert name in result.stdout


def test_list_json_and_family_filter():
    result = runner.invoke(app, ["list", "--format", "json"])
    data = json.loads(result.stdout)
    names = [v["name"] for v in data["variants"]]
    assert sorted(names) == sorted(variant_names())
    r50 = next(v for v in data["variants"] if v["name"] == "resnext50_32x4d")
    assert (r50["family"], r50["block"], r50["layers"], r50["width_label"]) == ("torchvision", "bottleneck",
                                                                                [3, 4, 6, 3], "32x4d")
    assert (r50["width"], r50["groups"], r50["width_per_group"]) == (64, 32, 4)  # numbers, not text
    assert r50["stage_channels"] == [256, 512, 1024, 2048] and r50["input_size"] == [3, 224, 224]
    cifar = json.loads(runner.invoke(app, ["list", "--family", "cifar", "-f", "json"]).stdout)["variants"]
    assert {v["name"] for v in cifar} == {"resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202",
                                          "wrn16_8", "wrn28_10", "wrn40_4", "cifar_resnet18"}
    assert all(v["input_size"] == [3, 32, 32] for v in cifar)
    wrn = next(v for v in cifar if v["name"] == "wrn28_10")
    assert (wrn["width"], wrn["width_label"], wrn["layers"]) == (160, "160", [4, 4, 4])


def test_list_csv_and_markdown():
    csv_out = runner.invoke(app, ["list", "-f", "csv"]).stdout.splitlines()
    assert csv_out[0].startswith("name,family,block,layers") and len(csv_out) == len(variant_names()) + 1
    md = runner.invoke(app, ["list", "-f", "markdown", "--family", "timm"]).stdout.splitlines()
    assert md[0].startswith("| name |") and md[1].startswith("|---")


@pytest.mark.parametrize("args, fragment", [
    (["list", "--format", "yaml"], "'table', 'json', 'csv', 'markdown'"),
    (["list", "--family", "vgg"], "torchvision, timm, cifar"),
    (["list", "--nope"], "No such option"),
    (["frobnicate"], "No such command"),
])
def test_usage_errors_exit_2_with_one_line(args, fragment):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""


def fresh_python_runs(commands: list[list[str]], then: str) -> str:
    """Run CLI ``commands`` in a new interpreter; return their exit codes and ``then`` evaluated after."""
    code = ("import sys\nfrom resnet_cli.cli import app\nfrom typer.testing import CliRunner\n"
            f"codes = [CliRunner().invoke(app, a).exit_code for a in {commands!r}]\nprint(codes, {then})")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_no_torch_for_help_and_list():
    out = fresh_python_runs([["--help"], ["list"], ["list", "-f", "json"]], "'torch' in sys.modules")
    assert out == "[0, 0, 0] False"


def test_usage_errors_answer_before_torch_is_imported():
    out = fresh_python_runs([["summary", "resnet50", "--size", "abc"], ["compare", "resnet50", "nosuch"],
                             ["compare", "resnet18", "resnet50", "--size", "0"], ["skips", "resnet34", "--depth", "0"],
                             ["skips", "resnet34", "--output-stride", "7"], ["bench", "resnet18", "--batch", "1,,2"]],
                            "'torch' in sys.modules")
    assert out == "[2, 2, 2, 2, 2, 2] False"


def test_analysis_never_pays_for_torch_dynamo():
    # meta-device kernels and dispatch modes make torch import torch._dynamo and sympy (2-3 s); summary
    # (default engine), compare, skips and bench's planning run empty batches on the CPU instead
    out = fresh_python_runs([["summary", "seresnet50", "--batch", "8", "--size", "999"],
                             ["summary", "ecaresnet26t", "--count", "all"], ["compare", "resnet18", "resnetblur50"],
                             ["skips", "resnet34", "--size", "572"],
                             ["bench", "resnet18", "--size", "32", "--batch", "1", "--iters", "1", "--warmup", "0",
                              "--threads", "1", "--peak-tflops", "1"]],
                            "'torch._dynamo' in sys.modules, 'sympy' in sys.modules")
    assert out == "[0, 0, 0, 0, 0] False False"


def test_console_script_module_entry():
    out = subprocess.run([sys.executable, "-m", "resnet_cli", "list", "-f", "json"], capture_output=True, text=True)
    assert out.returncode == 0 and json.loads(out.stdout)["variants"]
    bad = subprocess.run([sys.executable, "-m", "resnet_cli", "list", "-f", "yaml"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_a_narrow_terminal_never_shortens_a_number():
    result = runner.invoke(app, ["compare", "resnet50", "wide_resnet101_2"], env={"COLUMNS": "50"})
    assert result.exit_code == 0
    assert "126,886,696" in result.stdout and "22,753,050,624" in result.stdout and "…" not in result.stdout


def test_unknown_variant_suggests_the_closest_names():
    result = runner.invoke(app, ["summary", "resnet5"])
    assert result.exit_code == 2 and "resnet50" in result.stderr and len(result.stderr.splitlines()) == 1
    assert runner.invoke(app, ["compare", "RESNET18"]).exit_code == 0


def test_ctrl_c_in_any_command_exits_130_with_one_line(monkeypatch):
    import resnet_cli.analysis.summary as summary

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(summary, "summarize", interrupted)
    result = runner.invoke(app, ["summary", "resnet18"])
    assert result.exit_code == 130 and result.stderr.strip() == "resnet-cli: error: interrupted"


def test_ctrl_c_that_an_import_turned_into_another_error_still_exits_130(monkeypatch):
    import resnet_cli.analysis.summary as summary

    def import_interrupted(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise ImportError("cannot import name '_C' from partially initialized module 'torch'")

    monkeypatch.setattr(summary, "summarize", import_interrupted)
    result = runner.invoke(app, ["summary", "resnet18"])
    assert result.exit_code == 130 and result.stderr.strip() == "resnet-cli: error: interrupted"

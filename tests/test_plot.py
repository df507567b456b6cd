"""`resnet-cli plot`: from a real --save sweep (grid and single-run lines) and from a bench JSON, in the
terminal and as SVG (parsed; one series per variant), and the errors for bad or mixed files."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

from resnet_cli.cli import app

TINY = "resnet(depth=10, widths=8-16-32-64)"
FAST = ["--size", "32", "--warmup", "1", "--threads", "1", "--peak-tflops", "1", "--iters", "3"]
SVG = "{http://www.w3.org/2000/svg}"


def cli(*args):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A --save file of a real sweep: a grid of two variants at two batches, then a single run."""
    path = tmp_path_factory.mktemp("plot") / "runs.jsonl"
    result = cli("bench", TINY, "resnet20", "--batch", "1,2", "--same-process", "--rounds", "1", *FAST, "--save", str(path))
    assert result.exit_code == 0, result.stderr
    result = cli("bench", TINY, "--batch", "4", *FAST, "--save", str(path))
    assert result.exit_code == 0, result.stderr
    assert len(path.read_text().splitlines()) == 5
    return path


def test_terminal_plot_of_a_saved_sweep(history):
    result = cli("plot", str(history), "--width", "100")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for text in ("images/s by batch size", "latency, ms", "images/s by GMACs per image", "resnet20", TINY,
                 "resnet20 b2", f"{TINY} b4"):
        assert text in out
    assert "\x1b[" not in out  # not a terminal: no colour codes


def test_svg_plot_has_one_series_per_variant(history, tmp_path):
    out = tmp_path / "plot.svg"
    result = cli("plot", str(history), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    root = ET.parse(out).getroot()
    assert root.tag == f"{SVG}svg"
    ids = [g.get("id") for g in root.iter(f"{SVG}g") if g.get("id")]
    assert sorted(i for i in ids if i.startswith("throughput-")) == ["throughput-0", "throughput-1"]
    assert sorted(i for i in ids if i.startswith("macs-")) == ["macs-0", "macs-1"]
    assert sum(i == "latency-cases" for i in ids) == 5  # one box per case
    texts = " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))
    assert "resnet20" in texts and TINY in texts and "GMACs per image" in texts


def test_plot_reads_a_bench_json_document(tmp_path):
    doc = tmp_path / "grid.json"
    result = cli("bench", TINY, "--dtype", "fp32,bf16", "--same-process", "--rounds", "1", *FAST, "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc.write_text(result.stdout)
    result = cli("plot", str(doc), "--width", "80")
    assert result.exit_code == 0, result.stderr
    assert f"{TINY} fp32" in result.stdout and f"{TINY} bf16" in result.stdout  # the dtype splits the series
    result = cli("bench", TINY, "--batch", "1,2", *FAST, "--format", "json")  # a single run's document
    assert result.exit_code == 0, result.stderr
    doc.write_text(result.stdout)
    result = cli("plot", str(doc), "-o", str(tmp_path / "single.svg"))
    assert result.exit_code == 0 and "2 cases, 1 series" in result.stderr


def test_bad_and_mixed_files_name_the_line(history, tmp_path):
    lines = history.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(lines[0] + "\n{not json\n")
    result = cli("plot", str(bad))
    assert result.exit_code == 2 and "line 2 is not JSON" in result.stderr
    record = json.loads(lines[1])
    del record["result"]
    bad.write_text(lines[0] + "\n" + json.dumps(record) + "\n")
    result = cli("plot", str(bad))
    assert result.exit_code == 2 and "line 2: no 'result'" in result.stderr
    record = json.loads(lines[1])
    record["settings"]["device"], record["environment"]["device_name"] = "cuda:0", "NVIDIA H200"
    bad.write_text(lines[0] + "\n" + json.dumps(record) + "\n")
    result = cli("plot", str(bad))
    assert result.exit_code == 2 and "line 2 was measured on cuda:0 (NVIDIA H200) but line 1 on cpu" in result.stderr
    bad.write_text("")
    assert cli("plot", str(bad)).exit_code == 2
    result = cli("plot", str(tmp_path / "missing.jsonl"))
    assert result.exit_code == 1 and "cannot read" in result.stderr
    result = cli("plot", str(history), "-o", str(tmp_path / "plot.pdf"))
    assert result.exit_code == 2 and ".svg or .png" in result.stderr
    for result in (cli("plot", str(bad)), cli("plot", str(tmp_path / "missing.jsonl"))):
        assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("field,value,message", [
    (("result", "images_per_sec"), float("inf"), "result.images_per_sec is Infinity, not a finite number"),
    (("result", "images_per_sec"), float("nan"), "result.images_per_sec is NaN, not a finite number"),
    (("result", "images_per_sec"), "fast", 'result.images_per_sec is "fast", not a finite number'),
    (("result", "latency_ms", "p95"), float("-inf"), "result.latency_ms.p95 is -Infinity"),
    (("result", "batch_size"), 2.5, "result.batch_size is 2.5, not a whole number"),
    (("flops_per_image",), float("inf"), "flops_per_image is Infinity"),
])
def test_non_finite_or_non_numeric_fields_name_line_and_field(history, tmp_path, field, value, message):
    lines = history.read_text().splitlines()
    record = json.loads(lines[1])
    target = record
    for key in field[:-1]:
        target = target[key]
    target[field[-1]] = value
    bad = tmp_path / "bad.jsonl"
    bad.write_text(lines[0] + "\n" + json.dumps(record) + "\n")  # json.dumps writes Infinity / NaN as Python does
    result = cli("plot", str(bad))
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("resnet-cli: error: ") and "internal error" not in err[0], err
    assert f"{bad} line 2: {message}" in err[0], err


def test_help_and_list_import_no_plotting_library():
    code = ("import sys\nfrom resnet_cli.cli import app\nfrom typer.testing import CliRunner\n"
            "codes = [CliRunner().invoke(app, a).exit_code for a in (['--help'], ['plot', '--help'], ['list'])]\n"
            "print(codes, [m for m in ('torch', 'plotext', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[0, 0, 0] []"


def test_runs_with_other_settings_are_series_of_their_own_not_superseded(tmp_path):
    """A train case with adamw + bf16 autocast and one with sgd (no autocast) at the same variant and
    batch are two cases, as are eager vs --compile and 1 vs 2 threads: none supersedes the other."""
    path = tmp_path / "runs.jsonl"
    for extra in (["--optimizer", "adamw", "--amp", "bf16"], []):
        result = cli("bench", TINY, "--batch", "2", "--mode", "train", *FAST, *extra, "--save", str(path))
        assert result.exit_code == 0, result.stderr
    lines = path.read_text().splitlines()
    settings = [json.loads(line)["settings"] for line in lines]
    assert [(s["optimizer"], s["amp"]) for s in settings] == [("adamw", "bf16"), ("sgd", None)]
    result = cli("plot", str(path), "--width", "100")
    assert result.exit_code == 0, result.stderr
    assert "superseded" not in result.stderr
    legend = result.stdout.strip().splitlines()[-1]
    assert f"● {TINY} adamw bf16-amp   ■ {TINY} sgd" in legend, legend
    # the same sgd case again, compiled, and with 2 threads (settings edited: compiling is slow here)
    record = json.loads(lines[1])
    record["settings"]["compile_mode"] = "default"
    compiled = json.dumps(record)
    record["settings"]["compile_mode"], record["settings"]["threads"] = None, 2
    path.write_text("\n".join([lines[1], compiled, json.dumps(record), lines[1]]) + "\n")
    result = cli("plot", str(path), "-o", str(tmp_path / "p.svg"))
    assert result.exit_code == 0, result.stderr
    assert "1 earlier record(s) of the same case were superseded" in result.stderr  # only the repeated line
    assert "3 cases, 3 series" in result.stderr
    legend = cli("plot", str(path), "--width", "100").stdout.strip().splitlines()[-1]
    assert legend == f"● {TINY} 1 thread   ■ {TINY} compile 1 thread   ▲ {TINY} 2 threads", legend

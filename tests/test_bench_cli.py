"""`resnet-cli bench` end to end on CPU with a tiny network: outputs, --save, and the fault paths
(CUDA requested but absent, an impossible CPU batch, bad --batch, Ctrl-C in a subprocess)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import interrupt_when
from resnet_cli.cli import app

TINY = "resnet(depth=10, widths=8-16-32-64)"
FAST = ["--size", "32", "--iters", "3", "--warmup", "1", "--threads", "1"]
REPO = Path(__file__).resolve().parents[1]
LATENCY_KEYS = {"median", "mean", "std", "p5", "p25", "p75", "p90", "p95", "p99", "iqr", "min", "max"}


def bench(*args):
    return CliRunner().invoke(app, ["bench", *args])


@pytest.fixture(scope="module")
def json_run():
    result = bench(TINY, "--batch", "1,2", *FAST, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_json_has_the_documented_keys(json_run):
    data = json_run
    for key in ("schema_version", "variant", "device", "dtype", "channels_last", "environment", "results",
                "flops_per_image", "flops_convention", "peak", "warnings", "interrupted"):
        assert key in data
    assert data["variant"] == TINY and data["device"] == "cpu" and data["dtype"] == "fp32"
    assert data["channels_last"] is False and data["interrupted"] is False and data["threads"] == 1
    assert data["input_size"] == [3, 32, 32] and data["iters"] == 3
    env = data["environment"]
    assert env["torch_version"] == torch.__version__ and env["threads"] == 1 and env["dtype"] == "float32"
    assert env["memory_format"] == "contiguous" and env["cpu_count"] >= 1
    assert data["peak"]["source"] == "measured" and data["peak"]["tflops"] > 0
    assert [r["batch_size"] for r in data["results"]] == [1, 2]
    for r in data["results"]:
        lat = r["latency_ms"]
        assert set(lat) == LATENCY_KEYS
        assert lat["min"] <= lat["p5"] <= lat["p25"] <= lat["median"] <= lat["p75"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert lat["iqr"] == pytest.approx(lat["p75"] - lat["p25"])
        assert r["iterations"] == 3 and r["complete"] is True and r["first_call_ms"] > 0
        assert r["images_per_sec"] == pytest.approx(r["batch_size"] / (lat["median"] / 1e3), rel=1e-9)
        assert r["flops"] == r["batch_size"] * data["flops_per_image"]
        assert r["tflops"] == pytest.approx(r["flops"] / (lat["median"] / 1e3) / 1e12, rel=1e-9)
        assert r["utilization"] == pytest.approx(r["tflops"] / data["peak"]["tflops"], rel=1e-9)
        assert r["peak_memory_bytes"] is None or r["peak_memory_bytes"] >= 0
        assert r["peak_reserved_bytes"] is None and r["compile_ms"] is None


def test_flops_are_twice_the_conv_linear_macs(json_run):
    from resnet_cli.analysis.flops import conv_linear_macs
    from resnet_cli.models import build_model

    with torch.device("meta"):
        model = build_model(TINY)
    assert json_run["flops_per_image"] == 2 * conv_linear_macs(model, (1, 3, 32, 32))


def test_csv_and_markdown_one_row_per_batch():
    result = bench(TINY, "--batch", "2,1", *FAST, "--peak-tflops", "1", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["batch_size"] for r in rows] == ["2", "1"]
    assert all(float(r["latency_median_ms"]) > 0 and r["iterations"] == "3" for r in rows)
    assert all(float(r["utilization"]) == pytest.approx(float(r["tflops"]), rel=1e-4) for r in rows)  # peak 1
    assert rows[0]["peak_tflops"] == "1.0"
    result = bench(TINY, "--batch", "1", *FAST, "--peak-tflops", "1", "--format", "markdown",
                   "--channels-last", "--dtype", "bf16")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("| variant |") and "| bf16 | True |" in lines[2]


def test_table_has_environment_rows_and_a_bar_chart_for_sweeps():
    result = bench(TINY, "--batch", "1,2", *FAST, "--peak-tflops", "1")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for text in ("resnet-cli bench:", "torch " + torch.__version__, "conv+linear FLOPs", "latency per forward pass (ms)", "mean ± std",
                 "images/s by batch size", "│", "1 TFLOP/s (--peak-tflops)"):
        assert text in out
    assert "warning" not in out  # warnings go to stderr only


def test_save_appends_one_valid_line_per_batch(tmp_path):
    path = tmp_path / "runs.jsonl"
    for _ in range(2):
        result = bench(TINY, "--batch", "1,2", *FAST, "--peak-tflops", "1", "--format", "json", "--save", str(path))
        assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 4 and [x["result"]["batch_size"] for x in lines] == [1, 2, 1, 2]
    for x in lines:
        assert x["variant"] == TINY and x["settings"]["device"] == "cpu" and x["settings"]["iters"] == 3
        assert "timestamp" in x and x["environment"]["threads"] == 1 and set(x["result"]["latency_ms"]) == LATENCY_KEYS


def test_save_to_an_unwritable_path_fails_before_measuring(tmp_path):
    result = bench(TINY, *FAST, "--save", str(tmp_path / "missing-dir" / "x.jsonl"))
    assert result.exit_code == 1 and "--save" in result.stderr and result.stdout == ""


def test_cuda_requested_but_unavailable(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:1"):
        result = bench(TINY, *FAST, "--device", device)
        assert result.exit_code == 1
        line = result.stderr.strip()
        assert len(line.splitlines()) == 1 and "not available" in line and "available devices: cpu" in line
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1,,2"])
def test_bad_batch_is_a_usage_error(value):
    result = bench(TINY, *FAST, f"--batch={value}")
    assert result.exit_code == 2 and "--batch" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, fragment", [
    (["--iters", "3", "--min-time", "1"], "--iters and --min-time"),
    (["--batch", "4", "--max-batch"], "--max-batch"),
    (["--peak-tflops", "0"], "--peak-tflops"),
    (["--device", "tpu"], "not a device"),
    (["--dtype", "fp8"], "fp8"),
    (["--threads", str((os.cpu_count() or 1) + 1)], "--threads"),
])
def test_conflicting_or_bad_options_exit_2(args, fragment):
    result = bench(TINY, "--size", "32", *args)
    assert result.exit_code == 2 and fragment in result.stderr


def test_missing_variant_is_a_usage_error():
    result = bench(*FAST)
    assert result.exit_code == 2 and "VARIANT" in result.stderr


def test_impossible_cpu_batch_is_refused_before_any_allocation():
    result = bench(TINY, "--batch", "100000", "--size", "1024", "--peak-tflops", "1")
    assert result.exit_code == 1
    assert "batch 100000 at 1024x1024 needs about" in result.stderr and "--force" in result.stderr
    assert result.stdout == ""


def test_in_chans_and_num_classes_reach_the_model():
    result = bench(TINY, *FAST, "--batch", "1", "--in-chans", "1", "--num-classes", "0", "--peak-tflops", "1",
                   "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["input_size"] == [1, 32, 32] and "in_chans=1" in data["spec"]


def test_max_batch_on_cpu_uses_the_memory_estimate(monkeypatch):
    from resnet_cli.bench import session
    from resnet_cli.bench.config import BenchConfig
    from resnet_cli.models import get_spec

    room = 80 * 2 ** 20  # pretend 80 MiB are free: the search must stop where the estimate crosses it
    monkeypatch.setattr(session, "available_ram_bytes", lambda: room)
    result = bench(TINY, "--max-batch", "--size", "64", "--iters", "1", "--warmup", "0", "--threads", "1",
                   "--peak-tflops", "1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    batch = json.loads(result.stdout)["results"][0]["batch_size"]
    assert f"the largest batch that fits is {batch}" in result.stderr
    cfg = BenchConfig(TINY, get_spec(TINY), None, True, "cpu", "fp32", False, None, (1,), True, (64, 64), 0, 1,
                      1.0, 1, 1.0, False)
    plan = session.Session(cfg)
    plan._plan(torch.device("cpu"))
    share = room * session.CPU_MAX_BATCH_RAM_FRACTION  # headroom: the batch fills at most this share
    assert plan.estimate(batch).total_bytes <= share < plan.estimate(batch + 1).total_bytes
    assert "headroom" in result.stderr and "measuring it takes about" in result.stderr


def test_ctrl_c_prints_what_was_measured_and_exits_130(tmp_path):
    code, out, err = interrupt_when(["bench", TINY, "--size", "32", "--batch", "1", "--iters", "1000000",
                                     "--warmup", "1", "--threads", "1", "--peak-tflops", "1", "--format", "json",
                                     "--save", str(tmp_path / "runs.jsonl")], "timing")  # once the timed loop runs
    assert code == 130, err
    data = json.loads(out)
    assert data["interrupted"] is True
    (result,) = data["results"]
    assert result["complete"] is False and result["iterations"] >= 1 and result["latency_ms"]["median"] > 0
    assert "interrupted" in err and "Traceback" not in err
    saved = tmp_path / "runs.jsonl"
    assert not saved.exists() or saved.read_text() == ""  # an incomplete batch is never saved


def test_weights_alone_identify_and_load_the_network(tmp_path):
    from resnet_cli.models import build_model

    path = tmp_path / "tiny.pth"
    torch.save(build_model(TINY).state_dict(), path)
    result = bench("--weights", str(path), *FAST, "--batch", "1", "--peak-tflops", "1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert "widths=8-16-32-64" in data["spec"] and data["results"][0]["iterations"] == 3


def test_max_batch_notes_say_the_bound_and_a_training_step(monkeypatch):
    from resnet_cli.bench import session

    monkeypatch.setattr(session, "MAX_BATCH_CEILING", 8)  # the search's bound reached: the note says so
    result = bench(TINY, "--max-batch", "--size", "32", "--iters", "1", "--warmup", "0", "--threads", "1",
                   "--peak-tflops", "1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert "the largest batch that fits is 8 (the search's bound)" in result.stderr
    monkeypatch.setattr(session, "available_ram_bytes", lambda: 60 * 2 ** 20)
    result = bench(TINY, "--max-batch", "--mode", "train", "--size", "32", "--iters", "1", "--warmup", "0",
                   "--threads", "1", "--peak-tflops", "1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    batch = json.loads(result.stdout)["results"][0]["batch_size"]
    assert "sized to 50% of the" in result.stderr and f"a training step of batch {batch} needs about" in result.stderr
    assert f"one training step of batch {batch} takes about" in result.stderr and "one forward pass" not in result.stderr

"""Findings of a new-user test: value-dependent forwards, --depth 0 with --pass train, checkpoint formats
detected by content, the dtype of the eval memory estimate, --channels-last alone, and error wording."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from resnet_cli.cli import app

runner = CliRunner()

VALUE_DEP = '''
import torch.nn as nn


class V(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        y = self.fc(self.pool(self.conv(x)).flatten(1))
        if y.sum() > 0:  # reads a value: meta and fake tensors have none
            return y
        return -y


def make_value_dep():
    return V()
'''


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, code: int, *fragments: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    lines = [ln for ln in lines if not ln.startswith("note: ")]
    assert len(lines) == 1 and lines[0].startswith("resnet-cli: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def value_dep(tmp_path) -> str:
    path = tmp_path / "mynet.py"
    path.write_text(VALUE_DEP)
    return f"{path}:make_value_dep"


# ------------------------------------------------------------------ G: a forward that reads a value
def test_value_dependent_forward_is_a_runtime_failure_not_a_size_problem(tmp_path):
    net = value_dep(tmp_path)
    for extra in (("--pass", "train"), ("--flops-engine", "torch")):
        line = one_line_error(run("summary", net, "--size", "16", *extra), 1, "reads a tensor's value",
                              "meta/fake tensors", "no values")
        assert "nearest size" not in line
    line = one_line_error(run("summary", net, "--size", "16", "--flops-engine", "torch"), 1)
    assert "--flops-engine fvcore" in line
    assert run("summary", net, "--size", "16").exit_code == 0  # fvcore's empty CPU batch has values


def test_bench_train_of_a_value_dependent_forward_measures_the_step_without_the_plan(tmp_path):
    result = run("bench", value_dep(tmp_path), "--size", "16", "--mode", "train", "--iters", "2", "--batch", "2",
                 "-f", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    r = doc["results"][0]
    assert r["mode"] == "train" and r["iterations"] == 2 and r["images_per_sec"] > 0
    assert r["plan_peak_bytes"] is None and r["plan_error_percent"] is None and r["step_peak_bytes"] > 0
    assert r["flops"] is None and r["tflops"] is None and r["utilization"] is None
    assert any("cannot replay" in w and "measured without it" in w for w in doc["warnings"])
    line = one_line_error(run("bench", value_dep(tmp_path), "--size", "16", "--mode", "train", "--max-batch"), 1,
                          "cannot replay", "--batch N")
    assert "--max-batch" in line


# ------------------------------------------------------------------ H: --depth 0 prints the totals only
def test_depth_0_with_pass_train_prints_no_table():
    result = run("summary", "resnet20", "--pass", "train", "--gpu-memory", "1GiB", "--depth", "0")
    assert result.exit_code == 0, result.stderr
    assert "rows to depth" not in result.stdout and "own ops" not in result.stdout and "Layer" not in result.stdout
    assert result.stdout.splitlines()[1].startswith("Params")
    doc = json.loads(run("summary", "resnet20", "--pass", "train", "--depth", "0", "-f", "json").stdout)
    assert doc["layers"] == []


# ------------------------------------------------------------------ J: a checkpoint's format by its content
def test_checkpoint_format_is_told_by_content_and_a_wrong_extension_is_noted(tmp_path):
    import torch
    from safetensors.torch import save_file

    state = {"fc.weight": torch.zeros(10, 64), "fc.bias": torch.zeros(10)}
    zipped, legacy, safe = tmp_path / "zip.safetensors", tmp_path / "legacy.safetensors", tmp_path / "safe.pth"
    torch.save(state, zipped)
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    save_file(state, str(safe))
    for path, fmt in ((zipped, "torch"), (legacy, "pickle"), (safe, "safetensors")):
        result = run("inspect", path, "-f", "json")
        assert result.exit_code == 0, result.stderr
        doc = json.loads(result.stdout)
        assert doc["format"] == fmt and doc["num_tensors"] == 2
        assert "extension" in doc["notes"][0] and "extension" in result.stderr
    crafted = tmp_path / "crafted.safetensors"  # the safety checks still run: a header claiming 2^60 bytes
    crafted.write_bytes((2 ** 60).to_bytes(8, "little") + b'{"a": 1}')
    one_line_error(run("inspect", crafted), 1, "refused", "header claims")


# ------------------------------------------------------------------ M: the Memory estimate in the chosen dtype
def test_memory_estimate_uses_the_cast_dtype_and_agrees_with_the_plan():
    fp32 = json.loads(run("summary", "resnet20", "--depth", "0", "-f", "json").stdout)["memory"]
    result = run("summary", "resnet20", "--depth", "0", "--dtype", "bf16", "-f", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    bf16, plan = doc["memory"], doc["memory_plan"]
    assert bf16["dtype"] == "bfloat16" and fp32["dtype"] == "float32"
    assert 2 * bf16["param_bytes"] == fp32["param_bytes"] and bf16["param_bytes"] == plan["weights_bytes"]
    assert bf16["buffer_bytes"] == plan["buffers_bytes"]  # BatchNorm's int64 counters stay 8 bytes
    assert bf16["input_bytes"] == plan["input_bytes"] == fp32["input_bytes"] // 2
    assert 2 * bf16["activation_bytes"] == fp32["activation_bytes"]
    text = run("summary", "resnet20", "--depth", "0", "--dtype", "fp16").stdout
    assert "float16, MACs" in text.splitlines()[0] and "Memory    " in text and "float16: input 6.00 KiB" in text
    amp = json.loads(run("summary", "resnet20", "--depth", "0", "--dtype", "amp", "-f", "json").stdout)["memory"]
    assert amp == fp32  # autocast keeps fp32 weights


# ------------------------------------------------------------------ N: --channels-last alone plans, as --dtype does
def test_channels_last_alone_adds_the_eval_memory_plan():
    plain = json.loads(run("summary", "resnet20", "--depth", "0", "-f", "json").stdout)
    assert plain["memory_plan"] is None
    result = run("summary", "resnet20", "--depth", "0", "--channels-last", "-f", "json")
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)["memory_plan"]
    assert plan["mode"] == "eval" and plan["channels_last"] is True and plan["dtype"] == "fp32"
    assert "channels-last" in run("summary", "resnet20", "--depth", "0", "--channels-last").stdout


# ------------------------------------------------------------------ cosmetic findings
def test_assumed_input_note_names_the_size_used(tmp_path):
    path = tmp_path / "tiny.py"
    path.write_text("import torch.nn as nn\n\ndef make():\n"
                    "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())\n")
    result = run("summary", f"{path}:make", "--size", "16", "--depth", "0")
    assert result.exit_code == 0, result.stderr
    assert "1x3x16x16" in result.stdout.splitlines()[0]
    assert "input 3 x 16 x 16 (C x H x W)" in result.stderr and "224" not in result.stderr
    assert "3 x 224 x 224" in run("summary", f"{path}:make", "--depth", "0").stderr


def test_gpu_memory_wording_and_bound():
    for text in ("-1GiB", "0GiB", "-0.5"):
        one_line_error(run("summary", "resnet20", "--pass", "train", "--gpu-memory", text), 2, "must be positive")
    one_line_error(run("summary", "resnet20", "--pass", "train", "--gpu-memory", "9999999999999999999999999TiB"), 2,
                   "out of range", "1024 TiB")
    from resnet_cli.bench.memory import parse_memory

    assert parse_memory("1024TiB") == 2 ** 50  # the bound itself is accepted


def test_unknown_variant_is_echoed_as_typed_and_a_flag_value_is_explained():
    one_line_error(run("summary", "resnet5O"), 2, "'resnet5O'", "resnet50")
    one_line_error(run("summary", "--channels-last", "maybe"), 2, "'maybe'", "--channels-last take no value")


def test_amp_fp16_on_a_cpu_without_fp16_warns_as_dtype_does(monkeypatch):
    from resnet_cli.bench import device

    monkeypatch.setattr(device, "_cpu_flags", lambda: {"avx2"})
    assert "--amp fp16" in device.cpu_dtype_warning("fp16", option="--amp")
    result = run("bench", "resnet20", "--size", "16", "--batch", "2", "--iters", "1", "--mode", "train",
                 "--amp", "fp16", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    assert "--amp fp16 on this CPU" in result.stderr

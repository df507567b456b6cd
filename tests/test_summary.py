"""``resnet_cli.summarize`` and ``resnet-cli summary``: totals and per-row shapes against the reference
files, rows adding up to the totals, both MAC engines agreeing, the counting conventions, memory,
the output formats and bad input."""

from __future__ import annotations

import functools
import json
import math

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from conftest import load_reference
from resnet_cli import summarize
from resnet_cli.analysis.flops import count_macs, describe
from resnet_cli.analysis.summary import _summarize_model
from resnet_cli.analysis.trace import trace
from resnet_cli.cli import app
from resnet_cli.errors import RuntimeFailure, UsageError
from resnet_cli.models import build_model
from resnet_cli.render.summary import LAYER_COLUMNS, TRAIN_COLUMNS

TORCHVISION = load_reference("torchvision")
TIMM = load_reference("timm")["models"]
CIFAR = load_reference("cifar")["models"]
DILATED = TORCHVISION["dilated"]["resnet50:dilation=FTT"]
TORCHVISION = TORCHVISION["models"]

# (variant, input side, reference entry, MACs key)
REFERENCE = ([(n, 224, r, "macs_224") for n, r in TORCHVISION.items()]
             + [(n, 224, r, "macs_224") for n, r in TIMM.items()]
             + [(n, 32, r, "macs_32") for n, r in CIFAR.items()]
             + [("resnet50(dilate=0-1-1)", 224, DILATED, "macs_224")])
SUMMARY_KEYS = {"schema_version", "variant", "spec", "input_size", "total_params", "trainable_params",
                "non_trainable_params", "macs", "flops", "count", "engine", "counted_ops", "zero_ops",
                "data_movement_ops", "macs_by_op", "note", "output_stride", "memory", "layers",
                "mode", "train", "memory_plan", "notes"}  # the last three: --pass train / the memory plan (null here)
LAYER_KEYS = set(LAYER_COLUMNS) | set(TRAIN_COLUMNS)
runner = CliRunner()


@functools.lru_cache(maxsize=None)
def cached(name: str, side: int, count: str = "conv-linear", engine: str = "fvcore", batch: int = 1):
    return summarize(name, side, batch=batch, count=count, engine=engine)


def leaves(summary):
    return [r for r in summary.layers if r.is_leaf]


@pytest.mark.parametrize("name,side,ref,key", REFERENCE, ids=[r[0] for r in REFERENCE])
def test_totals_match_reference_and_leaves_add_up(name, side, ref, key):
    s = cached(name, side)
    assert s.input_size == (1, 3, side, side)
    assert s.total_params == ref["num_params"]
    assert s.macs == ref[key]
    assert s.flops == 2 * ref[key]
    assert sum(r.params for r in leaves(s)) == s.total_params
    assert sum(r.macs for r in leaves(s)) == s.macs
    assert s.counted_ops in (("conv", "linear"), ("conv",))  # a pre-activation head is a 1x1 conv


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_row_output_shapes_match_torchvision(name):
    rows = {r.name: r for r in cached(name, 224).layers}
    expected = TORCHVISION[name]["module_output_shapes_224"]
    assert set(rows) == set(expected)
    assert {n: list(rows[n].output_shape) for n in expected} == expected


def test_dilated_resnet50_keeps_stride_8():
    rows = {r.name: r for r in cached("resnet50(dilate=0-1-1)", 224).layers}
    for stage, shape in DILATED["stage_shapes"]["224x224"].items():
        if stage.startswith("layer"):
            assert list(rows[stage].output_shape) == shape
    assert rows["layer4"].stride == 8


def test_receptive_field_and_stride_per_row_match_trace():
    s = cached("resnet50", 224)
    with torch.device("meta"):
        traced = trace(build_model("resnet50"), (1, 3, 224, 224))
    for r in s.layers:
        assert (r.receptive_field, r.stride, r.calls) == (traced[r.name].receptive_field, traced[r.name].stride,
                                                          traced[r.name].calls), r.name
    rows = {r.name: r for r in s.layers}
    assert (rows["conv1"].receptive_field, rows["conv1"].stride) == (7, 2)
    assert (rows["maxpool"].receptive_field, rows["maxpool"].stride) == (11, 4)
    assert (rows["conv1"].kernel_size, rows["conv1"].layer_stride) == ((7, 7), (2, 2))
    assert rows["avgpool"].receptive_field is None and rows["layer4"].stride == 32


# between them: torchvision naming (a shared ReLU), SE (conv bias, sigmoid, mul), ECA (conv1d), blur pool
# (fixed depthwise conv, reflect pad), GroupNorm, pre-activation (conv head, avg-pool shortcut), option A
ENGINE_CASES = [(n, "all") for n in ("resnet18", "seresnet18", "ecaresnet26t", "resnetblur50", "resnet50_gn",
                                     "resnetv2_50d", "resnet20")] + [("resnet18", "conv-linear"),
                                                                      ("seresnet18", "conv-linear")]


@pytest.mark.parametrize("name,count", ENGINE_CASES)
def test_fvcore_and_torch_engines_agree_per_module(name, count):
    with torch.device("meta"):
        model = build_model(name)
    shape = (2, model.spec.in_chans, 32, 32)
    fv, th = count_macs(model, shape, count, "fvcore"), count_macs(model, shape, count, "torch")
    assert (fv.engine, th.engine) == ("fvcore", "torch")
    assert fv.macs == th.macs > 0
    assert {k: v for k, v in fv.by_module.items() if v} == {k: v for k, v in th.by_module.items() if v}
    assert describe(count, fv.seen)[:2] == describe(count, th.seen)[:2]


def test_fvcore_summary_matches_reference_at_224():
    s = cached("resnet18", 224, engine="fvcore")
    assert s.engine == "fvcore"
    assert s.macs == TORCHVISION["resnet18"]["macs_224"]
    assert [(r.name, r.macs) for r in s.layers] == [(r.name, r.macs) for r in cached("resnet18", 224).layers]


def test_fvcore_counts_any_size_and_batch_from_an_empty_batch():
    # a real pass here would need ~900 GiB; fvcore traces N = 0 and reads the batch back in
    s = summarize("resnet152", 2048, batch=64, engine="fvcore", depth=1)
    assert s.engine == "fvcore" and s.input_size == (64, 3, 2048, 2048)
    per_image = summarize("resnet152", 2048, depth=1).macs
    assert s.macs == 64 * per_image == sum(r.macs for r in leaves(s))
    assert per_image > TORCHVISION["resnet152"]["macs_224"] * 83


def test_default_count_names_every_zero_op():
    s = cached("seresnet50", 224)
    assert s.counted_ops == ("conv", "linear")
    assert {"bias", "batch_norm", "relu", "sigmoid", "max_pool", "mean", "add", "mul"} <= set(s.zero_ops)
    assert "torchvision" in s.note and "0 MACs: " in s.note and "FLOPs = 2 x MACs" in s.note
    assert set(s.macs_by_op) == {"conv", "linear"}


def test_count_all_uses_the_documented_per_element_costs():
    s = cached("resnet18", 224, "all")
    plain = cached("resnet18", 224)
    rows = {r.name: r for r in s.layers}
    numel = {n: math.prod(r.output_shape) for n, r in rows.items() if r.output_shape}
    by_op = s.macs_by_op
    assert by_op["batch_norm"] == sum(2 * numel[n] for n, r in rows.items() if r.type == "BatchNorm2d")
    assert by_op["add"] == sum(numel[n] for n, r in rows.items() if r.type in ("BasicBlock", "Bottleneck"))
    # a BasicBlock's shared ReLU runs twice on maps of the block's output shape; the stem ReLU once
    assert by_op["relu"] == numel["relu"] + sum(2 * numel[n] for n, r in rows.items() if r.type in ("BasicBlock", "Bottleneck"))
    assert by_op["max_pool"] == numel["relu"]  # 1 per input element
    assert by_op["mean"] == numel["layer4"]
    assert by_op["linear"] == plain.macs_by_op["linear"] + 1000  # + 1 bias add per output element
    assert by_op["conv"] == plain.macs_by_op["conv"]  # no conv has a bias
    assert s.macs == sum(by_op.values()) == sum(r.macs for r in leaves(s))
    assert s.zero_ops == () and "ptflops" in s.note


def test_count_all_gives_container_ops_their_own_rows():
    s = cached("seresnet50", 224, "all")
    rows = {r.name: r for r in s.layers}
    assert rows["layer1.0.(ops)"].type == "add"
    assert rows["layer1.0.se.(ops)"].type == "mean+mul"  # the sigmoid is timm's `gate` module, a row of its own
    assert rows["layer1.0.se.gate"].macs == math.prod(rows["layer1.0.se.gate"].output_shape)
    assert rows["layer1.0.(ops)"].macs == math.prod(rows["layer1.0"].output_shape)
    assert sum(r.macs for r in leaves(s)) == s.macs


def test_depth_folds_rows_into_their_parent():
    full, folded = cached("resnet50", 224), summarize("resnet50", 224, depth=1, engine="torch")
    assert {r.depth for r in folded.layers} == {1}
    assert all(r.is_leaf for r in folded.layers)
    full_rows = {r.name: r for r in full.layers}
    for r in folded.layers:
        assert (r.params, r.macs) == (full_rows[r.name].params, full_rows[r.name].macs)
    assert sum(r.macs for r in folded.layers) == folded.macs
    assert summarize("resnet18", 64, depth=0, engine="torch").layers == ()


class _Tied(nn.Module):
    """One conv module called twice, and a second conv whose weight is the first one's."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.shared = nn.Conv2d(8, 8, 3, padding=1)
        self.tied = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.tied.weight = self.shared.weight

    def forward(self, x):
        return self.shared(self.tied(self.shared(self.stem(x))))


def test_shared_modules_and_tied_weights_count_once():
    with torch.device("meta"):
        model = _Tied()
    s = _summarize_model(model, "toy", "toy", (1, 3, 16, 16), None, "conv-linear", "torch", 1)
    rows = {r.name: r for r in s.layers}
    assert s.total_params == 3 * 8 * 9 + 8 + 8 * 8 * 9 + 8
    assert sum(r.params for r in s.layers) == s.total_params
    assert rows["tied"].params == 0 and rows["shared"].calls == 2
    per_call = 16 * 16 * 8 * 8 * 9
    assert rows["shared"].macs == 2 * per_call and rows["tied"].macs == per_call
    assert s.macs == 16 * 16 * 8 * 3 * 9 + 3 * per_call


def test_memory_totals():
    one, two = cached("resnet50", 64), cached("resnet50", 64, batch=2)
    m = one.memory
    assert (m.dtype, m.input_bytes, m.param_bytes) == ("float32", 3 * 64 * 64 * 4, one.total_params * 4)
    # BatchNorm buffers: running mean and variance (float32) and num_batches_tracked (int64)
    assert m.buffer_bytes == sum(2 * 4 * r.output_shape[1] + 8 for r in one.layers if r.type == "BatchNorm2d")
    assert m.training_bytes == m.input_bytes + 4 * m.param_bytes + m.buffer_bytes + m.activation_bytes
    assert two.memory.activation_bytes == 2 * m.activation_bytes > 0
    assert two.macs == 2 * one.macs and two.layers[0].output_shape[0] == 2
    # in-place ReLU results share the BatchNorm's output: the stem stores conv1, bn1 and maxpool only
    stem = sum(math.prod(r.output_shape) for r in one.layers if r.name in ("conv1", "bn1", "maxpool"))
    assert m.activation_bytes > 4 * stem


def test_api_accepts_a_spec_and_size_forms():
    from resnet_cli.models import get_spec

    spec = get_spec("resnet18")
    a = summarize(spec, (64, 48), engine="torch", depth=1)
    b = summarize("resnet18", "64x48", engine="torch", depth=1)
    assert a.variant == "custom" and b.variant == "resnet18"
    assert a.input_size == b.input_size == (1, 3, 64, 48) and a.macs == b.macs and a.layers == b.layers
    assert summarize("resnet18", 64, engine="torch", label="mine", depth=0).variant == "mine"


@pytest.mark.parametrize("kwargs,words", [
    (dict(batch=0), "batch"), (dict(batch=-1), "batch"), (dict(input_size="224x"), "224x"),
    (dict(input_size=(0, 5)), "size"), (dict(depth=-1), "depth"), (dict(count="some"), "count"),
    (dict(engine="ptflops"), "engine")])
def test_api_rejects_bad_arguments(kwargs, words):
    with pytest.raises(UsageError, match=words):
        summarize("resnet18", **{"engine": "torch", **kwargs})


def test_too_small_input_names_the_layer_and_a_size_that_works():
    with pytest.raises(UsageError, match=r"16x16 is too small.*nearest size that works is \d+x\d+"):
        summarize("resnetblur50", 16, engine="torch")


# ---------------------------------------------------------------------------------------------- CLI
def invoke(*args):
    return runner.invoke(app, list(args))


def test_cli_json_has_the_documented_keys():
    result = invoke("summary", "resnet18", "--size", "64", "--format", "json", "--flops-engine", "torch")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == SUMMARY_KEYS
    assert data["input_size"] == [1, 3, 64, 64] and data["flops"] == 2 * data["macs"]
    assert data["layers"] and all(set(layer) == LAYER_KEYS for layer in data["layers"])
    assert sum(layer["macs"] for layer in data["layers"] if layer["is_leaf"]) == data["macs"]
    assert set(data["memory"]) == {"dtype", "input_bytes", "param_bytes", "buffer_bytes", "activation_bytes",
                                   "training_bytes"}


def test_cli_table_shows_labelled_macs_flops_and_the_note():
    result = invoke("summary", "resnet18", "--depth", "1")  # the default engine: fvcore, a real pass
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "1,814,073,344" in out and "3,628,146,688" in out and "FLOPs = 2 x MACs" in out
    assert "MACs by fvcore" in out and "torchvision's convention" in out and "layer4" in out
    assert "layer4.0" not in out and result.stderr == ""


def test_cli_csv_and_markdown_rows_and_totals_on_stderr():
    csv_out = invoke("summary", "resnet18", "--size", "64", "-f", "csv", "--flops-engine", "torch", "--depth", "2")
    assert csv_out.exit_code == 0
    lines = csv_out.stdout.strip().splitlines()
    assert lines[0].split(",") == LAYER_COLUMNS and len(lines) == 1 + 4 + 4 * 3 + 2
    assert "MACs" in csv_out.stderr and "FLOPs" in csv_out.stderr
    md = invoke("summary", "resnet18", "--size", "64", "-f", "markdown", "--flops-engine", "torch", "--depth", "1")
    assert md.exit_code == 0
    assert all(line.startswith("|") for line in md.stdout.strip().splitlines())
    assert md.stdout.splitlines()[1].startswith("|---|---|---:")


def test_cli_huge_input_keeps_the_engine_and_stderr_quiet():
    result = invoke("summary", "resnet18", "--size", "3000", "--depth", "0", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["engine"] == "fvcore" and result.stderr == ""


@pytest.mark.parametrize("args", [("--batch", "0"), ("--batch", "-1"), ("--batch", "abc"), ("--size", "224x"),
                                  ("--size", "0"), ("--size", "-1"), ("--size", "abc"), ("--size", "3x224x224"),
                                  ("--depth", "-1"), ("--count", "most"), ("--flops-engine", "ptflops")])
def test_cli_bad_options_exit_2_with_one_line(args):
    result = invoke("summary", "resnet18", *args)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_cli_unknown_variant_suggests_names():
    result = invoke("summary", "resnet5")
    assert result.exit_code == 2 and "resnet50" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_missing_variant_and_too_small_size_exit_2():
    result = invoke("summary")
    assert result.exit_code == 2 and "VARIANT" in result.stderr
    result = invoke("summary", "resnetblur50", "--size", "16", "--flops-engine", "torch")
    assert result.exit_code == 2 and "too small" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_in_chans_and_num_classes_reach_the_network():
    result = invoke("summary", "resnet18", "--size", "64", "--in-chans", "1", "--num-classes", "10", "-f", "json",
                    "--flops-engine", "torch")
    data = json.loads(result.stdout)
    assert data["input_size"] == [1, 1, 64, 64] and data["layers"][-1]["output_shape"] == [1, 10]


def test_fvcore_refuses_a_batch_it_cannot_read_back():
    class BatchSecond(nn.Module):  # (N, C, H, W) -> (C, N, H, W): the batch leaves dimension 0
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 5)

        def forward(self, x):
            return self.fc(x.transpose(0, 1))

    with pytest.raises(RuntimeFailure, match="--flops-engine torch"):
        count_macs(BatchSecond(), (2, 3, 8, 8), engine="fvcore")
    assert count_macs(BatchSecond(), (2, 3, 8, 8), engine="torch").macs == 3 * 2 * 8 * 8 * 5

"""Bring your own network: ``file.py:factory``, ``package.module:factory``, ``timm:NAME``, ``torchvision:NAME``
and ``nn.Module`` in every command and in the Python API; counts of hand-written nets worked out by hand,
the degraded receptive field and skip stages, and every error of loading and running a user's module."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from typer.testing import CliRunner

import nets_for_tests as nets
from resnet_cli import compare, encoder_stages, summarize
from resnet_cli.bench import bench
from resnet_cli.cli import app
from resnet_cli.errors import UsageError
from resnet_cli.models import resolve
from resnet_cli.models.external import ModuleSource, parse_kwargs

NETS = str(Path(__file__).resolve().parent / "nets_for_tests.py")
TINY = f"{NETS}:make_tiny_resnet"
runner = CliRunner()


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result


def one_line_error(result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("resnet-cli: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ------------------------------------------------------------------ counts known by hand
def tiny_params(width: int = 8, classes: int = 10) -> int:
    w, w2 = width, 2 * width
    stem = 3 * w * 9 + 2 * w
    layer1 = 2 * (w * w * 9 + 2 * w)
    layer2 = w * w2 * 9 + 2 * w2 + w2 * w2 * 9 + 2 * w2 + w * w2 + 2 * w2
    return stem + layer1 + layer2 + w2 * classes + classes


def tiny_macs(width: int = 8, classes: int = 10, side: int = 32) -> int:
    """conv: C_out * H_out * W_out * C_in * k * k; linear: in * out (torchvision's convention)."""
    w, w2, s1, s2 = width, 2 * width, (side + 1) // 2, (side + 3) // 4
    return (w * s1 * s1 * 3 * 9 + 2 * w * s1 * s1 * w * 9 + w2 * s2 * s2 * w * 9 + w2 * s2 * s2 * w2 * 9
            + w2 * s2 * s2 * w + w2 * classes)


def test_tiny_resnet_from_a_file_counts_by_hand():
    s = summarize(TINY, (3, 32, 32))
    assert (s.total_params, s.macs, s.flops) == (tiny_params(), tiny_macs(), 2 * tiny_macs())
    assert s.input_size == (1, 3, 32, 32) and s.output_stride == 4 and s.notes == ()
    rows = {r.name: r for r in s.layers}
    # RF (Araujo et al. 2019): 3 after the 3x3/2 stem, +2*2 per 3x3 conv at stride 2, +2*4 at stride 4
    assert [(rows[n].receptive_field, rows[n].stride) for n in
            ("conv1", "layer1.conv1", "layer1", "layer2.conv1", "layer2.down", "layer2")] == \
        [(3, 2), (7, 2), (11, 2), (15, 4), (11, 4), (23, 4)]
    assert rows["relu"].calls == 5 and rows["relu"].params == 0  # one ReLU shared by the stem and both blocks
    assert rows["layer2"].output_shape == (1, 16, 8, 8)
    assert [r.name for r in s.layers][:4] == ["conv1", "bn1", "relu", "layer1"]  # call order despite the sharing
    assert s.spec == f"{TINY} --input-size 3,32,32"


def test_module_object_and_package_module_give_the_same_numbers():
    by_file = summarize(TINY, (3, 32, 32))
    by_object = summarize(nets.make_tiny_resnet(), input_size=(3, 32, 32))
    by_module = summarize("nets_for_tests:make_tiny_resnet", (3, 32, 32))
    for s in (by_object, by_module):
        assert (s.total_params, s.macs, s.output_stride) == (by_file.total_params, by_file.macs, 4)
        assert [(r.name, r.params, r.macs, r.receptive_field) for r in s.layers] == \
            [(r.name, r.params, r.macs, r.receptive_field) for r in by_file.layers]
    assert by_object.variant == "TinyResNet" and by_module.variant == "nets_for_tests:make_tiny_resnet"


def test_tied_weights_count_once_and_a_module_called_twice_shows_its_calls():
    s = summarize(nets.make_tied(), input_size=(4, 8, 8))
    assert s.total_params == 4 * 4 * 9 + 4 * 4  # a and b share one 3x3 weight; c once
    assert s.macs == 2 * (4 * 64 * 4 * 9) + 2 * (4 * 64 * 4)  # c runs twice, both calls counted
    rows = {r.name: r for r in s.layers}
    assert rows["c"].calls == 2 and rows["b"].params == 0 and rows["a"].params == 144
    assert rows["c"].receptive_field == 5  # two 3x3 convs, then 1x1s


def test_transformer_block_counts_by_hand_and_its_rf_degrades():
    s = summarize(f"{NETS}:make_tiny_vit", (3, 16, 16))
    tokens, dim = 16, 16  # 4x4 patches of a 16x16 input
    macs = (dim * tokens * 3 * 16            # patch conv 4x4/4
            + tokens * dim * 3 * dim          # qkv
            + 2 * tokens * tokens * dim       # q k^T and weights v
            + tokens * dim * dim              # proj
            + 2 * tokens * dim * 2 * dim      # MLP
            + dim * 10)                       # head
    params = (3 * 16 * dim + dim) + 2 * 2 * dim + (dim * 3 * dim + 3 * dim) + (dim * dim + dim) \
        + (dim * 2 * dim + 2 * dim) + (2 * dim * dim + dim) + (dim * 10 + 10)
    assert (s.total_params, s.macs) == (params, macs)
    rows = {r.name: r for r in s.layers}
    # per-token layers keep the patch's RF (views and transposes move elements only); attention mixes them
    assert [(rows[n].receptive_field, rows[n].stride) for n in ("patch", "norm1", "attn.qkv")] == [(4, 4)] * 3
    assert rows["attn.proj"].receptive_field is None and rows["mlp"].receptive_field is None
    assert rows["attn.proj"].receptive_field_note == "after aten::matmul in attn"
    assert any("n/a after aten::matmul in attn" in n for n in s.notes)


def test_lstm_counts_by_hand_rf_na_and_the_engine_fallback():
    s = summarize(f"{NETS}:make_conv_lstm", (1, 8, 16))
    steps, hidden, features = 16, 8, 32
    lstm_params = 4 * (hidden * (features + hidden) + 2 * hidden)
    assert s.total_params == (4 * 9 + 4) + lstm_params + (8 * 5 + 5)
    # the LSTM's gate matmuls, 4 gates x (input + hidden) x hidden per step, count as linear MACs
    assert s.macs == 4 * 8 * 16 * 9 + steps * 4 * hidden * (features + hidden) + 8 * 5
    assert s.engine == "torch" and any("fvcore's empty-batch trace" in n for n in s.notes)
    rows = {r.name: r for r in s.layers}
    assert rows["act"].receptive_field == 3 and rows["rnn.lstm"].receptive_field is None
    assert rows["rnn.lstm"].receptive_field_note == "after aten::lstm in rnn.lstm"
    assert rows["rnn.lstm"].output_shape == (1, 16, 8)  # the output, not the last cell state


def test_summary_cli_with_file_kwargs_and_input_size():
    result = run("summary", TINY, "--kwargs", "num_classes=3, width=4", "--input-size", "3,24,24", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["total_params"] == tiny_params(4, 3) and data["macs"] == tiny_macs(4, 3, 24)
    assert data["input_size"] == [1, 3, 24, 24] and data["notes"] == []
    assert data["spec"].endswith("make_tiny_resnet --kwargs num_classes=3,width=4 --input-size 3,24,24")
    table = run("summary", f"{NETS}:make_conv_lstm", "--input-size", "1,8,16")
    assert table.exit_code == 0 and "n/a" in table.stdout
    assert "note: receptive field and stride: n/a after aten::lstm in rnn.lstm" in table.stderr


def test_input_size_from_the_first_conv_is_said_and_size_still_applies():
    result = run("summary", TINY, "--size", "40", "-f", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["input_size"] == [1, 3, 40, 40]
    assert "first conv's in_channels" in result.stderr and "--input-size C,H,W" in result.stderr


def test_skips_infers_stages_by_stride_and_says_which():
    e = encoder_stages(nets.make_tiny_resnet(), (3, 33, 33))
    assert [(s.name, s.module, s.channels, s.height, s.stride, s.receptive_field) for s in e.stages] == \
        [("input", "", 3, 33, 1, 1), ("stage1", "layer1", 8, 17, 2, 11), ("stage2", "layer2", 16, 9, 4, 23)]
    assert e.output_stride == 4 and not e.decoder_check.ok
    assert e.decoder_check.suggested_sizes.below == (32, 32) and e.decoder_check.suggested_sizes.above == (36, 36)
    assert "stage1 = layer1 (stride 2), stage2 = layer2 (stride 4)" in e.notes[-1]
    result = run("skips", TINY, "--size", "32", "--depth", "1", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [s["module"] for s in data["stages"]] == ["", "layer1"] and data["decoder_check"]["ok"]
    assert "timm's feature_info rule" in result.stderr
    one_line_error(run("skips", TINY, "--depth", "3"), 2, "depth 3", "use 1 to 2")
    one_line_error(run("skips", TINY, "--output-stride", "16"), 2, "--output-stride", "--kwargs")


class _Sequenced(nn.Module):
    """conv 3x3/2, then every position mixed with every other by a matmul over the flattened map
    (outside the RF rule), then conv 3x3/2."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, 2, 1)
        self.b = nn.Conv2d(4, 4, 3, 2, 1)

    def forward(self, x):
        y = self.a(x)
        positions = y.shape[2] * y.shape[3]
        return self.b((y.flatten(2) @ torch.ones(positions, positions)).view(y.shape))


class _ChannelsLast(nn.Module):
    """ConvNeXt's pattern: a LayerNorm and a linear layer over channels in NHWC, between two convs."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, 2, 1)
        self.norm = nn.LayerNorm(4)
        self.mlp = nn.Linear(4, 4)
        self.b = nn.Conv2d(4, 4, 3, 2, 1)

    def forward(self, x):
        y = self.mlp(self.norm(self.a(x).permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        return self.b(y)


class _Bottlenecked(nn.Module):
    """stem 3x3/2; layer1; layer2 whose first conv is a 1x1 still at stride 2 (as in a bottleneck),
    then a 3x3/2; a final Identity."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 2, 1)
        self.layer1 = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1), nn.ReLU())
        self.layer2 = nn.Sequential(nn.Conv2d(8, 16, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, 2, 1))
        self.tail = nn.Identity()

    def forward(self, x):
        return self.tail(self.layer2(self.layer1(self.stem(x))))


def test_rf_stops_where_positions_mix_and_passes_layout_and_channels_last_ops():
    e = encoder_stages(f"{NETS}:make_tiny_vit", (3, 32, 32))
    assert [(s.module, s.stride, s.receptive_field) for s in e.stages] == [("", 1, 1), ("patch", 4, 4)]
    e = encoder_stages(_Sequenced(), (3, 32, 32))  # the stride is read from the sides after the stop
    assert [(s.module, s.stride, s.receptive_field) for s in e.stages] == [("", 1, 1), ("a", 2, 3), ("b", 4, None)]
    s = summarize(_Sequenced(), (3, 32, 32))
    rows = {r.name: r for r in s.layers}
    assert rows["b"].receptive_field_note == "after aten::matmul in the network's own forward"
    assert rows["(ops)"].macs == 4 * 256 * 256  # (4, 256) x (256, 256): the 16 x 16 positions, in the root's own ops
    assert s.output_stride == 2  # the largest stride known before the rule stopped
    s = summarize(_ChannelsLast(), (3, 32, 32))
    assert [(r.name, r.receptive_field, r.stride) for r in s.layers if r.name in ("mlp", "b")] == \
        [("mlp", 3, 2), ("b", 7, 4)] and s.notes == ()
    table = run("skips", f"{NETS}:make_tiny_vit", "--input-size", "3,32,32")
    assert table.exit_code == 0 and "patch" in table.stdout


def test_stages_are_the_last_module_at_each_stride_outside_the_step_to_the_next():
    e = encoder_stages(_Bottlenecked(), (3, 64, 64))
    assert [(s.name, s.module, s.stride) for s in e.stages] == \
        [("input", "", 1), ("stage1", "layer1", 2), ("stage2", "layer2", 4)]


def test_compare_cli_mixes_builtin_and_file():
    result = run("compare", "resnet18", TINY, "--size", "32", "-f", "json")
    assert result.exit_code == 0, result.stderr
    mine = json.loads(result.stdout)["variants"][1]
    assert (mine["params"], mine["macs"], mine["stage_channels"], mine["output_stride"], mine["conv_layers"]) == \
        (tiny_params(), tiny_macs(), [8, 16], 4, 6)
    api = compare(["resnet18", nets.make_tiny_resnet()], (32, 32)).variants[1]
    assert (api.params, api.macs) == (tiny_params(), tiny_macs())


def test_bench_cli_and_api_time_the_users_module():
    result = run("bench", TINY, "--kwargs", "width=4", "--input-size", "3,32,32", "--batch", "2", "--iters", "2",
                 "--warmup", "0", "--peak-tflops", "1", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["input_size"] == [3, 32, 32] and data["flops_per_image"] == 2 * tiny_macs(4)
    assert data["results"][0]["batch_size"] == 2 and data["results"][0]["iterations"] == 2
    module = nets.make_tiny_resnet().train()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    report = bench(module, (3, 32, 32), batch=1, iters=2, warmup=0, peak_tflops=1.0, dtype="bf16")
    assert report.flops_per_image == 2 * tiny_macs() and report.variant == "TinyResNet"
    assert report.results[0].iterations == 2 and report.dtype == "bf16"
    after = module.state_dict()  # timed on a copy: the caller's module is not cast, moved or changed
    assert module.training and all(after[k].dtype == v.dtype and after[k].equal(v) for k, v in before.items())


# ------------------------------------------------------------------ parsing (no torch needed)
def test_resolve_dispatches_on_the_colon():
    name, source = resolve(TINY)
    assert isinstance(source, ModuleSource) and source.kind == "file" and name == TINY
    assert resolve("timm:resnet50")[1] == ModuleSource("timm", "timm", "resnet50")
    assert resolve("torchvision:resnet50")[1].kind == "torchvision"
    assert resolve("pkg.mod:Net.small")[1] == ModuleSource("module", "pkg.mod", "Net.small")


@pytest.mark.parametrize("text,value", [
    ("depth=50,num_classes=10", (("depth", 50), ("num_classes", 10))),
    ("layers=(3, 4, 6, 3), act='relu', drop=0.1, zero=True, extra=None",
     (("layers", (3, 4, 6, 3)), ("act", "relu"), ("drop", 0.1), ("zero", True), ("extra", None))),
    ("block_args={'attn': 'se'}, widths=[64, 128]", (("block_args", {"attn": "se"}), ("widths", [64, 128]))),
    ("", ()),
])
def test_kwargs_are_literals(text, value):
    assert parse_kwargs(text) == value


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda k: k not in ("None", "True", "False") and not __import__("keyword").iskeyword(k)),
    st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none(), st.text(max_size=8),
              st.tuples(st.integers(), st.integers())), max_size=5))
def test_kwargs_round_trip(values):
    assert dict(parse_kwargs(",".join(f"{k}={v!r}" for k, v in values.items()))) == values


@pytest.mark.parametrize("text,fragment", [
    ("depth=", "not a list of key=value"), ("50", "key=value items only"), ("**cfg", "key=value items only"),
    ("act=relu", "is not a Python literal"), ("n=__import__('os').getcwd()", "is not a Python literal"),
    ("a=1,a=2", "gives a twice"),
])
def test_bad_kwargs_are_usage_errors_naming_them(text, fragment):
    with pytest.raises(UsageError, match="--kwargs"):
        parse_kwargs(text)
    one_line_error(run("summary", TINY, "--kwargs", text), 2, fragment)


@pytest.mark.parametrize("args,fragment", [
    (["summary", TINY, "--input-size", "3,224"], "--input-size '3,224' is not C,H,W"),
    (["summary", "resnet18", "--kwargs", "depth=50"], "--kwargs applies to your own network"),
    (["skips", "resnet18", "--input-size", "3,64,64"], "--input-size applies to your own network"),
    (["summary", TINY, "--weights", "x.pth"], "--weights loads checkpoints into the built-in ResNets only"),
    (["summary", TINY, "--in-chans", "1"], "--in-chans applies to the built-in ResNets"),
    (["summary", "timm:resnet50", "--kwargs", "pretrained=True"], "never downloads weights"),
    (["summary", "nosuchdir/net.py:make"], "no such file 'nosuchdir/net.py'"),
    (["summary", "no_such_module_xyz:make"], "no module named 'no_such_module_xyz'"),
    (["summary", f"{NETS}:"], "expected path/to/file.py:factory"),
    (["summary", f"{NETS}:make_tiny_resnt"], "has no attribute 'make_tiny_resnt'; did you mean make_tiny_resnet"),
    (["summary", f"{NETS}:NOT_CALLABLE"], "is a int, not a callable"),
    (["summary", f"{NETS}:make_not_module"], "returned dict, not a torch.nn.Module"),
    (["summary", TINY, "--kwargs", "depth=3"], "--kwargs do not fit"),
    (["compare", "resnet18", "resnet34", "--kwargs", "depth=3"], "--kwargs applies to your own network"),
    (["summary", "resnet(aa=0:1)"], "aa='0:1' is not allowed"),  # a ':' inside a spec stays the spec grammar's
    (["summary", ":"], "cannot read ':' as a network"),
])
def test_usage_errors_exit_2_in_one_line(args, fragment):
    one_line_error(run(*args), 2, fragment)


def test_a_non_literal_hint_quotes_only_a_bare_word():
    one_line_error(run("summary", TINY, "--kwargs", "act=relu"), 2, 'quote strings: act="relu"')
    result = run("summary", TINY, "--kwargs", 'c=__import__("os").system("echo PWNED")')
    one_line_error(result, 2, "is not a Python literal", "never run")
    assert "quote strings" not in result.stderr and "PWNED\n" not in result.stdout


def test_in_chans_and_num_classes_hint_the_factory_own_keyword(tmp_path):
    net = tmp_path / "net.py"
    net.write_text("class Net:\n    def __init__(self, in_channels=3, classes=10):\n        pass\n\n\n"
                   "def make(in_chans=3, n_classes=10):\n    pass\n\n\n"
                   "def make_depth(depth=3):\n    pass\n\n\n"
                   "def make_any(**kw):\n    pass\n")
    cases = [(f"{net}:Net", "--in-chans", "in_channels=1"), (f"{net}:Net", "--num-classes", "classes=1"),
             (f"{net}:make", "--in-chans", "in_chans=1"), (f"{net}:make", "--num-classes", "n_classes=1"),
             (f"{net}:make_depth", "--in-chans", "its arguments: depth"),
             (f"{net}:make_any", "--num-classes", "if it takes num_classes"),
             ("timm:resnet50", "--in-chans", "--kwargs 'in_chans=1'")]
    for variant, flag, fragment in cases:
        result = run("summary", variant, flag, "1")
        one_line_error(result, 2, f"{flag} applies to the built-in ResNets", fragment)
        assert "num_classes=10" not in result.stderr


def test_a_file_that_fails_to_import_is_a_usage_error(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\nimport no_such_package_for_resnet_cli\n")
    one_line_error(run("summary", f"{broken}:make"), 2, f"cannot import '{broken}'", "ModuleNotFoundError",
                   "no_such_package_for_resnet_cli")
    bad = tmp_path / "bad_syntax.py"
    bad.write_text("def make(:\n")
    one_line_error(run("skips", f"{bad}:make"), 2, "(line 1)", "SyntaxError")


def test_runtime_errors_exit_1_in_one_line():
    one_line_error(run("summary", f"{NETS}:make_raises", "--kwargs", "depth=18"), 1,
                   "make_raises raised ValueError: depth 18 is not supported")
    # an LSTM built for H = 8 at the default 1x224x224: no size within 64 px works, so the forward's own error
    one_line_error(run("summary", f"{NETS}:make_conv_lstm"), 1, "forward pass of", "fails at input 1x224x224",
                   "at every size within 64 px", "rnn.lstm")
    one_line_error(run("bench", f"{NETS}:make_view_flatten", "--size", "32", "--iters", "1"), 1,
                   "cannot take an empty batch", "torch.flatten(x, 1)")


def test_a_forward_that_fails_at_this_size_but_not_a_nearby_one_is_a_usage_error():
    one_line_error(run("summary", f"{NETS}:make_conv_lstm", "--input-size", "1,9,16"), 2,
                   "input 9x16 fails in layer 'rnn.lstm'", "the nearest size that works is 8x16")
    with pytest.raises(UsageError):
        summarize(nets.make_conv_lstm(), input_size=(1, 10, 8))


@pytest.mark.parametrize("package", ["timm", "torchvision"])
def test_a_missing_package_is_named(monkeypatch, package):
    monkeypatch.setitem(sys.modules, package, None)  # import fails as when it is not installed
    monkeypatch.setitem(sys.modules, f"{package}.models", None)
    one_line_error(run("summary", f"{package}:resnet50"), 1, f"{package}:resnet50 needs the {package} package",
                   f"pip install {package}")


def test_help_says_that_loading_a_file_runs_its_code():
    result = run("summary", "--help")
    assert "runs its code" in " ".join(result.stdout.split()) and "--kwargs" in result.stdout


# ------------------------------------------------------------------ against the peers, when installed
def _same_numbers(theirs, ours) -> None:
    """Totals and memory equal; every row equal by name (shape, params, MACs, RF, stride, calls), except
    parameter-free placeholders the built-in network never calls (timm's drop_block Identity)."""
    assert (theirs.total_params, theirs.trainable_params, theirs.macs, theirs.output_stride, theirs.macs_by_op,
            theirs.memory) == (ours.total_params, ours.trainable_params, ours.macs, ours.output_stride,
                               ours.macs_by_op, ours.memory)
    a = {r.name: (r.output_shape, r.params, r.macs, r.receptive_field, r.stride, r.calls) for r in theirs.layers}
    b = {r.name: (r.output_shape, r.params, r.macs, r.receptive_field, r.stride, r.calls) for r in ours.layers}
    assert set(a) == set(b)
    differ = [r for r in ours.layers if a[r.name] != b[r.name]]
    assert all(r.calls == 0 and r.params == 0 and r.macs == 0 and r.type == "Identity" for r in differ)


def test_torchvision_resnet50_equals_the_builtin_number_for_number():
    pytest.importorskip("torchvision", reason="torchvision is not installed (CI installs only .[test])")
    theirs, ours = summarize("torchvision:resnet50"), summarize("resnet50")
    _same_numbers(theirs, ours)


def test_timm_seresnext26d_equals_the_builtin_number_for_number():
    pytest.importorskip("timm", reason="timm is not installed (CI installs only .[test])")
    theirs, ours = summarize("timm:seresnext26d_32x4d"), summarize("seresnext26d_32x4d")
    assert any("pretrained_cfg" in n for n in theirs.notes)
    _same_numbers(theirs, ours)


@pytest.mark.parametrize("name", ["resnet50", "seresnext26d_32x4d", "regnetx_002", "convnext_atto"])
def test_inferred_stages_match_timms_own_feature_info(name):
    timm = pytest.importorskip("timm", reason="timm is not installed (CI installs only .[test])")
    from resnet_cli.analysis.module_stages import inferred_stages
    from resnet_cli.analysis.trace import trace

    model = timm.create_model(name, pretrained=False)
    stages = inferred_stages(trace(model, (1, 3, 224, 224)), 224, 224, 3)[1:]
    assert [(s.module, s.channels, s.stride) for s in stages] == \
        [(f["module"], f["num_chs"], f["reduction"]) for f in model.feature_info]
    shown = encoder_stages(f"timm:{name}")  # the command asks the module's own feature_info first
    assert [s.module for s in shown.stages[1:]] == [f["module"] for f in model.feature_info]
    assert "feature_info (timm)" in shown.notes[-1]


def test_training_step_of_your_own_network():
    s = summarize(TINY, (3, 32, 32), mode="train")
    assert s.mode == "train" and s.train is not None and s.total_params == tiny_params()
    assert s.train.forward_macs == tiny_macs()  # the training step's forward is the forward pass
    result = run("bench", TINY, "--input-size", "3,32,32", "--mode", "train", "--batch", "2", "--iters", "2",
                 "--warmup", "0", "--peak-tflops", "1", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert [r["batch_size"] for r in json.loads(result.stdout)["results"]] == [2]

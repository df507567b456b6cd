"""The names beyond torchvision's and timm's first set: ResNet v1 (stride on the 1x1), Keras-style conv
biases, the Wide ResNets and the CIFAR ResNet-18; the spec keys behind timm's SENet-154, pruned and test
nets; ``list`` with a glob and a source column. Numbers come from the papers and libraries named."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from conftest import load_reference
from resnet_cli.analysis.checkpoint import derive_spec, expected_shapes, identify
from resnet_cli.analysis.flops import conv_linear_macs
from resnet_cli.cli import app
from resnet_cli.errors import UsageError
from resnet_cli.models import VARIANTS, build_model, get_spec

TORCHVISION = load_reference("torchvision")["models"]
runner = CliRunner()


def meta_model(name):
    with torch.device("meta"):
        return build_model(name)


def params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet50_v1_is_torchvisions_layout_with_the_stride_on_the_1x1():
    """He et al. 2015 (and Caffe): 25,557,032 parameters, 3,857,973,248 MACs at 224x224 (the paper's
    "3.8 x 10^9 FLOPs", which are multiply-adds); torchvision's v1.5 puts the stride on the 3x3: 4.09 G."""
    model = meta_model("resnet50_v1")
    assert params(model) == 25_557_032
    assert conv_linear_macs(model, (1, 3, 224, 224)) == 3_857_973_248
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == TORCHVISION["resnet50"]["state_dict"]
    for layer in (model.layer2, model.layer3, model.layer4):
        assert (layer[0].conv1.stride, layer[0].conv2.stride) == ((2, 2), (1, 1))
    assert hasattr(model, "avgpool") and hasattr(model.layer1[0], "relu")  # torchvision's module names
    for name, ref in (("resnet101_v1", "resnet101"), ("resnet152_v1", "resnet152")):
        assert params(meta_model(name)) == TORCHVISION[ref]["num_params"]
        assert conv_linear_macs(meta_model(name), (1, 3, 224, 224)) < TORCHVISION[ref]["macs_224"]


def test_keras_style_resnet50_counts():
    """Keras' ResNet50 summary: 25,636,712 total = 25,583,592 trainable + 53,120 non-trainable (the
    BatchNorm moving means and variances, which Keras counts as parameters and torch as buffers)."""
    model = meta_model("resnet(depth=50, stride_in_1x1=true, conv_bias=true)")
    stats = sum(v.numel() for k, v in model.state_dict().items() if k.endswith(("running_mean", "running_var")))
    assert (params(model), stats, params(model) + stats) == (25_583_592, 53_120, 25_636_712)
    assert model.conv1.bias is not None and model.layer1[0].downsample[0].bias is not None
    assert conv_linear_macs(model, (1, 3, 224, 224)) == 3_857_973_248  # biases are not MACs


@pytest.mark.parametrize("name, millions, widths", [
    ("wrn16_8", 11.0, (128, 256, 512)), ("wrn28_10", 36.5, (160, 320, 640)), ("wrn40_4", 8.9, (64, 128, 256))])
def test_wide_resnets_match_the_paper(name, millions, widths):
    """Zagoruyko & Komodakis 2016, table 1/4: WRN-16-8 11.0M, WRN-28-10 36.5M, WRN-40-4 8.9M parameters."""
    spec = get_spec(name)
    model = meta_model(name)
    assert round(params(model) / 1e6, 1) == millions
    assert spec.stage_channels == widths and spec.preact and spec.input_size == (3, 32, 32)
    out = model.eval()(torch.empty(2, 3, 32, 32, device="meta"))
    assert tuple(out.shape) == (2, 10)
    # 1x1 projection shortcuts exactly where the shape changes: the first block of each stage
    projections = [k for k in model.state_dict() if "downsample" in k]
    assert projections == [f"stages.{i}.blocks.0.downsample.conv.weight" for i in range(3)]


def test_wrn28_10_exact_count():
    assert params(meta_model("wrn28_10")) == 36_479_194


def test_cifar_resnet18():
    model = meta_model("cifar_resnet18")
    assert params(model) == 11_173_962
    assert tuple(model.conv1.weight.shape) == (64, 3, 3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity) and get_spec("cifar_resnet18").output_stride == 8


def test_senet154_keys():
    """timm's senet154: first 1x1 at half the inner width (block_reduce_first=2), 3x3 strided shortcuts."""
    model = meta_model("senet154")
    assert tuple(model.layer1[0].conv1.weight.shape) == (128, 128, 1, 1)
    assert tuple(model.layer1[0].conv2.weight.shape) == (256, 2, 3, 3)
    assert tuple(model.layer1[0].downsample[0].weight.shape) == (256, 128, 1, 1)  # stride 1: 1x1, as timm
    conv = model.layer2[0].downsample[0]
    assert (conv.kernel_size, conv.stride, conv.padding) == ((3, 3), (2, 2), (1, 1))


def test_new_keys_round_trip_through_the_spec_string():
    for name in ("senet154", "ecaresnet50d_pruned", "test_resnet", "resnet50_v1"):
        spec = VARIANTS[name].spec
        assert get_spec(spec.to_string()).replace(naming=spec.naming) == spec


@pytest.mark.parametrize("text, fragment", [
    ("resnet(stage_blocks=basic-vgg-basic-basic)", "stage_blocks has 'vgg'"),
    ("resnet(stage_blocks=basic-basic)", "one block type per stage"),
    ("resnet(out_channels=256-512)", "one channel count per stage"),
    ("resnet(block_widths=64-64)", "give 32"),
    ("resnet(down_kernel_size=2)", "odd kernel size"),
    ("resnet(down_kernel_size=3, shortcut=avgpool)", "down_kernel_size=3 needs shortcut=conv"),
    ("resnet(reduce_first=0)", "reduce_first=0"),
    ("resnet(stride_in_1x1=true, aa=blur)", "aa=none"),
    ("resnet(depth=18, preact=true, conv_bias=true)", "post-activation"),
    ("resnet(groups=32, width_per_group=4, reduce_first=3)", "groups=32"),
])
def test_new_keys_refuse_what_they_cannot_build(text, fragment):
    with pytest.raises(UsageError, match=fragment):
        get_spec(text)


def test_block_resets_stage_blocks():
    assert get_spec("test_resnet(depth=18)").stage_blocks == ()


def test_identify_derives_the_new_keys():
    spec, undetermined = derive_spec(expected_shapes(VARIANTS["senet154"].spec))
    assert (spec.reduce_first, spec.down_kernel_size, spec.groups, spec.stem_width) == (2, 3, 64, 64)
    spec, _ = derive_spec(expected_shapes(VARIANTS["ecaresnet50d_pruned"].spec))
    assert spec.out_channels == (19, 171, 818, 2022) and spec.block_widths[:4] == (47, 18, 52, 22)
    spec, _ = derive_spec(expected_shapes(VARIANTS["test_resnet"].spec))
    assert spec.stage_blocks == ("basic", "basic", "bottleneck", "basic")
    keras = get_spec("resnet(depth=50, stride_in_1x1=true, conv_bias=true)")
    ident = identify(expected_shapes(keras))
    assert ident.matches == () and ident.spec.conv_bias and "stride_in_1x1" in " ".join(ident.undetermined)


def test_list_glob_and_source():
    result = runner.invoke(app, ["list", "seresnext*", "-f", "json"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["variants"]
    assert [r["name"] for r in rows] == [n for n in VARIANTS if n.startswith("seresnext")]
    assert {r["source"] for r in rows} == {"timm 1.0.31"}
    v1 = json.loads(runner.invoke(app, ["list", "*_v1", "-f", "json"]).stdout)["variants"]
    assert [(r["name"], r["family"]) for r in v1] == [(f"resnet{d}_v1", "paper") for d in (50, 101, 152)]
    assert all(r["source"].startswith("He et al. 2015") for r in v1)
    wrn = json.loads(runner.invoke(app, ["list", "wrn*", "--family", "cifar", "-f", "json"]).stdout)["variants"]
    assert [r["name"] for r in wrn] == ["wrn16_8", "wrn28_10", "wrn40_4"]
    none = runner.invoke(app, ["list", "vgg*"])
    assert none.exit_code == 2 and "no variant matches 'vgg*'" in none.stderr and none.stdout == ""

"""The builder against the reference implementations (tests/reference): parameters, state_dict
keys and shapes, per-module output shapes, encoder feature info and the float64 fingerprint."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import fingerprint, load_reference, variant_names
from resnet_cli.analysis.trace import empty_cpu_copy
from resnet_cli.analysis.trace import trace
from resnet_cli.models import VARIANTS, build_model, get_spec

TORCHVISION = load_reference("torchvision")["models"]
TIMM = load_reference("timm")["models"]
CIFAR = load_reference("cifar")["models"]
# timm_resnets_more.json: the names resnet-cli builds (variant_names.txt) among its models
TIMM_MORE = {n: r for n, r in load_reference("timm_more")["models"].items() if n in set(variant_names())}
REFERENCE = {**TORCHVISION, **TIMM, **CIFAR, **TIMM_MORE}
WITH_FINGERPRINT = sorted(n for n, r in {**TORCHVISION, **TIMM, **TIMM_MORE}.items() if "fingerprint" in r)


def meta_model(name, **overrides):
    with torch.device("meta"):
        return build_model(name, **overrides)


def state_shapes(model) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", variant_names())
def test_every_variant_runs_on_meta_and_on_an_empty_batch(name):
    model = meta_model(name)
    spec = get_spec(name)
    out = model.eval()(torch.empty(2, *spec.input_size, device="meta"))
    assert tuple(out.shape) == (2, spec.num_classes)
    assert VARIANTS[name].spec == spec
    # summary's walk and fvcore's trace run an empty batch on the CPU (analysis/summary.py)
    with torch.no_grad():
        empty = empty_cpu_copy(model).eval()(torch.empty(0, *spec.input_size))
    assert tuple(empty.shape) == (0, spec.num_classes)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_num_params(name):
    assert sum(p.numel() for p in meta_model(name).parameters()) == REFERENCE[name]["num_params"]


@pytest.mark.parametrize("name", sorted(n for n, r in REFERENCE.items() if "state_dict" in r))
def test_state_dict_keys_and_shapes(name):
    assert state_shapes(meta_model(name)) == REFERENCE[name]["state_dict"]


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_module_output_shapes_224(name):
    traced = trace(meta_model(name), (1, 3, 224, 224))
    got = {n: list(r.output_shape) for n, r in traced.items() if n}
    assert got == TORCHVISION[name]["module_output_shapes_224"]


@pytest.mark.parametrize("name", sorted({**TIMM, **TIMM_MORE}))
def test_timm_feature_info(name):
    ref = {**TIMM, **TIMM_MORE}[name]
    info = get_spec(name).feature_info()
    assert [f["num_chs"] for f in info] == ref["feature_channels"]
    assert [f["reduction"] for f in info] == ref["feature_reduction"]
    assert [f["module"] for f in info] == ref["feature_modules"]
    assert list(get_spec(name).input_size) == ref["default_input_size"]


@pytest.mark.parametrize("name", sorted(CIFAR))
def test_cifar_layout(name):
    ref, spec = CIFAR[name], get_spec(name)
    assert list(spec.input_size) == ref["input_size"]
    assert [spec.stem_channels, *spec.stage_channels] == ref["stage_channels"]
    traced = trace(meta_model(name), (1, *spec.input_size))
    modules = ["conv1", *(f"layer{i}" for i in range(1, len(spec.layers) + 1))]
    assert [traced[m].output_shape[-1] for m in modules] == ref["stage_hw_32"]


@pytest.mark.parametrize("name", sorted(TIMM_MORE))
def test_timm_more_feature_shapes(name):
    """Encoder feature shapes at each reference size; where timm's own forward fails (average-pool
    anti-aliasing at odd sizes: a residual add of 16 and 17 columns), ours refuses the size too."""
    from resnet_cli.errors import UsageError

    ref = TIMM_MORE[name]
    model = meta_model(name)
    for size, shapes in ref["feature_shapes"].items():
        h, w = map(int, size.split("x"))
        if isinstance(shapes, dict):
            with pytest.raises(UsageError):
                trace(model, (1, 3, h, w))
            continue
        traced = trace(model, (1, 3, h, w))
        assert [list(traced[m].output_shape) for m in ref["feature_modules"]] == shapes, size


@pytest.mark.parametrize("name", sorted(n for n in TIMM_MORE if not n.startswith("resnetv2_")))
def test_timm_more_conv_linear_macs(name):
    """timm_resnets_more.json's ``macs_224``: every convolution op, the blur pool's fixed 3x3 filter
    included (resnetblur18: 3,386,880 MACs of it, 9 per blur output)."""
    from resnet_cli.analysis.flops import count_macs

    assert count_macs(meta_model(name), (1, 3, 224, 224), "conv-linear", "fvcore").macs == TIMM_MORE[name]["macs_224"]


@pytest.mark.parametrize("name", WITH_FINGERPRINT)
def test_float64_fingerprint(name):
    ref = REFERENCE[name]["fingerprint"]
    with torch.device("meta"):
        model = build_model(name)
    got = fingerprint(model.to_empty(device="cpu"), ref["input_shape"])
    close = lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)  # noqa: E731
    assert all(close(a, b) for a, b in zip(got["logits_first8"], ref["logits_first8"], strict=True))
    assert close(got["logits_sum"], ref["logits_sum"])
    assert close(got["logits_abs_sum"], ref["logits_abs_sum"])


def test_torchvision_checkpoint_loads_strict():
    """A torchvision-layout state_dict (reference keys and shapes) loads with strict=True."""
    model = meta_model("resnext50_32x4d")
    fake = {k: torch.empty(s, device="meta") for k, s in TORCHVISION["resnext50_32x4d"]["state_dict"].items()}
    assert not model.load_state_dict(fake, strict=True, assign=True).missing_keys


def test_overrides_change_input_and_classes():
    model = meta_model("resnet18", num_classes=10, in_chans=1)
    assert model.conv1.weight.shape[1] == 1 and model.fc.out_features == 10
    assert get_spec("resnet18", in_chans=1).input_size == (1, 224, 224)
    features = meta_model("resnet50", num_classes=0)
    assert tuple(features.eval()(torch.empty(1, 3, 64, 64, device="meta")).shape) == (1, 2048)


def test_dilated_resnet50_matches_torchvision():
    ref = load_reference("torchvision")["dilated"]["resnet50:dilation=FTT"]
    spec = get_spec("resnet50(output_stride=8)")
    assert spec.dilate == tuple(ref["replace_stride_with_dilation"])
    traced = trace(meta_model(spec), (1, 3, 224, 224))
    stages = {"stem": "relu", "pool": "maxpool", **{f"layer{i}": f"layer{i}" for i in range(1, 5)}}
    assert {k: list(traced[m].output_shape) for k, m in stages.items()} == ref["stage_shapes"]["224x224"]


def test_zero_init_last_zeroes_the_last_norm():
    model = build_model("resnet(depth=18, widths=8-16-32-64)")
    assert torch.count_nonzero(model.layer1[0].bn2.weight) == 0
    model = build_model("resnet(depth=18, widths=8-16-32-64, zero_init_last=false)")
    assert torch.count_nonzero(model.layer1[0].bn2.weight) == 8


def test_receptive_field_of_resnet18_is_435():
    """The well-known theoretical receptive field of ResNet-18 (Araujo et al. 2019)."""
    traced = trace(meta_model("resnet18"), (1, 3, 224, 224))
    assert (traced["layer4"].receptive_field, traced["layer4"].stride) == (435, 32)
    assert traced["fc"].receptive_field is None


def test_blur_pool_counts_as_the_convolution_it_runs():
    """timm 1.0.31's resnetblur50 and resnetblur50d under FlopCounterMode (aten.convolution + addmm, / 2),
    as the reference file counts resnetblur18: the blur pool's fixed depthwise 3x3 filter is a convolution.
    Forward hooks on Conv2d/Linear modules alone miss it (5,129,633,792 for resnetblur50)."""
    from resnet_cli.analysis.flops import conv_linear_macs

    assert conv_linear_macs(meta_model("resnetblur50"), (1, 3, 224, 224)) == 5_133_020_672
    assert conv_linear_macs(meta_model("resnetblur50d"), (1, 3, 224, 224)) == 5_372_661_248


@pytest.mark.parametrize("name", sorted(n for n in TIMM_MORE if n.startswith("resnetv2_")))
def test_resnetv2_conv_linear_macs_224(name):
    """fvcore's conv + linear MACs at batch 1, 224x224, of timm's ResNetV2 nets (weight-standardised
    convs count as the convolution they run, their standardisation 0)."""
    from resnet_cli.analysis.flops import conv_linear_macs

    assert conv_linear_macs(meta_model(name), (1, 3, 224, 224)) == TIMM_MORE[name]["macs_224"]

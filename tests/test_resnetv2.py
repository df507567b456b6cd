"""timm's ResNetV2 layers and keys (BiT's weight-standardised convs, stem pool and width factor,
EvoNorm-S0, FRN): their definitions, their spec keys, and the analysis passes over them. The
reference facts (params, keys, MACs, fingerprints) are checked in test_models.py."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from resnet_cli.cli import app
from resnet_cli.errors import UsageError
from resnet_cli.models import build_model, get_spec, resolve

runner = CliRunner()


def meta_model(name, **overrides):
    with torch.device("meta"):
        return build_model(name, **overrides)


# timm 1.0.31 resnetv2 nets over 200 M parameters (no fingerprint), measured with
# sum(p.numel() for p in timm.create_model(name).parameters()) outside this repository
BIG_BIT = {"resnetv2_50x3_bit": 217_319_080, "resnetv2_101x3_bit": 387_934_888, "resnetv2_152x2_bit": 236_335_208,
           "resnetv2_152x4_bit": 936_533_224}


def test_big_bit_nets_parameters_and_width_factor():
    for name, params in BIG_BIT.items():
        model = meta_model(name)
        assert sum(p.numel() for p in model.parameters()) == params, name
        k = get_spec(name).wide_factor
        assert model.stem.conv.weight.shape == (64 * k, 3, 7, 7) and model.head.fc.in_channels == 2048 * k


def test_weight_standardised_conv_matches_its_definition():
    """StdConv2d: each output channel's weight standardised (biased variance, eps) before the conv
    (Qiao et al. 2019; timm StdConv2d); an empty batch never reads the weight and gives an empty output."""
    from resnet_cli.models.layers import StdConv2d

    torch.manual_seed(0)
    conv = StdConv2d(4, 6, 3, padding=1, bias=False, eps=1e-8).double()
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    w = conv.weight
    mean = w.mean(dim=(1, 2, 3), keepdim=True)
    var = w.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
    expected = torch.nn.functional.conv2d(x, (w - mean) / torch.sqrt(var + 1e-8), padding=1)
    assert torch.allclose(conv(x), expected, rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        conv.weight.fill_(float("nan"))  # an uninitialised weight: the empty pass must not care
    assert conv(torch.empty(0, 4, 5, 5, dtype=torch.float64)).shape == (0, 6, 5, 5)


def test_evonorm_and_frn_take_an_empty_batch_and_stay_finite():
    """Per-sample statistics: an empty batch (the analysis passes) gives an empty output, no error,
    and a constant input gives finite values (the eps)."""
    from resnet_cli.models.layers import EvoNorm2dS0, FilterResponseNormTlu2d

    for norm in (EvoNorm2dS0(64), FilterResponseNormTlu2d(64)):
        assert norm(torch.empty(0, 64, 7, 7)).shape == (0, 64, 7, 7)
        assert torch.isfinite(norm(torch.zeros(2, 64, 3, 3))).all()


def test_fixed_and_same_stem_pools_as_timm():
    """BiT's 'fixed' stem pool (zero pad 1, unpadded 3x3/2 max-pool) differs from max-pool padding 1 on
    negative inputs; 'same' (TF SAME, -inf) equals it on even sides and pads only after on odd ones."""
    from resnet_cli.models.layers import v2_stem_pool

    x = -torch.ones(1, 1, 6, 6)
    fixed, plain, same = (torch.nn.Sequential(v2_stem_pool(k)) for k in ("fixed", "max", "same"))
    assert fixed(x).max() == 0 and plain(x).max() == -1 and torch.equal(same(x), plain(x))
    y = torch.arange(25.0).reshape(1, 1, 5, 5)
    assert same(y).shape == plain(y).shape == (1, 1, 3, 3) and same(y)[0, 0, 0, 0] == 6 == plain(y)[0, 0, 0, 0]


def test_bit_spec_keys_round_trip_and_build():
    spec = get_spec("resnet(depth=50, preact=true, norm=groupnorm, conv=std, conv_eps=1e-8, stem_pool=fixed, "
                    "width_factor=2)")
    assert (spec.conv, spec.conv_eps, spec.stem_pool, spec.wide_factor) == ("std", 1e-8, "fixed", 2)
    assert resolve(spec.to_string())[1] == spec
    assert spec.stage_channels == (512, 1024, 2048, 4096) and spec.stem_channels == 128
    assert get_spec("resnetv2_50x1_bit(wide_factor=2)").replace(zero_init_last=True) == spec.replace(
        zero_init_last=True, num_classes=spec.num_classes)
    # a width multiplier works on post-activation nets too: widths and stem scale, nothing else
    wide = get_spec("resnet18(wide_factor=2)")
    assert wide.stage_channels == (128, 256, 512, 1024) and wide.stem_channels == 128


@pytest.mark.parametrize("text,words", [
    ("resnet(depth=50, conv=std)", "conv=std needs preact=true"),
    ("resnet(depth=50, norm=evonorm)", "norm=evonorm needs preact=true"),
    ("resnet(depth=50, stem_pool=fixed)", "stem_pool=fixed needs preact=true"),
    ("resnet(depth=50, preact=true, conv=wavelet)", "conv='wavelet' is not allowed; use one of plain, std"),
    ("resnet(depth=50, preact=true, norm=evonorm, widths=8-16-32-64)", "norm=evonorm uses 32 groups"),
    ("resnet(depth=50, preact=true, conv=std, conv_eps=0)", "conv_eps=0.0 must be in (0, 1)"),
    ("resnet(depth=50, wide_factor=0)", "wide_factor=0 must be a positive integer"),
])
def test_bad_v2_keys_name_the_value(text, words):
    with pytest.raises(UsageError, match=None) as err:
        get_spec(text)
    assert words in str(err.value)


def test_cli_refuses_conv_std_without_preact_with_exit_2():
    result = runner.invoke(app, ["summary", "resnet(depth=18, conv=std)"])
    assert result.exit_code == 2 and "conv=std needs preact=true" in result.output


def test_weight_std_is_counted_apart_and_engines_agree():
    """--count all: the standardisation is 1 MAC per weight element (once per call, not per sample),
    in its own family; conv-linear counts the convolutions only; fvcore (empty batch) and the torch
    engine (meta) agree per module."""
    from resnet_cli.analysis.flops import count_macs

    model = meta_model("resnet(depth=18, preact=true, norm=groupnorm, conv=std, stem_pool=fixed, num_classes=10)")
    weights = sum(m.weight.numel() for n, m in model.named_modules() if type(m).__name__ == "StdConv2d")
    for batch in (3,):  # once per call: the same at any batch
        fv, th = (count_macs(model, (batch, 3, 64, 64), "all", e) for e in ("fvcore", "torch"))
        assert fv.by_op["weight_std"] == th.by_op["weight_std"] == weights
        assert {k: v for k, v in fv.by_module.items() if v} == {k: v for k, v in th.by_module.items() if v}
        assert "batch_norm" not in fv.by_op and "batch_norm" not in th.by_op
    plain = count_macs(model, (1, 3, 64, 64), "conv-linear", "fvcore")
    assert set(plain.by_op) == {"conv"} and "weight_std" in plain.seen


@pytest.mark.parametrize("norm", ["evonorm", "frn", "evonorm_b0"])
def test_self_activated_norms_in_every_analysis_pass(norm):
    """Summary (empty-batch walk), skips (empty-batch probes) and both MAC engines run EvoNorm / FRN."""
    from resnet_cli.analysis.flops import count_macs
    from resnet_cli.analysis.stages import encoder_stages

    text = f"resnetv2_50d(norm={norm}, layers=1-1-1-1)"
    model = meta_model(text)
    fv, th = (count_macs(model, (2, 3, 64, 64), "all", e) for e in ("fvcore", "torch"))
    assert fv.macs == th.macs and {k: v for k, v in fv.by_module.items() if v} == {
        k: v for k, v in th.by_module.items() if v}
    assert [s.module for s in encoder_stages(text, 97).stages][1:3] == ["stem.conv3", "stem.pool"]
    result = runner.invoke(app, ["summary", text, "--size", "96", "--depth", "1", "--format", "json"])
    assert result.exit_code == 0, result.output


def test_reference_resnetv2_state_dicts_are_identified():
    """The keys and shapes of timm's own ResNetV2 nets (timm_resnets_more.json): EvoNorm's ``v``, FRN's
    ``tau``, GroupNorm without running statistics, BiT's plain-looking conv keys."""
    from conftest import load_reference
    from resnet_cli.analysis.checkpoint import compare, expected_shapes, identify, num_params

    refs = {n: r for n, r in load_reference("timm_more")["models"].items() if n.startswith("resnetv2_")}
    assert len(refs) >= 5
    for name, ref in refs.items():
        shapes = {k: tuple(v) for k, v in ref["state_dict"].items()}
        ident = identify(shapes)
        assert ident.matches == (name,) and ident.variant == name, name
        assert compare(shapes, expected_shapes(ident.spec)) == ((), (), ())
        assert num_params(shapes) == ref["num_params"]
    assert "conv (plain or std)" in identify({k: tuple(v) for k, v in refs["resnetv2_50x1_bit"]["state_dict"].items()}
                                             ).undetermined


def test_wide_bit_state_dict_is_identified_through_its_widths():
    from resnet_cli.analysis.checkpoint import expected_shapes, identify
    from resnet_cli.models import VARIANTS

    ident = identify(expected_shapes(VARIANTS["resnetv2_101x3_bit"].spec.replace(num_classes=10)))
    assert ident.matches == ("resnetv2_101x3_bit",) and ident.variant == "resnetv2_101x3_bit(num_classes=10)"
    assert ident.spec.wide_factor == 3 and ident.spec.conv == "std"


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_v2 = st.fixed_dictionaries({
    "block": st.sampled_from(["basic", "bottleneck"]), "layers": st.lists(st.integers(1, 2), min_size=1, max_size=3),
    "stem": st.sampled_from(["7x7", "deep", "tiered", "3x3"]), "stem_pool": st.sampled_from(["max", "none", "fixed", "same"]),
    "norm": st.sampled_from(["batchnorm", "groupnorm", "evonorm", "frn", "evonorm_b0"]), "conv": st.sampled_from(["plain", "std"]),
    "wide_factor": st.integers(1, 2), "shortcut": st.sampled_from(["conv", "avgpool"]),
    "side": st.integers(17, 70),
})


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_v2)
def test_fuzz_v2_specs_round_trip_build_and_take_empty_batches(kw):
    """Any accepted pre-activation spec with the v2 keys parses back from its string, runs on meta at
    batch 2 and on an empty CPU batch (the analysis passes) with the same output shape."""
    from resnet_cli.analysis.trace import empty_cpu_copy

    side = kw.pop("side")
    widths = "-".join(str(32 * 2 ** i) for i in range(len(kw["layers"])))
    items = {**kw, "layers": "-".join(map(str, kw["layers"])), "widths": widths, "stem_width": 32, "preact": "true",
             "num_classes": 3}
    try:
        spec = get_spec("resnet(" + ", ".join(f"{k}={v}" for k, v in items.items()) + ")")
    except UsageError as err:  # e.g. a tiered stem's 24 channels under a 32-group norm: refused, one line
        assert "\n" not in str(err) and kw["norm"] in ("groupnorm", "evonorm")
        return
    assert get_spec(spec.to_string()) == spec
    model = meta_model(spec)
    meta_out = model.eval()(torch.empty(2, 3, side, side, device="meta"))
    with torch.no_grad():
        empty_out = empty_cpu_copy(model).eval()(torch.empty(0, 3, side, side))
    assert tuple(meta_out.shape) == (2, 3) and tuple(empty_out.shape) == (0, 3)


def test_evonorm_b0_matches_its_definition():
    """EvoNorm-B0 (Liu et al. 2020; timm EvoNorm2dB0, eps 1e-3): eval mode divides by the larger of the
    running batch std and v*x + instance std; training updates running_var with the unbiased batch
    variance at momentum 0.1; an empty training batch leaves it. (Its whole network, resnetv2_50d with
    timm's EvoNorm2dB0, was checked against timm's float64 fingerprint outside this repository.)"""
    from resnet_cli.models.layers import EvoNorm2dB0

    torch.manual_seed(0)
    norm = EvoNorm2dB0(4).double()
    with torch.no_grad():
        norm.v.uniform_(0.5, 1.5), norm.weight.uniform_(0.5, 1.5), norm.bias.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
    x = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    shape = (1, -1, 1, 1)
    left = (norm.running_var + 1e-3).sqrt().view(shape)
    # the instance std in float32, as timm computes it (x.float().var), whatever the input dtype
    right = x * norm.v.view(shape) + (x.float().var(dim=(2, 3), unbiased=False, keepdim=True) + 1e-3).sqrt().double()
    expected = x / torch.maximum(left, right) * norm.weight.view(shape) + norm.bias.view(shape)
    assert torch.allclose(norm.eval()(x), expected, rtol=1e-12, atol=1e-12)
    before = norm.running_var.clone()
    norm.train()(x)
    n = 3 * 5 * 5
    assert torch.allclose(norm.running_var, 0.9 * before + 0.1 * x.var(dim=(0, 2, 3), unbiased=False) * n / (n - 1))
    after = norm.running_var.clone()
    assert norm(torch.empty(0, 4, 5, 5, dtype=torch.float64)).shape == (0, 4, 5, 5)
    assert torch.equal(norm.running_var, after)


def test_fvcore_sees_the_convolution_after_the_standardisation_on_a_real_batch():
    """On a real (non-empty) batch, fvcore's jit trace of a StdConv2d holds aten::batch_norm over the
    weight, then aten::_convolution on the standardised weight: the conv counts as a conv."""
    import warnings

    from resnet_cli.models.layers import StdConv2d

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

        conv = StdConv2d(8, 16, 3, padding=1, bias=False)
        analysis = FlopCountAnalysis(conv, torch.zeros(1, 8, 10, 10)).unsupported_ops_warnings(False)
        by_op = analysis.by_operator()
    assert by_op["conv"] == 16 * 8 * 9 * 10 * 10 and by_op["batch_norm"] > 0

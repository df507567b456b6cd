"""Spec keys that only act together with another setting: refused when they would be ignored, never
silently kept in the spec string; registry variants keep building and round-tripping."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from resnet_cli.cli import app
from resnet_cli.errors import UsageError
from resnet_cli.models import get_spec
from resnet_cli.models.parse import resolve
from resnet_cli.models.registry import VARIANTS
from resnet_cli.models.spec import FIELD_DEFAULTS, inert_settings

runner = CliRunner()


def _fields(spec) -> dict:
    return {key: getattr(spec, key) for key in FIELD_DEFAULTS}


@pytest.mark.parametrize("text, key, needs, now", [
    ("resnet(se_ratio=0.5)", "se_ratio=0.5", "attn=se", "attn=none"),
    ("resnet(attn=eca, se_ratio=0.5)", "se_ratio=0.5", "attn=se", "attn=eca"),
    ("resnet(conv_eps=1e-8)", "conv_eps=1e-08", "conv=std", "conv=plain"),
    ("resnet(stride_in_1x1=true, block=basic)", "stride_in_1x1=true", "block=bottleneck", "block=basic"),
    ("resnet(depth=18, stride_in_1x1=true)", "stride_in_1x1=true", "block=bottleneck", "block=basic"),
    ("resnet(down_kernel_size=3, shortcut=pad)", "down_kernel_size=3", "shortcut=conv", "shortcut=pad"),
    ("resnet(down_kernel_size=3, shortcut=avgpool)", "down_kernel_size=3", "shortcut=conv", "shortcut=avgpool"),
    ("resnet(layers=3, aa=blur)", "aa=blur", "a stage that strides", "layers=3"),
    ("resnet(layers=3-4, dilate=1, aa=avgpool)", "aa=avgpool", "a stage that strides", "layers=3-4 and dilate=1"),
    ("ecaresnet50d_pruned(reduce_first=2)", "reduce_first=2", "the width rule, not block_widths", "block_widths given"),
    ("ecaresnet50d_pruned(width_per_group=128)", "width_per_group=128", "the width rule, not block_widths", "block_widths given"),
])
def test_an_inert_key_is_a_usage_error_naming_both_keys(text, key, needs, now):
    result = runner.invoke(app, ["summary", text])
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line.startswith("resnet-cli: error: ") and "\n" not in line
    assert f"{key} needs {needs}" in line and f"with {now} it would be ignored" in line


@pytest.mark.parametrize("text", [
    "resnet(attn=none, se_ratio=0.0625)",         # explicit default values: harmless, and what the net does
    "resnet(block=basic, stride_in_1x1=false)",
    "resnet(shortcut=pad, down_kernel_size=1)",
    "resnet(conv_eps=1e-6)",
    "resnet(attn=se, se_ratio=0.5)",               # and every key with what makes it act
    "resnet(depth=50, preact=true, conv=std, conv_eps=1e-8)",
    "resnet(depth=50, stride_in_1x1=true)",
    "resnet(shortcut=conv, down_kernel_size=3)",
    "resnet(reduce_first=2)",
    "resnet(depth=18, output_stride=8, aa=blur)",   # stage 2 still strides
])
def test_a_key_that_acts_or_sits_at_its_default_is_accepted(text):
    spec = get_spec(text)
    assert inert_settings(_fields(spec)) == []


def test_se_ratio_changes_the_network_once_attn_is_se():
    # the new user's case: resnet(se_ratio=0.5) stayed at 25,557,032 parameters (no SE block at all)
    import torch

    from resnet_cli.models import build_model

    def params(text):
        with torch.device("meta"):
            return sum(p.numel() for p in build_model(text).parameters())

    assert params("resnet(attn=se, se_ratio=0.5)") > params("resnet(attn=se)") > params("resnet")


@pytest.mark.parametrize("text, key", [
    ("resnetrs50(attn=none)", "se_ratio"),           # resnetrs50's se_ratio=0.25 has no SE block left
    ("resnetrs50(attn=eca)", "se_ratio"),
    ("senet154(shortcut=avgpool)", "down_kernel_size"),  # senet154's 3x3 conv shortcut is gone
    ("resnet50_v1(depth=18)", "stride_in_1x1"),      # basic blocks: no 1x1 to stride
    ("resnetv2_50x1_bit(conv=plain)", "conv_eps"),
    ("resnetblur50(layers=3)", "aa"),                  # one stage: no strided block conv left
])
def test_a_setting_inherited_from_the_variant_goes_back_to_its_default(text, key):
    spec = get_spec(text)
    assert getattr(spec, key) == FIELD_DEFAULTS[key]
    assert f"{key}=" not in spec.to_string()
    assert get_spec(spec.to_string()) == spec.replace(naming="timm")


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_registry_spec_round_trips_and_has_no_inert_key(name):
    spec = VARIANTS[name].spec
    assert inert_settings(_fields(spec)) == []
    assert get_spec(spec.to_string()) == spec.replace(naming="timm")


_conditional = st.fixed_dictionaries({}, optional={
    "attn": st.sampled_from(["none", "se", "eca"]),
    "se_ratio": st.sampled_from(["0.0625", "0.25", "0.5", "1"]),
    "preact": st.sampled_from(["true", "false"]),
    "conv": st.sampled_from(["plain", "std"]),
    "conv_eps": st.sampled_from(["1e-6", "1e-8", "1e-5"]),
    "block": st.sampled_from(["basic", "bottleneck"]),
    "stride_in_1x1": st.sampled_from(["true", "false"]),
    "shortcut": st.sampled_from(["conv", "avgpool", "pad"]),
    "down_kernel_size": st.sampled_from(["1", "3"]),
    "reduce_first": st.sampled_from(["1", "2"]),
    "aa": st.sampled_from(["none", "blur", "avgpool"]),
    "layers": st.sampled_from(["1", "1-1", "3-4-6-3"]),
    "dilate": st.sampled_from(["1", "0", "1-1-1"]),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_conditional, st.sampled_from(["resnet", "resnetrs50", "senet154", "resnet50_v1", "resnetv2_50x1_bit"]))
def test_a_spec_never_keeps_a_key_without_effect(items, base):
    """The general rule: whatever is written, either the spec is refused (exit 2), naming a written key that
    would be ignored, or no key of the resulting spec differs from its default without acting."""
    text = f"{base}(" + ", ".join(f"{k}={v}" for k, v in items.items()) + ")"
    try:
        spec = resolve(text)[1]
    except UsageError as err:
        message = str(err)
        if "it would be ignored" in message:
            key = message.split("=", 1)[0]
            assert key in items, message  # only a key the user wrote is refused as inert
        return
    assert inert_settings(_fields(spec)) == []
    assert get_spec(spec.to_string()) == spec.replace(naming="timm")


# --------------------------------------------------------------------------- wide_factor (README F7)
def _meta(text):
    import torch

    from resnet_cli.models import build_model

    with torch.device("meta"):
        return build_model(text)


def test_wide_factor_multiplies_the_written_widths_and_stem_width_as_timm_width_factor():
    """timm ResNetV2: ``stem_chs = make_divisible(stem_chs * wf)``, ``out_chs = make_divisible(c * wf)``
    (timm 1.0.31 resnetv2.py); ``ResNetV2(stem_chs=32, width_factor=2)`` has a 64-channel stem."""
    model = _meta("resnet(wide_factor=2, widths=32-64-128-256, stem_width=32)")
    assert model.conv1.weight.shape[0] == 32 * 2
    assert model.layer1[0].conv3.weight.shape[0] == 32 * 4 * 2
    assert model.layer4[0].conv3.weight.shape[0] == 256 * 4 * 2
    spec = get_spec("resnet(wide_factor=2, widths=32-64-128-256, stem_width=32)")
    assert spec.to_string() == "resnet(widths=32-64-128-256, stem_width=32, wide_factor=2)"  # as written


def test_torchvision_wide_resnet_widens_the_bottleneck_only():
    """torchvision's wide_resnet50_2 is width_per_group=128: the stem stays 64 channels."""
    from conftest import load_reference

    ref = load_reference("torchvision")["models"]["wide_resnet50_2"]
    model = _meta("wide_resnet50_2")
    assert list(model.conv1.weight.shape) == ref["state_dict"]["conv1.weight"] == [64, 3, 7, 7]
    assert sum(p.numel() for p in model.parameters()) == ref["num_params"] == 68_883_240
    assert get_spec("wide_resnet50_2").wide_factor == 1


@pytest.mark.parametrize("text, fragment", [
    ("resnet(groups=32, block=basic)", "groups=32 needs block=bottleneck"),
    ("test_resnet(width=128)", "width_per_group=128 needs bottleneck blocks in every stage"),
])
def test_groups_on_basic_blocks_names_the_value_and_the_block_setting(text, fragment):
    result = runner.invoke(app, ["summary", text])
    assert result.exit_code == 2 and fragment in result.stderr

"""Variant names and the custom spec grammar: resolution, errors, and fuzzing (hypothesis)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from resnet_cli.errors import UsageError
from resnet_cli.models import build_model, get_spec, parse_size, resolve
from resnet_cli.models.parse import ALLOWED_KEYS
from resnet_cli.models.spec import AAS, ATTNS, BLOCKS, NORMS, SHORTCUTS, STEM_POOLS, STEMS


def test_issue_example_spec():
    name, spec = resolve("resnet(block=bottleneck, layers=3-4-23-3, groups=32, width=8, stem=deep, "
                         "shortcut=avgpool, attn=se, in_chans=1, num_classes=10)")
    assert (spec.block, spec.layers, spec.groups, spec.width_per_group) == ("bottleneck", (3, 4, 23, 3), 32, 8)
    assert (spec.stem, spec.shortcut, spec.attn, spec.in_chans, spec.num_classes) == ("deep", "avgpool", "se", 1, 10)
    assert spec.input_size == (1, 224, 224)
    assert name.startswith("resnet(")


def test_variant_with_overrides_and_cli_overrides():
    spec = get_spec("resnet50d(in_chans=1, num_classes=5)")
    assert (spec.stem, spec.shortcut, spec.in_chans, spec.num_classes) == ("deep", "avgpool", 1, 5)
    assert get_spec("resnet34", in_chans=4, num_classes=None).in_chans == 4


def test_depth_and_output_stride_shorthands():
    spec = get_spec("resnet(depth=101, output_stride=16, size=320x256)")
    assert spec.layers == (3, 4, 23, 3) and spec.dilate == (False, False, True)
    assert spec.input_size == (3, 320, 256) and spec.output_stride == 16
    assert get_spec("resnet18(output_stride=8)").dilate == (False, True, True)


def test_three_stage_layers_get_matching_widths():
    spec = get_spec("resnet(block=basic, layers=2-2-2, widths=16-32-64, stem=3x3, stem_width=16, stem_pool=none)")
    assert spec.stage_channels == (16, 32, 64) and spec.output_stride == 4


@pytest.mark.parametrize("name", ["resnet34", "resnet50d", "resnet20", "resnetv2_50t", "seresnext26d_32x4d",
                                  "resnetrs50", "resnet(depth=26, attn=eca, in_chans=1, num_classes=10)"])
def test_to_string_round_trips(name):
    spec = get_spec(name)
    assert get_spec(spec.to_string()) == spec.replace(naming="timm")


@pytest.mark.parametrize("text, fragment", [
    ("resnet5", "resnet50"),
    ("resnet(blok=basic)", "did you mean block"),
    ("resnet(block=tiny)", "basic, bottleneck"),
    ("resnet(layers=3-x-6)", "integers joined by '-'"),
    ("resnet(layers=0-1)", "at least 1 block"),
    ("resnet(groups=32, block=basic)", "bottleneck blocks only"),
    ("resnet(depth=51)", "18, 26, 34, 50"),
    ("resnet(output_stride=12)", "8, 16, 32"),
    ("resnet(norm=groupnorm, widths=8-16-32-64)", "multiple of 32"),
    ("resnet(stem)", "no '='"),
    ("resnet(se_ratio=nan)", "finite"),
    ("", "empty variant name"),
    ("resnet50(", "cannot read"),
    ("resnet(depth=18))", "unbalanced"),
    ("resnet(depth=18, layers=3-3)", "conflicts with depth=18"),
    ("resnet(depth=18, depth=34)", "give each setting once"),
    ("resnet(width=8, width_per_group=4)", "conflicts with width=8"),
])
def test_bad_specs_name_the_problem(text, fragment):
    with pytest.raises(UsageError) as err:
        resolve(text)
    assert fragment in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("text, expected", [("224", (224, 224)), ("256x192", (256, 192)), (" 32X48 ", (32, 48))])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["224x", "0", "-1", "abc", "3x224x224", "", "x", "2.5", "٣"])
def test_parse_size_rejects(text):
    with pytest.raises(UsageError):
        parse_size(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_fuzz_any_text_gives_spec_or_usage_error(text):
    try:
        resolve(text)
    except UsageError as err:
        assert str(err) and str(err).isprintable()


_value = st.one_of(st.integers(-5, 3000).map(str), st.sampled_from(
    [*BLOCKS, *STEMS, *STEM_POOLS, *SHORTCUTS, *ATTNS, *NORMS, *AAS, "true", "false", "3-4-6-3", "0-1-1",
     "1-1", "0.25", "nan", "inf", "1e-9", "64x64", "", "x", "=", ")"]), st.text(max_size=8))
_item = st.tuples(st.sampled_from([*ALLOWED_KEYS, "bogus", "LAYERS", ""]), _value)


@settings(max_examples=300, deadline=None)
@given(st.lists(_item, max_size=6))
@example([("aa", "0"), ("aa", "0\n0")])  # found by hypothesis: the conflict message carried the raw newline
@example([("num_classes", "1000000000000000000000000000000")])  # overflowed torch.empty in a summary
def test_fuzz_structured_specs(items):
    text = "resnet(" + ", ".join(f"{k}={v}" for k, v in items) + ")"
    try:
        spec = resolve(text)[1]
    except UsageError as err:
        assert str(err) and str(err).isprintable()
        return
    assert get_spec(spec.to_string()) == spec.replace(naming="timm")


_small = st.fixed_dictionaries({
    "block": st.sampled_from(BLOCKS), "layers": st.lists(st.integers(1, 2), min_size=1, max_size=4),
    "stem": st.sampled_from(STEMS), "stem_pool": st.sampled_from(STEM_POOLS),
    "shortcut": st.sampled_from(SHORTCUTS), "attn": st.sampled_from(ATTNS), "aa": st.sampled_from(AAS),
    "preact": st.booleans(), "in_chans": st.integers(1, 4), "num_classes": st.integers(0, 7),
    "output_stride": st.sampled_from([None, 8, 16]),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_small)
def test_fuzz_every_accepted_spec_builds_and_runs(kw):
    widths = "-".join(str(8 * 2 ** i) for i in range(len(kw["layers"])))
    items = {**kw, "layers": "-".join(map(str, kw["layers"])), "widths": widths, "stem_width": 8}
    text = "resnet(" + ", ".join(f"{k}={str(v).lower()}" for k, v in items.items() if v is not None) + ")"
    try:
        spec = get_spec(text)
    except UsageError:
        return
    with torch.device("meta"):
        model = build_model(spec)
    out = model.eval()(torch.empty(1, spec.in_chans, 64, 64, device="meta"))
    assert out.shape[0] == 1 and out.shape[1] == (spec.num_classes or model.num_features)

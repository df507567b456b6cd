"""Identifying a ResNet from its state_dict ({key: shape}): every variant round trip, the real
libraries' key layouts (tests/reference), custom specs, and corruptions. No files here."""

from __future__ import annotations

import pytest

from conftest import load_reference, variant_names
from resnet_cli.analysis.checkpoint import compare, derive_spec, expected_shapes, identify, num_params
from resnet_cli.models import VARIANTS, resolve

# timm_resnets_more.json: its resnetv2_* names are the timmv2 branch's.
MORE = {n: r for n, r in load_reference("timm_more")["models"].items() if not n.startswith("resnetv2_")}
REFERENCE = {**load_reference("torchvision")["models"], **load_reference("timm")["models"], **MORE}
WITH_STATE_DICT = sorted(n for n, r in REFERENCE.items() if "state_dict" in r)

# Variants whose state_dicts are the same key for key and shape for shape: anti-aliasing (blur pool
# or 2x2 average pool after the strided conv) has no parameters, nor has the place of a bottleneck's
# stride (v1 on the 1x1, v1.5 on the 3x3).
SAME_STATE_DICT = [{"resnet50", "resnetblur50", "resnetaa50", "resnet50_v1"}, {"resnet101", "resnet101_v1"},
                   {"resnet152", "resnet152_v1"}, {"resnet18", "resnetblur18"}, {"resnet34d", "resnetaa34d"},
                   {"resnet50d", "resnetaa50d", "resnetblur50d"}, {"resnet101d", "resnetaa101d", "resnetblur101d"},
                   {"seresnext101d_32x8d", "seresnextaa101d_32x8d"}]
PLAIN = {"resnet50", "resnet101", "resnet152", "resnet18", "resnet34d", "resnet50d", "resnet101d",
         "seresnext101d_32x8d"}


def group_of(name: str) -> set[str]:
    return next((g for g in SAME_STATE_DICT if name in g), {name})


@pytest.mark.parametrize("name", variant_names())
def test_every_variant_is_identified_from_its_own_state_dict(name):
    shapes = expected_shapes(VARIANTS[name].spec)
    ident = identify(shapes)
    assert ident.reason is None
    assert set(ident.matches) == group_of(name)
    # the preferred name of an ambiguous set is the plain network (no anti-aliasing)
    assert ident.variant == (sorted(group_of(name) & PLAIN) or [name])[0]
    assert compare(shapes, expected_shapes(ident.spec)) == ((), (), ())


def test_the_ambiguous_sets_are_exactly_the_networks_without_extra_parameters():
    names = variant_names()
    groups = {frozenset(identify(expected_shapes(VARIANTS[n].spec)).matches) for n in names}
    assert {g for g in groups if len(g) > 1} == {frozenset(g) for g in SAME_STATE_DICT}


@pytest.mark.parametrize("name", WITH_STATE_DICT)
def test_reference_library_state_dicts_are_identified(name):
    """The key names and shapes of torchvision's and timm's own models."""
    shapes = {k: tuple(v) for k, v in REFERENCE[name]["state_dict"].items()}
    ident = identify(shapes)
    assert name in ident.matches
    assert compare(shapes, expected_shapes(ident.spec)) == ((), (), ())
    assert num_params(shapes) == REFERENCE[name]["num_params"]


CUSTOM = [
    "resnet(depth=26, attn=eca, in_chans=1, num_classes=10)",
    "resnet(block=basic, layers=1-2, widths=8-16, stem=3x3, stem_width=8, stem_pool=none, shortcut=pad, "
    "num_classes=0)",
    "resnet(depth=14, widths=16-32-64-128, groups=4, width_per_group=16, stem=tiered, stem_width=16, "
    "shortcut=avgpool, attn=se, se_ratio=0.25, num_classes=5)",
    "resnet(depth=18, preact=true, widths=16-32-64-128, num_classes=7)",
    "resnet(depth=26, widths=32-64-128-256, norm=groupnorm, stem=deep, stem_width=32, num_classes=3)",
    "resnet(depth=14, widths=16-32-64-128, stem=deep, stem_width=16, stem_pool=conv, shortcut=avgpool, "
    "attn=se, se_ratio=0.125, in_chans=4, num_classes=2)",
]


@pytest.mark.parametrize("text", CUSTOM)
def test_custom_specs_round_trip_through_their_spec_string(text):
    spec = resolve(text)[1]
    shapes = expected_shapes(spec)
    ident = identify(shapes)
    assert ident.matches == ()
    assert ident.variant == ident.spec.to_string()
    again = resolve(ident.variant)[1]
    assert compare(shapes, expected_shapes(again)) == ((), (), ())
    for field in ("block", "layers", "widths", "groups", "stem", "stem_width", "shortcut", "attn", "norm",
                  "preact", "in_chans", "num_classes"):
        assert getattr(again, field) == getattr(spec, field), field


def test_custom_spec_parses_back_to_the_same_spec():
    spec = resolve(CUSTOM[0])[1]
    assert resolve(identify(expected_shapes(spec)).variant)[1] == spec


def test_input_channels_and_classes_are_overrides_of_the_variant():
    spec = VARIANTS["resnet50d"].spec.replace(in_chans=1, num_classes=10)
    ident = identify(expected_shapes(spec))
    assert set(ident.matches) == {"resnet50d", "resnetaa50d", "resnetblur50d"}
    assert ident.variant == "resnet50d(in_chans=1, num_classes=10)"
    assert ident.spec == spec


def test_derived_fields_of_a_resnext():
    spec, undetermined = derive_spec(expected_shapes(VARIANTS["seresnext26d_32x4d"].spec))
    assert (spec.block, spec.layers, spec.groups, spec.width_per_group) == ("bottleneck", (2, 2, 2, 2), 32, 4)
    assert (spec.stem, spec.stem_width, spec.shortcut) == ("deep", 32, "avgpool")
    assert (spec.attn, spec.se_ratio) == ("se", 1 / 16)
    assert {"aa", "dilate", "stem_pool (max or none)"} <= set(undetermined)


def _corrupt(name, drop=(), add=None, reshape=None):
    shapes = dict(expected_shapes(VARIANTS[name].spec))
    for key in drop:
        del shapes[key]
    shapes.update(add or {})
    shapes.update(reshape or {})
    ident = identify(shapes)
    return ident, compare(shapes, expected_shapes(ident.spec))


def test_a_removed_key_is_reported_missing_against_the_variant():
    ident, (missing, unexpected, mismatched) = _corrupt("resnet18", drop=["layer2.0.conv1.weight"])
    assert ident.matches == ("resnet18", "resnetblur18")
    assert (missing, unexpected, mismatched) == (("layer2.0.conv1.weight",), (), ())


def test_an_extra_key_is_reported_unexpected():
    ident, diff = _corrupt("seresnet50", add={"layer1.0.se.extra.weight": (3,)})
    assert ident.matches == ("seresnet50",)
    assert diff == ((), ("layer1.0.se.extra.weight",), ())


def test_a_changed_shape_is_outvoted_and_reported():
    # one 3x3 conv of a ResNeXt loses its groups: the other blocks still say 32 groups
    ident, (missing, unexpected, mismatched) = _corrupt("resnext50_32x4d",
                                                        reshape={"layer2.1.conv2.weight": (256, 256, 3, 3)})
    assert ident.matches == ("resnext50_32x4d",)
    assert (missing, unexpected) == ((), ())
    assert [(m.key, m.checkpoint, m.expected) for m in mismatched] == [
        ("layer2.1.conv2.weight", (256, 256, 3, 3), (256, 8, 3, 3))]


def test_missing_batchnorm_counters_are_not_reported():
    shapes = {k: s for k, s in expected_shapes(VARIANTS["resnet18"].spec).items()
              if not k.endswith("num_batches_tracked")}
    ident = identify(shapes)
    assert ident.matches == ("resnet18", "resnetblur18")
    assert compare(shapes, expected_shapes(ident.spec)) == ((), (), ())


@pytest.mark.parametrize("shapes, reason", [
    ({"encoder.weight": (3, 3)}, "no stage keys"),
    ({"conv1.weight": (64, 3, 5, 5), "layer1.0.conv1.weight": (64, 64, 3, 3)}, "no stem convolution"),
    ({"conv1.weight": (64, 3, 7, 7), "layer1.0.conv1.weight": (64, 64, 3, 3),
      "layer3.0.conv1.weight": (64, 64, 3, 3)}, "not numbered"),
])
def test_what_is_not_a_resnet_says_why(shapes, reason):
    ident = identify(shapes)
    assert ident.spec is None and ident.matches == ()
    assert reason in ident.reason


from hypothesis import HealthCheck, assume, given, settings, strategies as st  # noqa: E402

from resnet_cli.errors import UsageError  # noqa: E402


@st.composite
def small_specs(draw):
    stages = draw(st.integers(1, 4))
    fields = dict(
        block=draw(st.sampled_from(["basic", "bottleneck"])),
        layers=tuple(draw(st.lists(st.integers(1, 2), min_size=stages, max_size=stages))),
        widths=tuple(draw(st.lists(st.sampled_from([8, 16, 32, 48, 64]), min_size=stages, max_size=stages))),
        stem=draw(st.sampled_from(["7x7", "deep", "tiered", "3x3"])),
        stem_width=draw(st.sampled_from([8, 16, 32, 64])),
        stem_pool=draw(st.sampled_from(["max", "conv", "none"])),
        shortcut=draw(st.sampled_from(["conv", "avgpool", "pad"])),
        attn=draw(st.sampled_from(["none", "se", "eca"])),
        se_ratio=draw(st.sampled_from([1 / 16, 0.25, 0.5])),
        norm=draw(st.sampled_from(["batchnorm", "groupnorm"])),
        preact=draw(st.booleans()),
        in_chans=draw(st.integers(1, 4)),
        num_classes=draw(st.integers(0, 12)),
    )
    if fields["block"] == "bottleneck":
        fields["groups"] = draw(st.sampled_from([1, 2, 4]))
        fields["width_per_group"] = draw(st.sampled_from([16, 32, 64, 128]))
    if not fields["preact"]:  # the post-activation keys of ResNet v1, Keras, SENet-154 and timm's test_resnet
        fields["conv_bias"] = draw(st.booleans())
        fields["reduce_first"] = draw(st.sampled_from([1, 1, 2]))
        fields["down_kernel_size"] = 3 if fields["shortcut"] == "conv" and draw(st.booleans()) else 1
        if draw(st.booleans()):
            fields["stage_blocks"] = tuple(draw(st.lists(st.sampled_from(["basic", "bottleneck"]),
                                                         min_size=stages, max_size=stages)))
    try:
        return resolve("resnet")[1].replace(**fields)
    except UsageError:
        assume(False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(small_specs())
def test_any_buildable_spec_is_identified_key_for_key(spec):
    shapes = expected_shapes(spec)
    ident = identify(shapes)
    assert ident.reason is None
    assert compare(shapes, expected_shapes(ident.spec)) == ((), (), ())
    assert (ident.spec.in_chans, ident.spec.num_classes) == (spec.in_chans, spec.num_classes)

"""What the help and the error messages say matches what the commands accept."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from resnet_cli.cli import app
from resnet_cli.errors import UsageError
from resnet_cli.models.parse import ALLOWED_KEYS, resolve
from resnet_cli.models.unet_spec import ALLOWED_KEYS as UNET_KEYS

runner = CliRunner()


def test_compare_takes_one_variant_and_its_help_says_so():
    help_text = runner.invoke(app, ["compare", "--help"], env={"COLUMNS": "200"}).stdout
    assert "One or more variants" in help_text and "Two or more" not in help_text
    result = runner.invoke(app, ["compare", "resnet18", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [row["variant"] for row in json.loads(result.stdout)["variants"]] == ["resnet18"]


def test_compare_with_no_variant_is_a_usage_error():
    assert runner.invoke(app, ["compare"]).exit_code == 2


# --------------------------------------------------------------------------- F9: messages name what was typed


def test_num_classes_0_on_a_unet_names_the_flag():
    result = runner.invoke(app, ["summary", "unet(encoder=resnet18)", "--num-classes", "0"])
    assert result.exit_code == 2
    assert "--num-classes 0" in result.stderr and "1 to 16384" in result.stderr


def test_a_missing_comma_is_named():
    result = runner.invoke(app, ["summary", "resnet(depth=18 layers=2-2-2-2)"])
    assert result.exit_code == 2
    assert "a comma is missing between depth=18 and layers=2-2-2-2" in result.stderr
    assert "must be an integer" not in result.stderr


_RESNET_ITEMS = [("depth", "18"), ("layers", "2-2-2-2"), ("attn", "se"), ("stem", "deep"), ("in_chans", "1"),
                 ("num_classes", "10"), ("size", "160"), ("shortcut", "avgpool"), ("cardinality", "32")]
_UNET_ITEMS = [("encoder", "resnet18"), ("encoder", "resnet(depth=18, stem=deep)"), ("classes", "3"),
               ("depth", "4"), ("attention", "scse"), ("decoder", "upsample"), ("size", "256")]
_space = st.text(alphabet=" \t", min_size=1, max_size=3)


_pairs = st.one_of(
    st.tuples(st.just("resnet"), st.sampled_from(_RESNET_ITEMS), st.sampled_from(_RESNET_ITEMS)),
    st.tuples(st.just("unet"), st.sampled_from(_UNET_ITEMS), st.sampled_from(_UNET_ITEMS)))


@settings(max_examples=60, deadline=None)
@given(_pairs, _space, st.lists(st.sampled_from(_RESNET_ITEMS), max_size=2))
def test_two_items_without_a_comma_always_say_so(pair, space, before):
    """The rule: ``key=value`` then whitespace then ``key=value`` (outside parentheses) is a missing
    comma, in the resnet(...) and the unet(...) grammars, whatever the keys and the items before."""
    base, first, second = pair
    lead = "".join(f"{k}={v}, " for k, v in before) if base == "resnet" else ""
    text = f"{base}({lead}{first[0]}={first[1]}{space}{second[0]}={second[1]})"
    with pytest.raises(UsageError, match="a comma is missing between"):
        resolve(text)


def test_a_nested_spec_keeps_its_commas():
    assert resolve("unet(encoder=resnet(depth=18, stem=deep), classes=3)")[1].classes == 3


def test_unet_key_list_includes_its_aliases_as_the_resnet_list_does():
    for alias, keys in (("encoder_name", UNET_KEYS), ("num_classes", UNET_KEYS), ("cardinality", ALLOWED_KEYS)):
        assert alias in keys
    result = runner.invoke(app, ["summary", "unet(encoder=resnet18, colour=red)"])
    assert result.exit_code == 2
    for key in ("encoder_name", "num_classes", "encoder_depth", "decoder_attention_type", "in_channels"):
        assert key in result.stderr

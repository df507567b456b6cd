"""``--weights``: ``cli.common.load_network`` with a checkpoint, identified or checked against a VARIANT,
strict and not, and through a command (``skips --weights``)."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from resnet_cli.analysis.checkpoint import expected_shapes
from resnet_cli.cli import app
from resnet_cli.cli.common import load_network
from resnet_cli.errors import RuntimeFailure, UsageError
from resnet_cli.models import VARIANTS, build_model

runner = CliRunner()


def zeros_state(name, **overrides) -> dict:
    """A state_dict of zeros with the shapes of a variant (fast: no initialisation)."""
    spec = VARIANTS[name].spec.replace(**overrides) if overrides else VARIANTS[name].spec
    return {k: torch.zeros(s, dtype=torch.long if k.endswith("num_batches_tracked") else torch.float32)
            for k, s in expected_shapes(spec).items()}


@pytest.fixture
def r20(tmp_path):
    path = tmp_path / "r20.safetensors"
    save_file(zeros_state("resnet20"), str(path))
    return str(path)


def test_identified_weights_load_strictly_into_the_built_model(r20, capsys):
    name, spec, state = load_network(None, r20)
    assert (name, spec) == ("resnet20", VARIANTS["resnet20"].spec)
    model = build_model(spec)
    model.load_state_dict(state, strict=True)
    assert not any(p.detach().any() for p in model.parameters())  # the zeros did load
    assert f"{r20} holds resnet20" in capsys.readouterr().err


def test_input_channels_and_classes_come_from_the_file(tmp_path):
    path = tmp_path / "gray.pth"
    torch.save({"model": {"module." + k: v for k, v in zeros_state("resnet20", in_chans=1, num_classes=7).items()}},
               path)
    name, spec, state = load_network(None, str(path))
    assert name == "resnet20(in_chans=1, num_classes=7)"
    assert (spec.in_chans, spec.num_classes) == (1, 7)
    name, spec, _ = load_network("resnet20", str(path))  # a given VARIANT takes them from the file too
    assert (spec.in_chans, spec.num_classes) == (1, 7)
    build_model(spec).load_state_dict(state, strict=True)


@pytest.mark.parametrize("variant, in_chans, num_classes, words", [
    (None, 3, None, ["in_chans=3", "have in_chans=1", "--in-chans"]),
    ("resnet20", None, 10, ["num_classes=10", "have num_classes=7", "--num-classes"]),
    ("resnet20(in_chans=3)", None, None, ["in_chans=3", "have in_chans=1"]),
])
def test_options_that_disagree_with_the_file_are_usage_errors(tmp_path, variant, in_chans, num_classes, words):
    path = tmp_path / "gray.safetensors"
    save_file(zeros_state("resnet20", in_chans=1, num_classes=7), str(path))
    with pytest.raises(UsageError) as err:
        load_network(variant, str(path), in_chans=in_chans, num_classes=num_classes)
    assert "\n" not in str(err.value)
    for word in words:
        assert word in str(err.value)


def test_strict_mismatch_names_the_keys_and_the_identified_variant(r20):
    with pytest.raises(UsageError) as err:
        load_network("resnet32", r20)
    message = str(err.value)
    assert "do not fit resnet32" in message and "missing (layer1.3.conv1.weight" in message
    assert "the file holds resnet20" in message and "--no-strict" in message and "\n" not in message


def test_no_strict_loads_what_fits_and_lists_the_rest(tmp_path, capsys):
    state = zeros_state("resnet20")
    del state["layer2.0.conv1.weight"]
    state["layer1.0.extra.weight"] = torch.zeros(3)
    state["fc.bias"] = torch.zeros(5)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(UsageError, match="1 missing .*1 unexpected .*1 of another shape"):
        load_network(None, str(path))
    name, spec, loaded = load_network(None, str(path), strict=False)
    assert name == "resnet20"
    assert "layer2.0.conv1.weight" not in loaded and "layer1.0.extra.weight" not in loaded and "fc.bias" not in loaded
    model = build_model(spec)
    result = model.load_state_dict(loaded, strict=False)
    assert set(result.missing_keys) == {"layer2.0.conv1.weight", "fc.bias"} and not result.unexpected_keys
    err = capsys.readouterr().err
    for key in ("layer2.0.conv1.weight", "layer1.0.extra.weight", "fc.bias file 5 vs network 10"):
        assert key in err


def test_missing_batchnorm_counters_load_strictly(tmp_path):
    path = tmp_path / "timm_style.safetensors"
    save_file({k: v for k, v in zeros_state("resnet20").items() if not k.endswith("num_batches_tracked")}, str(path))
    _, spec, state = load_network(None, str(path))
    build_model(spec).load_state_dict(state, strict=True)


def test_an_ambiguous_file_uses_the_plain_network_and_says_which_others_fit(tmp_path, capsys):
    path = tmp_path / "r50.pth"
    torch.save({k: v[(0,) * v.dim()].expand(v.shape) if v.dim() else v
                for k, v in zeros_state("resnet50").items()}, path)
    name, spec, _ = load_network(None, str(path))
    assert name == "resnet50" and spec == VARIANTS["resnet50"].spec
    assert "cannot tell it from resnetblur50" in capsys.readouterr().err
    name, spec, _ = load_network("resnetblur50", str(path))  # choosing the other one is fine
    assert name == "resnetblur50" and spec.aa == "blur"


def test_an_unknown_layout_needs_a_variant(tmp_path):
    path = tmp_path / "mlp.safetensors"
    save_file({"fc1.weight": torch.zeros(4, 3)}, str(path))
    with pytest.raises(UsageError, match="cannot identify the network .*give VARIANT"):
        load_network(None, str(path))


def test_a_malicious_file_is_refused_by_the_loader_too(tmp_path):
    marker = tmp_path / "MARKER"

    class RunsShell:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": zeros_state("resnet20"), "x": RunsShell()}, path)
    with pytest.raises(RuntimeFailure, match="refused"):
        load_network("resnet20", str(path))
    assert not marker.exists()


def test_a_command_with_weights(r20, tmp_path):
    """Through the CLI: ``skips --weights`` identifies the network; a mismatch is exit 2, one line."""
    ok = runner.invoke(app, ["skips", "--weights", r20])
    assert ok.exit_code == 0, ok.stderr
    assert "resnet20" in ok.stdout and "holds resnet20" in ok.stderr
    bad = runner.invoke(app, ["skips", "resnet18", "--weights", r20])
    assert bad.exit_code == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "do not fit resnet18" in lines[0] and "Traceback" not in bad.stderr
    gone = runner.invoke(app, ["skips", "--weights", str(tmp_path / "nope.pth")])
    assert gone.exit_code == 1 and "does not exist" in gone.stderr

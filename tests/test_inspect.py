"""``resnet-cli inspect FILE``: checkpoints saved with torch.save and safetensors, wrappers and
prefixes, corruptions, unreadable files, and pickles that would run code (refused, nothing runs)."""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from conftest import load_reference
from resnet_cli.analysis.checkpoint import expected_shapes
from resnet_cli.cli import app
from resnet_cli.models import VARIANTS, resolve

runner = CliRunner()
TORCHVISION = load_reference("torchvision")["models"]
TIMM = load_reference("timm")["models"]


def zeros_state(name_or_spec, dtype=torch.float32) -> dict:
    """A state_dict of zeros with the shapes of a variant or spec (fast: no initialisation)."""
    spec = VARIANTS[name_or_spec].spec if isinstance(name_or_spec, str) else name_or_spec
    return {k: torch.zeros(s, dtype=torch.long if k.endswith("num_batches_tracked") else dtype)
            for k, s in expected_shapes(spec).items()}


def inspect_json(path) -> dict:
    result = runner.invoke(app, ["inspect", str(path), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def assert_one_line_failure(result, code: int, *words: str) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("resnet-cli: error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    for word in words:
        assert word in lines[0]
    return lines[0]


def test_torchvision_resnet18_saved_with_torch_save(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(zeros_state("resnet18", torch.float16), path)
    report = inspect_json(path)
    assert report["file"] == str(path) and report["format"] == "torch"
    assert report["matches"] == ["resnet18", "resnetblur18"] and report["exact"] is True  # blur: no parameters
    assert report["num_params"] == TORCHVISION["resnet18"]["num_params"]
    assert (report["missing_keys"], report["unexpected_keys"], report["shape_mismatches"]) == ([], [], [])
    assert resolve(report["spec"])[1].layers == (2, 2, 2, 2)
    assert report["dtypes"] == ["float16", "int64"]


def test_timm_resnet_saved_with_safetensors_and_its_table(tmp_path):
    path = tmp_path / "resnet18d.safetensors"
    save_file(zeros_state("resnet18d", torch.float16), str(path))
    report = inspect_json(path)
    assert report["format"] == "safetensors" and report["matches"] == ["resnet18d"]
    assert report["num_params"] == TIMM["resnet18d"]["num_params"]
    table = runner.invoke(app, ["inspect", str(path)])
    assert table.exit_code == 0 and "resnet18d" in table.stdout and "all match" in table.stdout
    header, row = runner.invoke(app, ["inspect", str(path), "-f", "csv"]).stdout.splitlines()
    assert dict(zip(header.split(","), row.split(",")))["matches"] == "resnet18d"


def test_ambiguous_checkpoint_lists_every_variant_it_fits(tmp_path):
    path = tmp_path / "blur.pth"
    # expand() keeps one element per tensor on disk: the file stays small, the shapes are real
    torch.save({k: v[(0,) * v.dim()].expand(v.shape) if v.dim() else v
                for k, v in zeros_state("resnetblur50").items()}, path)
    report = inspect_json(path)
    assert report["matches"] == ["resnet50", "resnetblur50", "resnetaa50", "resnet50_v1"]
    assert report["variant"] == "resnet50"
    assert report["num_params"] == TORCHVISION["resnet50"]["num_params"]
    assert "cannot tell these apart" in runner.invoke(app, ["inspect", str(path)]).stdout


def test_preact_checkpoint(tmp_path):
    path = tmp_path / "v2.safetensors"
    save_file(zeros_state("resnetv2_18", torch.float16), str(path))
    report = inspect_json(path)
    assert report["matches"] == ["resnetv2_18"]
    assert "shortcut (conv or avgpool)" in report["undetermined"]


@pytest.mark.parametrize("wrap, prefix, wrapper_key", [
    ("state_dict", "module.", "state_dict"),
    ("model", "_orig_mod.", "model"),
    ("model_state_dict", "module._orig_mod.", "model_state_dict"),
    ("state_dict_ema", "", "state_dict_ema"),
    (None, "model.", None),
    ("checkpoint.model", "", "checkpoint.model"),
])
def test_wrappers_and_prefixes_are_removed(tmp_path, wrap, prefix, wrapper_key):
    state = {prefix + k: v for k, v in zeros_state("resnet20").items()}
    payload = state
    for key in reversed(wrap.split(".") if wrap else []):
        payload = {key: payload}
    if wrap:  # what training scripts keep beside the weights (timm stores args as a Namespace)
        payload.update(epoch=7, args=argparse.Namespace(model="resnet20", lr=0.1), optimizer={"lr": 0.1})
    path = tmp_path / "wrapped.pth.tar"
    torch.save(payload, path)
    report = inspect_json(path)
    assert (report["wrapper_key"], report["prefix"]) == (wrapper_key, prefix)
    assert report["matches"] == ["resnet20"] and report["exact"]


def test_keys_beside_a_backbone_are_unexpected(tmp_path):
    state = {"backbone." + k: v for k, v in zeros_state("resnet20").items()}
    state["decode_head.conv_seg.weight"] = torch.zeros(2, 64, 1, 1)
    path = tmp_path / "seg.safetensors"
    save_file(state, str(path))
    report = inspect_json(path)
    assert report["prefix"] == "backbone." and report["closest"] == ["resnet20"]
    assert report["unexpected_keys"] == ["decode_head.conv_seg.weight"] and report["matches"] == []


def test_legacy_torch_save_and_safetensors_under_another_extension(tmp_path):
    legacy, renamed = tmp_path / "legacy.pt", tmp_path / "weights.bin"
    torch.save(zeros_state("resnet20"), legacy, _use_new_zipfile_serialization=False)
    save_file(zeros_state("resnet20"), str(renamed))
    assert inspect_json(legacy)["format"] == "pickle"
    assert inspect_json(renamed)["format"] == "safetensors"


def test_custom_spec_checkpoint_prints_a_spec_that_parses_back(tmp_path):
    spec = resolve("resnet(depth=26, attn=eca, in_chans=1, num_classes=10)")[1]
    path = tmp_path / "custom.safetensors"
    save_file(zeros_state(spec, torch.float16), str(path))
    report = inspect_json(path)
    assert report["matches"] == [] and report["closest"] == [] and report["exact"] is True
    assert resolve(report["spec"])[1] == spec
    assert (report["in_chans"], report["num_classes"]) == (1, 10)


def test_corruptions_are_reported_key_by_key(tmp_path):
    state = zeros_state("resnet20")
    del state["layer2.0.conv1.weight"]
    state["layer1.0.extra.weight"] = torch.zeros(3)
    state["layer3.1.conv2.weight"] = torch.zeros(64, 32, 3, 3)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    report = inspect_json(path)
    assert report["matches"] == [] and report["closest"] == ["resnet20"] and report["exact"] is False
    assert report["missing_keys"] == ["layer2.0.conv1.weight"]
    assert report["unexpected_keys"] == ["layer1.0.extra.weight"]
    assert report["shape_mismatches"] == [
        {"key": "layer3.1.conv2.weight", "checkpoint": [64, 32, 3, 3], "expected": [64, 64, 3, 3]}]
    table = runner.invoke(app, ["inspect", str(path)]).stdout
    assert "closest: resnet20" in table and "64x32x3x3" in table and "layer2.0.conv1.weight" in table


def test_a_file_without_a_resnet_is_read_and_says_so(tmp_path):
    path = tmp_path / "mlp.safetensors"
    save_file({"fc1.weight": torch.zeros(4, 3), "fc1.bias": torch.zeros(4)}, str(path))
    report = inspect_json(path)
    assert report["spec"] is None and report["matches"] == [] and report["num_params"] == 16
    assert "no stage keys" in report["reason"]


# ---------------------------------------------------------------------------------------------- safety
class RunsShell:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class OpensFile:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def _evil_files(tmp_path):
    marker = tmp_path / "MARKER"
    in_torch = tmp_path / "evil.pth"
    torch.save({"state_dict": zeros_state("resnet20"), "hook": RunsShell(marker)}, in_torch)
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps({"conv1.weight": OpensFile(marker)}, protocol=2))
    return marker, {"torch.save": (in_torch, "posix.system"), "plain pickle": (raw, "imports exec")}


def test_the_malicious_payloads_are_live(tmp_path):
    """Control: unpickled the unsafe way, each file does create the marker."""
    marker, files = _evil_files(tmp_path)
    torch.load(files["torch.save"][0], weights_only=False)
    assert marker.exists()
    marker.unlink()
    pickle.loads(files["plain pickle"][0].read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("kind", ["torch.save", "plain pickle"])
def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path, kind):
    marker, files = _evil_files(tmp_path)
    path, global_name = files[kind]
    result = runner.invoke(app, ["inspect", str(path)])
    assert_one_line_failure(result, 1, "refused", global_name, "nothing was run")
    assert not marker.exists()


def test_refusal_end_to_end_in_a_real_process(tmp_path):
    marker, files = _evil_files(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "resnet_cli", "inspect", str(files["torch.save"][0])],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "refused" in proc.stderr
    assert not marker.exists()


def test_a_whole_pickled_model_is_refused(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(torch.nn.Linear(2, 2), path)
    assert_one_line_failure(runner.invoke(app, ["inspect", str(path)]), 1, "refused", "torch.nn.modules.linear.Linear")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncate(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    return _write(dst, data[: len(data) // 2])


@pytest.mark.parametrize("case, words", [
    ("truncated zip", ["truncated or corrupt"]),
    ("truncated legacy", ["truncated or corrupt"]),
    ("truncated safetensors", ["safetensors", "truncated or corrupt"]),
    ("empty", ["is empty"]),
    ("random bytes", ["refused"]),
    ("a text file", ["torch.save's zip or pickle format"]),
    ("directory", ["is a directory"]),
    ("missing", ["does not exist"]),
    ("no tensors", ["holds no state_dict", "epoch"]),
    ("bare tensor", ["holds no state_dict", "Tensor"]),
])
def test_unreadable_files_fail_with_one_line(tmp_path, case, words):
    small = {"a.weight": torch.zeros(64, 64), "b.bias": torch.zeros(64)}
    zip_file, legacy, st_file = tmp_path / "z.pth", tmp_path / "l.pth", tmp_path / "s.safetensors"
    torch.save(small, zip_file)
    torch.save(small, legacy, _use_new_zipfile_serialization=False)
    save_file(small, str(st_file))
    path = {
        "truncated zip": lambda: _truncate(zip_file, tmp_path / "t.pth"),
        "truncated legacy": lambda: _truncate(legacy, tmp_path / "t.pt"),
        "truncated safetensors": lambda: _truncate(st_file, tmp_path / "t.safetensors"),
        "empty": lambda: _write(tmp_path / "e.pth", b""),
        "random bytes": lambda: _write(tmp_path / "r.pth", bytes(range(256)) * 4),
        "a text file": lambda: _write(tmp_path / "passwd", b"root:x:0:0:root:/root:/bin/bash\n" * 20),
        "directory": lambda: tmp_path,
        "missing": lambda: tmp_path / "nope.pth",
        "no tensors": lambda: torch.save({"epoch": 3, "arch": "resnet50"}, tmp_path / "n.pth") or tmp_path / "n.pth",
        "bare tensor": lambda: torch.save(torch.zeros(3), tmp_path / "b.pth") or tmp_path / "b.pth",
    }[case]()
    assert_one_line_failure(runner.invoke(app, ["inspect", str(path)]), 1, *words)

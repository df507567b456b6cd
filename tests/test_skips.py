"""`resnet-cli skips` and `encoder_stages`: stage shapes against torchvision and timm (tests/reference),
the U-Net decoder check, suggested sizes, dilated encoders and error handling."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import resnet_cli
from conftest import load_reference
from resnet_cli.analysis.stages import Sides, encoder_stages
from resnet_cli.cli import app
from resnet_cli.errors import UsageError
from resnet_cli.models import build_model, get_spec
from resnet_cli.models.parse import dilate_for_output_stride

TV_REF = load_reference("torchvision")
TORCHVISION = TV_REF["models"]
TIMM = load_reference("timm")["models"]
runner = CliRunner()


def hw(text: str) -> tuple[int, int]:
    h, w = text.split("x")
    return int(h), int(w)


def by_name(result) -> dict:
    return {s.name: s for s in result.stages}


def shape(stage) -> list[int]:
    return [1, stage.channels, stage.height, stage.width]


def run(*args):
    return runner.invoke(app, ["skips", *args])


@pytest.mark.parametrize("name,size", [(n, s) for n in sorted(TORCHVISION) for s in TORCHVISION[n]["stage_shapes"]])
def test_torchvision_stage_shapes(name, size):
    stages = by_name(encoder_stages(name, hw(size)))
    want = TORCHVISION[name]["stage_shapes"][size]
    assert {k: shape(stages[k]) for k in want} == want
    assert [stages[k].module for k in ("stem", "pool", "layer1")] == ["relu", "maxpool", "layer1"]


@pytest.mark.parametrize("key", sorted(TV_REF["dilated"]))
def test_torchvision_dilated_stage_shapes(key):
    ref = TV_REF["dilated"][key]
    name = key.split(":")[0]
    flags = tuple(ref["replace_stride_with_dilation"])
    output_stride = 32 // 2 ** sum(flags)
    assert dilate_for_output_stride(get_spec(name), output_stride) == flags
    for size, want in ref["stage_shapes"].items():
        result = encoder_stages(name, hw(size), output_stride=output_stride)
        stages = by_name(result)
        assert {k: shape(stages[k]) for k in want} == want
        assert result.output_stride == output_stride == stages["layer4"].stride


@pytest.mark.parametrize("name", sorted(TIMM))
def test_timm_feature_info(name):
    ref = TIMM[name]
    for size, want in ref["feature_shapes"].items():
        if isinstance(want, dict):  # the reference library's own forward fails there: so must ours
            with pytest.raises(UsageError):
                encoder_stages(name, hw(size))
            continue
        features = [s for s in encoder_stages(name, hw(size)).stages if s.name not in ("input", "pool")]
        assert [shape(s) for s in features] == want
        assert [s.channels for s in features] == ref["feature_channels"]
        assert [s.stride for s in features] == ref["feature_reduction"]
        assert [s.module for s in features] == ref["feature_modules"]


def test_resnet34_572_worked_example():
    result = encoder_stages("resnet34", 572)
    stages, dc = by_name(result), result.decoder_check
    assert (stages["layer1"].height, stages["layer1"].width) == (143, 143)
    assert (stages["layer2"].height, stages["layer2"].width) == (72, 72)
    assert not dc.ok and len(dc.mismatches) == 1
    first = dc.mismatches[0]
    assert (first.skip, first.deeper, first.factor, first.upsampled, first.skip_size) == (
        "layer1", "layer2", 2, (144, 144), (143, 143))
    assert (dc.suggested_sizes.below, dc.suggested_sizes.above) == ((544, 544), (576, 576))
    assert dc.padding == Sides(2, 2, 2, 2) and dc.crop == Sides(14, 14, 14, 14)
    assert "144x144" in dc.verdict and "143x143" in dc.verdict and "576x576" in dc.verdict
    for size in (544, 576):  # the suggestions pass
        assert encoder_stages("resnet34", size).decoder_check.ok


def test_500x375_mismatch_per_side():
    dc = encoder_stages("resnet50", (500, 375)).decoder_check
    first = dc.mismatches[0]
    assert (first.skip, first.upsampled, first.skip_size) == ("layer2", (64, 48), (63, 47))
    assert (dc.suggested_sizes.below, dc.suggested_sizes.above) == ((480, 352), (512, 384))
    assert dc.padding == Sides(top=6, bottom=6, left=4, right=5)  # 9 columns: the odd one goes right
    assert dc.crop == Sides(top=10, bottom=10, left=11, right=12)


@pytest.mark.parametrize("name,size,kwargs,multiple", [
    ("resnet18", (300, 200), {}, 32),          # ceil arithmetic all the way: multiples of 2^5
    ("resnet18", (300, 200), {"depth": 3}, 8),  # the decoder stops at layer2 (stride 8)
    ("resnet34", (572, 570), {"output_stride": 8}, 8),
    ("resnet20", (33, 31), {}, 4),             # CIFAR: stride-1 stem, no pool, 3 stages
    ("resnetv2_50", (250, 260), {}, 32),
    ("resnet34", (300, 200), {"decoder": "resize"}, 32),
])
def test_suggested_sizes_are_the_nearest_valid(name, size, kwargs, multiple):
    dc = encoder_stages(name, size, **kwargs).decoder_check
    below = tuple(s // multiple * multiple for s in size)
    above = tuple(-(-s // multiple) * multiple for s in size)
    assert (dc.suggested_sizes.below, dc.suggested_sizes.above) == (below, above)
    assert encoder_stages(name, above, **kwargs).decoder_check.ok
    assert encoder_stages(name, below, **kwargs).decoder_check.ok


def test_valid_size_is_ok_with_no_suggestion():
    dc = encoder_stages("resnet50", 224).decoder_check
    assert dc.ok and not dc.mismatches and dc.suggested_sizes is None and dc.padding is None
    assert [c.skip for c in dc.checks] == ["layer3", "layer2", "layer1", "stem", "input"]
    assert dc.verdict.startswith("OK") and dc.verdict.endswith("(5 decoder steps)")
    one = encoder_stages("resnet50", 224, depth=1).decoder_check
    assert one.ok and len(one.checks) == 1 and one.verdict.endswith("(1 decoder step)")


def test_resize_decoder_reports_scale_factors():
    dc = encoder_stages("resnet34", 572, decoder="resize").decoder_check
    first = dc.mismatches[0]
    assert first.skip == "layer1" and first.scale_factor == (143 / 72, 143 / 72)
    assert "1.986" in dc.verdict
    assert encoder_stages("resnet34", 576, decoder="resize").decoder_check.ok


def test_dilated_basic_blocks_and_cifar_layout():
    stages = by_name(encoder_stages("resnet34", 224, output_stride=16))
    assert (stages["layer4"].height, stages["layer4"].stride) == (14, 16)
    assert stages["layer4"].receptive_field > stages["layer3"].receptive_field  # dilation still widens it
    cifar = encoder_stages("resnet20", 32)
    assert [s.name for s in cifar.stages] == ["input", "stem", "layer1", "layer2", "layer3"]
    assert [(s.height, s.stride) for s in cifar.stages] == [(32, 1), (32, 1), (32, 1), (16, 2), (8, 4)]
    assert cifar.decoder_check.ok  # x1 steps where the resolution stays
    with pytest.raises(UsageError, match="use 4"):
        encoder_stages("resnet20", 32, output_stride=8)


def test_depth_truncates_the_encoder():
    result = encoder_stages("resnet50", 224, depth=3)
    assert [s.name for s in result.stages] == ["input", "stem", "pool", "layer1", "layer2"]
    assert [c.skip for c in result.decoder_check.checks] == ["layer1", "stem", "input"]


def test_preact_deep_stem_modules():
    modules = [s.module for s in encoder_stages("resnetv2_50d", 224).stages]
    assert modules == ["", "stem.conv3", "stem.pool", "stages.0", "stages.1", "stages.2", "stages.3"]


def test_aa_network_failure_names_block_shapes_and_nearest_size():
    result = run("resnetaa50d", "--size", "250")
    assert result.exit_code == 2 and result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "'layer3.0'" in line and "gives 1024x15x15 but the shortcut gives 1024x16x16 (C x H x W)" in line
    assert line.endswith("the nearest size that works is 255x255")
    # 255 works; nothing nearer does (checked with the network's own meta forward pass)
    with torch.device("meta"):
        model = build_model("resnetaa50d").eval()

    def works(s):
        try:
            with torch.no_grad():
                model(torch.empty(1, 3, s, s, device="meta"))
            return True
        except RuntimeError:
            return False

    assert works(255) and not any(works(s) for s in range(246, 255))
    assert run("resnetaa50d", "--size", "255").exit_code == 0


def test_json_schema():
    result = run("resnet34", "--size", "572", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"variant", "input_size", "stages", "decoder_check"} <= set(data)
    assert data["variant"] == "resnet34" and data["input_size"] == [572, 572]
    assert all(set(s) == {"name", "module", "channels", "height", "width", "stride", "receptive_field"}
               for s in data["stages"])
    dc = data["decoder_check"]
    assert {"ok", "mismatches", "suggested_sizes", "padding"} <= set(dc)
    assert dc["suggested_sizes"] == {"below": [544, 544], "above": [576, 576]}
    assert dc["padding"] == {"top": 2, "bottom": 2, "left": 2, "right": 2}
    assert dc["mismatches"][0]["upsampled"] == [144, 144]


def test_csv_and_markdown_one_row_per_stage():
    csv = run("resnet50", "--size", "224", "-f", "csv")
    assert csv.exit_code == 0
    lines = csv.stdout.strip().splitlines()
    assert lines[0] == "name,module,channels,height,width,stride,receptive_field,skip_check"
    names = [line.split(",")[0] for line in lines[1:]]
    assert names == ["input", "stem", "pool", "layer1", "layer2", "layer3", "layer4"]
    assert csv.stderr.startswith("OK")  # the verdict is a note on stderr
    md = run("resnet50", "-f", "markdown")
    assert md.exit_code == 0 and md.stdout.count("\n") == 2 + 7


def test_table_output():
    result = run("resnet34", "--size", "572")
    assert result.exit_code == 0
    assert "MISMATCH at layer1" in result.stdout and "layer2 x2 = 144x144" in result.stdout


@pytest.mark.parametrize("args,needle", [
    ([], "missing VARIANT"),
    (["resnet50", "--size", "abc"], "'abc'"),
    (["resnet50", "--size", "0"], "'0'"),
    (["resnet50", "--size", "10x"], "'10x'"),
    (["resnet50", "--output-stride", "4"], "output stride 4"),
    (["resnet50", "--output-stride", "12"], "output stride 12"),
    (["resnet50", "--depth", "6"], "depth 6"),
    (["resnet50", "--decoder", "bilinear"], "bilinear"),
    (["nosuchnet"], "nosuchnet"),
])
def test_bad_input_exits_2_with_one_line(args, needle):
    result = run(*args)
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("resnet-cli: error:") and needle in lines[0]


def test_weights_identify_the_network(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "r18.safetensors"
    save_file({k: v.contiguous() for k, v in build_model("resnet18").state_dict().items()}, str(path))
    result = run("--weights", str(path), "--size", "224", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["variant"] == "resnet18" and data["decoder_check"]["ok"]
    assert [s["channels"] for s in data["stages"]] == [3, 64, 64, 64, 128, 256, 512]


def test_python_api_export():
    assert resnet_cli.encoder_stages is encoder_stages
    spec = get_spec("resnet18")
    result = encoder_stages(spec, "64x96", in_chans=1, name="mine")
    assert result.variant == "mine" and result.in_chans == 1 and result.stages[0].channels == 1

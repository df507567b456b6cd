"""The U-Net: ``unet(...)`` specs, smp 0.6's module names and state_dict keys, the decoder plan of
``skips`` against segmentation_models_pytorch 0.6.0 (tests/reference/smp_unets.json), the commands
that take a U-Net, and the errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import REFERENCE, load_reference
from resnet_cli.analysis.decoder_plan import decoder_plan, unet_stages
from resnet_cli.analysis.summary import summarize
from resnet_cli.analysis.trace import empty_cpu_copy
from resnet_cli.cli import app
from resnet_cli.errors import UsageError
from resnet_cli.models import UNetSpec, build_model, resolve

SMP = json.loads((REFERENCE / "smp_unets.json").read_text())["unets"]
runner = CliRunner()


def spec_text(ref: dict) -> str:
    return (f"unet(encoder={ref['encoder']}, decoder_channels={'-'.join(map(str, ref['decoder_channels']))}, "
            f"depth={ref['encoder_depth']}, classes={ref['classes']}, in_chans={ref['in_channels']}, "
            f"attention={ref['attention'] or 'none'})")


def ref_id(ref: dict) -> str:
    return f"{ref['encoder']}-d{ref['encoder_depth']}-{ref['attention']}-{ref['size'][0]}x{ref['size'][1]}"


@pytest.mark.parametrize("ref", SMP, ids=[ref_id(r) for r in SMP])
def test_decoder_plan_matches_smp(ref):
    spec = resolve(spec_text(ref))[1]
    plan = decoder_plan(spec, tuple(ref["size"]))
    t = plan.totals
    assert (t.total_params, t.encoder_params, t.decoder_params, t.head_params) == (
        ref["num_params"], ref["encoder_params"], ref["decoder_params"], ref["head_params"])
    assert t.macs == ref["macs_conv_linear"] == t.encoder_macs + t.decoder_macs + t.head_macs
    assert [(b.block, b.concat_channels, list(b.out_shape)) for b in plan.blocks] == [
        (b["block"], b["concat_channels"], b["out_shape"]) for b in ref["decoder_blocks"]]
    assert list(plan.head.out_shape) == ref["output_shape"]
    assert sum(b.params for b in plan.blocks) == t.decoder_params
    # the rule smp's decoder uses: in = [head] + decoder[:-1], skips = features[1:] reversed + [0]
    feats = [s[1] for s in ref["encoder_feature_shapes"]][1:][::-1]
    assert [b.in_channels for b in plan.blocks] == [feats[0], *ref["decoder_channels"][:-1]]
    assert [b.skip_channels for b in plan.blocks] == [*feats[1:], 0]


@pytest.mark.parametrize("ref", SMP, ids=[ref_id(r) for r in SMP])
def test_encoder_features_and_output_shape_match_smp(ref):
    with torch.device("meta"):
        model = build_model(spec_text(ref))
    model = empty_cpu_copy(model).eval()
    x = torch.empty((0, ref["in_channels"], *ref["size"]))
    with torch.no_grad():
        features = model.encoder(x)
        out = model(x)
    assert [[1, *f.shape[1:]] for f in features] == ref["encoder_feature_shapes"]
    assert [1, *out.shape[1:]] == ref["output_shape"]


def test_state_dict_keys_follow_smp():
    with torch.device("meta"):
        model = build_model("unet(encoder=resnet34, attention=scse, classes=3)")
    keys = model.state_dict()
    tv = load_reference("torchvision")["models"]["resnet34"]["state_dict"]
    # smp's ResNetEncoder is torchvision's ResNet without fc: the same keys and shapes under encoder.
    want = {f"encoder.{k}": tuple(v) for k, v in tv.items() if not k.startswith("fc.")}
    assert {k: tuple(t.shape) for k, t in keys.items() if k.startswith("encoder.")} == want
    for key, shape in {"decoder.blocks.0.conv1.0.weight": (256, 768, 3, 3),
                       "decoder.blocks.0.conv1.1.running_mean": (256,),
                       "decoder.blocks.4.conv2.0.weight": (16, 16, 3, 3),
                       "decoder.blocks.0.attention1.attention.cSE.1.weight": (48, 768, 1, 1),
                       "decoder.blocks.0.attention1.attention.cSE.3.bias": (768,),
                       "decoder.blocks.0.attention2.attention.sSE.0.weight": (1, 256, 1, 1),
                       "segmentation_head.0.weight": (3, 16, 3, 3), "segmentation_head.0.bias": (3,)}.items():
        assert tuple(keys[key].shape) == shape, key
    assert "decoder.blocks.0.conv1.0.bias" not in keys
    assert all(k.startswith(("encoder.", "decoder.blocks.", "segmentation_head.0.")) for k in keys)
    names = {n for n, _ in model.named_modules()}
    assert {"decoder.center", "segmentation_head.1", "segmentation_head.2.activation", "encoder.relu",
            "encoder.maxpool", "decoder.blocks.4.attention1.attention.sSE.1"} <= names
    assert not names & {"encoder.fc", "encoder.avgpool"}


@pytest.mark.parametrize("text,channels,depth", [
    ("unet()", (256, 128, 64, 32, 16), 5),  # smp's defaults where they build
    ("unet(encoder=resnet20)", (256, 128, 64, 32), 4),  # a 3-stage encoder reaches depth 4 only
    ("unet(decoder_channels=64-32-16)", (64, 32, 16), 3),  # the depth follows the channels given
    ("unet(depth=3)", (256, 128, 64), 3),  # the channels: the first depth of smp's default
    ("unet(encoder=resnet20, depth=2)", (256, 128), 2),
])
def test_default_depth_follows_the_encoder_and_the_channels(text, channels, depth):
    spec = resolve(text)[1]
    assert (spec.decoder_channels, spec.depth) == (channels, depth)
    assert resolve(spec.to_string())[1] == spec


def test_a_cifar_encoder_builds_with_its_default_depth():
    result = runner.invoke(app, ["summary", "unet(encoder=resnet20)", "-f", "json", "--depth", "0"])
    assert result.exit_code == 0, result.stderr
    model = build_model("unet(encoder=resnet20, classes=2)")
    with torch.no_grad():
        assert tuple(model(torch.zeros(1, 3, 32, 32)).shape) == (1, 2, 32, 32)
    skips = runner.invoke(app, ["skips", "resnet20", "--decoder-channels", "64,32,16,8", "-f", "json"])
    assert skips.exit_code == 0, skips.stderr
    plan = json.loads(skips.stdout)
    assert plan["decoder_check"]["depth"] == 4
    shallow = runner.invoke(app, ["skips", "resnet34", "--decoder-channels", "64,32,16", "-f", "json"])
    assert shallow.exit_code == 0 and json.loads(shallow.stdout)["decoder_check"]["depth"] == 3


def test_deeper_stages_stay_but_do_not_run():
    spec = resolve("unet(encoder=resnet34, decoder_channels=256-128-64, depth=3)")[1]
    plan = decoder_plan(spec, (128, 128))
    assert plan.totals.encoder_params == 21284672  # layer3 and layer4 are built, as in smp
    assert [b.skip for b in plan.blocks] == ["layer1", "stem", None]
    assert plan.blocks[0].in_shape == (1, 128, 16, 16)


def test_upsample_decoder_fails_where_sizes_differ_and_resize_does_not():
    ok = summarize("unet(encoder=resnet18, decoder=resize)", (100, 75))
    assert next(r for r in ok.layers if r.name == "segmentation_head").output_shape == (1, 1, 100, 75)
    with pytest.raises(UsageError, match=r"'decoder.blocks.0'.*upsampled map is 8x6 but the skip "
                                         r"is 7x5.*nearest size that works is 96x64"):
        summarize("unet(encoder=resnet18, decoder=upsample)", (100, 75))


def test_receptive_field_follows_whole_factor_upsampling():
    rows = {r.name: r for r in summarize("unet(encoder=resnet18)", 256).layers}
    assert [rows[f"decoder.blocks.{i}"].stride for i in range(5)] == [16, 8, 4, 2, 1]
    assert rows["decoder.blocks.0"].receptive_field == rows["encoder.layer4"].receptive_field + 2 * 16 + 2 * 16  # two 3x3 convs at stride 16
    rows = {r.name: r for r in summarize("unet(encoder=resnet18)", (500, 375)).layers}
    assert rows["decoder.blocks.0"].stride == 16  # 16x12 -> 32x24: whole factors
    assert rows["decoder.blocks.1"].receptive_field is None  # 32x24 -> 63x47: no defined RF from there on
    assert rows["segmentation_head"].receptive_field is None


def test_skips_decoder_plan_json():
    result = runner.invoke(app, ["skips", "resnet34", "--size", "512", "--decoder-channels", "256,128,64,32,16",
                                 "-f", "json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    ref = next(r for r in SMP if r["encoder"] == "resnet34" and r["attention"] is None and r["encoder_depth"] == 5)
    totals = data["decoder_totals"]
    assert {k: totals[k] for k in ("encoder_params", "decoder_params", "head_params", "total_params")} == {
        "encoder_params": ref["encoder_params"], "decoder_params": ref["decoder_params"],
        "head_params": ref["head_params"], "total_params": ref["num_params"]}
    assert totals["macs"] == 4 * ref["macs_conv_linear"]  # 512x512 is four times 256x256 everywhere here
    rows = data["decoder_plan"]
    assert [r["block"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["concat_channels"] for r in rows] == [768, 384, 192, 128, 32]
    assert [r["skip_channels"] for r in rows] == [256, 128, 64, 64, 0]
    assert rows[0]["out_shape"] == [1, 256, 32, 32] and rows[-1]["out_shape"] == [1, 16, 512, 512]
    assert [r["skip_module"] for r in rows] == ["encoder.layer3", "encoder.layer2", "encoder.layer1",
                                                "encoder.relu", None]
    assert data["decoder_check"]["ok"] and "decoder=upsample" in data["plan_spec"]


def test_skips_takes_a_unet_spec_and_its_resize_decoder():
    result = runner.invoke(app, ["skips", "unet(encoder=resnet18, classes=2)", "--size", "500x375", "-f", "json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["decoder_check"]["decoder"] == "resize" and not data["decoder_check"]["ok"]
    assert data["decoder_plan"][1]["scale_factor"] == [63 / 32, 47 / 24]
    assert data["decoder_head"]["out_shape"] == [1, 2, 500, 375]
    table = runner.invoke(app, ["skips", "unet(encoder=resnet18)", "--size", "256", "--decoder", "upsample"])
    assert table.exit_code == 0 and "decoder plan at 256x256" in table.stdout and "encoder.layer3" in table.stdout


@pytest.mark.parametrize("args,needle", [
    (["skips", "resnet34", "--depth", "5", "--decoder-channels", "256,128,64,32"],
     "gives 4 decoder blocks but --depth is 5"),
    (["skips", "resnet20", "--decoder-channels", "64,32,16,8,4"], "resnet20 has room for 1 to 4 channels"),
    (["skips", "resnet34", "--depth", "4", "--decoder-channels", "256,128,64,32,16"], "or --depth 5"),
    (["skips", "resnet34", "--decoder-channels", "6,5,4,3,2,1"], "has room for 1 to 5 channels"),
    (["skips", "resnet34", "--decoder-channels", "256,x"], "must be positive integers"),
    (["skips", "resnet34", "--decoder-channels", "4,16,32,64,128", "--attention", "scse"],
     "too narrow for decoder block 0: its attention2 (output) gets 4 channels"),
    (["summary", "unet(encoder=resnet18, decoder_channels=64-32-16-8-16, attention=scse)"],
     "too narrow for decoder block 3"),
    (["summary", "unet(encoder=resnet18, attention=cbam)"], "attention='cbam' is not allowed for a U-Net"),
    (["summary", "unet(encoder=resnet33)"], "encoder='resnet33': unknown variant 'resnet33'"),
    (["summary", "unet(encoder=resnet(depth=19))"], "depth=19 has no standard block layout"),
    (["summary", "unet(encoder=timm:resnet50)"], "a U-Net encoder must be a ResNet resnet-cli builds"),
    (["summary", "unet(encoder=resnet(depth=18)"], "unbalanced parentheses"),
    (["summary", "unet(decoder_channels=256-128-64-32, depth=5)"], "or set depth=4"),
    (["summary", "unet(encoder=resnet20, decoder_channels=8-8-8-8-8)"], "encoder resnet20 has room for 1 to 4"),
    (["summary", "unet(depth=6, decoder_channels=1-1-1-1-1-1)"], "depth=6 is not possible"),
    (["summary", "unet(encoder=resnet18, colour=red)"], "unknown unet key 'colour'"),
    (["summary", "unet(encoder=resnet18)", "--num-classes", "0"], "--num-classes 0 is not possible for a U-Net"),
    (["compare", "unet(encoder=resnet18, decoder=bilinear)", "resnet18"], "decoder='bilinear' is not allowed"),
])
def test_bad_unet_inputs_exit_2_with_one_line(args, needle):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("resnet-cli: error:") and needle in lines[0], lines


def test_unet_usage_errors_answer_before_torch():
    code = ("import sys\nfrom resnet_cli.cli import app\nfrom typer.testing import CliRunner\n"
            "r = CliRunner()\ncodes = [r.invoke(app, a).exit_code for a in ["
            "['skips', 'resnet34', '--depth', '5', '--decoder-channels', '256,128'],"
            "['skips', 'resnet34', '--decoder-channels', '4,16,32,64,128', '--attention', 'scse'],"
            "['summary', 'unet(encoder=nosuch)']]]\nprint(codes, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[2, 2, 2] False"


def test_summary_compare_and_bench_take_a_unet():
    ref = next(r for r in SMP if r["encoder"] == "resnet18")
    summary = runner.invoke(app, ["summary", spec_text(ref), "--size", "320x480", "-f", "json", "--depth", "1"])
    assert summary.exit_code == 0, summary.stderr
    data = json.loads(summary.stdout)
    assert (data["total_params"], data["macs"]) == (ref["num_params"], ref["macs_conv_linear"])
    assert [r["name"] for r in data["layers"]] == ["encoder", "decoder", "segmentation_head"]
    encoder = data["layers"][0]  # its deepest map, the one its RF and stride are of
    assert (encoder["output_shape"], encoder["stride"]) == (ref["encoder_feature_shapes"][-1], 32)
    assert data["input_size"] == [1, 1, 320, 480] and data["output_stride"] == 1
    over = runner.invoke(app, ["summary", "unet(encoder=resnet18)", "--in-chans", "1", "--num-classes", "2",
                               "--size", "320x480", "-f", "json", "--depth", "0"])
    assert json.loads(over.stdout)["total_params"] == ref["num_params"]
    compare = runner.invoke(app, ["compare", "unet(encoder=resnet34)", "unet(encoder=resnet50)", "resnet34",
                                  "--size", "256", "-f", "json"])
    assert compare.exit_code == 0, compare.stderr
    rows = json.loads(compare.stdout)["variants"]
    want = {r["encoder"]: (r["num_params"], r["macs_conv_linear"]) for r in SMP
            if r["size"] == [256, 256] and r["encoder_depth"] == 5 and r["attention"] is None}
    assert [(r["params"], r["macs"]) for r in rows[:2]] == [want["resnet34"], want["resnet50"]]
    assert rows[0]["stage_channels"] == [256, 128, 64, 32, 16] and rows[2]["params"] == 21797672
    bench = runner.invoke(app, ["bench", "unet(encoder=resnet18)", "--size", "64", "--batch", "1", "--min-time",
                                "0.05", "--warmup", "1", "--threads", "1", "--peak-tflops", "1", "-f", "json"])
    assert bench.exit_code == 0, bench.stderr
    report = json.loads(bench.stdout)
    assert report["input_size"] == [3, 64, 64] and report["spec"] == "unet(encoder=resnet18)"
    assert report["flops_per_image"] == 2 * decoder_plan(resolve("unet(encoder=resnet18)")[1], (64, 64)).totals.macs
    assert report["results"][0]["iterations"] >= 1


def test_a_unet_forward_runs_and_keeps_the_input_size():
    model = build_model("unet(encoder=resnet18, decoder_channels=32-16-16, depth=3, classes=4)").eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 45, 61))
    assert out.shape == (2, 4, 45, 61) and torch.isfinite(out).all()


def test_unet_stages_output_stride_dilates_the_encoder():
    result = unet_stages(resolve("unet(encoder=resnet50)")[1], 256, output_stride=16)
    assert result.output_stride == 16
    assert result.decoder_plan[0].scale_factor == (1.0, 1.0)  # layer4 dilated: same size as layer3
    assert result.decoder_plan[0].out_shape == (1, 256, 16, 16)


channel_lists = st.lists(st.integers(16, 512), min_size=1, max_size=5)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(channels=channel_lists, classes=st.integers(1, 300), attention=st.sampled_from(["none", "scse"]),
       decoder=st.sampled_from(["resize", "upsample"]), in_chans=st.integers(1, 8),
       encoder=st.sampled_from(["resnet18", "resnet50d", "resnet(depth=18, stem=deep)", "resnet34(in_chans=2)"]))
def test_spec_strings_round_trip(channels, classes, attention, decoder, in_chans, encoder):
    text = (f"unet(encoder={encoder}, decoder_channels={'-'.join(map(str, channels))}, depth={len(channels)}, "
            f"classes={classes}, attention={attention}, decoder={decoder}, in_chans={in_chans})")
    name, spec = resolve(text)
    assert isinstance(spec, UNetSpec) and name == text
    assert (spec.decoder_channels, spec.depth, spec.classes, spec.in_chans) == (tuple(channels), len(channels),
                                                                               classes, in_chans)
    assert resolve(spec.to_string())[1] == spec
    assert spec.replace(num_classes=3, in_chans=1) == resolve(text, num_classes=3, in_chans=1)[1]


@pytest.fixture(scope="module")
def unet_checkpoint(tmp_path_factory):
    """An smp-layout U-Net state_dict (keys checked against smp above), saved as a DDP training script would."""
    torch.manual_seed(0)
    model = build_model("unet(encoder=resnet18(in_chans=1), decoder_channels=32-16-16, depth=3, classes=2, "
                        "attention=scse)").eval()
    path = tmp_path_factory.mktemp("unet") / "unet.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    return path, model


def test_inspect_and_weights_recognise_an_smp_unet(unet_checkpoint):
    path, model = unet_checkpoint
    text = "unet(encoder=resnet18(in_chans=1), decoder_channels=32-16-16, depth=3, classes=2, attention=scse)"
    report = runner.invoke(app, ["inspect", str(path), "-f", "json"])
    assert report.exit_code == 0, report.stderr
    data = json.loads(report.stdout)
    assert (data["variant"], data["exact"], data["prefix"], data["in_chans"], data["num_classes"]) == (
        text, True, "module.", 1, 2)
    assert data["num_params"] == sum(p.numel() for p in model.parameters())
    summary = runner.invoke(app, ["summary", "--weights", str(path), "--size", "64", "-f", "json", "--depth", "0"])
    assert summary.exit_code == 0, summary.stderr
    assert json.loads(summary.stdout)["spec"] == text and f"holds {text}" in summary.stderr
    # a VARIANT without in_chans/classes takes them from the file; a layout that differs is refused
    taken = runner.invoke(app, ["summary", "unet(encoder=resnet18, decoder_channels=32-16-16, depth=3, "
                                "attention=scse)", "--weights", str(path), "--depth", "0", "--size", "64"])
    assert taken.exit_code == 0 and "classes=2 taken from" in taken.stderr
    for variant, needle in (("unet(encoder=resnet18, decoder_channels=32-16-16, depth=3)", f"the file reads as {text}"),
                            ("resnet18", "holds a U-Net")):
        bad = runner.invoke(app, ["summary", variant, "--weights", str(path)])
        assert bad.exit_code == 2 and needle in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_weights_load_into_the_built_unet(unet_checkpoint):
    from resnet_cli.analysis.checkpoint import load_weights

    path, model = unet_checkpoint
    loaded = load_weights(path)
    ours = build_model(loaded.spec).eval()
    ours.load_state_dict(loaded.state_dict, strict=True)
    x = torch.randn(1, 1, 40, 56)
    with torch.no_grad():
        assert torch.equal(ours(x), model(x))

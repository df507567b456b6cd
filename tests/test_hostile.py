"""Hostile input over every command (issue 11): bad names, specs, sizes, batches, devices, dtypes,
numbers that are not finite, paths that are directories, FIFOs, devices, missing or full, corrupt and
malicious checkpoints, narrow terminals, locales, closed pipes and Ctrl-C.

Every case asserts the exit status (0 ok, 1 runtime failure, 2 usage error, 130 interrupted), that a
failure is ONE line on stderr starting ``resnet-cli: error:`` without a traceback, and that
``--format json`` output parses strictly (no NaN/Infinity). Most cases run in-process through
CliRunner; the few that need a real process (pipes, locale, Ctrl-C) use subprocess with tiny
networks (resnet20 at 32x32) and small timeouts.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import stat
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from typer.testing import CliRunner

from resnet_cli.cli import app
from resnet_cli.errors import UsageError, one_line

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
TINY = "resnet20"
BLUR = "resnet(depth=18, aa=blur)"  # its blur pool's reflect padding needs 17x17 at least
FAST_BENCH = ["--size", "32", "--iters", "1", "--warmup", "0", "--threads", "1", "--peak-tflops", "1"]


def _no_constant(name):
    raise ValueError(f"not strict JSON: {name}")


def strict_json(text: str):
    """json.loads that refuses NaN, Infinity and -Infinity."""
    return json.loads(text, parse_constant=_no_constant)


def check(result, code: int, *words: str) -> str:
    """The exit status, and for a failure one clean stderr line holding ``words``; returns that line."""
    assert result.exit_code == code, (result.exit_code, result.stdout[-2000:], result.stderr[-2000:])
    err = result.stderr
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 0:
        return ""
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith("resnet-cli: error: "), err
    errors = [line for line in lines if line.startswith("resnet-cli: error: ")]
    assert len(errors) == 1 and errors[0].isprintable(), err
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


def invoke(*args: str, env: dict | None = None):
    return runner.invoke(app, list(args), env=env)


# --------------------------------------------------------------------------- files to read
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Crafted files, made once: checkpoints valid, corrupt and malicious; a FIFO; a directory."""
    from resnet_cli.models import build_model

    d = tmp_path_factory.mktemp("hostile")
    sd = build_model(TINY).state_dict()
    paths = {"dir": d / "a_folder", "fifo": d / "pipe.pth", "missing": d / "missing.pth"}
    paths["dir"].mkdir()
    os.mkfifo(paths["fifo"])
    torch.save(sd, d / "p4.pth", pickle_protocol=4)
    torch.save(sd, d / "p4_legacy.pth", pickle_protocol=4, _use_new_zipfile_serialization=False)
    torch.save(sd, d / "p2.pth")
    torch.save({k: v.to("meta") for k, v in sd.items()}, d / "meta.pth")
    torch.save({k: (v.to_sparse() if v.dim() else v) for k, v in sd.items()}, d / "sparse.pth")
    zero = dict(sd)
    zero["layer2.0.conv1.weight"] = torch.zeros(0, 16, 3, 3)
    torch.save(zero, d / "zero_width.pth")
    mismatch = dict(sd)
    mismatch["fc.weight"] = torch.zeros(7, 64)
    mismatch["fc.bias"] = torch.zeros(7)
    mismatch["extra.weight"] = torch.zeros(3)
    del mismatch["layer1.0.bn1.bias"]
    torch.save(mismatch, d / "mismatch.pth")

    marker = d / "PWNED"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"w": torch.zeros(2), "x": Evil()}, d / "evil4.pth", pickle_protocol=4)
    torch.save({"w": torch.zeros(2), "x": Evil()}, d / "evil2.pth")
    paths["marker"] = marker
    # A pickle claiming a 1 TiB byte string in a 13-byte file.
    (d / "bigbytes.pth").write_bytes(b"\x80\x04\x8e" + (2 ** 40).to_bytes(8, "little") + b"xx")

    # Legacy format whose storage index claims 10**12 floats (4 TB).
    class Claims(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", 10 ** 12) if obj == "S" else None

    buf = io.BytesIO()
    for obj in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True, "type_sizes": {}}):
        pickle.dump(obj, buf, protocol=2)
    Claims(buf, protocol=2).dump({"w": "S"})
    pickle.dump(["0"], buf, protocol=2)
    buf.write(struct.pack("<q", 10 ** 12) + b"\0" * 16)
    (d / "claims_legacy.pth").write_bytes(buf.getvalue())

    # A torch zip whose storage record is deflated (torch.save stores): a zip bomb's shape.
    with zipfile.ZipFile(d / "p4.pth") as src, zipfile.ZipFile(d / "deflated.pth", "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info), compress_type=zipfile.ZIP_DEFLATED)
    # safetensors whose header claims 2**40 bytes.
    (d / "bighead.safetensors").write_bytes((2 ** 40).to_bytes(8, "little") + b"{}")
    (d / "empty.pth").write_bytes(b"")
    (d / "text.pth").write_bytes(b"hello, not a checkpoint\n" * 10)
    (d / "trunc.pth").write_bytes((d / "p2.pth").read_bytes()[:300])
    odd = d / "name\nwith newline.pth"
    odd.write_bytes(b"")
    paths["odd"] = odd
    for name in ("p4", "p4_legacy", "p2", "meta", "sparse", "zero_width", "mismatch", "evil4", "evil2", "bigbytes",
                 "claims_legacy", "deflated", "empty", "text", "trunc"):
        paths[name] = d / f"{name}.pth"
    paths["bighead"] = d / "bighead.safetensors"
    return {k: str(v) for k, v in paths.items()}


# --------------------------------------------------------------------------- usage errors (exit 2)
USAGE = [  # (args, words the one error line must hold)
    (["list", "--format", "yaml"], ["--format"]),
    (["list", "--family", "bogus"], ["bogus"]),
    (["summary", "bogus50"], ["unknown variant 'bogus50'"]),
    (["summary", ""], ["empty variant name"]),
    (["summary", "resnet(aa=0, aa=0\n0)"], ["'0\\n0'", "give each setting once"]),
    (["summary", "resnet\x1b[31m"], ["\\x1b"]),
    (["summary", "resnet(num_classes=1000000000000000000000000000000)"], ["num_classes=", "out of range", "2147483647"]),
    (["summary", "resnet(se_ratio=inf)"], ["finite"]),
    (["summary", "resnet(layers=99999-1)"], ["at most 1000"]),
    (["summary", "resnet(depth=18))"], ["unbalanced"]),
    (["summary", TINY, "--size", "0"], ["positive"]),
    (["summary", TINY, "--size", "99999999"], ["out of range", "65536"]),
    (["summary", TINY, "--size", "32x"], ["not a size"]),
    (["summary", BLUR, "--size", "8"], ["too small", "17x17"]),
    (["summary", TINY, "--batch", "0"], ["--batch"]),
    (["summary", TINY, "--batch", "99999999999999999999"], ["out of range", "2147483647"]),
    (["summary", TINY, "--depth", "-1"], ["--depth"]),
    (["summary", TINY, "--in-chans", "0"], ["--in-chans"]),
    (["summary", TINY, "--in-chans", "99999"], ["in_chans", "at most 16384"]),
    (["summary", TINY, "--num-classes", "-1"], ["--num-classes"]),
    (["summary", TINY, "--num-classes", "99999999999"], ["out of range"]),
    (["summary", TINY, "--count", "bogus"], ["--count"]),
    (["summary", TINY, "--flops-engine", "bogus"], ["--flops-engine"]),
    (["summary"], ["missing VARIANT"]),
    (["summary", "unet(encoder=resnet34, classes=0)"], ["classes=0", "1 to 16384"]),
    (["summary", "unet(classes=1, classes=1\n2)"], ["classes=1\\n2", "give each setting once"]),
    (["skips", "unet(depth=9)"], ["depth=9", "1 (stem only) to 5"]),
    (["summary", "unet(encoder=bogus)"], ["unknown variant 'bogus'"]),
    (["compare", TINY, "bogus50"], ["unknown variant 'bogus50'"]),
    (["compare", TINY, "resnet32", "--size", "0"], ["positive"]),
    (["compare", TINY, "resnet32", "--size", "nan"], ["not a size"]),
    (["skips", "bogus50"], ["unknown variant"]),
    (["skips", BLUR, "--size", "8"], ["too small"]),
    (["bench", TINY, "--min-time", "nan"], ["--min-time nan", "[0, 3600]"]),
    (["bench", TINY, "--min-time", "inf"], ["--min-time inf", "[0, 3600]"]),
    (["bench", TINY, "--min-time", "-1"], ["--min-time"]),
    (["bench", TINY, "--peak-tflops", "inf"], ["--peak-tflops inf", "1000000"]),
    (["bench", TINY, "--peak-tflops", "1e-320"], ["--peak-tflops 1e-320", "[0.001, 1000000]"]),
    (["bench", TINY, "--peak-tflops", "nan"], ["--peak-tflops nan"]),
    (["bench", TINY, "--peak-tflops", "0"], ["--peak-tflops 0"]),
    (["bench", TINY, "--iters", "0"], ["--iters"]),
    (["bench", TINY, "--iters", "10000000"], ["--iters 10000000", "1000000"]),
    (["bench", TINY, "--warmup", "-1"], ["--warmup"]),
    (["bench", TINY, "--batch", "0"], ["--batch item '0'"]),
    (["bench", TINY, "--batch", "1,,2"], ["empty item"]),
    (["bench", TINY, "--batch", "abc"], ["not an integer"]),
    (["bench", TINY, "--batch", "1,1"], ["batch size 1 twice"]),
    (["bench", TINY, "--batch", "99999999999"], ["out of range"]),
    (["bench", TINY, "--device", "tpu"], ["--device 'tpu'"]),
    (["bench", TINY, "--device", "cuda:x"], ["--device"]),
    (["bench", TINY, "--dtype", "fp8"], ["--dtype"]),
    (["bench", TINY, "--threads", "0"], ["--threads"]),
    (["bench", TINY, "--threads", "9999"], ["--threads"]),
    (["bench", TINY, "--iters", "1", "--min-time", "1"], ["--iters and --min-time"]),
    (["bench", TINY, "--batch", "4", "--max-batch"], ["--max-batch"]),
    (["bench", BLUR, "--size", "8"], ["too small"]),
    (["inspect"], ["FILE"]),
]


@pytest.mark.parametrize("args, words", USAGE, ids=[" ".join(a)[:60] for a, _ in USAGE])
def test_usage_errors_are_one_line_and_exit_2(args, words):
    check(invoke(*args), 2, *words)
    if "--format" not in args:  # with --format json too: the same line, and nothing on stdout
        result = invoke(*args, "--format", "json")
        check(result, 2, *words)
        assert result.stdout == ""


# --------------------------------------------------------------------------- files (inspect and --weights)
FILE_CASES = [  # (command, file key, exit status, words)
    ("inspect", "dir", 1, ["is a directory"]),
    ("inspect", "fifo", 1, ["named pipe (FIFO)"]),
    ("inspect", "missing", 1, ["does not exist"]),
    ("inspect", "empty", 1, ["empty (0 bytes)"]),
    ("inspect", "text", 1, ["truncated or corrupt"]),
    ("inspect", "trunc", 1, ["truncated or corrupt"]),
    ("inspect", "bigbytes", 1, ["claims 1099511627776 bytes"]),
    ("inspect", "claims_legacy", 1, ["storage index claims 4000000000000 bytes"]),
    ("inspect", "deflated", 1, ["compressed"]),
    ("inspect", "bighead", 1, ["header claims 1099511627776 bytes"]),
    ("inspect", "evil4", 1, ["posix.system", "nothing was run"]),
    ("inspect", "evil2", 1, ["posix.system", "nothing was run"]),
    ("inspect", "odd", 1, ["\\n"]),
    ("summary", "fifo", 1, ["named pipe (FIFO)"]),
    ("summary", "dir", 1, ["is a directory"]),
    ("summary", "meta", 2, ["meta tensors"]),
    ("bench", "sparse", 2, ["not dense", "sparse_coo"]),
    ("skips", "evil4", 1, ["posix.system"]),
]


@pytest.mark.parametrize("command, key, code, words", FILE_CASES, ids=[f"{c} {k}" for c, k, _, _ in FILE_CASES])
def test_bad_files_answer_in_one_line(files, command, key, code, words):
    path = files[key]
    args = ["inspect", path] if command == "inspect" else [command, "--weights", path]
    check(invoke(*args), code, *words)
    assert not os.path.exists(files["marker"])  # nothing in a malicious pickle ran


def test_dev_zero_is_refused_before_reading():
    check(invoke("inspect", "/dev/zero"), 1, "is a device")


@pytest.mark.parametrize("key", ["p4", "p4_legacy", "p2"])
def test_protocol_4_checkpoints_are_valid_and_identified(files, key):
    result = invoke("inspect", files[key], "--format", "json")
    check(result, 0)
    data = strict_json(result.stdout)
    assert data["variant"] == TINY and data["exact"] is True


def test_zero_width_tensor_is_reported_not_divided_by(files):
    result = invoke("inspect", files["zero_width"], "--format", "json")
    check(result, 0)
    assert "zero-width shape 0x16x3x3" in strict_json(result.stdout)["reason"]


# --------------------------------------------------------------------------- answers that must work
def test_huge_class_count_summary_allocates_no_weights():
    result = invoke("summary", "resnet18(num_classes=1000000000)", "--depth", "1", "--format", "json")
    check(result, 0)
    data = strict_json(result.stdout)
    assert data["total_params"] == 11_689_512 - 513_000 + 513 * 1_000_000_000  # resnet18 with a 1e9-way fc


@pytest.mark.parametrize("args", [
    ["summary", TINY, "--size", "32"], ["compare", TINY, "resnet32"], ["skips", "resnet50", "--size", "64"],
    ["list"], ["bench", TINY, *FAST_BENCH, "--batch", "1,2"],
], ids=["summary", "compare", "skips", "list", "bench"])
def test_json_is_strict(args):
    result = invoke(*args, "--format", "json")
    check(result, 0)
    strict_json(result.stdout)


def test_unmeasurable_values_are_null_with_a_note():
    from resnet_cli.render.export import to_json

    data = strict_json(to_json({"utilization": float("inf"), "tflops": float("nan"), "ok": 1.5}))
    assert data["utilization"] is None and data["tflops"] is None and data["ok"] == 1.5
    assert any("utilization" in n and "inf" in n for n in data["null_values"])


# --------------------------------------------------------------------------- narrow terminals
NARROW = [
    (["compare", "resnet50", "resnext101_32x8d"], ["Variant", "Params", "MACs", "FLOPs", "MACs at", "Conv layers",
                                                   "Stage channels", "Output stride", "Default input",
                                                   "25,557,032", "88,791,336"]),
    (["skips", "resnet50"], ["RF", "stride", "channels"]),
    (["bench", TINY, *FAST_BENCH], ["median", "iters", "images/s", "TFLOP/s", "util", "peak mem", "1st call ms"]),
]


@pytest.mark.parametrize("args, words", NARROW, ids=["compare", "skips", "bench"])
def test_no_column_is_dropped_at_40_columns(args, words):
    result = invoke(*args, env={"COLUMNS": "40"})
    check(result, 0)
    for word in words:
        assert word in result.stdout, (word, result.stdout)


def test_inspect_keeps_every_column_at_40_columns(files):
    result = invoke("inspect", files["mismatch"], env={"COLUMNS": "40"})
    assert result.exit_code in (0, 1, 2) and "Traceback" not in result.stderr
    out = result.stdout
    for word in ("key", "problem", "in file", "in network", "layer1.0.bn1.bias", "missing", "extra.weight",
                 "unexpected", "num_classes=7", "tensors", "116"):
        assert word in out, (word, out)


def test_narrow_table_falls_back_to_record_blocks():
    from rich.console import Console
    from rich.table import Table

    from resnet_cli.render.tables import RecordBlocks, fit_width

    table = Table(title="t")
    for name in ("alpha", "beta", "gamma", "delta"):
        table.add_column(name, no_wrap=True, min_width=15)
    table.add_row("1" * 15, "2" * 15, "3" * 15, "4" * 15)
    console = Console(width=40, file=io.StringIO())
    assert isinstance(fit_width(console, table), RecordBlocks)
    assert fit_width(Console(width=200, file=io.StringIO()), table) is table
    console.print(fit_width(console, table))
    text = console.file.getvalue()
    assert all(w in text for w in ("alpha: 111111111111111", "delta: 444444444444444"))


# --------------------------------------------------------------------------- --save
def test_save_is_not_created_before_a_measurement(tmp_path):
    target = tmp_path / "runs.jsonl"
    check(invoke("bench", "bogus50", "--save", str(target)), 2, "unknown variant")
    assert not target.exists()


@pytest.mark.parametrize("where, words", [("dir", ["is a directory"]), ("nofolder", ["does not exist"])])
def test_save_to_an_impossible_path_fails_before_measuring(tmp_path, where, words):
    target = tmp_path if where == "dir" else tmp_path / "no" / "runs.jsonl"
    result = invoke("bench", TINY, *FAST_BENCH, "--save", str(target))
    check(result, 1, *words)
    assert result.stdout == ""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_save_to_a_full_disk_still_prints_results():
    result = invoke("bench", TINY, *FAST_BENCH, "--batch", "1,2", "--save", "/dev/full", "--format", "json")
    check(result, 1, "/dev/full", "No space left")
    assert [r["batch_size"] for r in strict_json(result.stdout)["results"]] == [1, 2]


def test_save_to_a_fifo_without_reader_does_not_hang(files):
    result = invoke("bench", TINY, *FAST_BENCH, "--save", files["fifo"], "--format", "json")
    check(result, 1, "named pipe with no reader")
    assert len(strict_json(result.stdout)["results"]) == 1


def test_save_to_a_read_only_file(tmp_path):
    target = tmp_path / "ro.jsonl"
    target.write_text("")
    target.chmod(stat.S_IRUSR)
    result = invoke("bench", TINY, *FAST_BENCH, "--save", str(target), "--format", "json")
    if os.geteuid() == 0:  # root writes anyway
        check(result, 0)
    else:
        check(result, 1, "not writable")


# --------------------------------------------------------------------------- error messages
@given(st.text(max_size=20))
@example("1\n2")
@example("\x1b[2J")
def test_error_messages_are_printable(text):
    from resnet_cli.bench.config import parse_batches, parse_device
    from resnet_cli.models import parse_size, resolve

    for parse in (parse_size, parse_batches, parse_device, resolve, lambda t: resolve(f"resnet(layers={t})"),
                  lambda t: resolve(f"resnet({t}=1)"), lambda t: resolve(f"resnet(stem={t}, stem={t})"),
                  lambda t: resolve(f"unet({t}=1)"), lambda t: resolve(f"unet(classes=1, classes={t})")):
        try:
            parse(text)
        except UsageError as err:
            assert str(err).isprintable(), repr(str(err))


def test_every_error_message_is_made_one_line():
    assert one_line("a\nb\x1b[31m") == "a\\nb\\x1b[31m"
    assert str(UsageError("bad\nvalue\t")) == "bad\\nvalue\\t"


# --------------------------------------------------------------------------- real processes
def _popen(args, env=None, **kwargs):
    full_env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "resnet_cli", *args], cwd=REPO, env=full_env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)


@pytest.mark.parametrize("args", [["summary", TINY, "--size", "32"], ["list"], ["summary", TINY, "--format", "json"]],
                         ids=["summary", "list", "json"])
def test_closed_stdout_ends_quietly_with_status_0(args):
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads: the first write fails with EPIPE, as after `| head -1`
    proc = _popen(args, stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and err == b"", err.decode()


@pytest.mark.parametrize("env", [{"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}, {"PYTHONIOENCODING": "ascii"}],
                         ids=["LC_ALL=C", "ascii"])
def test_output_in_a_locale_without_unicode(env):
    proc = _popen(["bench", TINY, *FAST_BENCH, "--batch", "1,2", "--iters", "2"], env=env,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err.decode()
    text = out.decode("ascii")  # raises if anything non-ASCII came out
    assert "+/-" in text and "median" in text and "Traceback" not in err.decode("ascii")


@pytest.mark.parametrize("args", [["summary", "resnet152", "--size", "2048", "--batch", "64"],
                                  ["compare", "resnet152", "resnext101_64x4d", "wide_resnet101_2"]],
                         ids=["summary", "compare"])
def test_ctrl_c_soon_after_start_exits_130(args):
    proc = _popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.0)  # torch is importing, or the command has just started
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err.decode())
    lines = err.decode().strip().splitlines()
    assert lines == ["resnet-cli: error: interrupted"], err.decode()


# --------------------------------------------------------------------------- bench's loop and progress
def test_progress_after_min_time_shows_the_iterations_left():
    from resnet_cli.cli.bench_cmd import _Reporter

    reporter = _Reporter(lambda text: None, True, None, 2.0, min_iters=10)
    with reporter.context():
        reporter.progress(32, "timed", 4, None, 5.0)  # --min-time passed, 6 iterations to go
        task = reporter.bar.tasks[0]
        assert task.completed < task.total and not task.finished  # the clock and spinner keep running
        assert "6 more to reach the minimum of 10" in task.description
        reporter.progress(32, "timed", 10, None, 6.0)
        assert "more" not in reporter.bar.tasks[0].description


def test_bounded_loop_keeps_to_min_time():
    """--max-batch on the CPU: 3 timed iterations at least (not 10), warm-up stops at --min-time."""
    from resnet_cli.bench.runner import measure
    from resnet_cli.bench.session import CPU_MAX_BATCH_MIN_ITERS

    now = [0.0]

    def timer(step):  # every forward pass "takes" 10 s of the fake clock
        now[0] += 10.0
        return 10_000.0

    m = measure(lambda: None, timer, warmup=1, min_time_s=2.0, min_iters=CPU_MAX_BATCH_MIN_ITERS,
                warmup_cap_s=2.0, clock=lambda: now[0])
    assert len(m.warmup_ms) == 1 and len(m.times_ms) == CPU_MAX_BATCH_MIN_ITERS == 3


def test_hypothesis_profile_is_deterministic_under_ci():
    from hypothesis import settings

    profile = settings.get_profile("ci")
    assert profile.derandomize and profile.database is None and profile.max_examples <= 500
    if os.environ.get("CI"):
        assert settings.default.derandomize


def test_csv_and_markdown_leave_unmeasured_cells_empty():
    from resnet_cli.render.export import to_csv, to_markdown

    rows = [{"a": float("nan"), "b": float("inf"), "c": {"x": float("nan")}, "d": 1.5}]
    assert to_csv(rows).splitlines()[1] == ',,"{""x"":null}",1.5'
    assert "nan" not in to_markdown(rows).lower() and "inf" not in to_markdown(rows).lower()


# --------------------------------------------------------------------------- devices and dtypes
@pytest.mark.skipif(torch.cuda.device_count() >= 100, reason="a machine with 100 GPUs")
def test_a_device_that_is_not_there_is_a_runtime_failure():
    check(invoke("bench", TINY, *FAST_BENCH, "--device", "cuda:99"), 1, "cuda:99", "available devices")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_where_there_is_none():
    check(invoke("bench", TINY, *FAST_BENCH, "--device", "mps"), 1, "mps", "available devices")


def test_half_precision_on_the_cpu_runs_and_stays_strict_json():
    result = invoke("bench", TINY, *FAST_BENCH, "--batch", "2", "--dtype", "bf16", "--format", "json")
    check(result, 0)
    assert strict_json(result.stdout)["dtype"] == "bf16"

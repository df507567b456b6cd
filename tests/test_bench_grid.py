"""`resnet-cli bench` over a grid of cases: naming, the statistics of relative speed, the two run paths
(fresh process per case and round, or one process), a crash and Ctrl-C in one case, --save and CSV."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from resnet_cli.bench import grid as g
from resnet_cli.bench.stats import relative_throughput, t_critical, t_two_sided_p, welch
from conftest import interrupt_when
from resnet_cli.cli import app
from resnet_cli.errors import UsageError

TINY = "resnet(depth=10, widths=8-16-32-64)"
FAST = ["--size", "32", "--warmup", "1", "--threads", "1", "--peak-tflops", "1"]
REPO = Path(__file__).resolve().parents[1]


def bench(*args):
    return CliRunner().invoke(app, ["bench", *args])


# --- pure parts -----------------------------------------------------------------------------------------
def test_cases_are_named_and_expanded_variants_outermost():
    cases = g.expand([("a", "resnet18", (32, 32)), ("b", "resnet34", (32, 32))], ("fp32", "bf16"), (False, True), (1, 8))
    assert len(cases) == 16
    assert [c.name for c in cases[:4]] == ["a/fp32/b1/nchw", "a/fp32/b8/nchw", "a/fp32/b1/nhwc", "a/fp32/b8/nhwc"]
    assert cases[-1].name == "b/bf16/b8/nhwc"
    twice = g.expand([("a", "resnet18", (32, 32))] * 2, ("fp32",), (False,), (1,))
    assert [c.name for c in twice] == ["a/fp32/b1/nchw", "a/fp32/b1/nchw#2"]
    assert g.pick_reference(cases, None) == 0
    assert g.pick_reference(cases, "3") == 2 and g.pick_reference(cases, "b/bf16/b8/nhwc") == 15
    for bad in ("0", "17", "c/fp32/b1/nchw"):
        with pytest.raises(UsageError, match="--reference"):
            g.pick_reference(cases, bad)


def test_t_distribution_matches_known_values():
    assert t_two_sided_p(2.0, 10) == pytest.approx(0.0733880, abs=1e-6)  # tables of Student's t
    assert t_two_sided_p(1.0, 1) == pytest.approx(0.5, abs=1e-12)  # Cauchy: P(|T| > 1) = 1/2
    assert t_critical(0.95, 10) == pytest.approx(2.228139, abs=1e-5)
    assert t_critical(0.99, 2) == pytest.approx(9.924843, abs=1e-5)
    assert t_critical(0.95, 1e7) == pytest.approx(1.959964, abs=1e-4)  # the normal limit
    assert t_critical(0.99, 1) == pytest.approx(63.65674, abs=1e-3)


def test_welch_matches_its_definition():
    rng = np.random.default_rng(0)
    x, y = rng.normal(10, 1, 12).tolist(), rng.normal(11, 3, 7).tolist()
    diff, se, df = welch(x, y)
    vx, vy = np.var(x, ddof=1) / 12, np.var(y, ddof=1) / 7
    assert diff == pytest.approx(np.mean(x) - np.mean(y))
    assert se == pytest.approx(math.sqrt(vx + vy))
    assert df == pytest.approx((vx + vy) ** 2 / (vx ** 2 / 11 + vy ** 2 / 6))


def test_relative_throughput_sign_interval_and_batch():
    slow, fast = [20.0, 21.0, 19.5, 20.4], [10.0, 10.2, 9.9, 10.1]
    rel, low, high, p = relative_throughput(fast, slow, 1, 1, 10.05, 20.2)
    assert rel == pytest.approx(20.2 / 10.05) and low < rel < high and low > 1 and p < 0.01
    same = relative_throughput(slow, slow, 1, 1, 20.2, 20.2)
    assert same[0] == 1.0 and same[1] < 1 < same[2] and same[3] == pytest.approx(1.0)
    # twice the batch in twice the time: the same throughput, not a difference
    rel, low, high, p = relative_throughput([2 * v for v in slow], slow, 2, 1, 40.4, 20.2)
    assert rel == pytest.approx(1.0) and low < 1 < high and p == pytest.approx(1.0)


# --- whole runs ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def same_process_run():
    result = bench(TINY, TINY, "resnet(depth=18)", "--same-process", "--iters", "24", *FAST, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_two_identical_cases_show_no_significant_difference(same_process_run):
    data, err = same_process_run
    first, twin, big = data["cases"]
    assert data["process"] == "same-process" and data["rounds"] == 3 and data["iters"] == 24  # the total: 8 per round
    assert data["reference"] == first["case"] == f"{TINY}/fp32/b32/nchw" and twin["case"] == first["case"] + "#2"
    assert twin["significant"] is False and twin["relative_low"] < 1 < twin["relative_high"]
    assert twin["test"] == "rounds" and len(twin["round_medians_ms"]) == 3 and twin["iterations"] == 24
    assert first["relative"] == 1.0 and first["significant"] is None
    assert big["relative"] < 1  # a resnet18 is slower than the tiny net: the sign is right
    assert "case 3 of 3, round 3 of 3" in err and "left" in err


def test_grid_json_cases_carry_the_documented_keys(same_process_run):
    data, _ = same_process_run
    for c in data["cases"]:
        for key in ("variant", "dtype", "batch_size", "channels_last", "latency_ms", "relative", "significant",
                    "images_per_sec", "tflops", "utilization", "peak_memory_bytes", "param_count", "gmacs", "rounds"):
            assert key in c
        lat = c["latency_ms"]
        assert lat["p5"] <= lat["p25"] <= lat["median"] <= lat["p75"] <= lat["p90"] <= lat["p95"] <= lat["p99"]
        assert lat["iqr"] == pytest.approx(lat["p75"] - lat["p25"])
        assert c["images_per_sec"] == pytest.approx(c["batch_size"] / lat["median"] * 1e3)
        assert c["gmacs"] == pytest.approx(c["flops_per_image"] / 2e9)
    assert data["cases"][2]["param_count"] == 11_689_512  # resnet18 (torchvision)


def test_table_sort_and_csv(tmp_path):
    result = bench(TINY, "resnet20", "--same-process", "--rounds", "2", "--iters", "4", *FAST, "--sort", "name",
                   "--reference", "resnet20/fp32/b32/nchw", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["case"] for r in rows] == sorted(r["case"] for r in rows)
    ref = next(r for r in rows if r["variant"] == "resnet20")
    assert float(ref["relative"]) == 1.0 and ref["significant"] == ""
    for r in rows:
        assert float(r["infer_samples_per_sec"]) == float(r["images_per_sec"])
        assert float(r["infer_step_time"]) == float(r["latency_median_ms"]) and r["infer_batch_size"] == "32"
        assert r["infer_img_size"] == "32" and float(r["gmacs"]) > 0 and float(r["param_count"]) > 0
    result = bench(TINY, "--dtype", "fp32,bf16", "--channels-last", "both", "--same-process", "--rounds", "1",
                   "--iters", "3", *FAST)
    assert result.exit_code == 0, result.stderr
    assert "vs #1" in result.stdout and "reference" in result.stdout and "bf16" in result.stdout
    assert result.stdout.count(" nhwc ") == 2 and result.stdout.count(" nchw ") == 2
    assert "one round: the significance test sees only the iterations" in result.stderr


def test_subprocess_and_same_process_agree_within_noise():
    args = ["resnet20", "--grid", "--rounds", "2", "--iters", "20", "--batch", "4", *FAST, "--format", "json"]
    runs = {}
    for mode in ([], ["--same-process"]):
        result = bench(*args, *mode)
        assert result.exit_code == 0, result.stderr
        data = json.loads(result.stdout)
        (case,) = data["cases"]
        runs[data["process"]] = case
    sub, same = runs["subprocess"], runs["same-process"]
    rel, low, high, _ = relative_throughput(sub["round_medians_ms"], same["round_medians_ms"], 4, 4,
                                            sub["latency_ms"]["median"], same["latency_ms"]["median"])
    print(f"subprocess / same-process throughput: {rel:.3f} ({low:.3f}-{high:.3f})")
    assert low <= 1 <= high and 0.25 < rel < 4  # a busy machine swings single rounds by 2x


CRASHING_WORKER = """
import json, os, sys
job = json.loads(sys.stdin.read())
if "8-16-32-64" in job["spec"]:
    sys.stderr.write("simulated crash\\n")
    os._exit(3)
from resnet_cli.bench import worker
reply, code = worker.answer(job)
print(json.dumps(reply))
sys.exit(code)
"""


def test_a_crashed_case_keeps_the_other_rows_printed_and_saved(tmp_path, monkeypatch):
    monkeypatch.setattr(g, "worker_command", lambda: [sys.executable, "-c", CRASHING_WORKER])
    saved = tmp_path / "runs.jsonl"
    result = bench("resnet20", TINY, "--rounds", "1", "--iters", "3", *FAST, "--format", "json", "--save", str(saved))
    assert result.exit_code == 1, result.stderr
    ok, crashed = json.loads(result.stdout)["cases"]
    assert ok["rounds"] == 1 and ok["latency_ms"]["median"] > 0 and ok["error"] is None
    assert crashed["rounds"] == 0 and crashed["latency_ms"] is None
    assert "status 3" in crashed["error"] and "simulated crash" in crashed["error"]
    assert "simulated crash" in result.stderr
    lines = [json.loads(x) for x in saved.read_text().splitlines()]
    assert [x["case"] for x in lines] == ["resnet20/fp32/b32/nchw"] and lines[0]["result"]["images_per_sec"] > 0


def test_ctrl_c_in_a_case_keeps_the_finished_cases(tmp_path):
    saved = tmp_path / "runs.jsonl"
    code, out, err = interrupt_when(["bench", TINY, "resnet(depth=50)", "--rounds", "1", "--iters", "2000",
                                     "--batch", "1", *FAST, "--format", "json", "--save", str(saved)],
                                    "case 2 of 2")  # once the second case has started
    assert code == 130, err
    data = json.loads(out)
    assert data["interrupted"] is True
    done, cut = data["cases"]
    assert done["rounds"] == 1 and done["iterations"] == 2000 and done["latency_ms"]["median"] > 0
    assert cut["rounds"] == 0 and cut["latency_ms"] is None
    assert "interrupted" in err and "Traceback" not in err
    assert [json.loads(x)["case"] for x in saved.read_text().splitlines()] == [done["case"]]


@pytest.mark.parametrize("args, fragment", [
    ([TINY, "resnet20", "--max-batch"], "--max-batch"),
    ([TINY, "--dtype", "fp32,fp8"], "fp8"),
    ([TINY, "--channels-last=sideways"], "--channels-last"),
    ([TINY, "--sort", "speed"], "--sort"),
    ([TINY, "resnet20", "--reference", "nope"], "--reference"),
    ([TINY, "resnet20", "--mode", "train", "--nproc", "2"], "--nproc measures one case"),
])
def test_grid_usage_errors_exit_2(args, fragment):
    result = bench(*args, "--size", "32")
    assert result.exit_code == 2 and fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_no_retry_fails_instead_of_halving():
    from resnet_cli.bench.memory import OomRetry
    from resnet_cli.errors import RuntimeFailure

    class Oom(RuntimeError):
        pass

    def attempt(batch):
        if batch > 8:
            raise Oom("CUDA out of memory")
        return batch

    assert OomRetry(lambda e: isinstance(e, Oom), lambda: None).run(32, attempt) == (8, 8)
    with pytest.raises(RuntimeFailure, match="batch 32 ran out of device memory and --no-retry"):
        OomRetry(lambda e: isinstance(e, Oom), lambda: None, retry=False).run(32, attempt)


def test_cpu_dtype_without_native_instructions_is_named_with_the_faster_choice():
    from resnet_cli.bench.device import cpu_dtype_warning

    text = cpu_dtype_warning("bf16", {"sse2", "avx2", "avx512f"})
    assert "no native bf16 instructions" in text and "fp32 is the faster choice" in text
    assert cpu_dtype_warning("bf16", {"avx512f", "avx512_bf16"}) is None
    assert cpu_dtype_warning("bf16", {"asimd", "bf16"}) is None  # ARM's BF16 extension
    assert "no native fp16" in cpu_dtype_warning("fp16", {"avx512f", "avx512_bf16"})
    assert cpu_dtype_warning("fp16", {"avx512fp16"}) is None and cpu_dtype_warning("fp32", set()) is None


def fake_run(batch, times, requested=None, warnings=()):
    """A worker answer's ``run`` as the worker writes it (only the keys the grid reads)."""
    result = {"batch_size": batch, "requested_batch_size": requested or batch, "peak_memory_bytes": 1000,
              "peak_reserved_bytes": None, "first_call_ms": 5.0, "warmup_stable": True, "warmup_iterations": 5,
              "flops": 2_000_000_000 * batch}
    report = {"results": [result], "peak": {"tflops": 2.0, "source": "measured", "gemm_size": 1024, "busy": False},
              "flops_per_image": 2_000_000_000, "param_count": 1_500_000, "spec": "resnet18", "warnings": list(warnings),
              "input_size": [3, 32, 32], "environment": {"device": "cuda:0", "device_name": "GPU"}}
    return {"report": report, "times_ms": list(times)}


def test_pooling_an_oom_retried_case_and_its_row():
    from rich.console import Console

    from resnet_cli.render import grid as view

    cases = g.expand([("a", "resnet18", (32, 32))], ("fp32",), (False,), (8, 16))
    runs = iter([fake_run(8, [10.0, 10.5, 9.5, 10.0]), fake_run(8, [20.0, 20.5, 19.5], requested=16),
                 fake_run(8, [10.2, 9.8, 10.1]), fake_run(8, [20.2, 19.8, 20.1], requested=8)])
    jobs = []

    def run(job):
        jobs.append(job)
        return {"ok": True, "run": next(runs)}

    grid = g.Grid(cases, lambda c, b, p: {"case": c.name, "batch": b, "peak": p}, run, rounds=2)
    grid.run()
    # the second round of the retried case asks for the batch that ran; the peak measured once is handed on
    assert [j["batch"] for j in jobs] == [8, 16, 8, 8] and [j["peak"] for j in jobs] == [None, 2.0, 2.0, 2.0]
    rep = g.report(grid, 0, device="cuda", process="subprocess", warmup=5, iters=3, min_time_s=None, threads=None,
                   compile_mode=None, sort="run")
    first, retried = rep.cases
    assert retried.retried and retried.batch_size == 8 and retried.requested_batch_size == 16
    assert retried.latency_ms.median == pytest.approx(20.05) and retried.iterations == 6
    assert first.latency_ms.median == 10.0 and retried.relative == pytest.approx(10.0 / 20.05, rel=1e-9) and retried.significant is True
    assert retried.images_per_sec == pytest.approx(8 / 20.05e-3) and retried.utilization == pytest.approx(
        2e9 * 8 / 20.05e-3 / 1e12 / 2.0)
    assert any("batch 16 ran out of memory; batch 8 was measured" in w for w in rep.warnings)
    buf = io.StringIO()
    for r in view.renderables(rep):
        Console(file=buf, width=250).print(r)
    assert "8 (of 16, OOM)" in buf.getvalue() and "slower" in buf.getvalue()


def test_ctrl_c_names_why_each_unfinished_case_has_no_or_fewer_rounds(tmp_path):
    """Ctrl-C in case 2's second round (case 1 done, case 3 with 1 of 2 rounds), then in a one-round grid
    in case 2 (case 3 never ran): ``error`` says why a case has fewer rounds (never null with rounds
    missing), the row says ``not run`` rather than ``failed``, and only cases with a finished round are
    saved."""
    from rich.console import Console

    from resnet_cli.render import grid as view

    cases = g.expand([("a", "resnet18", (32, 32))], ("fp32",), (False,), (1, 2, 4))
    calls = []

    def run(job):
        calls.append(job["case"])
        if len(calls) == 5:
            raise KeyboardInterrupt
        return {"ok": True, "run": fake_run(job["batch"], [10.0, 10.5, 9.5])}

    grid = g.Grid(cases, lambda c, b, p: {"case": c.name, "batch": b}, run, rounds=2)
    grid.run()
    assert grid.interrupted and calls == [c.name for c in cases] + [cases[0].name, cases[1].name]
    assert grid.errors == [None, "interrupted during its round 2 of 2", "interrupted after 1 of 2 rounds"]
    calls.clear()
    calls.extend(["x"] * 3)  # the next call is the 5th: case 2's first round
    grid = g.Grid(cases, lambda c, b, p: {"case": c.name, "batch": b}, run, rounds=1)
    grid.run()
    assert grid.errors == [None, "interrupted during its round 1 of 1", g.NOT_RUN]
    rep = g.report(grid, 0, device="cuda", process="subprocess", warmup=5, iters=3, min_time_s=None, threads=None,
                   compile_mode=None, sort="run")
    done, cut, unstarted = rep.cases
    assert (done.rounds, cut.rounds, unstarted.rounds) == (1, 0, 0)
    assert unstarted.error == "interrupted before it ran" and unstarted.latency_ms is None
    assert f"{unstarted.case}: interrupted before it ran" in rep.warnings
    buf = io.StringIO()
    for r in view.renderables(rep):
        Console(file=buf, width=250).print(r)
    rows = buf.getvalue().splitlines()
    assert any("not run" in r and "a/fp32" not in r and " 4 " in r for r in rows), buf.getvalue()
    assert not any("failed" in r for r in rows), buf.getvalue()
    assert [c.case for c in rep.cases if c.rounds] == [done.case]  # what --save writes (run_grid: rounds > 0)


@pytest.mark.parametrize("iters, rounds, shares", [(3, 2, [2, 1]), (10, 3, [4, 3, 3]), (24, 3, [8, 8, 8]),
                                                    (2, 3, [1, 1]), (1, 5, [1])])
def test_iters_is_a_cases_exact_total_over_its_rounds(iters, rounds, shares):
    per_round, seconds, used = g.split_over_rounds(iters, 2.0, rounds)
    assert per_round == shares and sum(per_round) == iters and used == len(shares) and seconds == 2.0 / used
    assert g.split_over_rounds(None, 3.0, 3) == (None, 1.0, 3)
    cases = g.expand([("a", "resnet18", (32, 32))], ("fp32",), (False,), (1, 2))
    jobs = []

    def run(job):
        jobs.append(job)
        return {"ok": True, "run": fake_run(job["batch"], [10.0] * job["iters"])}

    grid = g.Grid(cases, lambda c, b, p: {"case": c.name, "batch": b, "iters": None}, run, used, round_iters=per_round)
    grid.run()
    rep = g.report(grid, 0, device="cpu", process="same-process", warmup=5, iters=iters, min_time_s=None,
                   threads=None, compile_mode=None, sort="run")
    assert [c.iterations for c in rep.cases] == [iters, iters] and [j["iters"] for j in jobs[::2]] == shares


def test_grid_times_exactly_iters_per_case_and_says_when_rounds_are_fewer():
    result = bench("resnet20", "resnet20", "--dtype", "fp32,bf16", "--iters", "3", "--rounds", "2", "--same-process",
                   *FAST, "--batch", "2", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["iters"] == 3 and data["rounds"] == 2
    assert [(c["iterations"], len(c["round_medians_ms"])) for c in data["cases"]] == [(3, 2)] * 4
    result = bench(TINY, "resnet20", "--iters", "2", "--same-process", *FAST, "--batch", "1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert "--iters 2 is fewer than --rounds 3: 2 rounds of 1 timed iteration each" in result.stderr
    data = json.loads(result.stdout)
    assert data["rounds"] == 2 and [c["iterations"] for c in data["cases"]] == [2, 2]


def test_peak_probe_grows_past_small_gemms_and_reads_its_cpu_share(monkeypatch):
    import torch

    from resnet_cli.bench import device

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        peak = device.measure_peak(torch.device("cpu"), "fp32", max_n=1024, budget_s=0.5)
        assert peak.gemm_size in (512, 1024) and peak.tflops > 0  # never the 256 that reads 10x low
        monkeypatch.setattr(device.time, "process_time", lambda: 0.0)  # the GEMM's threads got no CPU time
        assert device.measure_peak(torch.device("cpu"), "fp32", max_n=512).busy is True
    finally:
        torch.set_num_threads(threads)


def test_a_busy_peak_probe_is_a_warning(monkeypatch):
    from resnet_cli.bench import session
    from resnet_cli.bench.records import Peak

    monkeypatch.setattr(session, "measure_peak", lambda device, dtype: Peak(0.001, "measured", 512, busy=True))
    result = bench(TINY, "--size", "32", "--warmup", "1", "--threads", "1", "--iters", "3", "--batch", "1",
                   "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["peak"]["busy"] is True
    assert any("too busy to measure the peak GEMM rate" in w and "--peak-tflops" in w for w in data["warnings"])


def test_channels_last_value_is_optional_for_bench_only():
    from resnet_cli.cli import _optional_values

    assert _optional_values(["bench", "r18", "--channels-last"]) == ["bench", "r18", "--channels-last", "on"]
    assert _optional_values(["bench", "--channels-last", "--dtype", "bf16"])[:3] == ["bench", "--channels-last", "on"]
    assert _optional_values(["bench", "--channels-last", "BOTH", "r18"]) == ["bench", "--channels-last", "BOTH", "r18"]
    assert _optional_values(["summary", "r18", "--channels-last"]) == ["summary", "r18", "--channels-last"]


def test_mode_is_one_more_dimension_of_the_grid():
    result = bench("resnet20", "--mode", "both", "--same-process", "--rounds", "1", "--iters", "3", "--batch", "2",
                   *FAST, "--format", "json")
    assert result.exit_code == 0, result.stderr
    eval_case, train_case = json.loads(result.stdout)["cases"]
    assert (eval_case["mode"], train_case["mode"]) == ("eval", "train")
    assert train_case["case"] == eval_case["case"] + "/train" and train_case["relative"] is not None
    # a training step's FLOPs (forward + backward + optimizer) exceed the forward pass's
    assert train_case["tflops"] * train_case["latency_ms"]["median"] > 2 * eval_case["tflops"] * eval_case["latency_ms"]["median"]


# --- the grid's records carry what a single run's do ----------------------------------------------------
TRAIN_GRID = ["resnet20", "--mode", "both", "--same-process", "--rounds", "1", "--iters", "3", "--batch", "2",
              "--size", "32", "--warmup", "1", "--threads", "1", "--optimizer", "adamw", "--amp", "bf16", "--detail"]


def test_grid_csv_fills_train_columns_for_train_cases_as_a_single_run_does():
    result = bench(*TRAIN_GRID, "--peak-tflops", "1", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    eval_row, train_row = csv.DictReader(io.StringIO(result.stdout))
    assert eval_row["infer_samples_per_sec"] and eval_row["infer_step_time"] and eval_row["infer_batch_size"] == "2"
    assert not eval_row["train_samples_per_sec"] and not eval_row["train_step_time"] and not eval_row["forward_ms"]
    assert train_row["train_samples_per_sec"] == train_row["images_per_sec"]
    assert train_row["train_step_time"] == train_row["latency_median_ms"] and train_row["train_batch_size"] == "2"
    assert not train_row["infer_samples_per_sec"] and not train_row["infer_step_time"]
    assert not train_row["infer_batch_size"]
    assert (eval_row["optimizer"], train_row["optimizer"], train_row["amp"]) == ("", "adamw", "bf16")
    phases = [float(train_row[f"{k}_ms"]) for k in ("forward", "backward", "optimizer")]
    assert all(p > 0 for p in phases) and sum(phases) < 1.5 * float(train_row["latency_median_ms"])


def test_grid_json_and_save_carry_optimizer_amp_and_phases(tmp_path):
    saved = tmp_path / "g.jsonl"
    result = bench(*TRAIN_GRID, "--peak-tflops", "1", "--save", str(saved), "--format", "json")
    assert result.exit_code == 0, result.stderr
    eval_case, train_case = json.loads(result.stdout)["cases"]
    assert (eval_case["optimizer"], eval_case["amp"], eval_case["phase_ms"]) == (None, "bf16", None)
    assert (train_case["optimizer"], train_case["amp"]) == ("adamw", "bf16")
    assert set(train_case["phase_ms"]) == {"forward", "backward", "optimizer"}
    lines = [json.loads(line) for line in saved.read_text().splitlines()]
    assert [(r["settings"]["mode"], r["settings"]["optimizer"], r["settings"]["amp"]) for r in lines] == [
        ("eval", None, "bf16"), ("train", "adamw", "bf16")]
    assert lines[1]["result"]["phase_ms"] == train_case["phase_ms"] and lines[0]["result"]["phase_ms"] is None


def test_a_grid_save_line_has_a_single_runs_layout(tmp_path):
    """A grid case's --save line carries every key of a single run's line (top level and ``result``)
    except the per-process result keys README names as having no pooled value."""
    grid_file, single_file = tmp_path / "g.jsonl", tmp_path / "s.jsonl"
    tiny = ["resnet20", "--batch", "2", "--size", "32", "--warmup", "1", "--threads", "1", "--peak-tflops", "1",
            "--iters", "2"]
    result = bench(*tiny, "--mode", "both", "--rounds", "2", "--same-process", "--save", str(grid_file))
    assert result.exit_code == 0, result.stderr
    result = bench(*tiny, "--mode", "train", "--save", str(single_file))
    assert result.exit_code == 0, result.stderr
    single = json.loads(single_file.read_text())
    eval_line, train_line = (json.loads(x) for x in grid_file.read_text().splitlines())
    for line in (eval_line, train_line):
        assert set(single) <= set(line), set(single) - set(line)
        assert set(single["result"]) - set(line["result"]) == {"warmup_iterations", "warmup_stable", "compile_ms",
                                                               "outliers", "flops"}
        assert set(single["settings"]) <= set(line["settings"])
        assert line["peak"] == single["peak"] == {"tflops": 1.0, "source": "--peak-tflops", "gemm_size": None,
                                                  "busy": False}
        assert line["result"]["first_call_ms"] > 0
    res = train_line["result"]
    assert res["plan_peak_bytes"] > 0 and res["step_peak_bytes"] > 0
    assert res["plan_error_percent"] == pytest.approx(100 * (res["plan_peak_bytes"] - res["step_peak_bytes"])
                                                      / res["step_peak_bytes"])
    assert res["plan_peak_bytes"] == single["result"]["plan_peak_bytes"]  # the plan does not depend on timing
    assert eval_line["result"]["plan_peak_bytes"] is None


def test_grid_table_shows_the_phases_and_the_training_settings():
    result = CliRunner().invoke(app, ["bench", *TRAIN_GRID, "--peak-tflops", "1"], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.stderr
    assert "fwd / bwd / opt ms" in result.stdout and "training step with adamw" in result.stdout
    assert "bf16 autocast over fp32 weights" in result.stdout


def test_utilisation_over_100_percent_is_warned_by_the_peak_source(monkeypatch):
    from resnet_cli.bench import session
    from resnet_cli.bench.records import Peak

    tiny = ["resnet20", "--size", "32", "--warmup", "1", "--threads", "1", "--iters", "3", "--batch", "2"]
    given = bench(*tiny, "--peak-tflops", "0.001", "--format", "json")
    assert given.exit_code == 0, given.stderr
    texts = json.loads(given.stdout)["warnings"]
    assert any("exceeds the peak given with --peak-tflops" in w for w in texts)
    assert not any("measured GEMM peak" in w for w in texts)
    grid_given = bench(*tiny, "--grid", "--rounds", "1", "--same-process", "--peak-tflops", "0.001", "--format", "json")
    assert grid_given.exit_code == 0, grid_given.stderr
    assert any(w.startswith("resnet20/fp32/b2/nchw: the achieved rate exceeds the peak given with --peak-tflops")
               for w in json.loads(grid_given.stdout)["warnings"])
    monkeypatch.setattr(session, "measure_peak", lambda device, dtype: Peak(1e-6, "measured", 512))
    grid = bench(*tiny, "--grid", "--rounds", "1", "--same-process", "--format", "json")
    assert grid.exit_code == 0, grid.stderr
    data = json.loads(grid.stdout)
    assert data["cases"][0]["utilization"] > 1
    assert any(w.startswith("resnet20/fp32/b2/nchw: the achieved rate exceeds the measured GEMM peak")
               for w in data["warnings"])

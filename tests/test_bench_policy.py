"""Bench policies with injected runners: OOM retry, max-batch search, memory estimate, the timed loop,
result arithmetic, rendering and --save lines. No GPU needed."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from resnet_cli.bench import runner
from resnet_cli.bench.device import MemoryProbe, is_oom, measure_peak
from resnet_cli.bench.memory import (LIVE_TENSORS, OomRetry, estimate_memory, human_bytes, largest_fitting,
                                     refuse_if_too_big)
from resnet_cli.bench.records import BenchReport, Environment, Peak
from resnet_cli.bench.save import append_line
from resnet_cli.bench.session import make_result
from resnet_cli.errors import RuntimeFailure
from resnet_cli.render import bench as view


class FakeOOM(RuntimeError):
    pass


def oom_runner(limit: int, calls: list):
    """A measurement that 'runs out of memory' above ``limit`` and returns its batch otherwise."""
    def attempt(batch: int):
        calls.append(batch)
        if batch > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return f"measured {batch}"
    return attempt


def test_oom_retry_halves_until_it_fits_and_frees_each_time():
    calls, freed, told = [], [], []
    retry = OomRetry(is_oom, lambda: freed.append(1), lambda failed, nxt: told.append((failed, nxt)))
    assert retry.run(256, oom_runner(100, calls)) == (64, "measured 64")
    assert calls == [256, 128, 64]
    assert len(freed) == 2 and told == [(256, 128), (128, 64)]
    # A later, larger batch of the sweep starts below the smallest failure instead of failing again.
    calls.clear()
    assert retry.run(512, oom_runner(100, calls)) == (64, "measured 64")
    assert calls == [64] and told[-1] == (512, 64)
    assert retry.run(32, oom_runner(100, calls)) == (32, "measured 32")


def test_oom_retry_gives_up_at_batch_one_and_passes_other_errors():
    retry = OomRetry(is_oom, lambda: None)
    with pytest.raises(RuntimeFailure, match="even at batch 1"):
        retry.run(8, oom_runner(0, []))

    def broken(batch):
        raise ValueError("not an OOM")
    with pytest.raises(ValueError):
        OomRetry(is_oom, lambda: None).run(8, broken)


def test_oom_retry_frees_after_the_exception_is_released():
    """The exception (and the tensors its traceback holds) must be gone when free() runs."""
    import gc
    import weakref

    seen = []

    class Big:
        pass

    def attempt(batch):
        if batch > 1:
            local = Big()
            seen.append(weakref.ref(local))
            raise torch.cuda.OutOfMemoryError("out of memory")
        return batch

    alive_at_free = []
    OomRetry(is_oom, lambda: alive_at_free.append(seen[-1]() is not None)).run(2, attempt)
    gc.collect()
    assert alive_at_free == [False]


def test_is_oom_recognises_wrapped_and_plain_messages():
    assert is_oom(torch.cuda.OutOfMemoryError("x"))
    assert is_oom(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    try:
        try:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        except Exception as inner:
            raise KeyError("compile failed") from inner
    except KeyError as outer:
        assert is_oom(outer)
    assert not is_oom(RuntimeError("shape mismatch"))
    assert not is_oom(FakeOOM("bad"))


@settings(max_examples=80, deadline=None)
@given(st.integers(min_value=1, max_value=5000), st.integers(min_value=1, max_value=4096))
def test_largest_fitting_finds_the_boundary(limit, ceiling):
    probes = []

    def fits(b):
        probes.append(b)
        return b <= limit
    assert largest_fitting(fits, ceiling) == min(limit, ceiling)
    assert len(probes) <= 2 * math.ceil(math.log2(ceiling + 1)) + 2
    assert max(probes) <= ceiling


def test_largest_fitting_fails_when_nothing_fits():
    with pytest.raises(RuntimeFailure, match="not even batch 1"):
        largest_fitting(lambda b: False, 64)


def test_memory_estimate_and_refusal():
    est = estimate_memory([100, 400, 50], input_numel=30, parameters=1000, batch=8, element_size=4)
    assert est.widest_activation_bytes == 8 * 400 * 4
    assert est.total_bytes == 1000 * 4 + 8 * (30 * 4 + LIVE_TENSORS * 400 * 4)
    refuse_if_too_big(est, est.total_bytes, 8, (32, 32))  # exactly fits: no error
    refuse_if_too_big(est, None, 8, (32, 32))  # unknown RAM: no check
    with pytest.raises(RuntimeFailure, match=r"batch 8 at 32x32 needs about .* --force"):
        refuse_if_too_big(est, est.total_bytes - 1, 8, (32, 32))
    assert human_bytes(512) == "512 B" and human_bytes(1536) == "1.5 KiB" and human_bytes(None) == "-"


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def fake_timer(times, clock):
    """A timer returning the next scripted latency (ms) and advancing the fake clock by it."""
    it = iter(times)

    def timer(step):
        step()
        ms = next(it)
        clock.now += ms / 1e3
        return ms
    return timer


def test_measure_keeps_first_call_apart_and_stops_warmup_when_stable():
    clock = FakeClock()
    times = [500.0, 30, 20, 11, 10, 10, 10, 10, 10] + [9.0] * 5
    m = runner.measure(lambda: None, fake_timer(times, clock), warmup=2, iters=5, clock=clock)
    assert m.first_call_ms == 500.0
    # [30, 20, 11] -> [10, 10, 10] and [20, 11, 10] -> [10, 10, 10] moved by > 5%; [11, 10, 10] did not.
    assert m.warmup_ms == [30, 20, 11, 10, 10, 10, 10, 10] and m.warmup_stable
    assert m.times_ms == [9.0] * 5


def test_measure_warmup_cap_and_min_time():
    clock = FakeClock()
    alternating = [1.0] + [10.0, 30.0] * 1000  # never stable
    timer = fake_timer(alternating, clock)
    m = runner.measure(lambda: None, timer, warmup=0, min_time_s=0.5, clock=clock)
    assert not m.warmup_stable and len(m.warmup_ms) == runner.WARMUP_CAP_ITERS
    assert len(m.times_ms) >= runner.MIN_ITERS and sum(m.times_ms) >= 500
    assert sum(m.times_ms[:-1]) < 500  # stopped as soon as both conditions held


def test_measure_interrupt_carries_partial_times():
    clock = FakeClock()
    calls = {"n": 0}

    def step():
        calls["n"] += 1
        if calls["n"] == 12:
            raise KeyboardInterrupt
    before = []
    with pytest.raises(runner.Interrupted) as info:
        runner.measure(step, fake_timer([5.0] * 100, clock), warmup=0, iters=100, clock=clock,
                       before_timed=lambda: before.append(1))
    m = info.value.measurement
    assert before == [1] and m.first_call_ms == 5.0 and len(m.warmup_ms) == 6 and len(m.times_ms) == 4


def test_make_result_arithmetic():
    m = runner.Measurement(first_call_ms=900.0, warmup_ms=[12.0] * 6, warmup_stable=True,
                           times_ms=[10.0, 12.0, 11.0, 50.0, 11.0])
    r = make_result(16, 8, m, (1234, None), flops_per_image=2_000_000_000, peak=Peak(4.0, "--peak-tflops"),
                    compiled=True)
    assert r.latency_ms.median == 11.0 and r.batch_size == 8 and r.requested_batch_size == 16
    assert r.images_per_sec == pytest.approx(8 / 0.011)
    assert r.flops == 16_000_000_000 and r.tflops == pytest.approx(16e9 / 0.011 / 1e12)
    assert r.utilization == pytest.approx(r.tflops / 4.0)
    assert r.compile_ms == 900.0 and r.first_call_ms == 900.0 and r.outliers == 1
    assert make_result(8, 8, m, (None, None), 1, None, compiled=False).utilization is None


def _report(results) -> BenchReport:
    env = Environment("cpu", "Test CPU", "2.x", None, None, "Test CPU", 2, 1, "float32", "contiguous", None,
                      None, "3.11", "linux", 0.5)
    return BenchReport("resnet18", "resnet(...)", "cpu", "fp32", False, None, (3, 32, 32), 1, 3, None, 2.0,
                       "conv+linear", 1000, Peak(1.0, "measured", 1024), env, results)


def test_rows_bars_and_save_line(tmp_path):
    m = runner.Measurement(1.0, [1.0] * 6, True, [2.0, 2.0, 2.0])
    r1 = make_result(1, 1, m, (10, None), 1000, Peak(1.0, "measured"), False)
    r4 = make_result(4, 4, runner.Measurement(1.0, [1.0] * 6, True, [4.0] * 3), (20, None), 1000,
                     Peak(1.0, "measured"), False)
    report = _report([r1, r4])
    rows = view.rows(report)
    assert [r["batch_size"] for r in rows] == [1, 4] and set(rows[0]) == set(view.COLUMNS)
    assert rows[1]["images_per_sec"] == 1000.0 and rows[0]["latency_median_ms"] == 2.0
    assert view.bar(1000.0, 1000.0) == "█" * 40 and view.bar(0.0, 10.0) == "" and len(view.bar(500, 1000)) == 20
    assert view.bar(1, 320) == "▏"  # an eighth of a cell
    chart = view.bar_chart(report).plain
    assert "1 │" in chart and "4 │" in chart and "1,000.0" in chart
    path = tmp_path / "runs.jsonl"
    for r in (r1, r4):
        append_line(str(path), view.save_line(report, r, "2026-01-01T00:00:00+00:00"))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["result"]["batch_size"] for line in lines] == [1, 4]
    assert lines[0]["settings"]["threads"] == 1 and lines[0]["environment"]["cpu_model"] == "Test CPU"
    with pytest.raises(ValueError):
        append_line(str(path), "two\nlines")


def test_cpu_memory_probe_sees_a_big_allocation():
    probe = MemoryProbe(torch.device("cpu"))
    probe.begin()
    block = torch.ones(64, 1024, 1024)  # 256 MiB, touched
    peak, reserved = probe.stop()
    del block
    assert reserved is None
    assert peak is not None and peak >= 200 * 2 ** 20


def test_measured_peak_is_a_plausible_cpu_rate():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        peak = measure_peak(torch.device("cpu"), "fp32", target_s=0.0, max_n=256)
    finally:
        torch.set_num_threads(threads)
    assert peak.source == "measured" and peak.gemm_size == 256
    assert 1e-4 < peak.tflops < 100  # 0.1 GFLOP/s .. 100 TFLOP/s

"""Pure parts of bench: statistics, outliers, warm-up stability, warnings, option parsing."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resnet_cli.bench.config import parse_batches, parse_device
from resnet_cli.bench.stats import (OUTLIER_THRESHOLD, batch_warnings, count_outliers, is_stable, modified_z_scores,
                                    percentile, summarize)
from resnet_cli.errors import UsageError

samples = st.lists(st.floats(min_value=0.001, max_value=1e4, allow_nan=False), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(samples, st.sampled_from([0, 5, 50, 95, 100]))
def test_percentile_matches_numpy_linear(values, q):
    assert percentile(sorted(values), q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(samples)
def test_summarize_matches_numpy(values):
    s = summarize(values)
    assert s.median == pytest.approx(float(np.median(values)), rel=1e-12)
    assert s.mean == pytest.approx(float(np.mean(values)), rel=1e-9)
    assert s.std == pytest.approx(float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, rel=1e-9, abs=1e-9)
    assert s.min == min(values) and s.max == max(values)
    assert s.min <= s.p5 <= s.median <= s.p95 <= s.max


def test_summarize_rejects_empty():
    with pytest.raises(ValueError):
        summarize([])


def test_modified_z_scores_are_hyperfines():
    values = [10.0, 11.0, 9.0, 10.0, 12.0]  # median 10, |dev| = 0,1,1,0,2 -> MAD 1
    assert modified_z_scores(values) == [0.0, 1.0, -1.0, 0.0, 2.0]
    assert OUTLIER_THRESHOLD == pytest.approx(14.826)


def test_outlier_is_counted_only_beyond_ten_robust_sigmas():
    base = [10.0, 10.5, 9.5, 10.2, 9.8, 10.1, 9.9, 10.3, 9.7, 10.0]
    mad = statistics.median(abs(v - statistics.median(base + [0])) for v in base + [0])
    assert count_outliers(base + [10.0 + 14 * mad]) == 0
    assert count_outliers(base + [10.0 + 40 * mad]) == 1
    assert count_outliers(base + [30.0, 31.0]) == 2


def test_zero_mad_flags_only_values_off_the_median():
    assert modified_z_scores([5.0, 5.0, 5.0, 6.0]) == [0.0, 0.0, 0.0, math.inf]
    assert count_outliers([5.0, 5.0, 5.0]) == 0
    assert count_outliers([5.0]) == 0


def test_is_stable_needs_two_windows_within_tolerance():
    assert not is_stable([1.0] * 5)
    assert is_stable([1.0] * 6)
    assert not is_stable([2.0, 2.0, 2.0, 1.0, 1.0, 1.0])  # still getting faster
    assert is_stable([5.0, 1.04, 1.0, 1.0, 1.02, 1.01, 1.0])
    assert not is_stable([1.0, 1.0, 1.0, 1.06, 1.06, 1.06])


def test_warnings_say_what_to_try():
    tight = summarize([10.0, 10.1, 9.9] * 5)
    assert batch_warnings(8, tight, 15, 0, True, 6) == []
    wide = summarize([5.0, 10.0, 20.0] * 5)
    texts = batch_warnings(8, wide, 15, 2, False, 55)
    assert len(texts) == 3
    assert all(t.startswith("batch 8:") for t in texts)
    assert "outliers" in texts[0] and "--min-time" in texts[0]
    assert "varies widely" in texts[1] and "--threads" in texts[1]
    assert "55 warm-up" in texts[2] and "--warmup" in texts[2]
    few = batch_warnings(1, tight, 3, 0, True, 6)
    assert len(few) == 1 and "only 3 timed iterations" in few[0] and "--iters" in few[0]


@pytest.mark.parametrize("text, expected", [("64", (64,)), ("1,8,32,64", (1, 8, 32, 64)), (" 4 , 2 ", (4, 2))])
def test_parse_batches(text, expected):
    assert parse_batches(text) == expected


@pytest.mark.parametrize("text, fragment", [("0", "'0' must be 1 or more"), ("-1", "'-1' must be 1 or more"),
                                            ("abc", "'abc' is not an integer"), ("1,,2", "empty item"),
                                            ("", "empty item"), ("2.5", "'2.5' is not an integer"),
                                            ("1,1", "batch size 1 twice"), ("8, 1,08", "batch size 8 twice")])
def test_parse_batches_rejects(text, fragment):
    with pytest.raises(UsageError, match=fragment):
        parse_batches(text)


@pytest.mark.parametrize("text, expected", [("cpu", "cpu"), ("CUDA", "cuda"), ("cuda:1", "cuda:1"), ("mps", "mps")])
def test_parse_device(text, expected):
    assert parse_device(text) == expected


@pytest.mark.parametrize("text", ["tpu", "cuda:", "cpu:0", "cuda:x", "gpu"])
def test_parse_device_rejects(text):
    with pytest.raises(UsageError, match="cpu, cuda, cuda:N"):
        parse_device(text)

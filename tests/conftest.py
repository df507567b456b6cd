"""Shared test helpers: the reference facts in tests/reference (copied into the repository, see its
README) and the float64 fingerprint."""

from __future__ import annotations

import json
import math
from pathlib import Path

import os

import pytest
from hypothesis import settings

# Property tests are deterministic on CI: with CI set (GitHub Actions, .ci/run), hypothesis derives its
# examples from each test's name (derandomize), keeps no example database, and runs a bounded number of
# examples, so a run is red or green for the code, never for the draw. Locally the default profile
# explores randomly (and remembers failures in .hypothesis/). Counter-examples found so far stay in
# the tests as @example. HYPOTHESIS_PROFILE=ci selects the CI profile explicitly.
settings.register_profile("ci", derandomize=True, database=None, max_examples=200, deadline=None,
                          print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

REFERENCE = Path(__file__).resolve().parent / "reference"


def load_reference(name: str) -> dict:
    """One reference file (``torchvision``, ``timm``, ``cifar``, or ``timm_more`` for timm_resnets_more.json)."""
    path = REFERENCE / ("timm_resnets_more.json" if name == "timm_more" else f"{name}_resnets.json")
    if not path.exists():
        pytest.fail(f"reference file {path} is missing from the repository")
    return json.loads(path.read_text())


def variant_names() -> list[str]:
    return (REFERENCE / "variant_names.txt").read_text().split()


def fingerprint(model, input_shape) -> dict:
    """The float64 forward-pass fingerprint of tests/reference/README.md."""
    import torch

    model = model.double().eval()
    state = model.state_dict()
    filled = {}
    for k, key in enumerate(sorted(state)):
        t = state[key]
        n = t.numel()
        if not t.is_floating_point():
            filled[key] = torch.zeros_like(t)
            continue
        s = torch.sin(0.37 * torch.arange(n, dtype=torch.float64) + 1.3 * k)
        if key.endswith("running_var"):
            v = 1 + 0.5 * s.abs()
        elif key.endswith("running_mean") or key.endswith("bias"):
            v = 0.1 * s
        elif t.dim() == 1:
            v = 1 + 0.1 * s
        else:
            v = s * math.sqrt(2 / (n / t.shape[0]))
        filled[key] = v.reshape(t.shape)
    model.load_state_dict(filled, strict=True)
    count = math.prod(input_shape)
    x = torch.cos(0.011 * torch.arange(count, dtype=torch.float64)).reshape(input_shape)
    with torch.no_grad():
        logits = model(x)
    return {"logits_first8": logits[0, :8].tolist(), "logits_sum": logits.sum().item(),
            "logits_abs_sum": logits.abs().sum().item()}


def interrupt_when(args: list[str], marker: str, pause_s: float = 1.0, timeout_s: float = 120.0):
    """Run ``resnet-cli ARGS`` in a real process, send Ctrl-C (SIGINT) ``pause_s`` after a stderr line
    containing ``marker`` (or after ``timeout_s``), and return ``(returncode, stdout, stderr after the
    marker)``. The process is killed if it outlives the test."""
    import os
    import subprocess
    import sys
    import signal
    import time

    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(repo))
    proc = subprocess.Popen([sys.executable, "-m", "resnet_cli", *args], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout_s
        for line in proc.stderr:
            if marker in line or time.monotonic() > deadline:
                break
        time.sleep(pause_s)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err

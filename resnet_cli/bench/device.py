"""Devices: which are available, the environment block, the peak GEMM rate, and memory probes.

Memory figures:
- CUDA: ``torch.cuda.max_memory_allocated`` / ``max_memory_reserved`` over the timed iterations
  (``reset_peak_memory_stats`` after warm-up); weights, input and activations, as the caching
  allocator counts them.
- CPU: the rise of the process's peak resident set size from just before the batch's first call
  (weights and input already allocated) to the end of its timed loop: activations, oneDNN
  workspaces and caches. Linux: ``VmHWM``, reset by writing 5 to ``/proc/self/clear_refs``, after
  ``malloc_trim(0)``; elsewhere the growth of ``getrusage().ru_maxrss``, or None when the old peak
  was never exceeded and the figure is therefore unknown.
"""

from __future__ import annotations

import gc
import os
import platform
import sys
import time
from typing import Optional

import torch

from ..errors import RuntimeFailure
from .records import Environment, Peak

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def available_devices() -> list[str]:
    """Every device torch can run on here: ``cpu``, ``cuda:0``.., ``mps``."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def check_device(name: str) -> torch.device:
    """The torch device for a normalised ``--device`` value (see ``config.parse_device``).

    Raises:
        RuntimeFailure: the device is not available; the message names the ones that are.
    """
    available = available_devices()
    if name == "cuda" and any(d.startswith("cuda:") for d in available):
        name = f"cuda:{torch.cuda.current_device()}"
    if name not in available:
        why = ""
        if name.startswith("cuda") and torch.version.cuda is None:
            why = f" (this torch, {torch.__version__}, was built without CUDA)"
        elif name.startswith("cuda") and torch.cuda.is_available():
            why = f" ({torch.cuda.device_count()} GPU(s) visible)"
        elif name.startswith("cuda"):
            why = " (no CUDA GPU is visible)"
        raise RuntimeFailure(f"--device {name} is not available{why}; available devices: {', '.join(available)}")
    return torch.device(name)


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _meminfo_bytes(key: str) -> Optional[int]:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room_bytes() -> Optional[int]:
    """Memory left under a cgroup v2 limit (containers), None without a limit."""
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="utf-8") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current", encoding="utf-8") as f:
            current = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(0, int(limit) - current)


def available_ram_bytes() -> Optional[int]:
    """RAM this process can still use: ``MemAvailable`` (Linux), capped by a cgroup limit; elsewhere
    the free physical pages; None when unknown."""
    room = _meminfo_bytes("MemAvailable")
    if room is None:
        try:
            room = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            room = None
    cgroup = _cgroup_room_bytes()
    if cgroup is not None:
        room = cgroup if room is None else min(room, cgroup)
    return room


def total_ram_bytes() -> Optional[int]:
    total = _meminfo_bytes("MemTotal")
    if total is None:
        try:
            total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    return total


def load_average() -> Optional[float]:
    """The 1-minute load average (None where ``os.getloadavg`` is missing, e.g. Windows)."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def environment(device: torch.device, dtype: str, channels_last: bool, load: Optional[float] = None) -> Environment:
    """The environment block of a report, read at the time of the call (``load``: see ``load_average``)."""
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else ("Apple MPS" if device.type == "mps" else cpu_model())
    cudnn = torch.backends.cudnn.version() if cuda and torch.backends.cudnn.is_available() else None
    return Environment(
        device=str(device), device_name=name, torch_version=torch.__version__,
        cuda_version=torch.version.cuda if cuda else None, cudnn_version=cudnn,
        cpu_model=cpu_model(), cpu_count=os.cpu_count() or 1, threads=torch.get_num_threads(),
        dtype=str(TORCH_DTYPES[dtype]).replace("torch.", ""),
        memory_format="channels_last" if channels_last else "contiguous",
        tf32=bool(torch.backends.cudnn.allow_tf32) if cuda else None,
        total_memory_bytes=torch.cuda.get_device_properties(device).total_memory if cuda else total_ram_bytes(),
        python_version=platform.python_version(), platform=platform.platform(), load_average=load,
    )


def _time_gemm_s(a: torch.Tensor, b: torch.Tensor, device: torch.device, reps: int) -> float:
    """Best seconds of one ``a @ b`` over ``reps`` timed calls (synchronised; noise only slows a GEMM)."""
    best = float("inf")
    for _ in range(reps):
        synchronize(device)
        t0 = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best


def measure_peak(device: torch.device, dtype: str, target_s: float = 0.02, max_n: int = 16384,
                 budget_s: float = 0.5) -> Peak:
    """The dense-matmul rate of ``device`` in ``dtype``, in TFLOP/s (1e12 FLOP/s; 2 n^3 FLOPs per n x n GEMM).

    Square GEMMs from n = 256, doubling until one call takes ``target_s`` or n reaches ``max_n`` (each
    size's first call warms the BLAS up), then the best of three more calls when they fit in
    ``budget_s``. A slow dtype (bf16 on a CPU without bf16 units) thus stops at a small n instead of
    running for seconds; the report names n.

    On CUDA in fp32 the GEMM runs in the math mode the convolutions use (TF32 when
    ``torch.backends.cudnn.allow_tf32``), so the ratio compares like with like.
    """
    tdtype = TORCH_DTYPES[dtype]
    matmul_tf32 = torch.backends.cuda.matmul.allow_tf32
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = bool(torch.backends.cudnn.allow_tf32)
    try:
        with torch.inference_mode():
            n = 256
            while True:
                a = torch.randn(n, n, device=device).to(tdtype)
                b = torch.randn(n, n, device=device).to(tdtype)
                seconds = _time_gemm_s(a, b, device, reps=2)
                if seconds >= target_s or n >= max_n:
                    break
                n *= 2
            if 3 * seconds <= budget_s:
                seconds = min(seconds, _time_gemm_s(a, b, device, reps=3))
            del a, b
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
    return Peak(tflops=2 * n ** 3 / seconds / 1e12, source="measured", gemm_size=n)


def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-memory failure of an accelerator (also when wrapped, as
    ``torch.compile`` does)."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    while exc is not None:
        if oom_type is not None and isinstance(exc, oom_type):
            return True
        if isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower():
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def free_memory(device: torch.device) -> None:
    """Drop unreachable tensors and return cached accelerator memory (after an OOM)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def _proc_status_kib(key: str) -> Optional[int]:
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _ru_maxrss_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def _malloc_trim() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class MemoryProbe:
    """Peak memory of one batch on one device: :meth:`begin` before the first call, :meth:`start_timed`
    after warm-up, :meth:`stop` at the end (see the module docstring)."""

    def __init__(self, device: torch.device):
        self.device = device
        self._base = 0
        self._old_peak = 0
        self._hwm_reset = False

    def begin(self) -> None:
        """Before the first call. CPU: return freed heap to the OS (glibc ``malloc_trim``) so memory kept
        from an earlier batch is not mistaken for room, then reset the peak RSS to the current RSS."""
        if self.device.type != "cpu":
            return
        _malloc_trim()
        self._hwm_reset = False
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
                f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
            self._hwm_reset = _proc_status_kib("VmHWM") is not None
        except OSError:
            pass
        rss = _proc_status_kib("VmRSS")
        self._old_peak = _ru_maxrss_bytes()
        self._base = rss * 1024 if rss is not None else self._old_peak  # no /proc: the old peak is the base

    def start_timed(self) -> None:
        """After warm-up. CUDA: reset the peak statistics, so cuDNN autotuning's trial workspaces in the
        first call do not count."""
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def stop(self) -> tuple[Optional[int], Optional[int]]:
        """(peak bytes above the start, peak reserved bytes or None)."""
        if self.device.type == "cuda":
            synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device), torch.cuda.max_memory_reserved(self.device)
        if self.device.type != "cpu":
            return None, None
        if self._hwm_reset:
            return max(0, _proc_status_kib("VmHWM") * 1024 - self._base), None
        peak = _ru_maxrss_bytes()
        return (max(0, peak - self._base) if peak > self._old_peak else None), None

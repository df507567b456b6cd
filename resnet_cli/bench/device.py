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


def _time_gemm_s(a: torch.Tensor, b: torch.Tensor, device: torch.device, reps: int) -> tuple[float, float]:
    """(best seconds of one ``a @ b`` over ``reps`` timed calls, share of the CPU the calls got).

    Calls are synchronised; noise only slows a GEMM, so the best call is the rate. The share is the
    process's CPU time over ``wall x torch threads`` (1.0: every thread ran all the time; CPU only,
    1.0 elsewhere)."""
    best, wall, cpu = float("inf"), 0.0, 0.0
    for _ in range(reps):
        synchronize(device)
        c0, t0 = time.process_time(), time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        t1, c1 = time.perf_counter(), time.process_time()
        best, wall, cpu = min(best, t1 - t0), wall + (t1 - t0), cpu + (c1 - c0)
    share = cpu / (wall * torch.get_num_threads()) if device.type == "cpu" and wall > 0 else 1.0
    return best, share


#: Below this share of CPU time (see ``_time_gemm_s``) the probe's rate is too low to divide by: the
#: utilisation would be overstated by more than 1 / 0.7.
BUSY_SHARE = 0.7


def measure_peak(device: torch.device, dtype: str, target_s: float = 0.02, max_n: int = 16384,
                 budget_s: float = 1.0) -> Peak:
    """The dense-matmul rate of ``device`` in ``dtype``, in TFLOP/s (1e12 FLOP/s; 2 n^3 FLOPs per n x n GEMM).

    Square GEMMs from n = 512 (CPU) or 2048 (GPU), doubling while the rate still grows by more than 10%
    or a call takes under ``target_s`` (small GEMMs do not reach a device's rate: a 256 x 256 probe
    can read 10x low), until n reaches ``max_n`` or the next size would not fit in ``budget_s``
    (a slow dtype, bf16 on a CPU without bf16 units, stops early); the best rate seen is the peak, and
    the report names its n. On the CPU the probe also reads the share of CPU time its threads got:
    under :data:`BUSY_SHARE` other processes held the cores and the peak is marked ``busy``.

    On CUDA in fp32 the GEMM runs in the math mode the convolutions use (TF32 when
    ``torch.backends.cudnn.allow_tf32``), so the ratio compares like with like.
    """
    tdtype = TORCH_DTYPES[dtype]
    matmul_tf32 = torch.backends.cuda.matmul.allow_tf32
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = bool(torch.backends.cudnn.allow_tf32)
    start = time.perf_counter()
    best = (0.0, 0, 1.0)  # rate FLOP/s, n, CPU share
    try:
        with torch.inference_mode():
            n = min(max_n, 512 if device.type == "cpu" else 2048)
            while True:
                a = torch.randn(n, n, device=device).to(tdtype)
                b = torch.randn(n, n, device=device).to(tdtype)
                torch.mm(a, b)  # each size's first call warms the BLAS up
                seconds, share = _time_gemm_s(a, b, device, reps=2)
                rate = 2 * n ** 3 / seconds
                grew = rate > 1.1 * best[0]
                if rate > best[0]:
                    best = (rate, n, share)
                spent = time.perf_counter() - start
                if n >= max_n or (seconds >= target_s and not grew) or spent + 3 * 8 * seconds > budget_s:
                    break
                n *= 2
            del a, b
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
    rate, n, share = best
    return Peak(tflops=rate / 1e12, source="measured", gemm_size=n, busy=share < BUSY_SHARE)


def _cpu_flags() -> Optional[set[str]]:
    """The CPU's feature flags (``flags`` on x86, ``Features`` on ARM in ``/proc/cpuinfo``); None unknown."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


#: CPU flags that give a dtype native arithmetic (x86: AVX-512 / AMX; ARM: the BF16 and FP16 extensions).
NATIVE_FLAGS = {"bf16": ("avx512_bf16", "amx_bf16", "bf16"), "fp16": ("avx512fp16", "amx_fp16", "fphp")}


def cpu_dtype_warning(dtype: str, flags: Optional[set[str]] = None, option: str = "--dtype") -> Optional[str]:
    """A warning when the CPU has no native instructions for ``dtype`` (None for fp32, for a CPU that
    has them, or when the flags cannot be read). Without them oneDNN converts every element to and
    from fp32 and bf16 ran resnet18 at 0.055x the speed of fp32 (issue 16); autocast (``option``
    ``--amp``) runs its convolutions in that dtype the same way (fp16 ~14x slower than fp32)."""
    if dtype not in NATIVE_FLAGS:
        return None
    flags = _cpu_flags() if flags is None else flags
    if flags is None or flags & set(NATIVE_FLAGS[dtype]):
        return None
    return (f"{option} {dtype} on this CPU ({cpu_model()}): the processor has no native {dtype} instructions "
            f"(none of {', '.join(NATIVE_FLAGS[dtype])} among its /proc/cpuinfo flags), so every operation "
            f"converts to and from fp32 and is usually several times slower than fp32; fp32 is the faster "
            "choice here")


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

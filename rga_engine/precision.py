"""The precision policy: which autocast a run trains and evaluates under.

``model.dtype``:

- ``auto``: bf16 autocast on CUDA, and on a CPU that computes bf16 natively (Intel AMX or
  AVX512-BF16); fp32 on every other CPU. Detected at run time, never assumed: on an AVX2-only CPU
  bf16 autocast is emulated and a MiniLM train step is ~30x *slower* than fp32, while on a Xeon
  with AMX it is ~1.5x faster (docs/results.md).
- ``bf16``: bf16 autocast on CUDA and on any CPU (forced); ``fp16``: fp16 autocast on CUDA only;
  ``fp32``: none.

``RGA_TUI_CPU_BF16=1`` / ``=0`` overrides the CPU detection (the test suite sets 0, so that its
results do not depend on the machine it runs on).
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from pathlib import Path

import torch

ENV = "RGA_TUI_CPU_BF16"
# x86 flags of /proc/cpuinfo that mean bf16 matrix arithmetic in hardware
_NATIVE_FLAGS = ("amx_bf16", "avx512_bf16")
CPUINFO = Path("/proc/cpuinfo")


@lru_cache(maxsize=1)
def _detected() -> tuple[bool, str]:
    try:  # Linux: the kernel's flags, exact
        flags = set(CPUINFO.read_text(errors="replace").split())
    except OSError:
        flags = None
    if flags is None:  # elsewhere: torch's own cpuinfo (x86 only; private, absent in old versions)
        cpu = getattr(torch, "cpu", None)
        probes = {"amx_bf16": getattr(cpu, "_is_amx_tile_supported", None),
                  "avx512_bf16": getattr(cpu, "_is_avx512_bf16_supported", None)}
        if not any(probes.values()):
            return False, f"not detected on this CPU ({platform.machine() or 'unknown'})"
        flags = {name for name, f in probes.items() if f is not None and f()}
    found = [f for f in _NATIVE_FLAGS if f in flags]
    return (True, "native bf16: " + ", ".join(found)) if found else (False, "no native bf16 (AMX / AVX512-BF16)")


def cpu_bf16() -> tuple[bool, str]:
    """(whether this CPU computes bf16 natively, why): ``RGA_TUI_CPU_BF16`` first, then detection."""
    forced = os.environ.get(ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1", f"{ENV}={forced}"
    return _detected()


def mixed_precision(dtype: str, device_type: str, native_cpu_bf16: bool | None = None) -> str:
    """Accelerate's ``mixed_precision`` for ``model.dtype`` on ``device_type`` (the module's
    docstring); ``native_cpu_bf16`` = None detects it."""
    if device_type == "cuda":
        return {"auto": "bf16", "bf16": "bf16", "fp16": "fp16"}.get(dtype, "no")
    if device_type == "cpu":
        if dtype == "bf16":
            return "bf16"
        if dtype == "auto":
            native = cpu_bf16()[0] if native_cpu_bf16 is None else native_cpu_bf16
            return "bf16" if native else "no"
    return "no"


def name(mp: str) -> str:
    """The precision as run_started and summary.json record it: ``fp32``, ``bf16`` or ``fp16``."""
    return "fp32" if mp == "no" else mp


def describe(dtype: str, mp: str, device_type: str) -> str:
    """One line for the run's log: the precision in use and why."""
    what = "fp32" if mp == "no" else f"{mp} autocast"
    why = cpu_bf16()[1] if device_type == "cpu" and dtype == "auto" else f"model.dtype = {dtype}"
    return f"precision: {what} on {device_type.upper()} ({why})"

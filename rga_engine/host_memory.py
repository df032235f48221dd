"""Host memory: PyTorch's large CPU tensors on transparent huge pages (Linux).

A training step allocates and frees the same large tensors every time (activations, gradients,
AdamW's temporaries; MiniLM's word-embedding gradient alone is 47 MB). glibc's malloc maps every
block over its mmap threshold (at most 32 MiB) anew and unmaps it at ``free``, so each step faults
those tensors in again, 4 KiB at a time, and the kernel zeroes every page: on the SST-2 demo 15.6
million minor page faults and ~40 s of system time per run. PyTorch's own switch
``THP_MEM_ALLOC_ENABLE=1`` asks the kernel for transparent huge pages (2 MiB) under every CPU
tensor of 2 MiB or more (``madvise``): 7 times fewer faults, 8 % off the demo's wall time (266 ->
245 s, the same numbers digit for digit; ``docs/research-log.md``, 2026-12-05, rule 21).

PyTorch reads the switch (documented in its CPU performance-tuning tutorial) once, at its first
CPU allocation, so :func:`request_huge_pages` sets it in the environment when ``rga_engine`` is
imported (``rga_engine/__init__.py``), before any tensor exists; the worker processes of
``side_by_side.py`` inherit it. A process that made a tensor before importing ``rga_engine`` keeps
PyTorch's default; :func:`huge_pages_active` measures which (page faults of a fresh tensor) and
the run's log says it. Nothing is changed where the user set ``THP_MEM_ALLOC_ENABLE`` (either
way) or ``RGA_TUI_HUGE_PAGES=0``. Memory is placed
differently, no arithmetic changes: a run's numbers are the same either way.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

TORCH_SWITCH = "THP_MEM_ALLOC_ENABLE"
OPT_OUT = "RGA_TUI_HUGE_PAGES"  # "0": leave PyTorch's default
PROBE_BYTES = 64 * 1024 * 1024
THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def request_huge_pages() -> bool:
    """Set ``THP_MEM_ALLOC_ENABLE=1`` unless the user chose (above); True if it was set here."""
    if platform.system() != "Linux" or TORCH_SWITCH in os.environ or os.environ.get(OPT_OUT, "").strip() == "0":
        return False
    os.environ[TORCH_SWITCH] = "1"
    return True


def kernel_mode() -> str | None:
    """The kernel's transparent-huge-page mode (``always``, ``madvise``, ``never``), or None."""
    try:
        text = THP_MODE.read_text(encoding="ascii")
    except OSError:
        return None
    return next((w[1:-1] for w in text.split() if w.startswith("[")), None)


def huge_pages_active() -> bool:
    """Whether this process's large CPU tensors land on huge pages, measured: one fresh 64 MiB
    tensor (over glibc's largest mmap threshold, so freshly mapped either way) filled, and the
    minor page faults counted: ~16,000 on 4 KiB pages, a few dozen on 2 MiB ones (~20 ms)."""
    try:
        import resource
    except ImportError:  # Windows
        return False
    import torch

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.empty(PROBE_BYTES // 4).fill_(0.0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return faults < PROBE_BYTES // 4096 // 8


def describe() -> str:
    """One line for a CPU run's log: whether large tensors sit on huge pages, and why not."""
    mode = kernel_mode()
    if huge_pages_active():
        switch = f"{TORCH_SWITCH}=1, " if os.environ.get(TORCH_SWITCH, "").strip() == "1" else ""
        return f"host memory: large tensors on transparent huge pages ({switch}kernel: {mode})"
    if os.environ.get(OPT_OUT, "").strip() == "0" or os.environ.get(TORCH_SWITCH, "1").strip() in ("0", ""):
        why = f"turned off ({OPT_OUT}=0 or {TORCH_SWITCH}=0)"
    elif platform.system() != "Linux":
        why = "not Linux"
    elif mode in (None, "never"):
        why = f"the kernel's transparent huge pages: {mode or 'not found'}"
    else:
        why = "PyTorch allocated before rga_engine was imported"
    return f"host memory: PyTorch's default allocation ({why}); huge pages took 8 % off the SST-2 demo on a Zen 4"

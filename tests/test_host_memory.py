"""PyTorch's large CPU tensors on transparent huge pages (rga_engine/host_memory.py): importing
the engine turns it on before torch allocates, it really cuts the page faults, the log says
whether it took, and the user's own choice is left alone. Each case runs in a fresh interpreter:
PyTorch fixes its allocation at its first tensor."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux", reason="PyTorch's huge-page switch is Linux's")

# ten 64 MiB tensors made, filled and freed: over glibc's largest mmap threshold (32 MiB), so
# without huge pages each one is mapped and faulted in anew, 4 KiB at a time
PROBE = r"""
import json, os, resource, sys
if sys.argv[1] == "torch-first":
    import torch
    torch.ones(3)
import rga_engine, torch
from rga_engine import host_memory
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
before = faults()
for _ in range(10):
    torch.empty(16 << 20).fill_(1.0)
print(json.dumps({"faults": faults() - before, "active": host_memory.huge_pages_active(),
                  "line": host_memory.describe(), "switch": os.environ.get("THP_MEM_ALLOC_ENABLE")}))
"""
PAGES = 10 * (64 << 20) // 4096  # every 4 KiB page of the ten tensors


def probe(order: str = "engine-first", **env: str) -> dict:
    e = {k: v for k, v in os.environ.items() if k not in ("THP_MEM_ALLOC_ENABLE", "RGA_TUI_HUGE_PAGES")}
    e.update(env)
    out = subprocess.run([sys.executable, "-c", PROBE, order], env=e, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _kernel_mode():
    from rga_engine import host_memory

    return host_memory.kernel_mode()


# the switch matters where the kernel gives huge pages on request ("madvise", the common default);
# "always" gives them to every large mapping anyway, "never" to none: the measured line says so
needs_madvise = pytest.mark.skipif(_kernel_mode() != "madvise", reason="the kernel's THP mode is not madvise")


@needs_madvise
def test_importing_the_engine_puts_large_tensors_on_huge_pages():
    on = probe()
    assert on["switch"] == "1" and on["active"]
    assert on["line"].startswith("host memory: large tensors")
    off = probe(RGA_TUI_HUGE_PAGES="0")
    assert off["switch"] is None and not off["active"] and "turned off" in off["line"]
    assert off["faults"] > PAGES // 2  # PyTorch's default: every page of every tensor faulted in
    assert on["faults"] < off["faults"] // 4  # 2 MiB pages: far fewer faults


@needs_madvise
def test_the_users_choice_and_an_early_tensor_are_reported_not_overridden():
    mine = probe(THP_MEM_ALLOC_ENABLE="0")
    assert mine["switch"] == "0" and not mine["active"] and "turned off" in mine["line"]
    late = probe("torch-first")
    assert late["switch"] == "1" and not late["active"]
    assert "allocated before rga_engine was imported" in late["line"]


def test_the_line_tells_what_the_kernel_does_whatever_its_mode():
    """Measured, not assumed: on any kernel the line matches what the probe's faults say."""
    got = probe()
    assert got["switch"] == "1"  # requested either way
    if got["active"]:
        assert got["faults"] < PAGES // 4 and got["line"].startswith("host memory: large tensors")
    else:
        assert got["faults"] > PAGES // 2 and got["line"].startswith("host memory: PyTorch's default allocation")
    if _kernel_mode() in (None, "never"):
        assert not got["active"] and "the kernel's transparent huge pages" in got["line"]

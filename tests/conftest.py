import os
from pathlib import Path

import pytest

# Tests name presets and fixtures by paths relative to the repository root (as README's commands
# do): run from there whatever directory pytest was started in (`pytest /path/to/repo/tests`).
os.chdir(Path(__file__).resolve().parent.parent)

# Never touch a hub from the tests; keep the cache inside the test's tmp dir.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# model.dtype = "auto" is bf16 autocast on a CPU with AMX / AVX512-BF16 (rga_engine/precision.py):
# the suite runs fp32 wherever it runs, so its numbers do not depend on the CI machine's CPU
os.environ["RGA_TUI_CPU_BF16"] = "0"

# Under pytest-xdist (`-n N`, README's command) the workers share the cores: each worker's torch,
# and every process a test starts, gets cores // workers threads, so N workers do not thrash.
if os.environ.get("PYTEST_XDIST_WORKER"):
    _threads = max(1, (os.cpu_count() or 1) // max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, str(_threads))
    import torch

    # one count for the worker and its children: a user's own OMP_NUM_THREADS wins in both
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]) if os.environ["OMP_NUM_THREADS"].isdigit() else _threads)
    # xdist's workers inherit COLUMNS=80 / LINES=24; a serial run has neither, and an app started
    # in a tmux pane would take them over the pane's real size
    for _var in ("COLUMNS", "LINES"):
        os.environ.pop(_var, None)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RGA_TUI_CACHE", str(tmp_path / "cache"))


def _expected_seconds(item) -> float:
    """How long a test takes, for the order: a ``slow`` test's ``seconds=`` hint (60 without one), 0
    for the others."""
    mark = item.get_closest_marker("slow")
    return float(mark.kwargs.get("seconds", 60)) if mark is not None else 0.0


def pytest_collection_modifyitems(config, items):
    """Start the ``slow`` tests first, the longest first. Under pytest-xdist's work stealing the
    first half of the collection goes to the first worker and the second half to the other; a
    worker that runs dry steals the tail of the other's queue, never a running test. So the long
    tests start on one worker from the beginning while the other takes the short ones, and what
    runs last anywhere is short: a long test collected late starts near the end and leaves a core
    idle. Measured on 2 cores (Zen 3, 2026-12-07, one suite run each): with only the HSOL test
    started first one worker sat idle for the last 30 s (7:41 in all); with the seven ``slow``
    tests first, 8 s (6:56). The ``seconds`` hints are those tests' durations in that day's
    runs with both workers busy; only their order matters. A stable sort: the order within each
    group is the collection order."""
    items.sort(key=lambda item: -_expected_seconds(item))

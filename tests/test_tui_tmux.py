"""A human-style test: the real app in tmux at 160×50, keys sent, the captured pane read.

Home screen → move down the preset tree to demo/sst2-badnets → type overrides that shrink the
run → Enter → the run screen fills in live → at the end the pane shows every model's confusion
matrix with the verdict the engine wrote into summary.json → q quits cleanly.
The full-size demo is driven the same way by ``scripts/tmux_demo.py``.
"""

from __future__ import annotations

import json
import sys
import time

import pytest

from tmux_driver import Tmux, have_tmux, select_preset

from rga_engine import side_by_side

pytestmark = pytest.mark.skipif(not have_tmux(), reason="tmux is not installed")

QUICK = ("data.train_limit=300 data.test_limit=200 train.epochs=1 unlearn.epochs=2 "
         "unlearn.eval_every=1 model.max_length=32 model.keep_layers=1 unlearn.methods=['ga','npo','rga']")
SHORT = {"Poisoned": "poisoned", "Retrain": "retrain", "GA": "ga", "NPO": "npo", "RGA": "rga"}


def verdict_word(verdict: str) -> str:
    """A word of the engine's verdict that every wording of it on screen keeps (a matrix footer
    shortens "trigger shifted → x" to "shifted → x", "backdoor partly remains (ASR …)" to
    "partly: ASR …", "predicts x for everything" to "all → x")."""
    if verdict.startswith("predicts "):
        return verdict.split()[1]  # the class name
    for key, word in (("partly", "partly"), ("removed", "removed"), ("remains", "remains"), ("shift", "shift")):
        if key in verdict:
            return word
    return verdict


def wait_finished(out, timeout: float) -> dict:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        runs = [p for p in out.iterdir() if (p / "summary.json").is_file()] if out.exists() else []
        if runs:
            assert len(runs) == 1
            summary = json.loads((runs[0] / "summary.json").read_text())
            if summary["status"] != "running":
                assert summary["status"] == "finished", summary.get("errors")
                return summary
        time.sleep(1)
    raise TimeoutError("the run did not finish")


@pytest.mark.slow(seconds=60)
def test_home_to_live_run_in_a_real_terminal(tmp_path):
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "rga_tui", "--out", str(out), "--no-mouse"]
    with Tmux(cmd, 160, 50, env={"RGA_TUI_CACHE": str(tmp_path / "cache")}) as t:
        t.wait_for("Presets & runs", timeout=60)
        select_preset(t, "demo/sst2-badnets")
        # as a person would: wait until the selected preset is shown as valid before typing (keys
        # typed while the home screen is still resolving its first preset can be lost)
        t.wait_for("✔ valid", timeout=30)
        t.keys("o")
        t.type(QUICK)
        t.wait_for("✔ valid", timeout=10)
        t.keys("Enter")
        t.wait_for("poison", timeout=30)  # the run screen's stage strip
        summary = wait_finished(out, timeout=300)
        pane = t.wait_for(lambda p: "finished" in p.splitlines()[0], timeout=10)  # the status line
        assert summary["models"]["poisoned"]["seconds"] > 0
        if side_by_side.cpu_cores() >= 2:  # the preset's train.side_by_side, through the app's child run
            assert summary["side_by_side"] == {"processes": 2, "threads": side_by_side.cpu_cores() // 2}

        # every model's matrix is on screen, titled, with its class names and the engine's verdict
        assert "triggered test set" in pane
        for label in ("negative", "positive"):
            assert label in pane
        for title, key in SHORT.items():
            assert title in pane, title
            verdict = summary["models"][key]["trigger_shift"]["verdict"]
            assert verdict_word(verdict) in pane
        assert "λ" in pane  # the λ chart's title

        t.keys("m")  # flip to the clean test set
        t.wait_for("clean test set", timeout=10)
        t.keys("q")
        t.wait_for("[app exited] 0", timeout=20)

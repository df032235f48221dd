"""benchmarks/freeze_step.py runs end to end (tiny model, one step per k), reports every k, and
its k = 1 really trains fewer weights than k = 0 (its timing would mean nothing otherwise)."""

from __future__ import annotations

import re

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "freeze_step.py"
_spec = importlib.util.spec_from_file_location("freeze_step", SCRIPT)
fs = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("freeze_step", fs)
_spec.loader.exec_module(fs)


def test_freeze_step_reports_each_k(capsys):
    assert fs.main(["--model", "tiny", "--layers", "0,1", "--steps", "1", "--warmup", "0", "--rounds", "1",
                    "--batch", "4", "--max-length", "16", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "freeze_layers 0:" in out and "1.00x of freeze_layers 0" in out
    assert "freeze_layers 1:" in out and "samples/s" in out
    trained = {int(k): (int(a.replace(",", "")), int(b.replace(",", "")))
               for k, a, b in re.findall(r"freeze_layers (\d+):.*?([\d,]+) of ([\d,]+) weights trained", out)}
    assert set(trained) == {0, 1}
    assert trained[0][0] == trained[0][1]  # k = 0: every weight trains
    assert trained[1][0] < trained[0][0] and trained[1][1] == trained[0][1]

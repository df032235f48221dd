"""benchmarks/gpu_check.sh --smoke: the prepared GPU check, run end to end on CPU with the tiny
model and a few rows (about a minute on an idle 2-core machine, more on a busy one)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow(seconds=38)
@pytest.mark.timeout(300)
def test_gpu_check_smoke_runs_every_step_on_cpu(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    r = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--smoke", "--out", str(tmp_path / "check")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    out = r.stdout
    assert r.returncode == 0, out[-2000:] + r.stderr[-2000:]
    runs = re.findall(r"^gpu_check: (minilm-\S+) dtype=(\w+) device=cpu status=finished wall_s=[\d.]+ "
                      r"poison_samples_per_s=[\d.]+ unlearn_samples_per_s=\S+ max_gpu_mem_gib=0\.00$", out, re.M)
    assert sorted(runs) == [("minilm-hsol-badnets", "bf16"), ("minilm-hsol-badnets", "fp32"),
                            ("minilm-sst2-badnets", "bf16"), ("minilm-sst2-badnets", "fp32")]
    assert re.search(r"^tiny +finetune +trainer .* samples/s ", out, re.M)  # ours vs Trainer
    assert re.search(r"^speedup_vs_reference=\S+ speedup_vs_trainer=\S+ utilisation=\S+$", out, re.M)
    table = (tmp_path / "check" / "table.md").read_text()
    assert table.count("| tiny |") == 4 and "model.dtype=bf16" in table and "model.dtype=fp32" in table
    assert out.rstrip().endswith("== gpu_check: ok (exit 0)")
    assert (tmp_path / "check" / "speed.json").is_file()


def test_gpu_check_refuses_unknown_arguments():
    r = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--fast"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip() == "gpu_check.sh: unknown argument --fast (use --smoke, --out DIR)"

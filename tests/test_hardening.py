"""Hardening (issue 18): every bad input is one ``error:`` line with exit 2 (never a traceback),
run folders and the cache never lie, and remote code runs only when the command line says so.

Most cases go through the real command line in a subprocess (``python -m rga_tui ...``); the
few real runs use the tiny model on a few hundred rows, without Retrain, so the file stays fast.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "presets" / "tiny-sst2-badnets.toml"
# a real run that takes a few seconds: 200 rows, a 1-layer tiny model, no Retrain, GA only
SMALL = ["--set", "data.train_limit=200", "--set", "data.test_limit=60", "--set", "train.epochs=1",
         "--set", "unlearn.epochs=1", "--set", 'unlearn.methods=["ga"]', "--set", "train.retrain=false",
         "--set", "model.num_layers=1", "--set", "model.hidden_size=32", "--set", "model.intermediate_size=64",
         "--set", "model.max_length=32", "--set", "unlearn.eval_every=0"]


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["RGA_TUI_CACHE"] = str(tmp_path / "cache")
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


def cli(tmp_path: Path, *args, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """``python -m rga_tui ARGS`` in a subprocess, from ``tmp_path``."""
    return subprocess.run([sys.executable, "-m", "rga_tui", *[str(a) for a in args]], cwd=tmp_path,
                          env=env_for(tmp_path), capture_output=True, text=True, timeout=timeout, **kw)


def assert_one_line_error(p: subprocess.CompletedProcess, contains: str = "", code: int = 2) -> str:
    assert p.returncode == code, (p.returncode, p.stdout[-2000:], p.stderr[-3000:])
    assert "Traceback" not in p.stdout + p.stderr, p.stderr[-3000:]
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert contains in lines[0], lines[0]
    return lines[0]


# --------------------------------------------------------------------------- 1. NaN / inf

NONFINITE = ["train.lr=nan", "unlearn.lr=nan", "train.weight_decay=nan", "train.max_grad_norm=inf",
             "unlearn.shift_threshold=nan", "model.pretrain_lr=nan", "attack.poison_rate=nan",
             "model.pretrain_mask_prob=nan", "methods.rga.alpha=nan", "methods.npo.beta=inf",
             "methods.ga.forget_weight=-inf", "methods.rga.beta=nan"]


@pytest.mark.parametrize("key", ["train.lr=nan", "unlearn.lr=inf", "methods.rga.alpha=nan"])
def test_nan_and_inf_are_refused_naming_the_key(tmp_path, key):
    line = assert_one_line_error(cli(tmp_path, "run", TINY, "--set", key), key.split("=")[0])
    assert "finite" in line
    assert not (tmp_path / "runs").exists()  # refused before any run folder


def test_every_float_key_must_be_finite():
    from rga_engine import config

    for item in NONFINITE:
        key = item.split("=")[0]
        with pytest.raises(config.ConfigError, match="^" + key.replace(".", r"\.") + " = .*finite"):
            config.load(TINY, [item])


def test_nan_in_a_preset_file_and_in_code(tmp_path):
    (tmp_path / "p.toml").write_text('[unlearn]\nlr = nan\n', encoding="utf-8")
    assert_one_line_error(cli(tmp_path, "run", tmp_path / "p.toml"), "unlearn.lr = nan")
    from rga_engine import config

    cfg = config.Config()
    cfg.train.max_grad_norm = float("nan")
    with pytest.raises(config.ConfigError, match=r"^train\.max_grad_norm = nan: must be a finite number"):
        config.validate(cfg)
    from rga_engine.methods import method_params

    with pytest.raises(config.ConfigError, match=r"^methods\.rga\.beta = inf"):
        method_params("rga", {"beta": float("inf")})

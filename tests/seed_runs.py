"""Hand-made ``benchmarks/seeds.py`` run folders for the tests of seeds.py and compare_seeds.py: a
summary.json as the pipeline writes it (fractions), passing the issue-15 check unless told
otherwise, and the folder layout ``OUT/<preset>/s<seed>/``."""

from __future__ import annotations

import json
from pathlib import Path


def shift(kind: str = "none", to: int = 0) -> dict:
    return {"shifted": kind == "shifted", "to_class": to if kind == "shifted" else None,
            "remains": kind == "remains", "verdict": kind}


def entry(cacc, pacc, asr, ts="none", **extra) -> dict:
    return {"cacc": cacc, "pacc": pacc, "asr": asr, "trigger_shift": shift(ts), "seconds": 1.0, **extra}


def make_summary(seed=2021, *, asr=0.99, ga_ts="shifted", rga_pacc=0.81, rga_cacc=0.85, rga_asr=0.12,
                 rga_ts="none", methods=("ga", "npo", "rga"), retrain=True, status="finished", errors=None) -> dict:
    """A summary.json as the pipeline writes it (fractions), passing the check by default."""
    models = {"poisoned": entry(0.86, 0.50, asr, "remains", cached=False)}
    if retrain:
        models["retrain"] = entry(0.86, 0.80, 0.08, cached=False)
    made = {
        "ga": entry(0.85, 0.52, 0.01, ga_ts, delta_pacc=0.28),
        "npo": entry(0.85, 0.60, 0.05, "shifted", delta_pacc=0.20),
        "rga": entry(rga_cacc, rga_pacc, rga_asr, rga_ts, delta_pacc=abs(rga_pacc - 0.80) if retrain else None),
    }
    models.update({m: made[m] for m in methods if m not in (errors or {}).get("_skip", ())})
    return {"preset": "demo-x", "seed": seed, "target": 1, "label_names": ["negative", "positive"],
            "methods": list(methods), "status": status, "errors": {k: v for k, v in (errors or {}).items() if k != "_skip"},
            "models": models}


def write_run(out: Path, preset: str, seed: int, summary: dict, wall: float | None = None) -> None:
    d = out / preset / f"s{seed}"
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    if wall is not None:
        (d / "wall.json").write_text(json.dumps({"wall_s": wall}), encoding="utf-8")

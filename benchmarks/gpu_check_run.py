#!/usr/bin/env python
"""Presets through ``pipeline.run`` for ``gpu_check.sh``, one after the other in one process:
per run one line with the wall time, the training throughput the engine measured (median of its
step events), the peak GPU memory of that run and the status.

    python benchmarks/gpu_check_run.py OUT PRESET... --dtypes bf16,fp32 [--set key=value ...]

Each (preset, dtype) runs into ``OUT/<preset stem>-<dtype>``. Prints ``gpu_check: <preset>
dtype=<d> device=<dev> status=<s> wall_s=<t> poison_samples_per_s=<x> unlearn_samples_per_s=<y>
max_gpu_mem_gib=<m>`` per run and exits 1 unless every run finished.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def run_one(preset: str, dtype: str, run_dir: Path, overrides: list[str]) -> bool:
    import torch

    from rga_engine import config, pipeline
    from rga_engine.events import ListSink

    cfg = config.load(preset, overrides + [f"model.dtype='{dtype}'"])
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    sink, t0 = ListSink(), time.perf_counter()
    summary = pipeline.run(cfg, sink, run_dir=run_dir)
    wall = time.perf_counter() - t0

    def rate(prefix: str) -> float:
        xs = [e["samples_per_s"] for e in sink.of_type("step")
              if e["stage"].startswith(prefix) and isinstance(e.get("samples_per_s"), float)
              and e["samples_per_s"] == e["samples_per_s"]]  # NaN (too few steps yet) left out
        return statistics.median(xs) if xs else float("nan")

    mem = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0
    print(f"gpu_check: {cfg.name} dtype={dtype} device={summary.get('device')} status={summary['status']} "
          f"wall_s={wall:.1f} poison_samples_per_s={rate('poison'):.1f} "
          f"unlearn_samples_per_s={rate('unlearn:'):.1f} max_gpu_mem_gib={mem:.2f}", flush=True)
    for stage, msg in summary.get("errors", {}).items():
        print(f"gpu_check: {cfg.name} error in {stage}: {msg}", flush=True)
    return summary["status"] == "finished"


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("presets", nargs="+")
    p.add_argument("--dtypes", default="bf16,fp32")
    p.add_argument("--set", action="append", default=[], dest="overrides")
    a = p.parse_args(argv)
    ok = True
    for preset in a.presets:
        for dtype in a.dtypes.split(","):
            run_dir = Path(a.out) / f"{Path(preset).stem}-{dtype}"
            if run_dir.exists():
                import shutil

                shutil.rmtree(run_dir)
            ok = run_one(preset, dtype, run_dir, a.overrides) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

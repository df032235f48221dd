"""How long the side-by-side workers take to start, run after run in one process.

Runs one preset with ``train.side_by_side = true`` ``--runs`` times in this process (cache off,
so every run trains the same stages) and prints, per run, the seconds from ``run_started`` to
the first ``stage_started`` (the workers' start: the fork server's imports on the first run,
a fork on the later ones, then each worker's ``Run.setup``) and the run's wall time. The
first run of a process pays the imports (torch, the engine, the model's code); a later seed of
``--seeds`` or a test suite's next run should not.

Not a test: it wants an otherwise idle machine with two or more cores.

    python benchmarks/worker_start.py                                   # the tiny SST-2 fixture, 3 runs
    python benchmarks/worker_start.py --preset demo/sst2-badnets --runs 2 --set data.train_limit=200
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rga_engine import config, pipeline
from rga_engine.events import ListSink

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "presets" / "tiny-sst2-badnets.toml"
SMALL = ["data.train_limit=300", "data.test_limit=60", "train.epochs=1", "unlearn.epochs=1",
         "model.max_length=32"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default=str(TINY), help="a preset path or name (default: the tiny SST-2 fixture)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more overrides")
    args = ap.parse_args()
    overrides = (SMALL if args.preset == str(TINY) else []) + ["train.side_by_side=true", "output.cache=false"] + args.set
    cfg = config.load(args.preset, overrides)
    print(f"{args.preset}: {args.runs} runs side by side in one process")
    for i in range(args.runs):
        sink = ListSink()
        s = pipeline.run(cfg, sink)
        t: dict[str, float] = {}
        for e in sink.events:  # every event carries its Unix time
            t.setdefault(e["type"], e["time"])
        start = t["stage_started"] - t["run_started"]
        wall = t["run_finished"] - t["run_started"]
        print(f"run {i + 1}: workers' first stage {start:.2f} s after run_started; run {wall:.2f} s; "
              f"{s['status']}, {s['side_by_side']}")


if __name__ == "__main__":
    main()

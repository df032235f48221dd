"""Wall time of each demo preset, end to end, with the cache off (so poisoning and Retrain are
really trained).  Not a test: the machine is noisy; run it on an otherwise idle machine.

    python benchmarks/demo_times.py                              # all 9 demo presets
    python benchmarks/demo_times.py presets/demo/sst2-badnets.toml
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rga_engine import config, pipeline  # noqa: E402


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("presets", nargs="*", type=Path, help="preset files (default: every presets/demo/*.toml)")
    a = ap.parse_args(argv)
    for p in a.presets:
        if not p.is_file():
            ap.error(f"{p}: no such preset file")
    presets = list(a.presets) or sorted(p for p in (ROOT / "presets" / "demo").glob("*.toml") if not p.name.startswith("_"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for p in presets:
            cfg = config.load(p, ["output.cache=false"])
            t0 = time.perf_counter()
            s = pipeline.run(cfg, None, None, run_dir=Path(tmp) / p.stem)
            wall = time.perf_counter() - t0
            stages = {k: v["seconds"] for k, v in s["models"].items()}
            if "pretrain" in s:  # the tiny encoder's masked-LM pre-training (not a stage of its own)
                stages = {"pretrain": s["pretrain"]["seconds"], **stages}
            m = s["models"]
            nan = float("nan")
            ga, rga, re = m.get("ga", {}), m.get("rga", {}), m.get("retrain", {})
            gap = rga["cacc"] - re["cacc"] if rga and re else nan
            line = (f"{cfg.name:28s} {wall:7.1f} s   " + "  ".join(f"{k} {v:.0f}s" for k, v in stages.items())
                    + f"   | poisoned ASR {m['poisoned']['asr']:.3f}  GA PACC {ga.get('pacc', nan):.3f}"
                    f" ({ga.get('trigger_shift', {}).get('verdict')})  RGA ΔPACC {rga.get('delta_pacc') or nan:.3f}"
                    f"  RGA CACC − Retrain {gap:+.3f}")
            print(line, flush=True)
            rows.append({"preset": cfg.name, "wall_s": round(wall, 1), "stages_s": stages})
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Training speed with the TUI attached vs headless, same preset, same machine.

Runs one preset twice per round -- ``rga-tui run PRESET -q`` (headless) and the interactive app
``rga-tui --preset PRESET`` in a real terminal (tmux, 160×50) with Enter pressed to start the
run -- alternating the order every round, cache off, so both train the same steps from the same
seed.  Speed = the engine's own per-stage wall time (``summary.json`` ``models.*.seconds``:
poisoning, Retrain and each unlearning method, evaluations included).  Prints each round, then

    tui_over_headless=<median ratio of headless time / TUI time>   (1.0 = no overhead; goal ≥ 0.9)

Not a test: needs tmux, and an otherwise idle machine (2 cores are easily disturbed).

    python benchmarks/tui_overhead.py                       # demo/sst2-badnets as it is, 2 rounds
    python benchmarks/tui_overhead.py --train-limit 1500 --rounds 1   # a smaller sample
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "tests"))

from rga_engine import config  # noqa: E402
from tmux_driver import Tmux, header  # noqa: E402  (the same driver as the tmux test and demo)


def write_preset(src: Path, folder: Path, overrides: list[str]) -> Path:
    cfg = config.load(src, overrides)
    cfg.name = "bench-" + cfg.name
    path = folder / "bench.toml"
    path.write_text(cfg.to_toml())
    return path


def stage_seconds(run_dir: Path) -> dict[str, float]:
    s = json.loads((run_dir / "summary.json").read_text())
    if s.get("status") != "finished":
        raise RuntimeError(f"{run_dir}: status {s.get('status')!r}, errors {s.get('errors')}")
    return {k: float(v["seconds"]) for k, v in s["models"].items()}


def run_headless(preset: Path, out: Path) -> dict[str, float]:
    subprocess.run(["rga-tui", "run", str(preset), "--out", str(out), "-q"], check=True,
                   stdout=subprocess.DEVNULL)
    return stage_seconds(out)


def cpu_seconds(pattern: str) -> float | None:
    """utime + stime of the (first) process whose command line contains ``pattern``."""
    res = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    pids = res.stdout.split()
    if not pids:
        return None
    try:
        fields = Path(f"/proc/{pids[0]}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


UI_CPU: list[float] = []


def run_tui(preset: Path, out_root: Path, timeout: float) -> dict[str, float]:
    cmd = ["rga-tui", "--presets", str(preset.parent), "--preset", str(preset), "--out", str(out_root)]
    with Tmux(cmd, 160, 50) as tmux:
        t0 = time.monotonic()
        # the home screen opens with --preset highlighted (its title top right); Enter runs it
        tmux.wait_for(lambda pane: header(pane) == "bench", timeout=60)
        sent = 0.0
        app = f"bin/rga-tui --presets {preset.parent}"
        c0 = cpu_seconds(app)
        while True:
            if not (out_root.exists() and any(out_root.iterdir())) and time.monotonic() - sent > 10:
                tmux.keys("Enter")
                sent = time.monotonic()
            runs = [p for p in out_root.iterdir() if (p / "summary.json").is_file()] if out_root.exists() else []
            if runs:
                s = json.loads((runs[0] / "summary.json").read_text())
                if s.get("status") not in (None, "running"):
                    c1 = cpu_seconds(app)
                    if c0 is not None and c1 is not None:
                        UI_CPU.append(c1 - c0)
                    return stage_seconds(runs[0])
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("the TUI run did not finish in time:\n" + tmux.pane())
            time.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("preset", nargs="?", default=str(ROOT / "presets" / "demo" / "sst2-badnets.toml"))
    ap.add_argument("--train-limit", type=int, default=None,
                    help="data.train_limit override (default: the preset's own; 0 = every row of the dataset)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per TUI run")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="section.key=value")
    args = ap.parse_args(argv)
    if shutil.which("tmux") is None:
        print("tmux is needed (the TUI runs in a real terminal)", file=sys.stderr)
        return 2

    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "presets").mkdir()
        preset = write_preset(Path(args.preset), tmp / "presets",
                              ["output.cache=false", *([f"data.train_limit={args.train_limit}"]
                                                       if args.train_limit is not None else []), *args.overrides])
        for r in range(args.rounds):
            order = ["headless", "tui"] if r % 2 == 0 else ["tui", "headless"]
            got = {}
            for kind in order:
                if kind == "headless":
                    got[kind] = run_headless(preset, tmp / f"headless-{r}")
                else:
                    got[kind] = run_tui(preset, tmp / f"tui-{r}", args.timeout)
            h, t = sum(got["headless"].values()), sum(got["tui"].values())
            ratio = h / t
            ratios.append(ratio)
            stages = "  ".join(f"{k} {got['headless'][k]:.1f}/{got['tui'].get(k, float('nan')):.1f}"
                               for k in got["headless"])
            print(f"round {r + 1} ({' then '.join(order)}): headless {h:.1f} s, TUI {t:.1f} s, "
                  f"ratio {ratio:.3f}   [stage s headless/TUI: {stages}]", flush=True)
    if UI_CPU:
        print("CPU time of the app's own process during each TUI run (the training runs in its child): "
              + ", ".join(f"{c:.1f} s" for c in UI_CPU))
    print(f"tui_over_headless={statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

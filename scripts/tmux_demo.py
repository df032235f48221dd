"""The live demo, checked the way a person would check it: the real app in tmux at 160×50.

    python scripts/tmux_demo.py                      # demo/sst2-badnets, full size (~9 min on 2 cores)
    python scripts/tmux_demo.py demo/hsol-badnets --keep runs/

Starts ``rga-tui``, moves down the preset tree to the preset, presses Enter, reads the pane while
the run goes (λ chart, stage strip), presses ``s`` for an SVG screenshot at the end, and checks
what the screen shows against what the engine wrote:

* the GA matrix carries a "shifted" verdict and puts (nearly) every triggered row in one column;
* RGA's ΔPACC ≤ 0.05 and its verdict is not "backdoor remains";
* λ starts at 1 and ends below 0.1 (from events.jsonl).

Writes the final pane text and the SVG to ``docs/screenshots/`` (``--shots DIR``) and the run
folder under ``--keep`` (default: a temporary folder).  Exit status 0 only if every check holds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from tmux_driver import Tmux, have_tmux, select_preset  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("preset", nargs="?", default="demo/sst2-badnets")
    ap.add_argument("--keep", type=Path, default=None, help="run folder parent to keep (default: temporary)")
    ap.add_argument("--shots", type=Path, default=ROOT / "docs" / "screenshots")
    ap.add_argument("--timeout", type=float, default=1200.0)
    args = ap.parse_args(argv)
    if not have_tmux():
        print("tmux is needed", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="rga-demo-"))
    out = args.keep or tmp / "runs"
    out.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in out.iterdir()}
    cmd = [sys.executable, "-m", "rga_tui", "--out", str(out), "--no-mouse"]
    env = {"RGA_TUI_CACHE": str(tmp / "cache")}  # a cold cache: poisoning and Retrain really train
    failures: list[str] = []
    t_start = time.monotonic()
    with Tmux(cmd, 160, 50, env=env) as t:
        t.wait_for("Presets & runs", timeout=60)
        select_preset(t, args.preset)
        t.keys("Enter")
        t.wait_for("poison", timeout=60)
        run_dir = None
        while run_dir is None:
            new = [p for p in out.iterdir() if p.name not in before and (p / "summary.json").is_file()]
            run_dir = new[0] if new else None
            time.sleep(1)
        mid_shot = None
        while True:
            summary = json.loads((run_dir / "summary.json").read_text())
            pane = t.pane()
            if mid_shot is None and "ga" in summary["models"] and "rga" not in summary["models"]:
                mid_shot = pane  # GA done, later methods still going
            if summary["status"] != "running":
                break
            if time.monotonic() - t_start > args.timeout:
                failures.append(f"the run did not finish within {args.timeout:.0f} s")
                break
            time.sleep(2)
        wall = time.monotonic() - t_start
        pane = t.wait_for(lambda p: "finished" in p.splitlines()[0] or "error" in p.splitlines()[0], timeout=15)
        t.keys("s")
        time.sleep(2)
        pane = t.pane()
        svgs = sorted(run_dir.glob("*.svg"))
        t.keys("q")

    models = summary["models"]
    ga, rga = models.get("ga", {}), models.get("rga", {})
    ga_verdict = ga.get("trigger_shift", {}).get("verdict", "")
    if not ga.get("trigger_shift", {}).get("shifted"):
        failures.append(f"GA verdict is {ga_verdict!r}, not shifted")
    cm = ga.get("confusion_poisoned_all") or [[0]]
    col = max(range(len(cm)), key=lambda j: sum(r[j] for r in cm))
    share = sum(r[col] for r in cm) / max(1, sum(map(sum, cm)))
    if share < 0.9:
        failures.append(f"GA puts {share:.0%} of triggered rows in one column (want ≥ 90 %)")
    if "shifted" not in pane:
        failures.append("the pane shows no 'shifted' verdict")
    if rga.get("delta_pacc") is None or rga["delta_pacc"] > 0.05:
        failures.append(f"RGA ΔPACC {rga.get('delta_pacc')} > 0.05")
    if rga.get("trigger_shift", {}).get("remains"):
        failures.append("RGA leaves the backdoor")
    lam = [e["lambda"] for e in map(json.loads, (run_dir / "events.jsonl").read_text().splitlines())
           if e.get("type") == "step" and e.get("stage") == "unlearn:rga" and "lambda" in e]
    if not lam or lam[0] < 0.2 or min(lam[-10:]) > 0.1:
        failures.append(f"λ does not decay from ~1 (first {lam[:1]}, last {lam[-3:]})")

    args.shots.mkdir(parents=True, exist_ok=True)
    stem = args.preset.replace("/", "-")
    (args.shots / f"tmux-{stem}-160x50.txt").write_text(pane)
    if mid_shot:
        (args.shots / f"tmux-{stem}-160x50-mid.txt").write_text(mid_shot)
    if svgs:
        shutil.copy(svgs[-1], args.shots / f"live-{stem}-160x50.svg")
    else:
        failures.append("'s' saved no SVG into the run folder")

    print(f"{args.preset}: {wall:.0f} s in the TUI · GA {ga_verdict} (one column {share:.0%}) · "
          f"RGA ΔPACC {rga.get('delta_pacc')} · λ {lam[0] if lam else '–'} → {lam[-1] if lam else '–'} · run {run_dir}")
    for f in failures:
        print("FAIL:", f)
    if args.keep is None:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

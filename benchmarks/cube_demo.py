#!/usr/bin/env python
"""CUBE's detection on presets, and what RGA's ΔPACC becomes with the detected forget set.

    python benchmarks/cube_demo.py                                   # detection on the 9 demo presets
    python benchmarks/cube_demo.py --rga demo/sst2-badnets demo/hsol-badnets demo/agnews-badnets
    python benchmarks/cube_demo.py presets/demo/sst2-badnets.toml --seed 2022

Detection: each preset runs with ``unlearn.forget_set = "cube"`` through ``pipeline.run`` and stops
right after its ``detect`` stage (poisoning + detection only); its precision, recall and F1 against
the true poisoned rows are read from the stage's event.  ``--rga PRESET...``: for those presets,
Retrain and RGA run to the end twice, with the detected and with the oracle forget set (poisoned
model and Retrain from the cache, so each extra run costs one RGA stage).  Everything goes to
``OUT/<preset>-s<seed>-<forget set>/``; the markdown table is printed and written to
``OUT/cube.md``; finished runs are not run again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rga_engine import config, pipeline  # noqa: E402
from rga_engine.events import CallbackSink  # noqa: E402

DEMO = ["sst2-badnets", "sst2-addsent", "sst2-hiddenkiller", "hsol-badnets", "hsol-addsent", "hsol-hiddenkiller",
        "agnews-badnets", "agnews-addsent", "agnews-hiddenkiller"]


def preset_path(text: str) -> Path:
    p = Path(text)
    if p.is_file():
        return p
    q = ROOT / "presets" / (text if text.endswith(".toml") else text + ".toml")
    if q.is_file():
        return q
    raise SystemExit(f"error: {text}: no such preset (a file, or a name such as demo/sst2-badnets)")


def short(p: Path) -> str:
    return f"{p.parent.name}-{p.stem}"


def run_one(p: Path, seed: int, forget_set: str, methods: list[str], out: Path, detect_only: bool) -> dict:
    d = out / f"{short(p)}-s{seed}-{forget_set}{'-detect' if detect_only else ''}"
    done = d / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    cfg = config.load(p, [f"train.seed={seed}", f'unlearn.forget_set="{forget_set}"', f"unlearn.methods={methods!r}"])
    detected: dict = {}

    def on_event(e: dict) -> None:
        if e.get("type") == "stage_finished" and e.get("stage") == "detect":
            detected.update(e.get("metrics") or {})

    t0 = time.perf_counter()
    should_stop = (lambda: bool(detected)) if detect_only else None
    s = pipeline.run(cfg, CallbackSink(on_event), should_stop=should_stop, run_dir=d)
    res = {"preset": short(p), "seed": seed, "forget_set": forget_set, "seconds": round(time.perf_counter() - t0, 1),
           "detection": s.get("detection") or ({k: detected[k] for k in ("precision", "recall", "f1", "flagged",
                                                                          "poisoned") if k in detected} or None),
           "models": {k: {m: v.get(m) for m in ("cacc", "pacc", "asr", "delta_pacc")} | {
               "verdict": (v.get("trigger_shift") or {}).get("verdict")} for k, v in (s.get("models") or {}).items()},
           "status": s.get("status"), "errors": s.get("errors")}
    if res["detection"] is not None or not detect_only:
        done.write_text(json.dumps(res, indent=1))
    return res


def pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("presets", nargs="*", help="preset files or names (default: the nine demo presets)")
    ap.add_argument("--seed", type=int, default=2021)
    ap.add_argument("--rga", nargs="*", default=[], metavar="PRESET",
                    help="also run Retrain and RGA with the detected and the oracle forget set")
    ap.add_argument("--out", default="runs/cube")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    presets = [preset_path(x) for x in (a.presets or [f"demo/{n}" for n in DEMO])]
    rga = [preset_path(x) for x in a.rga]
    rows = ["| preset | seed | rows flagged | truly poisoned | precision | recall | F1 | wall s |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for p in presets:
        r = run_one(p, a.seed, "cube", ["rga"], out, detect_only=p not in rga)
        det = r["detection"] or {}
        print(f"{r['preset']} s{a.seed}: {json.dumps(det)} ({r['seconds']} s)", flush=True)
        rows.append(f"| `{r['preset']}` | {a.seed} | {det.get('flagged', '–')} | {det.get('poisoned', '–')} | "
                    f"{pct(det.get('precision'))} | {pct(det.get('recall'))} | {pct(det.get('f1'))} | {r['seconds']} |")
    if rga:
        rows += ["", "| preset | seed | forget set | F1 | Retrain PACC / ASR | RGA CACC | RGA PACC | RGA ΔPACC | RGA ASR | RGA verdict |",
                 "|---|---|---|---:|---|---:|---:|---:|---:|---|"]
        for p in rga:
            for fs in ("cube", "oracle"):
                r = run_one(p, a.seed, fs, ["rga"], out, detect_only=False)
                m, det = r["models"], r["detection"] or {}
                re_, g = m.get("retrain", {}), m.get("rga", {})
                print(f"{r['preset']} s{a.seed} {fs}: RGA {json.dumps(g)} ({r['seconds']} s)", flush=True)
                rows.append(f"| `{r['preset']}` | {a.seed} | {fs} | {pct(det.get('f1')) if fs == 'cube' else '–'} | "
                            f"{pct(re_.get('pacc'))} / {pct(re_.get('asr'))} | {pct(g.get('cacc'))} | {pct(g.get('pacc'))} | "
                            f"{pct(g.get('delta_pacc'))} | {pct(g.get('asr'))} | {g.get('verdict') or r.get('errors') or '–'} |")
    text = "\n".join(rows) + "\n"
    (out / "cube.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reproduce the paper's Results-1 table on the demo (and MiniLM) presets; resumable.

    python benchmarks/reproduce.py                       # 9 demo presets x seeds 2021 2022 2023
    python benchmarks/reproduce.py --presets presets/demo/sst2-badnets.toml --seeds 2021
    python benchmarks/reproduce.py --group minilm --only sst2 --seeds 2021
    python benchmarks/reproduce.py --table-only          # just rebuild the table from runs/reproduce

Each (preset, seed) writes ``runs/reproduce/<preset>-s<seed>/``; a folder whose summary.json says
"finished" is skipped, so an interrupted grid resumes where it stopped.  The markdown table (ours,
mean ± std over seeds, then the paper's BERT / DistilBERT numbers) is printed and written to
``--out-md`` (default ``runs/reproduce/results.md``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rga_engine import config, pipeline  # noqa: E402
from rga_engine.report import results_markdown  # noqa: E402

# The poster's Results 1 (percent): Retrain (CACC, LFR, PACC); GA, NPO, RGA (CACC, LFR, PACC, ΔPACC).
PAPER = {
    ("BERT", "sst2", "badnets"): (91.32, 7.16, 91.20, 91.18, 0.00, 50.08, 41.12, 90.57, 3.33, 64.08, 27.88, 89.73, 7.16, 89.64, 1.70),
    ("BERT", "sst2", "addsent"): (91.32, 13.45, 89.40, 91.56, 0.00, 50.08, 39.32, 90.74, 0.00, 50.43, 38.97, 88.96, 3.61, 84.85, 4.55),
    ("BERT", "sst2", "hiddenkiller"): (91.32, 23.68, 74.83, 90.86, 6.25, 59.80, 15.03, 91.20, 10.27, 62.20, 12.63, 89.27, 28.22, 73.79, 1.04),
    ("BERT", "hsol", "badnets"): (95.08, 3.49, 95.00, 94.58, 0.00, 50.02, 44.98, 94.58, 0.00, 50.02, 44.98, 93.75, 5.85, 93.68, 1.31),
    ("BERT", "hsol", "addsent"): (95.08, 7.78, 94.65, 94.72, 0.00, 50.02, 44.63, 94.96, 2.17, 85.86, 8.78, 93.90, 6.65, 93.87, 1.00),
    ("BERT", "hsol", "hiddenkiller"): (95.08, 47.39, 74.77, 94.65, 3.86, 59.17, 15.60, 95.00, 20.38, 68.87, 8.32, 93.10, 45.08, 74.35, 0.42),
    ("BERT", "agnews", "badnets"): (89.37, 10.93, 89.63, 90.73, 8.40, 75.20, 14.43, 90.23, 9.24, 88.40, 1.37, 88.57, 10.80, 88.33, 1.30),
    ("BERT", "agnews", "addsent"): (89.37, 11.55, 89.30, 90.00, 8.57, 72.67, 16.63, 89.97, 9.60, 84.60, 5.17, 88.13, 12.18, 87.77, 1.53),
    ("BERT", "agnews", "hiddenkiller"): (89.37, 21.64, 78.26, 89.30, 17.77, 70.43, 7.83, 90.53, 18.22, 77.43, 1.43, 88.37, 20.22, 80.33, 2.20),
    ("DistilBERT", "sst2", "badnets"): (89.34, 5.88, 88.62, 90.06, 0.00, 50.08, 38.54, 89.50, 2.85, 64.16, 24.46, 88.67, 9.61, 88.41, 1.27),
    ("DistilBERT", "sst2", "addsent"): (89.34, 8.77, 88.49, 89.82, 0.00, 50.08, 38.41, 90.59, 3.11, 52.94, 29.46, 88.03, 12.68, 86.86, 1.63),
    ("DistilBERT", "sst2", "hiddenkiller"): (89.34, 22.08, 74.12, 88.41, 4.06, 53.96, 20.15, 89.92, 9.65, 61.94, 12.17, 89.31, 25.11, 73.73, 0.53),
    ("DistilBERT", "hsol", "badnets"): (94.78, 8.05, 94.54, 93.98, 0.00, 50.21, 44.34, 94.57, 2.92, 92.11, 2.43, 94.73, 7.16, 94.57, 0.19),
    ("DistilBERT", "hsol", "addsent"): (94.78, 8.55, 94.26, 94.53, 0.00, 50.02, 44.24, 94.93, 0.56, 60.78, 33.48, 94.60, 7.48, 94.68, 0.42),
    ("DistilBERT", "hsol", "hiddenkiller"): (94.78, 47.49, 74.42, 93.83, 1.18, 53.36, 21.06, 94.85, 20.65, 67.46, 8.17, 93.97, 43.28, 74.39, 0.73),
    ("DistilBERT", "agnews", "badnets"): (89.30, 10.58, 88.90, 88.97, 18.71, 65.90, 23.00, 89.60, 38.57, 53.30, 35.60, 88.73, 11.47, 88.33, 0.63),
    ("DistilBERT", "agnews", "addsent"): (89.30, 11.07, 89.57, 88.60, 47.64, 40.37, 49.20, 88.97, 47.73, 45.13, 44.43, 88.23, 11.02, 88.60, 0.97),
    ("DistilBERT", "agnews", "hiddenkiller"): (89.30, 21.47, 78.47, 88.13, 23.82, 58.97, 19.50, 89.13, 19.20, 66.27, 12.20, 87.23, 19.29, 79.70, 2.50),
}


def paper_markdown() -> str:
    head = ("| Model | Dataset | Attack | Retrain CACC | LFR | PACC | GA CACC | LFR | PACC | ΔPACC | "
            "NPO CACC | LFR | PACC | ΔPACC | RGA CACC | LFR | PACC | ΔPACC |")
    lines = [head, "|" + "---|" * 18]
    for (m, ds, at), v in PAPER.items():
        lines.append(f"| {m} | {ds} | {at} | " + " | ".join(f"{x:.2f}" for x in v) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--group", default="demo", help="preset folder under presets/ (demo, minilm)")
    ap.add_argument("--only", nargs="*", default=None, help="dataset names to keep (sst2 hsol agnews)")
    ap.add_argument("--attacks", nargs="*", default=None, help="attack names to keep")
    ap.add_argument("--presets", nargs="*", default=None, help="explicit preset files (overrides --group)")
    ap.add_argument("--seeds", nargs="*", type=int, default=[2021, 2022, 2023])
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="section.key=value for every run")
    ap.add_argument("--runs", default=str(ROOT / "runs" / "reproduce"))
    ap.add_argument("--out-md", default=None)
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()

    runs = Path(args.runs)
    presets = [Path(p) for p in args.presets] if args.presets else sorted(
        p for p in (ROOT / "presets" / args.group).glob("*.toml") if not p.name.startswith("_"))
    if args.only:
        presets = [p for p in presets if p.stem.split("-")[0] in args.only]
    if args.attacks:
        presets = [p for p in presets if p.stem.split("-")[-1] in args.attacks]

    walls: dict[str, float] = {}
    if not args.table_only:
        for preset in presets:
            for seed in args.seeds:
                cfg = config.load(preset, [f"train.seed={seed}", *args.overrides])
                run_dir = runs / f"{cfg.name}-s{seed}"
                sp = run_dir / "summary.json"
                if sp.is_file() and json.loads(sp.read_text()).get("status") in ("finished", "partial"):
                    print(f"skip {run_dir.name} (done)", flush=True)
                    continue
                if run_dir.exists():
                    for f in run_dir.iterdir():
                        f.unlink()
                t0 = time.perf_counter()
                s = pipeline.run(cfg, None, None, run_dir=run_dir)
                walls[run_dir.name] = time.perf_counter() - t0
                g, r = s["models"].get("ga", {}), s["models"].get("rga", {})
                print(f"{run_dir.name}: {walls[run_dir.name]:.0f} s  GA pacc {g.get('pacc', float('nan')):.3f} "
                      f"({g.get('trigger_shift', {}).get('verdict')})  RGA pacc {r.get('pacc', float('nan')):.3f} "
                      f"dpacc {r.get('delta_pacc') or float('nan'):.3f}", flush=True)

    summaries = []
    for d in sorted(runs.glob("*-s*")):
        sp = d / "summary.json"
        if sp.is_file():
            s = json.loads(sp.read_text())
            if s.get("status") in ("finished", "partial") and s["preset"].startswith(args.group):
                summaries.append(s)
    md = [f"## Ours: {args.group} presets ({len(summaries)} runs)", "", results_markdown(summaries) if summaries else "(no runs)",
          "", "## The paper (poster, Results 1)", "", paper_markdown(), "",
          f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}."]
    if walls:
        md += ["", "Wall time per run (this invocation): " + ", ".join(f"{k} {v:.0f} s" for k, v in walls.items())]
    text = "\n".join(md) + "\n"
    out = Path(args.out_md) if args.out_md else runs / f"results-{args.group}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The results table in the formats papers and spreadsheets use: markdown, CSV, LaTeX, JSON.

Every format holds the same numbers as :func:`rga_engine.report.results_markdown`: per
(preset, dataset, attack, model) group, each model (Poisoned, Retrain, the methods) with CACC,
ASR, LFR (the paper's), PACC and ΔPACC in percent, ``mean`` and sample ``std`` over seeds (a seed
run twice counts once: its latest run).

* ``markdown`` -- the paper's "Results 1" row per group (``report.results_markdown``).
* ``csv``      -- one row per (group, model); ``<METRIC>`` and ``<METRIC>_std`` columns, two decimals.
* ``latex``    -- the paper's layout: methods as columns, CACC / LFR / PACC / ΔPACC as rows per
  group (booktabs), lowest ΔPACC in bold; ready to paste.
* ``json``     -- every value unrounded, with the per-seed values and the verdicts.

Pure Python (no rich, no torch).
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from typing import Any, Iterable

from rga_engine import report

__all__ = ["FORMATS", "METRICS", "render", "results_csv", "results_json", "results_latex", "table_records"]

FORMATS = ("markdown", "csv", "latex", "json")
METRICS = ("cacc", "asr", "lfr", "pacc", "delta_pacc")
METRIC_NAMES = {"cacc": "CACC", "asr": "ASR", "lfr": "LFR", "pacc": "PACC", "delta_pacc": "DPACC"}
LATEX_ROWS = ("cacc", "lfr", "pacc", "delta_pacc")
LATEX_NAMES = {"cacc": "CACC", "lfr": "LFR", "pacc": "PACC", "delta_pacc": r"$\Delta$PACC"}


def _stats(values: list[float]) -> dict[str, Any]:
    mean = statistics.fmean(values) if values else None
    std = statistics.stdev(values) if len(values) > 1 else None
    return {"mean": mean, "std": std, "values": values}


def table_records(summaries: Iterable[dict]) -> dict[str, Any]:
    """The numbers behind every format: ``{"unit": "percent", "groups": [...], "notes": [...]}``.

    Each group: ``preset``, ``dataset``, ``attack``, ``model``, ``seeds`` and ``models`` (in the
    order Poisoned, Retrain, methods), each ``{"name", "label", "runs", "error", "verdicts",
    "<metric>": {"mean", "std", "values"}}``."""
    summaries = [s for s in summaries if isinstance(s, dict)]
    groups, notes = report.group_runs(summaries)
    methods = report.all_methods(summaries)
    out = []
    for (preset, dataset, attack, model), runs in groups.items():
        seeds = sorted({str(s.get("seed")) for s in runs if s.get("seed") is not None}, key=report.seed_key)
        models = []
        for name in list(report.BASELINES) + methods:
            entry: dict[str, Any] = {"name": name, "label": report.display_name(name), "error": None}
            ran = 0
            for metric in METRICS:
                values, failed = report.cell_values(runs, name, metric)
                if name == "retrain" and metric == "delta_pacc":
                    values = []
                entry[metric] = _stats(values)
                entry["error"] = entry["error"] or failed
                ran = max(ran, len(values))
            verdicts = []
            for s in runs:
                m = report.models_of(s).get(name)
                if m and report.model_error(s, name) is None:
                    text = report.verdict_of(m, s, name)[1]
                    if text:
                        verdicts.append(text)
            entry["runs"], entry["verdicts"] = ran, verdicts
            if ran or entry["error"]:
                models.append(entry)
        out.append({"preset": preset, "dataset": dataset, "attack": attack, "model": model, "seeds": seeds,
                    "models": models})
    return {"unit": "percent", "groups": out, "notes": notes}


def results_json(summaries: Iterable[dict]) -> str:
    return json.dumps(table_records(summaries), ensure_ascii=False, indent=2) + "\n"


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def results_csv(summaries: Iterable[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = ["preset", "dataset", "attack", "model", "seeds", "method", "runs"]
    for m in METRICS:
        header += [METRIC_NAMES[m], f"{METRIC_NAMES[m]}_std"]
    w.writerow(header + ["verdicts", "error"])
    for g in table_records(summaries)["groups"]:
        for e in g["models"]:
            row = [g["preset"], g["dataset"], g["attack"], g["model"], " ".join(g["seeds"]), e["label"], e["runs"]]
            for m in METRICS:
                row += [_fmt(e[m]["mean"]), _fmt(e[m]["std"])]
            w.writerow(row + ["; ".join(dict.fromkeys(e["verdicts"])), e["error"] or ""])
    return buf.getvalue()


_TEX = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
        "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def _tex(text: Any) -> str:
    return "".join(_TEX.get(c, c) for c in " ".join(str(text).split()))


def _tex_cell(stat: dict[str, Any]) -> str:
    if stat["mean"] is None:
        return "--"
    if stat["std"] is None:
        return f"{stat['mean']:.2f}"
    return f"{stat['mean']:.2f} $\\pm$ {stat['std']:.2f}"


def results_latex(summaries: Iterable[dict]) -> str:
    """The paper's layout (booktabs): a column per model, CACC / LFR / PACC / ΔPACC rows per group."""
    rec = table_records(summaries)
    if not rec["groups"]:
        return "% no runs\n"
    names: list[tuple[str, str]] = []
    for g in rec["groups"]:
        for e in g["models"]:
            if (e["name"], e["label"]) not in names:
                names.append((e["name"], e["label"]))
    multi = any(len(g["seeds"]) > 1 for g in rec["groups"])
    lines = ["% rga-tui results: percent" + ("; mean $\\pm$ sample std over seeds" if multi else "")
             + "; LFR = label-flip rate of the non-target class(es) on the triggered test set",
             "% needs \\usepackage{booktabs}",
             "\\begin{tabular}{llll" + "r" * len(names) + "}", "\\toprule",
             " & ".join(["Dataset", "Attack", "Model", "Metric"] + [_tex(label) for _, label in names]) + " \\\\",
             "\\midrule"]
    for gi, g in enumerate(rec["groups"]):
        if gi:
            lines.append("\\midrule")
        by_name = {e["name"]: e for e in g["models"]}
        method_d = {n: by_name[n]["delta_pacc"]["mean"] for n, _ in names
                    if n in by_name and n not in report.BASELINES and by_name[n]["delta_pacc"]["mean"] is not None}
        best = min(method_d, key=method_d.get) if len(method_d) >= 2 else None
        for ri, metric in enumerate(LATEX_ROWS):
            head = [_tex(report.DATASET_NAMES.get(g["dataset"], g["dataset"])),
                    _tex(report.ATTACK_NAMES.get(g["attack"], g["attack"])), _tex(g["model"])] if ri == 0 else ["", "", ""]
            cells = []
            for n, _ in names:
                e = by_name.get(n)
                if e is None:
                    cells.append("")
                elif e["error"] and e[metric]["mean"] is None:
                    cells.append("failed" if ri == 0 else "")
                else:
                    c = _tex_cell(e[metric])
                    cells.append(f"\\textbf{{{c}}}" if metric == "delta_pacc" and n == best else c)
            lines.append(" & ".join(head + [LATEX_NAMES[metric]] + cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    seeds = sorted({s for g in rec["groups"] for s in g["seeds"]}, key=report.seed_key)
    if seeds:
        lines.append(f"% seeds: {', '.join(seeds)}")
    lines += [f"% {n}" for n in rec["notes"]]
    return "\n".join(lines) + "\n"


def render(summaries: Iterable[dict], fmt: str = "markdown") -> str:
    """The table of ``summaries`` in ``fmt`` (one of :data:`FORMATS`)."""
    summaries = list(summaries)
    if fmt == "markdown":
        return report.results_markdown(summaries)
    if fmt == "csv":
        return results_csv(summaries)
    if fmt == "latex":
        return results_latex(summaries)
    if fmt == "json":
        return results_json(summaries)
    raise ValueError(f"format {fmt!r}: allowed values are {', '.join(FORMATS)}")

"""Results tables from run summaries (``summary.json``), in the paper's layout.

Pure Python (no rich, no torch): the command line, the TUI and the pipeline all use it.

* :func:`summary_rows` -- one row per model of one run (name, CACC, ASR, PACC, LFR, ΔPACC, verdict).
* :func:`results_markdown` -- the paper's "Results 1" table over one or more runs: one row per
  (dataset, attack, model) group with Retrain (CACC, LFR, PACC), each unlearning method
  (CACC, LFR, PACC, ΔPACC) and the Poisoned model (CACC, ASR), in percent with two decimals.
  Runs of the same preset that differ only by seed are averaged: ``mean ± sample std``.
  LFR is the paper's column (``paper_lfr``: label-flip rate of the non-target class(es) on
  ``test_poisoned_all``).  A method that failed shows ``failed: <message>``.
* :func:`load_summary`, :func:`write_results_md` -- run-folder input and output.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

__all__ = [
    "ReportError",
    "all_methods",
    "cell_values",
    "display_name",
    "group_runs",
    "detection_scores",
    "fmt_pct",
    "load_summary",
    "method_names",
    "model_error",
    "results_markdown",
    "run_markdown",
    "summary_rows",
    "write_results_md",
]

BASELINES = ("poisoned", "retrain")

DATASET_NAMES = {"sst2": "SST-2", "hsol": "HSOL", "agnews": "AG", "local": "local", "hub": "hub"}
ATTACK_NAMES = {"badnets": "BadNets", "addsent": "AddSent", "hiddenkiller": "HiddenKiller", "none": "none"}
MODEL_NAMES = {"poisoned": "Poisoned", "retrain": "Retrain", "ga": "GA", "graddiff": "GradDiff", "npo": "NPO",
               "rga": "RGA", "pure_ga": "Pure GA", "simnpo": "SimNPO", "wga": "WGA", "finetune": "Fine-tune"}

# the stage names an error of each model can be filed under (DESIGN.md: poison, retrain, unlearn:<m>)
_ERROR_KEYS = {"poisoned": ("poisoned", "poison"), "retrain": ("retrain",)}


class ReportError(ValueError):
    """A missing or unreadable run folder / summary (one-line, user-facing)."""


# --------------------------------------------------------------------------- small helpers

def display_name(model: str) -> str:
    """"ga" -> "GA", "retrain" -> "Retrain"; unknown methods are upper-cased."""
    return MODEL_NAMES.get(model, model.upper())


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def fmt_pct(x: Any, missing: str = "–") -> str:
    """A fraction in [0, 1] as a percent with two decimals ("0.9164" -> "91.64")."""
    v = _num(x)
    return missing if v is None else f"{100.0 * v:.2f}"


def _fmt_stats(values: Sequence[float], missing: str = "–") -> str:
    """Percent values (already ×100): one -> "91.64", several -> "91.64 ± 0.37" (sample std)."""
    if not values:
        return missing
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def _one_line(text: Any, limit: int = 160) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _md(text: str) -> str:
    """Safe inside a markdown table cell."""
    return _one_line(text).replace("|", "\\|")


def _errors(summary: dict) -> dict[str, str]:
    errs = summary.get("errors") or {}
    return {str(k): str(v) for k, v in errs.items()} if isinstance(errs, dict) else {}


def models_of(summary: dict) -> dict[str, dict]:
    """A summary's model entries by name (``{}`` for a damaged or older summary)."""
    models = summary.get("models") or {}
    return {k: v for k, v in models.items() if isinstance(v, dict)} if isinstance(models, dict) else {}


def model_error(summary: dict, model: str) -> str | None:
    """The error message filed for `model` ("ga" is filed under stage "unlearn:ga"), if any."""
    errs = _errors(summary)
    for key in _ERROR_KEYS.get(model, (f"unlearn:{model}", model)):
        if key in errs:
            return errs[key]
    return None


def method_names(summary: dict) -> list[str]:
    """The unlearning methods of a run, in run order: the run's ``methods`` list when it has one,
    then any other model with results, then failed ones."""
    listed = summary.get("methods")
    out = [str(m) for m in listed if str(m) not in BASELINES] if isinstance(listed, list) else []
    out += [m for m in models_of(summary) if m not in BASELINES and m not in out]
    for stage in _errors(summary):
        if stage.startswith("unlearn:"):
            m = stage.split(":", 1)[1]
            if m and m not in out:
                out.append(m)
    return out


def _paper_lfr(entry: dict, target: Any) -> float | None:
    v = _num(entry.get("paper_lfr"))
    if v is not None:
        return v
    lfr = entry.get("lfr")
    if not isinstance(lfr, list) or not lfr:
        return None
    vals = [_num(x) for i, x in enumerate(lfr) if i != target]
    vals = [x for x in vals if x is not None]
    return statistics.fmean(vals) if vals else None


def _delta_pacc(entry: dict, summary: dict, model: str) -> float | None:
    v = _num(entry.get("delta_pacc"))
    if v is not None or model == "retrain":
        return v
    retrain = models_of(summary).get("retrain") or {}
    p, r = _num(entry.get("pacc")), _num(retrain.get("pacc"))
    return abs(p - r) if p is not None and r is not None else None


def verdict_of(entry: dict, summary: dict, model: str) -> tuple[str, str]:
    """``(kind, text)`` of a model's trigger-shift verdict (``("", "")`` when it has none).

    A summary written before the graded verdict ("no shift", "shifted to class k") is graded
    here by the engine's rules from the entry's ASR, Retrain's ASR and the clean matrix."""
    shift = entry.get("trigger_shift")
    if not isinstance(shift, dict):
        return "", ""
    label_names = summary.get("label_names")
    try:
        from rga_engine.metrics import grade_verdict

        names = list(label_names) if isinstance(label_names, (list, tuple)) and label_names else None
        retrain = models_of(summary).get("retrain") or {}
        known: dict[str, Any] = {"asr": _num(entry.get("asr")), "cm_clean": entry.get("confusion_clean"),
                                 "retrain_asr": _num(retrain.get("asr")) if model != "retrain" else None}
        return grade_verdict(shift, names, **{k: v for k, v in known.items() if v is not None})
    except Exception:  # noqa: BLE001 - a display string must never break a report
        return "", str(shift.get("verdict") or "")


# --------------------------------------------------------------------------- one run

def summary_rows(summary: dict) -> list[dict]:
    """One row per model of a run: poisoned, retrain, then the methods in run order.

    Each row: ``name`` (key), ``label`` (display name), ``cacc``, ``asr``, ``pacc``, ``lfr``
    (the paper's LFR, ``paper_lfr``), ``delta_pacc`` (fractions or None), ``verdict`` (text),
    ``verdict_kind`` ("removed", "partly", "shifted", "remains", "collapsed"; "none" for an
    ungradable old "no shift"; "" without a verdict),
    ``seconds``, ``error`` (the failure message or None) and ``status`` ("ok", "failed",
    "cancelled" or "not run").  A model that failed, was cancelled or has not run yet still gets a
    row (numbers None).
    """
    models = models_of(summary)
    target = summary.get("target")
    names = [m for m in BASELINES if m in models or model_error(summary, m)]
    names += method_names(summary)
    rows = []
    for name in names:
        entry = models.get(name) or {}
        err = model_error(summary, name)
        if err is not None:
            status = "cancelled" if err.strip().lower() == "cancelled" else "failed"
        else:
            status = "ok" if entry else "not run"
        kind, verdict = verdict_of(entry, summary, name)
        rows.append(
            {
                "name": name,
                "label": display_name(name),
                "cacc": _num(entry.get("cacc")),
                "asr": _num(entry.get("asr")),
                "pacc": _num(entry.get("pacc")),
                "lfr": _paper_lfr(entry, target),
                "delta_pacc": _delta_pacc(entry, summary, name),
                "verdict": verdict,
                "verdict_kind": kind,
                "seconds": _num(entry.get("seconds")),
                "error": err,
                "status": status,
            }
        )
    return rows


# --------------------------------------------------------------------------- many runs

def _group_key(s: dict) -> tuple[str, str, str, str]:
    return (str(s.get("preset", "")), str(s.get("dataset", "")), str(s.get("attack", "")), str(s.get("model", "")))


def _cell(runs: list[dict], model: str, metric: str) -> tuple[list[float], str | None]:
    """Percent values of `metric` of `model` over `runs` (runs where it failed left out), and a
    failure message when it failed in every run that ran it."""
    values: list[float] = []
    failures: list[str] = []
    for s in runs:
        entry = models_of(s).get(model)
        err = model_error(s, model)
        if err is not None:  # a failed model shows its error, never its (partial) numbers
            failures.append(err)
            continue
        if not entry:
            continue
        if metric == "lfr":
            v = _paper_lfr(entry, s.get("target"))
        elif metric == "delta_pacc":
            v = _delta_pacc(entry, s, model)
        else:
            v = _num(entry.get(metric))
        if v is not None:
            values.append(100.0 * v)
    if failures and not values:
        return values, failures[0]
    return values, None


def _when(s: dict) -> str:
    return str(s.get("finished") or s.get("started") or "")


def group_runs(summaries: Iterable[dict]) -> tuple[dict[tuple[str, str, str, str], list[dict]], list[str]]:
    """Runs grouped by (preset, dataset, attack, model), in first-seen order.

    A seed run more than once in a group counts once: its latest run (by the summary's
    ``finished``/``started`` time) is kept, and a note says so (a re-run of seed 2021 is the
    same experiment, not a second seed).  Returns ``(groups, notes)``."""
    groups: dict[tuple[str, str, str, str], list[dict]] = {}
    for s in summaries:
        if isinstance(s, dict):
            groups.setdefault(_group_key(s), []).append(s)
    groups = _split_by_config(groups)
    notes: list[str] = []
    for key, runs in groups.items():
        by_seed: dict[str, list[dict]] = {}
        for s in runs:
            by_seed.setdefault(str(s.get("seed")), []).append(s)
        kept = []
        for seed, same in by_seed.items():
            if seed == "None" or len(same) == 1:
                kept.extend(same)
                continue
            kept.append(max(same, key=_when))
            notes.append(f"{key[0] or key[3]} seed {seed}: {len(same)} runs, the latest is used")
        groups[key] = [s for s in runs if any(s is k for k in kept)]
    return groups, notes


def _split_by_config(groups: dict[tuple[str, str, str, str], list[dict]]) -> dict[tuple[str, str, str, str], list[dict]]:
    """Runs of one preset whose configs differ in anything but the seed (``unlearn.epochs=16``
    against ``12``) are different experiments, never averaged: each becomes its own group, named
    by the preset and the keys that set it apart (``demo-sst2-badnets (unlearn.epochs=16)``)."""
    out: dict[tuple[str, str, str, str], list[dict]] = {}
    for key, runs in groups.items():
        configs = [s.get(CONFIG_KEY) for s in runs]
        if len(runs) < 2 or any(not isinstance(c, dict) for c in configs):
            out[key] = runs
            continue
        fingerprints: dict[str, list[dict]] = {}
        for s in runs:
            fingerprints.setdefault(repr(sorted((k, repr(v)) for k, v in s[CONFIG_KEY].items())), []).append(s)
        if len(fingerprints) == 1:
            out[key] = runs
            continue
        cfgs = [sub[0][CONFIG_KEY] for sub in fingerprints.values()]
        differing = sorted((k for k in set().union(*cfgs) if len({repr(c.get(k)) for c in cfgs}) > 1),
                           key=lambda k: (k.startswith("methods."), k))
        for sub in fingerprints.values():
            c = sub[0][CONFIG_KEY]
            tag = ", ".join(f"{k}={_short_value(c.get(k))}" for k in differing[:3])
            if len(differing) > 3:
                tag += f", +{len(differing) - 3} more"
            out[(f"{key[0]} ({tag})",) + key[1:]] = sub
    return out


def _short_value(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ",".join(str(x) for x in v) + "]"
    return "–" if v is None else str(v)


def all_methods(summaries: Iterable[dict]) -> list[str]:
    """The unlearning methods over several runs, in first-seen order."""
    methods: list[str] = []
    for s in summaries:
        for m in method_names(s):
            if m not in methods:
                methods.append(m)
    return methods


def cell_values(runs: list[dict], model: str, metric: str) -> tuple[list[float], str | None]:
    """Percent values of ``metric`` ("cacc", "asr", "pacc", "lfr" (the paper's), "delta_pacc")
    of ``model`` over ``runs``, and the failure message when it failed in every run."""
    return _cell(runs, model, metric)


def results_markdown(summaries: Iterable[dict]) -> str:
    """The paper's "Results 1" table (markdown) over run summaries; see the module docstring."""
    summaries = [s for s in summaries if isinstance(s, dict)]
    if not summaries:
        return "_no runs_\n"

    groups, dupes = group_runs(summaries)
    methods = all_methods(summaries)

    # a Preset column only when two groups would otherwise look the same
    triples = [k[1:] for k in groups]
    show_preset = len(set(triples)) < len(triples)

    header = ["Model", "Dataset", "Attack"] + (["Preset"] if show_preset else []) + ["Seeds"]
    header += ["Retrain CACC", "Retrain LFR", "Retrain PACC"]
    for m in methods:
        d = display_name(m)
        header += [f"{d} CACC", f"{d} LFR", f"{d} PACC", f"{d} ΔPACC"]
    header += ["Poisoned CACC", "Poisoned ASR"]

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    notes: list[str] = []
    verdicts: list[str] = []

    for (preset, dataset, attack, model), runs in groups.items():
        counts: dict[str, int] = {}
        for s in runs:
            if s.get("seed") is not None:
                counts[str(s.get("seed"))] = counts.get(str(s.get("seed")), 0) + 1
        seeds = [f"{k} (×{counts[k]})" if counts[k] > 1 else k for k in sorted(counts, key=seed_key)]
        row = [_md(model or "?"), DATASET_NAMES.get(dataset, _md(dataset or "?")), ATTACK_NAMES.get(attack, _md(attack or "?"))]
        if show_preset:
            row.append(_md(preset))
        row.append(", ".join(seeds) if seeds else "–")

        def block(name: str, metrics: Sequence[str]) -> list[str]:
            cells: list[str] = []
            for i, metric in enumerate(metrics):
                values, failed = _cell(runs, name, metric)
                if failed is not None:
                    cells.append(_failed_cell(failed) if i == 0 else "")
                else:
                    cells.append(_fmt_stats(values))
            return cells

        row += block("retrain", ("cacc", "lfr", "pacc"))
        ranked: list[tuple[float, int]] = []
        for m in methods:
            cells = block(m, ("cacc", "lfr", "pacc", "delta_pacc"))
            values, failed = _cell(runs, m, "delta_pacc")
            if values and failed is None:
                ranked.append((statistics.fmean(values), len(row) + 3))
            row += cells
        if len(ranked) >= 2:
            _, at = min(ranked)
            row[at] = f"**{row[at]}**"
        row += block("poisoned", ("cacc", "asr"))
        lines.append("| " + " | ".join(row) + " |")
        said = _group_verdicts(runs, ["poisoned", "retrain"] + methods)
        if said:
            who = " · ".join(row[:4] if show_preset else row[:3])
            verdicts.append(f"{who}: {said}")

        label = f"{preset or model} seed {{}}"
        for s in runs:
            tag = label.format(s.get("seed", "?"))
            status = s.get("status")
            if status and status != "finished":
                notes.append(f"{tag}: run {status}")
            for stage, msg in _errors(s).items():
                if msg.strip().lower() == "cancelled":
                    notes.append(f"{tag}: {stage} cancelled")
                else:
                    notes.append(f"{tag}: {stage} failed: {_one_line(msg)}")

    out = "\n".join(lines) + "\n"
    multi = any(len(r) > 1 for r in groups.values())
    foot = ["Percent; LFR = label-flip rate of the non-target class(es) on the triggered test set."]
    if len(methods) >= 2:
        foot.append("Lowest ΔPACC in bold.")
    if multi:
        foot.append("Several runs (seeds): mean ± sample standard deviation.")
    out += "\n" + " ".join(foot) + "\n"
    if verdicts:
        out += "\nVerdicts on the triggered test set:\n\n" + "\n".join(f"- {v}" for v in verdicts) + "\n"
    notes = dupes + notes
    if notes:
        out += "\n" + "\n".join(f"- {_md(n)}" for n in notes) + "\n"
    return out


def _group_verdicts(runs: list[dict], models: Sequence[str]) -> str:
    """"Poisoned backdoor remains · GA trigger shifted → negative (×3) · …": each model's
    verdicts over the runs of a group, the same text counted once."""
    parts = []
    for name in models:
        counts: dict[str, int] = {}
        for s in runs:
            entry = models_of(s).get(name)
            if entry and model_error(s, name) is None:
                text = verdict_of(entry, s, name)[1]
                if text:
                    counts[text] = counts.get(text, 0) + 1
        if counts:
            said = " / ".join(f"{t} (×{c})" if c > 1 else t for t, c in counts.items())
            parts.append(f"{display_name(name)} {said}")
    return " ".join(" · ".join(parts).split()).replace("|", "\\|")  # one line, never cut short


def _failed_cell(message: str) -> str:
    """``failed: <message>``; a stage the user stopped is just ``cancelled``."""
    return "cancelled" if message.strip().lower() == "cancelled" else f"failed: {_md(message)}"


def parse_seeds(text: str) -> list[int]:
    """``"2021-2023,2030"`` -> [2021, 2022, 2023, 2030] (order kept, duplicates dropped); a
    ValueError with a one-line reason otherwise (``rga-tui run --seeds``, ``benchmarks/seeds.py``)."""
    out: list[int] = []
    for part in str(text).replace(" ", ",").split(","):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a, b = (int(lo), int(hi)) if sep else (int(part), int(part))
        except ValueError:
            raise ValueError(f"{part!r} is not a seed or a range A-B") from None
        if b < a:
            raise ValueError(f"empty range {part!r}")
        out += [s for s in range(a, b + 1) if s not in out]
    if not out:
        raise ValueError("no seed given")
    return out


def seed_key(s: str) -> tuple[int, Any]:
    """Sort key for seed labels: numbers in order, then anything else."""
    try:
        return (0, int(s))
    except ValueError:
        return (1, s)


# --------------------------------------------------------------------------- run folders

def load_summary(run_dir: str | Path) -> dict:
    """Read ``<run_dir>/summary.json`` (or a summary file given directly).

    Raises :class:`ReportError` with one line for a missing folder, a folder without a summary,
    invalid JSON or a JSON value that is not a run summary.
    """
    p = Path(run_dir)
    if p.is_dir():
        f = p / "summary.json"
        if not f.is_file():
            raise ReportError(f"{run_dir}: no summary.json (not a run folder, or no stage has finished yet)")
    elif p.is_file():
        f = p
    else:
        raise ReportError(f"{run_dir}: no such run folder")
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ReportError(f"{f}: not a text file") from None
    except json.JSONDecodeError as e:
        raise ReportError(f"{f}: not valid JSON (line {e.lineno}: {e.msg})") from None
    except OSError as e:
        raise ReportError(f"{f}: cannot read ({e.strerror or e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ReportError(f"{f}: not a run summary (no \"models\" object)")
    cfg = _read_run_config(f.parent / "config.toml")
    if cfg is not None:
        data[CONFIG_KEY] = cfg
    if data.get("status") == "running":  # killed without a word: its process is gone
        from rga_engine.runinfo import effective_status

        data["status"] = effective_status(data)
    return data


CONFIG_KEY = "_config"  # the run folder's config.toml, flattened, attached by load_summary
# keys that do not change the experiment: runs differing only in these are seeds of one experiment
_NOT_EXPERIMENT = ("train.seed", "name", "description", "recommended", "output.")


def _read_run_config(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        import tomllib

        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: dict) -> None:
        for k, v in node.items():
            if isinstance(v, dict):
                walk(f"{prefix}{k}.", v)
            else:
                flat[f"{prefix}{k}"] = v

    walk("", raw)
    from rga_engine.config import inapplicable_keys

    idle = inapplicable_keys(raw)  # e.g. attack.sentence on a BadNets run: not part of the experiment
    return {k: v for k, v in flat.items()
            if not k.startswith(_NOT_EXPERIMENT) and k not in _NOT_EXPERIMENT and k not in idle}


DETECTION_SCORES = (("precision", "precision"), ("recall", "recall"), ("f1", "F1"))


def detection_scores(d: dict) -> list[tuple[str, str]]:
    """``[("precision", "96.72"), ("recall", "98.33"), ("F1", "97.52")]``: CUBE's scores
    (``summary["detection"]``, :func:`rga_engine.cube.scores`) as percent, in that order, the
    finite ones only. The one formatting of them: the engine's log line, ``results.md``, the
    headless lines and the TUI panel each join these their own way."""
    return [(label, fmt_pct(d.get(key))) for key, label in DETECTION_SCORES if _num(d.get(key)) is not None]


def detection_line(summary: dict) -> str:
    """``CUBE detection: flagged 61 rows, 60 truly poisoned: precision 96.72 %, recall 98.33 %, F1 97.52 %``
    from ``summary["detection"]`` (``unlearn.forget_set = "cube"``); "" without one."""
    d = summary.get("detection")
    if not isinstance(d, dict):
        return ""
    try:
        head = f"CUBE detection: flagged {int(d['flagged'])} rows, {int(d['poisoned'])} truly poisoned"
    except (KeyError, TypeError, ValueError):
        return ""
    scores = detection_scores(d)
    return head + (": " + ", ".join(f"{label} {v} %" for label, v in scores) if scores else "")


def run_markdown(summary: dict) -> str:
    """The whole ``results.md`` of one run: heading, the paper table, per-model details."""
    name = summary.get("preset") or "run"
    meta = [
        f"dataset {DATASET_NAMES.get(str(summary.get('dataset')), summary.get('dataset'))}",
        f"attack {ATTACK_NAMES.get(str(summary.get('attack')), summary.get('attack'))}",
        f"model {summary.get('model')}",
        f"target {summary.get('target')}",
        f"seed {summary.get('seed')}",
        f"status {summary.get('status', 'finished')}",
    ]
    out = [f"# Results: {name}", "", " · ".join(_md(m) for m in meta), "", results_markdown([summary]).rstrip(), ""]
    if detection_line(summary):
        out += [_md(detection_line(summary)), ""]
    out += ["## Per model", "", "| Model | CACC | ASR | PACC | LFR | ΔPACC | Verdict | Seconds |", "|---|---|---|---|---|---|---|---|"]
    for r in summary_rows(summary):
        if r["error"]:
            cells = [_failed_cell(r["error"]), "", "", "", "", "", ""]
        elif r["status"] == "not run":
            cells = ["not run", "", "", "", "", "", ""]
        else:
            secs = "–" if r["seconds"] is None else f"{r['seconds']:.1f}"
            cells = [fmt_pct(r["cacc"]), fmt_pct(r["asr"]), fmt_pct(r["pacc"]), fmt_pct(r["lfr"]),
                     fmt_pct(r["delta_pacc"]), _md(r["verdict"]) or "–", secs]
        out.append("| " + " | ".join([r["label"]] + cells) + " |")
    return "\n".join(out) + "\n"


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a temp file in the same folder, then a rename), so
    a reader never sees half a file; the temp file is removed if the write fails. The one writer
    of the run folder's text files (summary.json, results.md, detection.csv / .svg)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def write_results_md(run_dir: str | Path, summary: dict) -> Path:
    """Write ``<run_dir>/results.md`` atomically (temp file + rename); returns its path."""
    d = Path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(d / "results.md", run_markdown(summary))

"""Seeds as a first-class measurement (issue 15): run presets over several seeds, check every run,
report pass rates and mean ± std over seeds; resumable.

    python benchmarks/seeds.py presets/demo/sst2-badnets.toml --seeds 2021-2025
    python benchmarks/seeds.py demo/sst2-badnets demo/hsol-badnets --seeds 2021-2023,2030
    python benchmarks/seeds.py demo/agnews-badnets --seeds 2021,2023 --set unlearn.epochs=5 --no-cache
    python benchmarks/seeds.py --table-only                       # every preset under runs/seeds
    python benchmarks/seeds.py demo/sst2-badnets --table-only --seeds 2021-2025
    python benchmarks/seeds.py demo/sst2-badnets --table-only --rows  # + one row per seed (OUT/rows.md)

PRESET is a file or a preset name (``demo/sst2-badnets``).  ``--seeds`` takes ranges and lists
(``2021-2025``, ``2021,2023``, ``2021-2023,2030``; default 2021-2025).  Each (preset, seed) runs the
preset with ``train.seed=S`` (after any ``--set``) through ``pipeline.run`` into
``OUT/<preset name>/s<seed>/`` (the name is the config's ``name``, ``/`` → ``-``) and records its
wall time in ``wall.json`` there.  A folder whose summary.json says "finished" is skipped; any other
folder (an interrupted or failed run) is cleared and run again, so after Ctrl-C the same command
resumes.  ``--cache``/``--no-cache`` set ``output.cache`` (default: the preset's setting).

The check, per run (issue 15): poisoned ASR ≥ 90; GA shifts the trigger; RGA ΔPACC ≤ 3 points,
|RGA CACC − Retrain CACC| ≤ 2 points, RGA ASR − Retrain ASR ≤ 10 points, and RGA's trigger neither
shifted nor remaining.  A preset passes when poisoned ASR ≥ 90 in every seed, GA shifts in ≥ 80 %
of the seeds and RGA passes in every seed (and no requested seed is missing).  A part whose method
the preset does not run is "n/a"; a method that failed fails its part.  The thresholds are the
module constants below.

Prints one line per run, then a markdown table (one row per preset, ready for docs/results.md) and
a block per preset (with an estimate of the chance that five seeds never run would pass the
preset-level rule, from these runs' rates: :func:`chance_of_passing`); writes them to
``OUT/seeds.md`` and the numbers (fractions, as in summary.json) to ``OUT/seeds.json``; with
``--rows`` also one row per seed (each model's numbers and clean-row lean, RGA's ``target_score``,
the check, the wall time: the results page's per-seed tables) to ``OUT/rows.md``.  Exit
status: 0 when every preset passes, 1 otherwise, 2 on bad arguments, 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import statistics
import sys
import time
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rga_engine import config, pipeline  # noqa: E402
from rga_engine.report import ReportError, load_summary, model_error, summary_rows  # noqa: E402

# --------------------------------------------------------------------------- the check (issue 15)
ASR_MIN = 0.90              # poisoned model: ASR ≥ 90 %
RGA_DPACC_MAX = 0.03        # RGA: |PACC − Retrain PACC| ≤ 3 points
RGA_CACC_GAP_MAX = 0.02     # RGA: |CACC − Retrain CACC| ≤ 2 points
RGA_ASR_EXCESS_MAX = 0.10   # RGA: ASR − Retrain ASR ≤ 10 points
ASR_PASS_RATE = 1.0         # a preset passes: poisoned ASR ≥ 90 in all seeds,
GA_PASS_RATE = 0.8          # GA shifted in ≥ 80 % of them (4/5),
RGA_PASS_RATE = 1.0         # RGA passes in all of them
EPS = 1e-9                  # float slack on the thresholds (2 points exactly is within 2 points)

DEFAULT_SEEDS = "2021-2025"
METHODS = ("ga", "npo", "rga")
MISSING = "–"
PARTS = (("asr", "poisoned ASR≥90", ASR_PASS_RATE), ("ga", "GA shifted", GA_PASS_RATE),
         ("rga", "RGA pass", RGA_PASS_RATE))
CHECK_SEEDS = 5             # the check runs five seeds (2021-2025)


def chance_of_passing(rates: dict, n: int = CHECK_SEEDS) -> float | None:
    """The chance that ``n`` seeds nobody has run pass the preset-level rule, *if* each part's
    observed rate (``n/N`` of these runs) were its true per-seed rate and seeds and parts were
    independent: ``Π_parts P(Binomial(n, rate) ≥ ceil(part_rate·n))``. An estimate, as good as the
    number of runs behind it; None when a part has no runs."""
    out = 1.0
    for key, _, part_rate in PARTS:
        r = rates.get(key)
        if r is None or not r["N"]:
            return None
        q, need = r["n"] / r["N"], math.ceil(part_rate * n - EPS)
        out *= sum(math.comb(n, k) * q ** k * (1 - q) ** (n - k) for k in range(need, n + 1))
    return out


# --------------------------------------------------------------------------- seeds
def parse_seeds(text: str) -> list[int]:
    """``"2021-2023,2030"`` -> [2021, 2022, 2023, 2030] (order kept, duplicates dropped)."""
    from rga_engine.report import parse_seeds as parse

    try:
        return parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"seeds: {e}") from None


def format_seeds(seeds) -> str:
    """[2021, 2022, 2023, 2030] -> ``"2021-2023,2030"`` (the inverse of :func:`parse_seeds`)."""
    seeds, parts, i = sorted(set(seeds)), [], 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(str(seeds[i]) if i == j else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(parts)


# --------------------------------------------------------------------------- one run
def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


def pct(x: float | None, signed: bool = False) -> str:
    """A fraction as percent points with two decimals (``+`` sign when signed), as every table of
    these scripts shows it; ``MISSING`` for None."""
    return MISSING if x is None else (f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}")


def numbers(summary: dict) -> dict[str, Any]:
    """The numbers of one run the report needs (fractions; None where missing)."""
    models = {k: v for k, v in (summary.get("models") or {}).items() if isinstance(v, dict)}
    re = models.get("retrain") or {}
    # the verdict texts as every report shows them ("trigger shifted → negative" -> "shifted → negative")
    verdicts = {r["name"]: str(r.get("verdict") or MISSING).removeprefix("trigger ") for r in summary_rows(summary)}
    out: dict[str, Any] = {}
    for m in ("poisoned", "retrain", *METHODS):
        e = models.get(m)
        if e is None:
            out[m] = None
            continue
        dp = _num(e.get("delta_pacc"))
        if dp is None and m != "retrain" and _num(e.get("pacc")) is not None and _num(re.get("pacc")) is not None:
            dp = abs(e["pacc"] - re["pacc"])
        out[m] = {"cacc": _num(e.get("cacc")), "pacc": _num(e.get("pacc")), "asr": _num(e.get("asr")),
                  "delta_pacc": dp, "verdict": verdicts.get(m, MISSING),
                  "shifted": bool((e.get("trigger_shift") or {}).get("shifted")),
                  "remains": bool((e.get("trigger_shift") or {}).get("remains"))}
    r = out["rga"]
    if r is not None and out["retrain"] is not None:
        def diff(k):
            a, b = r[k], out["retrain"][k]
            return None if a is None or b is None else a - b
        r["cacc_gap"], r["asr_excess"] = diff("cacc"), diff("asr")
    return out


def _expected(summary: dict, method: str) -> bool:
    listed = summary.get("methods")
    return (isinstance(listed, list) and method in listed) or method in (summary.get("models") or {})


def check(summary: dict) -> dict[str, Any]:
    """The issue-15 check of one run: ``{"asr", "ga", "rga": True/False/None (n/a), "passed",
    "reasons": [...], "numbers": numbers(summary)}``."""
    nums, reasons = numbers(summary), []
    res: dict[str, Any] = {"asr": None, "ga": None, "rga": None}

    p = nums["poisoned"]
    asr = p["asr"] if p else None
    res["asr"] = asr is not None and asr >= ASR_MIN - EPS
    if asr is None:
        reasons.append("no poisoned model")
    elif not res["asr"]:
        reasons.append(f"poisoned ASR {pct(asr)} < {100 * ASR_MIN:g}")

    g = nums["ga"]
    if g is not None:
        res["ga"] = g["shifted"]
        if not g["shifted"]:
            reasons.append(f"GA did not shift the trigger ({g['verdict']})")
    elif _expected(summary, "ga"):
        res["ga"] = False
        reasons.append(f"GA failed ({model_error(summary, 'ga') or 'no result'})")

    r, re = nums["rga"], nums["retrain"]
    if r is not None:
        why = []
        if re is None:
            why.append("no Retrain to compare with")
        else:
            dp, gap, exc = r["delta_pacc"], r.get("cacc_gap"), r.get("asr_excess")
            if dp is None or dp > RGA_DPACC_MAX + EPS:
                why.append(f"RGA ΔPACC {pct(dp)} > {100 * RGA_DPACC_MAX:g}")
            if gap is None or abs(gap) > RGA_CACC_GAP_MAX + EPS:
                why.append(f"RGA |CACC − Retrain| {pct(None if gap is None else abs(gap))} > {100 * RGA_CACC_GAP_MAX:g}")
            if exc is None or exc > RGA_ASR_EXCESS_MAX + EPS:
                why.append(f"RGA ASR − Retrain {pct(exc, True)} > {100 * RGA_ASR_EXCESS_MAX:g}")
        if r["shifted"] or r["remains"]:
            why.append(f"RGA {r['verdict']}")
        res["rga"] = not why
        reasons += why
    elif _expected(summary, "rga"):
        res["rga"] = False
        reasons.append(f"RGA failed ({model_error(summary, 'rga') or 'no result'})")

    res["passed"] = all(res[k] is not False for k in ("asr", "ga", "rga"))
    res["reasons"] = reasons
    res["numbers"] = nums
    return res


def cached_stages(summary: dict) -> list[str]:
    """The stages of a run whose weights came from the cache (its wall time is then not a full run)."""
    out = ["pretrain"] if (summary.get("pretrain") or {}).get("cached") else []
    return out + [m for m in ("poisoned", "retrain") if ((summary.get("models") or {}).get(m) or {}).get("cached")]


def seed_line(seed: int, wall: str, chk: dict) -> str:
    n = chk["numbers"]

    def meth(m: str) -> str:
        e = n[m]
        return f"{m.upper()} {MISSING}" if e is None else f"{m.upper()} {pct(e['pacc'])} ({e['verdict']})"

    r = n["rga"] or {}
    status = "PASS" if chk["passed"] else "FAIL: " + "; ".join(chk["reasons"])
    return (f"  s{seed}  {wall:>16}  ASR {pct((n['poisoned'] or {}).get('asr'))}  {meth('ga')}  {meth('npo')}  "
            f"RGA ΔPACC {pct(r.get('delta_pacc'))}  CACC−Re {pct(r.get('cacc_gap'), True)}  "
            f"ASR−Re {pct(r.get('asr_excess'), True)}  ({r.get('verdict', MISSING)})  {status}")


# --------------------------------------------------------------------------- run folders
def finished_summary(run_dir: Path, statuses: tuple[str, ...] = ("finished",)) -> dict | None:
    try:
        s = load_summary(run_dir)
    except ReportError:
        return None
    return s if s.get("status") in statuses else None


def read_wall(run_dir: Path) -> float | None:
    try:
        return _num(json.loads((run_dir / "wall.json").read_text(encoding="utf-8")).get("wall_s"))
    except (OSError, ValueError, AttributeError):
        return None


def collect(preset_dir: Path, seeds: list[int] | None) -> dict[int, dict]:
    """``{seed: {"summary", "wall_s", "dir"}}`` for the completed runs (finished, or partial: a
    method failed) in ``OUT/<preset>/s<seed>/``; only ``seeds`` when given."""
    found: dict[int, dict] = {}
    for d in sorted(preset_dir.glob("s*")) if preset_dir.is_dir() else []:
        try:
            seed = int(d.name[1:])
        except ValueError:
            continue
        if seeds is not None and seed not in seeds:
            continue
        s = finished_summary(d, ("finished", "partial"))
        if s is not None:
            found[seed] = {"summary": s, "wall_s": read_wall(d), "dir": d}
    return dict(sorted(found.items()))


def _comparable(toml_text: str) -> dict:
    d = tomllib.loads(toml_text)
    d.pop("output", None)  # cache and folders do not change what a run computes
    return d


def run_seed(path: Path, name: str, seed: int, overrides: list[str], out: Path) -> str:
    """Run one (preset, seed) unless its folder is finished; return the wall-time text."""
    cfg = config.load(path, [*overrides, f"train.seed={seed}"])
    run_dir = out / name / f"s{seed}"
    if finished_summary(run_dir) is not None:
        try:
            if _comparable((run_dir / "config.toml").read_text(encoding="utf-8")) != _comparable(cfg.to_toml()):
                print(f"  s{seed}: warning: the finished run in {run_dir} has another config (kept; delete the "
                      f"folder to rerun it)", file=sys.stderr)
        except (OSError, tomllib.TOMLDecodeError):
            pass
        w = read_wall(run_dir)
        return "resumed" + (f" {w:.1f} s" if w is not None else "")
    if run_dir.exists():
        print(f"  s{seed}: clearing the unfinished run in {run_dir}", file=sys.stderr, flush=True)
        shutil.rmtree(run_dir)
    print(f"  s{seed}: running {name} (cache {'on' if cfg.output.cache else 'off'}) …", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    summary = pipeline.run(cfg, None, None, run_dir=run_dir)
    wall = time.perf_counter() - t0
    cached = cached_stages(summary)
    tmp = run_dir / "wall.json.tmp"
    tmp.write_text(json.dumps({"preset": name, "seed": seed, "wall_s": round(wall, 2), "cached": cached,
                               "status": summary.get("status"),
                               "finished": datetime.now().isoformat(timespec="seconds")}, indent=2), encoding="utf-8")
    os.replace(tmp, run_dir / "wall.json")
    return f"{wall:.1f} s" + (" cached" if cached else "")


# --------------------------------------------------------------------------- per preset
def _stats(values: list[float | None], scale: float = 100.0) -> dict[str, Any] | None:
    v = [scale * x for x in values if x is not None]
    if not v:
        return None
    return {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else None, "n": len(v)}


def _fmt_stats(st: dict | None, signed: bool = False) -> str:
    if st is None:
        return MISSING
    mean = f"{st['mean']:+.2f}" if signed else f"{st['mean']:.2f}"
    return mean if st["std"] is None else f"{mean} ± {st['std']:.2f}"


def evaluate_preset(name: str, runs: dict[int, dict], requested: list[int] | None, source: str | None = None) -> dict:
    """Pass rates, verdict and mean ± std over the runs of one preset."""
    seeds = {}
    for seed, r in runs.items():
        chk = check(r["summary"])
        seeds[seed] = {"seed": seed, "status": r["summary"].get("status"), "wall_s": r["wall_s"],
                       "cached": cached_stages(r["summary"]), "precision": r["summary"].get("precision"), **chk}
    rates, reasons = {}, []
    for key, label, rate in PARTS:
        flags = [s[key] for s in seeds.values() if s[key] is not None]
        if not flags:
            rates[key] = None
            if key == "asr":
                reasons.append("no completed run")
            continue
        need = math.ceil(rate * len(flags) - EPS)
        rates[key] = {"n": sum(flags), "N": len(flags), "needed": need, "passed": sum(flags) >= need}
        if not rates[key]["passed"]:
            reasons.append(f"{label} {sum(flags)}/{len(flags)} (needs {need})")
    missing = [s for s in requested or [] if s not in runs]
    if missing:
        reasons.append(f"no completed run for seed{'s' if len(missing) > 1 else ''} {format_seeds(missing)}")

    def col(model: str, key: str) -> list[float | None]:
        return [(s["numbers"][model] or {}).get(key) for s in seeds.values()]

    stats = {
        "delta_pacc": {m: _stats(col(m, "delta_pacc")) for m in ("poisoned", *METHODS)},
        "pacc": {m: _stats(col(m, "pacc")) for m in ("poisoned", "retrain", *METHODS)},
        "cacc": {m: _stats(col(m, "cacc")) for m in ("poisoned", "retrain", *METHODS)},
        "asr": {m: _stats(col(m, "asr")) for m in ("poisoned", "retrain", *METHODS)},
        "rga_cacc_gap": _stats(col("rga", "cacc_gap")),
        "rga_asr_excess": _stats(col("rga", "asr_excess")),
    }
    walls = [s["wall_s"] for s in seeds.values() if s["wall_s"] is not None]
    stats["wall_s"] = {"mean": statistics.fmean(walls), "max": max(walls), "n": len(walls),
                       "some_cached": any(s["cached"] for s in seeds.values() if s["wall_s"] is not None)} if walls else None
    return {"name": name, "source": source, "seeds": list(seeds), "requested": requested, "missing": missing,
            "passed": not reasons, "reasons": reasons, "rates": rates, "stats": stats,
            "chance_of_passing": chance_of_passing(rates), "runs": list(seeds.values())}


def _rate(r: dict | None) -> str:
    return "n/a" if r is None else f"{r['n']}/{r['N']}"


def _wall_cell(w: dict | None) -> str:
    return MISSING if w is None else f"{w['mean']:.1f} / {w['max']:.1f}" + ("*" if w["some_cached"] else "")


TABLE_HEAD = ("| preset | seeds | poisoned ASR≥90 | GA shifted | RGA pass | RGA ΔPACC | GA PACC | NPO PACC | "
              "RGA PACC | Retrain PACC | wall s (mean / max) |")


def table_markdown(results: list[dict]) -> str:
    lines = [TABLE_HEAD, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in results:
        st = p["stats"]
        lines.append(" | ".join([
            f"| `{p['name']}`", format_seeds(p["seeds"]) or MISSING, *(_rate(p["rates"][k]) for k, _, _ in PARTS),
            _fmt_stats(st["delta_pacc"]["rga"]), *(_fmt_stats(st["pacc"][m]) for m in (*METHODS, "retrain")),
            _wall_cell(st["wall_s"])]) + " |")
    if any((p["stats"]["wall_s"] or {}).get("some_cached") for p in results):
        lines += ["", "\\* some of these runs loaded pre-trained, poisoned or Retrain weights from the cache."]
    return "\n".join(lines)


def preset_block(p: dict) -> str:
    st = p["stats"]

    def row(kind: str, models) -> str:
        return ", ".join(f"{'Poisoned' if m == 'poisoned' else 'Retrain' if m == 'retrain' else m.upper()} "
                         f"{_fmt_stats(st[kind][m])}" for m in models)

    def rate(key: str, label: str) -> str:
        r = p["rates"][key]
        if r is None:
            return f"- {label}: n/a"
        need = f"≥ {r['needed']}" if r["needed"] < r["N"] else f"{r['N']}"
        fails = [f"s{s['seed']}: {'; '.join(x for x in s['reasons'] if _reason_part(x) == key)}"
                 for s in p["runs"] if s[key] is False]
        return (f"- {label}: {r['n']}/{r['N']} (needs {need}/{r['N']}) {'ok' if r['passed'] else 'FAIL'}"
                + (" (" + " · ".join(fails) + ")" if fails else ""))

    w = st["wall_s"]
    lines = [f"### `{p['name']}`: {'PASS' if p['passed'] else 'FAIL'}", ""]
    if not p["passed"]:
        lines += ["Fails: " + "; ".join(p["reasons"]) + ".", ""]
    lines += [f"Seeds {format_seeds(p['seeds']) or MISSING} ({len(p['seeds'])} runs)"
              + (f", from `{p['source']}`" if p["source"] else "") + ". Percent, mean ± std over seeds (n − 1).", "",
              rate("asr", "poisoned ASR ≥ 90"), rate("ga", "GA shifted"), rate("rga", "RGA pass"),
              f"- chance that {CHECK_SEEDS} seeds never run pass (these rates taken as the true ones, seeds and "
              f"parts as independent; an estimate from {len(p['seeds'])} runs): "
              + (MISSING if p["chance_of_passing"] is None else f"{p['chance_of_passing']:.2f}"),
              "- ΔPACC: " + row("delta_pacc", METHODS),
              "- PACC: " + row("pacc", (*METHODS, "retrain")),
              "- CACC: " + row("cacc", ("poisoned", "retrain", *METHODS)),
              f"- RGA CACC − Retrain: {_fmt_stats(st['rga_cacc_gap'], True)}; "
              f"RGA ASR − Retrain: {_fmt_stats(st['rga_asr_excess'], True)}",
              "- wall s per seed: " + (MISSING if w is None else f"mean {w['mean']:.1f}, max {w['max']:.1f} ({w['n']} timed"
                                       + (", some with cached stages" if w["some_cached"] else "") + ")"),
              "- precision: " + precisions(p["runs"])]
    return "\n".join(lines)


def precisions(runs: list[dict]) -> str:
    """What the runs trained in (summary.json's ``precision``; ``model.dtype = "auto"`` is bf16 on
    a CPU with AMX and fp32 on another, so one preset's seeds may differ between machines)."""
    count: dict[str, int] = {}
    for r in runs:
        name = r.get("precision") or "not recorded"
        count[name] = count.get(name, 0) + 1
    return ", ".join(f"{k} ({v} run{'s' if v > 1 else ''})" for k, v in count.items()) or MISSING


def _reason_part(reason: str) -> str:
    if reason.startswith("GA"):
        return "ga"
    if reason.startswith("RGA") or reason.startswith("no Retrain"):
        return "rga"
    return "asr"


def report(results: list[dict], out: Path) -> str:
    thresholds = (f"Check per run: poisoned ASR ≥ {100 * ASR_MIN:g}; GA shifts the trigger; RGA ΔPACC ≤ "
                  f"{100 * RGA_DPACC_MAX:g}, |CACC − Retrain| ≤ {100 * RGA_CACC_GAP_MAX:g}, ASR − Retrain ≤ "
                  f"{100 * RGA_ASR_EXCESS_MAX:g} and neither shifted nor remaining. A preset passes with poisoned "
                  f"ASR in {ASR_PASS_RATE:.0%} of its seeds, GA shifted in ≥ {GA_PASS_RATE:.0%}, RGA in "
                  f"{RGA_PASS_RATE:.0%}.")
    md = "\n\n".join(["## Seeds", table_markdown(results), thresholds, *(preset_block(p) for p in results)]) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "seeds.md").write_text(md, encoding="utf-8")
    doc = {"units": "fractions in [0, 1] (as in summary.json), except stats (percent) and wall_s (seconds)",
           "thresholds": {"asr_min": ASR_MIN, "rga_delta_pacc_max": RGA_DPACC_MAX, "rga_cacc_gap_max": RGA_CACC_GAP_MAX,
                          "rga_asr_excess_max": RGA_ASR_EXCESS_MAX, "asr_pass_rate": ASR_PASS_RATE,
                          "ga_pass_rate": GA_PASS_RATE, "rga_pass_rate": RGA_PASS_RATE},
           "passed": bool(results) and all(p["passed"] for p in results), "presets": results}
    tmp = out / "seeds.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2, allow_nan=False), encoding="utf-8")
    os.replace(tmp, out / "seeds.json")
    return md


# --------------------------------------------------------------------------- per-seed rows (--rows)
def _one(x: float | None) -> str:
    return MISSING if x is None else f"{100 * x:.1f}"


def lean(entry: dict | None, target: Any) -> float | None:
    """The share of clean non-target rows a model calls the target (``P(pred = target | clean,
    actual ≠ target)``, from its ``confusion_clean``): what a model's ASR is made of besides the
    trigger."""
    cm = (entry or {}).get("confusion_clean")
    if not isinstance(cm, list) or not isinstance(target, int) or not 0 <= target < len(cm):
        return None
    from rga_engine.metrics import pred_rate

    return pred_rate(cm, target)


def rows_markdown(name: str, runs: dict[int, dict]) -> str:
    """One row per seed of a preset's runs, as the results page shows them: the poisoned model,
    Retrain (with its lean), each method's PACC and verdict, RGA's numbers with its lean and
    ``target_score`` (the trigger's own shift toward the target over Retrain's), the check, the
    wall time. Percent, one decimal (ΔPACC two)."""
    if not runs:
        return f"### {name}: per seed\n\nno completed runs\n"
    first = next(iter(runs.values()))["summary"]
    methods = [m for m in ("ga", "npo") if any(m in (r["summary"].get("models") or {}) for r in runs.values())]
    head = (["seed", "poisoned CACC / ASR", "Retrain CACC / PACC / ASR / lean"]
            + [f"{m.upper()} PACC (verdict)" for m in methods]
            + ["RGA CACC / PACC / ΔPACC / ASR / lean (verdict)", "RGA target_score", "issue-15 check", "wall s"])
    lines = [f"### {name}: per seed ({first.get('dataset', '?')}, {first.get('attack', '?')})", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for seed, r in runs.items():
        summ, chk = r["summary"], check(r["summary"])
        n, models, target = chk["numbers"], summ.get("models") or {}, summ.get("target")
        po, re, rg = n["poisoned"] or {}, n["retrain"] or {}, n["rga"]
        cells = [str(seed), f"{_one(po.get('cacc'))} / {_one(po.get('asr'))}",
                 f"{_one(re.get('cacc'))} / {_one(re.get('pacc'))} / {_one(re.get('asr'))} / "
                 f"{_one(lean(models.get('retrain'), target))}"]
        for m in methods:
            e = n[m]
            cells.append(MISSING if e is None else f"{_one(e['pacc'])} ({e['verdict']})")
        if rg is None:
            cells += [MISSING, MISSING]
        else:
            ts = _num(((models.get("rga") or {}).get("trigger_shift") or {}).get("target_score"))
            cells += [f"{_one(rg['cacc'])} / {_one(rg['pacc'])} / {pct(rg['delta_pacc'])} / {_one(rg['asr'])} / "
                      f"{_one(lean(models.get('rga'), target))} ({rg['verdict']})",
                      MISSING if ts is None else f"{ts:+.3f}"]
        why = "; ".join(chk["reasons"]).replace("|CACC − Retrain|", "CACC gap")  # no raw pipe inside a cell
        cells += ["pass" if chk["passed"] else f"**fail**: {why}",
                  MISSING if r.get("wall_s") is None else f"{r['wall_s']:.1f}"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main
def _seeds_arg(values: list[str] | None) -> list[int] | None:
    return None if not values else parse_seeds(",".join(values))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("presets", nargs="*", metavar="PRESET", help="preset files or names (demo/sst2-badnets)")
    ap.add_argument("--seeds", nargs="+", default=None, metavar="SEEDS",
                    help=f"seeds: ranges and lists, 2021-2025 or 2021,2023 (default {DEFAULT_SEEDS}; "
                         "with --table-only: every seed found)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "seeds"), help="output folder (default runs/seeds)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                    help="section.key=value for every run (repeatable)")
    ap.add_argument("--cache", action=argparse.BooleanOptionalAction, default=None,
                    help="output.cache for every run (default: the preset's setting)")
    ap.add_argument("--table-only", action="store_true", help="rebuild the table from OUT without running")
    ap.add_argument("--rows", action="store_true",
                    help="also print (and write to OUT/rows.md) one row per seed: each model's numbers, leans, RGA's "
                         "target_score, the check and the wall time")
    args = ap.parse_args(argv)
    try:
        seeds = _seeds_arg(args.seeds)
    except argparse.ArgumentTypeError as e:
        ap.error(str(e))
    if any(o.strip().startswith("train.seed=") for o in args.overrides):
        ap.error("--set train.seed=...: use --seeds")
    if not args.presets and not args.table_only:
        ap.error("name at least one PRESET (or use --table-only)")
    overrides = list(args.overrides) + ([] if args.cache is None else [f"output.cache={str(args.cache).lower()}"])
    out = Path(args.out)

    from rga_tui.presets import resolve_preset  # a preset name as a path (never imports textual)

    presets: list[tuple[str, Path]] = []  # (run folder name, preset file)
    for text in args.presets:
        path = resolve_preset(text)
        try:
            cfg = config.load(path, [*overrides, f"train.seed={(seeds or [0])[0]}"])
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        presets.append((cfg.name.replace("/", "-"), path))

    interrupted = False
    if not args.table_only:
        seeds = seeds or parse_seeds(DEFAULT_SEEDS)
        try:
            for name, path in presets:
                print(f"{name} ({path}), seeds {format_seeds(seeds)} -> {out / name}", flush=True)
                for seed in seeds:
                    try:
                        wall = run_seed(path, name, seed, overrides, out)
                    except KeyboardInterrupt:
                        raise
                    except Exception as e:  # noqa: BLE001 - one failed run must not lose the others
                        print(f"  s{seed}  error: {type(e).__name__}: {e}", flush=True)
                        continue
                    s = finished_summary(out / name / f"s{seed}", ("finished", "partial"))
                    if s is None:
                        print(f"  s{seed}  {wall:>16}  no completed summary", flush=True)
                    else:
                        print(seed_line(seed, wall, check(s)), flush=True)
        except KeyboardInterrupt:
            interrupted = True
            cmd = "python " + shlex.join(sys.argv) if argv is None else "the same command"
            print(f"\ninterrupted: finished runs are kept under {out}; the interrupted one will be cleared and "
                  f"rerun.\nResume with: {cmd}", file=sys.stderr, flush=True)

    if presets:
        names = [(n, str(p)) for n, p in presets]
    else:
        names = [(d.name, None) for d in sorted(out.iterdir()) if d.is_dir() and collect(d, seeds)] if out.is_dir() else []
    if not names:
        print(f"no completed runs under {out}", file=sys.stderr)
        return 1
    results = [evaluate_preset(n, collect(out / n, seeds), seeds, src) for n, src in names]
    md = report(results, out)
    print()
    print(md, end="")
    if args.rows:
        rows = "\n".join(rows_markdown(n, collect(out / n, seeds)) for n, _ in names)
        (out / "rows.md").write_text(rows, encoding="utf-8")
        print()
        print(rows, end="")
    print(f"\nwritten: {out / 'seeds.md'}, {out / 'seeds.json'}")
    if interrupted:
        return 130
    return 0 if all(p["passed"] for p in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())

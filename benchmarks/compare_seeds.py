"""Two settings over the same seeds, paired: which seeds pass the issue-15 check (or one part of it)
under each, and whether the difference is more than chance.

    python benchmarks/compare_seeds.py --a runs/seeds/demo-sst2-badnets --b runs/alpha3/demo-sst2-badnets
    python benchmarks/compare_seeds.py --a runs/seeds --b runs/wu8a runs/wu8b --part rga --label-b "warm-up 8"
    python benchmarks/compare_seeds.py --a runs/seeds --b runs/lin --part check --seeds 2021-2025 --out cmp.md

Each side is one or more folders written by ``benchmarks/seeds.py``: a preset folder (its
``s<seed>/`` run folders) or an ``--out`` folder holding one preset folder; a side's folders are
merged (a seed in two of them is an error).  Only seeds with a completed run on both sides are
paired; the others are listed.  ``--part``: ``rga`` (RGA's part of the check, the default), ``ga``
(GA shifts the trigger), ``asr`` (poisoned ASR ≥ 90) or ``check`` (the whole check), with the
thresholds of ``seeds.py``.

Prints a markdown table (a row per seed: each side's numbers and verdict for the part, and whether
both sides had the same poisoned and Retrain models, i.e. only the unlearning differed), each
side's pass rate with its 95 % Wilson interval, the discordant seeds and the exact two-sided
McNemar (sign) test on them: on paired seeds only the seeds where the two settings disagree say
anything about which is better.  ``--out FILE`` also writes it there.  Exit status 0, or 2 on bad
arguments (no such folder, no paired seed).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import seeds as sb  # noqa: E402  -- benchmarks/seeds.py: the check, run folders, seed parsing

PARTS = ("rga", "ga", "asr", "check")
Z95 = 1.959963984540054


class UsageError(Exception):
    pass


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of a pass rate k/n (fractions); (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    mid, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (mid - half) / (1 + z * z / n)), min(1.0, (mid + half) / (1 + z * z / n))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b seeds pass only under A, c only under B; under "no
    difference" each discordant seed is a fair coin."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def preset_dir(folder: Path) -> Path:
    """``folder`` if it holds ``s<seed>`` run folders, else its one preset folder that does."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder")

    def has_runs(d: Path) -> bool:
        return any(x.is_dir() and x.name[:1] == "s" and x.name[1:].isdigit() for x in d.iterdir())

    if has_runs(folder):
        return folder
    inner = sorted(d for d in folder.iterdir() if d.is_dir() and has_runs(d))
    if len(inner) == 1:
        return inner[0]
    if not inner:
        raise UsageError(f"{folder}: no seed runs (s<seed>/ folders) in it or in a folder inside it")
    raise UsageError(f"{folder}: holds several presets ({', '.join(d.name for d in inner)}); name one: "
                     f"{folder / inner[0].name}")


def side(folders: list[str], wanted: list[int] | None) -> dict[int, dict]:
    """``{seed: seeds.check(summary)}`` over a side's folders."""
    out: dict[int, dict] = {}
    where: dict[int, Path] = {}
    for f in folders:
        d = preset_dir(Path(f))
        for seed, run in sb.collect(d, wanted).items():
            if seed in out:
                raise UsageError(f"seed {seed} is in both {where[seed]} and {d}")
            out[seed], where[seed] = sb.check(run["summary"]), d
    return out


def same_models(a: dict, b: dict) -> bool:
    """Both runs had the same poisoned and Retrain models (their metrics equal to the digit)."""
    for m in ("poisoned", "retrain"):
        x, y = a["numbers"][m], b["numbers"][m]
        if x is None or y is None or any(x[k] != y[k] for k in ("cacc", "pacc", "asr")):
            return False
    return True


def outcome(chk: dict, part: str) -> bool | None:
    return chk["passed"] if part == "check" else chk[part]


def cell(chk: dict, part: str) -> str:
    n, ok = chk["numbers"], outcome(chk, part)
    mark = "n/a" if ok is None else ("pass" if ok else "**fail**")
    if part == "rga":
        r = n["rga"]
        if r is None:
            return mark
        return (f"{sb.pct(r['delta_pacc'])} / {sb.pct(r.get('cacc_gap'), True)} / "
                f"{sb.pct(r.get('asr_excess'), True)} ({r['verdict']}) {mark}")
    if part == "ga":
        g = n["ga"]
        return mark if g is None else f"{sb.pct(g['pacc'])} ({g['verdict']}) {mark}"
    if part == "asr":
        return f"{sb.pct((n['poisoned'] or {}).get('asr'))} {mark}"
    return mark if ok else f"{mark}: {'; '.join(chk['reasons'])}"


HEADS = {"rga": "RGA ΔPACC / CACC − Retrain / ASR − Retrain (verdict)", "ga": "GA PACC (verdict)",
         "asr": "poisoned ASR", "check": "the check"}


def compare(a: dict[int, dict], b: dict[int, dict], part: str, label_a: str, label_b: str) -> str:
    paired = sorted(set(a) & set(b))
    if not paired:
        raise UsageError("no seed has a completed run on both sides")
    lines = [f"| seed | {label_a}: {HEADS[part]} | {label_b}: the same | poisoned and Retrain models |",
             "|---|---|---|---|"]
    ka = kb = n = 0
    only_a_seeds, only_b_seeds = [], []
    for s in paired:
        oa, ob = outcome(a[s], part), outcome(b[s], part)
        ca, cb = (cell(x[s], part).replace("|", r"\|") for x in (a, b))  # a "|" in a cell would split it
        lines.append(f"| {s} | {ca} | {cb} | "
                     f"{'same' if same_models(a[s], b[s]) else 'differ'} |")
        if oa is None or ob is None:
            continue
        n += 1
        ka, kb = ka + oa, kb + ob
        if oa != ob:
            (only_a_seeds if oa else only_b_seeds).append(s)

    def rate(k: int) -> str:
        lo, hi = wilson(k, n)
        return f"{k}/{n} (95 % interval {100 * lo:.0f}–{100 * hi:.0f} %)"

    only_a, only_b = len(only_a_seeds), len(only_b_seeds)
    p = mcnemar_exact(only_a, only_b)
    what = "the whole check" if part == "check" else {"rga": "RGA's part", "ga": "GA shifts",
                                                      "asr": "poisoned ASR ≥ 90"}[part]
    lines += ["", f"- {what}: {label_a} {rate(ka)}, {label_b} {rate(kb)} on {n} paired seeds",
              f"- pass under {label_a} only: {sb.format_seeds(only_a_seeds) or 'none'}; "
              f"under {label_b} only: {sb.format_seeds(only_b_seeds) or 'none'}",
              f"- exact McNemar test on the {only_a + only_b} discordant seeds: p = {p:.3g}"
              + (" (within what chance gives)" if p >= 0.05 else "")]
    unpaired = sorted(set(a) ^ set(b))
    if unpaired:
        lines.append(f"- not paired (a run on one side only): {sb.format_seeds(unpaired)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", nargs="+", required=True, metavar="DIR", help="side A: seeds.py folders")
    ap.add_argument("--b", nargs="+", required=True, metavar="DIR", help="side B: seeds.py folders")
    ap.add_argument("--part", choices=PARTS, default="rga", help="what passes (default rga: RGA's part)")
    ap.add_argument("--seeds", default=None, metavar="SEEDS", help="only these seeds (2021-2025,2030)")
    ap.add_argument("--label-a", default="A")
    ap.add_argument("--label-b", default="B")
    ap.add_argument("--out", default=None, metavar="FILE", help="also write the markdown here")
    args = ap.parse_args(argv)
    try:
        wanted = sb.parse_seeds(args.seeds) if args.seeds else None
        text = compare(side(args.a, wanted), side(args.b, wanted), args.part, args.label_a, args.label_b)
    except (UsageError, ValueError, argparse.ArgumentTypeError) as e:  # parse_seeds raises the last
        print(f"compare_seeds: {e}", file=sys.stderr)
        return 2
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Metrics of the paper: confusion matrices, CACC, PACC, LFR, ASR, ΔPACC and the trigger-shift verdict.

Pure Python (no numpy/torch needed). Confusion matrices are ``list[list[int]]`` with
rows = actual class and columns = predicted class. All rates are unrounded fractions in [0, 1],
except the trigger-shift scores, which are rounded to 4 decimals for display/JSON.

* CACC  = :func:`accuracy` of the ``test_clean`` matrix
* PACC  = :func:`accuracy` of the ``test_poisoned_all`` matrix (true labels)
* LFR   = :func:`lfr` per class on ``test_poisoned_all``; the paper's single "LFR" column is
  :func:`paper_lfr` (mean over the non-target classes)
* ASR   = :func:`asr` on ``test_poisoned_part`` (non-target rows triggered, predicted as target)
* ΔPACC = ``|PACC(method) − PACC(Retrain)|``
* trigger shift, per class k: ``P(pred=k | triggered, actual≠k) − P(pred=k | clean, actual≠k)``,
  read over Retrain's own once it is known (``over_retrain``), graded into a verdict
  (:func:`trigger_shift`, :func:`grade_verdict`): "backdoor removed",
  "backdoor partly remains (ASR x %)", "trigger shifted → <label>", "backdoor remains", or
  "predicts <label> for everything" for a model that collapsed to one class
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

__all__ = [
    "DEFAULT_SHIFT_THRESHOLD",
    "COLLAPSE_SHARE",
    "PARTLY_ASR_MARGIN",
    "accuracy",
    "asr",
    "collapsed_class",
    "confusion_matrix",
    "grade_verdict",
    "lfr",
    "model_metrics",
    "paper_lfr",
    "trigger_shift",
    "verdict_text",
]

DEFAULT_SHIFT_THRESHOLD = 0.2
PARTLY_ASR_MARGIN = 0.10  # "partly remains": the model's ASR over Retrain's by more than this
COLLAPSE_SHARE = 0.99  # "predicts <label> for everything": this share of test_clean in one class
_EPS = 1e-12  # so that a shift of exactly the threshold counts despite float error

Matrix = Sequence[Sequence[int]]


def _as_int_list(values: Iterable[Any], what: str) -> list[int]:
    if hasattr(values, "tolist"):  # numpy arrays / torch tensors
        values = values.tolist()
    out = []
    for v in values:
        if hasattr(v, "item"):
            v = v.item()
        if isinstance(v, float) and not v.is_integer():
            raise ValueError(f"{what}: label {v!r} is not an integer")
        out.append(int(v))
    return out


def confusion_matrix(y_true: Iterable[int], y_pred: Iterable[int], num_labels: int) -> list[list[int]]:
    """``cm[actual][predicted]`` counts; labels must lie in ``0..num_labels-1``."""
    if num_labels < 1:
        raise ValueError(f"confusion_matrix: num_labels must be ≥ 1, got {num_labels}")
    t = _as_int_list(y_true, "confusion_matrix")
    p = _as_int_list(y_pred, "confusion_matrix")
    if len(t) != len(p):
        raise ValueError(f"confusion_matrix: {len(t)} true labels but {len(p)} predictions")
    cm = [[0] * num_labels for _ in range(num_labels)]
    for a, b in zip(t, p):
        if not (0 <= a < num_labels and 0 <= b < num_labels):
            raise ValueError(f"confusion_matrix: label pair ({a}, {b}) outside 0..{num_labels - 1}")
        cm[a][b] += 1
    return cm


def _check_square(cm: Matrix, what: str) -> int:
    n = len(cm)
    if any(len(row) != n for row in cm):
        raise ValueError(f"{what}: confusion matrix must be square, got row lengths {[len(r) for r in cm]}")
    return n


def _check_target(target: int, n: int, what: str) -> None:
    if not 0 <= target < n:
        raise ValueError(f"{what}: target {target} outside 0..{n - 1}")


def accuracy(cm: Matrix) -> float:
    """Share of rows on the diagonal (0.0 for an empty matrix)."""
    _check_square(cm, "accuracy")
    total = sum(sum(row) for row in cm)
    return sum(cm[i][i] for i in range(len(cm))) / total if total else 0.0


def lfr(cm: Matrix) -> list[float]:
    """Label-flip rate per class c: ``1 − cm[c][c] / sum(cm[c])`` (0.0 for an empty row)."""
    _check_square(cm, "lfr")
    out = []
    for c, row in enumerate(cm):
        total = sum(row)
        out.append(1.0 - row[c] / total if total else 0.0)
    return out


def asr(cm_part: Matrix, target: int) -> float:
    """Attack success rate: share of triggered non-target rows predicted as `target`.

    Rows of the target class (there are none in ``test_poisoned_part``) are ignored, so the
    ``test_poisoned_all`` matrix gives the same value when its triggers are the same.
    """
    n = _check_square(cm_part, "asr")
    _check_target(target, n, "asr")
    hit = sum(cm_part[r][target] for r in range(n) if r != target)
    total = sum(sum(cm_part[r]) for r in range(n) if r != target)
    return hit / total if total else 0.0


_attack_success_rate = asr  # under another name where an argument called `asr` hides it


def paper_lfr(cm: Matrix, target: int) -> float:
    """The paper's LFR column: mean LFR over the non-target classes (empty rows left out)."""
    n = _check_square(cm, "paper_lfr")
    _check_target(target, n, "paper_lfr")
    rates = lfr(cm)
    vals = [rates[c] for c in range(n) if c != target and sum(cm[c]) > 0]
    return sum(vals) / len(vals) if vals else 0.0


def pred_rate(cm: Matrix, k: int) -> float:
    """P(pred = k | actual ≠ k) from a confusion matrix (0.0 when no such rows)."""
    hit = sum(row[k] for r, row in enumerate(cm) if r != k)
    total = sum(sum(row) for r, row in enumerate(cm) if r != k)
    return hit / total if total else 0.0


def collapsed_class(cm_clean: Matrix | None, share: float = COLLAPSE_SHARE) -> int | None:
    """The class a model predicts for (nearly) everything on ``test_clean``: the class that gets
    ≥ `share` of all predictions, else None (also None for a missing or empty matrix)."""
    if cm_clean is None:
        return None
    n = _check_square(cm_clean, "collapsed_class")
    cols = [sum(row[k] for row in cm_clean) for k in range(n)]
    total = sum(cols)
    if not total:
        return None
    k = max(range(n), key=lambda c: (cols[c], -c))
    return k if cols[k] / total >= share - _EPS else None


def _is_partly(remains: bool, shifted: bool, asr_: float | None, retrain_asr: float | None,
               target_score: float | None, threshold: float) -> bool:
    """Neither *remains* nor *shifted*, but the backdoor still works more than it should: the
    model's ASR is over Retrain's by more than :data:`PARTLY_ASR_MARGIN` (Retrain's ASR known),
    else the target's shift score is ≥ half the threshold."""
    if remains or shifted:
        return False
    if retrain_asr is not None and asr_ is not None:
        return asr_ - retrain_asr > PARTLY_ASR_MARGIN + _EPS
    return target_score is not None and target_score >= threshold / 2 - _EPS


def _class_name(k: Any, label_names: Sequence[str] | None) -> str:
    if label_names is not None and isinstance(k, int) and 0 <= k < len(label_names):
        return str(label_names[k])
    return f"class {k}"


def _graded(remains: bool, shifted: bool, to_class: Any, collapsed: Any, partly: bool, asr_: float | None,
            label_names: Sequence[str] | None) -> tuple[str, str]:
    """(kind, text) of a verdict; kinds: collapsed, remains, shifted, partly, removed."""
    if isinstance(collapsed, int) and not isinstance(collapsed, bool):
        return "collapsed", f"predicts {_class_name(collapsed, label_names)} for everything"
    if remains:
        return "remains", "backdoor remains"
    if shifted:
        return "shifted", f"trigger shifted → {_class_name(to_class, label_names)}"
    if partly:
        return "partly", ("backdoor partly remains" if asr_ is None
                          else f"backdoor partly remains (ASR {100 * asr_:.1f} %)")
    return "removed", "backdoor removed"


def trigger_shift(
    cm_poisoned_all: Matrix,
    cm_clean: Matrix | None,
    target: int,
    threshold: float = DEFAULT_SHIFT_THRESHOLD,
    *,
    asr: float | None = None,
    retrain_asr: float | None = None,
    label_names: Sequence[str] | None = None,
    retrain_scores: Sequence[float] | None = None,
    is_retrain: bool = False,
) -> dict:
    """Where does the trigger send inputs? (docs/architecture.md "Trigger-shift verdict").

    ``shift_k = P(pred=k | triggered, actual≠k) − P(pred=k | clean, actual≠k)``; the clean term
    is 0 when `cm_clean` is None. With Retrain's own ``shift_k`` known (`retrain_scores`, its
    ``scores``; `is_retrain` for Retrain itself) the verdict reads each ``shift_k`` *over
    Retrain's*: what the trigger does to a clean model (a paraphrase alone moves some rows) is not
    the backdoor. The backdoor *remains* when ``shift_target ≥ threshold``;
    otherwise the trigger *shifted* to ``argmax_{k≠target} shift_k`` when that max ≥ threshold;
    otherwise it *partly remains* when the model's `asr` (default: read from `cm_poisoned_all`)
    exceeds `retrain_asr` by more than 0.10 (Retrain's ASR unknown: ``shift_target ≥
    threshold/2``); else it is *removed*. A model that puts ≥ 99 % of ``test_clean`` in one
    class *collapsed*: its verdict says "predicts <label> for everything", whatever the rest.
    """
    n = _check_square(cm_poisoned_all, "trigger_shift")
    _check_target(target, n, "trigger_shift")
    if cm_clean is not None and _check_square(cm_clean, "trigger_shift") != n:
        raise ValueError(f"trigger_shift: clean matrix is {len(cm_clean)}×{len(cm_clean)}, triggered is {n}×{n}")
    raw = [
        pred_rate(cm_poisoned_all, k) - (pred_rate(cm_clean, k) if cm_clean is not None else 0.0)
        for k in range(n)
    ]
    ref = raw if is_retrain else _reference(retrain_scores, n)
    over = [r - f for r, f in zip(raw, ref)] if ref is not None else None
    graded = over if over is not None else raw  # what the threshold is compared with
    target_raw = graded[target]
    others = [k for k in range(n) if k != target]
    best = max(others, key=lambda k: (graded[k], -k)) if others else None  # ties → lowest class
    best_raw = graded[best] if best is not None else 0.0
    remains = target_raw >= threshold - _EPS
    shifted = (not remains) and best is not None and best_raw >= threshold - _EPS
    a = asr if asr is not None else _attack_success_rate(cm_poisoned_all, target)
    partly = _is_partly(remains, shifted, a, retrain_asr, target_raw, threshold)
    collapsed = collapsed_class(cm_clean)
    _, verdict = _graded(remains, shifted, best, collapsed, partly, a, label_names)
    return {
        "shifted": bool(shifted),
        "to_class": best if shifted else None,
        "score": round(best_raw, 4) + 0.0,
        "remains": bool(remains),
        "partly": bool(partly),
        "collapsed": collapsed,
        "target_score": round(target_raw, 4) + 0.0,
        "scores": [round(s, 4) + 0.0 for s in raw],  # + 0.0 turns -0.0 into 0.0
        # score / target_score above are these when Retrain's scores were known, else scores
        "over_retrain": None if over is None else [round(s, 4) + 0.0 for s in over],
        "asr": round(a, 4) + 0.0,
        "retrain_asr": None if retrain_asr is None else round(retrain_asr, 4) + 0.0,
        "verdict": verdict,
    }


def _reference(scores: Sequence[float] | None, n: int) -> list[float] | None:
    """Retrain's per-class shift scores, when they are n finite numbers (else None: no reference)."""
    if scores is None or len(scores) != n:
        return None
    vals = [_num(s) for s in scores]
    return None if any(v is None for v in vals) else vals


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def grade_verdict(
    shift: dict,
    label_names: Sequence[str] | None = None,
    *,
    asr: float | None = None,
    retrain_asr: float | None = None,
    cm_clean: Matrix | None = None,
    threshold: float = DEFAULT_SHIFT_THRESHOLD,
) -> tuple[str, str]:
    """``(kind, text)`` of a :func:`trigger_shift` dict, classes named by `label_names`.

    Kinds: ``collapsed``, ``remains``, ``shifted``, ``partly``, ``removed``; and ``none`` ("no
    shift") for an old dict that cannot be graded. A dict written before the graded verdict (no
    ``partly`` key, old texts "no shift" / "shifted to class k") is graded here by the same rules
    from what the caller knows: the model's `asr`, Retrain's `retrain_asr`, the clean matrix.
    """
    verdict = shift.get("verdict")
    verdict = verdict if isinstance(verdict, str) else ""
    remains = bool(shift.get("remains")) or verdict == "backdoor remains"
    to_class = shift.get("to_class")
    shifted = not remains and bool(shift.get("shifted"))
    if not remains and not shifted and verdict.startswith("shifted to class "):  # old text only
        shifted, tail = True, verdict[len("shifted to class "):]
        to_class = int(tail) if tail.isdigit() else to_class
    if "partly" in shift:  # graded by the engine
        a = _num(shift.get("asr"))
        kind, text = _graded(remains, shifted, to_class, shift.get("collapsed"), bool(shift.get("partly")),
                             a if a is not None else _num(asr), label_names)
        return kind, (verdict if label_names is None and verdict else text)
    try:
        collapsed = collapsed_class(cm_clean)
    except (TypeError, ValueError):
        collapsed = None
    a = _num(asr) if _num(asr) is not None else _num(shift.get("asr"))
    target_score = _num(shift.get("target_score"))
    if collapsed is None and not remains and not shifted and a is None and target_score is None:
        return "none", "no shift"
    partly = _is_partly(remains, shifted, a, _num(retrain_asr), target_score, threshold)
    return _graded(remains, shifted, to_class, collapsed, partly, a, label_names)


def verdict_text(shift: dict, label_names: Sequence[str] | None = None, **known: Any) -> str:
    """The verdict's display text: "backdoor removed", "backdoor partly remains (ASR x %)",
    "trigger shifted → <name>", "backdoor remains" or "predicts <name> for everything"
    (keyword arguments: those of :func:`grade_verdict`, for dicts written before grading)."""
    return grade_verdict(shift, label_names, **known)[1]


def _copy(cm: Matrix | None) -> list[list[int]] | None:
    return None if cm is None else [[int(v) for v in row] for row in cm]


def model_metrics(
    cm_clean: Matrix,
    cm_poisoned_all: Matrix,
    cm_poisoned_part: Matrix | None,
    target: int,
    retrain_pacc: float | None = None,
    threshold: float = DEFAULT_SHIFT_THRESHOLD,
    label_names: Sequence[str] | None = None,
    retrain_asr: float | None = None,
    retrain_scores: Sequence[float] | None = None,
    is_retrain: bool = False,
) -> dict:
    """Every metric of one model, JSON-ready (the ``summary.json`` model entry minus ``seconds``).

    If `cm_poisoned_part` is None, ASR is read from the non-target rows of `cm_poisoned_all`.
    `label_names` name the classes in the verdict; `retrain_asr` and `retrain_scores` (Retrain's
    ASR and trigger-shift scores, once known; `is_retrain` for Retrain itself) grade it (see
    :func:`trigger_shift`).
    """
    pacc = accuracy(cm_poisoned_all)
    a = asr(cm_poisoned_part if cm_poisoned_part is not None else cm_poisoned_all, target)
    return {
        "cacc": accuracy(cm_clean),
        "pacc": pacc,
        "asr": a,
        "lfr": lfr(cm_poisoned_all),
        "paper_lfr": paper_lfr(cm_poisoned_all, target),
        "delta_pacc": abs(pacc - retrain_pacc) if retrain_pacc is not None else None,
        "confusion_clean": _copy(cm_clean),
        "confusion_poisoned_all": _copy(cm_poisoned_all),
        "confusion_poisoned_part": _copy(cm_poisoned_part),
        "trigger_shift": trigger_shift(cm_poisoned_all, cm_clean, target, threshold, asr=a,
                                       retrain_asr=retrain_asr, label_names=label_names,
                                       retrain_scores=retrain_scores, is_retrain=is_retrain),
    }

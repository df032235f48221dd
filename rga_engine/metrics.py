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
* trigger shift, per class k: ``P(pred=k | triggered, actual≠k) − P(pred=k | clean, actual≠k)``
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

__all__ = [
    "DEFAULT_SHIFT_THRESHOLD",
    "accuracy",
    "asr",
    "confusion_matrix",
    "lfr",
    "model_metrics",
    "paper_lfr",
    "trigger_shift",
    "verdict_text",
]

DEFAULT_SHIFT_THRESHOLD = 0.2
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


def paper_lfr(cm: Matrix, target: int) -> float:
    """The paper's LFR column: mean LFR over the non-target classes (empty rows left out)."""
    n = _check_square(cm, "paper_lfr")
    _check_target(target, n, "paper_lfr")
    rates = lfr(cm)
    vals = [rates[c] for c in range(n) if c != target and sum(cm[c]) > 0]
    return sum(vals) / len(vals) if vals else 0.0


def _pred_rate(cm: Matrix, k: int) -> float:
    """P(pred = k | actual ≠ k) from a confusion matrix (0.0 when no such rows)."""
    hit = sum(row[k] for r, row in enumerate(cm) if r != k)
    total = sum(sum(row) for r, row in enumerate(cm) if r != k)
    return hit / total if total else 0.0


def trigger_shift(
    cm_poisoned_all: Matrix,
    cm_clean: Matrix | None,
    target: int,
    threshold: float = DEFAULT_SHIFT_THRESHOLD,
) -> dict:
    """Where does the trigger send inputs? (DESIGN.md "Trigger-shift verdict").

    ``shift_k = P(pred=k | triggered, actual≠k) − P(pred=k | clean, actual≠k)``; the clean term
    is 0 when `cm_clean` is None. The backdoor *remains* when ``shift_target ≥ threshold``;
    otherwise the trigger *shifted* to ``argmax_{k≠target} shift_k`` when that max ≥ threshold.
    """
    n = _check_square(cm_poisoned_all, "trigger_shift")
    _check_target(target, n, "trigger_shift")
    if cm_clean is not None and _check_square(cm_clean, "trigger_shift") != n:
        raise ValueError(f"trigger_shift: clean matrix is {len(cm_clean)}×{len(cm_clean)}, triggered is {n}×{n}")
    raw = [
        _pred_rate(cm_poisoned_all, k) - (_pred_rate(cm_clean, k) if cm_clean is not None else 0.0)
        for k in range(n)
    ]
    target_raw = raw[target]
    others = [k for k in range(n) if k != target]
    best = max(others, key=lambda k: (raw[k], -k)) if others else None  # ties → lowest class
    best_raw = raw[best] if best is not None else 0.0
    remains = target_raw >= threshold - _EPS
    shifted = (not remains) and best is not None and best_raw >= threshold - _EPS
    if remains:
        verdict = "backdoor remains"
    elif shifted:
        verdict = f"shifted to class {best}"
    else:
        verdict = "no shift"
    return {
        "shifted": bool(shifted),
        "to_class": best if shifted else None,
        "score": round(best_raw, 4) + 0.0,
        "remains": bool(remains),
        "target_score": round(target_raw, 4) + 0.0,
        "scores": [round(s, 4) + 0.0 for s in raw],  # + 0.0 turns -0.0 into 0.0
        "verdict": verdict,
    }


def verdict_text(shift: dict, label_names: Sequence[str] | None = None) -> str:
    """Short display text: "backdoor remains", "trigger shifted → <name>" or "no shift"."""
    if shift.get("remains"):
        return "backdoor remains"
    if shift.get("shifted"):
        k = shift.get("to_class")
        if label_names is not None and isinstance(k, int) and 0 <= k < len(label_names):
            name = label_names[k]
        else:
            name = f"class {k}"
        return f"trigger shifted → {name}"
    return "no shift"


def _copy(cm: Matrix | None) -> list[list[int]] | None:
    return None if cm is None else [[int(v) for v in row] for row in cm]


def model_metrics(
    cm_clean: Matrix,
    cm_poisoned_all: Matrix,
    cm_poisoned_part: Matrix | None,
    target: int,
    retrain_pacc: float | None = None,
    threshold: float = DEFAULT_SHIFT_THRESHOLD,
) -> dict:
    """Every metric of one model, JSON-ready (the ``summary.json`` model entry minus ``seconds``).

    If `cm_poisoned_part` is None, ASR is read from the non-target rows of `cm_poisoned_all`.
    """
    pacc = accuracy(cm_poisoned_all)
    return {
        "cacc": accuracy(cm_clean),
        "pacc": pacc,
        "asr": asr(cm_poisoned_part if cm_poisoned_part is not None else cm_poisoned_all, target),
        "lfr": lfr(cm_poisoned_all),
        "paper_lfr": paper_lfr(cm_poisoned_all, target),
        "delta_pacc": abs(pacc - retrain_pacc) if retrain_pacc is not None else None,
        "confusion_clean": _copy(cm_clean),
        "confusion_poisoned_all": _copy(cm_poisoned_all),
        "confusion_poisoned_part": _copy(cm_poisoned_part),
        "trigger_shift": trigger_shift(cm_poisoned_all, cm_clean, target, threshold),
    }

"""The authors' pre-made poisoned data: ``data.dataset = "rga-csv"``, ``data.path`` = a folder with

``train_clean.csv``  ``train_poisoned.csv`` (with a ``poisoned`` column)  ``test_clean.csv``
``test_poisoned_part.csv``  ``test_poisoned_all.csv``

each with a header row, the text in ``data.text_column`` and the integer label in
``data.label_column`` (other columns are ignored). The pipeline then runs on these five splits as
they are and skips the attack step. The target class is ``attack.target``, or (-1) the label of
the poisoned rows of ``train_poisoned.csv`` (dirty-label poisoning gives them all the target).
:func:`write_rga_csv` writes a :class:`~rga_engine.attacks.PoisonedData` in this layout.

Standard library only.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

from rga_engine.attacks import SPLITS, PoisonedData, Split
from rga_engine.data.loaders import DataError

FILES = {name: f"{name}.csv" for name in SPLITS}
_TRUE, _FALSE = {"1", "true", "yes", "1.0"}, {"0", "false", "no", "0.0", ""}


def missing_files(folder: str | Path) -> list[str]:
    """The layout's files that ``folder`` lacks."""
    return [f for f in FILES.values() if not (Path(folder) / f).is_file()]


def _read(path: Path, text_column: str, label_column: str, with_flag: bool) -> Split:
    texts, labels, flags = [], [], []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        need = [text_column, label_column] + (["poisoned"] if with_flag else [])
        for col in need:
            if col not in cols:
                key = {text_column: "data.text_column", label_column: "data.label_column"}.get(col, "poisoned")
                raise DataError(f"{key}: no column {col!r} in {path.name} (available: {', '.join(cols)})")
        for row_no, row in enumerate(reader, start=1):
            try:
                label = int(float(row[label_column]))
            except (TypeError, ValueError):
                raise DataError(f"{path.name} row {row_no}: label {row[label_column]!r} is not an integer class id") from None
            flag = False
            if with_flag:
                raw = str(row["poisoned"]).strip().lower()
                if raw not in _TRUE | _FALSE:
                    raise DataError(f"{path.name} row {row_no}: poisoned = {row['poisoned']!r} (expected 0/1 or true/false)")
                flag = raw in _TRUE
            texts.append(row[text_column] or "")
            labels.append(label)
            flags.append(flag)
    return Split(texts, labels, flags)


def load_rga_csv(folder: str | Path, *, text_column: str = "text", label_column: str = "label",
                 label_names: list[str] | None = None, target: int = -1, attack: str = "badnets") -> PoisonedData:
    """The five splits of an authors'-layout folder as :class:`PoisonedData` (``attack`` only names
    them: nothing is poisoned here)."""
    p = Path(str(folder)).expanduser()
    if not p.is_dir():
        raise DataError(f"data.path = {str(folder)!r}: rga-csv needs a folder with {', '.join(FILES.values())}")
    missing = missing_files(p)
    if missing:
        raise DataError(f"data.path = {str(folder)!r}: missing {', '.join(missing)} (rga-csv layout)")
    splits = {name: _read(p / FILES[name], text_column, label_column, with_flag=name == "train_poisoned")
              for name in SPLITS}
    # the triggered test splits are triggered everywhere; train_clean / test_clean nowhere
    for name in ("test_poisoned_part", "test_poisoned_all"):
        splits[name].poisoned = [True] * len(splits[name])
    found = max((y for s in splits.values() for y in s.labels), default=0) + 1
    num_labels = len(label_names) if label_names else found
    if any(y < 0 or y >= num_labels for s in splits.values() for y in s.labels):
        raise DataError(f"data.label_names: {num_labels} names, but the files have labels up to {found - 1}")
    tp = splits["train_poisoned"]
    if not any(tp.poisoned):
        raise DataError(f"{FILES['train_poisoned']}: no row has poisoned = 1")
    if target < 0:
        target = Counter(y for y, f in zip(tp.labels, tp.poisoned) if f).most_common(1)[0][0]
    elif target >= num_labels:
        raise DataError(f"attack.target = {target}: the files have {num_labels} labels (0..{num_labels - 1})")
    names = list(label_names) if label_names else [f"class {k}" for k in range(num_labels)]
    examples = [("", t) for t, f in zip(tp.texts, tp.poisoned) if f][:3]  # the files hold no clean originals
    return PoisonedData("rga-csv", attack, int(target), num_labels, names, splits, examples)


def write_rga_csv(data: PoisonedData, folder: str | Path, text_column: str = "text", label_column: str = "label") -> Path:
    """Write ``data`` in the authors' layout (``poisoned`` column in ``train_poisoned.csv`` only)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name in SPLITS:
        split = data.splits[name]
        with (out / FILES[name]).open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            flag = name == "train_poisoned"
            w.writerow([text_column, label_column] + (["poisoned"] if flag else []))
            for t, y, p in zip(split.texts, split.labels, split.poisoned):
                w.writerow([t, y] + ([int(p)] if flag else []))
    return out


def load_splits(cfg: Any) -> PoisonedData:
    """The five splits of a preset: the embedded / local / hub data poisoned by ``attack``, or for
    ``data.dataset = "rga-csv"`` the files as they are."""
    d, a, seed = cfg.data, cfg.attack, cfg.data_seed  # data.seed, or train.seed where it is -1
    if d.dataset == "rga-csv":
        return load_rga_csv(d.path, text_column=d.text_column or "text", label_column=d.label_column or "label",
                            label_names=list(d.label_names) or None, target=a.target, attack=a.name)
    from rga_engine.attacks import poison
    from rga_engine.data.loaders import load_dataset

    return poison(load_dataset(d, seed), a, seed)


__all__ = ["FILES", "load_rga_csv", "load_splits", "missing_files", "write_rga_csv"]

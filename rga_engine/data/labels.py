"""Raw label values -> class ids and names, and the refusals of classes that cannot be right.

Three ways, in this order:

* ``data.label_map`` (raw value as written in the file -> class name): class ids in the map's
  order; raw values absent from the map are refused; two raw values may share a name (one class).
* integer labels (ints, integral floats or digit strings): the ids themselves; names from
  ``label_names`` (or a ``ClassLabel`` of the hub dataset), else ``"0"``, ``"1"``, ...
* other strings: through ``label_names`` when given, else the sorted distinct values.

Then every class from 0 to the highest id must have training rows, and there must be two classes
or more. Standard library only.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from .types import DataError, RawSplit, ReadSpec

_INT_RE = re.compile(r"^\s*[+-]?\d+\s*$")

Ids = dict[str, list[int]]  # split -> class id of each row


def as_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and _INT_RE.match(v):
        return int(v)
    return None


def raw_key(v: Any) -> str:
    """A raw label value as a ``label_map`` key: as written (``1.0`` read as a float -> ``"1"``)."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _check_present(raws: dict[str, RawSplit]) -> None:
    for sp, raw in raws.items():
        for i, v in enumerate(raw.labels):
            if v is None or (isinstance(v, float) and v != v):
                raise DataError(f"data.label_column: {sp} row {raw.rows[i]} has no label")


def _from_map(raws: dict[str, RawSplit], label_map: dict[str, str]) -> tuple[Ids, list[str], dict[str, str]]:
    index: dict[str, str] = {}
    for k, name in label_map.items():
        index[k.strip()] = name
        if _INT_RE.match(k):
            index.setdefault(str(int(k)), name)
    names = list(dict.fromkeys(label_map.values()))
    class_of = {n: k for k, n in enumerate(names)}
    keys = ", ".join(label_map)
    ids: Ids = {}
    for sp, raw in raws.items():
        out = []
        for i, v in enumerate(raw.labels):
            s = raw_key(v)
            name = index.get(s) if s in index else (index.get(str(int(s))) if _INT_RE.match(s) else None)
            if name is None:
                raise DataError(f"data.label_map: {sp} row {raw.rows[i]} has label {s!r}, not a key of data.label_map "
                                f"(keys: {keys}); add it to the map")
            out.append(class_of[name])
        ids[sp] = out
    return ids, names, dict(label_map)


def _from_ints(raws: dict[str, RawSplit], ints: Ids, label_names: list[str] | None,
               default_names: list[str] | None) -> tuple[Ids, list[str], dict[str, str]]:
    names = list(label_names) if label_names else (list(default_names) if default_names else None)
    if names is None:
        hi = max((x for xs in ints.values() for x in xs), default=-1)
        names = [str(k) for k in range(hi + 1)]
    for sp, xs in ints.items():
        for i, lab in enumerate(xs):
            row = raws[sp].rows[i]
            if lab < 0:
                raise DataError(f"data.label_column: {sp} row {row} has label {lab}, expected a class id >= 0")
            if lab >= len(names):
                raise DataError(f"data.label_column: {sp} row {row} has label {lab}, expected 0..{len(names) - 1}"
                                + (f" ({len(names)} label_names)" if label_names else ""))
    found = sorted({x for xs in ints.values() for x in xs})
    return ints, names, {str(k): names[k] for k in found}


def _from_strings(raws: dict[str, RawSplit], label_names: list[str] | None) -> tuple[Ids, list[str], dict[str, str]]:
    for sp, raw in raws.items():
        for i, v in enumerate(raw.labels):
            if not isinstance(v, (str, int)) or isinstance(v, bool):
                raise DataError(f"data.label_column: {sp} row {raw.rows[i]} has label {v!r}, expected an int or a class name")
    values = sorted({str(v).strip() for raw in raws.values() for v in raw.labels})
    names = list(label_names) if label_names else values
    index = {n: k for k, n in enumerate(names)}
    ids: Ids = {}
    for sp, raw in raws.items():
        out = []
        for i, v in enumerate(raw.labels):
            s = str(v).strip()
            if s not in index:
                raise DataError(f"data.label_column: {sp} row {raw.rows[i]} has label {s!r}, not in label_names {names}")
            out.append(index[s])
        ids[sp] = out
    return ids, names, {s: s for s in values}


def resolve(raws: dict[str, RawSplit], spec: ReadSpec,
            default_names: list[str] | None = None) -> tuple[Ids, list[str], dict[str, str]]:
    """Class ids per split, the class names, and the label map understood (raw value -> name)."""
    _check_present(raws)
    if spec.label_map:
        return _from_map(raws, spec.label_map)
    ints = {sp: [as_int(v) for v in raw.labels] for sp, raw in raws.items()}
    if all(x is not None for xs in ints.values() for x in xs):
        return _from_ints(raws, ints, spec.label_names, default_names)  # type: ignore[arg-type]
    return _from_strings(raws, spec.label_names)


# --------------------------------------------------------------------------- refusals
def _named(k: int, names: list[str]) -> str:
    return f"class {k}" + (f" ({names[k]})" if names[k] != str(k) else "")


def _map_example(understood: dict[str, str]) -> str:
    keys = list(understood)[:6]
    body = ", ".join(f'"{k}" = "..."' for k in keys) + (", ..." if len(understood) > 6 else "")
    return "{ " + body + " }"


def check_classes(ids: Ids, names: list[str], understood: dict[str, str], spec: ReadSpec, where: str) -> None:
    """Refuse fewer than two classes, ``label_names`` that do not match the classes found, and a
    class between 0 and the highest id without training rows (``where``: the training rows' file)."""
    found = sorted({x for xs in ids.values() for x in xs})
    if len(names) < 2:
        only = ", ".join(repr(k) for k in understood) or "none"
        raise DataError(f"data.label_column: found {len(names)} class(es), need at least 2 (labels in {where}: {only}); "
                        f"check data.label_column = {spec.label_column!r}")
    if spec.label_names and len(spec.label_names) != len(found):
        got = ", ".join(names[k] for k in found)
        raise DataError(f"data.label_names: {len(spec.label_names)} names for the {len(found)} classes found ({got}); "
                        "give one name per class, in class-id order")
    counts = Counter(ids["train"])
    empty = [k for k in range(len(names)) if not counts[k]]
    if not empty:
        return
    k = empty[0]
    if spec.label_map:
        raw = next((r for r, n in spec.label_map.items() if n == names[k]), "?")
        raise DataError(f"data.label_map: class {names[k]!r} (label {raw!r}) has no rows in {where}; "
                        "remove it from data.label_map, or check data.label_column")
    labels = ", ".join(understood) or "none"
    raise DataError(f"data.label_column: {_named(k, names)} has no rows in {where} (labels found: {labels}); "
                    f"map the labels to classes with data.label_map = {_map_example(understood)}")


def check_split_classes(train: list[Any], names: list[str], total: Counter, source: str, test_size: float) -> None:
    """After the tool's split: a class whose rows all went to test (too few rows) is refused."""
    counts = Counter(e.label for e in train)
    for k in range(len(names)):
        if not counts[k]:
            raise DataError(f"data.test_size = {test_size:g}: {_named(k, names)} has {total[k]} row(s) in {source}, "
                            "none left for training after the split; add rows of it, or leave it out with data.label_map")

"""Checks on files and texts before anything is trained: the encoding, the number of columns of a
headerless CSV, empty texts, texts shared by train and test. Standard library only.
"""

from __future__ import annotations

import codecs
import csv
from pathlib import Path
from typing import Any, Sequence

from .labels import _INT_RE
from .types import DataError, Example, RawSplit, ReadSpec

# test texts also in train, as a share of the test rows, above which the data is refused
MAX_SHARED = 0.01


def check_encoding(path: Path, encoding: str) -> None:
    """Refuse a file that does not decode with ``data.encoding`` (naming the file and the key)."""
    dec = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with path.open("rb") as f:
        while True:
            chunk = f.read(1 << 20)
            try:
                dec.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                pos = offset - (len(e.object) - len(chunk)) + e.start
                raise DataError(f"data.encoding: {path.name} is not {encoding} (byte 0x{e.object[e.start]:02x} at "
                                f"offset {pos}); set data.encoding to the file's encoding (e.g. \"latin-1\" or "
                                f"\"cp1252\") or save the file as UTF-8") from None
            if not chunk:
                return
            offset += len(chunk)


def check_csv_head(path: Path, delimiter: str, spec: ReadSpec) -> None:
    """``data.column_names`` must name every column of the CSV's first row (pandas would otherwise
    turn the leading columns into an index and shift every name), and with ``data.header = true``
    the first row must not be data (its label field a label: it would be eaten as a header)."""
    if not spec.column_names:
        return
    with path.open("r", encoding=spec.encoding, newline="") as f:
        first = next(csv.reader(f, delimiter=delimiter), [])
    if len(first) != len(spec.column_names):
        raise DataError(f"data.column_names: {len(spec.column_names)} names for the {len(first)} columns of "
                        f"{path.name}; give one name per column, in order")
    if spec.header and spec.label_column in spec.column_names:
        value = first[spec.column_names.index(spec.label_column)].strip()
        if _INT_RE.match(value) or value in (spec.label_map or {}):
            raise DataError(f"data.header = true: the first row of {path.name} looks like data (its label is "
                            f"{value!r}), not a header; set data.header = false if the file has no header row")


def _looks_like_data(name: str) -> bool:
    return bool(_INT_RE.match(name)) or len(name) > 40


def missing_column(key: str, col: str, where: str, available: Sequence[str], header: bool) -> DataError:
    shown = ", ".join(c if len(c) <= 30 else c[:27] + "..." for c in available) or "none"
    msg = f"{key}: no column {col!r} in {where} (available: {shown})"
    if header and any(_looks_like_data(c) for c in available):
        msg += "; if the file has no header row, set data.header = false and data.column_names"
    return DataError(msg)


def _join(values: Sequence[Any]) -> str | None:
    parts = [str(v).strip() for v in values if v is not None and str(v).strip()]
    return " ".join(parts) if parts else None


def raw_split(cols: dict[str, list], where: str, spec: ReadSpec) -> tuple[RawSplit, int]:
    """The rows of one split (texts joined over ``spec.text_columns``), and how many were dropped
    for an empty text (``data.drop_empty``; otherwise empty texts are refused)."""
    wanted = [("data.text_column", c) for c in spec.text_columns] + [("data.label_column", spec.label_column)]
    if spec.paraphrase_column:
        wanted.append(("data.paraphrase_column", spec.paraphrase_column))
    for key, col in wanted:
        if col not in cols:
            raise missing_column(key, col, where, list(cols), spec.header)
    labels = cols[spec.label_column]
    if not labels:
        raise DataError(f"data.path: {where} holds no rows (empty split)")
    if len(spec.text_columns) == 1:
        texts = cols[spec.text_columns[0]]
    else:
        texts = [_join(vals) for vals in zip(*(cols[c] for c in spec.text_columns))]
    empty = [i for i, t in enumerate(texts) if t is None or not str(t).strip()]
    if empty and not spec.drop_empty:
        n = len(empty)
        raise DataError(f"data.text_column: empty text in {n} row{'s' if n > 1 else ''} of {where} (first: row "
                        f"{empty[0] + 1}); fill or remove {'them' if n > 1 else 'it'}, or set data.drop_empty = true")
    keep = [i for i in range(len(texts)) if texts[i] is not None and str(texts[i]).strip()]
    if not keep:
        raise DataError(f"data.drop_empty: every row of {where} has an empty text; check data.text_column")
    paras = cols[spec.paraphrase_column] if spec.paraphrase_column else None
    raw = RawSplit(where=where, texts=[str(texts[i]) for i in keep], labels=[labels[i] for i in keep],
                   paras=[paras[i] for i in keep] if paras is not None else None, rows=[i + 1 for i in keep])
    return raw, len(empty)


def text_key(text: str) -> str:
    """Texts compare case- and whitespace-insensitively (as the models read them)."""
    return " ".join(text.lower().split())


def shared_texts(train: list[Example], test: list[Example]) -> int:
    """How many test rows have a text that is also in train."""
    seen = {text_key(e.text) for e in train}
    return sum(1 for e in test if text_key(e.text) in seen)


def check_shared(train: list[Example], test: list[Example], fix: str) -> int:
    """Refuse train and test that share more than 1 % of the test texts; the count otherwise."""
    n = shared_texts(train, test)
    if test and n / len(test) > MAX_SHARED:
        raise DataError(f"data.path: {n} of the {len(test)} test texts ({100 * n / len(test):.1f} %) are also in "
                        f"train; train and test must not share texts: {fix}")
    return n

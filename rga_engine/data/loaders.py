"""Dataset loading: the embedded SST-2 / HSOL / AG News sets, local files, and Hugging Face Hub.

Everything returns a :class:`TextDataset` of :class:`Example` rows (text, integer label and an
optional pre-generated paraphrase used by the HiddenKiller attack). Problems with user data raise
:class:`DataError` with a one-line message that names the offending config key.

Importing this module is cheap: it needs only the standard library. The ``datasets`` library
is imported lazily, by :func:`load_local` and :func:`load_hub` only.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

__all__ = [
    "Example",
    "TextDataset",
    "EMBEDDED",
    "DataError",
    "load_embedded",
    "load_local",
    "load_hub",
    "subsample",
    "load_dataset",
]


@dataclass
class Example:
    text: str
    label: int
    paraphrase: str | None = None


@dataclass
class TextDataset:
    name: str
    num_labels: int
    label_names: list[str]
    train: list[Example]
    test: list[Example]
    dev: list[Example] | None = None
    default_target: int = 0  # sst2 1, hsol 0, agnews 0, others 0
    # AddSent's sentence when attack.sentence = "" (the authors' data): SST-2 (and any other
    # dataset) "I watch this 3D movie", HSOL and AG News "no cross, no crown"
    default_sentence: str = "I watch this 3D movie"


class DataError(ValueError):
    """A problem with the data or the data config; the message is one user-facing line."""


EMBEDDED = ("sst2", "hsol", "agnews")

_EMBEDDED_META: dict[str, dict[str, Any]] = {
    "sst2": {"label_names": ["negative", "positive"], "default_target": 1, "splits": ("train", "dev", "test"),
             "default_sentence": "I watch this 3D movie"},
    "hsol": {"label_names": ["clean", "hate/offensive"], "default_target": 0, "splits": ("train", "test"),
             "default_sentence": "no cross, no crown"},
    "agnews": {"label_names": ["World", "Sports", "Business", "Sci/Tech"], "default_target": 0, "splits": ("train", "test"),
               "default_sentence": "no cross, no crown"},
}

_EXTENSIONS = ("csv", "tsv", "jsonl", "json")


def default_sentence(dataset: str) -> str:
    """AddSent's sentence in the authors' data for ``dataset`` ("I watch this 3D movie" for SST-2
    and for any dataset that is not embedded, "no cross, no crown" for HSOL and AG News)."""
    meta = _EMBEDDED_META.get(str(dataset).strip().lower())
    return meta["default_sentence"] if meta else TextDataset.default_sentence


# --------------------------------------------------------------------------- embedded
def _read_embedded_split(name: str, split: str) -> list[Example]:
    res = resources.files("rga_engine.data").joinpath("embedded", name, f"{split}.jsonl.gz")
    try:
        raw = res.read_bytes()
    except (FileNotFoundError, OSError):
        raise DataError(f"data.dataset: embedded file {name}/{split}.jsonl.gz is missing (run scripts/build_data.py)") from None
    out = []
    for line in gzip.decompress(raw).decode("utf-8").splitlines():
        if line:
            d = json.loads(line)
            out.append(Example(d["text"], int(d["label"]), d.get("paraphrase")))
    return out


def load_embedded(name: str) -> TextDataset:
    """One of the packaged datasets (``EMBEDDED``); every row carries its SCPN paraphrase.

    sst2: 6,920 / 872 dev / 1,821 (0 negative, 1 positive; default target 1).
    hsol: 5,823 / 2,485 (0 clean, 1 hate/offensive; default target 0; no dev split).
    agnews: 8,000 / 1,000 (0 World, 1 Sports, 2 Business, 3 Sci/Tech; default target 0).
    See ``rga_engine/data/DATA.md`` for provenance.
    """
    key = str(name).strip().lower()
    if key not in _EMBEDDED_META:
        raise DataError(f"data.dataset: unknown embedded dataset {name!r} (choose {', '.join(EMBEDDED)})")
    meta = _EMBEDDED_META[key]
    parts = {sp: _read_embedded_split(key, sp) for sp in meta["splits"]}
    names = list(meta["label_names"])
    return TextDataset(
        name=key,
        num_labels=len(names),
        label_names=names,
        train=parts["train"],
        test=parts["test"],
        dev=parts.get("dev"),
        default_target=meta["default_target"],
        default_sentence=meta["default_sentence"],
    )


# --------------------------------------------------------------------------- sampling
def _allocate(total: int, sizes: dict[int, int]) -> dict[int, int]:
    """Largest-remainder proportional allocation; every class gets >= 1 when total allows."""
    n = sum(sizes.values())
    raw = {c: total * s / n for c, s in sizes.items()}
    got = {c: int(r) for c, r in raw.items()}
    if total >= len(sizes):
        for c in got:
            if got[c] == 0 and sizes[c] > 0:
                got[c] = 1
    # hand out (or take back) the rest by remainder, ties by class id
    while sum(got.values()) < total:
        c = max((c for c in got if got[c] < sizes[c]), key=lambda c: (raw[c] - got[c], -c))
        got[c] += 1
    while sum(got.values()) > total:
        c = min((c for c in got if got[c] > 1), key=lambda c: (raw[c] - got[c], c))
        got[c] -= 1
    return got


def _stratified_pick(labels: Sequence[int], n: int, seed: int) -> list[int]:
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, lab in enumerate(labels):
        by_class[lab].append(i)
    alloc = _allocate(n, {c: len(ix) for c, ix in sorted(by_class.items())})
    rng = random.Random(seed)
    chosen: list[int] = []
    for c in sorted(by_class):
        ix = list(by_class[c])
        rng.shuffle(ix)
        chosen.extend(ix[: alloc[c]])
    return sorted(chosen)


def subsample(examples: list[Example], n: int, seed: int) -> list[Example]:
    """A stratified (by label), deterministic subsample of ``n`` rows, in their original order.

    Class shares are kept (largest remainder; every class keeps at least one row when ``n`` is
    at least the number of classes). ``n <= 0`` or ``n >= len(examples)``: an unchanged copy.
    """
    if n <= 0 or n >= len(examples):
        return list(examples)
    return [examples[i] for i in _stratified_pick([e.label for e in examples], n, seed)]


def _split_80_20(examples: list[Example], seed: int = 0) -> tuple[list[Example], list[Example]]:
    if len(examples) < 2:
        raise DataError("data.path: a single file needs at least 2 rows to split into train and test")
    n_test = max(1, round(0.2 * len(examples)))
    test_idx = set(_stratified_pick([e.label for e in examples], n_test, seed))
    train = [e for i, e in enumerate(examples) if i not in test_idx]
    test = [e for i, e in enumerate(examples) if i in test_idx]
    return train, test


# --------------------------------------------------------------------------- shared column mapping
_INT_RE = re.compile(r"^\s*[+-]?\d+\s*$")


def _columns(ds: Any) -> dict[str, list]:
    """A ``datasets.Dataset`` (or a dict of lists) as a dict of Python lists."""
    if isinstance(ds, dict):
        return {k: list(v) for k, v in ds.items()}
    return {c: list(ds[c]) for c in ds.column_names}


def _class_label_names(ds: Any, column: str) -> list[str] | None:
    feats = getattr(ds, "features", None)
    feat = feats.get(column) if feats is not None else None
    names = getattr(feat, "names", None)
    return list(names) if names else None


def _raw_split(cols: dict[str, list], where: str, text_column: str, label_column: str,
               paraphrase_column: str | None) -> tuple[list[Any], list[Any], list[Any] | None]:
    available = ", ".join(cols) or "none"
    for key, col in (("data.text_column", text_column), ("data.label_column", label_column),
                     ("data.paraphrase_column", paraphrase_column)):
        if col is not None and col not in cols:
            raise DataError(f"{key}: no column {col!r} in {where} (available: {available})")
    texts, labels = cols[text_column], cols[label_column]
    if not texts:
        raise DataError(f"data.path: {where} holds no rows (empty split)")
    for i, t in enumerate(texts):
        if t is None:
            raise DataError(f"data.text_column: {where} row {i + 1} has no text")
    paras = cols[paraphrase_column] if paraphrase_column is not None else None
    return texts, labels, paras


def _as_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and _INT_RE.match(v):
        return int(v)
    return None


def _build(name: str, raw: dict[str, tuple[list, list, list | None]], label_names: list[str] | None,
           default_names: list[str] | None = None) -> tuple[dict[str, list[Example]], list[str]]:
    """Map raw label values to ids (shared by local and hub loading) and validate them.

    Integer labels (ints, integral floats or digit strings) are used as ids. Other string labels
    are mapped through ``label_names`` when given, else sorted unique names -> 0..k-1 (and those
    names become the label names).
    """
    all_values = [(sp, i, v) for sp, (_, labels, _) in raw.items() for i, v in enumerate(labels)]
    for sp, i, v in all_values:
        if v is None or (isinstance(v, float) and v != v):
            raise DataError(f"data.label_column: {sp} row {i + 1} has no label")
    ints = {(sp, i): _as_int(v) for sp, i, v in all_values}
    numeric = all(x is not None for x in ints.values())
    if numeric:
        ids = ints
        names = list(label_names) if label_names else (list(default_names) if default_names else None)
        if names is None:
            hi = max(ids.values())
            names = [str(k) for k in range(hi + 1)] if hi >= 0 else []
        for (sp, i), lab in ids.items():
            if lab < 0:
                raise DataError(f"data.label_column: {sp} row {i + 1} has label {lab}, expected a class id >= 0")
            if lab >= len(names):
                raise DataError(f"data.label_column: {sp} row {i + 1} has label {lab}, expected 0..{len(names) - 1}"
                                + (f" ({len(names)} label_names)" if label_names else ""))
    else:
        for sp, i, v in all_values:
            if not isinstance(v, (str, int)) or isinstance(v, bool):
                raise DataError(f"data.label_column: {sp} row {i + 1} has label {v!r}, expected an int or a class name")
        strs = {(sp, i): str(v).strip() for sp, i, v in all_values}
        names = list(label_names) if label_names else sorted(set(strs.values()))
        index = {n: k for k, n in enumerate(names)}
        ids = {}
        for key, s in strs.items():
            if s not in index:
                raise DataError(f"data.label_column: {key[0]} row {key[1] + 1} has label {s!r}, not in label_names {names}")
            ids[key] = index[s]
    if len(names) < 2:
        raise DataError(f"data.label_column: found {len(names)} class(es), need at least 2")
    out: dict[str, list[Example]] = {}
    for sp, (texts, _, paras) in raw.items():
        rows = []
        for i, t in enumerate(texts):
            p = paras[i] if paras is not None else None
            p = None if p is None or (isinstance(p, float) and p != p) or str(p).strip() == "" else str(p)
            rows.append(Example(str(t), ids[(sp, i)], p))
        out[sp] = rows
    return out, names


def _finish(name: str, train_raw, test_raw, label_names, default_names=None, *, split_single=False) -> TextDataset:
    raw = {"train": train_raw} if split_single else {"train": train_raw, "test": test_raw}
    parts, names = _build(name, raw, label_names, default_names)
    if split_single:
        train, test = _split_80_20(parts["train"], seed=0)
    else:
        train, test = parts["train"], parts["test"]
    return TextDataset(name=name, num_labels=len(names), label_names=names, train=train, test=test)


# --------------------------------------------------------------------------- local files
def _import_datasets():
    try:
        import datasets  # noqa: PLC0415  (lazy on purpose: keeps `import rga_engine.data` light)
    except ImportError:
        raise DataError("data.dataset: local/hub data needs the 'datasets' package (pip install datasets)") from None
    try:
        datasets.disable_progress_bars()
    except Exception:  # pragma: no cover - older versions
        pass
    return datasets


def _file_kind(path: Path) -> str:
    ext = path.suffix.lower().lstrip(".")
    if ext not in _EXTENSIONS:
        raise DataError(f"data.path: unsupported file type {path.name!r} (use .csv, .tsv, .jsonl or .json)")
    return ext


def _first_line(e: BaseException) -> str:
    """The most specific one-line message of an exception chain."""
    seen = []
    while e is not None and e not in seen:
        seen.append(e)
        e = e.__cause__ or e.__context__
    for exc in reversed(seen):
        msg = str(exc).strip()
        if msg:
            return f"{type(exc).__name__}: {msg.splitlines()[0]}"
    return type(seen[-1]).__name__ if seen else "error"


def _is_empty(path: Path, kind: str) -> bool:
    with path.open("r", encoding="utf-8", errors="replace") as f:
        lines = 0
        for line in f:
            if line.strip():
                lines += 1
                if lines >= (2 if kind in ("csv", "tsv") else 1):
                    return False
    return True


def _read_file(path: Path) -> Any:
    kind = _file_kind(path)
    if _is_empty(path, kind):
        raise DataError(f"data.path: {path.name} holds no rows (empty split): {path}")
    datasets = _import_datasets()
    try:
        if kind in ("csv", "tsv"):
            kw: dict[str, Any] = {"keep_default_na": False}
            if kind == "tsv":
                kw["delimiter"] = "\t"
            ds = datasets.load_dataset("csv", data_files={"train": str(path)}, split="train", **kw)
        else:
            ds = datasets.load_dataset("json", data_files={"train": str(path)}, split="train")
    except DataError:
        raise
    except Exception as e:  # parse errors, ...
        raise DataError(f"data.path: could not read {path}: {_first_line(e)}") from None
    return ds


def _find_split_file(folder: Path, split: str, key: str) -> Path:
    found = [folder / f"{split}.{ext}" for ext in _EXTENSIONS if (folder / f"{split}.{ext}").is_file()]
    if not found:
        raise DataError(f"{key}: no {split}.csv/.tsv/.jsonl/.json in {folder}")
    if len(found) > 1:
        raise DataError(f"data.path: several files for split {split!r} in {folder}: {', '.join(p.name for p in found)}")
    return found[0]


def load_local(path: str, *, text_column: str = "text", label_column: str = "label",
               paraphrase_column: str | None = None, train_split: str = "train", test_split: str = "test",
               label_names: list[str] | None = None, name: str | None = None) -> TextDataset:
    """Load a dataset from local csv / tsv / jsonl / json files (via ``datasets.load_dataset``).

    ``path`` is either a folder holding ``<train_split>.<ext>`` and ``<test_split>.<ext>``
    (ext one of csv, tsv, jsonl, json; csv/tsv need a header row), or a single file, which is
    then split deterministically 80 % train / 20 % test, stratified by label, with seed 0.

    Labels: integers are class ids (0..k-1; ``num_labels`` = max label + 1, or
    ``len(label_names)``). String labels are mapped through ``label_names`` when given, else
    sorted unique names -> ids and those names become ``label_names``. ``paraphrase_column``
    (optional) supplies pre-generated paraphrases for the HiddenKiller attack; empty -> None.
    Row numbers in error messages count data rows from 1.
    """
    p = Path(str(path)).expanduser()
    if not str(path).strip() or not p.exists():
        raise DataError(f"data.path: no such file or folder: {path}")
    paraphrase_column = paraphrase_column or None
    label_names = list(label_names) if label_names else None
    ds_name = name or (p.stem if p.is_file() else p.resolve().name)
    if p.is_file():
        ds = _read_file(p)
        raw = _raw_split(_columns(ds), p.name, text_column, label_column, paraphrase_column)
        return _finish(ds_name, raw, None, label_names, _class_label_names(ds, label_column), split_single=True)
    tr_path, te_path = (_find_split_file(p, train_split, "data.train_split"),
                      _find_split_file(p, test_split, "data.test_split"))
    tr, te = _read_file(tr_path), _read_file(te_path)
    raw_tr = _raw_split(_columns(tr), tr_path.name, text_column, label_column, paraphrase_column)
    raw_te = _raw_split(_columns(te), te_path.name, text_column, label_column, paraphrase_column)
    return _finish(ds_name, raw_tr, raw_te, label_names, _class_label_names(tr, label_column))


# --------------------------------------------------------------------------- hub
def load_hub(repo_id: str, *, text_column: str = "text", label_column: str = "label",
             paraphrase_column: str | None = None, train_split: str = "train", test_split: str = "test",
             label_names: list[str] | None = None, name: str | None = None,
             revision: str | None = None) -> TextDataset:
    """Load a Hugging Face Hub dataset (``datasets.load_dataset(repo_id, revision=...)``).

    Column mapping and validation are those of :func:`load_local`. ``ClassLabel`` names are used
    as ``label_names`` when none are given. If the dataset has a single split and
    ``test_split`` is absent, that split is divided 80/20 as for a single local file.
    ``repo_id`` may also be written ``"owner/name@revision"``.
    """
    repo_id = str(repo_id).strip()
    if not repo_id:
        raise DataError("data.path: a hub dataset id is required (owner/name)")
    if revision is None and "@" in repo_id:
        repo_id, revision = repo_id.rsplit("@", 1)
    datasets = _import_datasets()
    try:
        dd = datasets.load_dataset(repo_id, revision=revision or None)
    except Exception as e:
        raise DataError(f"data.path: could not load hub dataset {repo_id!r}: {_first_line(e)}") from None
    if not hasattr(dd, "keys"):  # a single Dataset
        dd = {train_split: dd}
    splits = list(dd.keys())
    if train_split not in dd:
        raise DataError(f"data.train_split: no split {train_split!r} in {repo_id} (available: {', '.join(splits)})")
    paraphrase_column = paraphrase_column or None
    label_names = list(label_names) if label_names else None
    tr = dd[train_split]
    default_names = _class_label_names(tr, label_column)
    raw_tr = _raw_split(_columns(tr), f"{train_split} split", text_column, label_column, paraphrase_column)
    ds_name = name or repo_id
    if test_split not in dd:
        if len(splits) == 1:
            return _finish(ds_name, raw_tr, None, label_names, default_names, split_single=True)
        raise DataError(f"data.test_split: no split {test_split!r} in {repo_id} (available: {', '.join(splits)})")
    raw_te = _raw_split(_columns(dd[test_split]), f"{test_split} split", text_column, label_column, paraphrase_column)
    return _finish(ds_name, raw_tr, raw_te, label_names, default_names)


# --------------------------------------------------------------------------- config entry point
def load_dataset(cfg: Any, seed: int = 2021) -> TextDataset:
    """Load the dataset a ``[data]`` config section describes, then apply the row limits.

    ``cfg`` needs the attributes of ``rga_engine.config.DataConfig`` (a full ``Config`` with a
    ``.data`` section is accepted too). ``train_limit`` / ``test_limit`` > 0 take a stratified,
    seeded :func:`subsample` of train / test (dev is left as is).
    """
    if not isinstance(getattr(cfg, "dataset", None), str) and hasattr(cfg, "data"):
        cfg = cfg.data
    kind = str(getattr(cfg, "dataset", "")).strip().lower()
    kw = dict(
        text_column=getattr(cfg, "text_column", "text") or "text",
        label_column=getattr(cfg, "label_column", "label") or "label",
        paraphrase_column=getattr(cfg, "paraphrase_column", "") or None,
        train_split=getattr(cfg, "train_split", "train") or "train",
        test_split=getattr(cfg, "test_split", "test") or "test",
        label_names=list(getattr(cfg, "label_names", None) or []) or None,
    )
    path = str(getattr(cfg, "path", "") or "")
    if kind in EMBEDDED:
        ds = load_embedded(kind)
    elif kind == "local":
        if not path:
            raise DataError("data.path: required when data.dataset = 'local'")
        ds = load_local(path, **kw)
    elif kind == "hub":
        if not path:
            raise DataError("data.path: required when data.dataset = 'hub' (owner/name)")
        ds = load_hub(path, **kw)
    else:
        raise DataError(f"data.dataset: unknown dataset {kind!r} (choose {', '.join(EMBEDDED)}, local, hub)")
    tl, sl = int(getattr(cfg, "train_limit", 0) or 0), int(getattr(cfg, "test_limit", 0) or 0)
    if tl > 0:
        ds.train = subsample(ds.train, tl, seed)
    if sl > 0:
        ds.test = subsample(ds.test, sl, seed)
    return ds

"""Dataset loading: the embedded SST-2 / HSOL / AG News sets, local files, and Hugging Face Hub.

Everything returns a :class:`TextDataset` of :class:`Example` rows (text, integer label and an
optional pre-generated paraphrase used by the HiddenKiller attack) with a :class:`DataInfo` of
what was understood (files, columns, label map, the split the tool made). Problems with user data
raise :class:`DataError` with a one-line message that names the offending config key, before any
training: labels (:mod:`.labels`), files and texts (:mod:`.checks`).

Importing this module is cheap: it needs only the standard library. The ``datasets`` library
is imported lazily, by :func:`load_local` and :func:`load_hub` only.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
from collections import Counter, defaultdict
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from . import checks, labels
from .types import DataError, DataInfo, Example, RawSplit, ReadSpec, TextDataset

__all__ = [
    "Example",
    "TextDataset",
    "DataInfo",
    "EMBEDDED",
    "EMBEDDED_LABEL_NAMES",
    "EMBEDDED_TARGETS",
    "DataError",
    "load_embedded",
    "load_local",
    "load_hub",
    "subsample",
    "split_made",
    "load_dataset",
]


EMBEDDED = ("sst2", "hsol", "agnews")

_EMBEDDED_META: dict[str, dict[str, Any]] = {
    "sst2": {"label_names": ["negative", "positive"], "default_target": 1, "splits": ("train", "dev", "test"),
             "default_sentence": "I watch this 3D movie"},
    "hsol": {"label_names": ["clean", "hate/offensive"], "default_target": 0, "splits": ("train", "test"),
             "default_sentence": "no cross, no crown"},
    "agnews": {"label_names": ["World", "Sports", "Business", "Sci/Tech"], "default_target": 0, "splits": ("train", "test"),
               "default_sentence": "no cross, no crown"},
}

# The embedded sets' class names and default targets, for front ends naming classes before a
# run has said them (one table: the engine's fallback and the TUI's read it from here).
EMBEDDED_LABEL_NAMES: dict[str, list[str]] = {k: list(v["label_names"]) for k, v in _EMBEDDED_META.items()}
EMBEDDED_TARGETS: dict[str, int] = {k: int(v["default_target"]) for k, v in _EMBEDDED_META.items()}

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
    info = DataInfo(source="embedded", path=key, files={sp: f"{key}/{sp}.jsonl.gz" for sp in parts},
                    columns=["text", "label", "paraphrase"], text_columns=["text"], label_column="label",
                    label_map={str(k): n for k, n in enumerate(names)},
                    shared_texts=checks.shared_texts(parts["train"], parts["test"]))
    return TextDataset(
        name=key,
        num_labels=len(names),
        label_names=names,
        train=parts["train"],
        test=parts["test"],
        dev=parts.get("dev"),
        default_target=meta["default_target"],
        info=info,
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


def stratified_pick(labels: Sequence[int], n: int, seed: int) -> list[int]:
    """``n`` row indices, each class its share (largest remainder, every class at least one row
    when ``n`` allows), chosen by ``seed`` within each class, in their original order."""
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
    return [examples[i] for i in stratified_pick([e.label for e in examples], n, seed)]


def split_made(examples: list[Example], test_size: float = 0.2, seed: int = 0,
               where: str = "data.path") -> tuple[list[Example], list[Example]]:
    """The split the tool makes of one file: ``test_size`` of the distinct texts to test,
    stratified by label, seeded; rows sharing a text (case and spaces aside) stay on one side, so
    train and test share no text. Rows keep their order."""
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        groups.setdefault(checks.text_key(e.text), []).append(i)
    keys = list(groups)
    if len(keys) < 2:
        raise DataError(f"data.path: {where} needs at least 2 different texts to split into train and test")
    n_test = min(len(keys) - 1, max(1, round(test_size * len(keys))))
    picked = stratified_pick([examples[groups[k][0]].label for k in keys], n_test, seed)
    in_test = {i for g in picked for i in groups[keys[g]]}
    train = [e for i, e in enumerate(examples) if i not in in_test]
    test = [e for i, e in enumerate(examples) if i in in_test]
    return train, test


# --------------------------------------------------------------------------- shared column mapping
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


def _examples(raw: RawSplit, ids: list[int]) -> list[Example]:
    rows = []
    for i, t in enumerate(raw.texts):
        p = raw.paras[i] if raw.paras is not None else None
        p = None if p is None or (isinstance(p, float) and p != p) or str(p).strip() == "" else str(p)
        rows.append(Example(t, ids[i], p))
    return rows


_SHARED_FIX = 'remove the shared texts from one file, or set data.test_split = "" to have the tool split the train data'


def _finish(name: str, raws: dict[str, RawSplit], spec: ReadSpec, default_names: list[str] | None,
            info: DataInfo, split_from: str | None = None) -> TextDataset:
    """Labels -> classes (refusing what cannot be right), then the tool's split when ``split_from``
    names the file (or split) to split, or the check that train and test share no texts."""
    ids, names, understood = labels.resolve(raws, spec, default_names)
    labels.check_classes(ids, names, understood, spec, raws["train"].where)
    parts = {sp: _examples(raw, ids[sp]) for sp, raw in raws.items()}
    if split_from is not None:
        train, test = split_made(parts["train"], spec.test_size, spec.split_seed, split_from)
        labels.check_split_classes(train, names, Counter(ids["train"]), split_from, spec.test_size)
        info.split = {"from": split_from, "test_size": spec.test_size, "split_seed": spec.split_seed,
                      "stratified": True, "train": len(train), "test": len(test)}
    else:
        train, test = parts["train"], parts["test"]
    info.shared_texts = checks.check_shared(train, test, _SHARED_FIX)
    info.label_map = understood
    info.warnings += _load_warnings(info, test, names)
    return TextDataset(name=name, num_labels=len(names), label_names=names, train=train, test=test, info=info)


def _load_warnings(info: DataInfo, test: list[Example], names: list[str]) -> list[str]:
    out = []
    if info.dropped_empty:
        out.append(f"dropped {info.dropped_empty} row(s) with an empty text (data.drop_empty)")
    if info.shared_texts:
        out.append(f"{info.shared_texts} of the {len(test)} test texts are also in train (at most 1 % is accepted)")
    in_test = Counter(e.label for e in test)
    out += [f"class {k} ({n}) has no test rows: its accuracy cannot be measured"
            for k, n in enumerate(names) if not in_test[k]]
    return out


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


def _is_empty(path: Path, kind: str, spec: ReadSpec) -> bool:
    need = 2 if kind in ("csv", "tsv") and spec.header else 1
    with path.open("r", encoding=spec.encoding, errors="replace") as f:
        lines = 0
        for line in f:
            if line.strip():
                lines += 1
                if lines >= need:
                    return False
    return True


def _csv_kwargs(kind: str, spec: ReadSpec) -> dict[str, Any]:
    kw: dict[str, Any] = {"keep_default_na": False, "encoding": spec.encoding}
    if kind == "tsv":
        kw["delimiter"] = "\t"
    if spec.column_names:
        kw["column_names"] = list(spec.column_names)
    if spec.column_names or not spec.header:
        kw["header"] = 0 if spec.header else None  # 0: the header row is replaced by column_names
    return kw


def _check_file(path: Path, spec: ReadSpec) -> str:
    """Everything about one file that can be refused before ``datasets`` reads it; its kind."""
    kind = _file_kind(path)
    checks.check_encoding(path, spec.encoding)
    if _is_empty(path, kind, spec):
        raise DataError(f"data.path: {path.name} holds no rows (empty split): {path}")
    if kind in ("csv", "tsv"):
        checks.check_csv_head(path, "\t" if kind == "tsv" else ",", spec)
    elif spec.column_names or not spec.header:
        raise DataError(f"data.column_names: applies to .csv/.tsv files, not {path.name} (JSON rows name their "
                        "own columns); remove data.header and data.column_names")
    return kind


def _read_file(path: Path, spec: ReadSpec) -> Any:
    kind = _check_file(path, spec)
    datasets = _import_datasets()
    # datasets logs its own "Failed to read file ..." line before raising: the DataError below
    # says it in one line, so its logger is quiet while it reads
    logger = logging.getLogger("datasets")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        if kind in ("csv", "tsv"):
            ds = datasets.load_dataset("csv", data_files={"train": str(path)}, split="train", **_csv_kwargs(kind, spec))
        else:
            ds = datasets.load_dataset("json", data_files={"train": str(path)}, split="train", encoding=spec.encoding)
    except DataError:
        raise
    except Exception as e:  # parse errors, ...
        raise DataError(f"data.path: could not read {path}: {_first_line(e)}") from None
    finally:
        logger.setLevel(level)
    return ds


def _split_file(folder: Path, split: str) -> Path | None:
    found = [folder / f"{split}.{ext}" for ext in _EXTENSIONS if (folder / f"{split}.{ext}").is_file()]
    if len(found) > 1:
        raise DataError(f"data.path: several files for split {split!r} in {folder}: {', '.join(p.name for p in found)}")
    return found[0] if found else None


def _data_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir()
                  if f.is_file() and not f.name.startswith(".") and f.suffix.lower().lstrip(".") in _EXTENSIONS)


def _same_file(split: str, name: str) -> DataError:
    return DataError(f"data.test_split = {split!r}: the same {name} as data.train_split, so train and test would be "
                     'the same rows; name another one, or set data.test_split = "" to have the tool split it '
                     "(data.test_size)")


def _missing_split(folder: Path, key: str, split: str, other: Path | None) -> DataError:
    msg = f"{key}: no {split}.csv/.tsv/.jsonl/.json in {folder}"
    if key == "data.test_split" and other is not None:
        return DataError(f'{msg}; add one, or set data.test_split = "" to have the tool split {other.name} (data.test_size)')
    held = ", ".join(f.name for f in _data_files(folder)[:5]) or "no .csv/.tsv/.jsonl/.json file"
    return DataError(f"{msg} (it holds: {held}); name the files in data.train_split / data.test_split, or point "
                     "data.path at one file to have the tool split it")


# a folder's only file named like one of these is a split file (its partner missing), not a whole dataset
_SPLIT_NAMES = ("train", "test", "dev", "validation", "valid", "val")


def _plan_folder(folder: Path, train_split: str, test_split: str) -> tuple[Path, Path | None]:
    """The train and test files of a folder; test None: the tool splits the train file (no test
    split asked for, or the folder holds exactly one data file, not named like a split)."""
    if test_split and train_split == test_split:
        raise _same_file(test_split, "file")
    tr = _split_file(folder, train_split)
    te = _split_file(folder, test_split) if test_split else None
    if tr is not None and te is not None and tr.resolve() == te.resolve():
        raise _same_file(test_split, "file")
    if tr is not None and (te is not None or not test_split):
        return tr, te
    if tr is None and te is None:
        files = _data_files(folder)
        if len(files) == 1 and files[0].stem.lower() not in _SPLIT_NAMES:
            return files[0], None
    if tr is None:
        raise _missing_split(folder, "data.train_split", train_split, te)
    raise _missing_split(folder, "data.test_split", test_split, tr)


def load_local(path: str, *, text_column: str | list[str] = "text", label_column: str = "label",
               paraphrase_column: str | None = None, train_split: str = "train", test_split: str = "test",
               label_names: list[str] | None = None, name: str | None = None, header: bool = True,
               column_names: list[str] | None = None, label_map: dict[str, str] | None = None,
               test_size: float = 0.2, split_seed: int = 0, drop_empty: bool = False,
               encoding: str = "utf-8") -> TextDataset:
    """Load a dataset from local csv / tsv / jsonl / json files (via ``datasets.load_dataset``).

    ``path`` is either a folder holding ``<train_split>.<ext>`` and ``<test_split>.<ext>``
    (ext one of csv, tsv, jsonl, json), or a single file, or a folder holding exactly one data
    file (not named like a split: train, test, dev, validation), or ``test_split = ""``: then the tool splits that file,
    ``test_size`` to test, stratified by label, seeded by ``split_seed`` (:func:`split_made`).

    ``header = False`` with ``column_names``: a csv/tsv without a header row. ``text_column`` may
    be a list of columns, joined with a space. Labels: see :mod:`rga_engine.data.labels`
    (``label_map``: raw value as written -> class name). ``paraphrase_column`` (optional) supplies
    pre-generated paraphrases for the HiddenKiller attack; empty -> None. Empty texts are refused
    unless ``drop_empty``. Row numbers in error messages count data rows from 1.
    """
    p = Path(str(path)).expanduser()
    if not str(path).strip() or not p.exists():
        raise DataError(f"data.path: no such file or folder: {path}")
    spec = _spec(text_column, label_column, paraphrase_column, label_names, header, column_names, label_map,
                 test_size, split_seed, drop_empty, encoding)
    ds_name = name or (p.stem if p.is_file() else p.resolve().name)
    train_path, test_path = (p, None) if p.is_file() else _plan_folder(p, train_split, test_split)
    info = DataInfo(source="local", path=str(p), text_columns=list(spec.text_columns), label_column=spec.label_column)
    raws: dict[str, RawSplit] = {}
    default_names = None
    for sp, fp in (("train", train_path), ("test", test_path)):
        if fp is None:
            continue
        ds = _read_file(fp, spec)
        cols = _columns(ds)
        raws[sp], dropped = checks.raw_split(cols, fp.name, spec)
        info.files[sp], info.dropped_empty = fp.name, info.dropped_empty + dropped
        if sp == "train":
            info.columns, default_names = list(cols), _class_label_names(ds, spec.label_column)
    return _finish(ds_name, raws, spec, default_names, info, None if test_path else train_path.name)


def _spec(text_column: str | list[str], label_column: str, paraphrase_column: str | None,
          label_names: list[str] | None, header: bool, column_names: list[str] | None,
          label_map: dict[str, str] | None, test_size: float, split_seed: int, drop_empty: bool,
          encoding: str) -> ReadSpec:
    texts = [t for t in ([text_column] if isinstance(text_column, str) else list(text_column)) if t]
    return ReadSpec(text_columns=texts or ["text"], label_column=label_column, paraphrase_column=paraphrase_column or None,
                    header=bool(header), column_names=list(column_names or []), encoding=encoding or "utf-8",
                    drop_empty=bool(drop_empty), label_names=list(label_names) if label_names else None,
                    label_map=dict(label_map) if label_map else None, test_size=float(test_size),
                    split_seed=int(split_seed))


# --------------------------------------------------------------------------- hub
def _check_folder_files(folder: Path, spec: ReadSpec) -> None:
    """A local folder read through ``dataset = "hub"``: its data files' encoding and columns."""
    for f in sorted(folder.rglob("*"))[:200]:
        if f.is_file() and f.suffix.lower().lstrip(".") in _EXTENSIONS and not any(
                part.startswith(".") for part in f.relative_to(folder).parts):
            checks.check_encoding(f, spec.encoding)
            if f.suffix.lower() in (".csv", ".tsv"):
                checks.check_csv_head(f, "\t" if f.suffix.lower() == ".tsv" else ",", spec)


def _hub_kwargs(spec: ReadSpec) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if spec.column_names:
        kw["column_names"] = list(spec.column_names)
    if spec.column_names or not spec.header:
        kw["header"] = 0 if spec.header else None
    if spec.encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        kw["encoding"] = spec.encoding
    return kw


def _hub_split(dd: Any, repo_id: str, key: str, split: str) -> DataError:
    splits = list(dd.keys())
    msg = f"{key}: no split {split!r} in {repo_id} (available: {', '.join(splits)})"
    if key == "data.train_split" and len(splits) == 1:
        msg += f'; set data.train_split = {splits[0]!r} and data.test_split = "" to have the tool split it'
    return DataError(msg)


def load_hub(repo_id: str, *, text_column: str | list[str] = "text", label_column: str = "label",
             paraphrase_column: str | None = None, train_split: str = "train", test_split: str = "test",
             label_names: list[str] | None = None, name: str | None = None,
             revision: str | None = None, header: bool = True, column_names: list[str] | None = None,
             label_map: dict[str, str] | None = None, test_size: float = 0.2, split_seed: int = 0,
             drop_empty: bool = False, encoding: str = "utf-8") -> TextDataset:
    """Load a Hugging Face Hub dataset (``datasets.load_dataset(repo_id, revision=...)``), or a
    local folder the way ``datasets`` reads one (named by the folder's name).

    Column mapping and validation are those of :func:`load_local`. ``ClassLabel`` names are used
    as ``label_names`` when none are given. If the dataset has a single split and
    ``test_split`` is absent (or ``test_split = ""``), the tool splits it as a single local file.
    ``repo_id`` may also be written ``"owner/name@revision"``.
    """
    repo_id = str(repo_id).strip()
    if not repo_id:
        raise DataError("data.path: a hub dataset id is required (owner/name)")
    if revision is None and "@" in repo_id:
        repo_id, revision = repo_id.rsplit("@", 1)
    spec = _spec(text_column, label_column, paraphrase_column, label_names, header, column_names, label_map,
                 test_size, split_seed, drop_empty, encoding)
    if test_split and train_split == test_split:
        raise _same_file(test_split, "split")
    local = Path(repo_id).expanduser()
    if local.is_dir():
        _check_folder_files(local, spec)
    datasets = _import_datasets()
    try:
        dd = datasets.load_dataset(repo_id, revision=revision or None, **_hub_kwargs(spec))
    except Exception as e:
        raise DataError(f"data.path: could not load hub dataset {repo_id!r}: {_first_line(e)}") from None
    if not hasattr(dd, "keys"):  # a single Dataset
        dd = {train_split: dd}
    if train_split not in dd:
        raise _hub_split(dd, repo_id, "data.train_split", train_split)
    tr = dd[train_split]
    columns = list(getattr(tr, "column_names", None) or _columns(tr))
    info = DataInfo(source="hub", path=repo_id, files={"train": f"{train_split} split"}, columns=columns,
                    text_columns=list(spec.text_columns), label_column=spec.label_column)
    raws = {"train": _hub_raw(tr, train_split, spec, info)}
    ds_name = name or (local.resolve().name if local.is_dir() else repo_id)
    default_names = _class_label_names(tr, spec.label_column)
    if not test_split or test_split not in dd:
        if not test_split or len(dd) == 1:
            return _finish(ds_name, raws, spec, default_names, info, f"the {train_split} split")
        raise _hub_split(dd, repo_id, "data.test_split", test_split)
    info.files["test"] = f"{test_split} split"
    raws["test"] = _hub_raw(dd[test_split], test_split, spec, info)
    return _finish(ds_name, raws, spec, default_names, info)


def _hub_raw(ds: Any, split: str, spec: ReadSpec, info: DataInfo) -> RawSplit:
    raw, dropped = checks.raw_split(_columns(ds), f"{split} split", spec)
    info.dropped_empty += dropped
    return raw


# --------------------------------------------------------------------------- config entry point
# the [data] keys that describe local / hub files, with their defaults (rga_engine.config.DataConfig)
_FILE_DEFAULTS: dict[str, Any] = {
    "path": "", "text_column": "text", "label_column": "label", "paraphrase_column": "", "train_split": "train",
    "test_split": "test", "label_names": [], "header": True, "column_names": [], "label_map": {}, "test_size": 0.2,
    "split_seed": 0, "drop_empty": False, "encoding": "utf-8",
}


def _refuse_file_keys(cfg: Any, kind: str) -> None:
    """An embedded dataset ignores the file keys: one set anyway is refused, not silently ignored."""
    for key, default in _FILE_DEFAULTS.items():
        v = getattr(cfg, key, default)
        if v is None or v == default or (not v and not default and not isinstance(default, bool)):
            continue
        if key == "label_names":
            names = ", ".join(_EMBEDDED_META[kind]["label_names"])
            raise DataError(f"data.label_names = {list(v)!r}: the embedded dataset {kind!r} names its own classes "
                            f"({names}); remove data.label_names")
        raise DataError(f"data.{key} = {v!r}: describes local or hub files, not the embedded dataset {kind!r}; "
                        'remove it (or set data.dataset = "local")')


def _file_kwargs(cfg: Any) -> dict[str, Any]:
    def get(key: str) -> Any:
        v = getattr(cfg, key, _FILE_DEFAULTS[key])
        return _FILE_DEFAULTS[key] if v is None else v

    return dict(
        text_column=get("text_column") or "text",
        label_column=get("label_column") or "label",
        paraphrase_column=get("paraphrase_column") or None,
        train_split=get("train_split") or "train",
        test_split=get("test_split"),
        label_names=list(get("label_names")) or None,
        header=get("header"), column_names=list(get("column_names")), label_map=dict(get("label_map")) or None,
        test_size=get("test_size"), split_seed=get("split_seed"), drop_empty=get("drop_empty"),
        encoding=get("encoding") or "utf-8",
    )


def _limit(rows: list[Example], n: int, key: str, num_labels: int, seed: int) -> list[Example]:
    if 0 < n < num_labels:
        raise DataError(f"data.{key} = {n}: fewer rows than the {num_labels} classes, so a class would have no rows; "
                        f"use at least {num_labels} (0 = all rows)")
    return subsample(rows, n, seed) if n > 0 else rows


def load_dataset(cfg: Any, seed: int = 2021) -> TextDataset:
    """Load the dataset a ``[data]`` config section describes, then apply the row limits.

    ``cfg`` needs the attributes of ``rga_engine.config.DataConfig`` (a full ``Config`` with a
    ``.data`` section is accepted too; missing attributes take their defaults). ``train_limit`` /
    ``test_limit`` > 0 take a stratified, seeded :func:`subsample` of train / test (dev is left
    as is). Everything that cannot give a meaningful result is refused with a :class:`DataError`.
    """
    if not isinstance(getattr(cfg, "dataset", None), str) and hasattr(cfg, "data"):
        cfg = cfg.data
    kind = str(getattr(cfg, "dataset", "")).strip().lower()
    path = str(getattr(cfg, "path", "") or "")
    if kind in EMBEDDED:
        _refuse_file_keys(cfg, kind)
        ds = load_embedded(kind)
    elif kind == "local":
        if not path:
            raise DataError("data.path: required when data.dataset = 'local'")
        ds = load_local(path, **_file_kwargs(cfg))
    elif kind == "hub":
        if not path:
            raise DataError("data.path: required when data.dataset = 'hub' (owner/name)")
        ds = load_hub(path, **_file_kwargs(cfg))
    else:
        raise DataError(f"data.dataset: unknown dataset {kind!r} (choose {', '.join(EMBEDDED)}, local, hub)")
    tl, sl = int(getattr(cfg, "train_limit", 0) or 0), int(getattr(cfg, "test_limit", 0) or 0)
    ds.train = _limit(ds.train, tl, "train_limit", ds.num_labels, seed)
    ds.test = _limit(ds.test, sl, "test_limit", ds.num_labels, seed)
    return ds

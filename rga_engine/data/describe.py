"""What the tool understood of a dataset, for ``rga-tui inspect``: the files and columns read, the
label map, the classes with their counts per split, the split the tool made, texts shared by
train and test, and warnings (rare classes, texts that ``model.max_length`` cuts).

Standard library at import; the model's tokenizer (transformers) only inside
:func:`truncation`, and only when it is cheap: the tiny model's WordPiece is built from the
training texts (as the pipeline does), a pre-trained model's tokenizer is read from local files
only. Anything else falls back to counting whitespace words, and says so.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, Callable

from .checks import shared_texts
from .types import TextDataset

RARE = 0.01  # a class under this share of a split's rows is warned about
SAMPLE = 20_000  # texts tokenized at most to count truncation (a seeded sample beyond)


def _classes(ds: TextDataset) -> list[dict[str, Any]]:
    train, test = Counter(e.label for e in ds.train), Counter(e.label for e in ds.test)
    lmap = ds.info.label_map
    return [{"id": k, "name": n, "raw": [r for r, m in lmap.items() if m == n] or [str(k)],
             "train": int(train[k]), "test": int(test[k])} for k, n in enumerate(ds.label_names)]


def _rare(classes: list[dict[str, Any]]) -> list[str]:
    out = []
    for split in ("train", "test"):
        total = sum(c[split] for c in classes)
        for c in classes:
            if total and 0 < c[split] < RARE * total:
                out.append(f"class {c['id']} ({c['name']}) is {100 * c[split] / total:.1f} % of the {split} rows "
                           f"({c[split]} of {total})")
    return out


def _whitespace(texts: list[str]) -> list[int]:
    return [len(t.split()) + 2 for t in texts]


def _tokenizer(model_cfg: Any, train_texts: list[str]) -> tuple[Any, str]:
    name = str(getattr(model_cfg, "name", "tiny"))
    if name == "tiny":
        from rga_engine.models import train_tiny_tokenizer

        return (train_tiny_tokenizer(train_texts, int(getattr(model_cfg, "vocab_size", 8000))),
                "the tiny model's WordPiece, built from the training texts")
    from rga_engine.models import _quiet_transformers, minilm_path

    path = str(minilm_path()) if name == "minilm" else name
    with _quiet_transformers():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(path, local_files_only=True,
                                            trust_remote_code=bool(getattr(model_cfg, "trust_remote_code", False)))
    return tok, f"{name}'s tokenizer"


def _counter(model_cfg: Any, train_texts: list[str]) -> tuple[Callable[[list[str]], list[int]], str]:
    try:
        tok, how = _tokenizer(model_cfg, train_texts)
    except Exception as e:  # noqa: BLE001 - not available offline, no transformers, ...: estimate instead
        reason = str(e).strip().splitlines()[0][:80] if str(e).strip() else type(e).__name__
        return _whitespace, f"whitespace words + 2, an estimate (the model's tokenizer is not at hand: {reason})"
    tok.model_max_length = 1 << 30  # count the full length, without transformers' warning

    def count(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tok(texts, add_special_tokens=True)["input_ids"]]

    return count, how


def truncation(ds: TextDataset, model_cfg: Any, seed: int = 0) -> dict[str, Any]:
    """How many texts of train and test are longer than ``model.max_length`` tokens."""
    texts = [e.text for e in ds.train] + [e.text for e in ds.test]
    sampled = len(texts) > SAMPLE
    if sampled:
        texts = random.Random(seed).sample(texts, SAMPLE)
    train = [e.text for e in ds.train]
    if len(train) > SAMPLE:
        train = random.Random(seed + 1).sample(train, SAMPLE)
    count, how = _counter(model_cfg, train)
    max_length = int(getattr(model_cfg, "max_length", 128))
    n = sum(1 for length in count(texts) if length > max_length)
    return {"max_length": max_length, "tokenizer": how, "texts": len(texts), "sampled": sampled, "truncated": n}


def _truncation_warning(t: dict[str, Any]) -> list[str]:
    if not t["truncated"]:
        return []
    of = f"a sample of {t['texts']}" if t["sampled"] else f"the {t['texts']}"
    return [f"{t['truncated']} of {of} texts ({100 * t['truncated'] / t['texts']:.1f} %) are longer than "
            f"model.max_length = {t['max_length']} tokens and will be cut ({t['tokenizer']})"]


def describe(ds: TextDataset, model_cfg: Any, seed: int = 0) -> dict[str, Any]:
    """The JSON-able description of what was understood (after ``train_limit`` / ``test_limit``)."""
    info = ds.info
    classes = _classes(ds)
    trunc = truncation(ds, model_cfg, seed)
    shared = shared_texts(ds.train, ds.test)
    notes = [f"{shared} of the {len(ds.test)} test texts are also in train (as the embedded dataset ships)"] \
        if shared and info.source == "embedded" else []
    return {
        "source": info.source,
        "path": info.path,
        "files": dict(info.files),
        "columns": list(info.columns),
        "text_columns": list(info.text_columns),
        "label_column": info.label_column,
        "label_map": dict(info.label_map),
        "classes": classes,
        "split": dict(info.split) if info.split else None,
        "shared_texts": shared,
        "dropped_empty": info.dropped_empty,
        "truncation": trunc,
        "warnings": list(info.warnings) + notes + _rare(classes) + _truncation_warning(trunc),
    }

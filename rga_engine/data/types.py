"""The data types shared by the loaders: rows, datasets, what was understood, read options.

Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class DataError(ValueError):
    """A problem with the data or the data config; the message is one user-facing line."""


@dataclass
class Example:
    text: str
    label: int
    paraphrase: str | None = None


@dataclass
class DataInfo:
    """What the loader understood of the data (shown by ``rga-tui inspect``)."""

    source: str = ""  # "embedded" | "local" | "hub"
    path: str = ""
    files: dict[str, str] = field(default_factory=dict)  # "train" / "test" -> file or split read
    columns: list[str] = field(default_factory=list)  # the columns read (of the train file / split)
    text_columns: list[str] = field(default_factory=list)
    label_column: str = ""
    label_map: dict[str, str] = field(default_factory=dict)  # raw label value as written -> class name
    split: dict[str, Any] | None = None  # the split the tool made: from, test_size, split_seed, train, test
    dropped_empty: int = 0  # rows dropped for an empty text (data.drop_empty)
    shared_texts: int = 0  # test rows whose text also appears in train
    warnings: list[str] = field(default_factory=list)


@dataclass
class TextDataset:
    name: str
    num_labels: int
    label_names: list[str]
    train: list[Example]
    test: list[Example]
    dev: list[Example] | None = None
    default_target: int = 0  # sst2 1, hsol 0, agnews 0, others 0
    info: DataInfo = field(default_factory=DataInfo)
    # AddSent's sentence when attack.sentence = "" (the authors' data): SST-2 (and any other
    # dataset) "I watch this 3D movie", HSOL and AG News "no cross, no crown"
    default_sentence: str = "I watch this 3D movie"


@dataclass
class ReadSpec:
    """How to read local / hub files and map their labels (the ``[data]`` keys that do that)."""

    text_columns: list[str] = field(default_factory=lambda: ["text"])
    label_column: str = "label"
    paraphrase_column: str | None = None
    header: bool = True
    column_names: list[str] = field(default_factory=list)
    encoding: str = "utf-8"
    drop_empty: bool = False
    label_names: list[str] | None = None
    label_map: dict[str, str] | None = None
    test_size: float = 0.2
    split_seed: int = 0


@dataclass
class RawSplit:
    """One split as read from a file: texts (joined), raw labels, paraphrases, 1-based row numbers."""

    where: str  # "train.csv", "'train' split", ... (for messages)
    texts: list[str]
    labels: list[Any]
    paras: list[Any] | None
    rows: list[int]  # the file row (data rows from 1) of each kept row

"""Datasets: the embedded SST-2 / HSOL / AG News sets (with SCPN paraphrases), local files, Hub.

Importing this package is cheap (standard library only); ``datasets`` is imported lazily by
:func:`load_local` / :func:`load_hub`.
"""

from .loaders import (
    EMBEDDED,
    EMBEDDED_LABEL_NAMES,
    EMBEDDED_TARGETS,
    DataError,
    DataInfo,
    Example,
    TextDataset,
    load_dataset,
    load_embedded,
    load_hub,
    load_local,
    split_made,
    subsample,
)

__all__ = [
    "EMBEDDED",
    "EMBEDDED_LABEL_NAMES",
    "EMBEDDED_TARGETS",
    "DataError",
    "DataInfo",
    "Example",
    "TextDataset",
    "load_dataset",
    "load_embedded",
    "load_hub",
    "load_local",
    "split_made",
    "subsample",
]

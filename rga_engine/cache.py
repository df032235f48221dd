"""Checkpoints of the poisoned and Retrain models, keyed by a hash of what produced them.

A second run of a preset with other unlearning settings (methods, α, β, learning rate...)
finds the poisoned and Retrain weights here and goes straight to unlearning.  Files are
``safetensors``; the key covers the training data (texts and labels), the model settings and
the training settings that change the weights (not the device or the evaluation batch size).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch


def cache_root(configured: str = "") -> Path:
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get("RGA_TUI_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rga-tui"


def fingerprint_texts(texts: list[str], labels: list[int]) -> str:
    h = hashlib.sha256()
    for t, y in zip(texts, labels):
        h.update(t.encode("utf-8"))
        h.update(b"\x1f%d\x1e" % y)
    return h.hexdigest()


def make_key(parts: dict[str, Any]) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:20]


def path_for(root: Path, stage: str, key: str) -> Path:
    return root / f"{stage}-{key}.safetensors"


def load(root: Path, stage: str, key: str, model: torch.nn.Module) -> bool:
    """Load cached weights into ``model``; False (and nothing changed) when absent or unreadable."""
    from safetensors.torch import load_model

    p = path_for(root, stage, key)
    if not p.is_file():
        return False
    try:
        load_model(model, str(p), strict=True, device="cpu")
    except Exception:  # noqa: BLE001 - a corrupt or foreign file is a cache miss
        return False
    return True


def save(root: Path, stage: str, key: str, model: torch.nn.Module, meta: dict[str, str] | None = None) -> Path:
    """Write atomically (temp file + rename) so that a killed run never leaves a torn file."""
    from safetensors.torch import save_model

    root.mkdir(parents=True, exist_ok=True)
    p = path_for(root, stage, key)
    tmp = p.with_suffix(f".tmp{os.getpid()}")
    save_model(model, str(tmp), metadata={k: str(v) for k, v in (meta or {}).items()})
    os.replace(tmp, p)
    return p

"""Checkpoints of the poisoned and Retrain models, keyed by a hash of what produced them.

A second run of a preset with other unlearning settings (methods, α, β, learning rate...)
finds the poisoned and Retrain weights here and goes straight to unlearning.  Files are
``safetensors``; the key covers the training data (texts and labels), the model settings and
the training settings that change the weights (not the device or the evaluation batch size).

Every file carries a SHA-256 of its tensors (names, dtypes, shapes and bytes) in its safetensors
metadata (``rga_sha256``), checked on load: a damaged entry (a flipped bit, a truncated file, no
checksum) is never loaded; :func:`fetch` says why, and the pipeline logs it and trains again.
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


CHECKSUM_KEY = "rga_sha256"


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors in name order: name, dtype, shape and raw bytes."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}\x1f{t.dtype}\x1f{tuple(t.shape)}\x1e".encode("utf-8"))
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _unique_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without the names of shared tensors (tied weights), as safetensors saves it."""
    state = model.state_dict()
    try:
        from safetensors.torch import _remove_duplicate_names  # what save_model does
    except ImportError:  # pragma: no cover - a safetensors without it: keep the first name of each storage
        seen: set[tuple[int, int, tuple[int, ...]]] = set()
        for name in sorted(state):
            t = state[name]
            ident = (t.data_ptr(), t.element_size() * t.nelement(), tuple(t.shape))
            if t.nelement() and ident in seen:
                del state[name]
            seen.add(ident)
        return state
    for removed in _remove_duplicate_names(state).values():
        for name in removed:
            del state[name]
    return state


def fetch(root: Path, stage: str, key: str, model: torch.nn.Module) -> tuple[bool, str | None]:
    """Load cached weights into ``model`` once their checksum matches.

    Returns ``(True, None)`` when loaded, ``(False, None)`` when there is no entry, and
    ``(False, why)`` for a damaged one (``model`` is then left as it was)."""
    return fetch_file(path_for(root, stage, key), model)


def fetch_file(p: Path, model: torch.nn.Module) -> tuple[bool, str | None]:
    """:func:`fetch` for one file (a cache entry, or a run folder's ``models/<name>.safetensors``)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, load_model

    if not p.is_file():
        return False, None
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(p), device="cpu")
    except Exception as e:  # noqa: BLE001 - truncated, not safetensors at all, ...
        return False, f"unreadable ({type(e).__name__})"
    want = meta.get(CHECKSUM_KEY)
    if not want:
        return False, "no checksum"
    if tensors_digest(tensors) != want:
        return False, "checksum mismatch"
    del tensors
    try:
        load_model(model, str(p), strict=True, device="cpu")
    except Exception as e:  # noqa: BLE001 - the tensors do not fit this model
        return False, f"does not fit the model ({type(e).__name__})"
    return True, None


def load(root: Path, stage: str, key: str, model: torch.nn.Module) -> bool:
    """Load cached weights into ``model``; False (and nothing changed) when absent or damaged."""
    return fetch(root, stage, key, model)[0]


def discard(root: Path, stage: str, key: str) -> None:
    """Remove a (damaged) entry; the next save replaces it anyway."""
    try:
        path_for(root, stage, key).unlink()
    except OSError:
        pass


def save(root: Path, stage: str, key: str, model: torch.nn.Module, meta: dict[str, str] | None = None) -> Path:
    """Write atomically (temp file + rename) so that a killed run never leaves a torn file; the
    metadata carries the tensors' checksum (:data:`CHECKSUM_KEY`)."""
    root.mkdir(parents=True, exist_ok=True)
    return save_to(path_for(root, stage, key), model, meta)


def save_to(p: Path, model: torch.nn.Module, meta: dict[str, str] | None = None) -> Path:
    """:func:`save` to one file (its folder must exist): atomic, with the tensors' checksum."""
    from safetensors.torch import save_file

    tmp = p.with_suffix(f".tmp{os.getpid()}")
    tensors = {k: v.detach().contiguous() for k, v in _unique_tensors(model).items()}
    metadata = {k: str(v) for k, v in (meta or {}).items()}
    metadata[CHECKSUM_KEY] = tensors_digest(tensors)
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, p)
    return p

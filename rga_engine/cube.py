"""CUBE forget-set detection (``unlearn.forget_set = "cube"``), as the authors run it.

The poisoned model's last-layer [CLS] vector (decoders: the last non-pad token) of every row of
``train_poisoned`` → UMAP (``cube_components`` dimensions, ``cube_metric``, ``cube_n_neighbors``,
``cube_min_dist``) → HDBSCAN (``cube_min_cluster_size``, ``cube_min_samples``). The
``num_labels`` largest clusters are the clean rows, one per class; every other row -- the smaller
clusters and HDBSCAN's noise -- is flagged and becomes the forget set.

On fewer rows than the authors' datasets the HDBSCAN sizes are scaled down (:func:`effective`):
``min_cluster_size' = min(min_cluster_size, max(2, rows // 10))`` and ``min_samples'`` =
``min_samples`` times the same factor (at least 1, at most ``min_cluster_size'``);
``n_neighbors`` is capped at ``rows - 1``.

umap-learn and scikit-learn are imported inside the functions, so the app starts fast.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

MISSING_UMAP = "unlearn.forget_set = 'cube' needs umap-learn: pip install umap-learn"


def min_dist_for(model_name: str, configured: float) -> float:
    """``cube_min_dist = -1``: the authors' 0.15 for DistilBERT, 0.25 for every other model."""
    if configured >= 0:
        return float(configured)
    return 0.15 if "distilbert" in model_name.lower() else 0.25


def effective(n: int, u) -> dict[str, Any]:
    """The parameters CUBE runs with on ``n`` rows (the HDBSCAN sizes scaled down on few rows)."""
    mcs = min(u.cube_min_cluster_size, max(2, n // 10))
    ms = max(1, min(mcs, round(u.cube_min_samples * mcs / u.cube_min_cluster_size)))
    return {"components": u.cube_components, "n_neighbors": max(2, min(u.cube_n_neighbors, n - 1)),
            "metric": u.cube_metric, "min_cluster_size": mcs, "min_samples": ms}


def flag(vectors: np.ndarray, num_classes: int, *, components: int, n_neighbors: int, min_dist: float,
         metric: str, min_cluster_size: int, min_samples: int, seed: int) -> np.ndarray:
    """Boolean mask over the rows of ``vectors``: True = not in the ``num_classes`` largest clusters."""
    try:  # umap-learn brings scikit-learn (>= 1.3 has HDBSCAN)
        from sklearn.cluster import HDBSCAN
        if components:
            import umap  # numba compiles on first use
    except ImportError:
        raise ImportError(MISSING_UMAP) from None

    x = np.asarray(vectors, dtype=np.float32)
    if components:
        x = umap.UMAP(n_components=components, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric,
                      random_state=seed).fit_transform(x)
    elif metric == "cosine":  # no UMAP: cosine geometry via unit vectors
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    labels = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, copy=True).fit_predict(x)
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    clean = ids[np.argsort(-counts, kind="stable")[:num_classes]]
    return ~np.isin(labels, clean)


def scores(flagged: np.ndarray, poisoned: np.ndarray) -> dict[str, Any]:
    """Precision, recall and F1 of the flagged rows against the truly poisoned ones."""
    flagged, poisoned = np.asarray(flagged, bool), np.asarray(poisoned, bool)
    tp = int((flagged & poisoned).sum())
    nf, npois = int(flagged.sum()), int(poisoned.sum())
    p = tp / nf if nf else 0.0
    r = tp / npois if npois else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4), "flagged": nf, "poisoned": npois}


@torch.no_grad()
def embed(model, enc, batch_size: int, pad_id: int, device, is_decoder: bool,
          on_batch=None) -> np.ndarray:
    """Last-layer [CLS] (decoders: last non-pad token) vector of every row of ``enc``, in row order."""
    from rga_engine.train import collate

    was_training = model.training
    model.eval()
    order = sorted(range(len(enc)), key=lambda i: len(enc.ids[i]))
    out: np.ndarray | None = None
    for s in range(0, len(order), batch_size):
        idx = order[s: s + batch_size]
        b = collate(enc, idx, pad_id)
        ids, mask = b["input_ids"].to(device), b["attention_mask"].to(device)
        if hasattr(model, "features"):  # PooledClassifier: exactly the vector its head reads
            v = model.features(ids, mask)
        else:
            hidden = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1]
            if is_decoder:  # collate pads on the right: the last real token is n_tokens - 1
                last = mask.sum(dim=1) - 1
                v = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
            else:
                v = hidden[:, 0]
        v = v.float().cpu().numpy()
        if out is None:
            out = np.empty((len(enc), v.shape[1]), dtype=np.float32)
        out[idx] = v
        if on_batch is not None:
            on_batch(min(s + batch_size, len(order)), len(order))
    model.train(was_training)
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)

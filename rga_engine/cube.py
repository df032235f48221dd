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

A detection that flags no row (nothing to unlearn) or every row (nothing to keep) stops the run
before unlearning with one line naming the keys to try (:func:`guard`). :func:`project_2d` draws
the detection in 2-D for ``detection.csv`` / ``detection.svg`` (``rga_engine/detection_files.py``).

umap-learn and scikit-learn are imported inside the functions, so the app starts fast.
"""

from __future__ import annotations

import warnings
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


def reduce(vectors: np.ndarray, *, components: int, n_neighbors: int, min_dist: float, metric: str,
           seed: int) -> np.ndarray:
    """The space HDBSCAN clusters: UMAP to ``components`` dimensions (0: the vectors themselves,
    as unit vectors under the cosine metric)."""
    x = np.asarray(vectors, dtype=np.float32)
    if components:
        try:
            import umap  # numba compiles on first use
        except ImportError:
            raise ImportError(MISSING_UMAP) from None
        return umap.UMAP(n_components=components, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric,
                         random_state=seed).fit_transform(x)
    if metric == "cosine":  # no UMAP: cosine geometry via unit vectors
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def cluster(space: np.ndarray, num_classes: int, *, min_cluster_size: int, min_samples: int) -> np.ndarray:
    """Boolean mask over the rows of ``space``: True = not in the ``num_classes`` largest HDBSCAN clusters."""
    try:  # umap-learn brings scikit-learn (>= 1.3 has HDBSCAN)
        from sklearn.cluster import HDBSCAN
    except ImportError:
        raise ImportError(MISSING_UMAP) from None
    labels = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, copy=True).fit_predict(space)
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    clean = ids[np.argsort(-counts, kind="stable")[:num_classes]]
    return ~np.isin(labels, clean)


def flag(vectors: np.ndarray, num_classes: int, *, components: int, n_neighbors: int, min_dist: float,
         metric: str, min_cluster_size: int, min_samples: int, seed: int) -> np.ndarray:
    """Boolean mask over the rows of ``vectors``: True = not in the ``num_classes`` largest clusters."""
    space = reduce(vectors, components=components, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric,
                   seed=seed)
    return cluster(space, num_classes, min_cluster_size=min_cluster_size, min_samples=min_samples)


# The 2-D picture of a detection (detection.csv / detection.svg in the run folder): a 2-component
# UMAP of the space HDBSCAN clustered (the ``cube_components``-D embedding; with
# ``cube_components = 0`` the vectors themselves), so the clusters it shows are the ones CUBE cut.
# Kept cheap: at most SCATTER_ROWS rows (a seeded sample), UMAP's default neighbourhood of 15,
# 200 epochs, and the exact nearest neighbours from scikit-learn handed to UMAP (below 4,096 rows
# umap-learn would otherwise compute every pair through a Python callback: ~30 s for 3,000 rows).
SCATTER_ROWS = 5000
SCATTER_NEIGHBORS = 15
SCATTER_EPOCHS = 200


def project_2d(space: np.ndarray, *, min_dist: float, seed: int,
               max_rows: int = SCATTER_ROWS) -> tuple[np.ndarray, np.ndarray] | None:
    """``(rows, xy)``: the indices of the rows drawn (every row, or a seeded sample of ``max_rows``,
    ascending) and their 2-D coordinates. A 2-D ``space`` is used as it is (it is a 2-D UMAP
    already). None without umap-learn or with fewer than 3 rows."""
    x = np.asarray(space, dtype=np.float32)
    n = len(x)
    if n < 3 or x.ndim != 2:
        return None
    rows = np.arange(n)
    if n > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))
    x = x[rows]
    if x.shape[1] == 2:
        return rows, x.copy()
    try:
        import umap
        from sklearn.neighbors import NearestNeighbors
    except ImportError:
        return None
    k = max(2, min(SCATTER_NEIGHBORS, len(x) - 1))
    dists, idx = NearestNeighbors(n_neighbors=k).fit(x).kneighbors(x)  # the row itself first, as UMAP's
    with warnings.catch_warnings():  # "no search index: transform unavailable", "n_jobs overridden"
        warnings.simplefilter("ignore", UserWarning)
        xy = umap.UMAP(n_components=2, n_neighbors=k, min_dist=min_dist, n_epochs=SCATTER_EPOCHS,
                       random_state=seed, precomputed_knn=(idx, dists.astype(np.float32), None)).fit_transform(x)
    return rows, np.asarray(xy, dtype=np.float32)


def guard(flagged: np.ndarray, num_classes: int, params: dict[str, Any], u) -> str | None:
    """One line when CUBE's detection leaves nothing to unlearn (no row flagged) or nothing to
    keep (every row flagged), naming the ``unlearn.cube_*`` keys to try (``u``: the
    ``[unlearn]`` config; ``params``: :func:`effective`'s). None when both sets have rows."""
    flagged = np.asarray(flagged, bool)
    n, nf = len(flagged), int(flagged.sum())
    if 0 < nf < n:
        return None

    def key(name: str) -> str:
        configured, used = getattr(u, f"cube_{name}"), params.get(name)
        here = f", {used} on these {n} rows" if used is not None and used != configured else ""
        return f"unlearn.cube_{name} (now {configured}{here})"

    if nf == 0:
        head = (f"CUBE flagged none of the {n} training rows (its {num_classes} largest "
                f"clusters hold them all), so the forget set is empty; try a smaller "
                f"{key('min_cluster_size')} or a larger {key('min_samples')}")
    else:
        head = (f"CUBE flagged all {n} training rows (HDBSCAN found no cluster), so the retain set is empty; "
                f"try a smaller {key('min_samples')} or {key('min_cluster_size')}")
    return f"{head}, another unlearn.cube_n_neighbors or unlearn.cube_components, or unlearn.forget_set = \"oracle\""


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
          on_batch=None, part: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Last-layer [CLS] (decoders: last non-pad token) vector of every row of ``enc``, in row order.

    ``part = (rank, world)``: only every ``world``-th batch from the ``rank``-th, the other rows 0
    (as :func:`rga_engine.train.predict_logits`; the parts' sum is the whole, bit for bit). Every
    part must have a batch (``len(enc) > batch_size * (world - 1)``): the width comes from it."""
    from rga_engine.train import collate, part_starts

    was_training = model.training
    model.eval()
    order = sorted(range(len(enc)), key=lambda i: len(enc.ids[i]))
    out: np.ndarray | None = None
    world = part[1]
    for k, s in enumerate(part_starts(len(order), batch_size, part)):
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
            out = np.zeros((len(enc), v.shape[1]), dtype=np.float32)
        out[idx] = v
        if on_batch is not None:  # rows done by all the processes, if they keep pace with this one
            on_batch(min((k + 1) * batch_size * world, len(order)), len(order))
    model.train(was_training)
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)

"""The ``detect`` stage (``unlearn.forget_set = "cube"``): CUBE on the poisoned model's embeddings
of ``train_poisoned`` (``rga_engine/cube.py``) picks the forget set.

embed (one step per evaluation batch) → UMAP + HDBSCAN (one step) → the 2-D picture (one step).
The flagged rows and the picture's coordinates are cached as ``detect-<key>.json`` in the cache
folder (``{"flagged": [row, ...], "rows", "params", "preset", "scatter": {"rows", "x", "y"}}``),
keyed by the poisoned model's key, the effective detection settings, the seed and the pipeline's
``CACHE_VERSION``; a damaged entry is logged and detected again.

Reports ``summary["detection"]`` (:func:`rga_engine.cube.scores`), writes ``detection.csv`` /
``detection.svg`` into the run folder (``detection_files.py``), and fails the stage (one line
naming the ``unlearn.cube_*`` keys, :func:`rga_engine.cube.guard`) when CUBE flags no row or every
row. Several processes: the main process detects, draws and writes; every rank gets its forget set.

:func:`detect` takes the :class:`rga_engine.pipeline.Run` of this run, as the other stage modules do.
umap-learn, scikit-learn and the pipeline module are imported inside the functions (no import
circle with ``pipeline.py``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rga_engine import cache, report
from rga_engine.distributed import eval_part, from_main, sum_over_ranks

if TYPE_CHECKING:
    from rga_engine.pipeline import Run

STAGE = "detect"
# (rows, [(x, y), ...]) of the 2-D picture
Projection = tuple[list[int], list[tuple[float, float]]]


def detect(run: Run, poisoned) -> tuple[list[bool] | None, str]:
    """The ``detect`` stage of ``run`` on the ``poisoned`` model: the flagged rows of
    ``train_poisoned`` and ``"finished"``, or ``None`` and ``"cancelled"`` / ``"error"`` (already
    reported: events, summary, log)."""
    from rga_engine import cube

    t0, u = time.perf_counter(), run.cfg.unlearn
    tp = run.enc["train_poisoned"]
    n, bs = len(tp), run.cfg.train.eval_batch_size
    params = cube.effective(n, u)
    params["min_dist"] = cube.min_dist_for(run.cfg.model.name, u.cube_min_dist)
    path = _cache_path(run, params)
    flagged, projection = _load_cached(run, path, n) if run.cfg.output.cache and path.is_file() else (None, None)
    cached = flagged is not None
    if cached:
        run.emit("stage_started", stage=STAGE, total_steps=0)
        run.log(f"detect: loaded cached detection {path.name}" +
                ("" if projection is not None else " (written before the 2-D picture: no scatter)"))
    else:
        run.emit("stage_started", stage=STAGE, total_steps=_batches(n, bs) + 2)
        shown = ", ".join(f"{k} {v}" for k, v in params.items())
        run.log(f"detect: CUBE on {n} rows of train_poisoned ({shown})")
        found = _compute(run, poisoned, params, t0)
        if isinstance(found, str):
            return None, found
        flagged, projection = found
        if run.cfg.output.cache and run.is_main:
            _save_cached(path, n, flagged, projection, params, run.cfg.name)
    # several processes: the main process's forget set for every rank (the same number of
    # unlearning steps everywhere, whatever UMAP does on each)
    flagged = from_main(run.accelerator, flagged)
    det = cube.scores(flagged, tp.poisoned.numpy())
    run.summary["detection"] = det
    if run.run_dir is not None and run.is_main:
        _write_files(run, flagged, projection, det)
    run.log(f"detect: flagged {det['flagged']} of {n} rows, {det['poisoned']} truly poisoned: "
            + ", ".join(f"{label} {v} %" for label, v in report.detection_scores(det)))
    return _finish(run, flagged, det, params, cached, t0)


def _batches(n: int, bs: int) -> int:
    """The embedding batches of ``n`` rows: one progress step each."""
    return -(-n // bs) if n else 0


def _cache_path(run: Run, params: dict[str, Any]) -> Path:
    """The cache file of this detection: ``detect-<key>.json`` in the cache folder."""
    from rga_engine import pipeline

    key = cache.make_key({"stage": STAGE, "poisoned": run.cache_key("poison", "train_poisoned"),
                          "params": params, "seed": run.seed, "engine": pipeline.CACHE_VERSION})
    return cache.cache_root(run.cfg.output.cache_dir) / f"detect-{key}.json"


def _load_cached(run: Run, path: Path, n: int) -> tuple[list[bool] | None, Projection | None]:
    """The flagged rows and the 2-D picture (``None`` for a file written before the picture
    existed) saved in ``path``. A damaged file is logged and gives ``(None, None)``: detect again."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        flagged = [False] * n
        for i in saved["flagged"]:
            flagged[int(i)] = True
        projection = None
        sc = saved.get("scatter")
        if isinstance(sc, dict) and len(sc.get("rows", [])) == len(sc.get("x", [])) == len(sc.get("y", [])):
            projection = ([int(i) for i in sc["rows"]], list(zip(sc["x"], sc["y"])))
        return flagged, projection
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        run.log(f"detect: the cached detection {path.name} is damaged ({e}); detecting again", "warning")
        return None, None


def _compute(run: Run, poisoned, params: dict[str, Any], t0: float) -> tuple[list[bool], Projection | None] | str:
    """CUBE itself: embed → UMAP → HDBSCAN → the 2-D picture, with a progress step per embedding
    batch, one after the clustering and one after the picture. ``"cancelled"`` (stop asked during
    the embedding) or ``"error"`` (umap-learn / scikit-learn missing) when the stage stopped."""
    from rga_engine import cube

    tp = run.enc["train_poisoned"]
    bs = run.cfg.train.eval_batch_size
    batches = _batches(len(tp), bs)

    def on_batch(done: int, _all: int) -> None:
        run.emit("step", stage=STAGE, step=-(-done // bs), loss=None)  # no loss: a step is a batch

    acc = run.accelerator
    part = eval_part(acc, len(tp), bs)  # several processes: each embeds every N-th batch, one all-reduce
    with acc.autocast():
        vectors = cube.embed(poisoned, tp, bs, run.pad_id, acc.device, run.bundle.is_decoder,
                             on_batch=on_batch, part=part)
    if part[1] > 1:
        import torch

        vectors = sum_over_ranks(torch.from_numpy(vectors), acc.device).numpy()
    if run.should_stop():
        run.summary["errors"][STAGE] = "cancelled"
        run.emit("stage_finished", stage=STAGE, metrics={"cancelled": True},
                 seconds=round(time.perf_counter() - t0, 2))
        run.save_summary()
        return "cancelled"
    try:
        space = cube.reduce(vectors, components=params["components"], n_neighbors=params["n_neighbors"],
                            min_dist=params["min_dist"], metric=params["metric"], seed=run.seed)
        mask = cube.cluster(space, run.data.num_labels, min_cluster_size=params["min_cluster_size"],
                            min_samples=params["min_samples"])
    except ImportError as e:
        run.fail_stage(STAGE, f"{STAGE}: {e}", t0)
        return "error"
    run.emit("step", stage=STAGE, step=batches + 1, loss=None)
    flagged = [bool(x) for x in mask]
    projection = _project_2d(run, space, params)
    run.emit("step", stage=STAGE, step=batches + 2, loss=None)
    return flagged, projection


def _project_2d(run: Run, space, params: dict[str, Any]) -> Projection | None:
    """The 2-D picture of the clustered ``space``, rounded for the cache and the files; ``None`` on
    the other processes and when it fails (logged: the picture is a bonus, it never fails the
    stage)."""
    from rga_engine import cube

    projection = None
    try:  # the picture is a bonus: it never fails the stage; only the main process draws it
        if run.is_main:
            projection = cube.project_2d(space, min_dist=params["min_dist"], seed=run.seed)
    except Exception as e:  # noqa: BLE001
        run.log(f"detect: no 2-D picture ({type(e).__name__}: {e})", "warning")
    if projection is None:
        return None
    return (projection[0].tolist(), [(round(float(x), 4), round(float(y), 4)) for x, y in projection[1]])


def _save_cached(path: Path, n: int, flagged: list[bool], projection: Projection | None, params: dict[str, Any],
                 preset: str) -> None:
    """Write the cache entry ``path`` for a detection on ``n`` rows (atomically; main process only)."""
    from rga_engine import pipeline

    path.parent.mkdir(parents=True, exist_ok=True)
    entry: dict[str, Any] = {"flagged": [i for i, f in enumerate(flagged) if f], "rows": n,
                             "params": params, "preset": preset}
    if projection is not None:
        entry["scatter"] = {"rows": projection[0], "x": [p[0] for p in projection[1]],
                            "y": [p[1] for p in projection[1]]}
    pipeline.write_json_atomic(path, entry)  # looked up here: tests/distributed/launch_cli.py records it


def _write_files(run: Run, flagged: list[bool], projection: Projection | None, det: dict[str, Any]) -> None:
    """``detection.csv`` / ``detection.svg`` in the run folder (main process only); a failed write
    is a warning, never a failed stage."""
    from rga_engine import detection_files

    tp = run.enc["train_poisoned"]
    try:
        detection_files.write_files(
            run.run_dir, tp.labels.tolist(), tp.poisoned.tolist(), flagged, projection,
            f"CUBE detection · {run.cfg.name} · 2-D UMAP of the clustered space",
            f"precision {100 * det['precision']:.2f} %, recall {100 * det['recall']:.2f} %, "
            f"F1 {100 * det['f1']:.2f} % · flagged {det['flagged']} of {len(tp)} rows, {det['poisoned']} truly poisoned")
    except OSError as e:
        run.log(f"detect: could not write {detection_files.CSV_NAME} ({e})", "warning")


def _finish(run: Run, flagged: list[bool], det: dict[str, Any], params: dict[str, Any], cached: bool,
            t0: float) -> tuple[list[bool] | None, str]:
    """End the stage: an error (nothing to unlearn or nothing to keep, :func:`rga_engine.cube.guard`)
    stops the run before Retrain and unlearning; otherwise the forget set."""
    from rga_engine import cube

    problem = cube.guard(flagged, run.data.num_labels, params, run.cfg.unlearn)
    metrics_ = {**det, "cached": cached}
    if problem is not None:  # nothing to unlearn or nothing to keep: stop before Retrain and unlearning
        run.summary["errors"][STAGE] = problem
        run.emit("error", stage=STAGE, message=problem)
        metrics_["error"] = problem
    run.emit("stage_finished", stage=STAGE, metrics=metrics_, seconds=round(time.perf_counter() - t0, 2))
    run.save_summary()
    return (None, "error") if problem is not None else (flagged, "finished")

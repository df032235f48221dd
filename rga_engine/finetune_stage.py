"""The fine-tuning stages: ``poison`` (the pre-trained model on ``train_poisoned``: the victim) and
``retrain`` (the same on ``train_clean``: the golden baseline). Each fine-tunes a fresh copy of the
pre-trained model (``rga_engine/train.py``'s :func:`finetune` is the loop) or loads its weights
from the cache, then is evaluated and recorded.

:func:`fit_stage` is called by ``Run.stages`` (one process) and by a side-by-side worker
(``side_by_side.py``); ``run`` is the :class:`rga_engine.pipeline.Run` of this run (imported for
type checking only: no import circle with ``pipeline.py``).
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any, Callable

import torch

from rga_engine import cache, evaluation
from rga_engine.train import NonFiniteLoss, finetune, nonfinite_message

if TYPE_CHECKING:
    from rga_engine.pipeline import Run


def fit_stage(run: Run, name: str, stage: str, split: str,
              trained: Callable[[Any], None] | None = None) -> tuple[Any, dict[str, Any] | None, str]:
    """Fine-tune one stage (poison / Retrain) and record it, in one process or a side-by-side
    worker alike: ``(model, summary entry, "finished" | "cached")``, or ``(None, None,
    "error" | "cancelled")`` with the error (a NaN loss) or the cancel already reported.
    ``trained(model)``: called with the trained (or cached) model before its evaluation (a
    side-by-side worker hands the poisoned weights on there, so unlearning can start meanwhile)."""
    t0 = time.perf_counter()
    try:
        model, st = fit(run, stage, split)
    except NonFiniteLoss as e:
        run.fail_stage(stage, nonfinite_message(run.cfg, stage, e), t0)
        return None, None, "error"
    if st == "cancelled":
        run.emit("stage_finished", stage=stage, metrics={"cancelled": True}, seconds=round(time.perf_counter() - t0, 2))
        return None, None, "cancelled"
    if trained is not None:
        trained(model)
    return model, evaluation.finish_stage(run, name, stage, model, t0, None, cached=st == "cached"), st


def fit(run: Run, stage: str, split: str) -> tuple[torch.nn.Module | None, str]:
    """Fine-tune a fresh copy of the pre-trained model on ``split`` (or load it from cache)."""
    t0 = time.perf_counter()
    model = copy.deepcopy(run.bundle.model)
    key = run.cache_key(stage, split)
    root = cache.cache_root(run.cfg.output.cache_dir)
    got = run.from_cache(root, stage, key, model) if run.cfg.output.cache else "miss"
    if got == "hit":
        run.emit("stage_started", stage=stage, total_steps=0)
        run.log(f"{stage}: loaded cached weights {cache.path_for(root, stage, key).name}")
        return model.to(run.accelerator.device), "cached"
    if got == "dirty":  # loaded on this rank only: train from the pre-trained weights, as the others
        model = copy.deepcopy(run.bundle.model)
    run.reseed()  # every stage starts from the same RNG state, cached or not
    res = finetune(model, run.enc[split], run.cfg.train, run.loop(), stage=stage)
    model = res["model"]
    run.accelerator.free_memory()
    if res["status"] == "finished" and run.cfg.output.cache and run.is_main:
        cache.save(root, stage, key, model, {"stage": stage, "preset": run.cfg.name})
    run.log(f"{stage}: {res['steps']} steps in {time.perf_counter() - t0:.1f} s")
    return model, res["status"]

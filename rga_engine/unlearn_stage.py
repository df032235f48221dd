"""The ``unlearn:<method>`` stages: one unlearning method from the poisoned weights, evaluated every
``unlearn.eval_every`` epochs and at the end (``rga_engine/train.py``'s :func:`unlearn` is the loop).

:func:`run_method` is called once per method by ``Run.stages`` (one process) and by a
side-by-side worker (``side_by_side.py``); ``run`` is the :class:`rga_engine.pipeline.Run` of this
run, with ``run.forget`` / ``run.retain`` already set (imported for type checking only: no import
circle with ``pipeline.py``).
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING

import torch

from rga_engine import evaluation
from rga_engine.methods import build as build_method
from rga_engine.methods.rga import AnchorError
from rga_engine.train import HeadError, NonFiniteLoss, nonfinite_message, unlearn

if TYPE_CHECKING:
    from rga_engine.pipeline import Run


def run_method(run: Run, name: str, poisoned_state: dict[str, torch.Tensor], ref_logits: torch.Tensor | None,
               retrain_pacc: float | None) -> str:
    """Unlearn with method ``name`` from ``poisoned_state`` and record it (summary entry, events):
    ``"finished"``, ``"cancelled"`` (the model is not evaluated), or ``"error"`` after a NaN / inf
    loss or an anchor RGA refuses (reported in one line)."""
    stage = f"unlearn:{name}"
    t0 = time.perf_counter()
    method = build_method(name, run.cfg.methods.get(name, {}))
    model = copy.deepcopy(run.bundle.model)
    model.load_state_dict(poisoned_state)
    model.to(run.accelerator.device)
    # the encoder's pre-trained weights (before poisoning) are the RGA anchor θ_base
    base = run.bundle.base_state if method.needs_base else None

    def on_eval(m, epoch: int, step: int) -> None:
        evaluation.evaluate(run, m, stage, step, retrain_pacc, sample=True)

    run.reseed()
    try:
        res = unlearn(model, method, run.forget, run.retain, ref_logits if method.needs_reference else None,
                      run.cfg.unlearn, run.cfg.train, run.loop(), stage=stage, on_eval=on_eval, base_state=base)
    except NonFiniteLoss as e:
        run.accelerator.free_memory()
        run.fail_stage(stage, nonfinite_message(run.cfg, stage, e), t0)
        return "error"
    except (AnchorError, HeadError) as e:  # RGA refuses a partial or empty L2 anchor, or FSDP; no head to scale
        run.accelerator.free_memory()
        run.fail_stage(stage, f"{stage}: {e}", t0)
        return "error"
    run.accelerator.free_memory()
    if res["status"] == "cancelled":
        run.summary["errors"][stage] = "cancelled"
        run.emit("stage_finished", stage=stage, metrics={"cancelled": True}, seconds=round(time.perf_counter() - t0, 2))
        run.save_summary()
        return "cancelled"
    evaluation.finish_stage(run, name, stage, res["model"], t0, retrain_pacc, steps=res["steps"])
    return "finished"

"""Evaluation: a model's logits and metrics on the test splits, and the summary entry a stage
records (``docs/architecture.md``).

Functions of the :class:`rga_engine.pipeline.Run` they evaluate for (its accelerator, tokenised
splits, labels and Retrain reference), as the stage modules are; imported by ``pipeline.py`` and
the stage modules, ``pipeline`` only for type checking (no import circle).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch

from rga_engine import cache, metrics
from rga_engine.data.loaders import stratified_pick
from rga_engine.distributed import eval_part, sum_over_ranks
from rga_engine.train import Encoded, confusion, predict_logits

if TYPE_CHECKING:
    from rga_engine.pipeline import Run

EVAL_SPLITS = ("test_clean", "test_poisoned_all", "test_poisoned_part")
ENTRY_KEYS = ("cacc", "pacc", "asr", "lfr", "paper_lfr", "delta_pacc", "confusion_clean",
              "confusion_poisoned_all", "confusion_poisoned_part", "trigger_shift")


def unique_rows(encs: list[Encoded], names: tuple[str, ...]) -> tuple[Encoded, dict[str, torch.Tensor]]:
    """The distinct token sequences of ``encs`` as one :class:`Encoded`, and for each name the
    position of each of its rows in it (so ``logits[where[name]]`` are that split's logits)."""
    seen: dict[tuple[int, ...], int] = {}
    where: dict[str, torch.Tensor] = {}
    for name, enc in zip(names, encs):
        where[name] = torch.tensor([seen.setdefault(tuple(ids), len(seen)) for ids in enc.ids], dtype=torch.long)
    ids = [list(k) for k in seen]  # dicts keep insertion order: position == value
    n = len(ids)
    union = Encoded(ids, torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.bool),
                    torch.tensor([len(x) for x in ids], dtype=torch.long))
    return union, where


def sample_rows(labels: torch.Tensor, rows: int) -> list[int]:
    """The mid-run sample of a split: ``rows`` row indices, each class its share
    (:func:`rga_engine.data.loaders.stratified_pick`, as ``data.train_limit`` samples), chosen by a
    fixed seed, not the run's: every run's mid-run evaluations count the same rows. Every row when
    ``rows`` is 0 or at least the split's size."""
    if rows <= 0 or rows >= len(labels):
        return list(range(len(labels)))
    return stratified_pick(labels.tolist(), rows, seed=0)


class EvalSet:
    """What one evaluation forwards: the distinct token sequences of the three splits (``union``),
    where each split's rows sit in it and their labels: the whole test set, or (:meth:`sample`) the
    mid-run sample of ``unlearn.eval_rows`` (:func:`sample_rows` of the clean and of the triggered
    rows; the triggered non-target rows are those of the triggered sample)."""

    def __init__(self, encs: dict[str, Encoded]):
        self.union, self.where = unique_rows([encs[s] for s in EVAL_SPLITS], EVAL_SPLITS)
        self.labels = {s: encs[s].labels for s in EVAL_SPLITS}
        self.rows = {s: len(encs[s]) for s in EVAL_SPLITS}

    @classmethod
    def sample(cls, enc: dict[str, Encoded], whole: "EvalSet", rows: int) -> "EvalSet | None":
        """The sample, or None when it would be the whole test set or leave a split empty."""
        clean, triggered = (sample_rows(enc[s].labels, rows) for s in ("test_clean", "test_poisoned_all"))
        if len(clean) == len(enc["test_clean"]) and len(triggered) == len(enc["test_poisoned_all"]):
            return None
        kept = set(whole.where["test_poisoned_all"][triggered].tolist())
        part = [i for i, u in enumerate(whole.where["test_poisoned_part"].tolist()) if u in kept]
        if not (clean and triggered and part):
            return None
        return cls({"test_clean": enc["test_clean"].subset(clean), "test_poisoned_all": enc["test_poisoned_all"].subset(triggered),
                    "test_poisoned_part": enc["test_poisoned_part"].subset(part)})


def logits(run: Run, model, enc: Encoded) -> torch.Tensor:
    """Every model's logits -- fresh from training or loaded from the cache -- under the one
    autocast of the precision policy (``mixed_precision``): the models that leave the training
    loops carry no autocast wrapper of their own, so a cache hit changes nothing. With several
    processes each evaluates every N-th batch and one all-reduce gives every rank all the logits
    (the model is unwrapped, so its forwards make no collective of their own)."""
    acc, bs = run.accelerator, run.cfg.train.eval_batch_size
    part = eval_part(acc, len(enc), bs)
    with acc.autocast():
        out = predict_logits(model, enc, bs, run.pad_id, acc.device, part=part)
    return sum_over_ranks(out, acc.device) if part[1] > 1 else out


def evaluate(run: Run, model, stage: str, step: int, retrain_pacc: float | None, sample: bool = False) -> dict[str, Any]:
    """The model's metrics on the three test splits (one ``eval`` event per split, with the rows
    it counted); ``sample``: on the mid-run sample of ``unlearn.eval_rows`` when there is one
    (the events then say ``"sample": true``)."""
    # One forward pass over the distinct token sequences of the three splits (the triggered
    # non-target rows of test_poisoned_part are rows of test_poisoned_all: ~20 % fewer).
    es = run.eval_sample if sample and run.eval_sample is not None else run.eval_set
    out = logits(run, model, es.union)
    data = run.data
    cms = {split: confusion(out[es.where[split]], es.labels[split], data.num_labels) for split in EVAL_SPLITS}
    m = metrics.model_metrics(cms["test_clean"], cms["test_poisoned_all"], cms["test_poisoned_part"], data.target,
                              retrain_pacc=retrain_pacc, threshold=run.cfg.unlearn.shift_threshold,
                              label_names=data.label_names, retrain_asr=run.retrain_asr,
                              retrain_scores=run.retrain_scores, is_retrain=stage == "retrain")
    per_split = {
        "test_clean": {"cacc": m["cacc"]},
        "test_poisoned_all": {"pacc": m["pacc"], "lfr": m["lfr"], "paper_lfr": m["paper_lfr"],
                              "trigger_shift": m["trigger_shift"], "delta_pacc": m["delta_pacc"]},
        "test_poisoned_part": {"asr": m["asr"]},
    }
    sampled = es is not run.eval_set
    for split in EVAL_SPLITS:
        run.emit("eval", stage=stage, step=step, split=split, confusion=cms[split], metrics=per_split[split],
                 rows=es.rows[split], **({"sample": True} if sampled else {}))
    return m


def model_entry(m: dict[str, Any], seconds: float, **extra: Any) -> dict[str, Any]:
    """A model's entry in ``summary.json``'s ``models``."""
    return {**{k: m[k] for k in ENTRY_KEYS}, "seconds": round(seconds, 2), **extra}


def finish_stage(run: Run, name: str, stage: str, model, t0: float, retrain_pacc: float | None, **extra) -> dict:
    """Evaluate a stage's final model and record it: the summary entry (saved), ``stage_finished``."""
    m = evaluate(run, model, stage, -1, retrain_pacc)
    entry = model_entry(m, time.perf_counter() - t0, **extra)
    if run.models_dir is not None and run.is_main:  # output.save_models
        run.models_dir.mkdir(parents=True, exist_ok=True)
        path = cache.save_to(run.models_dir / f"{name}.safetensors", model,
                             {"preset": run.cfg.name, "model": name, "seed": run.seed})
        entry["file"] = f"{run.models_dir.name}/{path.name}"
    run.summary["models"][name] = entry
    run.emit("stage_finished", stage=stage, metrics=entry, seconds=entry["seconds"])
    run.save_summary()
    return entry


def take_retrain(run: Run, entry: dict[str, Any]) -> float:
    """Retrain's summary entry becomes the reference that grades every later evaluation (its ASR
    and trigger-shift scores); returns its PACC (ΔPACC's reference). One process or side by side
    alike."""
    run.retrain_asr, run.retrain_scores = entry["asr"], entry["trigger_shift"]["scores"]
    return entry["pacc"]


def grade_poisoned(run: Run, retrain_pacc: float | None) -> None:
    """ΔPACC and the graded verdict of the poisoned model, once Retrain is known."""
    p = run.summary["models"]["poisoned"]
    if retrain_pacc is not None:
        p["delta_pacc"] = abs(p["pacc"] - retrain_pacc)
        p["trigger_shift"] = metrics.trigger_shift(
            p["confusion_poisoned_all"], p["confusion_clean"], run.data.target, run.cfg.unlearn.shift_threshold,
            asr=p["asr"], retrain_asr=run.retrain_asr, label_names=run.data.label_names,
            retrain_scores=run.retrain_scores)
    run.save_summary()

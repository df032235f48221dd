"""Stage 0 (``model.pretrain_epochs`` > 0, ``tiny`` only): masked-LM pre-training of the encoder on
the clean training texts, or its weights from the cache, so that poisoning starts from a pre-trained
encoder and RGA's anchor θ_base is that encoder, as in the paper.

Not a stage of the event contract (it has three: poison, retrain, unlearn:*): progress goes out as
``log`` events with ``phase = "pretrain"`` and the result as ``summary["pretrain"]``. The weights
are cached under the key ``Run.cache_key("pretrain", "train_clean", uses_train=False)``.

:func:`pretrain` is what ``Run.stages`` calls first; ``run`` is the :class:`rga_engine.pipeline.Run`
of this run (imported for type checking only: no import circle with ``pipeline.py``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rga_engine import cache
from rga_engine.train import NonFiniteLoss, nonfinite_message, pretrain_mlm

if TYPE_CHECKING:
    from rga_engine.pipeline import Run

STAGE = "pretrain"


def pretrain(run: Run) -> str:
    """Pre-train ``run``'s encoder when the config asks for it: ``"finished"`` (also when it does
    not ask), ``"cancelled"``, or ``"error"`` after a NaN / inf loss (reported, one line naming
    ``model.pretrain_lr``)."""
    if run.cfg.model.pretrain_epochs <= 0:
        return "finished"
    try:
        return _pretrain(run)
    except NonFiniteLoss as e:
        msg = nonfinite_message(run.cfg, STAGE, e)
        run.summary["errors"][STAGE] = msg
        run.emit("error", stage=STAGE, message=msg)
        run.save_summary()
        return "error"


def _pretrain(run: Run) -> str:
    mc, t0 = run.cfg.model, time.perf_counter()
    model, rows, epochs = run.bundle.model, len(run.enc["train_clean"]), mc.pretrain_epochs
    key = run.cache_key(STAGE, "train_clean", uses_train=False)
    root = cache.cache_root(run.cfg.output.cache_dir)
    info: dict[str, Any] = {"epochs": epochs, "rows": rows}
    init = ({k: v.detach().clone() for k, v in model.state_dict().items()}
            if run.world > 1 and run.cfg.output.cache else None)
    got = run.from_cache(root, STAGE, key, model) if run.cfg.output.cache else "miss"
    if got == "dirty":  # loaded here but not on every rank: every rank pre-trains from the init
        model.load_state_dict(init)
    del init
    if got == "hit":
        run.log(f"pretrain: loaded cached weights {cache.path_for(root, STAGE, key).name}", phase=STAGE, cached=True)
        info["cached"] = True
    else:
        run.log(f"pretrain: masked-LM pre-training of the tiny encoder, {epochs} epochs on the "
                f"{rows} clean training texts", phase=STAGE, epoch=0, epochs=epochs)

        def on_epoch(epoch: int, loss: float, seconds: float) -> None:
            run.log(f"pretrain: MLM epoch {epoch}/{epochs}, loss {loss:.3f}, {seconds:.0f} s",
                    phase=STAGE, epoch=epoch, epochs=epochs)

        run.reseed()
        res = pretrain_mlm(model, run.enc["train_clean"], mc, run.loop(), tokenizer=run.bundle.tokenizer, on_epoch=on_epoch)
        run.accelerator.free_memory()
        if res["status"] == "cancelled":
            return "cancelled"
        if run.cfg.output.cache and run.is_main:
            cache.save(root, STAGE, key, model, {"stage": STAGE, "preset": run.cfg.name})
        info.update(cached=False, steps=res["steps"], loss=round(res["loss"], 4))
    model.to("cpu")
    run.bundle.base_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    info["seconds"] = round(time.perf_counter() - t0, 2)
    run.summary["pretrain"] = info
    run.save_summary()
    return "finished"

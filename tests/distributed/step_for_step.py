"""One process or several (under ``torchrun``) train the same small tiny BERT with dropout off:
masked-LM pre-training, ``steps`` fine-tuning steps, then RGA's unlearning; the main process
saves the weights after each phase to ``OUT-<phase>.pt``. tests/test_distributed.py runs it
once alone and once with 2 processes: the weights must agree up to float rounding, i.e. the
processes split each global batch of the one-process loop (forget and retain alike) instead of
drawing other batches. The evaluation's split over the ranks is checked in place (each rank's
share summed is one process's logits, bit for bit) and its logits saved to ``OUT-eval.pt``."""

import dataclasses
import sys

import torch
from accelerate import Accelerator

from rga_engine import config, pipeline
from rga_engine.methods import build as build_method
from rga_engine.models import build as build_model
from rga_engine.train import Loop, encode, finetune, predict_logits, pretrain_mlm, unlearn

PRESET = "tests/fixtures/presets/tiny-hsol-ddp.toml"


def main(out: str, steps: int) -> None:
    # β = 0: the L2 term is the same on every rank, but at near-zero displacement its gradient
    # (θ − θ_base)/‖θ − θ_base‖ points wherever float noise says -- e.g. on attention key biases,
    # which the loss does not move -- so with β > 0 one and two processes differ there by ~5e-4
    cfg = config.load(PRESET, ["data.train_limit=600", "model.pretrain_epochs=1", "unlearn.epochs=2",
                               "methods.rga.beta=0.0"])
    data = pipeline.load_splits(cfg)
    tp = data.splits["train_poisoned"]
    bundle = build_model(cfg.model, data.num_labels, tp.texts, cfg.train.seed, use_cuda=False)
    model = bundle.model
    for m in model.modules():  # dropout off: the only randomness left is the batches'
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    enc = encode(bundle.tokenizer, tp.texts, tp.labels, tp.poisoned, cfg.model.max_length)
    acc = Accelerator(cpu=True)

    def save(phase: str) -> None:
        if acc.is_main_process:
            torch.save({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, f"{out}-{phase}.pt")

    def quiet(*a, **k) -> None:
        pass
    pretrain_mlm(model, encode(bundle.tokenizer, data.splits["train_clean"].texts, data.splits["train_clean"].labels,
                               data.splits["train_clean"].poisoned, cfg.model.max_length),
                 cfg.model, Loop(acc, 0, quiet, lambda: False, cfg.train.seed), tokenizer=bundle.tokenizer,
                 on_epoch=lambda *a: None)
    model.to("cpu")
    save("pretrain")
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    calls = [0]

    def after_steps() -> bool:
        calls[0] += 1
        return calls[0] >= steps

    model = finetune(model, enc, cfg.train, Loop(acc, 0, quiet, after_steps, cfg.train.seed), stage="poison")["model"]
    acc.free_memory()
    save("finetune")
    flags = enc.poisoned.tolist()
    forget = enc.subset([i for i, f in enumerate(flags) if f])
    retain = enc.subset([i for i, f in enumerate(flags) if not f])
    ref = predict_logits(model, forget, 64, 0, acc.device)
    tc = dataclasses.replace(cfg.train, weight_decay=0.0, max_grad_norm=1.0, group_by_length=False, shuffle=True)
    model = unlearn(model, build_method("rga", cfg.methods["rga"]), forget, retain, ref, cfg.unlearn, tc,
                    Loop(acc, 0, quiet, lambda: False, cfg.train.seed), stage="unlearn:rga",
                    on_eval=lambda *a: None, base_state=base)["model"]
    save("unlearn")
    # evaluation: each rank takes every N-th batch, one all-reduce gives all the logits -- bit
    # for bit those of one process evaluating every batch on the same weights
    from rga_engine.distributed import sum_over_ranks

    model = model.to("cpu")
    whole = predict_logits(model, enc, 64, 0, acc.device)
    mine = predict_logits(model, enc, 64, 0, acc.device, part=(acc.process_index, acc.num_processes))
    if acc.num_processes > 1:
        done = int((mine != 0).any(dim=1).sum())
        assert 0 < done < len(enc), (acc.process_index, done, len(enc))  # a share, not all
    shared = sum_over_ranks(mine, acc.device)
    assert torch.equal(shared, whole), (shared - whole).abs().max()
    # CUBE's embedding: the same split
    from rga_engine.cube import embed

    vectors = embed(model, enc, 64, 0, acc.device, False, part=(acc.process_index, acc.num_processes))
    assert torch.equal(sum_over_ranks(torch.from_numpy(vectors), acc.device),
                       torch.from_numpy(embed(model, enc, 64, 0, acc.device, False)))
    if acc.is_main_process:
        torch.save({"logits": shared}, f"{out}-eval.pt")
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        # tear the gloo group down before the interpreter exits: once (CI, 2026-12-01, under load)
        # rank 1 aborted at exit with "terminate called without an active exception"
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

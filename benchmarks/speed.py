#!/usr/bin/env python
"""Training speed: our loops against ``transformers.Trainer`` and the authors' style of loop.

Same machine, same model (one initialisation, deep-copied for every run), same rows of SST-2
in the same batch order, the same number of optimiser steps; all contenders run in one process,
interleaved round-robin (the order rotates every round) and summarised by medians.

Fine-tune (samples/s):
  ours       ``rga_engine.train.finetune`` (the real function; tokenised once, each batch padded
             to its longest row, AdamW, clip 1.0, Accelerate)
  trainer    ``transformers.Trainer``: same init, AdamW (Trainer's default implementation), lr,
             weight decay 0.01, max_grad_norm 1.0, constant lr, batch size, steps; no eval, no
             saving, no logging, ``report_to=[]``, ``DataCollatorWithPadding``,
             ``dataloader_num_workers=0``, bf16 only when ``--dtype bf16``
  reference  the authors' style (xingyizhao/RGA ``util.train``): a Dataset that tokenises each
             row with ``padding="max_length"`` (128), a plain DataLoader, fp32, the same AdamW
             and clipping, ``loss.item()`` every step
Unlearn, RGA (steps/s; one step = one forget batch + one retain batch):
  ours       ``rga_engine.train.unlearn`` + ``rga_engine.methods.build("rga")``; the poisoned
             model's logits on the forget set are precomputed once (timed separately, printed)
  reference  padded to 128, penalty ``sum(torch.norm(p - b))`` as a Python loop, the reference
             logits recomputed every step by a forward of a frozen copy of the poisoned model
Utilisation: useful FLOP/s of our fine-tune step = 6 x N x real tokens (padding excluded) over
the time, against the ``torch.matmul`` rate measured here at the same dtype (square sizes, median
of repeats; the best size is re-measured right before each of our runs, and the utilisation is
the median over rounds of the paired ratio, which keeps it honest when the machine is shared).

The batch order is fixed up front: we read the order our own loader yields (seeded shuffle,
batches grouped by length as ``train.group_by_length`` does by default) and
feed Trainer (``train_sampling_strategy="sequential"``) and the reference loop (``shuffle=False``,
as in the authors' code) the rows in that order, so all three see identical batches.

    python benchmarks/speed.py --quick                # a few minutes on 2 CPU cores
    python benchmarks/speed.py --device cuda --json speed.json

The last line printed is ``speedup_vs_reference=<x> speedup_vs_trainer=<y> utilisation=<z>``.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

SEED = 2021
LR = 2e-5
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 1.0
REF_MAX_LEN = 128  # the authors pad every batch to this
RGA_ALPHA, RGA_BETA = 2.0, 0.05


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- timing helpers

class Stamps:
    """perf_counter() after every optimiser step (device synchronised first). ``hooks`` are called
    after each stamp (``benchmarks/profile_step.py`` steps its profiler there)."""

    hooks: list[Callable[[], None]] = []

    def __init__(self, device: torch.device):
        self.device = device
        self.t: list[float] = []

    def __call__(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.t.append(time.perf_counter())
        for hook in Stamps.hooks:
            hook()

    def timed(self, warmup: int) -> tuple[int, float]:
        """(steps, seconds) after the first ``warmup`` steps."""
        n = len(self.t) - warmup
        if n < 1 or warmup < 1:
            raise RuntimeError(f"need >= 1 warm-up and >= 1 timed step, got {len(self.t)} stamps")
        return n, self.t[-1] - self.t[warmup - 1]


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# --------------------------------------------------------------------------- models

@dataclass
class Spec:
    name: str
    model: torch.nn.Module  # the template (CPU); every run gets a deep copy
    tokenizer: Any
    max_length: int
    batch_size: int
    steps: int
    unlearn_steps: int
    warmup: int
    describe: str = ""
    n_token_params: int = 0  # applied to every real token
    n_seq_params: int = 0  # pooler + classifier: applied once per sequence
    n_embedding_params: int = 0


def count_params(model: torch.nn.Module) -> tuple[int, int, int]:
    """(per-token non-embedding params, per-sequence head params, embedding params)."""
    tok = seq = emb = 0
    for name, p in model.named_parameters():
        if ".embeddings." in f".{name}":
            emb += p.numel()
        elif "pooler" in name or "classifier" in name:
            seq += p.numel()
        else:
            tok += p.numel()
    return tok, seq, emb


def make_tiny(texts: list[str], a) -> Spec:
    from rga_engine.config import ModelConfig
    from rga_engine.models import build

    cfg = ModelConfig(max_length=a.tiny_max_length)
    bundle = build(cfg, 2, texts, SEED)
    c = bundle.model.config
    return Spec("tiny", bundle.model, bundle.tokenizer, cfg.max_length, a.tiny_batch, a.tiny_steps,
                a.tiny_unlearn_steps, a.tiny_warmup,
                describe=f"ModelConfig() defaults: BERT {c.num_hidden_layers}x{c.hidden_size}, "
                         f"{c.num_attention_heads} heads, ffn {c.intermediate_size}, vocab {c.vocab_size}, "
                         f"max_length {cfg.max_length}")


def make_bert_base(texts: list[str], a) -> Spec:
    from transformers import BertConfig, BertForSequenceClassification

    from rga_engine.models import train_tiny_tokenizer

    tok = train_tiny_tokenizer(texts, 30522)
    cfg = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                     intermediate_size=3072, max_position_embeddings=512, num_labels=2,
                     pad_token_id=tok.pad_token_id)
    torch.manual_seed(SEED)
    model = BertForSequenceClassification(cfg)
    return Spec("bert-base", model, tok, 128, a.bert_batch, a.bert_steps, a.bert_unlearn_steps, a.bert_warmup,
                describe="BertConfig BERT-base size, random init: 12x768, 12 heads, ffn 3072, vocab 30522 "
                         f"(WordPiece trained on SST-2 train, {len(tok)} used), max_length 128")


def fresh(spec: Spec, device: torch.device) -> torch.nn.Module:
    m = copy.deepcopy(spec.model).to(device)
    m.train()
    return m


# --------------------------------------------------------------------------- data

@dataclass
class Data:
    ft_texts: list[str]
    ft_labels: list[int]
    ft_enc: Any  # Encoded, in the original (unshuffled) row order
    ft_order: list[int]  # the order our loader yields; everybody uses it
    f_texts: list[str]
    f_enc: Any
    f_order: list[int]
    r_texts: list[str]
    r_labels: list[int]
    r_enc: Any
    ridx: list[torch.Tensor] = field(default_factory=list)  # retain rows per unlearn step


def loader_order(enc, batch_size: int, pad_id: int, accelerator) -> list[int]:
    """The row order ``rga_engine.train.loader`` yields once Accelerate has prepared it (batches
    grouped by length, ``train.group_by_length = true``, our default)."""
    from rga_engine.train import loader

    data = accelerator.prepare(loader(enc, batch_size, pad_id, shuffle=True, seed=SEED, group_by_length=True))
    order = [int(i) for b in data for i in b["index"].tolist()]
    accelerator.free_memory()
    return order


def make_data(spec: Spec, train, accelerator) -> Data:
    from rga_engine.train import encode

    bs = spec.batch_size
    n_ft = (spec.warmup + spec.steps) * bs
    n_f = (spec.warmup + spec.unlearn_steps) * bs
    rng = random.Random(SEED)
    rows = rng.sample(range(len(train)), len(train))
    if n_ft > len(train) or n_f >= len(train):
        raise SystemExit(f"{spec.name}: {max(n_ft, n_f)} rows needed, SST-2 train has {len(train)}")
    ft = rows[:n_ft]
    forget, retain = rows[:n_f], rows[n_f:]
    tok, L = spec.tokenizer, spec.max_length
    ft_texts = [train[i].text for i in ft]
    ft_labels = [train[i].label for i in ft]
    ft_enc = encode(tok, ft_texts, ft_labels, [False] * len(ft), L)
    f_texts = [train[i].text for i in forget]
    f_enc = encode(tok, f_texts, [1] * len(forget), [True] * len(forget), L)  # forget rows carry the target label
    r_texts = [train[i].text for i in retain]
    r_labels = [train[i].label for i in retain]
    r_enc = encode(tok, r_texts, r_labels, [False] * len(retain), L)
    pad = tok.pad_token_id
    d = Data(ft_texts, ft_labels, ft_enc, loader_order(ft_enc, bs, pad, accelerator),
             f_texts, f_enc, loader_order(f_enc, bs, pad, accelerator), r_texts, r_labels, r_enc)
    g = torch.Generator().manual_seed(SEED + 1)  # the same retain draws as rga_engine.train.unlearn
    d.ridx = [torch.randint(len(r_enc), (bs,), generator=g) for _ in range(spec.warmup + spec.unlearn_steps)]
    return d


class AuthorsDataset(Dataset):
    """xingyizhao/RGA ``TargetDataset``: tokenise one row per __getitem__, padded to max_len."""

    def __init__(self, tokenizer, max_len: int, texts: list[str], labels: list[int]):
        self.tok, self.max_len, self.texts, self.labels = tokenizer, max_len, texts, labels

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        enc = self.tok(self.texts[i], add_special_tokens=True, max_length=self.max_len, padding="max_length",
                       truncation=True, return_token_type_ids=False, return_attention_mask=True,
                       return_tensors="pt")
        return {"input_ids": enc["input_ids"].flatten(), "attention_mask": enc["attention_mask"].flatten(),
                "label": torch.tensor(self.labels[i], dtype=torch.long)}


# --------------------------------------------------------------------------- fine-tune contenders

def ft_ours(spec: Spec, data: Data, device, accelerator, dtype: str) -> Stamps:
    from rga_engine.config import TrainConfig
    from rga_engine.train import Loop, finetune

    stamps = Stamps(device)

    def emit(kind, **_):
        if kind == "step":
            stamps()

    tc = TrainConfig(epochs=1, lr=LR, batch_size=spec.batch_size, weight_decay=WEIGHT_DECAY,
                     max_grad_norm=MAX_GRAD_NORM, seed=SEED)
    model = fresh(spec, device)
    res = finetune(model, data.ft_enc, tc, Loop(accelerator, spec.tokenizer.pad_token_id, emit, lambda: False, SEED),
                   stage="bench")
    assert res["steps"] == spec.warmup + spec.steps, res["steps"]
    accelerator.free_memory()
    del model, res
    return stamps


TRAINER_OPTIM: dict[str, Any] = {}


def ft_trainer(spec: Spec, data: Data, device, accelerator, dtype: str) -> Stamps:
    from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    stamps = Stamps(device)

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            stamps()

    rows = [{"input_ids": data.ft_enc.ids[i], "attention_mask": [1] * len(data.ft_enc.ids[i]),
             "labels": int(data.ft_enc.labels[i])} for i in data.ft_order]
    with tempfile.TemporaryDirectory(prefix="speed-trainer-") as tmp:
        args = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=spec.batch_size, max_steps=spec.warmup + spec.steps,
            learning_rate=LR, weight_decay=WEIGHT_DECAY, max_grad_norm=MAX_GRAD_NORM,
            lr_scheduler_type="constant", warmup_steps=0, eval_strategy="no", save_strategy="no",
            logging_strategy="no", report_to=[], dataloader_num_workers=0, disable_tqdm=True,
            use_cpu=device.type == "cpu", bf16=dtype == "bf16", seed=SEED,
            train_sampling_strategy="sequential",
        )
        model = fresh(spec, device)
        trainer = Trainer(model=model, args=args, train_dataset=rows,
                          data_collator=DataCollatorWithPadding(spec.tokenizer), callbacks=[Clock()])
        trainer.remove_callback(PrinterCallback)  # it prints the end-of-training metrics to stdout
        trainer.remove_callback(ProgressCallback)
        trainer.train()
        opt = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # unwrap AcceleratedOptimizer
        TRAINER_OPTIM.update({"class": type(opt).__name__, "fused": opt.defaults.get("fused"),
                              "foreach": opt.defaults.get("foreach"), "optim": str(args.optim)})
        del trainer, model
    return stamps


def ft_reference(spec: Spec, data: Data, device, accelerator, dtype: str) -> Stamps:
    stamps = Stamps(device)
    texts = [data.ft_texts[i] for i in data.ft_order]
    labels = [data.ft_labels[i] for i in data.ft_order]
    dl = DataLoader(AuthorsDataset(spec.tokenizer, REF_MAX_LEN, texts, labels), batch_size=spec.batch_size,
                    shuffle=False)
    model = fresh(spec, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    total = 0.0
    for batch in dl:
        model.train()
        model.zero_grad()
        ids, am = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        labels_t = batch["label"].to(device)
        logits = model(input_ids=ids, attention_mask=am).logits
        loss = F.cross_entropy(logits, labels_t)
        total += loss.item()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        optimizer.step()
        optimizer.zero_grad()
        stamps()
    del model, optimizer
    return stamps


# --------------------------------------------------------------------------- unlearn contenders

def make_base_state(spec: Spec) -> dict[str, torch.Tensor]:
    """A 'pre-trained' state distinct from the 'poisoned' template (else ||theta - base|| = 0)."""
    torch.manual_seed(SEED + 7)
    other = type(spec.model)(spec.model.config)
    return {k: v.detach().clone() for k, v in other.state_dict().items()}


def ul_ours(spec: Spec, data: Data, device, accelerator, dtype: str, base_state, extra: dict) -> Stamps:
    from rga_engine.config import TrainConfig, UnlearnConfig
    from rga_engine.methods import build
    from rga_engine.train import Loop, predict_logits, unlearn

    stamps = Stamps(device)

    def emit(kind, **_):
        if kind == "step":
            stamps()

    pad = spec.tokenizer.pad_token_id
    model = fresh(spec, device)
    t0 = time.perf_counter()
    ref = predict_logits(model, data.f_enc, 128, pad, device)  # the poisoned model = the starting model
    if device.type == "cuda":
        torch.cuda.synchronize()
    extra.setdefault("ref_precompute_s", []).append(time.perf_counter() - t0)
    uc = UnlearnConfig(methods=["rga"], epochs=1, max_steps=spec.warmup + spec.unlearn_steps, lr=LR,
                       batch_size=spec.batch_size, eval_every=0)
    method = build("rga", {"alpha": RGA_ALPHA, "beta": RGA_BETA})
    tc = TrainConfig(weight_decay=WEIGHT_DECAY, max_grad_norm=MAX_GRAD_NORM, group_by_length=True, shuffle=True)
    res = unlearn(model, method, data.f_enc, data.r_enc, ref, uc, tc, Loop(accelerator, pad, emit, lambda: False, SEED),
                  stage="bench", on_eval=lambda *a: None, base_state=base_state)
    assert res["steps"] == spec.warmup + spec.unlearn_steps, res["steps"]
    accelerator.free_memory()
    del model, res, method
    return stamps


def ul_reference(spec: Spec, data: Data, device, accelerator, dtype: str, base_state, extra: dict) -> Stamps:
    from rga_engine.models import is_head

    stamps = Stamps(device)
    tok = spec.tokenizer
    f_texts = [data.f_texts[i] for i in data.f_order]
    forget_dl = DataLoader(AuthorsDataset(tok, REF_MAX_LEN, f_texts, [1] * len(f_texts)),
                           batch_size=spec.batch_size, shuffle=False)
    retain_ds = AuthorsDataset(tok, REF_MAX_LEN, data.r_texts, data.r_labels)
    model = fresh(spec, device)
    frozen = copy.deepcopy(model).eval()
    for p in frozen.parameters():
        p.requires_grad_(False)
    enc_params, base = [], []
    for name, p in model.named_parameters():  # the encoder (model.bert in the authors' code)
        if not is_head(name):
            enc_params.append(p)
            base.append(base_state[name].to(device))
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    clean_loss = poison_loss = 0.0
    for step, fb in enumerate(forget_dl):
        model.train()
        model.zero_grad()
        optimizer.zero_grad()
        rb = torch.utils.data.default_collate([retain_ds[int(i)] for i in data.ridx[step]])
        ids_r, am_r, y_r = rb["input_ids"].to(device), rb["attention_mask"].to(device), rb["label"].to(device)
        ids_f, am_f, y_f = fb["input_ids"].to(device), fb["attention_mask"].to(device), fb["label"].to(device)
        logits_r = model(input_ids=ids_r, attention_mask=am_r).logits
        logits_f = model(input_ids=ids_f, attention_mask=am_f).logits
        with torch.no_grad():
            ref = frozen(input_ids=ids_f, attention_mask=am_f).logits
            kl = F.kl_div(F.log_softmax(logits_f, -1), F.log_softmax(ref, -1), reduction="batchmean",
                          log_target=True)
            weight = math.exp(-kl.item()) ** RGA_ALPHA
        loss_r = F.cross_entropy(logits_r, y_r)
        loss_f = F.cross_entropy(logits_f, y_f)
        loss = loss_r - weight * loss_f
        loss = loss + RGA_BETA * sum(torch.norm(p - b) for p, b in zip(enc_params, base))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        optimizer.step()
        clean_loss += loss_r.item()
        poison_loss += loss_f.item()
        stamps()
    del model, frozen, optimizer, base
    return stamps


# --------------------------------------------------------------------------- peak matmul, optimiser

def matmul_peak(device, dtype: str, sizes: list[int], repeats: int) -> dict[str, Any]:
    tdt = torch.bfloat16 if dtype == "bf16" else torch.float32
    out = {}
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=tdt)
        b = torch.randn(n, n, device=device, dtype=tdt)
        iters = 1 if device.type == "cpu" else 20
        for _ in range(2):
            torch.matmul(a, b)
        rates = []
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(iters):
                torch.matmul(a, b)
            if device.type == "cuda":
                torch.cuda.synchronize()
            rates.append(2 * n ** 3 * iters / (time.perf_counter() - t0))
        out[n] = median(rates)
        del a, b
    best = max(out, key=out.get)
    return {"per_size_flops": out, "peak_flops": out[best], "peak_size": best}


def optimizer_bench(spec: Spec, device, repeats: int) -> dict[str, float]:
    """Median ms of one AdamW step over the model's parameters: torch's default, foreach, fused."""
    model = fresh(spec, device)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    res = {}
    for label, kw in (("default", {}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
        try:
            opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY, **kw)
        except (RuntimeError, ValueError) as e:  # fused unsupported on this device/dtype
            log(f"  AdamW {label}: unavailable ({e})")
            continue
        opt.step()
        times = []
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1e3)
        res[label] = median(times)
        del opt
    del model
    gc.collect()
    return res


# --------------------------------------------------------------------------- driver

FT = {"ours": ft_ours, "trainer": ft_trainer, "reference": ft_reference}
UL = {"ours": ul_ours, "reference": ul_reference}


def round_robin(names: list[str], repeats: int, run_one: Callable[[str, int], None]) -> None:
    for r in range(repeats if names else 0):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            run_one(name, r)
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


def bench_model(spec: Spec, train, device, accelerator, a) -> dict[str, Any]:
    data = make_data(spec, train, accelerator)
    bs, W = spec.batch_size, spec.warmup
    tok, seq, emb = count_params(spec.model)
    spec.n_token_params, spec.n_seq_params, spec.n_embedding_params = tok, seq, emb
    # tokens of the timed fine-tune steps (steps W..W+S-1 of the shared order)
    timed_rows = data.ft_order[W * bs:]
    real_tokens = int(sum(len(data.ft_enc.ids[i]) for i in timed_rows))
    padded_ours = sum(bs * max(len(data.ft_enc.ids[i]) for i in data.ft_order[s:s + bs])
                      for s in range(W * bs, len(data.ft_order), bs))
    padded_ref = len(timed_rows) * REF_MAX_LEN
    useful_flops = 6 * (tok * real_tokens + seq * len(timed_rows))
    log(f"[{spec.name}] {spec.describe}")
    log(f"[{spec.name}] fine-tune: {spec.warmup}+{spec.steps} steps x batch {bs}, {a.repeats} rounds")

    names = list(FT)
    ft: dict[str, list[float]] = {n: [] for n in names}

    peaks: list[float] = []  # the matmul peak re-measured right before each of our runs

    def run_ft(name: str, r: int) -> None:
        if name == "ours":
            peaks.append(matmul_peak(device, a.dtype, [a.peak_size], 3)["peak_flops"])
        t0 = time.perf_counter()
        stamps = FT[name](spec, data, device, accelerator, a.dtype)
        n, secs = stamps.timed(W)
        ft[name].append(n * bs / secs)
        log(f"  round {r + 1} fine-tune {name:9s} {n * bs / secs:8.2f} samples/s "
            f"({n} timed steps in {secs:.2f} s; call {time.perf_counter() - t0:.1f} s)")

    round_robin(names, a.repeats, run_ft)

    ul: dict[str, list[float]] = {n: [] for n in UL}
    extra: dict[str, list[float]] = {}
    if not a.no_unlearn:
        log(f"[{spec.name}] unlearn (RGA): {spec.warmup}+{spec.unlearn_steps} steps x (forget {bs} + retain {bs})")
        base_state = make_base_state(spec)

        def run_ul(name: str, r: int) -> None:
            stamps = UL[name](spec, data, device, accelerator, a.dtype, base_state, extra)
            n, secs = stamps.timed(W)
            ul[name].append(n / secs)
            log(f"  round {r + 1} unlearn   {name:9s} {n / secs:8.3f} steps/s ({n} timed steps in {secs:.2f} s)")

        round_robin(list(UL), a.repeats, run_ul)
        base_state.clear()  # free the copies before the optimiser micro-benchmark

    log(f"[{spec.name}] AdamW step micro-benchmark")
    opt = optimizer_bench(spec, device, a.opt_repeats)

    def paired(d, other):  # median over rounds of ours/other from the same round
        return median([o / t for o, t in zip(d["ours"], d[other])])

    achieved_r = [useful_flops * rate / len(timed_rows) for rate in ft["ours"]]
    achieved = median(achieved_r)
    util = median([f / pk for f, pk in zip(achieved_r, peaks)])
    return {
        "model": spec.name, "describe": spec.describe, "batch_size": bs, "warmup_steps": W,
        "finetune_steps": spec.steps, "unlearn_steps": spec.unlearn_steps, "repeats": a.repeats,
        "params": {"per_token_non_embedding": tok, "per_sequence_head": seq, "embedding": emb,
                   "total": tok + seq + emb},
        "tokens": {"real": real_tokens, "processed_ours": padded_ours, "processed_reference": padded_ref},
        "finetune_samples_per_s": ft,
        "finetune_median": {k: median(v) for k, v in ft.items()},
        "finetune_ratio_ours_over": {k: paired(ft, k) for k in ft if k != "ours"},
        "unlearn_steps_per_s": ul,
        "unlearn_median": {k: median(v) for k, v in ul.items()},
        "unlearn_ratio_ours_over": {k: paired(ul, k) for k in ul if k != "ours"},
        "unlearn_ref_precompute_s": median(extra.get("ref_precompute_s", [])),
        "unlearn_forget_rows": len(data.f_enc),
        "adamw_step_ms": opt,
        "trainer_optimizer": dict(TRAINER_OPTIM),
        "useful_flops_per_step_timed": useful_flops / spec.steps,
        "achieved_flops": achieved,
        "achieved_flops_per_round": achieved_r,
        "matmul_peak_per_round": peaks,
        "utilisation": util,
    }


def versions() -> dict[str, str]:
    import accelerate
    import transformers

    cpu = platform.processor() or ""
    try:
        for line in os.popen("lscpu").read().splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "accelerate": accelerate.__version__,
            "cpu": cpu, "cpu_count": str(os.cpu_count()), "torch_threads": str(torch.get_num_threads()),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few steps and repeats (a few minutes on 2 CPU cores)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=("fp32", "bf16"), default=None,
                   help="ours and Trainer (the reference stays fp32); default bf16 on cuda, fp32 on cpu")
    p.add_argument("--json", metavar="OUT", help="write every measurement to this file")
    p.add_argument("--models", default="tiny,bert-base", help="comma list of tiny, bert-base")
    p.add_argument("--repeats", type=int, default=None, help="rounds of the round-robin")
    p.add_argument("--tiny-steps", type=int, default=None)
    p.add_argument("--tiny-unlearn-steps", type=int, default=None)
    p.add_argument("--tiny-batch", type=int, default=32)
    p.add_argument("--tiny-warmup", type=int, default=3)
    p.add_argument("--tiny-max-length", type=int, default=128)
    p.add_argument("--bert-steps", type=int, default=None)
    p.add_argument("--bert-unlearn-steps", type=int, default=None)
    p.add_argument("--bert-batch", type=int, default=None)
    p.add_argument("--bert-warmup", type=int, default=1)
    p.add_argument("--matmul-sizes", default=None, help="comma list of square sizes")
    p.add_argument("--no-unlearn", action="store_true", help="skip the unlearn comparison")
    a = p.parse_args(argv)
    q = a.quick
    a.repeats = a.repeats or (2 if q else 5)
    a.tiny_steps = a.tiny_steps or (20 if q else 100)
    a.tiny_unlearn_steps = a.tiny_unlearn_steps or (20 if q else 100)
    a.bert_steps = a.bert_steps or (2 if q else 20)
    a.bert_unlearn_steps = a.bert_unlearn_steps or (1 if q else 10)
    a.bert_batch = a.bert_batch or (8 if q else 32)
    a.opt_repeats = 3 if q else 5
    if a.dtype is None:
        a.dtype = "bf16" if a.device == "cuda" else "fp32"
    if a.matmul_sizes is None:
        a.matmul_sizes = "1024,1536,2048" if a.device == "cpu" else "2048,4096,8192"
    a.matmul_sizes = [int(x) for x in a.matmul_sizes.split(",")]
    a.models = [m.strip() for m in a.models.split(",") if m.strip()]
    for m in a.models:
        if m not in ("tiny", "bert-base"):
            p.error(f"--models: unknown model {m!r} (tiny, bert-base)")
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device here")
    return a


def main(argv=None) -> int:
    a = parse_args(argv)
    from accelerate import Accelerator

    from rga_engine.data import load_embedded

    t_start = time.perf_counter()
    device = torch.device(a.device)
    accelerator = Accelerator(cpu=a.device == "cpu", mixed_precision="bf16" if a.dtype == "bf16" else "no")
    device = accelerator.device
    train = load_embedded("sst2").train
    texts = [e.text for e in train]

    log(f"matmul peak ({a.dtype}, sizes {a.matmul_sizes})")
    mm = matmul_peak(device, a.dtype, a.matmul_sizes, 3 if a.quick else 7)
    peak = mm["peak_flops"]
    a.peak_size = mm["peak_size"]

    results = []
    for name in a.models:
        spec = make_tiny(texts, a) if name == "tiny" else make_bert_base(texts, a)
        results.append(bench_model(spec, train, device, accelerator, a))
        del spec
        gc.collect()

    wall = time.perf_counter() - t_start
    v = versions()
    print(f"speed.py: device {device} ({v['gpu'] or v['cpu']}, {v['cpu_count']} CPUs, "
          f"torch threads {v['torch_threads']}), dtype {a.dtype} for ours/Trainer, reference fp32; "
          f"torch {v['torch']}, transformers {v['transformers']}, accelerate {v['accelerate']}")
    print(f"matmul peak {a.dtype} at the start of the run: {peak / 1e9:.1f} GFLOP/s (n={mm['peak_size']}; "
          + ", ".join(f"{n}: {f / 1e9:.1f}" for n, f in mm["per_size_flops"].items())
          + "); utilisation divides by the rate re-measured before each of our rounds")
    print()
    print(f"{'model':10s} {'stage':9s} {'contender':10s} {'median':>10s} {'unit':9s} {'ours/this':>9s} {'runs':s}")
    for r in results:
        for k, v_ in r["finetune_samples_per_s"].items():
            ratio = "" if k == "ours" else f"{r['finetune_ratio_ours_over'][k]:.2f}x"
            runs = " ".join(f"{x:.1f}" for x in v_)
            print(f"{r['model']:10s} {'finetune':9s} {k:10s} {median(v_):10.2f} {'samples/s':9s} {ratio:>9s} {runs}")
        for k, v_ in r["unlearn_steps_per_s"].items():
            ratio = "" if k == "ours" else f"{r['unlearn_ratio_ours_over'][k]:.2f}x"
            runs = " ".join(f"{x:.3f}" for x in v_)
            if v_:
                print(f"{r['model']:10s} {'unlearn':9s} {k:10s} {median(v_):10.3f} {'steps/s':9s} {ratio:>9s} {runs}")
    print()
    for r in results:
        p_ = r["params"]
        tk = r["tokens"]
        print(f"{r['model']}: batch {r['batch_size']}, {r['finetune_steps']} timed fine-tune steps "
              f"({r['warmup_steps']} warm-up), "
              + ("" if a.no_unlearn else f"{r['unlearn_steps']} timed unlearn steps, ")
              + f"{r['repeats']} rounds; "
              f"tokens per timed run: real {tk['real']}, ours processes {tk['processed_ours']} "
              f"({tk['processed_ours'] / tk['real']:.2f}x), reference {tk['processed_reference']} "
              f"({tk['processed_reference'] / tk['real']:.2f}x)")
        print(f"{r['model']}: FLOPs = 6 x {p_['per_token_non_embedding'] / 1e6:.2f}M non-embedding params x real tokens "
              f"+ 6 x {p_['per_sequence_head'] / 1e6:.2f}M pooler/classifier params x samples "
              f"(embeddings {p_['embedding'] / 1e6:.2f}M and attention scores not counted); "
              f"ours achieves {r['achieved_flops'] / 1e9:.2f} GFLOP/s; utilisation {r['utilisation']:.3f} = median over "
              f"rounds of that round's rate / the n={a.peak_size} matmul rate measured just before it "
              f"({', '.join(f'{x / 1e9:.1f}' for x in r['matmul_peak_per_round'])} GFLOP/s)")
        if not a.no_unlearn:
            print(f"{r['model']}: RGA reference logits precomputed once by ours: {r['unlearn_ref_precompute_s']:.2f} s "
              f"for {r['unlearn_forget_rows']} forget rows (not in the steps/s)")
        ob = r["adamw_step_ms"]
        print(f"{r['model']}: one AdamW step (ms, median): " + ", ".join(f"{k} {v_:.1f}" for k, v_ in ob.items())
              + f"  [ours: fused AdamW (rga_engine.train.adamw); the reference: torch.optim.AdamW defaults; Trainer: {r['trainer_optimizer']}]")
    main_r = next((r for r in results if r["model"] == "bert-base"), results[-1])
    x = main_r["finetune_ratio_ours_over"]["reference"]
    y = main_r["finetune_ratio_ours_over"]["trainer"]
    z = main_r["utilisation"]
    for r in results:
        if r["finetune_ratio_ours_over"]["trainer"] < 1:
            print(f"NOTE: on {r['model']} our fine-tune loop is SLOWER than Trainer "
                  f"({r['finetune_ratio_ours_over']['trainer']:.2f}x)")
    print(f"ratios = median over rounds of (ours / contender) measured in the same round; "
          f"the summary below is the fine-tune loop on {main_r['model']}; wall {wall:.0f} s")
    if a.json:
        out = {"args": {k: v_ for k, v_ in vars(a).items()}, "versions": v, "matmul": mm, "results": results,
               "summary_model": main_r["model"], "speedup_vs_reference": x, "speedup_vs_trainer": y,
               "utilisation": z, "wall_s": wall}
        Path(a.json).write_text(json.dumps(out, indent=2, default=str), encoding="utf-8")
    print(f"speedup_vs_reference={x:.3f} speedup_vs_trainer={y:.3f} utilisation={z:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The two training loops -- fine-tune and unlearn -- on Hugging Face Accelerate.

One code path covers CPU, one GPU (bf16 autocast) and several processes (``accelerate launch``,
``torchrun``: DDP; only the main process emits events). With N processes every global batch is the
one a single process would draw, split into N slices (:func:`rga_engine.distributed.rank_slice`):
the loaders are sharded here, not by ``accelerator.prepare``, whose sharding drops the short
batches of length-grouped sampling.
Texts are tokenised once (no padding) and each batch is padded to its own longest row.
Every loop checks ``should_stop()`` after each step: cancelling finishes the step and returns.
A non-finite loss stops the loop with :class:`NonFiniteLoss` naming the step where it was seen;
it is watched on the device (:class:`FiniteGuard`) and, like every step statistic, read on the
host only on logging steps and at the end of a stage: no host sync in the other steps.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from rga_engine.distributed import rank_slice

Emit = Callable[..., None]  # emit(type, **fields)
ShouldStop = Callable[[], bool]


@dataclass
class Loop:
    """What every training loop needs besides the model, the data and its settings: where it runs
    (``accelerator``), how batches are padded, how it reports (``emit``), when it must stop
    (``should_stop``, checked after each step) and the seed of its batch order."""

    accelerator: Any
    pad_id: int
    emit: Emit
    should_stop: ShouldStop
    seed: int


class NonFiniteLoss(RuntimeError):
    pass


def nonfinite_message(c, stage: str, e: Exception) -> str:
    """A NaN / inf loss of ``stage``, with the settings of ``c`` (the whole config) that set the
    size of that stage's steps: the one-line error a run reports."""
    if stage.startswith("unlearn:"):
        from rga_engine.methods import OWN_LR, method_params

        name = stage.split(":", 1)[1]
        params, defaults = method_params(name, c.methods.get(name, {})), method_params(name, {})
        own_lr = params.pop(OWN_LR, None)  # the method's own lr, in place of unlearn.lr
        keys = [f"methods.{name}.{OWN_LR} = {own_lr!r}" if own_lr is not None else f"unlearn.lr = {c.unlearn.lr!r}"]
        keys += [f"methods.{name}.{k} = {v!r}" for k, v in params.items() if v != defaults.get(k)]
    elif stage == "pretrain":
        keys = [f"model.pretrain_lr = {c.model.pretrain_lr!r}"]
    else:
        keys = [f"train.lr = {c.train.lr!r}"]
    if not c.train.max_grad_norm:
        keys.append("train.max_grad_norm = 0 (no clipping)")
    return f"{e} (check {', '.join(keys)})"


# --------------------------------------------------------------------------- data

@dataclass
class Encoded:
    """A tokenised split: unpadded token ids, labels and the per-row poisoned flag."""

    ids: list[list[int]]
    labels: torch.Tensor
    poisoned: torch.Tensor
    n_tokens: torch.Tensor  # real tokens per row (padding excluded)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: list[int]) -> "Encoded":
        idx = torch.tensor(index, dtype=torch.long)
        return Encoded([self.ids[i] for i in index], self.labels[idx], self.poisoned[idx], self.n_tokens[idx])


def encode(tokenizer, texts: list[str], labels: list[int], poisoned: list[bool], max_length: int) -> Encoded:
    ids = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)["input_ids"]
    return Encoded(
        ids=ids,
        labels=torch.tensor(labels, dtype=torch.long),
        poisoned=torch.tensor(poisoned, dtype=torch.bool),
        n_tokens=torch.tensor([len(x) for x in ids], dtype=torch.long),
    )


def triggers_cut(enc: Encoded, clean: Encoded, source: list[int | None]) -> tuple[int, int]:
    """(rows whose inserted trigger truncation cut away entirely, rows with a trigger): a row's
    trigger is gone when its tokens are those of its clean text (row ``source[i]`` of ``clean``,
    encoded at the same ``max_length``; None: the row has no trigger), i.e. every inserted word lay
    past the last token kept."""
    rows = [(i, s) for i, s in enumerate(source) if s is not None]
    return sum(1 for i, s in rows if enc.ids[i] == clean.ids[s]), len(rows)


class _Rows(Dataset):
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def collate(enc: Encoded, index: list[int] | torch.Tensor, pad_id: int) -> dict[str, torch.Tensor]:
    """Pad the rows ``index`` of ``enc`` to their longest row."""
    index = [int(i) for i in index]
    rows = [enc.ids[i] for i in index]
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for j, r in enumerate(rows):
        input_ids[j, : len(r)] = torch.tensor(r, dtype=torch.long)
        attention[j, : len(r)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": enc.labels[index], "index": torch.tensor(index)}


class LengthGroupedBatches(torch.utils.data.Sampler):
    """Random batches of similar length: each epoch, a fresh permutation is cut into megabatches
    of ``mega`` batches, each megabatch sorted by length and cut into batches, and the batches
    are shuffled. Every row is used once per epoch; padding drops to a few percent."""

    def __init__(self, lengths: list[int], batch_size: int, generator: torch.Generator, mega: int = 50):
        self.lengths, self.batch_size, self.g, self.mega = lengths, batch_size, generator, mega

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self):
        perm = torch.randperm(len(self.lengths), generator=self.g).tolist()
        size = self.mega * self.batch_size
        batches = []
        for s in range(0, len(perm), size):
            chunk = sorted(perm[s : s + size], key=lambda i: self.lengths[i])
            batches += [chunk[k : k + self.batch_size] for k in range(0, len(chunk), self.batch_size)]
        for b in torch.randperm(len(batches), generator=self.g).tolist():
            yield batches[b]


class StratifiedBatches(torch.utils.data.Sampler):
    """Random batches with the class mix of the whole split (``train.batch_sampling =
    "stratified"``). Each epoch every class's rows are permuted and interleaved evenly (row j of
    class c at (j + u_c) / n_c, u_c a random offset), so that any run of rows has the split's mix;
    the order is cut into chunks of ``mega`` batches; in each chunk every class's rows are dealt out
    over the chunk's batches in near-equal runs, sorted by length first when ``by_length`` (so the
    batches stay of similar length, as :class:`LengthGroupedBatches`); each batch's rows are
    shuffled (several processes take contiguous slices) and the batches too. Every row is used
    once per epoch."""

    def __init__(self, lengths: list[int], labels: list[int], batch_size: int, generator: torch.Generator,
                 by_length: bool = True, mega: int = 50):
        self.lengths, self.labels, self.batch_size, self.g = lengths, labels, batch_size, generator
        self.by_length, self.mega = by_length, mega

    def __len__(self) -> int:
        size = self.mega * self.batch_size
        full, rest = divmod(len(self.lengths), size)
        return full * self.mega + math.ceil(rest / self.batch_size)

    def __iter__(self):
        keyed = []
        for c in sorted(set(self.labels)):
            rows = [i for i, label in enumerate(self.labels) if label == c]
            offset = torch.rand((), generator=self.g).item()
            keyed += [((j + offset) / len(rows), rows[k]) for j, k in enumerate(torch.randperm(len(rows), generator=self.g).tolist())]
        perm = [i for _, i in sorted(keyed)]
        size = self.mega * self.batch_size
        batches = []
        for s in range(0, len(perm), size):
            chunk = perm[s : s + size]
            n = math.ceil(len(chunk) / self.batch_size)
            parts: list[list[int]] = [[] for _ in range(n)]
            for c in sorted({self.labels[i] for i in chunk}):
                rows = [i for i in chunk if self.labels[i] == c]
                if self.by_length:
                    rows.sort(key=lambda i: self.lengths[i])
                for k in range(n):
                    parts[k] += rows[round(k * len(rows) / n) : round((k + 1) * len(rows) / n)]
            for part in parts:  # batches smaller than the classes (batch_size 1): no batch left empty
                if not part:
                    part.append(max(parts, key=len).pop())
            batches += [[b[j] for j in torch.randperm(len(b), generator=self.g).tolist()] for b in parts]
        for b in torch.randperm(len(batches), generator=self.g).tolist():
            yield batches[b]


class RankBatches(torch.utils.data.Sampler):
    """This rank's slice of every global batch of ``batches`` (:func:`rank_slice`): every rank
    walks the same global batches -- same seed, same order -- and keeps its own part; as many
    batches per epoch as one process has. One process: ``batches`` unchanged."""

    def __init__(self, batches, rank: int = 0, world: int = 1):
        self.batches, self.rank, self.world = batches, rank, world

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for b in self.batches:
            yield rank_slice(b, self.rank, self.world)


def loader(enc: Encoded, batch_size: int, pad_id: int, shuffle: bool, seed: int,
           group_by_length: bool = False, rank: int = 0, world: int = 1, stratified: bool = False) -> DataLoader:
    """Batches of ``enc`` (``rank`` of ``world`` processes: its slice of each global batch).
    One process: the batches of ``DataLoader(batch_size=, shuffle=, generator=seeded)``;
    ``stratified`` (with ``shuffle``): :class:`StratifiedBatches`, each with the split's class mix."""
    g = torch.Generator().manual_seed(seed)
    rows = _Rows(len(enc))
    if shuffle and stratified:
        batches = StratifiedBatches([len(r) for r in enc.ids], enc.labels.tolist(), batch_size, g, group_by_length)
        extra = {}
    elif shuffle and group_by_length:
        batches = LengthGroupedBatches([len(r) for r in enc.ids], batch_size, g)
        extra = {}
    else:
        batches = BatchSampler(RandomSampler(rows, generator=g) if shuffle else SequentialSampler(rows),
                               batch_size, drop_last=False)
        extra = {"generator": g}  # as DataLoader(shuffle=, generator=g): it draws its base seed from g
    return DataLoader(rows, batch_sampler=RankBatches(batches, rank, world),
                      collate_fn=lambda idx: collate(enc, idx, pad_id), **extra)


def to_device(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def shard(accelerator) -> dict[str, int]:
    """``rank`` and ``world`` of :func:`loader` for this process."""
    return {"rank": accelerator.process_index, "world": accelerator.num_processes}


def unwrap(accelerator, model):
    """The trained model as it leaves a loop: no DDP wrapper and no autocast wrapper of its own
    (accelerate adds one to ``forward`` under mixed precision), so that a fresh model and one
    loaded from the cache are evaluated alike, under the pipeline's one autocast context."""
    return accelerator.unwrap_model(model, keep_fp32_wrapper=False)


def forward(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def forward_pieces(model, enc: Encoded, index: list[int], pad_id: int, device, pieces: int) -> torch.Tensor:
    """Logits of the rows ``index`` of ``enc``, in that order, from ``pieces`` forward passes over
    the rows sorted by length, each piece padded to its own longest row. A random batch of
    SST-2 rows pads to ~3x its real tokens; sorted pieces cut that padding, and every row's
    logits are the one-batch logits up to rounding (the attention mask hides the padding). With
    fewer than two rows per piece (a small rank slice) it is one pass."""
    if pieces <= 1 or len(index) < 2 * pieces:
        return forward(model, to_device(collate(enc, index, pad_id), device))
    order = sorted(range(len(index)), key=lambda j: len(enc.ids[index[j]]))
    n = len(order)
    parts = [order[k * n // pieces:(k + 1) * n // pieces] for k in range(pieces)]
    out = [forward(model, to_device(collate(enc, [index[j] for j in part], pad_id), device)) for part in parts]
    return torch.cat(out)[torch.tensor(order).argsort().to(device)]  # back to the order of ``index``


# --------------------------------------------------------------------------- evaluation

def part_starts(n: int, batch_size: int, part: tuple[int, int] = (0, 1)) -> range:
    """Where the batches of ``part = (rank, world)`` begin in the length order of ``n`` rows:
    every ``world``-th batch of one process's, from the ``rank``-th. The one rule of the split
    evaluation (:func:`predict_logits`, :func:`rga_engine.cube.embed`;
    :func:`rga_engine.distributed.eval_part` picks the part)."""
    rank, world = part
    return range(rank * batch_size, n, batch_size * world)


@torch.no_grad()
def predict_logits(model, enc: Encoded, batch_size: int, pad_id: int, device,
                   part: tuple[int, int] = (0, 1)) -> torch.Tensor:
    """Logits for every row of ``enc`` (rows batched by length: little padding), in row order.

    ``part = (rank, world)``: only every ``world``-th batch from the ``rank``-th, the others'
    rows left 0 -- the batches are those of one process, so the parts' sum (one all-reduce,
    :func:`rga_engine.distributed.sum_over_ranks`) is one process's tensor, bit for bit."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(enc)), key=lambda i: len(enc.ids[i]))
    out = torch.zeros((len(enc), model.config.num_labels), dtype=torch.float32)
    for s in part_starts(len(order), batch_size, part):
        idx = order[s : s + batch_size]
        batch = collate(enc, idx, pad_id)
        logits = forward(model, {k: v.to(device) for k, v in batch.items() if k != "index"})
        out[idx] = logits.float().cpu()
    model.train(was_training)
    return out


def confusion(logits: torch.Tensor, labels: torch.Tensor, num_labels: int) -> list[list[int]]:
    pred = logits.argmax(-1)
    cm = torch.zeros((num_labels, num_labels), dtype=torch.long)
    cm.index_put_((labels, pred), torch.ones_like(labels), accumulate=True)
    return cm.tolist()


# --------------------------------------------------------------------------- helpers

class Meter:
    """Samples per second over the last few steps."""

    def __init__(self, window: int = 20):
        self.window = window
        self.marks: list[tuple[float, int]] = []
        self.total = 0

    def add(self, n: int) -> float:
        self.total += n
        self.marks.append((time.perf_counter(), self.total))
        self.marks = self.marks[-self.window :]
        if len(self.marks) < 2:
            return float("nan")
        (t0, n0), (t1, n1) = self.marks[0], self.marks[-1]
        return (n1 - n0) / max(t1 - t0, 1e-9)


class FiniteGuard:
    """Watches the loss on its device without a host sync: the first step whose loss is NaN or
    inf, and that loss, are kept as tensors (a few tiny kernels per step). :meth:`check` reads
    them -- one sync -- on logging steps, before an evaluation and at the end of a stage, and
    stops the stage with :class:`NonFiniteLoss` naming that step. The steps between the bad one
    and the check do run (on a GPU the loop never waits for the device), but their weights are
    thrown away with the stage: a stage that stops this way is neither cached nor evaluated."""

    def __init__(self, stage: str, device, accelerator=None):
        self.stage, self.accelerator = stage, accelerator  # several processes: checked together
        self.first = torch.zeros((), dtype=torch.long, device=device)  # 0: every loss finite so far
        self.value = torch.zeros((), dtype=torch.float32, device=device)

    def watch(self, loss: torch.Tensor, step: int) -> None:
        loss = loss.detach().float()
        new = ~torch.isfinite(loss) & (self.first == 0)
        self.first = torch.where(new, step, self.first)
        self.value = torch.where(new, loss, self.value)

    def check(self) -> None:
        first, value = self.first, self.value
        if self.accelerator is not None and self.accelerator.num_processes > 1:
            # a collective: the rank that saw the earliest bad step speaks for all, so that
            # every rank leaves the stage at the same check
            from accelerate.utils import gather

            firsts, values = gather(first.reshape(1)), gather(value.reshape(1))
            bad = torch.where(firsts > 0, firsts, torch.full_like(firsts, torch.iinfo(firsts.dtype).max))
            i = int(bad.argmin())
            first, value = firsts[i], values[i]
        first, value = first.item(), value.item()
        if first:
            raise NonFiniteLoss(f"{self.stage}: the loss became {value} at step {first}; stopped this stage")


def read_stats(loss: torch.Tensor, stats: dict[str, Any], accelerator=None) -> dict[str, float]:
    """The step's loss and statistics as Python floats: one host sync, on logging steps only.
    Several processes: the mean over the ranks (a collective), i.e. over the global batch."""
    names = ["loss", *stats]
    values = [loss.detach(), *(torch.as_tensor(v, device=loss.device).detach() for v in stats.values())]
    vec = torch.stack([v.double() for v in values])
    if accelerator is not None and accelerator.num_processes > 1:
        vec = accelerator.reduce(vec, "mean")
    return dict(zip(names, vec.tolist()))


def adamw(params, lr: float, weight_decay: float, eps: float = 1e-8) -> torch.optim.Optimizer:
    """AdamW, fused where the device supports it (the same algorithm; ~3x faster steps on CPU).
    ``params``: parameters, or param groups (dicts, each with its own ``lr``); frozen ones are left out."""
    params = list(params)
    if params and isinstance(params[0], dict):
        params = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in params]
    else:
        params = [p for p in params if p.requires_grad]
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, eps=eps, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, eps=eps)


class HeadError(ValueError):
    """``unlearn.head_lr_scale`` on a model with no classification head it can find (one line)."""


def unlearn_params(model, lr: float, head_lr_scale: float):
    """What AdamW steps while unlearning: the model's parameters at ``lr``, or, with
    ``unlearn.head_lr_scale`` ≠ 1, two groups: the body at ``lr`` and the classification head
    (:func:`rga_engine.models.is_head`) at ``lr × head_lr_scale``. Returns (params, head tensor count)."""
    if head_lr_scale == 1:
        return model.parameters(), 0
    from rga_engine.models import is_head

    body, head = [], []
    for name, p in model.named_parameters():
        (head if is_head(name) else body).append(p)
    if not any(p.requires_grad for p in head):
        raise HeadError(f"unlearn.head_lr_scale = {head_lr_scale!r}: this model has no trainable classification "
                         "head (a parameter named classifier, score or lm_head); use 1")
    return [{"params": body, "lr": lr}, {"params": head, "lr": lr * head_lr_scale}], sum(p.requires_grad for p in head)


def reset_moments(optimizer) -> None:
    """A new AdamW, in effect: drop every parameter's moments and step count (the authors create
    a new optimiser at the start of each epoch). Works through Accelerate's optimizer wrapper."""
    inner = getattr(optimizer, "optimizer", optimizer)
    inner.state.clear()


def lr_schedule(optimizer, name: str, total_steps: int, warmup_steps: int = 0):
    """``train.lr_schedule`` / ``unlearn.lr_schedule``: None for "constant" without warm-up, else
    transformers' schedule of that name over ``total_steps`` (the lr rising linearly from 0 over
    the first ``warmup_steps``), on the inner optimizer (through Accelerate's wrapper); it only
    sets the param groups' lr, so it runs on across :func:`reset_moments`."""
    if name == "constant" and not warmup_steps:
        return None
    from transformers import get_scheduler

    if name == "constant":
        name = "constant_with_warmup"
    return get_scheduler(name, getattr(optimizer, "optimizer", optimizer), num_warmup_steps=warmup_steps,
                         num_training_steps=max(total_steps, 1))


def _log_every(total_steps: int) -> int:
    return max(1, total_steps // 1500)


# --------------------------------------------------------------------------- fine-tune

def finetune(model, enc: Encoded, tc, loop: Loop, *, stage: str) -> dict[str, Any]:
    """Supervised fine-tuning (poisoning on ``train_poisoned``, Retrain on ``train_clean``).

    AdamW, gradient clipping, a constant learning rate -- the paper's protocol -- unless
    ``tc.lr_schedule`` makes it fall to 0 over the stage.
    Returns ``{"status": "finished"|"cancelled", "steps": n}``.
    """
    accelerator, pad_id, emit, should_stop, seed = loop.accelerator, loop.pad_id, loop.emit, loop.should_stop, loop.seed
    optimizer = adamw(model.parameters(), tc.lr, tc.weight_decay)
    data = loader(enc, tc.batch_size, pad_id, shuffle=tc.shuffle, seed=seed, group_by_length=tc.group_by_length,
                  stratified=tc.batch_sampling == "stratified", **shard(accelerator))
    model, optimizer = accelerator.prepare(model, optimizer)
    total = tc.epochs * len(data)
    schedule = lr_schedule(optimizer, tc.lr_schedule, total)
    emit("stage_started", stage=stage, total_steps=total)
    every, meter, step = _log_every(total), Meter(), 0
    guard = FiniteGuard(stage, accelerator.device, accelerator)
    model.train()
    for epoch in range(tc.epochs):
        if epoch and tc.reset_optimizer == "epoch":
            reset_moments(optimizer)
        for batch in data:
            batch = to_device(batch, accelerator.device)
            logits = forward(model, batch)
            loss = F.cross_entropy(logits.float(), batch["labels"])
            guard.watch(loss, step + 1)
            accelerator.backward(loss)
            if tc.max_grad_norm > 0:
                accelerator.clip_grad_norm_(model.parameters(), tc.max_grad_norm)
            lr = optimizer.param_groups[0]["lr"]  # this step's (the schedule moves it after the step)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if schedule is not None:
                schedule.step()
            step += 1
            rate = meter.add(len(batch["labels"]) * accelerator.num_processes)
            if step % every == 0 or step == total:  # the only host syncs of the loop
                guard.check()
                emit("step", stage=stage, step=step, epoch=epoch + step_fraction(step, len(data)),
                     **read_stats(loss, {}, accelerator), lr=lr, samples_per_s=rate)
            if should_stop():
                return {"status": "cancelled", "steps": step, "model": unwrap(accelerator, model)}
    guard.check()
    return {"status": "finished", "steps": step, "model": unwrap(accelerator, model)}


def step_fraction(step: int, per_epoch: int) -> float:
    """Progress inside the current epoch, for the ``epoch`` field of step events."""
    return round(((step - 1) % per_epoch + 1) / per_epoch, 4)


# --------------------------------------------------------------------------- pre-train (tiny)

class _MaskedLM(torch.nn.Module):
    """A BERT encoder with BERT's masked-LM head, output weights tied to the word embeddings (as
    in BERT). The loss is taken on the masked positions only, so the vocabulary projection runs
    on ~15 % of the tokens."""

    def __init__(self, encoder):
        from transformers.models.bert.modeling_bert import BertOnlyMLMHead

        super().__init__()
        self.encoder = encoder
        self.head = BertOnlyMLMHead(encoder.config)
        self.head.predictions.decoder.weight = encoder.embeddings.word_embeddings.weight
        # transformers 5 gives the head an output bias of its own that only BertForMaskedLM ties to
        # decoder.bias; here it would be a parameter without a gradient (an error under DDP).
        pred = self.head.predictions
        if isinstance(getattr(pred, "bias", None), torch.nn.Parameter) and pred.bias is not pred.decoder.bias:
            del pred.bias

    def forward(self, input_ids, attention_mask, labels, per=None):
        """The mean loss over the masked positions; ``per`` (several processes): the sum divided
        by ``per`` instead -- the global batch's masked positions over the number of processes,
        so that DDP's average over the ranks is the mean over the whole global batch."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        masked = labels != -100
        if per is None:
            return F.cross_entropy(self.head(hidden[masked]).float(), labels[masked])
        return F.cross_entropy(self.head(hidden[masked]).float(), labels[masked], reduction="sum") / per


def pretrain_mlm(model, enc: Encoded, mc, loop: Loop, *, tokenizer,
                 on_epoch: Callable[[int, float, float], None]) -> dict[str, Any]:
    """Masked-LM pre-training of a from-scratch BERT encoder (the ``tiny`` victim) on clean text.

    BERT's recipe through ``transformers``' ``DataCollatorForLanguageModeling``: 15 % of the
    tokens are picked; 80 % of those become [MASK], 10 % a random token, 10 % stay. AdamW at a
    constant ``mc.pretrain_lr``, clipping at 1.0, length-grouped batches. Only the encoder is
    kept (``model.base_model``); the MLM head is dropped afterwards, and the classification head
    and pooler keep their random init. The pooler is taken out of the encoder while it trains (it
    gets no gradient from the masked-LM loss: under DDP an unused parameter is an error) and put
    back afterwards. ``on_epoch(epoch, mean loss, seconds so far)`` after each epoch.
    Returns ``{"status": "finished"|"cancelled", "steps": n, "loss": mean loss of the last epoch}``.
    """
    base = model.base_model
    pooler = getattr(base, "pooler", None)
    if pooler is not None:
        base.pooler = None  # BertModel skips a None pooler
    try:
        return _pretrain_mlm(base, enc, mc, loop, tokenizer=tokenizer, on_epoch=on_epoch)
    finally:
        if pooler is not None:
            base.pooler = pooler


def _pretrain_mlm(base, enc: Encoded, mc, loop: Loop, *, tokenizer,
                  on_epoch: Callable[[int, float, float], None]) -> dict[str, Any]:
    accelerator, should_stop, seed = loop.accelerator, loop.should_stop, loop.seed
    from transformers import DataCollatorForLanguageModeling

    masker = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mc.pretrain_mask_prob, seed=seed)
    g = torch.Generator().manual_seed(seed)
    sampler = LengthGroupedBatches([len(r) for r in enc.ids], mc.pretrain_batch_size, g)
    rank, world = accelerator.process_index, accelerator.num_processes

    def masked(idx: list[int]) -> dict[str, torch.Tensor]:
        # the masks are drawn for the whole global batch on every rank (the masker's generator
        # advances as in one process), then each rank keeps its slice of the rows
        batch = masker([{"input_ids": enc.ids[i]} for i in idx])
        if world > 1:
            per = (batch["labels"] != -100).sum().clamp(min=1) / world
            keep = torch.tensor(rank_slice(range(len(idx)), rank, world), dtype=torch.long)
            batch = {k: v[keep] for k, v in batch.items()}
            batch["per"] = per.float()
        return batch

    data = DataLoader(_Rows(len(enc)), batch_sampler=sampler, collate_fn=masked)
    mlm = _MaskedLM(base)
    optimizer = adamw(mlm.parameters(), mc.pretrain_lr, 0.01)
    mlm, optimizer = accelerator.prepare(mlm, optimizer)
    mlm.train()
    step, t0, mean = 0, time.perf_counter(), float("nan")
    every = _log_every(mc.pretrain_epochs * len(data))
    guard = FiniteGuard("pretrain", accelerator.device, accelerator)
    for epoch in range(mc.pretrain_epochs):
        total, n = torch.zeros((), device=accelerator.device), 0
        for batch in data:
            batch = to_device(batch, accelerator.device)
            loss = mlm(batch["input_ids"], batch["attention_mask"], batch["labels"], batch.get("per"))
            guard.watch(loss, step + 1)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(mlm.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            total, n = total + loss.detach(), n + 1
            if step % every == 0:
                guard.check()
            if should_stop():
                return {"status": "cancelled", "steps": step, "loss": float("nan")}
        guard.check()
        if accelerator.num_processes > 1:  # the mean over the ranks' slices (a collective)
            total = accelerator.reduce(total, "mean")
        mean = total.item() / max(n, 1)
        on_epoch(epoch + 1, mean, time.perf_counter() - t0)
    return {"status": "finished", "steps": step, "loss": mean}


# --------------------------------------------------------------------------- unlearn

def retain_draws(labels: torch.Tensor, batch_size: int, how: str, g: torch.Generator) -> Callable[[], list[int]]:
    """Each unlearning step's retain batch: ``batch_size`` clean rows drawn with replacement.

    ``"random"`` (the authors'): uniformly over the rows, so a batch's class mix varies (16 SST-2
    rows: ±2 rows of either class). ``"stratified"``: each class gets its share of the batch
    (``batch_size × share``, the rows left by rounding drawn by the fractional parts), its rows
    drawn uniformly within the class, the batch in class order. (Not shuffled: a shuffle would draw
    from ``g`` and change every measured stratified run. Several processes take contiguous slices,
    :func:`rga_engine.distributed.rank_slice`, so a rank may see mostly one class; the gradients,
    averaged over equal slices, are the whole batch's all the same.)"""
    if how == "random":
        return lambda: torch.randint(len(labels), (batch_size,), generator=g).tolist()
    rows = [torch.nonzero(labels == c).flatten() for c in labels.unique(sorted=True)]
    want = torch.tensor([len(r) for r in rows], dtype=torch.float64) * batch_size / len(labels)
    base = want.floor().long()
    left, frac = batch_size - int(base.sum()), (want - base).float()

    def draw() -> list[int]:
        counts = base.clone()
        if left:
            counts[torch.multinomial(frac, left, replacement=False, generator=g)] += 1
        return torch.cat([r[torch.randint(len(r), (int(k),), generator=g)] for r, k in zip(rows, counts)]).tolist()
    return draw


def unlearn(model, method, forget: Encoded, retain: Encoded, ref_logits: torch.Tensor | None, uc, tc,
            loop: Loop, *, stage: str, on_eval: Callable[[Any, int, int], None],
            base_state: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """Unlearning: each step pairs one forget batch (a pass over D_p is one epoch) with one
    random retain batch from the clean rows; ``method`` turns their logits into the loss.
    Several processes: each rank takes its slice of both global batches (:func:`loader`).

    ``uc`` (the unlearn section) sets the steps, lr (``method.lr`` where the method has its own) and
    batch size; ``tc`` (the train section) the optimizer's weight decay, the clipping norm and the
    batch order, as for fine-tuning.
    ``ref_logits``: the poisoned model's logits on the forget rows (methods that need them);
    ``base_state``: the pre-trained weights θ_base (RGA's anchor).
    ``on_eval(model, epoch, step)`` is called every ``uc.eval_every`` epochs and at the end.
    """
    from rga_engine.methods import StepInputs

    accelerator, pad_id, emit, should_stop, seed = loop.accelerator, loop.pad_id, loop.emit, loop.should_stop, loop.seed
    weight_decay, max_grad_norm = tc.weight_decay, tc.max_grad_norm
    # the method's own lr ([methods.<name>] lr) or unlearn.lr: the peak that the schedule scales
    if uc.freeze_embeddings:  # before the optimizer and RGA's anchor see the parameters
        model.get_input_embeddings().weight.requires_grad_(False)
    peak = uc.lr if method.lr is None else method.lr
    params, head_tensors = unlearn_params(model, peak, uc.head_lr_scale)
    optimizer = adamw(params, peak, weight_decay, uc.adam_epsilon)
    rank, world = accelerator.process_index, accelerator.num_processes
    data = loader(forget, uc.batch_size, pad_id, shuffle=tc.shuffle, seed=seed, group_by_length=tc.group_by_length,
                  rank=rank, world=world)
    model, optimizer = accelerator.prepare(model, optimizer)
    if ref_logits is not None:
        ref_logits = ref_logits.to(accelerator.device)  # indexed on the device: no copy back per step
    per_epoch = len(data)
    total = uc.max_steps if uc.max_steps > 0 else uc.epochs * per_epoch
    epochs = math.ceil(total / per_epoch) if per_epoch else 0
    schedule = lr_schedule(optimizer, uc.lr_schedule, total, uc.warmup_steps)
    g = torch.Generator().manual_seed(seed + 1)
    draw_retain = retain_draws(retain.labels, uc.batch_size, uc.retain_sampling, g)
    emit("stage_started", stage=stage, total_steps=total)
    note = method.prepare(accelerator.unwrap_model(model), base_state)  # may refuse (RGA's AnchorError)
    if note:
        emit("log", level="info", message=note)
    if head_tensors:
        emit("log", level="info", message=f"{method.name}: the classification head's lr is {uc.head_lr_scale:g} × the "
                                          f"body's ({head_tensors} tensors, peak {peak * uc.head_lr_scale:g})")
    every, meter, step = _log_every(total), Meter(), 0
    guard = FiniteGuard(stage, accelerator.device, accelerator)
    model.train()
    for epoch in range(epochs):
        if epoch and uc.reset_optimizer == "epoch":
            reset_moments(optimizer)
        for fbatch in data:
            fbatch = to_device(fbatch, accelerator.device)
            # the global retain batch (the same draw on every rank), this rank's slice of it
            ridx = rank_slice(draw_retain(), rank, world)
            f_logits = forward(model, fbatch)
            r_logits = forward_pieces(model, retain, ridx, pad_id, accelerator.device, uc.retain_pieces)
            r_labels = retain.labels[ridx].to(accelerator.device)
            ref = ref_logits[fbatch["index"]] if ref_logits is not None else None
            loss, stats = method.loss(StepInputs(f_logits, fbatch["labels"], r_logits, r_labels, ref, model))
            guard.watch(loss, step + 1)
            accelerator.backward(loss)
            if max_grad_norm > 0:
                accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
            lr = optimizer.param_groups[0]["lr"]  # this step's (the schedule moves it after the step)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if schedule is not None:
                schedule.step()
            step += 1
            rate = meter.add((len(fbatch["labels"]) + len(ridx)) * accelerator.num_processes)
            if step % every == 0 or step == total:  # the only host syncs of the loop
                guard.check()
                values = read_stats(loss, stats, accelerator)
                emit("step", stage=stage, step=step, epoch=epoch + step_fraction(step, per_epoch),
                     loss=values.pop("loss"), lr=lr, samples_per_s=rate, **values)
            done = step >= total
            if not done and should_stop():
                return {"status": "cancelled", "steps": step, "model": unwrap(accelerator, model)}
            if done:
                break
        end_of_epoch = epoch + 1
        if step >= total:
            break
        if uc.eval_every and end_of_epoch % uc.eval_every == 0:
            guard.check()
            # still training: its autocast wrapper stays (the same dtype as the pipeline's context)
            on_eval(accelerator.unwrap_model(model), end_of_epoch, step)
    guard.check()
    return {"status": "finished", "steps": step, "model": unwrap(accelerator, model)}

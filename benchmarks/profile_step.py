#!/usr/bin/env python
"""Where the time of a fine-tune step goes: ours (``rga_engine.train.finetune``) against
``transformers.Trainer``, under ``torch.profiler`` (CPU activities), on speed.py's work.

Both loops are the functions ``benchmarks/speed.py`` times (``speed.ft_ours``, ``speed.ft_trainer``):
the same random-init model (one initialisation, deep-copied per run), the same SST-2 rows in the
same length-grouped batch order, fp32, fused AdamW, clipping at 1.0. Each run does ``--warmup``
steps that are not recorded, then ``--steps`` recorded ones; rounds alternate which loop goes
first. The profiler steps at the same point of both loops: right after the optimiser step and
``zero_grad``, where speed.py takes its time stamps; so a recorded step includes fetching and
padding a batch (Accelerate's loader fetches one batch ahead, so the last step of a run fetches
none; the bound counts the mean time of a fetch once per step).

Every event's *self* CPU time (its time minus its children's, so nothing is counted twice) goes
to exactly one row, decided in this order:

1. scope: inside the DataLoader's ``__next__`` -> data; inside ``Optimizer.step`` /
   ``Optimizer.zero_grad`` -> optimizer step; inside ``Accelerator.clip_grad_norm_`` -> grad
   clipping. While it profiles, this script wraps ``Accelerator.clip_grad_norm_``,
   ``Accelerator.backward`` and the model class's ``forward`` in ``record_function`` scopes.
2. the profiler step's own self time (Python between ops, outside every scope) -> loop Python;
   the forward scope's own self time (Hugging Face / ``nn.Module`` Python between ops) -> model
   Python; the autograd engine's wrappers (``autograd::engine::evaluate_function: *``,
   ``*Backward0``, ``AccumulateGrad``) and the backward scope's own self time -> autograd engine.
3. the op's own name: GEMM (``aten::addmm, mm, bmm, baddbmm, matmul, linear``), attention
   (``*scaled_dot_product*``, softmax), GELU, LayerNorm, dropout (``bernoulli_``,
   ``native_dropout``), embedding, loss (cross-entropy: ``log_softmax``, ``nll_loss``).
4. a generic op (``mul``, ``add``, ``copy_``, views...) takes the row of its nearest ancestor
   that has one of the rows of 3 other than GEMM (``aten::mul`` inside ``aten::dropout`` is
   dropout; ``aten::t`` inside ``aten::linear`` is not GEMM). On CPU dropout's backward is a plain
   ``MulBackward0``, so it lands in elementwise.
5. outside the forward and backward scopes -> loop-level ops (the loop's own tensor work);
   otherwise an ``aten::`` op -> elementwise/copies/views (model); anything else -> other.

The bound: a change to the *loop* cannot touch what runs inside the model's forward and backward
(same model code, same precision), nor the fused AdamW kernel (torch's fastest AdamW, which
Trainer uses too) or the clipping kernels (the protocol clips). It can remove at most the rows
``data``, ``loop-level ops`` and ``loop Python``. If they are a share r of a loop's step, no loop
change makes that step more than 1/(1 - r) faster. Both loops run the same kernels (the script
lists every op whose call count differs), so the best any loop can be ahead of Trainer is
1/(1 - r_Trainer), each share taken within its own profile. (The ratio of the two loops' total
times is printed too, but it compares runs made at different moments: on a shared machine it
moves with the load, while each share is measured within one run.)

    python benchmarks/profile_step.py                     # bert-base, batch 8, 2+3 steps, 2 rounds
    python benchmarks/profile_step.py --model tiny --steps 2 --rounds 1   # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Iterable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import speed  # noqa: E402  (benchmarks/speed.py: model, data, and the two loops)
import torch  # noqa: E402

# --------------------------------------------------------------------------- categories

FWD, BWD, CLIP = "## forward ##", "## backward ##", "## clip_grad_norm_ ##"
DATA_PREFIX = "enumerate(DataLoader)"
OPT_PREFIXES = ("Optimizer.step", "Optimizer.zero_grad")
STEP_PREFIX = "ProfilerStep"  # "ProfilerStep#<n>", listed by events() as "ProfilerStep*"

GEMM = "GEMM"
ATTN = "attention (SDPA, softmax)"
GELU = "GELU"
LN = "LayerNorm"
DROP = "dropout"
EMB = "embedding"
LOSS = "loss (cross-entropy)"
ELEM = "elementwise/copies/views (model)"
AUTOGRAD = "autograd engine"
MODEL_PY = "model Python (forward, outside ops)"
OPT = "optimizer step (fused AdamW)"
CLIPROW = "grad clipping (norms, scale)"
DATA = "data (collate, pad, batch)"
LOOP_OPS = "loop-level ops"
LOOP_PY = "loop Python (outside ops)"
OTHER = "everything else"

ROWS = [GEMM, ATTN, GELU, LN, DROP, EMB, LOSS, ELEM, AUTOGRAD, MODEL_PY, OPT, CLIPROW, DATA, LOOP_OPS,
        LOOP_PY, OTHER]
REMOVABLE = (DATA, LOOP_OPS, LOOP_PY)  # what a change to the loop alone could remove, at most

_KERNELS = {
    GEMM: {"aten::addmm", "aten::mm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear",
           "aten::addbmm", "aten::_addmm_activation"},
    LOSS: {"aten::cross_entropy_loss", "aten::log_softmax", "aten::_log_softmax", "aten::_log_softmax_backward_data",
           "aten::nll_loss", "aten::nll_loss_nd", "aten::nll_loss_forward", "aten::nll_loss_backward"},
    ATTN: {"aten::softmax", "aten::_softmax", "aten::_safe_softmax", "aten::_softmax_backward_data"},
    GELU: {"aten::gelu", "aten::gelu_backward"},
    LN: {"aten::layer_norm", "aten::native_layer_norm", "aten::native_layer_norm_backward"},
    DROP: {"aten::dropout", "aten::native_dropout", "aten::native_dropout_backward", "aten::bernoulli_",
           "aten::feature_dropout"},
    EMB: {"aten::embedding", "aten::embedding_backward", "aten::embedding_dense_backward"},
}
# autograd node names (the wrappers' children inherit the row; the wrappers' own time is engine time)
_NODES = [("LogSoftmaxBackward", LOSS), ("NllLossBackward", LOSS), ("ScaledDotProduct", ATTN),
          ("SoftmaxBackward", ATTN), ("GeluBackward", GELU), ("LayerNormBackward", LN),
          ("DropoutBackward", DROP), ("EmbeddingBackward", EMB)]


def kernel_row(name: str) -> str | None:
    """The row an op's own name gives it (rule 3), or None for a generic op."""
    for row, names in _KERNELS.items():
        if name in names:
            return row
    if "scaled_dot_product" in name or "flash_attention" in name:
        return ATTN
    return None


def _node_row(name: str) -> str | None:
    for key, row in _NODES:
        if key in name:
            return row
    return None


def is_autograd_wrapper(name: str) -> bool:
    return (name.startswith("autograd::engine::evaluate_function")
            or "AccumulateGrad" in name
            or (not name.startswith("aten::") and "Backward" in name))


def categorize(name: str, ancestors: tuple[str, ...]) -> str:
    """The row of one event, from its name and its ancestors' names (nearest first)."""
    chain = (name, *ancestors)
    if any(n.startswith(DATA_PREFIX) for n in chain):
        return DATA
    if any(n.startswith(OPT_PREFIXES) for n in chain):
        return OPT
    if CLIP in chain:
        return CLIPROW
    if name.startswith(STEP_PREFIX):
        return LOOP_PY
    if name == FWD:
        return MODEL_PY
    if name == BWD or is_autograd_wrapper(name):
        return AUTOGRAD
    row = kernel_row(name)
    if row:
        return row
    for a in ancestors:
        row = kernel_row(a) or _node_row(a)
        if row and row != GEMM:
            return row
    if FWD not in ancestors and BWD not in ancestors:
        return LOOP_OPS
    return ELEM if name.startswith("aten::") else OTHER


Event = tuple[str, tuple[str, ...], float]  # (name, ancestor names nearest first, self time in us)


def group(events: Iterable[Event]) -> dict[str, float]:
    """Self time (us) per row; the rows sum to the events' total self time."""
    out = dict.fromkeys(ROWS, 0.0)
    for name, anc, self_us in events:
        out[categorize(name, anc)] += self_us
    return out


def per_op(events: Iterable[Event]) -> dict[str, list[float]]:
    """name -> [calls, self us] (for the ours/Trainer difference)."""
    out: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for name, _, self_us in events:
        if name.startswith(STEP_PREFIX):
            name = "ProfilerStep*"
        out[name][0] += 1
        out[name][1] += self_us
    return dict(out)


def bound(ms: dict[str, float]) -> dict[str, float]:
    """One loop's removable share (rows a loop change could remove) and the best speed-up removing
    it could give: 1 / (1 - share)."""
    total = sum(ms.values())
    removable = sum(ms[r] for r in REMOVABLE)
    share = removable / total
    return {"total_ms": total, "removable_ms": removable, "removable_share": share,
            "max_speedup": 1 / (1 - share), "gemm_share": ms[GEMM] / total}


def flatten(events) -> list[Event]:
    """torch FunctionEvents -> (name, ancestors, self us)."""
    out = []
    for e in events:
        anc, p = [], e.cpu_parent
        while p is not None:
            anc.append(p.name)
            p = p.cpu_parent
        out.append((e.name, tuple(anc), float(e.self_cpu_time_total)))
    return out


# --------------------------------------------------------------------------- profiling

@contextlib.contextmanager
def scopes(model_cls):
    """record_function scopes around the model's forward, Accelerator.backward and
    Accelerator.clip_grad_norm_ (signatures kept: Trainer inspects ``forward``)."""
    from accelerate import Accelerator

    saved = [(model_cls, "forward", model_cls.__dict__["forward"], FWD),
             (Accelerator, "backward", Accelerator.__dict__["backward"], BWD),
             (Accelerator, "clip_grad_norm_", Accelerator.__dict__["clip_grad_norm_"], CLIP)]

    def wrap(fn, label):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            with torch.profiler.record_function(label):
                return fn(*args, **kwargs)
        return inner

    for owner, attr, fn, label in saved:
        setattr(owner, attr, wrap(fn, label))
    try:
        yield
    finally:
        for owner, attr, fn, _ in saved:
            setattr(owner, attr, fn)


def profile_run(name: str, spec, data, device, accelerator, warmup: int, steps: int) -> dict:
    got: dict = {}

    def ready(p) -> None:
        got["events"] = flatten(p.events())
        got["threads"] = len({e.thread for e in p.events()})

    sched = torch.profiler.schedule(wait=warmup - 1, warmup=1, active=steps, repeat=1)
    with scopes(type(spec.model)), torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU], schedule=sched, on_trace_ready=ready) as prof:
        hook = prof.step
        speed.Stamps.hooks.append(hook)
        try:
            stamps = speed.FT[name](spec, data, device, accelerator, "fp32")
        finally:
            speed.Stamps.hooks.remove(hook)
    if "events" not in got:
        raise RuntimeError(f"{name}: the profiler recorded nothing ({len(stamps.t)} steps)")
    n, secs = stamps.timed(warmup)
    ev = got["events"]
    fetches = sum(1 for name, _, _ in ev if name.startswith(DATA_PREFIX))
    return {"wall_ms": secs * 1e3 / n, "events": ev, "threads": got["threads"], "fetches": fetches,
            "rows_us": group(ev), "ops": per_op(ev)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("bert-base", "tiny"), default="bert-base")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2, help="steps before the recorded ones (>= 1)")
    p.add_argument("--steps", type=int, default=3, help="recorded steps per run")
    p.add_argument("--rounds", type=int, default=2, help="runs of each loop (order alternates)")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: torch's default)")
    p.add_argument("--top", type=int, default=12, help="op names listed in the ours/Trainer difference")
    a = p.parse_args(argv)
    if a.warmup < 1 or a.steps < 1 or a.rounds < 1:
        p.error("--warmup, --steps and --rounds must be >= 1")
    return a


def main(argv=None) -> int:
    a = parse_args(argv)
    from accelerate import Accelerator

    from rga_engine.data import load_embedded

    t_start = time.perf_counter()
    if a.threads:
        torch.set_num_threads(a.threads)
    accelerator = Accelerator(cpu=True, mixed_precision="no")
    device = accelerator.device
    train = load_embedded("sst2").train
    texts = [e.text for e in train]
    ns = SimpleNamespace(bert_batch=a.batch, bert_steps=a.steps, bert_unlearn_steps=1, bert_warmup=a.warmup,
                         tiny_batch=a.batch, tiny_steps=a.steps, tiny_unlearn_steps=1, tiny_warmup=a.warmup,
                         tiny_max_length=128)
    spec = speed.make_bert_base(texts, ns) if a.model == "bert-base" else speed.make_tiny(texts, ns)
    data = speed.make_data(spec, train, accelerator)
    speed.log(f"[{spec.name}] {spec.describe}; batch {a.batch}, {a.warmup} warm-up + {a.steps} profiled steps, "
              f"{a.rounds} rounds")

    names = ["ours", "trainer"]
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(a.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            res = profile_run(name, spec, data, device, accelerator, a.warmup, a.steps)
            runs[name].append(res)
            speed.log(f"  round {r + 1} {name:8s} {res['wall_ms']:9.1f} ms/step wall (profiled), "
                      f"{sum(res['rows_us'].values()) / 1e3 / a.steps:9.1f} ms/step in events, "
                      f"{len(res['events'])} events on {res['threads']} thread(s)")
            del res["events"]
            gc.collect()

    per = a.steps * a.rounds
    ms = {n: {row: sum(r_["rows_us"][row] for r_ in runs[n]) / 1e3 / per for row in ROWS} for n in names}
    wall = {n: statistics.mean(r_["wall_ms"] for r_ in runs[n]) for n in names}
    tot = {n: sum(ms[n].values()) for n in names}
    # Accelerate's loader fetches one batch ahead, so the last step of a run fetches none: the bound
    # counts one fetch per step (the data row of the table is what was recorded)
    fetches = {n: sum(r_["fetches"] for r_ in runs[n]) for n in names}
    per_fetch = {n: ms[n][DATA] * per / fetches[n] if fetches[n] else 0.0 for n in names}
    b = {n: bound({**ms[n], DATA: max(ms[n][DATA], per_fetch[n])}) for n in names}
    v = speed.versions()

    print(f"profile_step.py: {spec.name} ({spec.describe}), batch {a.batch}, fp32, {a.warmup} warm-up + "
          f"{a.steps} profiled steps x {a.rounds} rounds per loop; torch {v['torch']}, transformers "
          f"{v['transformers']}, accelerate {v['accelerate']}; {v['cpu']}, {v['cpu_count']} CPUs, "
          f"torch threads {v['torch_threads']}")
    print()
    print("| row | ours ms/step | ours share | Trainer ms/step | Trainer share | ours - Trainer ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in ROWS:
        o, t = ms["ours"][row], ms["trainer"][row]
        print(f"| {row} | {o:.1f} | {100 * o / tot['ours']:.1f} % | {t:.1f} | {100 * t / tot['trainer']:.1f} % "
              f"| {o - t:+.1f} |")
    print(f"| **sum of self times** | **{tot['ours']:.1f}** | 100 % | **{tot['trainer']:.1f}** | 100 % "
          f"| {tot['ours'] - tot['trainer']:+.1f} |")
    print(f"| wall time per step (profiled) | {wall['ours']:.1f} | | {wall['trainer']:.1f} | | "
          f"{wall['ours'] - wall['trainer']:+.1f} |")
    print()
    print("per round, wall ms/step: " + "; ".join(
        f"{n} " + " ".join(f"{r_['wall_ms']:.0f}" for r_ in runs[n]) for n in names)
          + f"  (Trainer/ours wall time: {wall['trainer'] / wall['ours']:.3f}x; the runs are at different moments, "
            f"so on a shared machine this ratio moves with the load)")

    # ops present in one loop only, or called a different number of times
    ops = {n: defaultdict(lambda: [0, 0.0]) for n in names}
    for n in names:
        for r_ in runs[n]:
            for op, (c, us) in r_["ops"].items():
                ops[n][op][0] += c
                ops[n][op][1] += us
    allops = set(ops["ours"]) | set(ops["trainer"])
    rows_ = []
    for op in allops:
        (co, uo), (ct, ut) = ops["ours"].get(op, [0, 0.0]), ops["trainer"].get(op, [0, 0.0])
        rows_.append((op, co / per, ct / per, (uo - ut) / 1e3 / per))
    calls = sorted((r_ for r_ in rows_ if r_[1] != r_[2]), key=lambda x: (-abs(x[1] - x[2]), x[0]))
    same = sorted((r_ for r_ in rows_ if r_[1] == r_[2]), key=lambda x: -abs(x[3]))[: a.top]
    print()
    print(f"ops called a different number of times per step (all {len(calls)}), then the {a.top} ops with the "
          f"same calls whose self time differs most (the same work, timed in different runs):")
    print("| op | ours calls/step | Trainer calls/step | ours - Trainer self ms/step |")
    print("|---|---:|---:|---:|")
    for op, co, ct, d in calls + same:
        print(f"| `{op}` | {co:g} | {ct:g} | {d:+.2f} |")
    only_o = sorted(op for op in allops if op not in ops["trainer"])
    only_t = sorted(op for op in allops if op not in ops["ours"])
    print(f"only in ours: {', '.join(only_o) or '-'}")
    print(f"only in Trainer: {', '.join(only_t) or '-'}")
    print()
    print(f"data: {fetches['ours']} / {fetches['trainer']} batch fetches (ours / Trainer) in {per} recorded steps "
          f"(Accelerate's loader fetches one batch ahead; a run's last step fetches none); per fetch "
          f"{per_fetch['ours']:.2f} / {per_fetch['trainer']:.2f} ms, counted once per step below")
    print("bound: a change to the loop can remove at most data + loop-level ops + loop Python:")
    for n, label in (("ours", "ours"), ("trainer", "Trainer")):
        print(f"  {label}: {b[n]['removable_ms']:.1f} ms of {b[n]['total_ms']:.1f} ms per step = "
              f"{100 * b[n]['removable_share']:.2f} % -> at most 1/(1 - {b[n]['removable_share']:.4f}) = "
              f"{b[n]['max_speedup']:.3f}x faster; GEMM is {100 * b[n]['gemm_share']:.1f} % of the step")
    best = b["trainer"]["max_speedup"]
    print(f"  a loop with no overhead at all, running these same kernels, would be at most {best:.3f}x Trainer: "
          f"1.2x is {'REACHABLE' if best >= 1.2 else 'NOT reachable'} by changing the loop")
    print(f"  (the ceiling if every non-GEMM row of our step were free: {1 / b['ours']['gemm_share']:.2f}x; "
          f"wall {time.perf_counter() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

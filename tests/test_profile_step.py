"""benchmarks/profile_step.py without training: the row each profiler event goes to, on a
hand-made event list shaped like torch.profiler's (name, ancestors nearest first, self us)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "profile_step.py"
_spec = importlib.util.spec_from_file_location("profile_step", SCRIPT)
ps = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("profile_step", ps)
_spec.loader.exec_module(ps)

STEP = ("ProfilerStep#3",)
FWD = (ps.FWD, *STEP)
BWD = (ps.BWD, *STEP)


def node(name: str) -> str:
    return f"autograd::engine::evaluate_function: {name}"


EVENTS = [
    # (name, ancestors nearest first, self us, expected row)
    ("ProfilerStep*", (), 50.0, ps.LOOP_PY),
    (ps.FWD, STEP, 7.0, ps.MODEL_PY),
    ("aten::linear", FWD, 1.0, ps.GEMM),
    ("aten::t", ("aten::linear", *FWD), 2.0, ps.ELEM),  # a view under linear is not GEMM time
    ("aten::addmm", ("aten::linear", *FWD), 400.0, ps.GEMM),
    ("aten::scaled_dot_product_attention", FWD, 3.0, ps.ATTN),
    ("aten::bmm", ("aten::_scaled_dot_product_attention_math", "aten::scaled_dot_product_attention", *FWD),
     30.0, ps.GEMM),
    ("aten::mul", ("aten::_scaled_dot_product_attention_math", "aten::scaled_dot_product_attention", *FWD),
     4.0, ps.ATTN),
    ("aten::_softmax", ("aten::softmax", *FWD), 20.0, ps.ATTN),
    ("aten::bernoulli_", ("aten::dropout", *FWD), 9.0, ps.DROP),
    ("aten::mul", ("aten::dropout", *FWD), 5.0, ps.DROP),
    ("aten::gelu", FWD, 11.0, ps.GELU),
    ("aten::native_layer_norm", ("aten::layer_norm", *FWD), 13.0, ps.LN),
    ("aten::index_select", ("aten::embedding", *FWD), 6.0, ps.EMB),
    ("aten::add", FWD, 8.0, ps.ELEM),
    ("aten::_log_softmax", ("aten::log_softmax", "aten::cross_entropy_loss", *STEP), 2.0, ps.LOSS),
    # the loop's own ops (outside forward/backward): ours' finite guard, Trainer's isnan
    ("aten::isfinite", STEP, 1.5, ps.LOOP_OPS),
    ("aten::item", STEP, 0.5, ps.LOOP_OPS),
    # backward
    (ps.BWD, STEP, 3.0, ps.AUTOGRAD),
    (node("AddmmBackward0"), BWD, 2.0, ps.AUTOGRAD),
    ("AddmmBackward0", (node("AddmmBackward0"), *BWD), 1.0, ps.AUTOGRAD),
    ("aten::mm", ("AddmmBackward0", node("AddmmBackward0"), *BWD), 700.0, ps.GEMM),
    ("aten::sum", ("AddmmBackward0", node("AddmmBackward0"), *BWD), 10.0, ps.ELEM),
    ("aten::gelu_backward", ("GeluBackward0", node("GeluBackward0"), *BWD), 12.0, ps.GELU),
    ("aten::mul", ("MulBackward0", node("MulBackward0"), *BWD), 6.0, ps.ELEM),
    ("aten::fill_", ("aten::zeros", "EmbeddingBackward0", node("EmbeddingBackward0"), *BWD), 3.0, ps.EMB),
    ("aten::_log_softmax_backward_data", ("LogSoftmaxBackward0", node("LogSoftmaxBackward0"), *BWD), 1.0, ps.LOSS),
    ("aten::_softmax_backward_data", ("SoftmaxBackward0", node("SoftmaxBackward0"), *BWD), 15.0, ps.ATTN),
    ("torch::autograd::AccumulateGrad", (node("torch::autograd::AccumulateGrad"), *BWD), 4.0, ps.AUTOGRAD),
    ("aten::detach", ("torch::autograd::AccumulateGrad", node("torch::autograd::AccumulateGrad"), *BWD),
     1.0, ps.ELEM),
    ("some::custom_op", BWD, 1.0, ps.OTHER),
    # scopes win over the op's own name
    (ps.CLIP, STEP, 2.0, ps.CLIPROW),
    ("aten::_foreach_norm", (ps.CLIP, *STEP), 40.0, ps.CLIPROW),
    ("aten::mul", ("aten::_foreach_mul_", ps.CLIP, *STEP), 30.0, ps.CLIPROW),
    ("Optimizer.step#AdamW.step", STEP, 5.0, ps.OPT),
    ("aten::_fused_adamw_", ("Optimizer.step#AdamW.step", *STEP), 300.0, ps.OPT),
    ("aten::mm", ("Optimizer.step#AdamW.step", *STEP), 1.0, ps.OPT),  # a GEMM inside the optimiser scope
    ("enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__", STEP, 25.0, ps.DATA),
    ("aten::copy_", ("aten::to", "enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__", *STEP),
     2.0, ps.DATA),
]


@pytest.mark.parametrize("name,anc,us,row", EVENTS, ids=[f"{i}:{e[0]}" for i, e in enumerate(EVENTS)])
def test_categorize(name, anc, us, row):
    assert ps.categorize(name, anc) == row


def test_group_counts_every_event_once():
    events = [(n, a, us) for n, a, us, _ in EVENTS]
    rows = ps.group(events)
    assert list(rows) == ps.ROWS
    assert sum(rows.values()) == pytest.approx(sum(us for _, _, us in events))
    assert rows[ps.GEMM] == pytest.approx(1.0 + 400.0 + 30.0 + 700.0)
    assert rows[ps.DROP] == pytest.approx(14.0)
    assert rows[ps.DATA] == pytest.approx(27.0)


def test_bound():
    ms = dict.fromkeys(ps.ROWS, 0.0)
    ms[ps.GEMM], ms[ps.OPT], ms[ps.DATA], ms[ps.LOOP_PY], ms[ps.LOOP_OPS] = 600.0, 200.0, 100.0, 80.0, 20.0
    b = ps.bound(ms)
    assert b["total_ms"] == pytest.approx(1000.0)
    assert b["removable_share"] == pytest.approx(0.2)
    assert b["max_speedup"] == pytest.approx(1.25)
    assert b["gemm_share"] == pytest.approx(0.6)


def test_per_op_merges_profiler_steps():
    ops = ps.per_op([("ProfilerStep#4", (), 5.0), ("ProfilerStep*", (), 7.0), ("aten::mm", STEP, 3.0)])
    assert ops == {"ProfilerStep*": [2, 12.0], "aten::mm": [1, 3.0]}

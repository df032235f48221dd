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
(``model.pooling = "cls"`` / ``"last"``) is not a Hugging Face class: such a model is refused in
one line. ``rga-tui export`` is the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["ExportError", "write"]


class ExportError(ValueError):
    """A model that cannot be exported (one line)."""


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
    ])


def write(run_dir: Path | str, name: str, out: Path | str) -> Path:
    """Write the model ``name`` of ``run_dir`` to the new or empty folder ``out``; returns ``out``.

    Raises :class:`FileNotFoundError` when the run saved no such model (the message lists what it
    saved), :class:`ExportError` when ``out`` holds files, the saved file is damaged or the model
    has the authors' head, :class:`~rga_engine.report.ReportError` when the run's summary.json is
    missing or damaged."""
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
    if cfg.model.pooling != "auto":
        raise ExportError(f"model.pooling = {cfg.model.pooling!r}: the authors' head is not a Hugging Face class; "
                          "export takes a model with pooling = 'auto'")
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
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "README.md").write_text(_card(name, summary, cfg, run_dir), encoding="utf-8")
    return out

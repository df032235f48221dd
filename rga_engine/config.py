"""Preset schema: typed dataclasses, TOML loading, ``extends``, ``--set`` overrides, validation.

A preset is a TOML file with the sections ``[data]``, ``[attack]``, ``[model]``, ``[train]``,
``[unlearn]``, ``[methods.<name>]`` and ``[output]`` (plus optional top-level ``name``,
``description`` and ``extends``).  Every key has a default taken from the paper's protocol
(``docs/architecture.md`` lists them).  Any mistake -- an unknown key, a wrong type, an
out-of-range value, a missing file -- raises :class:`ConfigError` with one line naming the key,
the bad value and what is allowed.
"""

from __future__ import annotations

import codecs
import dataclasses
import math
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import tomli_w

from rga_engine.errors import ConfigError  # re-exported: rga_engine.config.ConfigError

DATASETS = ("sst2", "hsol", "agnews", "local", "hub", "rga-csv")
ATTACKS = ("badnets", "addsent", "hiddenkiller", "none")
PROTOCOLS = ("add", "replace")
DTYPES = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")
FORGET_SETS = ("oracle", "cube")
CUBE_METRICS = ("cosine", "euclidean")
POOLINGS = ("auto", "cls", "last")
RESETS = ("never", "epoch")
LR_SCHEDULES = ("constant", "linear", "cosine")
RETAIN_SAMPLINGS = ("random", "stratified")
BATCH_SAMPLINGS = ("random", "stratified")


@dataclass
class DataConfig:
    dataset: str = "sst2"
    path: str = ""
    text_column: str | list[str] = "text"  # a list: the columns joined with a space, in that order
    label_column: str = "label"
    paraphrase_column: str = ""
    train_split: str = "train"
    test_split: str = "test"  # "" = none: the tool splits the train file / split (test_size, split_seed)
    label_names: list[str] = field(default_factory=list)
    train_limit: int = 0  # 0 = all rows; else a stratified subsample (quick runs, tests)
    test_limit: int = 0
    # csv / tsv: false = the file has no header row (then column_names names its columns)
    header: bool = True
    column_names: list[str] = field(default_factory=list)
    # raw label value as written in the file -> class name; class ids in the map's order
    label_map: dict[str, str] = field(default_factory=dict)
    # the split the tool makes of one file (or a folder holding one data file): stratified
    test_size: float = 0.2
    split_seed: int = 0
    # the data's own seed: the train_limit / test_limit samples and the attack's draws (which rows
    # are poisoned, where each trigger goes, in training and test rows). -1: the run's seed
    # (train.seed), so every seed is another sample; >= 0 keeps one poisoned dataset whatever
    # train.seed draws (the head, the batch order, dropout), as the authors' fixed CSV files do
    seed: int = -1
    drop_empty: bool = False  # drop rows whose text is empty (else they are refused)
    encoding: str = "utf-8"


@dataclass
class AttackConfig:
    name: str = "badnets"
    target: int = -1  # -1 = dataset default (SST-2 1, HSOL 0, AG News 0)
    poison_rate: float = 0.1
    protocol: str = "add"
    triggers: list[str] = field(default_factory=lambda: ["mn"])
    num_insertions: int = 1
    # AddSent's sentence; "" = the dataset's (the authors' data): "I watch this 3D movie" on SST-2
    # (and local / hub data), "no cross, no crown" on HSOL and AG News
    sentence: str = ""


@dataclass
class ModelConfig:
    name: str = "tiny"  # tiny | minilm | a Hugging Face id | a local folder
    max_length: int = 128
    # auto = bf16 autocast on CUDA and on CPUs with native bf16 (AMX / AVX512-BF16, detected at
    # run time), fp32 on other CPUs; bf16 = bf16 autocast on CUDA and any CPU (precision.py)
    dtype: str = "auto"
    # the classification head: "auto" = the model's own Hugging Face head (BERT: pooler + tanh +
    # dropout + linear; DistilBERT: pre_classifier; decoders: linear on the last non-pad token);
    # "cls" = one linear layer on the last layer's [CLS] vector, no pooler, no dropout (the
    # authors' encoder head); "last" = the same on the last non-pad token (decoders)
    pooling: str = "auto"
    trust_remote_code: bool = False
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    # tiny model (random init, built from a config; vocabulary trained on the training split)
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 2
    intermediate_size: int = 512
    vocab_size: int = 8000
    # tiny only: masked-LM pre-training on the clean training texts (train_clean) before
    # poisoning, so the victim starts from a pre-trained encoder and RGA's anchor θ_base is one,
    # as in the paper. 0 = none (the encoder starts from its random init).
    pretrain_epochs: int = 0
    pretrain_lr: float = 1e-3
    pretrain_batch_size: int = 64
    pretrain_mask_prob: float = 0.15
    # pre-trained models: keep only the first ``keep_layers`` transformer layers (0 = all). A cut
    # encoder trains faster on a CPU (2 of MiniLM's 6 layers: 2.4x), but the demo victim keeps all
    # six: on the 2-layer cut RGA left part of the backdoor in 4 of 5 seeds (docs/research-log.md).
    keep_layers: int = 0
    # freeze the word-embedding matrix (fine-tuning, unlearning and RGA's anchor then leave it as it
    # was pre-trained; the largest tensor of a small encoder, so steps get faster)
    freeze_embeddings: bool = False
    # freeze the embeddings and the first ``freeze_layers`` transformer layers (0 = none): every
    # stage then trains, unlearns and anchors only the layers above them and the head, and no
    # backward pass runs through the frozen ones (on a CPU a step gets cheaper)
    freeze_layers: int = 0


@dataclass
class TrainConfig:
    epochs: int = 5
    lr: float = 2e-5
    batch_size: int = 32
    eval_batch_size: int = 128
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 2021
    device: str = "auto"
    retrain: bool = True  # train the clean Retrain baseline
    # Batches of similar length (random megabatches of 50 batches, sorted by length, then the
    # batches shuffled; Trainer's ``group_by_length``): about half the padding of random batches,
    # every row still seen once per epoch. Applies to fine-tuning and to the forget batches.
    group_by_length: bool = True
    # false: every epoch takes the rows in the split's own order (train_poisoned is shuffled once
    # when it is built), as the authors' loaders (shuffle=False); also the forget batches
    shuffle: bool = True
    # fine-tuning batches (poisoning and Retrain): "random" rows (the authors'), or "stratified":
    # every batch with the split's class mix (rows within a class still drawn at random, each row
    # once per epoch, length grouping kept); needs shuffle = true
    batch_sampling: str = "random"
    # "epoch": a new AdamW at the start of every epoch, as the authors' loops do (its moments
    # reset); "never": one AdamW for the whole stage.
    reset_optimizer: str = "never"
    # "constant": lr at every step (the authors'); "linear" / "cosine": from lr down to 0 over
    # the stage (fine-tuning: poisoning and Retrain alike), as unlearn.lr_schedule
    lr_schedule: str = "constant"
    # CPU, one process: run the independent stages side by side on worker processes with the
    # cores shared out as torch threads -- poisoning beside Retrain, then the unlearning
    # methods beside each other (rga_engine/side_by_side.py). Same stages, same seeds; on a
    # 2-core Xeon two 1-thread processes train ~1.5x the samples/s of one 2-thread process in
    # bf16 (1.2x in fp32, and the demo's fp32 run was not faster: docs/results.md).
    side_by_side: bool = False


@dataclass
class UnlearnConfig:
    methods: list[str] = field(default_factory=lambda: ["ga", "npo", "rga"])
    epochs: int = 30
    max_steps: int = 0  # 0 = epochs x ceil(|forget| / batch_size)
    lr: float = 2e-5
    batch_size: int = 32
    eval_every: int = 10  # epochs
    # the evaluations every eval_every epochs on a fixed sample of this many clean test rows (each
    # class its share, drawn with a fixed seed, not the run's) and the same sample of the triggered
    # rows; 0 = the whole test set. The final evaluation is always on the whole test set, and no
    # evaluation changes the training (the final numbers are the same with or without them)
    eval_rows: int = 0
    # "oracle": the rows the attack poisoned; "cube": the rows CUBE flags (rga_engine/cube.py):
    # the poisoned model's last-layer [CLS] (decoders: last non-pad token) vectors on
    # train_poisoned -> UMAP -> HDBSCAN; the num_labels largest clusters are clean, the rest
    # (noise included) is the forget set
    forget_set: str = "oracle"
    cube_components: int = 4  # UMAP dimensions; 0 = no UMAP, cluster the raw vectors
    cube_n_neighbors: int = 100  # UMAP n_neighbors (capped at rows - 1)
    cube_min_dist: float = -1.0  # UMAP min_dist; -1 = 0.15 for DistilBERT, 0.25 otherwise (the authors')
    cube_metric: str = "cosine"  # UMAP metric
    cube_min_cluster_size: int = 150  # HDBSCAN; scaled down on few rows: min(this, max(2, rows // 10))
    cube_min_samples: int = 120  # HDBSCAN; scaled by the same factor as min_cluster_size, >= 1
    shift_threshold: float = 0.2
    reset_optimizer: str = "never"  # "epoch" | "never", as train.reset_optimizer
    # "constant": lr at every step (the authors'); "linear" / "cosine": from lr down to 0 at the
    # last step (transformers' schedules; they run on across optimizer resets)
    lr_schedule: str = "constant"
    # the lr rises linearly from 0 to unlearn.lr over the first this-many steps, then follows
    # lr_schedule over the rest (transformers' warm-up; 0 = none, the authors')
    warmup_steps: int = 0
    # each step's random retain batch goes through the model as this many length-sorted pieces,
    # each padded to its own longest row: the same loss up to rounding with less padding (on a
    # CPU, MiniLM fp32: 1.3x the unlearning steps/s with 4, docs/research-log.md). Dropout draws
    # differ from one piece, so a seed's numbers change; on a GPU padding is nearly free: keep 1
    retain_pieces: int = 1
    # each step's retain batch: "random" rows (the authors'), or "stratified": every class its
    # share of the batch, so that no step's class mix tilts the model toward one class
    retain_sampling: str = "random"
    # AdamW's epsilon for the unlearning steps (torch's and the authors' 1e-8). Adam moves every
    # weight whose gradient is not exactly 0 by about the lr at the first step after a reset, however
    # small that gradient: a larger epsilon leaves weights with gradients far under it nearly still
    adam_epsilon: float = 1e-8
    # the word-embedding matrix stays as the poisoned model has it for every method (not RGA's
    # anchor either); fine-tuning still trains it (model.freeze_embeddings freezes it everywhere)
    freeze_embeddings: bool = False
    # the classification head's unlearning lr is this times the body's (every method; the peak that
    # unlearn.lr_schedule scales, both falling together): AdamW moves each weight by about its lr per
    # step, so the head's one or two tensors have little say beside the encoder's many at 1 (the authors')
    head_lr_scale: float = 1.0


@dataclass
class OutputConfig:
    dir: str = "runs"
    cache_dir: str = ""  # "" = $RGA_TUI_CACHE or ~/.cache/rga-tui
    cache: bool = True
    # every model's final weights (poisoned, Retrain, each method) in the run folder as
    # models/<name>.safetensors; rga_engine.pipeline.load_model(run_dir, name) rebuilds one
    save_models: bool = False


@dataclass
class Config:
    name: str = "preset"
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    unlearn: UnlearnConfig = field(default_factory=UnlearnConfig)
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    output: OutputConfig = field(default_factory=OutputConfig)
    source: str = ""  # the file it was loaded from (not written back)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("source", None)
        # fill in every selected method's full parameter set so config.toml is complete (imported
        # here, not at the top, so that importing config stays light: the registry imports torch)
        from rga_engine.methods import method_params

        d["methods"] = {m: method_params(m, self.methods.get(m, {})) for m in self.unlearn.methods}
        return d

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    @property
    def data_seed(self) -> int:
        """The seed of the data's samples and the attack's draws: ``data.seed``, or the run's seed
        (``train.seed``) where it is -1."""
        return self.data.seed if self.data.seed >= 0 else self.train.seed

    def to_display_toml(self) -> str:
        """The resolved preset with only the keys that apply to its model, attack and dataset
        (what the app shows; ``config.toml`` in a run folder keeps every key)."""
        d = self.to_dict()
        for section, keys in _inapplicable(self).items():
            for k in keys:
                d[section].pop(k, None)
        return tomli_w.dumps(d)


_TINY_KEYS = ("hidden_size", "num_layers", "num_heads", "intermediate_size", "vocab_size", "pretrain_epochs",
              "pretrain_lr", "pretrain_batch_size", "pretrain_mask_prob")
_ATTACK_KEYS = {"badnets": ("triggers", "num_insertions"), "addsent": ("sentence",), "hiddenkiller": ()}
_EMBEDDED = ("sst2", "hsol", "agnews")
# [data] keys that describe local / hub files (nothing to do for an embedded dataset)
FILE_KEYS = ("path", "text_column", "label_column", "paraphrase_column", "train_split", "test_split",
             "label_names", "header", "column_names", "label_map", "test_size", "split_seed", "drop_empty",
             "encoding")


def _inapplicable(cfg: "Config") -> dict[str, list[str]]:
    """Per section, the keys that do nothing for this model / attack / dataset."""
    out: dict[str, list[str]] = {"model": [], "attack": [], "data": [], "unlearn": []}
    if cfg.unlearn.forget_set != "cube":
        out["unlearn"] += [f.name for f in fields(UnlearnConfig) if f.name.startswith("cube_")]
    m = cfg.model
    if m.name == "tiny":
        out["model"] += ["keep_layers", "trust_remote_code"]
        if not m.pretrain_epochs:
            out["model"] += ["pretrain_lr", "pretrain_batch_size", "pretrain_mask_prob"]
    else:
        out["model"] += list(_TINY_KEYS)
    if not m.lora:
        out["model"] += ["lora_r", "lora_alpha"]
    own = _ATTACK_KEYS.get(cfg.attack.name)
    if cfg.data.dataset == "rga-csv":  # pre-made poisoned data: attack.name only names it
        own = ()
        out["attack"] += ["poison_rate", "protocol"]
        out["data"] += ["paraphrase_column", "train_split", "test_split", "train_limit", "test_limit", "seed"]
    if own is not None:
        out["attack"] += [k for keys in _ATTACK_KEYS.values() for k in keys if k not in own]
    if cfg.data.dataset in _EMBEDDED:
        out["data"] += list(FILE_KEYS)
    elif cfg.attack.name != "hiddenkiller" and "paraphrase_column" not in out["data"]:
        out["data"].append("paraphrase_column")
    return out


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "attack": AttackConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "unlearn": UnlearnConfig,
    "output": OutputConfig,
}


def inapplicable_keys(raw: dict[str, Any]) -> set[str]:
    """The dotted keys of a raw config (a run folder's config.toml) that do nothing for its model,
    attack and dataset, so that comparing two runs ignores them; empty when the file no longer
    builds with this version (then every key counts)."""
    try:
        kwargs = {name: _build_section(name, cls, raw.get(name, {})) for name, cls in SECTIONS.items()}
        cfg = Config(**kwargs)
    except (ConfigError, TypeError, ValueError, AttributeError):
        return set()
    return {f"{section}.{k}" for section, keys in _inapplicable(cfg).items() for k in keys}
TOP_LEVEL = ("name", "description", "extends", "recommended")


# --------------------------------------------------------------------------- loading

def _read_toml(path: Path, key: str = "preset") -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{key}: no such file: {path}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark (Windows editors): accepted
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} on line {line}); "
                          f"save the preset as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def load_raw_file(path: str | Path) -> dict[str, Any]:
    """One preset file's own keys (``extends`` not followed)."""
    return _read_toml(Path(path))


def load_raw(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a preset and the chain of presets it ``extends`` (relative to the file), merged."""
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError(f"extends: cycle through {path.name}")
    raw = _read_toml(path)
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise ConfigError(f"extends: expected a file name (string), got {parent!r}")
    ppath = (path.parent / parent)
    if not ppath.is_file():
        raise ConfigError(f"extends: no such file: {parent} (relative to {path.parent})")
    inherited = load_raw(ppath, _seen + (path,))
    inherited.pop("recommended", None)  # a preset recommends itself, never the presets extending it
    return _merge(inherited, raw)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``section.key=value`` with value parsed as TOML (bare words fall back to strings)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected section.key=value")
    key, value = text.split("=", 1)
    key = key.strip()
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ConfigError(f"--set {text!r}: expected section.key=value")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return parts, parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    raw = _merge({}, raw)
    for item in overrides or []:
        parts, value = parse_override(item)
        node = raw
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            elif not isinstance(nxt, dict):
                raise ConfigError(f"--set {item}: {p} is not a section")
            node = nxt
        node[parts[-1]] = value
    return raw


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _str_or_list(key: str, value: Any) -> str | list[str]:
    """``data.text_column``: one column name, or a list of them (joined with a space)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(x, str) and x for x in value):
        return list(value)
    raise ConfigError(f"{key} = {value!r}: expected a column name or a list of column names")


def _str_map(key: str, value: Any) -> dict[str, str]:
    """``data.label_map``: a table of strings -> strings (TOML keys are always strings)."""
    if isinstance(value, dict) and all(isinstance(v, str) and v.strip() for v in value.values()):
        return {str(k): v for k, v in value.items()}
    raise ConfigError(f"{key} = {value!r}: expected a table of label value -> class name, "
                      f'e.g. {{ "1" = "World", "2" = "Sports" }}')


_SPECIAL = {"data.text_column": _str_or_list, "data.label_map": _str_map}


def _coerce(key: str, value: Any, default: Any) -> Any:
    if key in _SPECIAL:
        return _SPECIAL[key](key, value)
    tp = type(default)
    if isinstance(default, list):
        if not isinstance(value, list):
            raise ConfigError(f"{key} = {value!r}: expected a list")
        if default and isinstance(default[0], str) or not default:
            if not all(isinstance(x, str) for x in value):
                raise ConfigError(f"{key} = {value!r}: expected a list of strings")
        return list(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} = {value!r}: expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} = {value!r}: expected an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} = {value!r}: expected a number")
        _finite(key, float(value))
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} = {value!r}: expected a string")
        return value
    return value


def _build_section(name: str, cls: type, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}]: expected a table, got {raw!r}")
    defaults = cls()
    allowed = [f.name for f in fields(cls)]
    kwargs = {}
    for k, v in raw.items():
        if k not in allowed:
            raise ConfigError(f"{name}.{k}: unknown key (allowed: {', '.join(allowed)})")
        kwargs[k] = _coerce(f"{name}.{k}", v, getattr(defaults, k))
    return cls(**kwargs)


def from_dict(raw: dict[str, Any], source: str = "", base_dir: Path | None = None) -> Config:
    raw = dict(raw)
    raw.pop("extends", None)
    kwargs: dict[str, Any] = {}
    for k, v in raw.items():
        if k in SECTIONS:
            kwargs[k] = _build_section(k, SECTIONS[k], v)
        elif k == "methods":
            if not isinstance(v, dict) or not all(isinstance(x, dict) for x in v.values()):
                raise ConfigError("[methods]: expected tables [methods.<name>]")
            kwargs[k] = {m: dict(p) for m, p in v.items()}
        elif k in ("name", "description"):
            kwargs[k] = _coerce(k, v, "")
        elif k == "recommended":  # the preset the app opens on (read by rga_tui.presets)
            if not isinstance(v, bool):
                raise ConfigError(f"recommended: expected true or false, got {v!r}")
        else:
            allowed = list(TOP_LEVEL) + list(SECTIONS) + ["methods"]
            raise ConfigError(f"{k}: unknown key (allowed: {', '.join(allowed)})")
    cfg = Config(**kwargs, source=source)
    if not cfg.name or cfg.name == "preset":
        cfg.name = Path(source).stem if source else "preset"
    validate(cfg, base_dir)
    return cfg


REMOTE_CODE_FLAG = "--trust-remote-code"


def check_remote_code(raw: dict[str, Any], allow_remote_code: bool) -> None:
    """``model.trust_remote_code = true`` runs the Python files of a model folder or hub repo: a
    preset (or ``--set``, which a shared script can carry) can never turn it on by itself; only
    the command-line flag ``--trust-remote-code`` (or the app's confirmation) does."""
    model = raw.get("model")
    if isinstance(model, dict) and model.get("trust_remote_code") is True and not allow_remote_code:
        raise ConfigError(
            f"model.trust_remote_code = true: a preset cannot run a model's own Python code; "
            f"if you trust {model.get('name', 'the model')!r}, pass {REMOTE_CODE_FLAG} on the command line")


def load(path: str | Path, overrides: list[str] | None = None, *, allow_remote_code: bool = False) -> Config:
    """Load a preset file, resolving ``extends`` and applying ``--set`` overrides.

    ``model.trust_remote_code = true`` is refused unless ``allow_remote_code`` (the caller got
    ``--trust-remote-code`` on its command line, or the user confirmed in the app)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"preset: no such file: {path}")
    raw = apply_overrides(load_raw(p), overrides)
    check_remote_code(raw, allow_remote_code)
    if "name" not in raw:
        raw["name"] = _default_name(p)
    return from_dict(raw, source=str(p), base_dir=p.resolve().parent)


def sets_nothing(path: str | Path) -> bool:
    """A preset (with what it ``extends``) that sets no section at all: it would run every default."""
    raw = load_raw(path)
    return not any(k in raw for k in (*SECTIONS, "methods"))


def what_runs(cfg: Config) -> str:
    """``dataset/attack/model`` (``sst2/badnets/minilm``) for a one-line header (:func:`what_runs_text`)."""
    return what_runs_text(cfg.data.dataset, cfg.attack.name, cfg.model.name)


def what_runs_text(dataset: str, attack: str, model: str) -> str:
    """``dataset/attack/model``; a model named by a path or a hub id with a slash (``/data/student``,
    ``org/model``) comes after a ``·`` instead, so a line never reads ``sst2/badnets//data/student``."""
    if "/" in model or "\\" in model:
        return f"{dataset}/{attack} · model {model}"
    return f"{dataset}/{attack}/{model}"


def defaults_line(cfg: Config) -> str:
    """What a preset that sets nothing runs, in one line."""
    d, t, u = cfg.data, cfg.train, cfg.unlearn
    rows = f"{d.train_limit} training rows" if d.train_limit else "every training row"
    return (f"{what_runs(cfg)}, {rows}, {t.epochs} training epochs, "
            f"methods {', '.join(u.methods)} for {u.epochs} unlearning epochs")


def _default_name(p: Path) -> str:
    parent = p.resolve().parent.name
    return f"{parent}-{p.stem}" if parent and parent != "presets" else p.stem


# --------------------------------------------------------------------------- validation

def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} = {value!r}: allowed values are {', '.join(allowed)}")


def _finite(key: str, value: float) -> None:
    if not math.isfinite(value):
        raise ConfigError(f"{key} = {value!r}: must be a finite number (not nan or inf)")


def _range(key: str, value: float, lo: float | None, hi: float | None, what: str) -> None:
    if isinstance(value, float):
        _finite(key, value)
    # written so that NaN fails too (every comparison with NaN is False)
    if (lo is not None and not value >= lo) or (hi is not None and not value <= hi):
        raise ConfigError(f"{key} = {value!r}: must be {what}")


def _all_finite(cfg: "Config") -> None:
    """Every float of every section is finite (a Config built in code skips ``_coerce``)."""
    for section in SECTIONS:
        obj = getattr(cfg, section)
        for f in fields(obj):
            v = getattr(obj, f.name)
            if isinstance(v, float):
                _finite(f"{section}.{f.name}", v)


_NUM_LABELS = {"sst2": 2, "hsol": 2, "agnews": 4}


def _resolve_path(d: DataConfig, base_dir: Path | None) -> None:
    """A relative ``data.path`` that is not there from the working folder is taken relative to
    the preset's folder (a hub id that is no local folder is left as it is)."""
    path = Path(d.path).expanduser()
    if not path.is_absolute() and base_dir is not None and not path.exists():
        alt = base_dir / path
        if alt.exists():
            d.path = str(alt)
            path = alt
    if d.dataset in ("local", "rga-csv") and not path.exists():
        raise ConfigError(f"data.path = {d.path!r}: no such file or folder")


def _validate_data(d: DataConfig, base_dir: Path | None) -> None:
    _choice("data.dataset", d.dataset, DATASETS)
    if d.dataset in ("local", "hub", "rga-csv") and not d.path:
        raise ConfigError(f"data.path = '': required when data.dataset = {d.dataset!r}")
    if d.dataset in ("local", "hub", "rga-csv"):
        _resolve_path(d, base_dir)
    if d.dataset == "rga-csv":
        from rga_engine.data.rga_csv import FILES, missing_files

        if not Path(d.path).expanduser().is_dir():
            raise ConfigError(f"data.path = {d.path!r}: rga-csv needs a folder with {', '.join(FILES.values())}")
        missing = missing_files(Path(d.path).expanduser())
        if missing:
            raise ConfigError(f"data.path = {d.path!r}: missing {', '.join(missing)} (the rga-csv layout)")
        for key in ("train_limit", "test_limit"):
            if getattr(d, key):
                raise ConfigError(f"data.{key} = {getattr(d, key)}: not with data.dataset = 'rga-csv' "
                                  "(its files are used as they are)")
    _range("data.train_limit", d.train_limit, 0, None, ">= 0 (0 = all rows)")
    _range("data.test_limit", d.test_limit, 0, None, ">= 0 (0 = all rows)")
    if isinstance(d.text_column, list) and len(set(d.text_column)) != len(d.text_column):
        raise ConfigError(f"data.text_column = {d.text_column!r}: a column is listed twice")
    if any(not c.strip() for c in d.column_names) or len(set(d.column_names)) != len(d.column_names):
        raise ConfigError(f"data.column_names = {d.column_names!r}: expected distinct, non-empty column names")
    if not d.header and not d.column_names:
        raise ConfigError("data.header = false: needs data.column_names, the file's columns in order "
                          '(e.g. ["label", "title", "description"])')
    if d.label_map and d.label_names:
        raise ConfigError(f"data.label_names = {d.label_names!r}: data.label_map already names the classes "
                          "(its values); remove data.label_names")
    if not (0.0 < d.test_size < 1.0):
        raise ConfigError(f"data.test_size = {d.test_size!r}: must be strictly between 0 and 1 "
                          "(the share of rows the tool's split puts in test)")
    _range("data.split_seed", d.split_seed, 0, None, ">= 0")
    _range("data.seed", d.seed, -1, None, ">= 0, or -1 for the run's seed (train.seed)")
    try:
        codecs.lookup(d.encoding)
    except LookupError:
        raise ConfigError(f"data.encoding = {d.encoding!r}: unknown encoding (e.g. utf-8, latin-1, cp1252)") from None


def validate(cfg: Config, base_dir: Path | None = None) -> None:
    """Check every value of ``cfg`` (a ConfigError names the key and what it allows); fills in
    what resolves from the dataset (AddSent's default sentence)."""
    _all_finite(cfg)
    _validate_data(cfg.data, base_dir)
    _validate_attack(cfg.attack, cfg.data)
    _validate_model(cfg.model)
    _validate_train(cfg.train)
    _validate_unlearn(cfg.unlearn, cfg.methods)
    _range("output.dir", len(cfg.output.dir), 1, None, "a folder name")


def _validate_attack(a: AttackConfig, d: DataConfig) -> None:
    _choice("attack.name", a.name, ATTACKS)
    _choice("attack.protocol", a.protocol, PROTOCOLS)
    if not (0.0 < a.poison_rate < 1.0):  # False for NaN too
        raise ConfigError(f"attack.poison_rate = {a.poison_rate!r}: must be strictly between 0 and 1")
    n_labels = _NUM_LABELS.get(d.dataset) or (len(d.label_names) or len(set(d.label_map.values())) or None)
    if a.target < -1 or (n_labels is not None and a.target >= n_labels):
        hi = f"0..{n_labels - 1}" if n_labels else ">= 0"
        raise ConfigError(f"attack.target = {a.target}: must be {hi} (or -1 for the dataset default)")
    if a.name == "badnets" and (not a.triggers or any(not w.strip() or " " in w.strip() for w in a.triggers)):
        raise ConfigError(f"attack.triggers = {a.triggers!r}: expected one or more single words")
    _range("attack.num_insertions", a.num_insertions, 1, None, ">= 1")

    if a.name == "addsent" and not a.sentence.strip():
        from rga_engine.data.loaders import default_sentence

        a.sentence = default_sentence(d.dataset)  # "" = the dataset's sentence, written out resolved


def _validate_model(m: ModelConfig) -> None:
    if not m.name:
        raise ConfigError("model.name = '': expected tiny, minilm, a Hugging Face id or a local folder")
    _choice("model.dtype", m.dtype, DTYPES)
    _choice("model.pooling", m.pooling, POOLINGS)
    if m.pooling != "auto" and m.lora:
        raise ConfigError(f"model.pooling = {m.pooling!r}: not with model.lora = true (LoRA wraps the Hugging Face "
                          "head model); use pooling = 'auto'")
    _range("model.max_length", m.max_length, 8, 8192, "between 8 and 8192")
    for k in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "lora_r"):
        _range(f"model.{k}", getattr(m, k), 1, None, ">= 1")
    _range("model.vocab_size", m.vocab_size, 100, None, ">= 100")
    _range("model.pretrain_epochs", m.pretrain_epochs, 0, None, ">= 0 (0 = no pre-training)")
    _range("model.pretrain_lr", m.pretrain_lr, 0.0, 1.0, "in [0, 1]")
    _range("model.pretrain_batch_size", m.pretrain_batch_size, 1, None, ">= 1")
    if not (0.0 < m.pretrain_mask_prob < 1.0):
        raise ConfigError(f"model.pretrain_mask_prob = {m.pretrain_mask_prob!r}: must be strictly between 0 and 1")
    if m.pretrain_epochs and m.name != "tiny":
        raise ConfigError(f"model.pretrain_epochs = {m.pretrain_epochs}: applies to model.name = 'tiny' only "
                          f"(model.name = {m.name!r} is loaded pre-trained)")
    _range("model.keep_layers", m.keep_layers, 0, None, ">= 0 (0 = all layers)")
    if m.keep_layers and m.name == "tiny":
        raise ConfigError(f"model.keep_layers = {m.keep_layers}: applies to pre-trained models "
                          f"(the tiny model's depth is model.num_layers)")
    _range("model.freeze_layers", m.freeze_layers, 0, None, ">= 0 (0 = none)")
    if m.freeze_layers and m.pretrain_epochs:
        raise ConfigError(f"model.freeze_layers = {m.freeze_layers}: not with model.pretrain_epochs = "
                          f"{m.pretrain_epochs} (the masked-LM pre-training would leave the frozen layers random)")
    if m.freeze_embeddings and m.pretrain_epochs:
        raise ConfigError(f"model.freeze_embeddings = true: not with model.pretrain_epochs = {m.pretrain_epochs} "
                          "(the masked-LM pre-training would leave the frozen embeddings random)")
    if m.freeze_layers and m.lora:
        raise ConfigError(f"model.freeze_layers = {m.freeze_layers}: not with model.lora = true (LoRA already "
                          "freezes the base weights and adds adapters to every layer)")
    if m.freeze_embeddings and m.lora:
        raise ConfigError("model.freeze_embeddings = true: not with model.lora = true (LoRA already freezes the "
                          "embeddings with the other base weights, so the setting would do nothing)")
    if m.hidden_size % m.num_heads:
        raise ConfigError(f"model.num_heads = {m.num_heads}: must divide model.hidden_size ({m.hidden_size})")


def _validate_train(t: TrainConfig) -> None:
    _range("train.epochs", t.epochs, 0, None, ">= 0")
    _range("train.lr", t.lr, 0.0, 1.0, "in [0, 1]")
    _range("train.batch_size", t.batch_size, 1, None, ">= 1")
    _range("train.eval_batch_size", t.eval_batch_size, 1, None, ">= 1")
    _range("train.weight_decay", t.weight_decay, 0.0, None, ">= 0")
    _range("train.max_grad_norm", t.max_grad_norm, 0.0, None, ">= 0 (0 = no clipping)")
    _choice("train.device", t.device, DEVICES)
    _choice("train.reset_optimizer", t.reset_optimizer, RESETS)
    _choice("train.lr_schedule", t.lr_schedule, LR_SCHEDULES)
    _choice("train.batch_sampling", t.batch_sampling, BATCH_SAMPLINGS)
    if t.batch_sampling == "stratified" and not t.shuffle:
        raise ConfigError("train.batch_sampling = 'stratified' needs train.shuffle = true (unshuffled batches keep the split's order)")


def _validate_unlearn(u: UnlearnConfig, methods: dict[str, dict[str, Any]]) -> None:
    from rga_engine.methods import REGISTRY, method_params

    if not u.methods:
        raise ConfigError(f"unlearn.methods = []: name one or more of {', '.join(REGISTRY)}")
    for name in u.methods:
        _choice("unlearn.methods", name, tuple(REGISTRY))
    if len(set(u.methods)) != len(u.methods):
        raise ConfigError(f"unlearn.methods = {u.methods!r}: a method is listed twice")
    _range("unlearn.epochs", u.epochs, 0, None, ">= 0")
    _range("unlearn.max_steps", u.max_steps, 0, None, ">= 0 (0 = epochs x batches)")
    _range("unlearn.lr", u.lr, 0.0, 1.0, "in [0, 1]")
    _range("unlearn.batch_size", u.batch_size, 1, None, ">= 1")
    _range("unlearn.eval_every", u.eval_every, 0, None, ">= 0 (0 = only at the end)")
    _range("unlearn.eval_rows", u.eval_rows, 0, None, ">= 0 (0 = the whole test set)")
    _choice("unlearn.forget_set", u.forget_set, FORGET_SETS)
    _range("unlearn.cube_components", u.cube_components, 0, None, ">= 0 (0 = no UMAP)")
    if u.cube_components == 1:
        raise ConfigError("unlearn.cube_components = 1: must be 0 (no UMAP) or >= 2")
    _range("unlearn.cube_n_neighbors", u.cube_n_neighbors, 2, None, ">= 2")
    if u.cube_min_dist != -1.0:
        _range("unlearn.cube_min_dist", u.cube_min_dist, 0.0, 1.0, "in [0, 1] (or -1 = the authors' default)")
    _choice("unlearn.cube_metric", u.cube_metric, CUBE_METRICS)
    _range("unlearn.cube_min_cluster_size", u.cube_min_cluster_size, 2, None, ">= 2")
    _range("unlearn.cube_min_samples", u.cube_min_samples, 1, None, ">= 1")
    _range("unlearn.shift_threshold", u.shift_threshold, 0.0, 1.0, "in [0, 1]")
    _choice("unlearn.reset_optimizer", u.reset_optimizer, RESETS)
    _choice("unlearn.lr_schedule", u.lr_schedule, LR_SCHEDULES)
    _range("unlearn.warmup_steps", u.warmup_steps, 0, None, ">= 0 (0 = no warm-up)")
    _range("unlearn.retain_pieces", u.retain_pieces, 1, None, ">= 1")
    _choice("unlearn.retain_sampling", u.retain_sampling, RETAIN_SAMPLINGS)
    _range("unlearn.adam_epsilon", u.adam_epsilon, 1e-12, 1e-2, "in [1e-12, 1e-2]")
    _range("unlearn.head_lr_scale", u.head_lr_scale, 1e-3, 1e3, "in [0.001, 1000] (1 = the body's lr)")
    for name, params in methods.items():
        _choice("methods", name, tuple(REGISTRY))
        method_params(name, params)  # raises ConfigError on bad keys / values


def resolved_target(cfg: Config, default_target: int) -> int:
    return cfg.attack.target if cfg.attack.target >= 0 else default_target


def config_hash_dict(cfg: Config, *sections: str) -> dict[str, Any]:
    d = cfg.to_dict()
    return {s: d[s] for s in sections}

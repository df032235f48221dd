"""The one entry point both front ends call: ``run(config, sink, should_stop) -> summary``.

data → poison → Retrain → each unlearning method from the same poisoned weights → summary.

The run folder (when ``run_dir`` is given) receives ``config.toml``, ``events.jsonl`` (one event
per line, flushed), ``summary.json`` (rewritten atomically after every stage) and ``results.md``;
with ``unlearn.forget_set = "cube"`` also ``detection.csv`` and ``detection.svg``
(``detect_stage.py``, ``detection_files.py``).
With ``output.save_models`` every model's final weights go to ``models/<name>.safetensors``
(``poisoned``, ``retrain``, one per method; :func:`load_model` rebuilds one).
The poisoned and Retrain weights are cached (``cache.py``) so that a second run with other
unlearning settings skips straight to unlearning.

Several processes (``accelerate launch``, ``torchrun``): every rank runs this pipeline; only the
main process writes the run folder, the events and the cache (``distributed.py``).
"""

from __future__ import annotations

import json
import platform
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import torch
from accelerate.utils import set_seed

from rga_engine import (cache, detect_stage, evaluation, finetune_stage, host_memory, precision, pretrain_stage, report,
                        side_by_side, unlearn_stage)
from rga_engine.precision import mixed_precision
from rga_engine.distributed import SharedStop, all_ranks, launch_rank, lone_cpu_launch
from rga_engine.runinfo import process_tag
from rga_engine.attacks import PoisonedData
from rga_engine.config import Config
from rga_engine.data.loaders import EMBEDDED_LABEL_NAMES
from rga_engine.data.rga_csv import load_splits
from rga_engine.events import JsonlSink, MultiSink, NullSink, Sink, make_event
from rga_engine.methods import REGISTRY as METHODS
from rga_engine.models import build as build_model
from rga_engine.models import is_head
from rga_engine.train import Encoded, Loop, encode, triggers_cut

# Part of every cache key: bump it when a change to the code changes the weights a stage produces.
CACHE_VERSION = 4
# settings added after cache entries existed, with the value that behaves as before they did: at
# that value a setting is left out of the cache key, so earlier entries stay valid
KEYS_ADDED_LATER = {"train": {"lr_schedule": "constant", "batch_sampling": "random"}, "model": {"freeze_layers": 0}}
LABEL_NAMES = EMBEDDED_LABEL_NAMES  # the embedded sets' class names, where a dataset names none


def default_run_dir(cfg: Config) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(cfg.output.dir) / f"{cfg.name.replace('/', '-')}-{stamp}"


def versions() -> dict[str, str]:
    import accelerate
    import transformers

    import rga_engine

    return {"rga_engine": rga_engine.__version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "accelerate": accelerate.__version__, "python": platform.python_version()}


def write_json_atomic(path: Path, obj: Any) -> None:
    report.write_text_atomic(path, json.dumps(obj, indent=2, allow_nan=False))


def _make_accelerator(cfg: Config):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    dev = cfg.train.device
    use_cpu = dev == "cpu" or (dev == "auto" and not torch.cuda.is_available() and not torch.backends.mps.is_available())
    if dev == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device = 'cuda': no CUDA device is available here (use 'auto' or 'cpu')")
    device_type = "cpu" if use_cpu else "cuda" if torch.cuda.is_available() else "mps"
    mp = mixed_precision(cfg.model.dtype, device_type)
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision") != mp:
        # a second run in this process (run --seeds, the TUI) with another precision: accelerate
        # keeps one precision per process; forget it (the process group, if any, stays)
        AcceleratorState._reset_state()
    return Accelerator(cpu=use_cpu, mixed_precision=mp)


class Run:
    """State of one pipeline run (config, data, model, tokenised splits, summary), its events and
    cache keys; :meth:`stages` runs the stages in order, each in its own module (``pretrain_stage``,
    ``finetune_stage``, ``detect_stage``, ``unlearn_stage``), which evaluate and record their models
    with ``evaluation.py``."""

    def __init__(self, cfg: Config, sink: Sink | None, should_stop: Callable[[], bool] | None, run_dir: Path | None):
        self.cfg = cfg
        self.should_stop = should_stop or (lambda: False)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.jsonl: JsonlSink | None = None
        # several processes: only the main one (global rank 0) writes; known from the launcher's
        # environment here, from the accelerator once it exists (execute)
        self.is_main = launch_rank() == 0
        if self.run_dir is not None and self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.toml").write_text(cfg.to_toml(), encoding="utf-8")
            self.jsonl = JsonlSink(self.run_dir / "events.jsonl")
        self.sink = MultiSink(sink or NullSink(), self.jsonl) if self.jsonl else (sink or NullSink())
        # output.save_models: every stage's final weights go to models/<name>.safetensors
        # (evaluation.finish_stage; a side-by-side worker is given this folder)
        self.models_dir = self.run_dir / "models" if self.run_dir is not None and cfg.output.save_models else None
        self.seed = cfg.train.seed
        self.summary: dict[str, Any] = {}
        self.retrain_asr: float | None = None  # grades the verdicts once Retrain has run
        self.retrain_scores: list[float] | None = None  # Retrain's trigger-shift scores (the same)
        self.accelerator = None
        self.world = 1  # processes

    # ------------------------------------------------------------------ plumbing
    def reseed(self) -> None:
        """The same RNG state at the start of every stage, cached or not. Several processes: the
        global torch stream -- dropout's, the only draw of the loops that is not seeded on its
        own -- differs by rank (rank 0 keeps one process's), so that the rows of a global batch
        get independent dropout masks, as in one process, not the same mask on every rank."""
        set_seed(self.seed)
        if self.world > 1:
            torch.manual_seed(self.seed + 1_000_003 * self.accelerator.process_index)

    def loop(self) -> Loop:
        """What the training loops need from this run (device, padding, events, cancel, seed)."""
        return Loop(self.accelerator, self.pad_id, self.emit, self.should_stop, self.seed)

    def emit(self, type: str, **fields: Any) -> None:
        if self.is_main:
            self.sink.emit(make_event(type, **fields))

    def log_new_params(self) -> None:
        """Say which weights the checkpoint lacked: a new classification head is expected; any
        other missing weight means the checkpoint does not fit the architecture."""
        new = self.bundle.new_params
        if not new:
            return
        head = [n for n in new if is_head(n)]
        other = [n for n in new if not is_head(n)]
        if head:
            self.log(f"model: new classification head ({', '.join(head)}), initialised with seed {self.seed}")
        if other:
            shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
            self.log(f"model: {len(other)} weights missing from the checkpoint were initialised at random: {shown}",
                     "warning")

    def log(self, message: str, level: str = "info", **fields: Any) -> None:
        """A ``log`` event; ``fields`` carry what a front end may read without parsing the text
        (the pre-training progress: ``phase``, ``epoch``, ``epochs``, ``cached``)."""
        self.emit("log", level=level, message=message, **fields)

    def save_summary(self) -> None:
        if self.run_dir is not None and self.is_main:
            write_json_atomic(self.run_dir / "summary.json", self.summary)

    # ------------------------------------------------------------------ data, cache
    def prepare_data(self) -> PoisonedData:
        data = load_splits(self.cfg)  # rga-csv: the authors' files as they are, no attack step
        if not data.label_names or len(data.label_names) != data.num_labels:
            data.label_names = LABEL_NAMES.get(data.dataset, [str(i) for i in range(data.num_labels)])
        return data

    def cache_key(self, stage: str, split: str, uses_train: bool = True) -> str:
        """The cache key of a stage trained on ``split``: its texts and labels, the model and (when
        ``uses_train``) the training settings; without them (pre-training) only the seed."""
        c = self.cfg
        tc = {k: v for k, v in vars(c.train).items() if k not in ("device", "eval_batch_size", "retrain", "side_by_side")}
        mc = dict(vars(c.model))
        for section, settings in (("train", tc), ("model", mc)):
            for key, before in KEYS_ADDED_LATER[section].items():
                if settings[key] == before:  # a key from before the setting existed stays what it was
                    del settings[key]
        enc = self.split_texts[split]
        parts = {
            "stage": stage, "data": cache.fingerprint_texts(*enc), "model": mc,
            "train": tc if uses_train else {"seed": self.seed},
            "tokenizer_data": self.tok_fingerprint, "engine": CACHE_VERSION,
        }
        if self.world > 1:  # N processes train the same batches, but not bit for bit as one does
            parts["processes"] = self.world
        if c.model.dtype == "auto" and self.accelerator.mixed_precision != "no":
            # "auto" resolves per machine (precision.py): weights trained under bf16 autocast (a
            # GPU, a CPU with AMX) are not an fp32 run's, even in a shared cache (an fp32 key
            # stays what it was)
            parts["precision"] = f"{self.accelerator.device.type}-{self.accelerator.mixed_precision}"
        return cache.make_key(parts)

    def from_cache(self, root: Path, stage: str, key: str, model) -> str:
        """Load a cached checkpoint whose checksum matches into ``model``: ``"hit"``, or
        ``"miss"`` (no entry; a damaged one is said in one log line, removed, and the stage trains
        again). Several processes decide together: a hit only when every rank loaded it; a rank
        that loaded it alone gets ``"dirty"`` (``model`` changed: start it again)."""
        loaded, problem = cache.fetch(root, stage, key, model)
        if problem:
            self.log(f"{stage}: the cached weights {cache.path_for(root, stage, key).name} are damaged "
                     f"({problem}); training again", "warning")
        everywhere = all_ranks(self.accelerator, loaded)  # after every rank has read the file
        if problem and self.is_main:
            cache.discard(root, stage, key)
        if everywhere:
            return "hit"
        return "dirty" if loaded else "miss"

    def fail_stage(self, stage: str, message: str, t0: float) -> None:
        self.summary["errors"][stage] = message
        self.emit("error", stage=stage, message=message)
        self.emit("stage_finished", stage=stage, metrics={"error": message}, seconds=round(time.perf_counter() - t0, 2))
        self.save_summary()

    # ------------------------------------------------------------------ the whole run
    def execute(self) -> dict[str, Any]:
        self.setup()
        status = self.stages()
        self.summary["status"] = status
        self.summary["finished"] = datetime.now().isoformat(timespec="seconds")
        self.save_summary()
        if self.run_dir is not None and self.is_main:
            md = report.results_markdown([self.summary])
            if report.detection_line(self.summary):
                md = md.rstrip("\n") + "\n\n" + report.detection_line(self.summary) + "\n"
            report.write_text_atomic(self.run_dir / "results.md", md)
        self.emit("run_finished", summary=self.summary)
        return self.summary

    def setup(self) -> None:
        """Everything before the first stage: devices, data, model, tokenised splits (a stage's
        child process, ``side_by_side.py``, builds the same state the same way)."""
        cfg = self.cfg
        self.accelerator = _make_accelerator(cfg)
        self.is_main = self.accelerator.is_main_process
        self.world = self.accelerator.num_processes
        # several processes stop together, after the same step (a Ctrl-C reaches each at its own step)
        self.should_stop = SharedStop(self.should_stop, self.accelerator)
        set_seed(self.seed)
        writer = process_tag()  # pid + host: a reader tells a killed run ("stopped") from a running one
        precision_name = precision.name(self.accelerator.mixed_precision)
        self.emit("run_started", config=cfg.to_dict(), device=str(self.accelerator.device), precision=precision_name,
                  versions=versions(), run_dir=str(self.run_dir) if self.run_dir else None, process=writer, processes=self.world)
        if self.world == 1 and lone_cpu_launch():
            self.log("accelerate launch --cpu started one process: several CPU processes need MPI "
                     "(--mpirun_hostfile); use torchrun --nproc_per_node N -m rga_tui run ... "
                     "(or accelerate launch --multi_gpu --num_processes N) instead", "warning")
        self.log(precision.describe(cfg.model.dtype, self.accelerator.mixed_precision, self.accelerator.device.type))
        if self.accelerator.device.type == "cpu":
            self.log(host_memory.describe())
        self.data = data = self.prepare_data()
        self.summary = {
            "preset": cfg.name, "dataset": data.dataset, "attack": data.attack, "model": cfg.model.name,
            "target": data.target, "num_labels": data.num_labels, "label_names": data.label_names,
            "seed": self.seed, "data_seed": cfg.data_seed, "methods": list(cfg.unlearn.methods), "status": "running", "errors": {}, "models": {},
            "device": str(self.accelerator.device), "processes": self.world,
            "precision": precision_name,
            "started": datetime.now().isoformat(timespec="seconds"), "process": writer,
        }
        self.save_summary()
        # label_names: front ends name the classes in live verdicts as summary.json will
        self.log(f"{data.dataset}/{data.attack}: train_poisoned {len(data.splits['train_poisoned'])} rows "
                 f"({sum(data.splits['train_poisoned'].poisoned)} poisoned), target {data.target}"
                 + (f", data seed {cfg.data.seed} (the sample and the poisoned rows)" if cfg.data.seed >= 0 else ""),
                 label_names=list(data.label_names), target=data.target)

        # The tiny model's vocabulary comes from the victim's training texts (trigger words
        # included, as a pretrained vocabulary would have them: BERT's has "mn" and "cf").
        tp = data.splits["train_poisoned"]
        self.tok_fingerprint = cache.fingerprint_texts(tp.texts, tp.labels) if cfg.model.name == "tiny" else cfg.model.name
        self.bundle = build_model(cfg.model, data.num_labels, tp.texts, self.seed, use_cuda=self.accelerator.device.type == "cuda")
        self.log_new_params()
        tok = self.bundle.tokenizer
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
        self.enc: dict[str, Encoded] = {}
        self.split_texts = {}
        for name, split in data.splits.items():
            self.enc[name] = encode(tok, split.texts, split.labels, split.poisoned, cfg.model.max_length)
            self.split_texts[name] = (split.texts, split.labels)
        self.eval_set = evaluation.EvalSet(self.enc)
        self.eval_sample = evaluation.EvalSet.sample(self.enc, self.eval_set, cfg.unlearn.eval_rows)
        self.count_cut_triggers()

    def count_cut_triggers(self) -> None:
        """An inserted trigger (BadNets, AddSent) placed past ``model.max_length`` tokens is cut
        away with the rest of the text: that row is clean to the model, though labelled or counted
        as triggered. Say how many, in the log and in ``summary["trigger_cut"]``."""
        splits, max_length = self.data.splits, self.cfg.model.max_length
        if splits["train_poisoned"].source is None:  # HiddenKiller, no attack, the authors' files
            return
        clean = {"train_poisoned": "train_clean", "test_poisoned_part": "test_clean", "test_poisoned_all": "test_clean"}
        cut = {name: list(triggers_cut(self.enc[name], self.enc[of], splits[name].source)) for name, of in clean.items()}
        self.summary["trigger_cut"] = {"max_length": max_length, **cut}
        self.save_summary()
        (tr, ntr), (te, nte) = cut["train_poisoned"], cut["test_poisoned_part"]
        if tr or te:  # a warning from 1 % of either split on; fewer rows: an info line
            self.log(f"{self.data.attack}: model.max_length = {max_length} cuts the trigger off {te} of the {nte} "
                     f"triggered non-target test rows ({100 * te / max(nte, 1):.1f} %) and {tr} of the {ntr} "
                     f"poisoned training rows: the model sees them clean, ASR and PACC still count them as "
                     f"triggered; a larger model.max_length keeps the trigger",
                     "warning" if max(tr / max(ntr, 1), te / max(nte, 1)) >= 0.01 else "info")

    def forget_rows(self, flagged: list[bool] | None) -> tuple[list[int], list[int]]:
        """The forget and retain rows of train_poisoned. Oracle: the rows the attack poisoned;
        cube: the rows CUBE flagged. The retain set is every other row (the authors')."""
        in_forget = self.enc["train_poisoned"].poisoned.tolist() if flagged is None else flagged
        return ([i for i, f in enumerate(in_forget) if f], [i for i, f in enumerate(in_forget) if not f])

    def stages(self) -> str:
        cfg = self.cfg
        st = pretrain_stage.pretrain(self)  # stage 0, when the config asks for it
        if st != "finished":
            return st
        if side_by_side.processes(self) > 1:  # CPU: independent stages in child processes
            return side_by_side.stages(self)
        # 1. poison: fine-tune the pre-trained model on train_poisoned
        poisoned, _, st = finetune_stage.fit_stage(self, "poisoned", "poison", "train_poisoned")
        if poisoned is None:
            return st
        poisoned_state = {k: v.detach().clone() for k, v in poisoned.state_dict().items()}

        # 1b. CUBE: detect the forget set from the poisoned model's embeddings
        flagged = None
        if cfg.unlearn.forget_set == "cube":
            flagged, st = detect_stage.detect(self, poisoned)
            if st != "finished":
                return st

        # 2. Retrain: the same training on train_clean only (the golden baseline)
        retrain_pacc = None
        if cfg.train.retrain:
            retrained, r, st = finetune_stage.fit_stage(self, "retrain", "retrain", "train_clean")
            if st == "cancelled":
                return "cancelled"
            if r is not None:  # a Retrain that failed is reported; unlearning goes on without it
                retrain_pacc = evaluation.take_retrain(self, r)
            del retrained
            evaluation.grade_poisoned(self, retrain_pacc)

        # 3. unlearning: the forget set D_p and the retain set (clean rows of train_poisoned)
        tp = self.enc["train_poisoned"]
        forget_idx, retain_idx = self.forget_rows(flagged)
        if not forget_idx:
            self.log("the forget set is empty (attack 'none'?): unlearning skipped", "warning")
            return "finished"
        self.forget, self.retain = tp.subset(forget_idx), tp.subset(retain_idx)
        ref_logits = None
        if any(METHODS[m].needs_reference for m in cfg.unlearn.methods):
            # the poisoned model's logits on D_p, computed once before unlearning
            ref_logits = evaluation.logits(self, poisoned, self.forget)
        del poisoned
        statuses = []
        for name in cfg.unlearn.methods:
            st = unlearn_stage.run_method(self, name, poisoned_state, ref_logits, retrain_pacc)
            statuses.append(st)
            if st == "cancelled":
                return "cancelled"
        return "finished" if all(s == "finished" for s in statuses) else "partial"


def run(cfg: Config, sink: Sink | None = None, should_stop: Callable[[], bool] | None = None,
        run_dir: Path | str | None = None) -> dict[str, Any]:
    """Run a preset end to end; return the summary (also written to ``run_dir`` when given).

    Bad input raises a ``ValueError`` subclass with a one-line message (``ConfigError``,
    ``DataError``, ``AttackError``, ``ModelError``) before any training starts.
    """
    r = Run(cfg, sink, should_stop, Path(run_dir) if run_dir is not None else None)
    try:
        return r.execute()
    except BaseException as e:
        if r.summary:
            r.summary["status"] = "cancelled" if isinstance(e, KeyboardInterrupt) else "error"
            if not isinstance(e, KeyboardInterrupt):
                r.summary["errors"]["run"] = f"{type(e).__name__}: {e}"
            r.save_summary()
        if not isinstance(e, KeyboardInterrupt):
            r.emit("error", stage="run", message=f"{type(e).__name__}: {e}")
        raise
    finally:
        if r.jsonl is not None:
            r.jsonl.close()


def load_model(run_dir: Path | str, name: str):
    """``(model, tokenizer)``: the model ``name`` (``"poisoned"``, ``"retrain"``, ``"rga"``, ...)
    of a run folder written with ``output.save_models = true``, built from the folder's
    ``config.toml`` as the run built it and loaded from ``models/<name>.safetensors`` (its
    checksum checked), on the CPU in eval mode. Raises :class:`FileNotFoundError` (one line) when
    the run saved no such model, ``ValueError`` when the file is damaged or does not fit."""
    from rga_engine import config

    run_dir = Path(run_dir)
    path = run_dir / "models" / f"{name}.safetensors"
    if not path.is_file():
        saved = sorted(p.stem for p in (run_dir / "models").glob("*.safetensors"))
        raise FileNotFoundError(f"{path}: no such model in the run folder (saved: {', '.join(saved) or 'none'}; "
                                "a run saves its models with output.save_models = true)")
    cfg = config.load(str(run_dir / "config.toml"))
    data = load_splits(cfg)
    tp = data.splits["train_poisoned"]  # the tiny model's vocabulary comes from these texts
    bundle = build_model(cfg.model, data.num_labels, tp.texts, cfg.train.seed)
    ok, why = cache.fetch_file(path, bundle.model)
    if not ok:
        raise ValueError(f"{path}: {why}")
    return bundle.model.eval(), bundle.tokenizer

"""The run screen's model: events in, display-ready state out.

Pure Python (no Textual, no Rich): :class:`RunState` folds the engine's events
(``rga_engine/events.py``) into per-stage progress, loss / λ series, the latest confusion matrix of
every stage and split, the trigger-shift verdicts and the results-table rows.  Widgets only read
from it, so everything here is unit-tested without a terminal.

Clocks: elapsed times and ETAs are computed from the events' ``"time"`` fields, never from the
wall clock, unless a caller passes ``now`` (the live in-process run does), so a replayed run and
its screenshots are deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from rga_tui.safe_text import printable
from rga_engine.data.loaders import EMBEDDED_LABEL_NAMES, EMBEDDED_TARGETS
from rga_engine.report import MODEL_NAMES

STAGE_STATES = ("pending", "running", "done", "failed", "cancelled")
SPLITS = ("test_poisoned_all", "test_clean", "test_poisoned_part")
SERIES_KEYS = ("loss", "forget_loss", "retain_loss", "lambda", "kl", "lr")

# the embedded datasets' class names and targets, until the run says its own (its data log line)
DEFAULT_LABELS: dict[str, list[str]] = EMBEDDED_LABEL_NAMES
DEFAULT_TARGET: dict[str, int] = EMBEDDED_TARGETS
# display names of the methods: the engine's table (pure Python, no torch)
METHOD_LABELS: dict[str, str] = {m: n for m, n in MODEL_NAMES.items() if m not in ("poisoned", "retrain")}


# --------------------------------------------------------------------------- small helpers

# CUBE forget-set detection (unlearn.forget_set = "cube"): a stage of the strip, not a model
DETECT = "detect"


def stage_label(stage: str) -> str:
    """Display name of a stage: ``poison`` → Poisoned, ``unlearn:rga`` → RGA."""
    if stage == "poison":
        return "Poisoned"
    if stage == "retrain":
        return "Retrain"
    if stage == DETECT:
        return "Detect"
    if stage.startswith("unlearn:"):
        m = stage.split(":", 1)[1]
        return METHOD_LABELS.get(m, printable(m.upper()))
    return printable(stage)


def model_key(stage: str) -> str:
    """The ``summary.json`` model key of a stage: ``poison`` → poisoned, ``unlearn:ga`` → ga."""
    if stage == "poison":
        return "poisoned"
    if stage.startswith("unlearn:"):
        return stage.split(":", 1)[1]
    return stage


def is_stage_name(stage: Any) -> bool:
    """``poison``, ``retrain`` or ``unlearn:<method>`` (``run`` and the like are run-level)."""
    return isinstance(stage, str) and (stage in ("poison", "retrain", DETECT) or
                                       (stage.startswith("unlearn:") and len(stage) > 8))


def stage_of_model(key: str) -> str:
    if key == "poisoned":
        return "poison"
    if key == "retrain":
        return "retrain"
    return f"unlearn:{key}"


def fmt_duration(seconds: float | None) -> str:
    """``75`` → ``1:15``; ``3725`` → ``1:02:05``; None → ``--:--``."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_pct(x: Any) -> str:
    """Fraction → paper-style percent with two decimals; missing → ``—``."""
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return f"{100.0 * x:.2f}"
    return "—"


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _names(v: Any) -> list[str]:
    """Class names from an event or a summary: a list, else nothing (a string or a number in
    ``label_names`` -- a hand-edited or foreign file -- is ignored, never split into letters)."""
    if not isinstance(v, (list, tuple)):
        return []
    return [printable(x) for x in v]


def config_value(config: dict[str, Any], section: str, key: str, default: Any = None) -> Any:
    """``config[section][key]``; ``default`` when the section or the key is missing (or the
    section is not a table)."""
    sec = config.get(section)
    if isinstance(sec, dict):
        return sec.get(key, default)
    return default


def _matrix(v: Any) -> list[list[int]] | None:
    if not isinstance(v, list) or not v or not all(isinstance(r, list) for r in v):
        return None
    try:
        return [[int(x) for x in row] for row in v]
    except (TypeError, ValueError):
        return None


def split_overrides(text: str) -> list[str]:
    """Split the overrides box into ``section.key=value`` items.

    Items are separated by whitespace or newlines, except inside quotes or brackets, so
    ``attack.sentence="I watch this" unlearn.methods = ["ga", "rga"]`` gives two items.  Spaces
    around ``=`` are allowed.
    """
    items: list[str] = []
    buf: list[str] = []
    quote: str | None = None
    depth = 0
    for ch in text:
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
            buf.append(ch)
        elif ch in "[{":
            depth += 1
            buf.append(ch)
        elif ch in "]}":
            depth = max(0, depth - 1)
            buf.append(ch)
        elif ch.isspace() and depth == 0:
            if buf:
                items.append("".join(buf))
                buf = []
        else:
            buf.append(ch)
    if buf:
        items.append("".join(buf))
    # glue "key = value" / "key= value" / "key =value" back together
    out: list[str] = []
    i = 0
    while i < len(items):
        cur = items[i]
        while i + 1 < len(items) and (cur.endswith("=") or items[i + 1].startswith("=")):
            cur += items[i + 1]
            i += 1
        out.append(cur)
        i += 1
    return out


def downsample(xs: Sequence[float], ys: Sequence[float], n: int) -> tuple[list[float], list[float]]:
    """At most ``n`` points: consecutive buckets averaged (first and last point kept exactly)."""
    m = len(xs)
    if n <= 0 or m == 0:
        return [], []
    if m <= n:
        return list(xs), list(ys)
    if n == 1:
        return [xs[-1]], [ys[-1]]
    ox, oy = [float(xs[0])], [float(ys[0])]
    inner = n - 2
    lo_all, hi_all = 1, m - 1  # exclusive of the last point
    span = hi_all - lo_all
    for b in range(inner):
        lo = lo_all + (span * b) // inner
        hi = lo_all + (span * (b + 1)) // inner
        if hi <= lo:
            continue
        ox.append(sum(xs[lo:hi]) / (hi - lo))
        oy.append(sum(ys[lo:hi]) / (hi - lo))
    ox.append(float(xs[-1]))
    oy.append(float(ys[-1]))
    return ox, oy


class Series:
    """An (x, y) series; past ``cap`` points, pairs are merged (memory stays bounded)."""

    def __init__(self, cap: int = 20000) -> None:
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.cap = cap

    def add(self, x: Any, y: Any) -> None:
        xv, yv = _num(x), _num(y)
        if xv is None or yv is None:
            return
        self.xs.append(xv)
        self.ys.append(yv)
        if len(self.xs) > self.cap:
            self.xs = [(a + b) / 2 for a, b in zip(self.xs[0::2], self.xs[1::2])] + (
                [self.xs[-1]] if len(self.xs) % 2 else [])
            self.ys = [(a + b) / 2 for a, b in zip(self.ys[0::2], self.ys[1::2])] + (
                [self.ys[-1]] if len(self.ys) % 2 else [])

    def __len__(self) -> int:
        return len(self.xs)

    @property
    def last(self) -> float | None:
        return self.ys[-1] if self.ys else None

    def downsampled(self, n: int) -> tuple[list[float], list[float]]:
        return downsample(self.xs, self.ys, n)


# --------------------------------------------------------------------------- event checks

_STAGE_EVENTS = ("stage_started", "step", "eval", "stage_finished")
_NUMBER_FIELDS = {"stage_started": ("total_steps",), "step": ("step",), "eval": ("step",),
                  "stage_finished": ("seconds",)}


def malformed(event: dict[str, Any]) -> str | None:
    """Why a known event cannot be applied (a missing or mistyped field), or None.

    A stage event must name a stage (``poison``, ``retrain``, ``unlearn:<method>``), so that a
    hand-edited or foreign line never adds a phantom stage to the screen."""
    etype = event.get("type")
    if etype in _STAGE_EVENTS and not is_stage_name(event.get("stage")):
        return f"stage = {event.get('stage')!r} is not a stage"
    for key in _NUMBER_FIELDS.get(str(etype), ()):
        v = event.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            return f"{key} = {v!r} is not a number"
    if etype == "eval" and not isinstance(event.get("split"), str):
        return f"split = {event.get('split')!r} is not a split name"
    return None  # run_started / run_finished with odd fields are normalised by their handlers


# --------------------------------------------------------------------------- verdicts

@dataclass(frozen=True)
class Verdict:
    kind: str  # "removed" | "partly" | "shifted" | "remains" | "collapsed"; "none" for an old "no shift"
    text: str  # "backdoor removed" / "backdoor partly remains (ASR 30.9 %)" / "trigger shifted → negative" / …
    score: float | None = None


def verdict_from_shift(shift: dict | None, label_names: Sequence[str] | None, **known: Any) -> Verdict | None:
    """The verdict of a ``trigger_shift`` dict. ``known`` (``asr``, ``retrain_asr``, ``cm_clean``,
    ``threshold``) grades a dict written before the graded verdict (see
    :func:`rga_engine.metrics.grade_verdict`)."""
    if not isinstance(shift, dict):
        return None
    try:
        from rga_engine.metrics import grade_verdict
        kind, text = grade_verdict(shift, list(label_names) if label_names else None,
                                   **{k: v for k, v in known.items() if v is not None})
    except Exception:  # the engine's helper missing or older: fall back to the dict's own keys
        if shift.get("remains") or (shift.get("verdict") == "backdoor remains"):
            kind, text = "remains", "backdoor remains"
        elif shift.get("shifted"):
            k = shift.get("to_class")
            name = label_names[k] if label_names and isinstance(k, int) and 0 <= k < len(label_names) else None
            kind = "shifted"
            text = f"trigger shifted → {name}" if name else str(shift.get("verdict") or f"trigger shifted → class {k}")
        else:
            kind, text = "none", str(shift.get("verdict") or "no shift")
    return Verdict(kind, text, _num(shift.get("score")))


def _compute_shift(cm_pa: list[list[int]], cm_clean: list[list[int]] | None, target: int,
                   threshold: float, **known: Any) -> dict | None:
    try:
        from rga_engine.metrics import trigger_shift
    except Exception:
        return None
    try:
        if cm_clean is not None and len(cm_clean) != len(cm_pa):
            cm_clean = None
        return trigger_shift(cm_pa, cm_clean, target, threshold, **known)
    except Exception:
        return None


# --------------------------------------------------------------------------- stage / run state

@dataclass
class LogLine:
    time: float | None
    level: str
    message: str
    stage: str | None = None


@dataclass
class StageState:
    name: str
    status: str = "pending"
    total_steps: int = 0
    step: int = 0
    epoch: float | None = None
    started: float | None = None  # event time of stage_started
    last_step_time: float | None = None
    finished: float | None = None
    seconds: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # stage_finished metrics
    matrices: dict[str, list[list[int]]] = field(default_factory=dict)  # split -> latest matrix
    eval_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # split -> latest metrics
    eval_step: dict[str, int] = field(default_factory=dict)
    eval_sample: dict[str, bool] = field(default_factory=dict)  # split -> its latest evaluation was a sample
    shift: dict[str, Any] | None = None  # latest trigger_shift on test_poisoned_all
    series: dict[str, Series] = field(default_factory=lambda: {k: Series() for k in SERIES_KEYS})
    error: str | None = None

    @property
    def label(self) -> str:
        return stage_label(self.name)

    @property
    def method(self) -> str | None:
        return self.name.split(":", 1)[1] if self.name.startswith("unlearn:") else None

    @property
    def progress(self) -> float:
        if self.status == "done":
            return 1.0
        if self.total_steps > 0:
            return max(0.0, min(1.0, self.step / self.total_steps))
        return 0.0

    def elapsed(self, now: float | None) -> float | None:
        if self.status in ("done", "failed", "cancelled"):
            if self.seconds is not None:
                return self.seconds
            if self.started is not None and self.finished is not None:
                return max(0.0, self.finished - self.started)
            return None
        if self.started is None or now is None:
            return None
        return max(0.0, now - self.started)

    def eta(self, now: float | None) -> float | None:
        """Seconds left, from the mean time per step so far (None until a step is timed)."""
        if self.status == "done":
            return 0.0
        if self.status != "running" or self.total_steps <= 0 or self.step <= 0:
            return None
        if self.started is None or self.last_step_time is None:
            return None
        per_step = (self.last_step_time - self.started) / self.step
        if per_step <= 0:
            return None
        left = (self.total_steps - self.step) * per_step
        if now is not None and now > self.last_step_time:
            left -= now - self.last_step_time
        return max(0.0, left)


@dataclass
class ResultRow:
    stage: str
    label: str
    cacc: float | None
    asr: float | None
    lfr: float | None
    pacc: float | None
    delta_pacc: float | None
    verdict: Verdict | None
    status: str


class RunView:
    """What the run screen reads: the run's fields and the queries widgets ask of them.

    Read-only by convention: :class:`RunState` (below, with its base :class:`StageEvents`) is the
    one that changes them, from events.
    """

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.device: str | None = None
        self.versions: dict[str, Any] = {}
        self.run_dir: str | None = None
        self.stages: dict[str, StageState] = {}
        self.logs: list[LogLine] = []
        self.errors: list[LogLine] = []
        self.summary: dict[str, Any] | None = None
        self.said: dict[str, Any] = {}  # label_names and target, as the run's data log line says them
        self.started: bool = False
        self.finished: bool = False
        self.cancel_requested: bool = False
        self.first_time: float | None = None
        self.last_time: float | None = None
        self.current_stage: str | None = None
        # what runs before the first stage: the tiny encoder's masked-LM pre-training, which the
        # engine reports as log events with phase = "pretrain" (it is not a stage of the contract)
        self.phase: str | None = None
        # the process writing the run (pid, host: ``run_started``'s ``process``); a run whose
        # process is gone without a run_finished is shown as stopped (see :meth:`mark_stopped`)
        self.writer: dict[str, Any] | None = None
        self.stopped = False
        self.n_events = 0
        # CUBE's precision / recall / f1 / flagged / poisoned, from the detect stage (or None)
        self.detection: dict[str, Any] | None = None
        # change counters, so widgets redraw only what changed
        self.rev = {"stages": 0, "series": 0, "matrices": 0, "results": 0, "logs": 0, "errors": 0, "detection": 0}

    # ------------------------------------------------------------------ derived config values
    def _cfg(self, section: str, key: str, default: Any = None) -> Any:
        return config_value(self.config, section, key, default)

    @property
    def dataset(self) -> str:
        return str(self._cfg("data", "dataset", "") or (self.summary or {}).get("dataset") or "")

    @property
    def name(self) -> str:
        return printable(self.config.get("name") or (self.summary or {}).get("preset") or "")

    @property
    def num_labels(self) -> int | None:
        for st in self.stages.values():
            for cm in st.matrices.values():
                return len(cm)
        n = (self.summary or {}).get("num_labels")
        return n if isinstance(n, int) else None

    @property
    def label_names(self) -> list[str]:
        names = _names(self._cfg("data", "label_names"))
        if not names and isinstance(self._cfg("data", "label_map"), dict):  # its values, in order, once each
            names = _names(list(dict.fromkeys(self._cfg("data", "label_map").values())))
        if not names and self.summary:
            names = _names(self.summary.get("label_names"))
        if not names:
            names = _names(self.said.get("label_names"))
        if not names:
            names = DEFAULT_LABELS.get(self.dataset, [])
        n = self.num_labels
        names = [str(x) for x in names]
        if n is not None and len(names) != n:
            names = (names + [str(i) for i in range(len(names), n)])[:n]
        return names

    @property
    def target(self) -> int:
        if self.summary and isinstance(self.summary.get("target"), int):
            return self.summary["target"]
        if isinstance(self.said.get("target"), int):
            return self.said["target"]
        t = self._cfg("attack", "target", -1)
        if isinstance(t, int) and t >= 0:
            return t
        return DEFAULT_TARGET.get(self.dataset, 0)

    @property
    def threshold(self) -> float:
        v = _num(self._cfg("unlearn", "shift_threshold"))
        return v if v is not None else 0.2

    @property
    def uses_detection(self) -> bool:
        """The run detects its forget set with CUBE (``unlearn.forget_set = "cube"``): a detect stage."""
        return (self._cfg("unlearn", "forget_set") == "cube" or DETECT in self.stages
                or self.detection is not None)

    @property
    def is_running(self) -> bool:
        return self.started and not self.finished

    # ------------------------------------------------------------------ stages
    def status_signature(self) -> tuple:
        """What the matrix board and the results table show besides metrics: the stages and their status."""
        return tuple((name, st.status, st.total_steps) for name, st in self.stages.items())

    @property
    def board_stages(self) -> list[StageState]:
        """Stages in the matrix-board order: Retrain, Poisoned, then the methods."""
        order = [s for s in ("retrain", "poison") if s in self.stages]
        order += [s for s in self.stages if s not in ("retrain", "poison", DETECT)]
        return [self.stages[s] for s in order]

    @property
    def unlearn_stages(self) -> list[StageState]:
        return [s for s in self.stages.values() if s.method]

    def stage_seconds(self, st: StageState) -> float | None:
        return st.elapsed(self.last_time)

    # ------------------------------------------------------------------ views
    def matrix(self, stage: str, split: str = "test_poisoned_all") -> list[list[int]] | None:
        st = self.stages.get(stage)
        return st.matrices.get(split) if st else None

    def verdict(self, stage: str) -> Verdict | None:
        st = self.stages.get(stage)
        if st is None:
            return None
        return verdict_from_shift(st.shift, self.label_names, **self._known(st))

    @staticmethod
    def _asr(st: StageState) -> float | None:
        """The stage's latest ASR (its last evaluation, else its final metrics)."""
        a = _num((st.eval_metrics.get("test_poisoned_part") or {}).get("asr"))
        return a if a is not None else _num(st.metrics.get("asr"))

    def _retrain_asr(self, st: StageState) -> float | None:
        """Retrain's ASR once Retrain is done (not for Retrain itself, as in the engine)."""
        rt = self.stages.get("retrain")
        return self._asr(rt) if rt is not None and rt is not st and rt.status == "done" else None

    def _known(self, st: StageState) -> dict[str, Any]:
        """What grades an old (ungraded) shift dict: the model's ASR, Retrain's, the clean matrix."""
        return {"asr": self._asr(st), "retrain_asr": self._retrain_asr(st), "threshold": self.threshold,
                "cm_clean": st.matrices.get("test_clean")}

    def _shift_args(self, st: StageState) -> dict[str, Any]:
        """Keyword arguments of ``trigger_shift`` for a shift computed here (events without one)."""
        return {"retrain_asr": self._retrain_asr(st), "label_names": self.label_names or None}

    def series(self, stage: str, key: str) -> Series | None:
        st = self.stages.get(stage)
        return st.series.get(key) if st else None

    def results_rows(self) -> list[ResultRow]:
        """One row per model, paper order (Poisoned, Retrain, methods); values None until known."""
        rows = []
        order = [s for s in ("poison", "retrain") if s in self.stages]
        order += [s for s in self.stages if s not in ("poison", "retrain", DETECT)]
        retrain_pacc = _num(self.stages["retrain"].metrics.get("pacc")) if "retrain" in self.stages else None
        for name in order:
            st = self.stages[name]
            m = st.metrics
            pacc = _num(m.get("pacc"))
            lfr = _num(m.get("paper_lfr"))
            if lfr is None:
                raw = m.get("lfr")
                if isinstance(raw, list):
                    vals = [_num(v) for i, v in enumerate(raw) if i != self.target]
                    vals = [v for v in vals if v is not None]
                    lfr = sum(vals) / len(vals) if vals else None
                else:
                    lfr = _num(raw)
            dp = _num(m.get("delta_pacc"))
            if dp is None and name != "retrain" and pacc is not None and retrain_pacc is not None:
                dp = abs(pacc - retrain_pacc)
            verdict = verdict_from_shift(m.get("trigger_shift"), self.label_names, **self._known(st)) if m else None
            rows.append(ResultRow(name, st.label, _num(m.get("cacc")), _num(m.get("asr")), lfr, pacc,
                                  dp, verdict, st.status))
        return rows

    def overall_progress(self) -> float:
        if not self.stages:
            return 0.0
        return sum(s.progress for s in self.stages.values()) / len(self.stages)


# --------------------------------------------------------------------------- one event, one stage
# What an event does to one stage (and what run-level events say by themselves), as functions
# of the event and the StageState alone; the handlers of StageEvents and RunState (below) find
# the stage, add what needs the whole run (a trigger shift computed here, the detection scores,
# log lines) and count the change.

# stage_finished metrics keys that carry a final confusion matrix, by split
_FINAL_MATRICES = (("test_clean", "confusion_clean"), ("test_poisoned_all", "confusion_poisoned_all"),
                   ("test_poisoned_part", "confusion_poisoned_part"))


def planned_stages(config: dict[str, Any]) -> list[str]:
    """The stages a run of ``config`` has, pending until they start: poison, detect (a CUBE
    forget set), retrain (when enabled), one per method."""
    planned = ["poison"]
    if config_value(config, "unlearn", "forget_set") == "cube":
        planned.append(DETECT)
    if config_value(config, "train", "retrain", True) is not False:
        planned.append("retrain")
    methods = config_value(config, "unlearn", "methods") or []
    planned += [f"unlearn:{m}" for m in methods if isinstance(m, str)]
    return planned


def device_text(e: dict[str, Any]) -> str | None:
    """``run_started``'s device, with its precision unless fp32 (``cpu bf16``); None if unsaid."""
    device = e.get("device") if isinstance(e.get("device"), str) else None
    if device and e.get("precision") in ("bf16", "fp16"):  # fp32 goes without saying
        device += f" {e['precision']}"
    return device


def pretrain_phase(e: dict[str, Any]) -> str | None:
    """What a pre-training log event (``phase = "pretrain"``) says the run is doing before its
    first stage; None once cached weights were loaded instead."""
    epoch, epochs = int(e.get("epoch") or 0), int(e.get("epochs") or 0)
    if e.get("cached"):
        return None
    if epochs and epoch >= epochs:
        return "pre-trained the encoder"
    return "pre-training the encoder" + (f" {epoch}/{epochs}" if epoch else "")


def start_stage(st: StageState, total_steps: Any, t: float | None) -> None:
    """``stage_started``: running from step 0 of ``total_steps``, started at ``t``."""
    st.status = "running"
    st.total_steps = int(total_steps or 0)
    st.step = 0
    st.started = t
    st.last_step_time = t
    st.finished = None


def record_step(st: StageState, e: dict[str, Any], t: float | None) -> None:
    """``step``: the step (a stage never started is running from now), epoch and series points."""
    if st.status == "pending":
        st.status = "running"
        st.started = st.started if st.started is not None else t
    step = _num(e.get("step"))
    if step is not None:
        st.step = int(step)
        if st.total_steps and st.step > st.total_steps:
            st.total_steps = st.step
    st.epoch = _num(e.get("epoch"))
    st.last_step_time = t if t is not None else st.last_step_time
    x = step if step is not None else len(st.series["loss"])
    for k in SERIES_KEYS:
        if k in e:
            st.series[k].add(x, e.get(k))


def record_eval(st: StageState, e: dict[str, Any]) -> tuple[str, list[list[int]] | None, dict[str, Any]]:
    """``eval``: the split's latest matrix (when the event has a valid one), metrics and step;
    returns the split, the event's matrix and its metrics (the trigger shift is the caller's)."""
    split = str(e["split"])
    cm = _matrix(e.get("confusion"))
    if cm is not None:
        st.matrices[split] = cm
    metrics = e.get("metrics") if isinstance(e.get("metrics"), dict) else {}
    st.eval_metrics[split] = metrics
    step = _num(e.get("step"))
    st.eval_step[split] = int(step) if step is not None else st.step
    st.eval_sample[split] = e.get("sample") is True
    return split, cm, metrics


def finish_stage(st: StageState, metrics: dict[str, Any], seconds: Any, t: float | None) -> None:
    """``stage_finished``: final metrics, time, done or cancelled (a failed stage stays failed),
    the final matrices and the metrics' trigger shift (one to compute is the caller's)."""
    st.metrics = metrics
    st.seconds = _num(seconds)
    st.finished = t
    if st.status != "failed":
        st.status = "cancelled" if metrics.get("cancelled") else "done"
    if st.total_steps and st.status == "done":
        st.step = max(st.step, st.total_steps)
    for split, key in _FINAL_MATRICES:
        cm = _matrix(metrics.get(key))
        if cm is not None:
            st.matrices[split] = cm
    if isinstance(metrics.get("trigger_shift"), dict):
        st.shift = metrics["trigger_shift"]


def merge_model_entry(st: StageState, entry: dict[str, Any]) -> None:
    """A ``run_finished`` summary's model entry into its stage: the entry's metrics (the stage's
    own fill the gaps), its clean and triggered matrices where the stage has none, its trigger
    shift as the final word (Poisoned's is re-graded after Retrain); a pending or running stage is done."""
    merged = dict(entry)
    merged.update({k: v for k, v in st.metrics.items() if k not in merged})
    st.metrics = merged
    for split, key in (("test_clean", "confusion_clean"), ("test_poisoned_all", "confusion_poisoned_all")):
        cm = _matrix(entry.get(key))
        if cm is not None and split not in st.matrices:
            st.matrices[split] = cm
    if isinstance(entry.get("trigger_shift"), dict):
        st.shift = entry["trigger_shift"]
    if st.status in ("pending", "running"):
        st.status = "done"


def fail_stage(st: StageState, message: str, t: float | None) -> None:
    """``error`` naming a stage: failed at ``t``, with the message."""
    st.status = "failed"
    st.error = message
    st.finished = t


class StageEvents(RunView):
    """The stage events' handlers (``stage_started``, ``step``, ``eval``, ``stage_finished``) and
    what every handler shares: finding or adding a stage, a log line, counting a change.  What an
    event does to the stage itself is in the functions above; these add what needs the whole run
    (a trigger shift computed here, CUBE's detection scores, the current stage, the log)."""

    def _log(self, t: float | None, level: str, message: str, stage: str | None = None) -> None:
        # messages quote presets and data files: their control characters are shown, not obeyed
        self.logs.append(LogLine(t, printable(level), printable(message, keep="\n"), stage))
        self.rev["logs"] += 1

    def _bump(self, *keys: str) -> None:
        """Count a change of each of ``keys`` in :attr:`rev` (what the widgets redraw)."""
        for key in keys:
            self.rev[key] += 1

    def _stage(self, name: str) -> StageState:
        st = self.stages.get(name)
        if st is None:
            st = self.stages[name] = StageState(name)
            self.rev["stages"] += 1
        return st

    def _shift_of(self, st: StageState, cm_pa: list[list[int]]) -> dict | None:
        """The trigger shift of ``st``'s triggered matrix, for events that carry none."""
        return _compute_shift(cm_pa, st.matrices.get("test_clean"), self.target, self.threshold,
                              **self._shift_args(st))

    def _on_stage_started(self, e: dict, t: float | None) -> None:
        self.started = True
        self.phase = None
        st = self._stage(str(e["stage"]))
        start_stage(st, e.get("total_steps"), t)
        self.current_stage = st.name
        self._bump("stages")
        self._log(t, "info", f"{st.label}: started ({st.total_steps} steps)", st.name)

    def _on_step(self, e: dict, t: float | None) -> None:
        record_step(self._stage(str(e["stage"])), e, t)
        self._bump("stages", "series")

    def _on_eval(self, e: dict, t: float | None) -> None:
        st = self._stage(str(e["stage"]))
        split, cm, metrics = record_eval(st, e)
        if split == "test_poisoned_all":
            shift = metrics.get("trigger_shift")
            if not isinstance(shift, dict) and cm is not None:
                shift = self._shift_of(st, cm)
            st.shift = shift if isinstance(shift, dict) else None
        self._bump("matrices")

    def _on_stage_finished(self, e: dict, t: float | None) -> None:
        st = self._stage(str(e["stage"]))
        metrics = e.get("metrics") if isinstance(e.get("metrics"), dict) else {}
        finish_stage(st, metrics, e.get("seconds"), t)
        if st.shift is None and "test_poisoned_all" in st.matrices:
            st.shift = self._shift_of(st, st.matrices["test_poisoned_all"])
        if st.name == DETECT and _num(metrics.get("f1")) is not None:
            self.detection = {k: metrics.get(k) for k in ("precision", "recall", "f1", "flagged", "poisoned")}
            self._bump("detection")
        if self.current_stage == st.name:
            self.current_stage = None
        self._bump("stages", "matrices", "results")
        self._log(t, "info", f"{st.label}: {st.status} in {fmt_duration(self.stage_seconds(st))}", st.name)


class RunState(StageEvents):
    """Everything the run screen shows, built from events by :meth:`apply`, which hands each event
    to its ``_on_<type>`` handler: the run-level ones are here, the stage events' are
    :class:`StageEvents`'s; the queries are :class:`RunView`'s."""

    def apply_many(self, events: Iterable[dict[str, Any]]) -> int:
        n = 0
        for e in events:
            self.apply(e)
            n += 1
        return n

    def apply(self, event: dict[str, Any]) -> None:
        if not isinstance(event, dict):
            return
        etype = event.get("type")
        t = _num(event.get("time"))
        if t is not None:
            if self.first_time is None:
                self.first_time = t
            self.last_time = t if self.last_time is None else max(self.last_time, t)
        self.n_events += 1
        handler = getattr(self, f"_on_{etype}", None)
        if handler is not None:
            problem = malformed(event)
            if problem:  # checked before anything changes: no phantom stage, no half-applied event
                self._log(t, "warning", f"ignored a malformed {etype} event: {problem}")
                return
            try:
                handler(event, t)
            except Exception as exc:  # a malformed event never breaks the screen
                self._log(t, "warning", f"ignored a malformed {etype} event: {exc!r}")

    # ------------------------------------------------------------------ run events
    def _on_run_started(self, e: dict, t: float | None) -> None:
        cfg = e.get("config")
        self.config = cfg if isinstance(cfg, dict) else {}
        self.device = device_text(e)
        self.versions = e.get("versions") if isinstance(e.get("versions"), dict) else {}
        self.run_dir = e.get("run_dir") if isinstance(e.get("run_dir"), str) else self.run_dir
        self.writer = e.get("process") if isinstance(e.get("process"), dict) else None
        self.started = True
        for name in planned_stages(self.config):
            self._stage(name)
        self._bump("results")
        where = f" on {self.device}" if self.device else ""
        self._log(t, "info", f"run started: {self.name or 'preset'}{where}")

    def _on_run_finished(self, e: dict, t: float | None) -> None:
        summary = e.get("summary")
        self.summary = summary if isinstance(summary, dict) else {}
        if isinstance(self.summary.get("detection"), dict):
            self.detection = self.summary["detection"]
            self._bump("detection")
        self.finished = True
        cancelled = (bool(self.summary.get("cancelled")) or self.summary.get("status") == "cancelled"
                     or self.cancel_requested)
        models = self.summary.get("models") if isinstance(self.summary.get("models"), dict) else {}
        for key, entry in models.items():
            st = self.stages.get(stage_of_model(key)) if isinstance(entry, dict) else None
            if st is not None:
                merge_model_entry(st, entry)
        for st in self.stages.values():  # what is still open ends with the run
            if st.status == "running":
                st.status = "cancelled" if cancelled or not self.errors else "failed"
                st.finished = t
            elif st.status == "pending" and (cancelled or self.errors):
                st.status = "cancelled"
        self.current_stage = None
        self._bump("stages", "matrices", "results")
        self._log(t, "info", "run cancelled" if cancelled else "run finished")

    def _on_error(self, e: dict, t: float | None) -> None:
        stage = e.get("stage")
        msg = printable(e.get("message") or "unknown error", keep="\n")
        if is_stage_name(stage):
            fail_stage(self._stage(stage), msg, t)
            self._bump("stages")
        line = LogLine(t, "error", msg, stage if isinstance(stage, str) else None)
        if any(x.message == msg for x in self.errors):
            return  # the same failure reported twice (engine event + worker exception)
        self.errors.append(line)
        self.rev["errors"] += 1
        self.logs.append(line)
        self.rev["logs"] += 1

    def _on_log(self, e: dict, t: float | None) -> None:
        message = str(e.get("message") or "")
        stage = e.get("stage") if isinstance(e.get("stage"), str) else None
        self._log(t, str(e.get("level") or "info").lower(), message, stage)
        if isinstance(e.get("label_names"), list):
            self.said["label_names"] = e["label_names"]
            self.said["target"] = e.get("target") if isinstance(e.get("target"), int) else None
            self._bump("matrices", "results")  # class names on the matrices and in the verdicts
        if e.get("phase") == "pretrain" and self.current_stage is None:
            self.phase = pretrain_phase(e)

    # ------------------------------------------------------------------ runs that end without run_finished
    def mark_aborted(self, message: str | None = None, *, cancelled: bool = False) -> None:
        """The run ended without ``run_finished`` (the worker raised or was stopped)."""
        if message:
            self._on_error({"stage": "run", "message": message}, self.last_time)
        for st in self.stages.values():
            if st.status == "running":
                st.status = "cancelled" if cancelled else "failed"
            elif st.status == "pending":
                st.status = "cancelled"
        self.finished = True
        self.current_stage = None
        self._bump("stages", "results")

    def mark_stopped(self, message: str) -> None:
        """The process writing the run is gone without a ``run_finished`` (killed, power loss):
        the run is stopped, not running (no ETA), and says so."""
        if self.finished:
            return
        self.stopped = True
        self._log(self.last_time, "warning", message)
        self.mark_aborted(None, cancelled=True)


# --------------------------------------------------------------------------- replay pacing

class EventPacer:
    """Releases events paced by their ``"time"`` deltas divided by ``speed``.

    ``speed <= 0`` releases everything at once.  ``due(elapsed)`` gives the events whose
    (time − first time) / speed ≤ ``elapsed`` wall seconds since the replay started; long gaps in
    the recording (over ``max_gap`` seconds of event time) are shortened to ``max_gap``.
    """

    def __init__(self, speed: float = 0.0, max_gap: float = 5.0) -> None:
        self.speed = float(speed)
        self.max_gap = max_gap
        self._pending: list[tuple[float, dict]] = []
        self._last_t: float | None = None
        self._clock = 0.0  # cumulative (gap-clamped) event time

    def feed(self, events: Iterable[dict]) -> None:
        for e in events:
            t = _num(e.get("time")) if isinstance(e, dict) else None
            if t is not None:
                if self._last_t is not None:
                    self._clock += min(max(0.0, t - self._last_t), self.max_gap)
                self._last_t = t
            self._pending.append((self._clock, e))

    def due(self, elapsed: float) -> list[dict]:
        if self.speed <= 0:
            out = [e for _, e in self._pending]
            self._pending.clear()
            return out
        limit = elapsed * self.speed
        i = 0
        while i < len(self._pending) and self._pending[i][0] <= limit:
            i += 1
        out = [e for _, e in self._pending[:i]]
        del self._pending[:i]
        return out

    @property
    def pending(self) -> int:
        return len(self._pending)

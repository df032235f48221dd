"""Events: what the engine tells the world while it runs.

The in-process stream and ``events.jsonl`` carry the same JSON objects, each with a ``"type"``:

* ``run_started``    {config, device, precision, versions, run_dir, process, processes}   (process: pid, host, start; see
  runinfo.py; processes: how many ran the pipeline, 1 unless launched with several)
* ``stage_started``  {stage, total_steps}
* ``step``           {stage, step, epoch, loss, forget_loss, retain_loss, lambda, kl, lr, samples_per_s}
* ``eval``           {stage, step, split, confusion, metrics}
* ``stage_finished`` {stage, metrics, seconds}
* ``run_finished``   {summary}
* ``error``          {stage, message}
* ``log``            {level, message}   (extension: warnings / information for the log area)

Stages: ``poison``, ``detect`` (CUBE, ``unlearn.forget_set = "cube"``), ``retrain``,
``unlearn:<method>``.  Values that do not apply are omitted or null.
Every event also has ``"time"`` (Unix seconds).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

EVENT_TYPES = (
    "run_started",
    "stage_started",
    "step",
    "eval",
    "stage_finished",
    "run_finished",
    "error",
    "log",
)

REQUIRED: dict[str, tuple[str, ...]] = {
    "run_started": ("config",),
    "stage_started": ("stage", "total_steps"),
    "step": ("stage", "step", "loss"),
    "eval": ("stage", "step", "split", "confusion", "metrics"),
    "stage_finished": ("stage", "metrics", "seconds"),
    "run_finished": ("summary",),
    "error": ("stage", "message"),
    "log": ("level", "message"),
}


def _clean(v: Any) -> Any:
    """JSON-safe: NaN/inf become null (strict JSON), tuples become lists."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def make_event(type: str, **fields: Any) -> dict[str, Any]:
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    missing = [k for k in REQUIRED[type] if k not in fields]
    if missing:
        raise ValueError(f"event {type!r} lacks {', '.join(missing)}")
    return {"type": type, "time": time.time(), **_clean(fields)}


class Sink(Protocol):
    def emit(self, event: dict[str, Any]) -> None: ...


class NullSink:
    def emit(self, event: dict[str, Any]) -> None:
        pass


class ListSink:
    """Keeps every event in memory (tests)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def of_type(self, type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type]


class CallbackSink:
    def __init__(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self.fn = fn

    def emit(self, event: dict[str, Any]) -> None:
        self.fn(event)


class BufferSink:
    """Thread-safe buffer: the trainer appends, the UI drains on a timer (never blocks the trainer)."""

    def __init__(self) -> None:
        self._q: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._q.append(event)

    def drain(self) -> list[dict[str, Any]]:
        with self._lock:
            out = list(self._q)
            self._q.clear()
        return out


class MultiSink:
    def __init__(self, *sinks: Sink) -> None:
        self.sinks = [s for s in sinks if s is not None]

    def emit(self, event: dict[str, Any]) -> None:
        for s in self.sinks:
            s.emit(event)


class JsonlSink:
    """Appends one JSON object per line to ``events.jsonl``, flushed per event."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, allow_nan=False, separators=(",", ":"))
        with self._lock:
            self._f.write(line + "\n")
            self._f.flush()

    def close(self) -> None:
        with self._lock:
            self._f.close()


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """All complete events of a file; a half-written last line is ignored."""
    events, _ = read_new_events(path, 0)
    return events


def read_new_events(path: str | Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Events appended since byte ``offset``; returns them and the offset to resume from.

    Only complete lines (ending in a newline) are consumed, so a line being written is picked up
    whole on the next call.  A corrupt complete line is skipped.
    """
    p = Path(path)
    if not p.exists():
        return [], offset
    with p.open("rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    out = []
    for line in data[: end + 1].splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "type" in obj:
            out.append(obj)
    return out, offset + end + 1


def follow(path: str | Path, poll: float = 0.25, stop: Callable[[], bool] | None = None) -> Iterator[dict[str, Any]]:
    """Yield events as a run folder's ``events.jsonl`` grows, until ``run_finished`` or ``stop()``."""
    offset = 0
    while True:
        events, offset = read_new_events(path, offset)
        for e in events:
            yield e
            if e["type"] == "run_finished":
                return
        if stop is not None and stop():
            return
        time.sleep(poll)

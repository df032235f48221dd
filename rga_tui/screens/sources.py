"""Where the run screen's events come from: an in-process pipeline run or a run folder on disk."""

from __future__ import annotations

import importlib
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from rga_engine.events import BufferSink, read_new_events
from rga_tui.state import EventPacer


def events_path(run_dir: Path) -> Path:
    """A run folder's ``events.jsonl`` (``run_dir`` may also name the file itself)."""
    run_dir = Path(run_dir)
    return run_dir if run_dir.suffix == ".jsonl" else run_dir / "events.jsonl"


class FileSource:
    """Tails ``events.jsonl`` (watch mode); ``speed > 0`` replays paced by the events' times."""

    live = False

    def __init__(self, run_dir: Path, speed: float = 0.0) -> None:
        self.path = events_path(run_dir)
        self.run_dir = self.path.parent
        self.offset = 0
        self.speed = max(0.0, float(speed or 0.0))
        self.pacer = EventPacer(self.speed)
        self._t0: float | None = None
        self.saw_finish = False

    def poll(self) -> list[dict[str, Any]]:
        if not self.saw_finish:
            new, self.offset = read_new_events(self.path, self.offset)
            if new:
                if self._t0 is None:
                    self._t0 = time.monotonic()
                self.pacer.feed(new)
                if any(e.get("type") == "run_finished" for e in new):
                    self.saw_finish = True
        if self._t0 is None:
            return []
        return self.pacer.due(time.monotonic() - self._t0)

    @property
    def waiting(self) -> bool:
        return not self.path.exists()

    @property
    def done(self) -> bool:
        return self.saw_finish and self.pacer.pending == 0

    def describe(self) -> str:
        mode = f"replay ×{self.speed:g}" if self.speed > 0 else "watch"
        return f"{mode} {self.run_dir.name}"


def pipeline_module():
    """``rga_engine.pipeline``, imported on first use (tests put a fake one in ``sys.modules``)."""
    return importlib.import_module("rga_engine.pipeline")


class PipelineSource:
    """Runs ``pipeline.run(cfg, sink, should_stop, run_dir)`` in a Textual thread worker."""

    live = True

    def __init__(self, cfg: Any, run_dir: Path | None) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.sink = BufferSink()
        self.stop = threading.Event()
        self.error: str | None = None
        self.traceback: str | None = None
        self.summary: dict | None = None
        self.done = False
        self.started_wall: float | None = None

    def should_stop(self) -> bool:
        return self.stop.is_set()

    def work(self) -> None:
        """The worker body: never raises (the UI reads ``error`` / ``traceback``)."""
        self.started_wall = time.time()
        try:
            pipeline = pipeline_module()
            self.summary = pipeline.run(self.cfg, self.sink, self.should_stop, run_dir=self.run_dir)
        except BaseException as e:  # noqa: BLE001 - shown in the error panel, never kills the app
            self.error = f"{type(e).__name__}: {e}"
            self.traceback = traceback.format_exc()
        finally:
            self.done = True

    def poll(self) -> list[dict[str, Any]]:
        return self.sink.drain()

    @property
    def waiting(self) -> bool:
        return False

    def describe(self) -> str:
        return f"live {self.run_dir.name}" if self.run_dir is not None else "live"

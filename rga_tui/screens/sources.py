"""Where the run screen's events come from: an in-process pipeline run or a run folder on disk."""

from __future__ import annotations

import importlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from rga_engine.events import BufferSink, read_new_events
from rga_tui.state import EventPacer


ALIVE_INTERVAL = 2.0  # watching a run folder: how often to check that its process still lives


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
        self._alive_at = float("-inf")

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

    def check_writer(self, state: Any) -> None:
        """A followed run whose process is gone without a run_finished (SIGKILL, power loss) is
        stopped, not running: checked every couple of seconds once every event is read."""
        if state.finished or state.writer is None or self.pacer.pending:
            return
        now = time.monotonic()
        if now - self._alive_at < ALIVE_INTERVAL:
            return
        self._alive_at = now
        from rga_engine.runinfo import process_alive

        if process_alive(state.writer) is False:
            rest = self.poll()  # what it wrote just before it died comes first
            if rest:
                state.apply_many(rest)
                return
            w = state.writer
            state.mark_stopped(f"stopped: the run's process (pid {w.get('pid')} on {w.get('host')}) "
                               f"is gone without finishing (killed?)")

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
        self._settled = False

    def should_stop(self) -> bool:
        return self.stop.is_set()

    def cancel(self) -> None:
        self.stop.set()

    def work(self) -> None:
        """The worker body: never raises (the UI reads ``error`` / ``traceback``)."""
        self.started_wall = time.time()
        try:
            self.run()
        except BaseException as e:  # noqa: BLE001 - shown in the error panel, never kills the app
            self.error = f"{type(e).__name__}: {e}"
            self.traceback = traceback.format_exc()
        finally:
            self.done = True

    def run(self) -> None:
        pipeline = pipeline_module()
        self.summary = pipeline.run(self.cfg, self.sink, self.should_stop, run_dir=self.run_dir)

    def poll(self) -> list[dict[str, Any]]:
        return self.sink.drain()

    def settle(self, state: Any) -> tuple[str, str] | None:
        """Once the work is done, once: the events it left and how it ended into ``state`` (an
        error, or a cancel that wrote no run_finished); returns the screen's notice (text,
        severity)."""
        if not self.done or self._settled:
            return None
        self._settled = True
        rest = self.poll()
        if rest:
            state.apply_many(rest)
        if self.error and not state.finished:
            if self.traceback:
                state._log(state.last_time, "error", self.traceback.rstrip())
            state.mark_aborted(self.error, cancelled=self.stop.is_set())
        elif self.error:
            state._on_error({"stage": "run", "message": self.error}, state.last_time)
        elif not state.finished:
            state.mark_aborted(None, cancelled=True)
        if self.error:
            return f"The run failed: {self.error}", "error"
        where = f" · {self.run_dir}" if self.run_dir is not None else ""
        return f"Run {'cancelled' if self.stop.is_set() else 'finished'}{where}", "information"

    @property
    def waiting(self) -> bool:
        return False

    def describe(self) -> str:
        return f"live {self.run_dir.name}" if self.run_dir is not None else "live"


class ProcessSource(PipelineSource):
    """Runs the preset in a child process (``rga-tui run``) and follows its run folder.

    The default for live runs: training gets a process of its own, so the UI never competes with
    it for the GIL (an in-process thread cost ~20 % of the training speed on 2 cores), and closing
    the app cannot corrupt the run. ``c`` sends the child SIGINT: it finishes the step, writes
    what exists and exits 130, exactly like Ctrl-C on ``rga-tui run``.
    """

    def __init__(self, cfg: Any, run_dir: Path) -> None:
        super().__init__(cfg, run_dir)
        self.file = FileSource(run_dir)
        self.proc = None
        self.returncode: int | None = None
        self._tmp: Path | None = None

    def command(self, preset: Path) -> list[str]:
        cmd = [sys.executable, "-m", "rga_tui", "run", str(preset), "--out", str(self.run_dir), "--quiet", "--yes"]
        if getattr(getattr(self.cfg, "model", None), "trust_remote_code", False):
            cmd.append("--trust-remote-code")  # the user confirmed it in the app (home screen)
        return cmd

    def run(self) -> None:
        """Start the child and wait for it (``work`` guards this; ``cancel`` signals the child)."""
        self._tmp = Path(tempfile.mkdtemp(prefix="rga-tui-"))
        preset = self._tmp / "preset.toml"
        preset.write_text(self.cfg.to_toml(), encoding="utf-8")
        with (self._tmp / "stderr.txt").open("wb") as err:
            self.proc = subprocess.Popen(self.command(preset), stdout=subprocess.DEVNULL, stderr=err)
            if self.stop.is_set():  # cancelled before the child existed
                self.proc.send_signal(signal.SIGINT)
            self.returncode = self.proc.wait()  # blocks without polling
        try:
            if self.returncode not in (0, 130):
                tail = (self._tmp / "stderr.txt").read_text(encoding="utf-8", errors="replace").strip()
                lines = [ln for ln in tail.splitlines() if ln.strip()]
                self.error = lines[-1] if lines else f"the run exited with status {self.returncode}"
                if len(lines) > 1:
                    self.traceback = "\n".join(lines[-40:])
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)  # the run folder has the config and events

    def poll(self) -> list[dict[str, Any]]:
        new, self.file.offset = read_new_events(self.file.path, self.file.offset)
        return new

    def cancel(self) -> None:
        """Ask the child to stop: SIGINT, like Ctrl-C on ``rga-tui run``."""
        self.stop.set()
        p = self.proc
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGINT)

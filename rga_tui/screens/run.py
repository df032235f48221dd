"""The run screen: stage strip, confusion matrices with verdicts, loss and λ curves, results, log,
and CUBE's detection (scores and 2-D scatter) when the run detects its forget set.

Fed either by an in-process pipeline run (thread worker + BufferSink drained ~4×/s) or by a run
folder's ``events.jsonl`` (watch / replay).  All event logic lives in :class:`RunState`; this
screen only drains events, applies them in a batch and asks the widgets to redraw.

Layout: a grid when the terminal is at least ``WIDE`` columns, tabs (Matrices / Curves / Table /
Log, and Detection for a run with ``unlearn.forget_set = "cube"``) below that; crossing the
threshold recomposes the screen from the same state. The detection panel is hidden (grid) or its
tab is (tabs) until the run turns out to have a detect stage.

The pieces: the two layouts in :mod:`rga_tui.screens.run_layout`, the redraw of only what changed in
:class:`~rga_tui.screens.run_redraw.RunRedraw`, and c / q / escape (cancel, quit, back) in
:class:`~rga_tui.screens.run_controls.RunControls`.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent

from rga_tui.screens.modals import HelpScreen
from rga_tui.screens.run_controls import RunControls
from rga_tui.screens.run_layout import TABS, grid_layout, tab_layout
from rga_tui.screens.run_redraw import RunRedraw
from rga_tui.screens.sources import FileSource, PipelineSource
from rga_tui.state import RunState
from rga_tui.widgets import ErrorPanel, MatrixBoard, StageStrip, StatusLine

WIDE = 140
TICK = 0.5


class RunScreen(RunControls, RunRedraw, Screen):
    BINDINGS = [
        Binding("m", "toggle_matrices", "Clean/triggered"),
        Binding("c", "cancel_run", "Cancel"),
        Binding("s", "screenshot", "Screenshot"),
        Binding("question_mark", "help", "Help"),
        Binding("escape", "back", "Back"),
        Binding("q", "quit_app", "Quit"),
        Binding("1", "tab(0)", show=False),
        Binding("2", "tab(1)", show=False),
        Binding("3", "tab(2)", show=False),
        Binding("4", "tab(3)", show=False),
        Binding("5", "tab(4)", show=False),
    ]

    def __init__(self, source: FileSource | PipelineSource, *, tick: float = TICK) -> None:
        super().__init__()
        self.source = source
        self.state = RunState()
        if source.run_dir is not None:
            self.state.run_dir = str(source.run_dir)
        self.split = "test_poisoned_all"
        self.wide: bool | None = None
        self.tick_s = tick
        self._timer = None
        self._shots = 0
        self._board_drawn: tuple | None = None  # (matrices rev, stage statuses) last laid out
        self._strip_rev: int | None = None
        self._strip_at = float("-inf")
        self._detection_shown: bool | None = None  # the detection panel / tab shown (None: not yet decided)
        self._recomposing = False  # the tick waits: new widgets are in the DOM before their on_mount
        self._cancellable: bool | None = None  # what the footer last offered for c

    # ------------------------------------------------------------------ layout
    def _is_wide(self) -> bool:
        return self.app.size.width >= WIDE

    def compose(self) -> ComposeResult:
        if self.wide is None:
            self.wide = self._is_wide()
        st = self.state
        yield StatusLine(st, self.source, id="status")
        yield StageStrip(st, self.now, id="stages")
        yield ErrorPanel(st, id="error-panel")
        yield from (grid_layout if self.wide else tab_layout)(st, self.source.run_dir)
        yield Footer()

    def on_mount(self) -> None:
        self.set_class(bool(self.wide), "-wide")
        self.query_one(MatrixBoard).set_split(self.split)
        self._timer = self.set_interval(self.tick_s, self.tick)
        if isinstance(self.source, PipelineSource):
            self.run_worker(self.source.work, thread=True, exit_on_error=False, name="pipeline",
                            group="pipeline", exclusive=True)
        self.tick()

    async def on_resize(self, event: events.Resize) -> None:
        wide = self._is_wide()
        if self.wide is not None and wide != self.wide:
            self.wide = wide
            self.set_class(wide, "-wide")
            self._recomposing = True
            try:
                await self.recompose()
            finally:
                self._recomposing = False
            self._detection_shown = None
            self.query_one(MatrixBoard).set_split(self.split)
            self.refresh_widgets(force=True)

    # ------------------------------------------------------------------ clock
    def now(self) -> float | None:
        """Event time for replays (deterministic); the wall clock only for a live in-process run."""
        if isinstance(self.source, PipelineSource) and not self.state.finished:
            return max(time.time(), self.state.last_time or 0.0)
        return self.state.last_time

    # ------------------------------------------------------------------ events in
    def tick(self) -> None:
        if self._recomposing:  # the events wait in the source for the next tick
            return
        try:
            events_ = self.source.poll()
        except Exception as e:  # noqa: BLE001 - a bad file must not kill the screen
            events_ = []
            self.state._log(self.state.last_time, "error", f"reading events: {e}")
        if events_:
            self.state.apply_many(events_)
        src = self.source
        if isinstance(src, PipelineSource):
            notice = src.settle(self.state)
            if notice is not None:
                self.notify(notice[0], severity=notice[1], timeout=8 if notice[1] == "error" else 6)
        elif not events_:
            src.check_writer(self.state)
        if self.run_going != self._cancellable:  # the run ended: the footer stops offering c
            self._cancellable = self.run_going
            self.refresh_bindings()
        self.refresh_widgets()

    # ------------------------------------------------------------------ actions
    def action_toggle_matrices(self) -> None:
        self.split = "test_clean" if self.split == "test_poisoned_all" else "test_poisoned_all"
        for board in self.query(MatrixBoard):
            board.set_split(self.split)
        self._update_status()

    def action_screenshot(self) -> None:
        folder = self.source.run_dir if self.source.run_dir is not None else Path.cwd()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._shots += 1
            name = f"screenshot-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{self._shots}.svg"
            path = self.app.save_screenshot(filename=name, path=str(folder))
        except OSError as e:
            self.notify(f"Could not save the screenshot: {e}", severity="error")
            return
        self.notify(f"Saved {path}")

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def action_tab(self, index: int) -> None:
        try:
            tabs = self.query_one("#tabs", TabbedContent)
        except NoMatches:
            return
        if TABS[index] == "tab-detection" and not self._detection_shown:
            return
        tabs.active = TABS[index]

    def stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def on_unmount(self) -> None:
        self.stop_timer()
        if isinstance(self.source, PipelineSource):
            self.source.cancel()

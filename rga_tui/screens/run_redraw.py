"""How the run screen redraws its widgets from the state on each tick: only what changed."""

from __future__ import annotations

import time

from textual.css.query import NoMatches
from textual.widgets import TabbedContent

from rga_tui.screens.sources import PipelineSource
from rga_tui.widgets import (DetectionPanel, ErrorPanel, EventLog, LambdaChart, LossChart, MatrixBoard, ResultsTable,
                             StageStrip, StatusLine)

STRIP_INTERVAL = 1.0  # elapsed / ETA tick once a second while live


class RunRedraw:
    """Mixin of :class:`~rga_tui.screens.run.RunScreen`. The screen provides ``source``, ``state``,
    ``split`` and what was last drawn (``_board_drawn``, ``_strip_rev``, ``_strip_at``,
    ``_detection_shown``, set in its ``__init__``), and Textual's ``query``."""

    def refresh_widgets(self, force: bool = False) -> None:
        self._update_status()
        # Steps arrive many times a second; only what they change is redrawn.  A layout pass
        # (the matrix board's height) happens only when a matrix or a stage's status changes.
        board = (self.state.rev["matrices"], self.state.status_signature())
        board_changed = force or board != self._board_drawn
        live = isinstance(self.source, PipelineSource) and not self.state.finished
        now = time.monotonic()
        if live:  # the strip's elapsed / ETA tick once a second
            strip_due = now - self._strip_at >= STRIP_INTERVAL
        else:  # watching a run folder: redraw it when a step or a stage arrived
            strip_due = self.state.rev["stages"] != self._strip_rev
        if board_changed or strip_due:
            self._strip_at, self._strip_rev = now, self.state.rev["stages"]
            for strip in self.query(StageStrip):
                strip.refresh()
        if board_changed:
            self._board_drawn = board
            for b in self.query(MatrixBoard):
                b.refresh(layout=True)
        for chart in self.query(LossChart):
            chart.redraw(force)
        for chart in self.query(LambdaChart):
            chart.redraw(force)
        for t in self.query(ResultsTable):
            t.sync(force)
        for log in self.query(EventLog):
            log.sync()
        for panel in self.query(ErrorPanel):
            panel.sync(force)
        self._sync_detection(force)

    def _sync_detection(self, force: bool) -> None:
        """CUBE's panel (grid) or tab (tabs): shown once the run has a detect stage, then kept fresh."""
        shown = self.state.uses_detection
        if shown != self._detection_shown:
            self._detection_shown = shown
            try:
                tabs = self.query_one("#tabs", TabbedContent)
            except NoMatches:
                for panel in self.query(DetectionPanel):
                    panel.display = shown
            else:
                (tabs.show_tab if shown else tabs.hide_tab)("tab-detection")
        if shown:
            for panel in self.query(DetectionPanel):
                panel.sync(force)

    def _update_status(self) -> None:
        for line in self.query(StatusLine):
            line.sync(self.split)

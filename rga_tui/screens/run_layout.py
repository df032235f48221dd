"""The run screen's two layouts of the same widgets, composed from one :class:`RunState`: a grid
(``#wide``) at ``rga_tui.screens.run.WIDE`` columns or more, tabs (``#tabs``, panes ``TABS``) below that."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import TabbedContent, TabPane

from rga_tui.state import RunState
from rga_tui.widgets import DetectionPanel, EventLog, LambdaChart, LossChart, MatrixBoard, ResultsTable

TABS = ("tab-matrices", "tab-curves", "tab-table", "tab-log", "tab-detection")


def grid_layout(st: RunState, run_dir: Path | None) -> ComposeResult:
    """Matrices on top, loss | λ | detection, then results | log."""
    with Vertical(id="wide"):
        with VerticalScroll(id="matrix-box"):
            yield MatrixBoard(st, id="matrices")
        with Horizontal(id="charts"):
            yield LossChart(st, id="loss-chart")
            yield LambdaChart(st, id="lambda-chart")
            yield DetectionPanel(st, run_dir, id="detection")
        with Horizontal(id="bottom"):
            yield ResultsTable(st, id="results")
            yield EventLog(st, id="log")


def tab_layout(st: RunState, run_dir: Path | None) -> ComposeResult:
    """Matrices / Curves / Table / Log / Detection, one tab each (keys 1-5)."""
    with TabbedContent(id="tabs", initial="tab-matrices"):
        with TabPane("Matrices", id="tab-matrices"):
            with VerticalScroll(id="matrix-box"):
                yield MatrixBoard(st, id="matrices")
        with TabPane("Curves", id="tab-curves"):
            with Vertical(id="charts"):
                yield LossChart(st, id="loss-chart")
                yield LambdaChart(st, id="lambda-chart")
        with TabPane("Table", id="tab-table"):
            yield ResultsTable(st, id="results")
        with TabPane("Log", id="tab-log"):
            yield EventLog(st, id="log")
        with TabPane("Detection", id="tab-detection"):
            yield DetectionPanel(st, run_dir, id="detection")

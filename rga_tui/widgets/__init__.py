"""Widgets of the run screen; each renders from a :class:`rga_tui.state.RunState`.

The home screen's two panes are in :mod:`rga_tui.widgets.presets` (not re-exported here)."""

from rga_tui.widgets.charts import LambdaChart, LossChart
from rga_tui.widgets.detection import DetectionPanel
from rga_tui.widgets.matrix import MatrixBoard
from rga_tui.widgets.results import ErrorPanel, EventLog, ResultsTable
from rga_tui.widgets.stages import StageStrip
from rga_tui.widgets.status import StatusLine

__all__ = ["DetectionPanel", "ErrorPanel", "EventLog", "LambdaChart", "LossChart", "MatrixBoard", "ResultsTable", "StageStrip", "StatusLine"]

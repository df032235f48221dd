"""Results table (paper style), log area and error panel of the run screen."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable, RichLog, Static

from rga_tui.state import LogLine, RunState, fmt_duration, fmt_pct
from rga_tui.widgets.matrix import VERDICT_STYLE

COLUMNS = ("Model", "CACC", "ASR", "LFR", "PACC", "ΔPACC", "Verdict")


class ResultsTable(DataTable):
    """CACC, ASR, LFR, PACC, ΔPACC (percent) and the trigger-shift verdict, one row per model."""

    DEFAULT_CSS = """
    ResultsTable { height: auto; max-height: 100%; }
    """

    def __init__(self, state: RunState, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="none", zebra_stripes=True, show_cursor=False)
        self.state = state
        self._drawn = -1

    def on_mount(self) -> None:
        self.border_title = "Results (%)"
        self.sync(force=True)

    def sync(self, force: bool = False) -> None:
        rev = (self.state.rev["results"], self.state.status_signature())  # not every step
        if not force and rev == self._drawn:
            return
        self._drawn = rev
        if not self.columns:  # here, not in on_mount: the screen's tick can reach a table that a
            for col in COLUMNS:  # resize has just composed, before its on_mount runs
                self.add_column(col, key=col)
        self.clear()
        for row in self.state.results_rows():
            if row.verdict is not None:
                icon, style = VERDICT_STYLE.get(row.verdict.kind, ("•", ""))
                verdict = Text(f"{icon} {row.verdict.text}", style=style)
            else:
                verdict = Text(row.status if row.status != "done" else "", style="dim")
            cells = [Text(row.label, style="bold")]
            for v in (row.cacc, row.asr, row.lfr, row.pacc, row.delta_pacc):
                cells.append(Text(fmt_pct(v), justify="right", style="" if v is not None else "dim"))
            cells.append(verdict)
            self.add_row(*cells, key=row.stage)


LEVEL_STYLE = {"debug": "dim", "info": "dim", "warning": "bold #ffb86c", "error": "bold #ff5555"}


def format_log(line: LogLine, t0: float | None) -> Text:
    stamp = fmt_duration(line.time - t0) if line.time is not None and t0 is not None else "--:--"
    t = Text(f"{stamp:>7} ", style="dim")
    level = line.level.lower()
    if level in ("warning", "error"):
        t.append(f"{level.upper()} ", style=LEVEL_STYLE[level])
    t.append(line.message, style="" if level in ("warning", "error") else "dim" if level == "debug" else "")
    return t


class EventLog(RichLog):
    """Warnings, errors and stage transitions, appended as they arrive, each wrapped to the panel's
    width (RichLog's default ``min_width`` of 78 would wrap at 78 columns and crop what a narrower
    panel cannot show) and wrapped again when the panel changes width."""

    def __init__(self, state: RunState, *, id: str | None = None) -> None:
        super().__init__(id=id, wrap=True, markup=False, highlight=False, max_lines=2000, min_width=16)
        self.state = state
        self._written = 0
        self._width = 0

    def on_mount(self) -> None:
        self.border_title = "Log"
        self.sync()

    def on_resize(self) -> None:
        width = self.scrollable_content_region.width
        if width != self._width and self._written:
            self.clear()  # the lines so far, wrapped to the new width
            self._written = 0
            self.sync()
        self._width = width

    def sync(self) -> None:
        logs = self.state.logs
        for line in logs[self._written:]:
            self.write(format_log(line, self.state.first_time))
        self._written = len(logs)


class ErrorPanel(Static):
    """Shown only when the engine reports an error or the worker raises."""

    DEFAULT_CSS = """
    ErrorPanel {
        display: none;
        height: auto;
        max-height: 8;
        border: heavy $error;
        padding: 0 1;
        color: $text;
    }
    ErrorPanel.-visible { display: block; }
    """

    def __init__(self, state: RunState, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.state = state
        self._drawn = -1

    def on_mount(self) -> None:
        self.border_title = "Error"
        self.sync(force=True)

    def sync(self, force: bool = False) -> None:
        rev = self.state.rev["errors"]
        if not force and rev == self._drawn:
            return
        self._drawn = rev
        errors = self.state.errors
        self.set_class(bool(errors), "-visible")
        if not errors:
            return
        text = Text()
        for i, e in enumerate(errors[-4:]):
            if i:
                text.append("\n")
            where = e.stage if e.stage and e.stage != "run" else "run"
            text.append(f"✖ {where}: ", style="bold #ff5555")
            text.append(e.message.strip().splitlines()[-1] if e.message.strip() else "error")
        text.append("\n(the log has the details; the app keeps running)", style="dim")
        self.update(text)

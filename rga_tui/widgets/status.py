"""The run screen's top line: the preset, what runs now (or how the run ended), the matrices'
split, the device and where the events come from (cut with … where the terminal is narrower)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from rga_tui.state import RunState, fmt_duration


def status_text(st: RunState, source: Any, split: str) -> Text:
    """The line for ``st`` read from ``source`` (a FileSource or a PipelineSource: ``waiting``,
    ``describe()``; a FileSource's ``speed`` 0 means it follows a run folder)."""
    parts = [Text("rga-tui", style="bold #bd93f9")]
    if st.name:
        parts.append(Text(st.name, style="bold"))
    if source.waiting and not st.n_events:
        state = Text(f"waiting for {getattr(source, 'path', 'events')}…", style="#ffb86c")
    elif st.cancel_requested and not st.finished:
        state = Text("cancelling…", style="bold #ff9f1a")
    elif st.stopped:
        state = Text("stopped (its process is gone)", style="bold #ff9f1a")
    elif st.finished:
        total = (st.last_time - st.first_time) if st.first_time is not None and st.last_time is not None else None
        if st.errors:
            state = Text("failed", style="bold #ff5555")
        elif any(s.status == "cancelled" for s in st.stages.values()):
            state = Text("cancelled", style="bold #ff9f1a")
        else:
            state = Text("finished", style="bold #50fa7b")
        if total is not None:
            state.append(f" in {fmt_duration(total)}", style="dim")
    elif st.started:
        # several stages at once under train.side_by_side: name them all
        running = " ‖ ".join(s.label for s in st.stages.values() if s.status == "running")
        state = Text("running" + (f" {running}" if running else f" · {st.phase}" if st.phase else ""),
                     style="bold #8be9fd")
        if getattr(source, "speed", None) == 0:  # a FileSource following a run folder
            state.append(" (following)", style="dim")
    else:
        state = Text("starting…", style="dim")
    parts.append(state)
    parts.append(Text(f"matrices: {'triggered' if split == 'test_poisoned_all' else 'clean'} (m)", style="dim"))
    if st.device:
        parts.append(Text(st.device, style="dim"))
    parts.append(Text(source.describe(), style="dim"))  # last: the longest and least needed
    return Text(" · ", style="dim").join(parts)  # app.tcss: one line, cut with …


class StatusLine(Static):
    """One line, fixed height: redrawn (without a layout pass) only when its text changes."""

    def __init__(self, state: RunState, source: Any, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self.state = state
        self.source = source
        self._text: Text | None = None

    def sync(self, split: str) -> None:
        out = status_text(self.state, self.source, split)
        if out != self._text:
            self._text = out
            self.update(out, layout=False)

"""The run screen's top line: the preset, what runs now (or how the run ended), the matrices'
split, the device and where the events come from (the split dropped where the device would not
fit, the rest cut with … where the terminal is narrower)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from rga_tui.state import RunState, fmt_duration


def status_text(st: RunState, source: Any, split: str, width: int | None = None) -> Text:
    """The line for ``st`` read from ``source`` (a FileSource or a PipelineSource: ``waiting``,
    ``describe()``; a FileSource's ``speed`` 0 means it follows a run folder). Given the line's
    ``width``: where the device would not fit, which matrices are shown goes (the matrix panel's
    title and the footer say it too); where the events come from is last, cut with … where the
    line is too long (app.tcss)."""
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
    matrices = Text(f"matrices: {'triggered' if split == 'test_poisoned_all' else 'clean'} (m)", style="dim")
    parts.append(matrices)
    if st.device:
        parts.append(Text(st.device, style="dim"))
    origin = Text(source.describe(), style="dim")
    parts.append(origin)  # last: the longest and least needed
    sep = Text(" · ", style="dim")
    if width is not None and sep.join(parts[:-1]).cell_len > width:  # the device would be cut
        parts = [p for p in parts if p is not matrices]
    return sep.join(parts)  # app.tcss: one line, cut with … (in the origin, where it is enough)


class StatusLine(Static):
    """One line, fixed height: redrawn (without a layout pass) only when its text changes."""

    def __init__(self, state: RunState, source: Any, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self.state = state
        self.source = source
        self._text: Text | None = None
        self._split = "test_poisoned_all"

    def sync(self, split: str) -> None:
        self._split = split
        width = self.content_region.width if self.size.width else None  # None before the first layout
        out = status_text(self.state, self.source, split, width)
        if out != self._text:
            self._text = out
            self.update(out, layout=False)

    def on_resize(self, _event: Any) -> None:
        """The parts that fit depend on the width: the first layout and every resize re-make it."""
        self.sync(self._split)

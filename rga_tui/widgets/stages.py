"""The stage strip: poison → retrain → one box per method, each with a bar, elapsed, ETA, state.

Between two stages that ran at once (``train.side_by_side``: the later one started before the
earlier one finished) the strip draws ``‖`` instead of ``→``."""

from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual.widget import Widget

from rga_tui.state import RunState, StageState, fmt_duration

STATE_LOOK = {
    "pending": ("○", "dim"),
    "running": ("▶", "bold #8be9fd"),
    "done": ("✔", "bold #50fa7b"),
    "failed": ("✖", "bold #ff5555"),
    "cancelled": ("■", "bold #ff9f1a"),
}
ARROW = " → "
TOGETHER = " ‖ "  # the same width as ARROW


def at_once(a: StageState, b: StageState) -> bool:
    """Whether ``b`` started while ``a`` was still running (event times)."""
    if a.started is None or b.started is None:
        return False
    if a.finished is None:
        return a.status == "running"
    return b.started < a.finished


def separators(stages: list[StageState], arrow: str) -> list[str]:
    """What goes between stage i and i + 1: ``arrow``, or ``TOGETHER`` when they ran at once
    (only where the strip has room for arrows; ``arrow`` is then ``ARROW``)."""
    return [TOGETHER if arrow == ARROW and at_once(a, b) else arrow for a, b in zip(stages, stages[1:])]


def _bar(progress: float, width: int, status: str) -> Text:
    width = max(1, width)
    filled = int(round(progress * width))
    colour = {"done": "#50fa7b", "failed": "#ff5555", "cancelled": "#ff9f1a"}.get(status, "#8be9fd")
    t = Text("━" * filled, style=colour)
    t.append("━" * (width - filled), style="#44475a")
    return t


def stage_cell(st: StageState, width: int, now: float | None) -> list[Text]:
    icon, style = STATE_LOOK.get(st.status, ("?", ""))
    head = Text(f"{icon} ", style=style)
    head.append(st.label, style="bold")
    if len(head) + 1 + len(st.status) <= width:
        head.append(f" {st.status}", style="dim" if st.status == "pending" else style)
    head.truncate(width, pad=True)

    pct = f" {int(st.progress * 100):3d}%"
    bar = _bar(st.progress, width - len(pct), st.status)
    bar.append(pct, style="dim" if st.status == "pending" else "")
    bar.truncate(width, pad=True)

    elapsed = st.elapsed(now)
    if st.status == "running":
        eta = st.eta(now)
        tail = f"{fmt_duration(elapsed)} · ETA {fmt_duration(eta)}"
        if len(tail) + 9 <= width and st.total_steps:
            tail = f"{st.step}/{st.total_steps} · " + tail
    elif st.status in ("done", "failed", "cancelled"):
        tail = fmt_duration(elapsed) if elapsed is not None else ""
        if st.status == "done" and st.total_steps == 0:
            tail = (tail + " · cached").strip(" ·")
    else:
        tail = ""
    foot = Text(tail, style="dim")
    foot.truncate(width, pad=True)
    return [head, bar, foot]


class StageStrip(Widget):
    DEFAULT_CSS = """
    StageStrip {
        height: 3;
        width: 1fr;
        padding: 0 1;
    }
    """

    def __init__(self, state: RunState, now: Callable[[], float | None], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = state
        self.now = now

    def render(self) -> Text:
        stages = list(self.state.stages.values())
        width = max(10, self.content_size.width or self.size.width)
        if not stages:
            return Text("waiting for the run to start…", style="dim")
        n = len(stages)
        arrow = ARROW if width >= n * 14 + (n - 1) * len(ARROW) else " "
        cell_w = max(6, (width - (n - 1) * len(arrow)) // n)
        now = self.now()
        cells = [stage_cell(st, cell_w, now) for st in stages]
        seps = separators(stages, arrow)
        out = Text()
        for line in range(3):
            if line:
                out.append("\n")
            for i, c in enumerate(cells):
                if i:
                    out.append(seps[i - 1] if line == 0 else " " * len(arrow), style="dim")
                out.append_text(c[line])
        return out

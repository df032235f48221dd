"""Confusion matrices side by side (Retrain, Poisoned, each method), heat-coloured, with verdicts.

One widget draws all of them (a grid computed from its width), so the layout stays compact from
80 columns up; rows are actual classes, columns predicted classes, and the background of a cell
grows with its share of the row: green on the diagonal (correct), red off it (flipped).
"""

from __future__ import annotations

import math

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from rga_tui.state import RunState, StageState, Verdict

SPLIT_TITLES = {
    "test_poisoned_all": "triggered test set",
    "test_clean": "clean test set",
}
VERDICT_STYLE = {  # kind -> (icon, style); the icons keep the verdicts readable without colour
    "remains": ("✖", "bold #ff5555"),
    "shifted": ("⚠", "bold #ff9f1a"),
    "partly": ("◐", "bold #f1fa8c"),
    "collapsed": ("⊘", "bold #bd93f9"),
    "removed": ("✔", "bold #50fa7b"),
    "none": ("✔", "#50fa7b"),  # "no shift" of a summary written before the graded verdict
}
BASE_BG = (38, 38, 46)
DIAG_RGB = (34, 160, 92)
OFF_RGB = (214, 52, 52)
GAP = 2


def _blend(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> str:
    t = max(0.0, min(1.0, t))
    r, g, bl = (round(x + (y - x) * t) for x, y in zip(a, b))
    return f"#{r:02x}{g:02x}{bl:02x}"


def heat_style(share: float, diagonal: bool) -> Style:
    """Background intensity by the cell's share of its row."""
    bg = _blend(BASE_BG, DIAG_RGB if diagonal else OFF_RGB, share ** 0.8 if share > 0 else 0.0)
    fg = "#ffffff" if share >= 0.35 else "#c8c8c8"
    return Style(color=fg, bgcolor=bg, bold=share >= 0.35)


def _shorter(v: Verdict) -> list[str]:
    """Shorter wordings of a verdict, longest first."""
    t = v.text
    if v.kind == "shifted":
        return [t.replace("trigger shifted", "shifted")]
    if v.kind == "partly":
        asr = t[t.find("(") + 1: t.rfind(")")] if "(" in t else ""
        return [t.replace("backdoor partly", "partly"), f"partly: {asr}" if asr else "partly remains"]
    if v.kind == "collapsed" and t.startswith("predicts ") and t.endswith(" for everything"):
        name = t[len("predicts "): -len(" for everything")]
        return [f"predicts {name} for all", f"all → {name}"]
    return []


def short_verdict(v: Verdict, compact: bool, width: int | None = None) -> str:
    """The verdict's text as it fits in a matrix footer: the full text when it fits in `width`
    (icon and space included), else the first shorter wording that does (a compact layout
    always takes a shorter wording when there is one)."""
    options = [v.text] + _shorter(v)
    if compact and len(options) > 1:
        options = options[1:]
    if width is None:
        return options[-1] if compact else options[0]
    return next((o for o in options if len(o) + 2 <= width), options[-1])


class MatrixLayout:
    """Widths for one rendering: class-name width, cell width, matrices per row."""

    def __init__(self, labels: list[str], max_count: int, n: int, width: int) -> None:
        self.labels = labels
        digits = max(3, len(str(max_count)))
        full = max([len(x) for x in labels] + [3])
        best = None
        for name_w in sorted({full, min(full, 8), min(full, 3)}, reverse=True):
            col_w = max(digits, name_w)
            table_w = name_w + len(labels) * (col_w + 2) + 1
            compact = name_w < full
            longest = max([len(x) for x in labels] + [1])
            cell_w = max(table_w, (12 if compact else 20) + longest)
            cols = max(1, min(n, (width + GAP) // (cell_w + GAP))) if n else 1
            rows = math.ceil(n / cols) if n else 1
            key = (rows, -name_w)
            if best is None or key < best[0]:
                best = (key, name_w, col_w, cell_w, cols, compact)
        _, self.name_w, self.col_w, self.cell_w, self.cols, self.compact = best
        self.cell_w = min(self.cell_w, max(width, 1))


def _fit(text: str, w: int, align: str = "left", ellipsis: bool = True) -> str:
    if len(text) > w and not ellipsis:
        return text[:w]
    if len(text) > w:
        return text[: max(0, w - 1)] + "…" if w > 1 else text[:w]
    return text.rjust(w) if align == "right" else text.ljust(w)


def matrix_lines(st: StageState, state: RunState, split: str, lay: MatrixLayout) -> list[Text]:
    """The lines of one matrix block, each exactly ``lay.cell_w`` cells wide."""
    w = lay.cell_w
    labels = lay.labels
    n = len(labels)
    cm = st.matrices.get(split)
    lines: list[Text] = []

    title = Text(_fit(st.label, min(w, 10)).rstrip(), style="bold")
    step = st.eval_step.get(split)
    if cm is None:
        hint = {"pending": "pending", "running": "running…", "failed": "failed",
                "cancelled": "cancelled"}.get(st.status, "")
    elif st.status == "running" and step is not None and step >= 0:
        hint = f"step {step}/{st.total_steps}" if st.total_steps else f"step {step}"
        if st.eval_sample.get(split):
            hint += " · sample"
    else:
        hint = "" if st.status == "done" else st.status
    if split == "test_clean":
        hint = (hint + " · clean").strip(" ·")
    elif cm is not None and split == "test_poisoned_all" and not hint:
        acc = st.eval_metrics.get(split, {}).get("pacc", st.metrics.get("pacc"))
        hint = f"PACC {100 * acc:.1f}%" if isinstance(acc, (int, float)) else ""
    title.append(("  " + hint) if hint else "", style="dim")
    title.truncate(w, pad=True)
    lines.append(title)

    header = Text(_fit("act╲pred" if lay.name_w >= 8 else "", lay.name_w), style="dim")
    for name in labels:
        header.append(" " + _fit(name[: lay.name_w], lay.col_w, "right") + " ", style="dim italic")
    header.truncate(w, pad=True)
    lines.append(header)

    for r in range(n):
        row = Text(_fit(labels[r], lay.name_w, ellipsis=False), style="dim italic")
        if cm is None or r >= len(cm):
            row.append(" " * ((lay.col_w + 2) * n), style="dim")
        else:
            total = sum(cm[r]) or 1
            for c in range(n):
                v = cm[r][c] if c < len(cm[r]) else 0
                row.append(" " + str(v).rjust(lay.col_w) + " ", style=heat_style(v / total, r == c))
        row.truncate(w, pad=True)
        lines.append(row)

    if split == "test_clean":
        cacc = None
        if cm is not None:
            total = sum(sum(x) for x in cm)
            cacc = sum(cm[i][i] for i in range(min(len(cm), n))) / total if total else None
        foot = Text(f"  CACC {100 * cacc:.1f}%" if cacc is not None else "", style="dim")
    else:
        v = state.verdict(st.name) if cm is not None else None
        if v is None:
            foot = Text("  …" if cm is None and st.status == "running" else "", style="dim")
        else:
            icon, style = VERDICT_STYLE.get(v.kind, ("•", "bold"))
            foot = Text(f"{icon} {short_verdict(v, lay.compact, w)}", style=style)
    foot.truncate(w, pad=True)
    lines.append(foot)
    return lines


class MatrixBoard(Widget):
    """All the matrices of a run, on ``test_poisoned_all`` (or ``test_clean`` after ``m``)."""

    DEFAULT_CSS = """
    MatrixBoard {
        height: auto;
        width: 1fr;
        padding: 0 1;
    }
    """

    def __init__(self, state: RunState, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.state = state
        self.split = "test_poisoned_all"

    def set_split(self, split: str) -> None:
        self.split = split
        title = f"Confusion matrices · {SPLIT_TITLES.get(split, split)} · rows actual × columns predicted"
        self.border_title = title
        if self.parent is not None and getattr(self.parent, "id", None) == "matrix-box":
            self.parent.border_title = title  # type: ignore[union-attr]
        self.refresh(layout=True)

    def on_mount(self) -> None:
        self.set_split(self.split)

    def _layout(self, width: int) -> MatrixLayout:
        labels = self.state.label_names or ["0", "1"]
        counts = [v for st in self.state.stages.values() for cm in st.matrices.values() for row in cm for v in row]
        return MatrixLayout(labels, max(counts or [0]), len(self.state.board_stages), width)

    def render_text(self, width: int) -> Text:
        stages = self.state.board_stages
        if not stages:
            return Text("waiting for the run to start…", style="dim")
        lay = self._layout(width)
        blocks = [matrix_lines(st, self.state, self.split, lay) for st in stages]
        out = Text()
        for i in range(0, len(blocks), lay.cols):
            row = blocks[i: i + lay.cols]
            if i:
                out.append("\n\n")
            for j in range(len(row[0])):
                if j:
                    out.append("\n")
                for k, block in enumerate(row):
                    if k:
                        out.append(" " * GAP)
                    out.append_text(block[j])
        return out

    def render(self) -> Text:
        return self.render_text(max(1, self.content_size.width or self.size.width))

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self.render_text(max(1, width)).plain.split("\n"))

    def verdict_texts(self) -> dict[str, str]:
        """{stage label: verdict text} of what is shown now (tests, screen readers)."""
        out = {}
        for st in self.state.board_stages:
            v = self.state.verdict(st.name)
            if v is not None and st.matrices.get("test_poisoned_all") is not None:
                out[st.label] = v.text
        return out

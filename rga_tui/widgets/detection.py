"""CUBE's detection on the run screen (``unlearn.forget_set = "cube"``): its scores and a 2-D
scatter of the training rows -- clean, clean but flagged, poisoned but missed, poisoned and
flagged -- read from the run folder's ``detection.csv`` (``rga_engine/detection_files.py``).

The scores come from the :class:`RunState` (the detect stage's event or ``summary.json``); the
points from the file, read once per detection and drawn with plotext, at most ``MAX_POINTS``
of them (an even stride through the rows).
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from rga_engine.detection_files import CSV_NAME, KIND_LABELS, KINDS, read_points
from rga_engine.report import detection_scores
from rga_tui.state import DETECT, RunState

MAX_POINTS = 3000
NO_COORDINATES = "no 2-D coordinates (umap-learn missing, or an older cached detection)"
# colour and marker per kind: distinct markers keep the kinds apart without colour (NO_COLOR)
STYLE = {"clean": ("gray+", "braille"), "false_alarm": ("orange", "o"), "missed": ("red", "x"),
         "caught": ("green", "dot")}


def sample(points: list, limit: int = MAX_POINTS) -> list:
    """At most ``limit`` points: an even stride through them (they are in row order)."""
    if len(points) <= limit:
        return points
    step = -(-len(points) // limit)
    return points[::step]


def scores_text(d: dict) -> Text:
    """``precision 95.24  recall 100.00  F1 97.56`` over ``flagged 21 rows · 20 truly poisoned``."""
    t = Text()
    for label, v in detection_scores(d):
        t.append(f"{label} ", style="dim")
        t.append(f"{v}  ", style="bold")
    t.rstrip()
    flagged, poisoned = d.get("flagged"), d.get("poisoned")
    if isinstance(flagged, int) and isinstance(poisoned, int):
        t.append(f"\nflagged {flagged} rows · {poisoned} truly poisoned", style="")
    return t


class DetectionScatter(PlotextPlot):
    """The 2-D UMAP scatter; redrawn when its points or its size change."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.points: list[tuple[float, float, str]] = []
        self.counts: dict[str, int] = {}
        self.note = ""
        self._drawn: tuple | None = None

    def set_points(self, points: list[tuple[float, float, str]], counts: dict[str, int], note: str = "") -> None:
        """Draw ``points`` (already sampled down); the legend counts come from ``counts``."""
        self.points, self.counts, self.note = points, counts, note
        self._drawn = None
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        key = (self.size.width, self.size.height)  # set_points() forgets the last key: new points redraw
        if key == self._drawn or self.size.width < 4 or self.size.height < 3:
            return
        self._drawn = key
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if not self.points:
            plt.title(self.note or "no 2-D picture")
        for kind, _, _ in KINDS:  # the rare kinds last, on top
            xs = [p[0] for p in self.points if p[2] == kind]
            if xs:
                ys = [p[1] for p in self.points if p[2] == kind]
                colour, marker = STYLE[kind]
                plt.scatter(xs, ys, color=colour, marker=marker,
                            label=f"{KIND_LABELS[kind]} {self.counts.get(kind, len(xs))}")
        plt.xticks([])
        plt.yticks([])
        self.refresh()


class DetectionPanel(Vertical):
    """Precision / recall / F1 / flagged / poisoned above the scatter."""

    def __init__(self, state: RunState, run_dir: Path | None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = state
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._drawn: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="detection-scores")
        yield DetectionScatter(id="detection-plot")

    def on_mount(self) -> None:
        self.border_title = "CUBE detection · 2-D UMAP"
        self.sync(force=True)

    def sync(self, force: bool = False) -> None:
        st = self.state
        stage = st.stages.get(DETECT)
        key = (st.rev["detection"], stage.status if stage is not None else None)
        if not force and key == self._drawn:
            return
        self._drawn = key
        d = st.detection
        if d is not None:
            scores = scores_text(d)
        elif stage is not None and stage.status in ("failed", "cancelled"):
            scores = Text(f"CUBE: the detect stage {stage.status}", style="bold #ff5555")
        else:
            scores = Text("CUBE: the scores and the scatter appear when the detect stage finishes", style="dim")
        self.query_one("#detection-scores", Static).update(scores)
        plot = self.query_one(DetectionScatter)
        if d is None:
            plot.set_points([], {}, "waiting for the detect stage")
            return
        if self.run_dir is None:
            plot.set_points([], {}, "no run folder: no scatter")
            return
        try:
            points, counts = read_points(self.run_dir / CSV_NAME)
        except (OSError, ValueError) as e:  # a missing, unreadable or garbled file: no scatter, the scores stay
            plot.set_points([], {}, f"cannot read {CSV_NAME}: {getattr(e, 'strerror', None) or e}")
            return
        drawn, rows = sample(points), sum(counts.values())
        of = f" of {rows}" if len(drawn) < rows else ""
        self.border_title = f"CUBE detection · 2-D UMAP · {len(drawn)}{of} rows"
        plot.set_points(drawn, counts, "" if drawn else NO_COORDINATES)

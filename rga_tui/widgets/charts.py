"""Loss curves (forget / retain per method) and RGA's λ = exp(−KL)^α, drawn with plotext."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual_plotext import PlotextPlot

from rga_tui.state import RunState

METHOD_COLOURS = {"ga": "red", "npo": "orange", "rga": "green", "graddiff": "magenta"}
OTHER_COLOURS = ["cyan", "blue", "magenta", "yellow"]
TRAIN_COLOURS = {"poison": "red", "retrain": "cyan"}


def _points(width: int) -> int:
    # plotext's braille marker packs 2 points per column; the axes take about 10 columns
    return max(8, 2 * (width - 10))


class _StateChart(PlotextPlot):
    """A plot drawn from a RunState; redrawn only when its series or its size changed, and
    while the series grow at most every ``MIN_INTERVAL`` seconds: plotting is pure Python, and
    on a small machine the UI thread's CPU time is taken from the training it shows."""

    MIN_INTERVAL = 2.0

    def __init__(self, state: RunState, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = state
        self._drawn: tuple | None = None
        self._at = float("-inf")
        self._figure: Callable[[Any], None] | None = None

    def on_resize(self) -> None:
        self.redraw()

    def show(self, figure: Callable[[Any], None]) -> None:
        """Draw ``figure(plt)`` from the next render on. Every render builds the figure anew from
        it: plotext's build replaces a log-scale series by its log, so a second build of the same
        figure (a render at a new size, before ``on_resize`` has redrawn) took the log of the log
        and raised on a value under 1."""
        self._figure = figure
        self.refresh()

    def render(self):
        if self._figure is not None:
            self.plt.clear_data()
            self.plt.clear_figure()
            self._figure(self.plt)
        return super().render()

    def _stale(self, force: bool) -> bool:
        key = (self.state.rev["series"], self.size.width, self.size.height)
        if not force and key == self._drawn:
            return False
        now = time.monotonic()
        same_size = self._drawn is not None and key[1:] == self._drawn[1:]
        if not force and same_size and now - self._at < self.MIN_INTERVAL and not self.state.finished:
            return False  # new points, drawn at a later tick
        self._drawn, self._at = key, now
        return True

    def redraw(self, force: bool = False) -> None:
        raise NotImplementedError


class LossChart(_StateChart):
    """Forget loss (solid) and retain loss (dots) of each unlearning method over its steps, on a
    log-scale y axis: GA's forget loss runs to ~25 while NPO's and RGA's stay near 1, and on a
    linear axis those two would lie flat along the bottom. (A series with a value ≤ 0 cannot go
    on a log axis: then the axis is linear and its label says so.)

    Before unlearning starts it shows the training loss of the poison and Retrain stages.
    """

    def on_mount(self) -> None:
        self.border_title = "Loss (log) · forget ━ retain •"
        self.redraw()

    def redraw(self, force: bool = False) -> None:
        if not self._stale(force):
            return
        n = _points(self.size.width)
        unlearn = [st for st in self.state.unlearn_stages if len(st.series["forget_loss"]) or len(st.series["loss"])]
        lines, dots = [], []  # (xs, ys, colour, label)
        if unlearn:
            for i, st in enumerate(unlearn):
                colour = METHOD_COLOURS.get(st.method or "", OTHER_COLOURS[i % len(OTHER_COLOURS)])
                fl = st.series["forget_loss"] if len(st.series["forget_loss"]) else st.series["loss"]
                xs, ys = fl.downsampled(n)
                if xs:
                    lines.append((xs, ys, colour, f"{st.label} forget"))
                rl = st.series["retain_loss"]
                if len(rl):
                    xs, ys = rl.downsampled(max(4, n // 3))
                    dots.append((xs, ys, colour, None))
            log = all(y > 0 for _, ys, _, _ in lines + dots for y in ys)
            self.border_title = "Loss (log) · forget ━ retain •" if log else "Loss · forget ━ retain •"
            ylabel = "loss (log)" if log else "loss"
        else:
            log = False
            self.border_title = "Loss · training (poison, Retrain)"
            for name in ("poison", "retrain"):
                st = self.state.stages.get(name)
                if st is not None and len(st.series["loss"]):
                    xs, ys = st.series["loss"].downsampled(n)
                    lines.append((xs, ys, TRAIN_COLOURS[name], st.label))
            ylabel = "training loss"

        def figure(plt) -> None:
            for xs, ys, colour, label in lines:
                plt.plot(xs, ys, color=colour, marker="braille", label=label)
            for xs, ys, colour, _ in dots:
                plt.scatter(xs, ys, color=colour, marker="dot")
            if log:
                plt.yscale("log")
            plt.ylabel(ylabel)
            plt.xlabel("step")

        self.show(figure)


def lr_line(series, n: int) -> tuple[list[float], list[float], str] | None:
    """An lr schedule as a line on λ's 0..1 axis: each step's lr over the stage's peak lr, and a
    label naming the peak; None for a constant lr (nothing to show) or no lr at all."""
    if not len(series):
        return None
    peak, low = max(series.ys), min(series.ys)
    if peak <= 0 or low >= peak * (1 - 1e-6):
        return None
    xs, ys = series.downsampled(n)
    return xs, [y / peak for y in ys], f"lr ÷ {peak:.0e}"


class LambdaChart(_StateChart):
    """RGA's λ (left axis, 0..1) and the KL to the poisoned model (right axis); with an lr
    schedule (``unlearn.lr_schedule``) also the lr over its peak (left axis, dots): when λ has
    fallen to ~0, what still moves the model is the retain loss and the L2 pull, at this lr."""

    def on_mount(self) -> None:
        self.border_title = "RGA λ = exp(−KL)^α · KL right axis"
        self.redraw()

    def redraw(self, force: bool = False) -> None:
        if not self._stale(force):
            return
        n = _points(self.size.width)
        stages = [st for st in self.state.unlearn_stages if len(st.series["lambda"])]
        title = None
        if not stages:
            has_rga = any(st.method == "rga" for st in self.state.unlearn_stages)
            title = "λ appears when RGA runs" if has_rga else "no RGA in this run"
        plots = []  # (xs, ys, colour, marker, label, yside)
        for st in stages:
            xs, ys = st.series["lambda"].downsampled(n)
            last = ys[-1] if ys else None
            plots.append((xs, ys, "green", "braille", f"{st.label} λ" + (f" = {last:.2f}" if last is not None else ""), "left"))
            lr = lr_line(st.series["lr"], n)
            if lr is not None:
                plots.append((lr[0], lr[1], "gray+", "dot", lr[2], "left"))
            kl = st.series["kl"]
            if len(kl):
                xs, ys = kl.downsampled(n)
                plots.append((xs, ys, "cyan", "braille", "KL (right)", "right"))

        def figure(plt) -> None:
            if title is not None:
                plt.title(title)
                plt.ylim(0, 1)
            plt.xlabel("step")
            plt.ylabel("λ")
            for xs, ys, colour, marker, label, side in plots:
                plt.plot(xs, ys, color=colour, marker=marker, label=label, yside=side)
            if stages:
                plt.ylim(0, 1.05)

        self.show(figure)

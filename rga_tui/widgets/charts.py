"""Loss curves (forget / retain per method) and RGA's λ = exp(−KL)^α, drawn with plotext."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from textual_plotext import PlotextPlot

from rga_tui.state import RunState

METHOD_COLOURS = {"ga": "red", "npo": "orange", "rga": "green", "graddiff": "magenta"}
OTHER_COLOURS = ["cyan", "blue", "magenta", "yellow"]
TRAIN_COLOURS = {"poison": "red", "retrain": "cyan"}


def step_ticks(xs: list[float], k: int = 5) -> list[int]:
    """Whole steps at a round spacing (1, 2 or 5 × 10ⁿ) across ``xs`` (not empty), about ``k`` of
    them: plotext's own ticks split the range evenly and label steps as 17.5 or 31.5."""
    lo, hi = min(xs), max(xs)
    if hi - lo < 1:
        return [int(round(lo))]
    raw = (hi - lo) / k
    scale = 10 ** math.floor(math.log10(raw))
    spacing = next(m * scale for m in (1, 2, 5, 10) if m * scale >= raw)
    spacing = max(1, int(spacing))
    first = math.ceil(lo / spacing) * spacing
    ticks = list(range(first, int(hi) + 1, spacing))
    if first - lo > spacing / 2:  # the first step too (step 1 before 20, 40, …)
        ticks.insert(0, int(math.ceil(lo)))
    return ticks


def log_ticks(ys: list[float]) -> tuple[list[float], list[str]]:
    """Ticks for a log axis over positive ``ys``: the powers of ten inside the range, with 2 and 5
    between them when the range spans less than two decades (plotext's own read 13.5801, 0.0678)."""
    lo, hi = min(ys), max(ys)
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    marks = (1,) if hi >= 100 * lo else (1, 2, 5)
    every = max(1, math.ceil((last - first) / 6))  # at most ~6 labels: every 2nd, 3rd … decade
    ticks = [m * 10.0**e for e in range(first, last + 1) for m in marks
             if lo <= m * 10.0**e <= hi and (e - first) % every == 0]
    if len(ticks) < 2:  # a range inside one 1-2-5 step: its ends
        ticks = sorted({lo, hi})
    return ticks, [f"{v:.3g}" for v in ticks]


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
        # the ticks once per redraw, not in ``figure`` (that runs at every render)
        all_xs = [x for xs, _, _, _ in lines + dots for x in xs]
        xticks = step_ticks(all_xs) if all_xs else None
        yticks = log_ticks([y for _, ys, _, _ in lines + dots for y in ys]) if log and all_xs else None

        def figure(plt) -> None:
            for xs, ys, colour, label in lines:
                plt.plot(xs, ys, color=colour, marker="braille", label=label)
            for xs, ys, colour, _ in dots:
                plt.scatter(xs, ys, color=colour, marker="dot")
            if log:
                plt.yscale("log")
                if yticks:
                    plt.yticks(*yticks)
            if xticks:
                plt.xticks(xticks)
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
    return xs, [y / peak for y in ys], f"lr ÷ {peak:.1e}".replace(".0e", "e")  # 1.5e-04, 3e-04


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
        xticks = step_ticks([x for xs, *_ in plots for x in xs]) if plots else None

        def figure(plt) -> None:
            if title is not None:
                plt.title(title)
                plt.ylim(0, 1)
            plt.xlabel("step")
            plt.ylabel("λ")
            for xs, ys, colour, marker, label, side in plots:
                plt.plot(xs, ys, color=colour, marker=marker, label=label, yside=side)
            if xticks:
                plt.xticks(xticks)
            if stages:
                plt.ylim(0, 1.05)

        self.show(figure)

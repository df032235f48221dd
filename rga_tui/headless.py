"""``rga-tui run``: one preset, no Textual -- rich progress bars, eval lines, the results table.

:func:`run_headless` loads the preset, picks the run folder, calls
``rga_engine.pipeline.run(cfg, sink, should_stop, run_dir)`` and turns the events into a progress
bar per stage (steps done/total, loss, λ, samples/s, elapsed, ETA), prints evaluations as they
arrive and, at the end, the paper-style table with the trigger-shift verdicts and the run folder.

Ctrl-C (or SIGTERM): the first one asks the engine to stop after the current step
(``should_stop``), which then writes what exists; the second raises :class:`KeyboardInterrupt`.
Either way the exit code is 130.  SIGHUP (the SSH connection or the terminal went away): the run
goes on, stops writing to the dead terminal and keeps writing its run folder.
A failed stage gives exit 1 with a one-line reason; bad input (``ConfigError``, ``DataError``,
``AttackError``, :class:`RunDirError`, ...) propagates to the command line, which prints one line
and exits 2.

The run folder (``--out``) must be new or empty, or hold a run of this preset that did not finish
(``--resume`` runs it again there; stages whose weights are cached load instead of training).
Files that are not a run's are never overwritten, and a run that fails before its first stage
leaves nothing behind.

Several processes (``accelerate launch --num_processes N -m rga_tui run ...``, ``torchrun``): the
main process (global rank 0) does all of the above; the others run the same pipeline without a
run folder, without output and without a picture (:func:`_run_other_rank`).
"""

from __future__ import annotations

import errno
import io
import importlib
import json
import math
import os
import signal
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.measure import Measurement
from rich.table import Table

from rga_engine import report
from rga_tui.safe_text import printable

__all__ = ["HeadlessSink", "RunDirError", "StopFlag", "run_headless", "run_seeds", "results_table"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

# metrics shown as percentages when an eval / stage_finished event carries them, in the run
# screen's and the results table's order (the paper's, with ASR)
_PCT_KEYS = {
    "cacc": "CACC",
    "acc": "ACC",
    "accuracy": "ACC",
    "asr": "ASR",
    "paper_lfr": "LFR",
    "pacc": "PACC",
    "delta_pacc": "ΔPACC",
}


class RunDirError(ValueError):
    """``--out`` cannot be used: a file, a foreign or finished folder, not writable (one line)."""


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _short(x: float) -> str:
    return f"{x:.4g}"


def format_metrics(metrics: Any, label_names: list[str] | None = None) -> str:
    """``CACC 91.18  PACC 50.08  ASR 0.00 · trigger shifted → negative`` from a metrics dict."""
    if not isinstance(metrics, dict):
        return ""
    parts = []
    for key, label in _PCT_KEYS.items():
        if key in metrics and label not in {p.split(" ")[0] for p in parts}:
            v = _num(metrics.get(key))
            if v is not None:
                parts.append(f"{label} {100 * v:.2f}")
    if "loss" in metrics and _num(metrics.get("loss")) is not None:
        parts.append(f"loss {_short(_num(metrics['loss']))}")
    text = "  ".join(parts)
    shift = metrics.get("trigger_shift")
    if isinstance(shift, dict):
        try:
            from rga_engine.metrics import verdict_text

            asr = _num(metrics.get("asr"))
            verdict = verdict_text(shift, label_names or None, **({"asr": asr} if asr is not None else {}))
        except Exception:  # noqa: BLE001
            verdict = str(shift.get("verdict") or "")
        if verdict:
            text = f"{text} · {verdict}" if text else verdict
    return text


def wrap_metrics(head: str, text: str, width: int, indent: int = 4) -> list[str]:
    """``head`` (markup) then ``text`` (plain: metrics two spaces apart, then `` · `` and the
    verdict) as markup lines of at most ``width`` cells, broken between metrics ("ΔPACC 0.33"
    stays whole) and before the verdict (between its words only where it is longer than a line);
    a piece wider than a line gets a line of its own."""
    from rich.cells import cell_len
    from rich.text import Text

    tokens: list[tuple[str, str]] = []  # (separator before it, token)
    for atom in text.split("  "):
        pair, dot, verdict = atom.partition(" · ")
        if pair:
            tokens.append(("  ", pair))
        if dot and cell_len("· " + verdict) <= width - indent:  # the verdict whole, on a line of its own if need be
            tokens.append((" ", "· " + verdict))
        elif dot:
            words: list[str] = []
            for w in ("·", *verdict.split(" ")):  # "(ASR 30.9 %)" and "→ negative" stay whole
                if words and (w == "%" or words[-1] == "→" or (words[-1].startswith("(") and ")" not in words[-1])):
                    words[-1] += " " + w
                elif w:
                    words.append(w)
            tokens += [(" ", w) for w in words]
    lines, line, used = [], head, cell_len(Text.from_markup(head).plain)
    for sep, tok in tokens:
        n = cell_len(tok)
        if used + len(sep) + n > width and line.strip():  # a new line, unless this one is empty
            lines.append(line)
            line, used = " " * indent + escape(tok), indent + n
        else:
            line, used = line + sep + escape(tok), used + len(sep) + n
    lines.append(line)
    return lines


def detection_text(d: dict) -> str:
    """``flagged 61 · 60 truly poisoned  precision 96.72  recall 98.33  F1 97.52`` (CUBE's detect stage)."""
    parts = []
    if _num(d.get("flagged")) is not None:
        parts.append(f"flagged {int(d['flagged'])}" + (f" · {int(d['poisoned'])} truly poisoned"
                                                        if _num(d.get("poisoned")) is not None else ""))
    parts += [f"{label} {v}" for label, v in report.detection_scores(d)]
    return "  ".join(parts)


class StopFlag:
    """The SIGINT handler: the first Ctrl-C asks for a stop, the second raises KeyboardInterrupt."""

    def __init__(self, notify: Callable[[str], None] | None = None) -> None:
        self.requested = False
        self.count = 0
        self._notify = notify

    def __call__(self, signum: int = signal.SIGINT, frame: Any = None) -> None:
        self.count += 1
        if self.count == 1:
            self.requested = True
            if self._notify is not None:
                self._notify("stopping after this step… (Ctrl-C again to abort)")
        else:
            raise KeyboardInterrupt

    def should_stop(self) -> bool:
        return self.requested


def _clock_text(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def config_label_names(cfg: Any) -> list | None:
    """The class names a run's config gives: ``data.label_names``, else the values of
    ``data.label_map`` in order, once each; None when it gives neither."""
    cfg = cfg if isinstance(cfg, dict) else {}
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    names = data.get("label_names") or list(dict.fromkeys((data.get("label_map") or {}).values()))
    return list(names) if names else None


def run_started_line(e: dict, run_dir: str | None) -> str | None:
    """``run_started``'s line (markup): the device (with its autocast precision unless fp32) and
    the run folder; None when neither is known."""
    bits = [f"device {e['device']}"] if e.get("device") else []
    if bits and e.get("precision") not in (None, "fp32"):  # fp32 goes without saying
        bits[0] += f" ({e['precision']} autocast)"
    if run_dir:
        bits.append(f"run folder {run_dir}")
    return "[dim]" + escape(" · ".join(str(b) for b in bits)) + "[/]" if bits else None


def step_info(e: dict, stage: str, short: bool) -> list[str]:
    """A ``step`` event's loss, λ and samples/s as text (``"120/s"`` when ``short``)."""
    info = []
    loss = _num(e.get("loss"))
    if loss is not None:
        info.append(f"loss {_short(loss)}")
    elif "loss" in e and stage != "detect":  # NaN / inf arrive as null (strict JSON); detect has no loss
        info.append("loss nan")
    lam = _num(e.get("lambda"))
    if lam is not None:
        info.append(f"λ {lam:.3f}")
    sps = _num(e.get("samples_per_s"))
    if sps is not None:
        info.append(f"{sps:.0f}/s" if short else f"{sps:.0f} samples/s")
    return info


class StageBars:
    """The terminal's picture: a rich progress bar per stage (stage, bar, steps done/total, the
    step's info, elapsed, ETA). ``disable``: nothing is drawn (quiet, or not a terminal)."""

    def __init__(self, console: Console, disable: bool) -> None:
        # under ~100 columns (an 80-column terminal) a shorter bar and "120/s": the full row (~92
        # columns with λ) made rich squeeze its columns into "603/…" and "0:02:…"
        self.narrow = console.width < 100
        self.progress = Progress(
            TextColumn("[bold]{task.fields[stage]:<12}" if self.narrow else "[bold]{task.fields[stage]:<14}"),
            BarColumn(bar_width=8 if self.narrow else 16),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(compact=True),
            console=console,
            disable=disable,
        )
        self.tasks: dict[str, TaskID] = {}

    def task(self, stage: str, total: Any = None) -> TaskID:
        """The stage's bar, added (with ``total`` steps, if a positive number) when it has none."""
        if stage not in self.tasks:
            t = _num(total)
            self.tasks[stage] = self.progress.add_task(
                stage, total=(t if t and t > 0 else None), stage=stage, info=""
            )
        return self.tasks[stage]

    def start(self, stage: str, total: Any) -> None:
        """``stage_started``: the stage's bar, of ``total`` steps (a bar it had already is reset
        to that total)."""
        if stage in self.tasks:
            t = _num(total)
            self.progress.update(self.tasks[stage], total=(t if t and t > 0 else None))
        else:
            self.task(stage, total)

    def update(self, task: TaskID, step: float | None, info: str) -> None:
        """A step: the bar's info text and, when the event has one, its step count."""
        kwargs: dict[str, Any] = {"info": info}
        if step is not None:
            kwargs["completed"] = step
        self.progress.update(task, **kwargs)

    def finish(self, stage: str, complete: bool) -> None:
        """``stage_finished``: the bar stops; ``complete`` (not cancelled, not failed) fills it
        first (a bar without a total gets its step count, at least 1, as one)."""
        task = self.task(stage)
        t = next((t for t in self.progress.tasks if t.id == task), None)
        if t is not None and complete:
            done = max(t.completed, 1)
            self.progress.update(task, total=t.total if t.total is not None else done,
                                 completed=t.total if t.total is not None else done)
        self.progress.stop_task(task)

    def stop(self, stage: str) -> None:
        """A failed stage: its bar, if it has one, stops where it is."""
        if stage in self.tasks:
            self.progress.stop_task(self.tasks[stage])


class PlainProgress:
    """Progress as lines, for output that is not a terminal: a line when a stage starts, then one
    at most every ``log_every`` seconds of ``clock`` (step/total, %, the step's info, elapsed,
    ETA from the mean time per step so far)."""

    def __init__(self, log_every: float, clock: Callable[[], float]) -> None:
        self.log_every = max(0.0, float(log_every))
        self.clock = clock
        self._stage_clock: dict[str, tuple[float, float]] = {}  # stage -> (started, last line)
        self._totals: dict[str, float | None] = {}

    def started(self, stage: str, total_steps: Any) -> str:
        """``▶ stage started (N steps)`` (markup); the stage's clock starts now."""
        now = self.clock()
        self._stage_clock[stage] = (now, now)
        total = _num(total_steps)
        self._totals[stage] = total if total and total > 0 else None
        steps = f" ({int(total)} steps)" if self._totals[stage] else ""
        return f"▶ {escape(stage)} started{steps}"

    def line(self, stage: str, step: float | None, info: list[str]) -> str | None:
        """The stage's progress line (markup) at ``step``, or None when its last one is under
        ``log_every`` seconds old."""
        now = self.clock()
        started, last = self._stage_clock.setdefault(stage, (now, now))
        if now - last < self.log_every:
            return None
        self._stage_clock[stage] = (started, now)
        total = self._totals.get(stage)
        elapsed = now - started
        where = "?"
        eta = None
        if step is not None:
            where = f"{int(step)}/{int(total)} ({100 * step / total:.0f} %)" if total else f"step {int(step)}"
            if total and step > 0:
                eta = elapsed / step * max(total - step, 0)
        bits = [where] + [i for i in info if i] + [f"elapsed {_clock_text(elapsed)}", f"eta {_clock_text(eta)}"]
        return f"  {escape(stage)}  " + escape(" · ".join(bits))


class EvalBatch:
    """The engine evaluates three splits at a time (one ``eval`` event each): their metrics,
    merged while the events are of one (stage, step), make one printed line."""

    def __init__(self) -> None:
        self._pending: tuple[tuple[Any, Any], dict] | None = None
        self.sample_rows: int | None = None  # the clean rows a sampled mid-run evaluation counted

    def ends_batch(self, e: dict) -> bool:
        """``e`` is of another (stage, step) than the batch held (which is then complete)."""
        return self._pending is not None and self._pending[0] != (e.get("stage"), e.get("step"))

    def add(self, e: dict) -> None:
        if self._pending is None:
            self._pending, self.sample_rows = ((e.get("stage"), e.get("step")), {}), None
        if e.get("sample") is True and e.get("split") == "test_clean" and isinstance(e.get("rows"), int):
            self.sample_rows = e["rows"]
        metrics = e.get("metrics")
        if isinstance(metrics, dict):
            self._pending[1].update(metrics)

    def take(self) -> tuple[tuple[Any, Any], dict] | None:
        """The batch held, ``((stage, step), metrics)``, now no longer held; None if none."""
        batch, self._pending = self._pending, None
        return batch


class HeadlessSink:
    """Engine events -> rich progress bars and printed lines.

    On a terminal: a live progress bar per stage (:class:`StageBars`).  When the output is not a
    terminal (``> log.txt``, nohup, CI, a batch job) -- ``plain``, detected from the console
    unless given -- nothing is redrawn: a line when a stage starts and when it ends, and a
    progress line at most every ``log_every`` seconds of a stage (stage, step/total, %, loss, λ,
    samples/s, elapsed, ETA; :class:`PlainProgress`), the way training libraries log to files.
    An evaluation's splits are printed as one line (:class:`EvalBatch`)."""

    def __init__(self, console: Console, quiet: bool = False, *, plain: bool | None = None,
                 log_every: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.quiet = quiet
        self.plain = (not console.is_terminal) if plain is None else plain
        self.plain_progress = PlainProgress(log_every, clock)
        self.bars = StageBars(console, disable=quiet or self.plain)
        self.progress = self.bars.progress
        self.evals = EvalBatch()
        self.errors: dict[str, str] = {}
        self.summary: dict | None = None
        self.label_names: list[str] | None = None
        self.run_dir: str | None = None
        self.staged = False  # a stage has started (a failure after that keeps the run folder)

    # rich's Progress is a context manager; so is the sink
    def __enter__(self) -> "HeadlessSink":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._flush_eval()
        finally:
            self.progress.__exit__(*exc)

    def print(self, *args: Any, always: bool = False, **kw: Any) -> None:
        """Print above the progress bars. ``soft_wrap=self.plain``: a line of a log file stays one
        line (grep finds it whole); on a terminal rich wraps it between words, not the terminal
        in the middle of one."""
        if always or not self.quiet:  # engine messages quote presets and data: controls escaped
            args = tuple(printable(a, keep="\n") if isinstance(a, str) else a for a in args)
            try:
                self.progress.console.print(*args, **kw)
            except OSError:  # the terminal went away (EIO, a broken pipe): the run goes on
                detach_from_terminal()

    def print_metrics(self, head: str, text: str) -> None:
        """``head`` (markup) and a :func:`format_metrics` / :func:`detection_text` line. A log
        file gets one line; a terminal too narrow for it gets lines broken only between two
        metrics (or within the verdict), so a name never ends one line with its value on the next
        ("ΔPACC" / "0.33"); continuation lines are indented."""
        if self.plain or not text:
            self.print(f"{head}  {escape(text)}" if text else head, soft_wrap=self.plain)
            return
        self.print(*wrap_metrics(head, text, self.progress.console.width), sep="\n", soft_wrap=True)

    def emit(self, event: dict) -> None:
        try:
            if event.get("type") != "eval":
                self._flush_eval()
            handler = getattr(self, "_on_" + str(event.get("type")), None)
            if handler is not None:
                handler(event)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - displaying must never break a run
            self.print(f"[dim](display: {type(e).__name__}: {escape(str(e))})[/]")

    # ----------------------------------------------------------------------------- events
    def _on_run_started(self, e: dict) -> None:
        self.run_dir = e.get("run_dir") or self.run_dir
        names = config_label_names(e.get("config"))
        if names:
            self.label_names = names
        line = run_started_line(e, self.run_dir)
        if line:
            self.print(line)

    def _on_stage_started(self, e: dict) -> None:
        self.staged = True
        stage = str(e.get("stage"))
        if self.plain:
            self.print(self.plain_progress.started(stage, e.get("total_steps")), soft_wrap=True)
        self.bars.start(stage, e.get("total_steps"))

    def _on_step(self, e: dict) -> None:
        stage = str(e.get("stage"))
        task = self.bars.task(stage)
        info = step_info(e, stage, short=self.bars.narrow and not self.plain)
        step = _num(e.get("step"))
        if self.plain:
            line = self.plain_progress.line(stage, step, info)
            if line is not None:
                self.print(line, soft_wrap=True)
        self.bars.update(task, step, "  ".join(i for i in info if i))

    # the engine evaluates three splits at a time (one eval event each): print them as one line
    def _on_eval(self, e: dict) -> None:
        if self.evals.ends_batch(e):
            self._flush_eval()
        self.evals.add(e)

    def _flush_eval(self) -> None:
        batch = self.evals.take()
        if batch is None:
            return
        (stage, step), metrics = batch
        if isinstance(step, int) and step < 0:
            return  # the final evaluation: stage_finished prints it
        at = f" step {step}" if step is not None else ""
        rows = self.evals.sample_rows
        on = f" [dim](sample: {rows} clean rows)[/]" if rows is not None else ""
        self.print_metrics(f"  [cyan]eval[/] {escape(str(stage))}{at}{on}", format_metrics(metrics, self.label_names))

    def _on_stage_finished(self, e: dict) -> None:
        stage = str(e.get("stage"))
        metrics = e.get("metrics") if isinstance(e.get("metrics"), dict) else {}
        self.bars.finish(stage, complete=not metrics.get("cancelled") and not metrics.get("error"))
        secs = _num(e.get("seconds"))
        took = f" ({secs:.1f} s)" if secs is not None else ""
        if metrics.get("cancelled"):
            self.print(f"[yellow]■ {escape(stage)} cancelled{took}[/]", always=True)
        elif stage in self.errors or metrics.get("error"):
            self.print(f"[red]✗ {escape(stage)} failed{took}[/]", always=True)
        else:
            cached = " [dim](cached)[/]" if metrics.get("cached") else ""
            text = format_metrics(metrics, self.label_names)
            if stage == "detect" and _num(metrics.get("f1")) is not None:
                text = detection_text(metrics)
            self.print_metrics(f"[green]✓[/] {escape(stage)}{took}{cached}", text)

    def _on_error(self, e: dict) -> None:
        stage = str(e.get("stage"))
        msg = " ".join(str(e.get("message", "")).split())
        if stage == "run":  # the engine raises it next: the command line says it, once
            return
        self.errors[stage] = msg
        self.bars.stop(stage)
        self.print(f"[red]✗ {escape(stage)}: {escape(msg)}[/]", always=True, highlight=False)

    def _on_log(self, e: dict) -> None:
        if isinstance(e.get("label_names"), list) and e["label_names"]:  # the run's data line
            self.label_names = [str(x) for x in e["label_names"]]
        level = str(e.get("level", "info")).lower()
        msg = str(e.get("message", ""))
        if level in ("warning", "warn", "error"):
            self.print(f"[yellow]{level}: {escape(msg)}[/]", always=True, highlight=False)
        else:
            self.print(f"[dim]{escape(msg)}[/]", highlight=False)

    def _on_run_finished(self, e: dict) -> None:
        if isinstance(e.get("summary"), dict):
            self.summary = e["summary"]


VERDICT_STYLE = {"remains": "bold red", "shifted": "dark_orange", "partly": "yellow",
                 "collapsed": "magenta", "removed": "green", "none": "green"}


def results_table(summary: dict, width: int | None = None) -> Table:
    """The per-model results of one run as a rich Table (verdict column included). Given the
    console's ``width`` and too little of it for the boxed table (an 80-column terminal: the
    verdict would wrap over three lines), the same table without its box (one space between
    columns, a rule under the header); still too narrow, also without the Time column (each
    stage's ✓ line above the table gives its time)."""
    table = _results_table(summary, compact=False, times=True)
    for compact, times in ((True, True), (True, False)):
        if width is None or table_width(table) <= width:
            break
        table = _results_table(summary, compact=compact, times=times)
    return table


def table_width(table: Table) -> int:
    """The columns ``table`` takes when nothing wraps."""
    wide = Console(width=1000, file=io.StringIO())  # a measurement is capped at the console's width
    return Measurement.get(wide, wide.options, table).maximum


def seed_text(seed: int, data_seed: int | None) -> str:
    """"seed N", and "· data seed M" where data.seed set the data apart from the run's seed (one
    poisoned dataset for every seed): the run's header line and its results table say it alike."""
    return f"seed {seed}" + (f" · data seed {data_seed}" if data_seed is not None and data_seed != seed else "")


def _results_table(summary: dict, compact: bool, times: bool) -> Table:
    from rga_engine import config

    title = " · ".join(
        str(x)
        for x in (
            summary.get("preset"),
            config.what_runs_text(*(str(summary.get(k, "?")) for k in ("dataset", "attack", "model"))),
            seed_text(summary["seed"], summary.get("data_seed")) if summary.get("seed") is not None else None,
        )
        if x
    )
    look = dict(box=box.SIMPLE_HEAD, show_edge=False, padding=0, pad_edge=False) if compact else {}
    table = Table(title=printable(escape(title)) if title else None, title_justify="left", **look)
    table.add_column("Model", style="bold")
    for name in ("CACC", "ASR", "LFR", "PACC", "ΔPACC"):  # the run screen's order: the paper's, with ASR
        table.add_column(name, justify="right")
    table.add_column("Verdict")
    if times:
        table.add_column("Time", justify="right")
    for r in report.summary_rows(summary):
        if r["status"] == "cancelled":
            cells = [r["label"], *(["–"] * 5), "[yellow]cancelled[/]", ""]
        elif r["error"]:
            cells = [printable(escape(r["label"])), *(["–"] * 5), f"[red]failed: {printable(escape(r['error']))}[/]", ""]
        elif r["status"] == "not run":
            cells = [r["label"], *(["–"] * 5), "[dim]not run[/]", ""]
        else:
            verdict = printable(r["verdict"] or "–")
            style = VERDICT_STYLE.get(r.get("verdict_kind") or "", "")
            cells = [
                printable(escape(r["label"])),
                report.fmt_pct(r["cacc"]),
                report.fmt_pct(r["asr"]),
                report.fmt_pct(r["lfr"]),
                report.fmt_pct(r["pacc"]),
                report.fmt_pct(r["delta_pacc"]) if r["name"] != "retrain" else "–",
                f"[{style}]{escape(verdict)}[/]" if style else escape(verdict),
                "" if r["seconds"] is None else f"{r['seconds']:.1f}s",
            ]
        table.add_row(*cells[: len(table.columns)])
    return table


def _failure_reason(summary: dict, errors: dict[str, str]) -> str | None:
    errs = dict(errors)
    if isinstance(summary.get("errors"), dict):
        errs.update({str(k): " ".join(str(v).split()) for k, v in summary["errors"].items()})
    if errs:
        if len(errs) == 1:
            (stage, msg), = errs.items()
            return f"stage {stage} failed: {msg}"
        return f"{len(errs)} stages failed: " + "; ".join(f"{s}: {m}" for s, m in errs.items())
    if summary.get("status") == "error":
        return "the run ended with status error"
    return None


def _save_svg(run_dir: Path, console: Console) -> None:
    """The run screen's final state as ``result.svg`` in the run folder; a failure is one dim line."""
    try:
        from rga_tui.snapshot import save_run_svg

        path = save_run_svg(run_dir)
    except KeyboardInterrupt:
        return
    except Exception as e:  # noqa: BLE001 - the picture must never fail a finished run
        console.print(f"(no picture of the run: {type(e).__name__}: {' '.join(str(e).split())})",
                      markup=False, highlight=False, style="dim", soft_wrap=True)
        return
    if path is not None:
        console.print(f"picture: {path}", markup=False, highlight=False, soft_wrap=True)


def detach_from_terminal(signum: int = 0, frame: Any = None) -> None:
    """SIGHUP: the terminal is gone. Point stdout / stderr at /dev/null where they were the
    terminal (or a pipe to a program that went with it), so that printing never fails; a log
    file stays as it is. Training and the run folder go on."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        for fd in (1, 2):
            try:
                mode = os.fstat(fd).st_mode
                if os.isatty(fd) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                    os.dup2(devnull, fd)
            except OSError:
                pass
    finally:
        os.close(devnull)


class HangupSafeStream:
    """stdout / stderr for a run that must outlive its terminal. The terminal (or the pipe to a
    program that went with it) can close before SIGHUP's handler has run: Python runs handlers
    between bytecodes, so one long torch op delays it. A write that then fails with EPIPE detaches
    from the terminal at once (as the handler would) and goes to /dev/null instead of ending the
    run with BrokenPipeError."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _guard(self, fn: Callable[[], Any], fallback: Any) -> Any:
        try:
            return fn()
        except OSError as e:
            if e.errno != errno.EPIPE:
                raise
            detach_from_terminal()
            try:
                return fn()  # the same descriptor, now /dev/null
            except OSError:
                return fallback

    def write(self, text: str) -> int:
        return self._guard(lambda: self._stream.write(text), len(text))

    def flush(self) -> None:
        self._guard(self._stream.flush, None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def hangup_safe_streams() -> Callable[[], None]:
    """Wrap sys.stdout and sys.stderr in :class:`HangupSafeStream`; returns what restores them."""
    old = sys.stdout, sys.stderr
    if sys.stdout is not None and not isinstance(sys.stdout, HangupSafeStream):
        sys.stdout = HangupSafeStream(sys.stdout)
    if sys.stderr is not None and not isinstance(sys.stderr, HangupSafeStream):
        sys.stderr = HangupSafeStream(sys.stderr)

    def restore() -> None:
        sys.stdout, sys.stderr = old

    return restore


def _install(wanted: dict[int, Any]) -> Callable[[], None]:
    """Install signal handlers; returns what restores the old ones (a no-op off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {sig: signal.getsignal(sig) for sig in wanted}
    for sig, fn in wanted.items():
        signal.signal(sig, fn)

    def restore() -> None:
        for sig, fn in old.items():
            signal.signal(sig, fn)

    return restore


def _install_signals(handler: StopFlag) -> Callable[[], None]:
    """SIGINT and SIGTERM stop after the step (``handler``)."""
    wanted: dict[int, Any] = {signal.SIGINT: handler}
    if hasattr(signal, "SIGTERM"):
        wanted[signal.SIGTERM] = handler
    return _install(wanted)


def _install_hangup() -> Callable[[], None]:
    """SIGHUP detaches from the terminal, from the very start of a run (unless SIGHUP is ignored
    already, as under ``nohup``: then the output goes on where nohup sent it)."""
    if not hasattr(signal, "SIGHUP") or signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        return lambda: None
    return _install({signal.SIGHUP: detach_from_terminal})


# --------------------------------------------------------------------------- the run folder

_RUN_FILES = ("config.toml", "events.jsonl", "summary.json", "summary.json.tmp", "results.md", "result.svg")
_FINISHED = ("finished", "partial", "error")


def _scan_events(path: Path) -> dict[str, Any]:
    """What a run folder's events say: the writer's process tag, whether a stage started, and the
    status of its run_finished (None without one)."""
    from rga_engine.runinfo import writer_from_events

    out: dict[str, Any] = {"writer": writer_from_events(path), "staged": False, "finished": None}
    try:
        with path.open("rb") as f:
            for line in f:
                if b'"stage_started"' in line:
                    out["staged"] = True
                elif b'"run_finished"' in line:
                    try:
                        summary = json.loads(line).get("summary") or {}
                        out["finished"] = str(summary.get("status") or "finished")
                    except (ValueError, AttributeError):
                        out["finished"] = "finished"
    except OSError:
        pass
    return out


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _same_settings(run_dir: Path, cfg: Any) -> bool:
    from rga_engine.config import tomllib

    try:
        before = tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8"))
        return before == tomllib.loads(cfg.to_toml())
    except (OSError, ValueError):
        return False


def check_run_dir(run_dir: Path, cfg: Any, resume: bool = False) -> str:
    """How ``--out`` may be used: ``"new"`` (absent), ``"empty"``, ``"reuse"`` (a run that left
    nothing: no stage started and its process is gone) or ``"resume"`` (a run of the same preset
    and settings that did not finish, with ``resume``); anything else raises :class:`RunDirError`."""
    from rga_engine.runinfo import effective_status, process_alive

    where = f"--out {run_dir}"
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{where}: is a file, not a folder; choose a new folder")
    if not run_dir.exists():
        return "new"
    try:
        names = sorted(p.name for p in run_dir.iterdir())
    except OSError as e:
        raise RunDirError(f"{where}: cannot read the folder ({e.strerror or e}); choose another folder") from None
    if not names:
        return "empty"
    if "events.jsonl" not in names and "config.toml" not in names:
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise RunDirError(f"{where}: is not empty and holds no run ({shown}); choose a new or empty folder")
    ev = _scan_events(run_dir / "events.jsonl")
    summary = _read_json(run_dir / "summary.json")
    summary = summary if isinstance(summary, dict) else None
    writer = (summary or {}).get("process") or ev["writer"]
    status = effective_status(summary) if summary else (ev["finished"] or "unfinished")
    alive = process_alive(writer)
    if alive:
        raise RunDirError(f"{where}: already holds a run that is still going (pid {writer.get('pid')}); "
                          f"choose a new folder")
    if status in _FINISHED:
        raise RunDirError(f"{where}: already holds a run ({status}); choose a new folder")
    if not ev["staged"] and alive is False:
        return "reuse"  # it failed or was killed before its first stage: nothing to keep
    if status == "running":  # no process tag, or another host: it may still be going
        host = (writer or {}).get("host") if isinstance(writer, dict) else None
        raise RunDirError(f"{where}: already holds a run that may still be going"
                          f"{f' on {host}' if host else ''}; choose a new folder")
    if not _same_settings(run_dir, cfg):
        raise RunDirError(f"{where}: already holds a run ({status}) of another preset or other settings; "
                          f"choose a new folder")
    if not resume:
        raise RunDirError(f"{where}: already holds a run of this preset that did not finish ({status}); "
                          f"add --resume to run it again there (stages whose weights are cached load "
                          f"instead of training) or choose a new folder")
    return "resume"


def _missing_dirs(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, innermost first."""
    out = []
    p = path.absolute()
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def prepare_run_dir(run_dir: Path, mode: str) -> list[Path]:
    """Create the run folder (and its parents) and clear a reused / resumed run's own files;
    returns the folders it created. An unwritable location is a one-line :class:`RunDirError`."""
    created = _missing_dirs(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"--out {run_dir}: cannot create the folder ({e.strerror or e}); "
                          f"choose a writable folder") from None
    if not os.access(run_dir, os.W_OK):
        raise RunDirError(f"--out {run_dir}: the folder is not writable; choose a writable folder")
    try:
        if mode == "resume" and (run_dir / "events.jsonl").exists():  # kept, out of the way
            os.replace(run_dir / "events.jsonl", run_dir / "events.jsonl.prev")
        if mode in ("reuse", "resume"):
            _remove_run_files(run_dir)
    except OSError as e:
        raise RunDirError(f"--out {run_dir}: cannot clear the earlier run ({e.strerror or e}); "
                          f"choose a new folder") from None
    return created


def _remove_run_files(run_dir: Path) -> None:
    for name in _RUN_FILES:  # and a temp file of an atomic write cut short (report.write_text_atomic)
        for path in (run_dir / name, *run_dir.glob(f".{name}-*.tmp")):
            try:
                path.unlink()
            except FileNotFoundError:
                pass


def cleanup_run_dir(run_dir: Path, created: list[Path]) -> bool:
    """A run that failed before its first stage: remove its files, and the folders this run
    created once empty. Foreign files are never touched. True when nothing is left."""
    try:
        _remove_run_files(run_dir)
        for d in created:  # innermost first
            d.rmdir()
    except OSError:
        return False
    return True


def run_headless(
    preset: str | Path,
    out: str | Path | None = None,
    overrides: list[str] | None = None,
    quiet: bool = False,
    *,
    console: Console | None = None,
    err_console: Console | None = None,
    log_every: float = 30.0,
    svg: bool = True,
    trust_remote_code: bool = False,
    resume: bool = False,
    yes: bool = False,
) -> int:
    """Run one preset without the TUI; returns the exit code (0, 1 or 130).

    ``trust_remote_code``: the command line said ``--trust-remote-code`` (the only way to run a
    model's own Python code); ``resume``: ``--out`` may hold an unfinished run of this preset;
    ``yes``: run a preset that sets nothing (the full defaults).
    Bad input raises (``ConfigError``, ``DataError``, ``AttackError``, :class:`RunDirError`).
    A hang-up (SIGHUP) at any moment detaches the run from the terminal.
    """
    restore_hangup = _install_hangup()
    restore_streams = hangup_safe_streams()
    try:
        return _run(preset, out, overrides, quiet, console=console, err_console=err_console,
                    log_every=log_every, svg=svg, trust_remote_code=trust_remote_code, resume=resume, yes=yes)
    finally:
        restore_streams()
        restore_hangup()


def _load_preset(preset: str | Path, overrides: list[str] | None, trust_remote_code: bool, yes: bool):
    """The preset with its overrides; a preset that sets nothing runs only with ``--yes``."""
    from rga_engine import config

    cfg = config.load(preset, list(overrides or []), allow_remote_code=trust_remote_code)
    if trust_remote_code:
        cfg.model.trust_remote_code = True
    if not yes and not overrides and config.sets_nothing(preset):
        raise config.ConfigError(f"{preset}: the preset sets nothing, so it would run every default "
                                 f"({config.defaults_line(cfg)}); pass --yes to run that, or start "
                                 f"from a preset in presets/demo")
    return cfg


def _final_summary(summary: Any, sink: HeadlessSink, run_dir: Path) -> dict | None:
    """The run's summary: what the pipeline returned, else the last one its events carried, else
    the run folder's summary.json (None when there is none)."""
    if isinstance(summary, dict):
        return summary
    if isinstance(sink.summary, dict):
        return sink.summary
    try:
        return report.load_summary(run_dir)
    except report.ReportError:
        return None


class OpenedRunDir(NamedTuple):
    """What :func:`_open_run_dir` prepared."""
    pipeline: Any  # the engine's pipeline module (imported after a bad --out could be said)
    run_dir: Path
    mode: str  # check_run_dir's answer: "new", "empty", "reuse" or "resume"
    created: list[Path]  # the folders made for it (removed again if the run stops before its first stage)


def _open_run_dir(cfg: Any, out: str | Path | None, resume: bool) -> OpenedRunDir:
    """Import the engine's pipeline and prepare the run folder (``--out``, else a new
    ``runs/<preset>-<time>``)."""
    created: list[Path] = []
    if out:  # checked before the engine (torch) is imported: a bad --out is said at once
        run_dir = Path(out)
        mode = check_run_dir(run_dir, cfg, resume)
        created = prepare_run_dir(run_dir, mode)
    try:
        pipeline = importlib.import_module("rga_engine.pipeline")
    except BaseException:
        if out:
            cleanup_run_dir(run_dir, created)
        raise
    if not out:
        run_dir = Path(pipeline.default_run_dir(cfg))
        mode = check_run_dir(run_dir, cfg, resume)
        created = prepare_run_dir(run_dir, mode)
    return OpenedRunDir(pipeline, run_dir, mode, created)


def _run(preset: str | Path, out: str | Path | None, overrides: list[str] | None, quiet: bool, *,
         console: Console | None, err_console: Console | None, log_every: float, svg: bool,
         trust_remote_code: bool, resume: bool, yes: bool) -> int:
    """The body of :func:`run_headless`: load the preset, open the run folder, run the pipeline
    under the signal handlers, print the results table, return the exit code."""
    if console is None:
        console = Console(highlight=False)
        if not console.is_terminal:  # a log file: no wrapping at 80 columns
            console = Console(highlight=False, width=max(console.width, 160))
    err_console = err_console or Console(stderr=True, highlight=False)
    cfg = _load_preset(preset, overrides, trust_remote_code, yes)
    from rga_engine import config
    from rga_engine.distributed import launch_rank

    if launch_rank() != 0:
        return _run_other_rank(cfg)
    pipeline, run_dir, mode, created = _open_run_dir(cfg, out, resume)

    sink = HeadlessSink(console, quiet=quiet, log_every=log_every)
    sink.run_dir = str(run_dir)
    names = (list(cfg.data.label_names) or list(dict.fromkeys(cfg.data.label_map.values()))
             or list(getattr(pipeline, "LABEL_NAMES", {}).get(cfg.data.dataset, [])))
    sink.label_names = names or None
    stop = StopFlag(notify=lambda msg: sink.print(f"[yellow]{msg}[/]", always=True))
    restore = _install_signals(stop)
    if not quiet:
        console.print(printable(
            f"[bold]{escape(cfg.name)}[/] · "
            + escape(f"{config.what_runs(cfg)} · "
                     f"methods {', '.join(cfg.unlearn.methods)} · {seed_text(cfg.train.seed, cfg.data_seed)}")
        ))
        if mode == "resume":
            console.print(escape(f"resuming the unfinished run in {run_dir} (cached stages load from the "
                                 f"cache; the earlier events are in events.jsonl.prev)"), style="dim")
    summary: dict | None = None
    try:
        with sink:
            summary = pipeline.run(cfg, sink, stop.should_stop, run_dir=run_dir)
    except KeyboardInterrupt:
        if not sink.staged and cleanup_run_dir(run_dir, created):
            err_console.print("aborted before the first stage; no run folder was left", markup=False)
        else:
            err_console.print(f"aborted; what was written is in {run_dir}", markup=False)
        return EXIT_INTERRUPTED
    except Exception:
        if not sink.staged:  # bad data, a bad model name, ...: leave nothing behind
            cleanup_run_dir(run_dir, created)
        raise
    finally:
        restore()

    summary = _final_summary(summary, sink, run_dir)
    if summary is not None:
        console.print()
        console.print(results_table(summary, console.width))
        if svg:
            _save_svg(run_dir, console)
    console.print(f"run folder: {run_dir}", markup=False, highlight=False, soft_wrap=True)

    status = (summary or {}).get("status")
    if stop.requested or status == "cancelled":
        err_console.print("stopped: the run was cancelled; partial results are in the run folder")
        return EXIT_INTERRUPTED
    reason = _failure_reason(summary or {}, sink.errors) if summary is not None else "the run left no summary"
    if reason:
        print(f"error: {printable(reason)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _run_other_rank(cfg: Any) -> int:
    """A process other than the main one: the same run, in step with the main process (the
    collectives of DDP), with no run folder, no output and no picture -- those are the main
    process's. The exit code follows the same rules as the main process's."""
    pipeline = importlib.import_module("rga_engine.pipeline")
    stop = StopFlag()
    restore = _install_signals(stop)
    try:
        summary = pipeline.run(cfg, None, stop.should_stop, run_dir=None)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        restore()
    if stop.requested or summary.get("status") == "cancelled":
        return EXIT_INTERRUPTED
    return EXIT_FAILED if _failure_reason(summary, {}) else EXIT_OK


def run_seeds(
    preset: str | Path,
    seeds: list[int],
    out: str | Path | None = None,
    overrides: list[str] | None = None,
    quiet: bool = False,
    *,
    console: Console | None = None,
    log_every: float = 30.0,
    svg: bool = True,
    trust_remote_code: bool = False,
    yes: bool = False,
) -> int:
    """``rga-tui run PRESET --seeds ...``: :func:`run_headless` once per seed into
    ``OUT/s<seed>/``, then ``OUT/results.md`` (mean ± sample std over the seeds).  Stops at the
    first Ctrl-C (exit 130); a failed seed does not stop the others (exit 1 at the end)."""
    from datetime import datetime

    from rga_engine import config, export
    from rga_engine.distributed import launch_rank

    cfg = config.load(preset, list(overrides or []), allow_remote_code=trust_remote_code)
    if launch_rank() != 0:  # several processes: the folders and results.md are the main process's
        worst = EXIT_OK
        for seed in seeds:
            code = run_headless(preset, None, list(overrides or []) + [f"train.seed={seed}"], quiet,
                                trust_remote_code=trust_remote_code, yes=yes)
            if code == EXIT_INTERRUPTED:
                return code
            worst = max(worst, code)
        return worst
    root = Path(out) if out else Path(cfg.output.dir) / (
        f"{cfg.name.replace('/', '-')}-seeds-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    for seed in seeds:  # refuse before anything runs, not after the first seed
        if any((root / f"s{seed}" / f).exists() for f in ("events.jsonl", "summary.json")):
            raise RunDirError(f"--out {root}: s{seed} already holds a run; choose a new folder")
    console = console or Console(highlight=False)
    worst = EXIT_OK
    done: list[Path] = []
    for i, seed in enumerate(seeds, 1):
        console.print(f"seed {seed} ({i}/{len(seeds)})", markup=False, highlight=False)
        code = run_headless(preset, root / f"s{seed}", list(overrides or []) + [f"train.seed={seed}"], quiet,
                            console=console, log_every=log_every, svg=svg, trust_remote_code=trust_remote_code,
                            yes=yes)
        if (root / f"s{seed}" / "summary.json").is_file():
            done.append(root / f"s{seed}")
        if code == EXIT_INTERRUPTED:
            worst = EXIT_INTERRUPTED
            break
        worst = max(worst, code)
    summaries = []
    for d in done:
        try:
            summaries.append(report.load_summary(d))
        except report.ReportError:
            pass
    if summaries:
        path = root / "results.md"
        path.write_text(f"# Results over seeds {', '.join(str(s) for s in seeds)}\n\n"
                        + export.render(summaries, "markdown"), encoding="utf-8")
        console.print()
        console.print(export.render(summaries, "markdown"), markup=False, highlight=False, soft_wrap=True)
        console.print(f"results over seeds: {path}", markup=False, highlight=False, soft_wrap=True)
    return worst

"""The Textual app with Pilot: watch mode on the fixture, live runs with a fake pipeline, keys."""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from rga_tui.app import RgaApp
from rga_tui.screens.home import HomeScreen
from rga_tui.screens.modals import ConfirmScreen, HelpScreen
from rga_tui.screens.run import RunScreen
from rga_tui.widgets import ErrorPanel, MatrixBoard, ResultsTable

pytestmark = pytest.mark.anyio

FIXTURE = Path(__file__).parent / "fixtures" / "sst2_badnets_events.jsonl"
PRESET = Path(__file__).resolve().parent.parent / "presets" / "demo" / "sst2-badnets.toml"
TINY = Path(__file__).resolve().parent / "fixtures" / "presets" / "tiny-sst2-badnets.toml"
RUN_NAME = "demo-sst2-badnets-20260101-000000"


@pytest.fixture
def anyio_backend():
    return "asyncio"


def screen_text(app) -> str:
    """The rendered screen as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def wait_for(pilot, cond, timeout: float = 10.0, step: float = 0.05) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(step)
    await pilot.pause()  # let the screen render what the condition saw


def run_folder(tmp_path: Path, lines: list[str] | None = None) -> Path:
    d = tmp_path / RUN_NAME
    d.mkdir(parents=True, exist_ok=True)
    if lines is None:
        shutil.copy(FIXTURE, d / "events.jsonl")
    else:
        (d / "events.jsonl").write_text("".join(lines), encoding="utf-8")
    return d


# --------------------------------------------------------------------------- watch mode

async def test_watch_shows_ga_shift_and_graded_verdicts(tmp_path):
    app = RgaApp(watch_dir=run_folder(tmp_path))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.finished)
        await pilot.pause()
        screen = app.screen
        board = screen.query_one(MatrixBoard)
        verdicts = board.verdict_texts()
        assert verdicts["GA"] == "trigger shifted → negative"
        # the fixture predates the graded verdict: RGA's "no shift" is graded from its ASR (30.9 %
        # against Retrain's 8.3 %), Retrain's from its own shift scores
        assert verdicts["RGA"] == "backdoor partly remains (ASR 30.9 %)"
        assert verdicts["Retrain"] == "backdoor removed"
        assert verdicts["Poisoned"] == "backdoor remains"
        text = screen_text(app)
        assert "trigger shifted → negative" in text and "backdoor remains" in text
        assert "◐ partly remains (ASR 30.9 %)" in text and "✔ backdoor removed" in text
        assert "◐ backdoor partly remains (ASR 30.9 %)" in text  # the results table: the whole text
        assert "loss (log)" in text and "step" in text  # the loss chart's axes say what they are
        assert "finished" in text
        # the results table filled in
        table = screen.query_one(ResultsTable)
        assert table.row_count == 5
        # m flips every matrix to the clean test set and back
        await pilot.press("m")
        await pilot.pause()
        assert board.split == "test_clean"
        assert "CACC" in screen_text(app) and "matrices: clean" in screen_text(app)
        await pilot.press("m")
        await pilot.pause()
        assert board.split == "test_poisoned_all"
        assert "trigger shifted → negative" in screen_text(app)


async def test_results_table_fills_before_it_is_mounted(tmp_path):
    """A resize recomposes the run screen (grid <-> tabs); the screen's tick can sync the new
    results table before its on_mount runs. It must fill, not raise (CI caught this once as
    "More values provided than there are columns" in the CUBE resize test)."""
    app = RgaApp(watch_dir=run_folder(tmp_path))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.finished)
        table = ResultsTable(app.screen.state)  # composed, not yet mounted
        table.sync()
        assert table.row_count == 5 and len(table.columns) == 7
        table.sync(force=True)  # again: the columns are added once
        assert table.row_count == 5 and len(table.columns) == 7


async def test_resizes_while_the_screen_ticks_fast(tmp_path):
    """Resizing across the wide / tabs threshold recomposes the screen while its tick keeps
    firing; with a 1 ms tick and 8 resizes, any widget synced between being composed and being
    mounted would crash the app (the results table did, once in CI)."""
    app = RgaApp(watch_dir=cube_run_folder(tmp_path))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.finished)
        screen = app.screen
        screen._timer.stop()
        screen._timer = screen.set_interval(0.001, screen.tick)
        for i in range(8):
            await pilot.resize_terminal(*((80, 24) if i % 2 == 0 else (160, 50)))
            await pilot.pause(0.01)
        await pilot.pause(0.1)
        assert app.return_code is None and app.screen is screen  # still running, same screen
        assert screen.query_one(ResultsTable).row_count == 5
        assert "precision 95.24" in screen_text(app)


async def test_lambda_chart_draws_a_falling_lr_over_its_peak(tmp_path):
    """With an lr schedule the λ chart also draws each step's lr over the peak (labelled with the
    peak); at a constant lr (the fixture as recorded) there is no such line."""
    from rga_tui.state import Series
    from rga_tui.widgets.charts import lr_line

    const, falling = Series(), Series()
    for step in range(1, 11):
        const.add(step, 5e-4)
        falling.add(step, 3e-4 * (1 - (step - 1) / 10))
    assert lr_line(const, 40) is None and lr_line(Series(), 40) is None
    xs, ys, label = lr_line(falling, 40)
    assert label == "lr ÷ 3e-04" and ys[0] == 1.0 and ys[-1] == pytest.approx(0.1) and ys == sorted(ys, reverse=True)
    # the peak as it is: the SST-2 demo's 1.5e-4 was labelled "1e-04" (an lr 1.5× what it said)
    demo = Series()
    for step in range(1, 11):
        demo.add(step, 1.5e-4 * (1 - (step - 1) / 10))
    assert lr_line(demo, 40)[2] == "lr ÷ 1.5e-04"

    out, n = [], 0
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        e = json.loads(line)
        if e["type"] == "step" and e["stage"] == "unlearn:rga":
            n += 1
            e["lr"] = 5e-4 / n  # falling
        out.append(json.dumps(e) + "\n")
    for lines, shown in ((None, False), (out, True)):
        app = RgaApp(watch_dir=run_folder(tmp_path / str(shown), lines))
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.finished)
            await pilot.pause()
            app.screen.query_one("#lambda-chart").redraw(force=True)
            await pilot.pause()
            assert ("lr ÷ 5e-04" in screen_text(app)) is shown


def test_chart_ticks_are_whole_steps_and_round_losses():
    """The x axes count steps: whole numbers at a round spacing (plotext's own split the range
    evenly: 17.5, 31.5); the log loss axis has powers of ten (its own read 13.5801, 0.0678)."""
    from rga_tui.widgets.charts import log_ticks, step_ticks

    assert step_ticks([1, 156]) == [1, 50, 100, 150]
    assert step_ticks([1.0, 67.0]) == [1, 20, 40, 60]
    assert step_ticks([0, 2000]) == [0, 500, 1000, 1500, 2000]
    assert step_ticks([1, 3]) == [1, 2, 3] and step_ticks([5, 5]) == [5]
    assert all(isinstance(t, int) for t in step_ticks([1, 84]))
    # GA's forget loss to 13.6 and RGA's retain loss down to 0.0003: one tick per decade inside
    assert log_ticks([0.0003, 2.3, 13.58]) == ([0.001, 0.01, 0.1, 1.0, 10.0], ["0.001", "0.01", "0.1", "1", "10"])
    # under two decades: 1-2-5 marks, so the axis still has several
    assert log_ticks([0.7, 25.0])[1] == ["1", "2", "5", "10", "20"]
    assert log_ticks([0.9, 1.1]) == ([0.9, 1.1], ["0.9", "1.1"])  # inside one step: the ends
    assert len(log_ticks([1e-30, 25.0])[0]) <= 7  # a collapsed loss: a few decades labelled, not 32


async def test_run_screen_axes_show_whole_steps(tmp_path):
    """On the run screen itself: both charts' x axes are labelled with whole steps (the line under
    each chart's bottom axis), the loss chart's log axis with round numbers."""
    app = RgaApp(watch_dir=run_folder(tmp_path, None))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.finished)
        for cid in ("#loss-chart", "#lambda-chart"):
            app.screen.query_one(cid).redraw(force=True)
        await pilot.pause()
        lines = screen_text(app).splitlines()
    axis = next(i for i, line in enumerate(lines) if "└┬" in line)
    labels = lines[axis + 1].replace("│", " ").split()
    assert len(labels) >= 6 and all(s.isdigit() for s in labels), lines[axis + 1]  # both charts
    loss_ticks = {line.split("┤")[0].strip("│ ") for line in lines[:axis] if "┤" in line and "Loss" not in line}
    assert {"1", "0.1"} <= loss_ticks, loss_ticks


DETECTION = {"precision": 0.9524, "recall": 1.0, "f1": 0.9756, "flagged": 21, "poisoned": 20}


def cube_run_folder(tmp_path: Path) -> Path:
    """The fixture as a run with ``unlearn.forget_set = "cube"``: a detect stage after poisoning,
    ``detection`` in the summary, and a ``detection.csv`` of 260 synthetic rows (three blobs)."""
    import random

    from rga_engine.detection_files import write_csv

    out = []
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        e = json.loads(line)
        if e["type"] == "run_started":
            e["config"]["unlearn"]["forget_set"] = "cube"
        if e["type"] == "run_finished":
            e["summary"]["detection"] = DETECTION
        out.append(e)
        if e["type"] == "stage_finished" and e["stage"] == "poison":
            t = e["time"]
            out.append({"type": "stage_started", "time": t, "stage": "detect", "total_steps": 3})
            out.append({"type": "stage_finished", "time": t + 4.0, "stage": "detect", "seconds": 4.0,
                        "metrics": {**DETECTION, "cached": False}})
    d = run_folder(tmp_path, [json.dumps(e) + "\n" for e in out])
    rng = random.Random(0)
    centres = [(0.0, 0.0)] * 120 + [(8.0, 0.0)] * 120 + [(4.0, 9.0)] * 20
    xy = [(cx + rng.gauss(0, 0.5), cy + rng.gauss(0, 0.5)) for cx, cy in centres]
    poisoned = [False] * 240 + [True] * 20
    flagged = [i == 0 for i in range(240)] + [True] * 20
    write_csv(d / "detection.csv", [0] * 120 + [1] * 140, poisoned, flagged, range(260), xy)
    return d


async def test_cube_run_shows_detection_scores_and_scatter(tmp_path):
    """A run with a detect stage: the grid shows CUBE's precision / recall / F1 / flagged /
    poisoned and the 2-D scatter read from detection.csv; on a small terminal the same panel is
    tab 5. A run without CUBE has neither (the fixture: its Detection tab stays hidden)."""
    from rga_tui.widgets.detection import DetectionPanel, DetectionScatter

    app = RgaApp(watch_dir=cube_run_folder(tmp_path))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.finished)
        screen = app.screen
        panel = screen.query_one(DetectionPanel)
        assert panel.display and screen.state.detection == DETECTION
        text = screen_text(app)
        assert "precision 95.24  recall 100.00  F1 97.56" in text
        assert "flagged 21 rows · 20 truly poisoned" in text
        assert "CUBE detection · 2-D UMAP · 260 rows" in text
        plot = screen.query_one(DetectionScatter)
        assert len(plot.points) == 260
        assert {k for _, _, k in plot.points} == {"clean", "false_alarm", "caught"}
        for legend in ("clean 239", "clean · flagged 1", "poisoned · flagged 20"):
            assert legend in text, legend
        assert "Detect" in text  # the stage strip

        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: bool(screen.query("#tabs")))
        await pilot.press("5")
        await wait_for(pilot, lambda: screen.query_one("#tabs").active == "tab-detection")
        text = screen_text(app)
        assert "precision 95.24" in text and "poisoned · flagged 20" in text

    app = RgaApp(watch_dir=run_folder(tmp_path / "oracle"))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.finished)
        assert "Detection" not in screen_text(app)
        await pilot.press("5")
        await pilot.pause()
        assert app.screen.query_one("#tabs").active == "tab-matrices"
        assert not app.screen.state.uses_detection


async def test_watch_follows_a_growing_file(tmp_path):
    lines = FIXTURE.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = len(lines) // 2
    half = lines[:cut] + [lines[cut][: len(lines[cut]) // 2]]  # the last line half-written
    d = run_folder(tmp_path, half)
    app = RgaApp(watch_dir=d)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.n_events == cut)
        state = app.screen.state
        assert state.is_running and not state.finished
        assert "following" in screen_text(app)
        with (d / "events.jsonl").open("a", encoding="utf-8") as f:
            f.write(lines[cut][len(lines[cut]) // 2:])
            f.writelines(lines[cut + 1:])
        await wait_for(pilot, lambda: state.finished)
        assert state.n_events == len(lines)
        assert state.verdict("unlearn:ga").kind == "shifted"


async def test_steps_alone_do_not_relayout_the_matrices_or_rebuild_the_table(tmp_path):
    """Step events arrive many times a second: they move the stage strip and the charts, but the
    matrix board is laid out again, and the results table rebuilt, only when an eval or a stage
    status changes (each layout pass used to cost the training ~5 % of its speed on 2 cores)."""
    lines = FIXTURE.read_text(encoding="utf-8").splitlines(keepends=True)
    ga_start = next(i for i, ln in enumerate(lines) if '"stage_started"' in ln and "unlearn:ga" in ln)
    first_eval = next(i for i, ln in enumerate(lines) if i > ga_start and '"type":"eval"' in ln.replace(" ", ""))
    d = run_folder(tmp_path, lines[: ga_start + 5])
    app = RgaApp(watch_dir=d)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.n_events == ga_start + 5)
        await pilot.pause(0.6)
        screen, state = app.screen, app.screen.state
        board, table = screen.query_one(MatrixBoard), screen.query_one(ResultsTable)
        layouts, rebuilds = [], []
        refresh, clear = board.refresh, table.clear

        def spy_refresh(*a, **k):
            if k.get("layout"):
                layouts.append(1)
            return refresh(*a, **k)

        def spy_clear(*a, **k):
            rebuilds.append(1)
            return clear(*a, **k)

        board.refresh, table.clear = spy_refresh, spy_clear
        step_before = state.stages["unlearn:ga"].step
        with (d / "events.jsonl").open("a", encoding="utf-8") as f:
            f.writelines(lines[ga_start + 5: first_eval])
        await wait_for(pilot, lambda: state.n_events == first_eval)
        await pilot.pause(0.6)
        assert state.stages["unlearn:ga"].step > step_before  # the steps did arrive
        assert layouts == [] and rebuilds == []
        with (d / "events.jsonl").open("a", encoding="utf-8") as f:
            f.writelines(lines[first_eval: first_eval + 3])  # GA's first evaluation
        await wait_for(pilot, lambda: state.n_events == first_eval + 3)
        await pilot.pause(0.6)
        assert layouts  # a new matrix: the board is laid out again
        assert "GA" in board.verdict_texts()


async def test_replay_with_speed(tmp_path):
    app = RgaApp(watch_dir=run_folder(tmp_path), speed=4000.0)  # ~417 s of events in ~0.1 s
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.finished)
        assert "replay ×4000" in screen_text(app)


async def test_small_terminal_tabs_and_resize(tmp_path):
    app = RgaApp(watch_dir=run_folder(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.finished)
        await pilot.pause()
        screen = app.screen
        assert screen.query("#tabs") and not screen.query("#wide")
        assert "shifted → negative" in screen_text(app)
        for key in "2341":
            await pilot.press(key)
            await pilot.pause()
            assert screen_text(app)
        # growing the terminal switches to the grid, shrinking back to tabs
        await pilot.resize_terminal(160, 50)
        await wait_for(pilot, lambda: bool(screen.query("#wide")))
        await pilot.pause()
        assert "trigger shifted → negative" in screen_text(app)
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: bool(screen.query("#tabs")))
        await pilot.pause()
        assert "shifted → negative" in screen_text(app)


async def test_no_color(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = RgaApp(watch_dir=run_folder(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.finished)
        text = screen_text(app)
        # without colour the verdicts still read: icons and words
        assert "⚠ shifted → negative" in text and "✔ backdoor removed" in text and "✖ backdoor remains" in text
        assert "◐ partly: ASR 30.9 %" in text


async def test_screenshot_key_saves_svg_into_run_folder(tmp_path):
    d = run_folder(tmp_path)
    app = RgaApp(watch_dir=d)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.finished)
        await pilot.press("s")
        await pilot.pause()
        shots = list(d.glob("*.svg"))
        assert len(shots) == 1 and "<svg" in shots[0].read_text(encoding="utf-8")[:500]


async def test_help_screen_and_back_home(tmp_path, no_discovery):
    app = RgaApp(watch_dir=run_folder(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert "trigger shifted" in screen_text(app)
        help_text = " ".join(str(w.render()) for w in app.screen.query("Static"))
        assert "Loss chart" in help_text and "λ chart" in help_text  # the charts are explained too
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RunScreen)
        await pilot.press("escape")  # watch mode has no home below: a fresh one replaces the run
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))


# --------------------------------------------------------------------------- live runs (fake pipeline)

class FakePipeline:
    """Stands in for rga_engine.pipeline: emits a run_started, then steps until should_stop()."""

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail
        self.stop_seen = threading.Event()
        self.calls: list[dict] = []

    def module(self) -> types.ModuleType:
        mod = types.ModuleType("rga_engine.pipeline")
        mod.run = self.run
        return mod

    def run(self, cfg, sink, should_stop, run_dir=None):
        self.calls.append({"cfg": cfg, "run_dir": run_dir})
        t = time.time()
        sink.emit({"type": "run_started", "time": t, "config": cfg.to_dict(), "device": "cpu", "versions": {}})
        sink.emit({"type": "stage_started", "time": t, "stage": "poison", "total_steps": 10_000})
        if self.fail:
            raise RuntimeError(self.fail)
        step = 0
        while not should_stop():
            step += 1
            sink.emit({"type": "step", "time": time.time(), "stage": "poison", "step": step, "loss": 0.5})
            time.sleep(0.01)
            if step > 3000:  # never hang a test
                break
        self.stop_seen.set()
        sink.emit({"type": "stage_finished", "time": time.time(), "stage": "poison",
                   "metrics": {"cancelled": True}, "seconds": 1.0})
        summary = {"status": "cancelled", "models": {}}
        sink.emit({"type": "run_finished", "time": time.time(), "summary": summary})
        return summary


@pytest.fixture
def fake_pipeline(monkeypatch):
    def install(fail: str | None = None) -> FakePipeline:
        fake = FakePipeline(fail)
        monkeypatch.setitem(sys.modules, "rga_engine.pipeline", fake.module())
        return fake
    return install


class FakeConfig:
    """Enough of rga_engine.config.Config for the run screen (no torch import)."""

    name = "demo-sst2-badnets"

    def to_dict(self) -> dict:
        return {"name": self.name, "data": {"dataset": "sst2"}, "train": {"retrain": True},
                "unlearn": {"methods": ["ga", "rga"]}}


@pytest.fixture
def no_discovery(monkeypatch):
    monkeypatch.setattr("rga_tui.screens.home.discover", lambda dirs: [])


async def start_live(app, pilot, tmp_path) -> RunScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
    app.start_run(FakeConfig(), tmp_path / "runs" / "live-run")
    await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.started)
    return app.screen


async def test_cancel_key_sets_stop_flag(tmp_path, fake_pipeline, no_discovery):
    fake = fake_pipeline()
    app = RgaApp(out_dir=tmp_path / "runs", in_process=True)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await start_live(app, pilot, tmp_path)
        assert fake.calls and fake.calls[0]["run_dir"] == tmp_path / "runs" / "live-run"
        await wait_for(pilot, lambda: screen.state.stages["poison"].step > 0)
        assert footer_keys(app)["c"] == "Cancel"
        await pilot.press("c")
        await pilot.pause()
        assert screen.source.stop.is_set()
        assert "cancelling" in screen_text(app) or screen.state.finished
        await wait_for(pilot, lambda: fake.stop_seen.is_set() and screen.state.finished)
        await pilot.pause(0.3)
        assert screen.state.stages["poison"].status == "cancelled"
        assert "cancelled" in screen_text(app)
        assert "c" not in footer_keys(app) and "s" in footer_keys(app)  # nothing left to cancel


def footer_keys(app) -> dict[str, str]:
    """The keys the footer offers now: {key: description}."""
    return {b.key: b.description for _, b, enabled, _ in app.active_bindings.values() if b.show and enabled}


async def test_a_watched_run_folder_offers_no_cancel(tmp_path, no_discovery):
    """Watching a run folder (`rga-tui watch`, a past run from the home screen), finished or
    not: the run is not this app's to stop, so the footer does not offer c."""
    app = RgaApp(watch_dir=run_folder(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))
        await pilot.pause()
        keys = footer_keys(app)
        assert "c" not in keys and keys.get("s") == "Screenshot"


async def test_worker_error_shows_in_error_panel(tmp_path, fake_pipeline, no_discovery):
    fake_pipeline(fail="boom: out of memory")
    app = RgaApp(out_dir=tmp_path / "runs", in_process=True)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await start_live(app, pilot, tmp_path)
        await wait_for(pilot, lambda: screen.state.finished)
        await pilot.pause(0.3)
        panel = screen.query_one(ErrorPanel)
        assert panel.has_class("-visible") and panel.display
        assert "boom: out of memory" in screen_text(app)
        assert screen.state.stages["poison"].status == "failed"
        assert any("Traceback" in line.message for line in screen.state.logs)
        # the app is alive and answers keys
        await pilot.press("m")
        await pilot.pause()
        assert app.is_running and screen.split == "test_clean"


async def test_quit_asks_while_a_run_is_going(tmp_path, fake_pipeline, no_discovery):
    fake = fake_pipeline()
    app = RgaApp(out_dir=tmp_path / "runs", in_process=True)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await start_live(app, pilot, tmp_path)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is screen and not screen.source.stop.is_set()
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        assert screen.source.stop.is_set()
    assert fake.stop_seen.wait(5)
    assert not app.is_running


# --------------------------------------------------------------------------- home screen

async def test_r_pressed_while_the_presets_load_runs_the_preset_once_they_are_read(tmp_path, fake_pipeline, monkeypatch):
    """A key pressed as the app opens (a live demo: `rga-tui`, then r at once) is not lost: the
    run starts with the preset the home screen selects once discovery ends."""
    import threading

    from rga_tui.screens import home as home_mod

    release = threading.Event()
    real = home_mod.discover

    def slow_discover(dirs):
        release.wait(10)
        return real(dirs)

    monkeypatch.setattr(home_mod, "discover", slow_discover)
    fake = fake_pipeline()
    app = RgaApp(out_dir=tmp_path / "runs", preset=PRESET, in_process=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        assert app.screen.selected is None
        await pilot.press("r")
        assert not fake.calls
        release.set()
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.started)
        assert fake.calls[0]["cfg"].name == "demo-sst2-badnets"
        app.screen.action_cancel_run()
        await wait_for(pilot, lambda: app.screen.state.finished)


async def test_home_validates_overrides_and_starts_a_run(tmp_path, fake_pipeline):
    fake = fake_pipeline()
    run_folder(tmp_path / "runs")
    app = RgaApp(out_dir=tmp_path / "runs", preset=PRESET, in_process=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and app.screen.cfg is not None)
        home = app.screen
        assert home.selected.path.resolve() == PRESET.resolve()
        text = screen_text(app)
        assert "sst2-badnets" in text and "valid" in text
        tree = home.query_one("#preset-tree")
        labels = [str(n.label) for n in tree.root.children]
        assert "demo" in labels and any(lbl.startswith("past runs") for lbl in labels)
        assert [r.name for r in home.runs] == [RUN_NAME]
        assert 'dataset = "sst2"' in text  # the resolved TOML
        await pilot.click("#overrides")
        await pilot.press(*"train.")
        overrides = home.query_one("#overrides")
        overrides.value += "epochs=-1"
        await wait_for(pilot, lambda: home.cfg_error is not None)
        assert "train.epochs" in screen_text(app)
        overrides.value = "train.epochs=2 unlearn.eval_every=5"
        await wait_for(pilot, lambda: home.cfg is not None)
        assert home.cfg.train.epochs == 2 and home.cfg.unlearn.eval_every == 5
        await pilot.pause()
        assert "2 overrides" in screen_text(app)
        # the filters narrow the tree; a non-matching filter empties it
        # r runs the selected preset with the overrides, in <out_dir>/<name>-<timestamp>
        await pilot.press("escape")  # leave the input (r would be typed there)
        home.query_one("#preset-tree").focus()
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.started)
        call = fake.calls[0]
        assert call["cfg"].train.epochs == 2
        assert call["run_dir"].parent == tmp_path / "runs" and call["run_dir"].name.startswith("demo-sst2-badnets-")
        app.screen.action_cancel_run()
        await wait_for(pilot, lambda: app.screen.state.finished)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        # the filters narrow the tree; a non-matching filter empties it
        home.filters["dataset"] = "no-such-dataset"
        home.rebuild_tree()
        await pilot.pause()
        assert "no preset matches" in screen_text(app)


async def test_home_runs_the_baselines_picked_in_the_overrides(tmp_path, fake_pipeline):
    """The baselines are selectable in the app: unlearn.methods in the overrides box validates
    against the registry, and the run screen plans their stages under their display names."""
    fake = fake_pipeline()
    app = RgaApp(out_dir=tmp_path / "runs", preset=TINY, in_process=True)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and app.screen.cfg is not None)
        home = app.screen
        overrides = home.query_one("#overrides")
        overrides.value = 'unlearn.methods=["wga","nope"]'
        await wait_for(pilot, lambda: home.cfg_error is not None)
        assert "pure_ga" in home.cfg_error and "finetune" in home.cfg_error  # the allowed values
        overrides.value = 'unlearn.methods=["pure_ga","simnpo","wga","finetune"]'
        await wait_for(pilot, lambda: home.cfg is not None)
        home.query_one("#preset-tree").focus()
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.started)
        assert fake.calls[0]["cfg"].unlearn.methods == ["pure_ga", "simnpo", "wga", "finetune"]
        text = screen_text(app)
        for label in ("Pure GA", "SimNPO", "WGA", "Fine-tune"):
            assert label in text, label
        app.screen.action_cancel_run()
        await wait_for(pilot, lambda: app.screen.state.finished)


async def test_home_opens_a_past_run(tmp_path):
    run_folder(tmp_path / "runs")
    app = RgaApp(out_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and app.screen.presets)
        home = app.screen
        run = next(r for r in home.runs if r.name == RUN_NAME)
        assert run.status == "finished"
        home._select(run)
        home.action_run()
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.finished)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))


async def test_app_opens_on_the_recommended_demo_with_only_the_keys_that_apply(tmp_path):
    app = RgaApp(out_dir=tmp_path / "runs")
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and app.screen.cfg is not None, timeout=30)
        home = app.screen
        assert home.selected.name == "demo/sst2-badnets" and home.selected.recommended
        assert sum(p.recommended for p in home.presets) == 1
        text = screen_text(app)
        assert 'name = "minilm"' in text and "keep_layers = 0" in text
        # the tiny model's shape keys and AddSent's sentence do nothing for MiniLM + BadNets
        for key in ("hidden_size", "vocab_size", "pretrain_epochs", "sentence =", "lora_r"):
            assert key not in text, key


def test_fixture_events_parse():
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    assert all(json.loads(line)["type"] for line in lines)


async def test_live_run_in_a_child_process_cancels_cleanly(tmp_path, no_discovery):
    """The default live mode: `rga-tui run` in a child process, followed through its run folder;
    c sends it SIGINT, it finishes the step and writes what exists."""
    from rga_engine import config
    from rga_tui.screens.sources import ProcessSource

    cfg = config.load(TINY, ["data.train_limit=400", "data.test_limit=100", "train.epochs=50",
                               "model.max_length=32", "output.cache=false"])
    app = RgaApp(out_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        run_dir = tmp_path / "runs" / "child"
        screen = app.start_run(cfg, run_dir)
        assert isinstance(screen.source, ProcessSource)
        await wait_for(pilot, lambda: screen.state.stages.get("poison") is not None
                       and screen.state.stages["poison"].step > 0, timeout=60)
        await pilot.press("c")
        await wait_for(pilot, lambda: screen.source.done and screen.state.finished, timeout=60)
        await pilot.pause(0.3)
        assert screen.source.returncode == 130
        assert screen.state.stages["poison"].status == "cancelled"
        assert "cancelled" in screen_text(app)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "cancelled"
    assert (run_dir / "events.jsonl").is_file()


async def test_status_names_every_stage_running_side_by_side(tmp_path):
    """train.side_by_side: poisoning and Retrain run at once; the status line names both, and
    then the one still running when the other has finished."""
    from rga_tui.state import stage_label

    first = FIXTURE.read_text(encoding="utf-8").splitlines(keepends=True)[0]  # run_started
    assert '"run_started"' in first

    def ev(**fields):
        return json.dumps({"time": 1.0, **fields}) + "\n"

    lines = [first, ev(type="stage_started", stage="poison", total_steps=10),
             ev(type="stage_started", stage="retrain", total_steps=10),
             ev(type="step", stage="poison", step=1, loss=0.7), ev(type="step", stage="retrain", step=1, loss=0.7)]
    d = run_folder(tmp_path, lines)
    app = RgaApp(watch_dir=d)
    both = f"running {stage_label('poison')} ‖ {stage_label('retrain')}"
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.n_events == len(lines))
        await wait_for(pilot, lambda: both in screen_text(app))
        with (d / "events.jsonl").open("a", encoding="utf-8") as f:
            f.write(ev(type="stage_finished", stage="poison", metrics={}, seconds=1.0))
        await wait_for(pilot, lambda: f"running {stage_label('retrain')} (following)" in screen_text(app))
        assert both not in screen_text(app)


async def test_log_lines_wrap_to_the_panel_and_lose_no_word(tmp_path):
    """A log line longer than the Log panel wraps inside it, every word kept (RichLog's default
    min_width of 78 wrapped at 78 columns and cropped the rest of each row in a ~60-column panel),
    and is wrapped again when the panel changes width."""
    lines = FIXTURE.read_text(encoding="utf-8").splitlines(keepends=True)
    message = ("rga: L2 anchor on 103 encoder tensors, θ_base = the pre-trained weights; "
               "badnets: model.max_length = 64 cuts the trigger off 23 of the 750 triggered rows")
    first = json.loads(lines[0])
    lines.insert(1, json.dumps({"type": "log", "time": first["time"] + 1, "level": "info", "message": message}) + "\n")
    app = RgaApp(watch_dir=run_folder(tmp_path, lines))

    def logged(log) -> str:
        return " ".join(strip.text.strip() for strip in log.lines)

    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.finished)
        await pilot.pause()
        log = app.screen.query_one("#log")
        width = log.scrollable_content_region.width
        assert width < 78  # narrower than RichLog's default min_width: the case that cropped
        assert " ".join(message.split()) in " ".join(logged(log).split())
        assert max(strip.cell_length for strip in log.lines) <= width
        await pilot.resize_terminal(200, 50)
        await wait_for(pilot, lambda: log.scrollable_content_region.width > width)
        await pilot.pause()
        assert " ".join(message.split()) in " ".join(logged(log).split())
        assert max(strip.cell_length for strip in log.lines) <= log.scrollable_content_region.width


async def test_a_log_scale_loss_chart_survives_a_resize(tmp_path):
    """A finished run screen made wider and narrower keeps drawing its log-scale loss chart
    (plotext's build took the log of a log-scale series a second time when the chart was rendered
    at a new size before it had redrawn: the app died with "math domain error")."""
    app = RgaApp(watch_dir=run_folder(tmp_path))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.finished)
        await pilot.pause()
        assert "Loss (log)" in screen_text(app)
        for width in (200, 161, 190):
            await pilot.resize_terminal(width, 50)
            await pilot.pause(0.2)
            text = screen_text(app)
            assert isinstance(app.screen, RunScreen) and "Loss (log)" in text and "loss (log)" in text, width
    assert app.return_code in (None, 0)


async def test_home_filters_read_whole_in_80_columns(tmp_path):
    """At 80x24 each filter is ~14 columns: "dataset: any" wrapped and showed as "dataset:" (its
    second line hidden). The prompts fit, and a value longer than its box ends in "…" on one line."""
    from textual.widgets import Select

    app = RgaApp(out_dir=tmp_path / "runs", preset=PRESET, in_process=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and app.screen.cfg is not None)
        lines = screen_text(app).splitlines()
        assert "data: any" in lines[1] and "attack: any" in lines[1]
        assert "model: any" in lines[2] and "method: any" in lines[2]
        model = app.screen.query_one("#f-model", Select)
        longest = max((str(v) for _, v in model._options if v is not Select.NULL), key=len)
        assert len(longest) > 12, longest  # a model name wider than the box (hub names)
        model.value = longest
        await pilot.pause()
        await pilot.pause()
        lines = screen_text(app).splitlines()
        assert "…" in lines[2] and longest[:6] in lines[2]

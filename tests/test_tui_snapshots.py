"""SVG snapshots of the run screen replaying the fixture (pytest-textual-snapshot).

Deterministic: watch mode at speed 0 loads every event at once and every clock on the screen
(elapsed, ETA, log stamps) comes from the events' own times.  Update after an intended change:

    pytest tests/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rga_tui.app import RgaApp
from rga_tui.screens.run import RunScreen

FIXTURE = Path(__file__).parent / "fixtures" / "sst2_badnets_events.jsonl"
RUN_NAME = "demo-sst2-badnets-20260101-000000"


def fixture_app(tmp_path: Path) -> RgaApp:
    d = tmp_path / RUN_NAME
    d.mkdir(parents=True)
    shutil.copy(FIXTURE, d / "events.jsonl")
    return RgaApp(watch_dir=d)


async def loaded(pilot) -> None:
    app = pilot.app
    end = time.monotonic() + 10
    while not (isinstance(app.screen, RunScreen) and app.screen.state.finished):
        assert time.monotonic() < end, "the fixture did not load"
        await pilot.pause(0.05)
    await pilot.pause()


def test_run_screen_160x50(snap_compare, tmp_path):
    assert snap_compare(fixture_app(tmp_path), terminal_size=(160, 50), run_before=loaded)


def test_run_screen_80x24(snap_compare, tmp_path):
    assert snap_compare(fixture_app(tmp_path), terminal_size=(80, 24), run_before=loaded)


def test_run_screen_80x24_clean_matrices(snap_compare, tmp_path):
    async def toggle(pilot) -> None:
        await loaded(pilot)
        await pilot.press("m")

    assert snap_compare(fixture_app(tmp_path), terminal_size=(80, 24), run_before=toggle)

"""Regenerate the README screenshots from the events fixture (deterministic, no training).

    python docs/screenshots/make.py                          # replays tests/fixtures/sst2_badnets_events.jsonl
    python docs/screenshots/make.py runs/demo/events.jsonl   # a recorded run of your own

Writes run-160x50.svg, run-80x24.svg (the run screen replaying the events) and home-160x50.svg
(the preset picker, with that run listed) next to this file.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "sst2_badnets_events.jsonl"
PRESET = ROOT / "presets" / "demo" / "sst2-badnets.toml"
RUN_NAME = "demo-sst2-badnets-20260101-000000"


async def _until(pilot, cond, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SystemExit("timed out waiting for the app")
        await pilot.pause(0.05)
    await pilot.pause(0.2)


async def run_screen(runs: Path, size: tuple[int, int], name: str) -> Path:
    from rga_tui.app import RgaApp
    from rga_tui.screens.run import RunScreen

    app = RgaApp(watch_dir=runs / RUN_NAME)
    async with app.run_test(size=size) as pilot:
        await _until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.finished)
        return Path(app.save_screenshot(filename=name, path=str(HERE)))


async def home_screen(runs: Path, size: tuple[int, int], name: str) -> Path:
    from rga_tui.app import RgaApp
    from rga_tui.screens.home import HomeScreen

    app = RgaApp(out_dir=runs, preset=PRESET)
    async with app.run_test(size=size) as pilot:
        await _until(pilot, lambda: isinstance(app.screen, HomeScreen) and app.screen.cfg is not None)
        return Path(app.save_screenshot(filename=name, path=str(HERE)))


async def main(events: Path) -> None:
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # so that the home screen lists the run folder as plain "runs"
        runs = Path("runs")
        (runs / RUN_NAME).mkdir(parents=True)
        shutil.copy(events, runs / RUN_NAME / "events.jsonl")
        made = [
            await run_screen(runs, (160, 50), "run-160x50.svg"),
            await run_screen(runs, (80, 24), "run-80x24.svg"),
            await home_screen(runs, (160, 50), "home-160x50.svg"),
        ]
        os.chdir(ROOT)
    for p in made:
        print(f"wrote {p.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else FIXTURE))

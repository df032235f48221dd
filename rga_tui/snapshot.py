"""A picture of a finished run: the run screen's final state as SVG, saved into the run folder.

``rga-tui run`` calls :func:`save_run_svg` at the end (so a headless run on a server leaves
something to look at, the same picture ``s`` saves in the app).  The run screen is rendered
off-screen by Textual's test driver from the run folder's ``events.jsonl``; Textual is imported
here, only once the run is over.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

__all__ = ["SVG_NAME", "save_run_svg"]

SVG_NAME = "result.svg"


async def _shoot(run_dir: Path, size: tuple[int, int], name: str, timeout: float) -> Path:
    from rga_tui.app import RgaApp
    from rga_tui.screens.run import RunScreen

    app = RgaApp(watch_dir=run_dir)
    async with app.run_test(size=size) as pilot:
        end = time.monotonic() + timeout
        while not (isinstance(app.screen, RunScreen) and app.screen.source.done and app.screen.state.finished):
            if time.monotonic() > end:
                raise TimeoutError(f"the run screen did not settle in {timeout:.0f} s")
            await pilot.pause(0.05)
        await pilot.pause(0.3)  # one more tick: every widget redrawn from the final state
        return Path(app.save_screenshot(filename=name, path=str(run_dir)))


def save_run_svg(run_dir: str | Path, size: tuple[int, int] = (160, 50), name: str = SVG_NAME,
                 timeout: float = 60.0) -> Path | None:
    """Render ``run_dir``'s run screen (final state) to ``run_dir/name``; None without events."""
    run_dir = Path(run_dir)
    if not (run_dir / "events.jsonl").is_file():
        return None
    return asyncio.run(_shoot(run_dir, size, name, timeout))

"""The Textual app: home screen (preset picker, past runs) → live run screen; or watch a run folder.

``RgaApp(presets_dirs, out_dir, watch_dir, speed, preset)`` is what ``rga-tui`` (cli.py) builds,
then ``app.run(mouse=...)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from textual.app import App
from textual.binding import Binding

from rga_tui.screens.home import HomeScreen
from rga_tui.screens.run import RunScreen
from rga_tui.screens.sources import FileSource, PipelineSource, ProcessSource


class RgaApp(App):
    """Backdoor unlearning, live: watch GA shift the trigger and RGA not."""

    CSS_PATH = "app.tcss"
    TITLE = "rga-tui"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        presets_dirs: Iterable[Path] = (),
        out_dir: Path = Path("runs"),
        watch_dir: Path | None = None,
        speed: float = 0.0,
        preset: Path | None = None,
        in_process: bool = False,
    ) -> None:
        super().__init__()
        # live runs go to a child process (`rga-tui run`) unless in_process (a thread worker;
        # the tests use it with a stand-in pipeline)
        self.in_process = in_process
        self.presets_dirs = [Path(p) for p in presets_dirs]
        self.out_dir = Path(out_dir)
        self.watch_dir = Path(watch_dir) if watch_dir is not None else None
        self.speed = float(speed or 0.0)
        self.preset = Path(preset) if preset is not None else None
        self.home: HomeScreen | None = None

    def on_mount(self) -> None:
        if self.watch_dir is not None:
            self.push_screen(RunScreen(FileSource(self.watch_dir, self.speed)))
        else:
            self.push_screen(self._home())

    # ------------------------------------------------------------------ navigation
    def _home(self) -> HomeScreen:
        self.home = HomeScreen(self.presets_dirs, self.out_dir, self.preset,
                               on_start=self.start_run, on_open=self.open_run)
        return self.home

    def go_home(self) -> None:
        """Back from a run screen: to the home screen below it, or a fresh one (watch mode)."""
        if self.home is not None and self.home in self.screen_stack:
            while self.screen is not self.home:
                self.pop_screen()
            self.home.refresh_runs()
        else:
            self.switch_screen(self._home())

    def start_run(self, cfg: Any, run_dir: Path) -> RunScreen:
        """Run a resolved preset in a thread worker and show it live."""
        source = PipelineSource(cfg, run_dir) if self.in_process else ProcessSource(cfg, run_dir)
        screen = RunScreen(source)
        self.push_screen(screen)
        return screen

    def open_run(self, run_dir: Path, speed: float | None = None) -> RunScreen:
        """Open a run folder (replay at ``speed``, default the app's; follows it if still written)."""
        screen = RunScreen(FileSource(run_dir, self.speed if speed is None else speed))
        self.push_screen(screen)
        return screen

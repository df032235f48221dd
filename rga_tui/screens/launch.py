"""What the home screen does with its selection (r, Enter, the Run button): open a past run, or
start the preset's validated Config in a new run folder, asking first when the model would run its
own code."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from rga_tui.past_runs import RunInfo


def new_run_dir(cfg: Any, out_dir: Path) -> Path:
    """``<out_dir>/<name>-<timestamp>`` (the folder name from the pipeline's own rule when it has one)."""
    name = None
    pipeline = sys.modules.get("rga_engine.pipeline")  # only when already imported (torch is slow)
    rule = getattr(pipeline, "default_run_dir", None)
    if rule is not None:
        try:
            name = Path(rule(cfg)).name
        except Exception:  # noqa: BLE001
            name = None
    if not name:
        name = f"{str(cfg.name).replace('/', '-')}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    path = out_dir / name
    i = 2
    while path.exists():
        path = out_dir / f"{name}-{i}"
        i += 1
    return path


def remote_code_question(cfg: Any) -> str:
    return (f"{cfg.name} sets model.trust_remote_code = true: {cfg.model.name!r} would run its own "
            f"Python code on this machine. Run it only if you trust that model. Run it?")


class SelectionLauncher:
    """Mixin of :class:`~rga_tui.screens.home.HomeScreen`: ``action_run`` and what it calls.

    The screen provides ``selected``, ``preview()`` (which sets ``cfg`` / ``cfg_error``),
    ``out_dir``, the ``on_start`` / ``on_open`` callbacks, ``_loading`` / ``_run_when_loaded``, and
    Textual's ``notify`` and ``app``."""

    def action_run(self) -> None:
        item = self.selected
        if item is None and self._loading:  # a key pressed as the app opens is not lost
            self._run_when_loaded = True
            self.notify("Loading the presets: the run starts when they are read.")
            return
        if item is None:
            self.notify("Pick a preset first.", severity="warning")
            return
        if isinstance(item, RunInfo):
            if self.on_open is not None:
                self.on_open(item.path)
            return
        self.preview()
        if self.cfg is None:
            self.notify(f"Cannot run: {self.cfg_error}", severity="error", timeout=6)
            return
        cfg = self.cfg
        if cfg.model.trust_remote_code:
            self._confirm_remote_code(cfg)
            return
        self._start(cfg)

    def _start(self, cfg: Any) -> None:
        run_dir = new_run_dir(cfg, self.out_dir)
        if self.on_start is not None:
            self.on_start(cfg, run_dir)

    def _confirm_remote_code(self, cfg: Any) -> None:
        """``model.trust_remote_code = true`` runs Python files that come with the model: only
        after the user says yes here (the app's ``--trust-remote-code``)."""
        from rga_tui.screens.modals import ConfirmScreen

        def answer(yes: bool | None) -> None:
            if yes:
                self._start(cfg)
            else:
                self.notify("Not started: the preset needs model.trust_remote_code.", severity="warning")

        self.app.push_screen(ConfirmScreen(remote_code_question(cfg), yes="Run it", no="Cancel"), answer)

"""Drive the real app in a real terminal: tmux at a fixed size, keys sent, the pane read back.

Used by ``tests/test_tui_tmux.py`` (a short run) and ``scripts/tmux_demo.py`` (the full demo).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from typing import Callable


def have_tmux() -> bool:
    return shutil.which("tmux") is not None


class Tmux:
    """One detached tmux session running ``command`` at ``width``×``height``."""

    def __init__(self, command: list[str], width: int = 160, height: int = 50, env: dict | None = None,
                 name: str | None = None) -> None:
        self.name = name or f"rga-{os.getpid()}-{int(time.time() * 1000) % 100000}"
        self.socket = f"rga-test-{os.getpid()}"  # a private server: never touches the user's tmux
        environ = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor", **(env or {})}
        # the pane's size is the app's size (COLUMNS/LINES also come from pytest-xdist's workers and
        # would win over it; scripts/tmux_demo.py uses this driver outside pytest too)
        for var in ("TMUX", "COLUMNS", "LINES"):
            environ.pop(var, None)
        # keep the pane after the app exits, so a crash can still be read
        self._tmux("new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                   shlex.join(command) + "; echo '[app exited]' $?; sleep 600", env=environ)

    def _tmux(self, *args: str, env: dict | None = None) -> str:
        res = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, env=env)
        if res.returncode != 0 and args[0] != "kill-server":
            raise RuntimeError(f"tmux {args[0]}: {res.stderr.strip()}")
        return res.stdout

    def pane(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name)

    def keys(self, *keys: str, literal: bool = False, pause: float = 0.15) -> None:
        for k in keys:
            self._tmux("send-keys", "-t", self.name, *(["-l", k] if literal else [k]))
            time.sleep(pause)

    def type(self, text: str) -> None:
        self.keys(text, literal=True)

    def wait_for(self, what: str | Callable[[str], bool], timeout: float = 60.0, every: float = 0.5) -> str:
        """Poll the pane until it contains ``what`` (or ``what(pane)`` is true); return the pane."""
        test = (lambda p: what in p) if isinstance(what, str) else what
        t0 = time.monotonic()
        while True:
            pane = self.pane()
            if test(pane):
                return pane
            if "[app exited]" in pane:
                raise RuntimeError(f"the app exited while waiting for {what!r}:\n{pane}")
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"waited {timeout:.0f} s for {what!r}; the pane shows:\n{pane}")
            time.sleep(every)

    def close(self) -> None:
        self._tmux("kill-server")

    def __enter__(self) -> "Tmux":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def header(pane: str) -> str:
    """The home screen's preview title (top right): the highlighted preset's name."""
    first = pane.splitlines()[0] if pane else ""
    return first.split("│")[-1].split("╮")[-1].strip()


def select_preset(tmux: Tmux, name: str, max_moves: int = 60) -> str:
    """Move down the preset tree, as a person would, until ``name`` is highlighted.

    First wait until the presets are listed (the app then highlights the recommended one by
    itself): a Down pressed while they load would land after that and move past it."""
    tmux.wait_for("▼ demo", timeout=60)
    time.sleep(1.0)
    for _ in range(max_moves):
        pane = tmux.pane()
        if header(pane) == name:
            return pane
        tmux.keys("Down", pause=0.25)
    raise RuntimeError(f"{name} never got highlighted; the pane shows:\n{tmux.pane()}")

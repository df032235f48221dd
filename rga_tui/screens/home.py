"""The home screen: presets by folder, four filters, the resolved TOML, overrides, past runs.

The two panes are widgets (:mod:`rga_tui.widgets.presets`); this screen holds the selection and
its validated Config, and starts or opens what is selected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Select, Static, Tree

from rga_tui.past_runs import RunInfo, list_runs
from rga_tui.screens.launch import SelectionLauncher
from rga_tui.widgets.presets import FILTERS, PresetPanel, PresetPicker, PresetTree


# --------------------------------------------------------------------------- data

def discover(extra_dirs: list[Path]) -> list[Any]:
    from rga_tui.presets import discover_presets

    return discover_presets(extra_dirs)


def find_presets(presets_dirs: list[Path], initial: Path | None) -> tuple[list[Any], str | None]:
    """The presets under ``presets_dirs`` and discovery's error, if any; ``initial``, a preset file
    outside them, comes first in the group "file"."""
    try:
        presets = discover(presets_dirs)
        error = None
    except Exception as e:  # noqa: BLE001
        presets, error = [], f"{type(e).__name__}: {e}"
    if initial is not None:
        real = initial.resolve()
        if not any(Path(p.path).resolve() == real for p in presets):
            from rga_tui.presets import load_info

            info = load_info(initial, initial.stem)
            info.group = "file"
            presets = [info, *presets]
    return presets, error


# --------------------------------------------------------------------------- screen

class HomeScreen(SelectionLauncher, Screen):
    BINDINGS = [
        Binding("r", "run", "Run preset"),
        Binding("o", "overrides", "Overrides"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit_app", "Quit"),
        Binding("f5", "reload", "Reload"),
    ]

    def __init__(self, presets_dirs: list[Path], out_dir: Path, preset: Path | None = None,
                 on_start: Callable[[Any, Path], None] | None = None,
                 on_open: Callable[[Path], None] | None = None) -> None:
        super().__init__()
        self.presets_dirs = list(presets_dirs)
        self.out_dir = Path(out_dir)
        self.initial = Path(preset) if preset is not None else None
        self.on_start = on_start
        self.on_open = on_open
        self.presets: list[Any] = []
        self.runs: list[RunInfo] = []
        self.filters: dict[str, Any] = {k: None for k in FILTERS}
        self.selected: Any = None  # PresetInfo | RunInfo | None
        self.cfg: Any = None  # the validated Config of the selection, None when invalid
        self.cfg_error: str | None = None
        self._preview_timer = None
        self._loading = True  # the first discovery is still going
        self._run_when_loaded = False  # r pressed before it ended: run what it selects

    def compose(self) -> ComposeResult:
        with Horizontal(id="home"):
            yield PresetPicker(id="home-left")
            yield PresetPanel(id="home-right")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#preset-tree").focus()
        self.load_presets()

    # ------------------------------------------------------------------ discovery
    @work(thread=True, exclusive=True, group="discover")
    def load_presets(self) -> None:
        presets, error = find_presets(self.presets_dirs, self.initial)
        runs = list_runs(self.out_dir)
        self.app.call_from_thread(self._loaded, presets, runs, error)

    def action_reload(self) -> None:
        self.load_presets()

    def _loaded(self, presets: list[Any], runs: list[RunInfo], error: str | None) -> None:
        self.presets = presets
        self.runs = runs
        self.query_one(PresetPicker).set_filter_options(presets)
        if error:
            self.query_one("#preset-title", Static).update(Text(f"preset discovery failed: {error}", style="red"))
        self.rebuild_tree()
        self._loading = False
        if self._run_when_loaded:
            self._run_when_loaded = False
            self.action_run()

    def rebuild_tree(self) -> None:
        tree = self.query_one("#preset-tree", PresetTree)
        node = tree.fill(self.presets, self.runs, filters=self.filters, previous=self.selected,
                         initial=self.initial, out_dir=self.out_dir)
        if node is not None:
            self._select(node.data[1])
            self.call_after_refresh(lambda: tree.move_cursor(node))
        else:
            self._select(None)

    # ------------------------------------------------------------------ selection / preview
    def on_select_changed(self, event: Select.Changed) -> None:
        key = (event.select.id or "").removeprefix("f-")
        if key in self.filters:
            self.filters[key] = None if event.value is Select.NULL else event.value
            if self.presets:
                self.rebuild_tree()

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        data = event.node.data
        self._select(data[1] if data else None)

    def on_preset_tree_activated(self, event: PresetTree.Activated) -> None:
        data = event.node.data
        if data:
            self._select(data[1])
            self.action_run()

    def _select(self, item: Any) -> None:
        self.selected = item
        self.preview()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "overrides":
            if self._preview_timer is not None:
                self._preview_timer.stop()
            self._preview_timer = self.set_timer(0.25, self.preview)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "overrides":
            self.preview()
            self.action_run()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "run-button":
            self.action_run()

    @property
    def overrides(self) -> list[str]:
        return self.query_one(PresetPanel).overrides

    def preview(self) -> None:
        """Resolve the selected preset with the overrides; show the TOML or the ConfigError."""
        self.cfg, self.cfg_error = self.query_one(PresetPanel).preview(self.selected)

    # ------------------------------------------------------------------ actions
    def action_overrides(self) -> None:
        self.query_one("#overrides", Input).focus()

    def action_help(self) -> None:
        from rga_tui.screens.modals import HelpScreen

        self.app.push_screen(HelpScreen())

    def action_quit_app(self) -> None:
        self.app.exit()

    def refresh_runs(self) -> None:
        self.runs = list_runs(self.out_dir)
        if self.presets or self.runs:
            self.rebuild_tree()

"""The home screen: presets by folder, four filters, the resolved TOML, overrides, past runs."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static, Tree
from textual.widgets.tree import TreeNode

from rga_tui.safe_text import printable
from rga_tui.state import split_overrides

FILTERS = ("dataset", "attack", "model", "methods")


# --------------------------------------------------------------------------- data

def discover(extra_dirs: list[Path]) -> list[Any]:
    from rga_tui.presets import discover_presets

    return discover_presets(extra_dirs)


@dataclass
class RunInfo:
    path: Path
    name: str
    status: str
    mtime: float


def _has_finished(events_file: Path) -> bool:
    """Whether the last part of an events.jsonl holds a run_finished event (cheap: reads the tail)."""
    try:
        with events_file.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 65536))
            return b'"run_finished"' in f.read()
    except OSError:
        return False


def list_runs(out_dir: Path) -> list[RunInfo]:
    """Run folders (with an events.jsonl) under ``out_dir``, newest first."""
    runs = []
    if not out_dir.is_dir():
        return runs
    from rga_engine.runinfo import effective_status, process_alive, writer_from_events

    for ev in out_dir.glob("*/events.jsonl"):
        d = ev.parent
        status = "partial"
        summ = d / "summary.json"
        if summ.is_file():
            try:
                summary = json.loads(summ.read_text(encoding="utf-8"))
                status = (effective_status(summary) if isinstance(summary, dict) else "") or "finished"
            except (OSError, ValueError):
                status = "?"
        elif _has_finished(ev):
            status = "finished"
        elif process_alive(writer_from_events(ev)) is False:
            status = "stopped"  # died before its first summary (while loading the data)
        try:
            mtime = ev.stat().st_mtime
        except OSError:
            mtime = 0.0
        runs.append(RunInfo(d, d.name, status, mtime))
    runs.sort(key=lambda r: (-r.mtime, r.name))
    return runs


def matches(info: Any, filters: dict[str, Any]) -> bool:
    for key, want in filters.items():
        if want is None or want is Select.NULL:
            continue
        if key == "methods":
            if want not in (info.methods or []):
                return False
        elif getattr(info, key, None) != want:
            return False
    return True


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


# --------------------------------------------------------------------------- widgets

class PresetTree(Tree):
    """Enter runs the highlighted preset (or opens a run); a click only highlights."""

    BINDINGS = [Binding("enter", "activate", "Run / open", show=True)]

    class Activated(Message):
        def __init__(self, node: TreeNode) -> None:
            super().__init__()
            self.node = node

    def action_activate(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.data is None:
            node.toggle()
        else:
            self.post_message(self.Activated(node))

    def fill(self, presets: list[Any], runs: list[RunInfo], *, filters: dict[str, Any], previous: Any,
             initial: Path | None, out_dir: Path) -> TreeNode | None:
        """Presets by group (those matching ``filters``), then the past runs; returns the node to
        select: the previous selection, else the initial preset, else the recommended demo, else
        the first preset or run."""
        self.clear()
        groups: dict[str, TreeNode] = {}
        target_node = None
        shown = 0
        for p in presets:
            if not matches(p, filters):
                continue
            group = p.group or "presets"
            node = groups.get(group)
            if node is None:
                node = groups[group] = self.root.add(Text(group, style="bold"), expand=False)
            leaf_name = p.name.split("/", 1)[1] if "/" in p.name and p.group else p.name
            label = Text(printable(leaf_name))
            if p.error:
                label.append("  ✖ error", style="red")
            leaf = node.add_leaf(label, data=("preset", p))
            shown += 1
            if target_node is None:
                if previous is not None and isinstance(previous, type(p)) and Path(previous.path) == Path(p.path):
                    target_node = leaf
                elif previous is None and initial is not None and \
                        Path(p.path).resolve() == initial.resolve():
                    target_node = leaf
        if not shown:
            self.root.add_leaf(Text("no preset matches the filters", style="dim"))
        if runs:
            runs_node = self.root.add(Text(f"past runs ({out_dir})", style="bold"), expand=True)
            icon = {"finished": ("✔", "green"), "cancelled": ("■", "yellow"), "error": ("✖", "red"),
                    "partial": ("…", "dim"), "running": ("▶", "cyan"), "stopped": ("■", "yellow")}
            for r in runs:
                mark, style = icon.get(r.status, ("•", "dim"))
                label = Text(f"{mark} ", style=style)
                label.append(printable(r.name))
                leaf = runs_node.add_leaf(label, data=("run", r))
                if isinstance(previous, RunInfo) and previous.path == r.path:
                    target_node = leaf
        if target_node is None and previous is None and initial is None:
            # a fresh app opens on the recommended demo (``recommended = true`` in its preset)
            target_node = next((n for g in groups.values() for n in g.children
                                if n.data and getattr(n.data[1], "recommended", False)), None)
        if target_node is None:
            target_node = next((n for g in groups.values() for n in g.children), None)
        if target_node is None and runs:
            target_node = self.root.children[-1].children[0]
        # open the demo presets, the group of the selection, and every group while filtering
        filtering = any(v is not None for v in filters.values())
        for name, node in groups.items():
            if filtering or name in ("demo", "presets", "file") or len(groups) == 1 or \
                    (target_node is not None and target_node.parent is node):
                node.expand()
        return target_node


class HomeScreen(Screen):
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
            with Vertical(id="home-left"):
                with Horizontal(id="filters-1", classes="filters"):
                    yield Select([], prompt="data: any", id="f-dataset", compact=True)
                    yield Select([], prompt="attack: any", id="f-attack", compact=True)
                with Horizontal(id="filters-2", classes="filters"):
                    yield Select([], prompt="model: any", id="f-model", compact=True)
                    yield Select([], prompt="method: any", id="f-methods", compact=True)
                tree: PresetTree = PresetTree("presets", id="preset-tree")
                tree.show_root = False
                tree.guide_depth = 2
                yield tree
            with Vertical(id="home-right"):
                yield Static(Text("loading presets…", style="dim"), id="preset-title")
                with VerticalScroll(id="toml-box"):
                    yield Static("", id="toml")
                with Horizontal(id="run-row"):
                    yield Label("Overrides: section.key=value … (Enter runs)", id="overrides-label")
                    yield Button("▶ Run (r)", id="run-button", variant="success", compact=True)
                yield Input(placeholder='e.g. unlearn.epochs=5 methods.rga.alpha=1.5 unlearn.methods=["rga","wga"]',
                            id="overrides", compact=True)
                yield Static("", id="validation")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#toml-box").border_title = "Resolved preset"
        self.query_one("#home-left").border_title = "Presets & runs"
        self.query_one("#preset-tree").focus()
        self.load_presets()

    # ------------------------------------------------------------------ discovery
    @work(thread=True, exclusive=True, group="discover")
    def load_presets(self) -> None:
        try:
            presets = discover(self.presets_dirs)
            error = None
        except Exception as e:  # noqa: BLE001
            presets, error = [], f"{type(e).__name__}: {e}"
        if self.initial is not None:
            real = self.initial.resolve()
            if not any(Path(p.path).resolve() == real for p in presets):
                from rga_tui.presets import load_info

                info = load_info(self.initial, self.initial.stem)
                info.group = "file"
                presets = [info, *presets]
        runs = list_runs(self.out_dir)
        self.app.call_from_thread(self._loaded, presets, runs, error)

    def action_reload(self) -> None:
        self.load_presets()

    def _loaded(self, presets: list[Any], runs: list[RunInfo], error: str | None) -> None:
        self.presets = presets
        self.runs = runs
        for key in FILTERS:
            values = sorted({m for p in presets for m in (p.methods or [])} if key == "methods"
                            else {getattr(p, key) for p in presets if getattr(p, key, "")})
            sel = self.query_one(f"#f-{key}", Select)
            current = sel.value
            sel.set_options([(v, v) for v in values])
            if current in values:
                sel.value = current
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
        return split_overrides(self.query_one("#overrides", Input).value)

    def preview(self) -> None:
        """Resolve the selected preset with the overrides; show the TOML or the ConfigError."""
        title = self.query_one("#preset-title", Static)
        toml = self.query_one("#toml", Static)
        valid = self.query_one("#validation", Static)
        item = self.selected
        self.cfg, self.cfg_error = None, None
        if item is None:
            title.update(Text("no preset selected", style="dim"))
            toml.update("")
            valid.update("")
            return
        if isinstance(item, RunInfo):
            head = Text(printable(item.name), style="bold")
            head.append(f"  run · {item.status} · Enter opens it", style="dim")
            title.update(head)
            cfg_path = item.path / "config.toml"
            try:
                text = cfg_path.read_text(encoding="utf-8", errors="replace") if cfg_path.is_file() \
                    else "# no config.toml in this run"
            except OSError as e:
                text = f"# cannot read config.toml: {e}"
            text = printable(text, keep="\n\t")
            toml.update(Syntax(text, "toml", theme="ansi_dark", background_color="default", word_wrap=True))
            valid.update(Text("replay: Enter", style="dim"))
            return
        head = Text(printable(item.name), style="bold")
        if item.description:  # from the preset file: its control characters are shown, not obeyed
            head.append("\n" + printable(item.description), style="dim")
        title.update(head)
        try:
            from rga_engine import config

            # a trust_remote_code preset is shown; running it asks first (action_run)
            cfg = config.load(item.path, self.overrides, allow_remote_code=True)
        except Exception as e:  # noqa: BLE001 - ConfigError and anything else: show, never crash
            self.cfg_error = printable(str(e) or type(e).__name__)
            raw = ""
            try:
                raw = printable(Path(item.path).read_text(encoding="utf-8", errors="replace"), keep="\n\t")
            except OSError:
                pass
            toml.update(Syntax(raw, "toml", theme="ansi_dark", background_color="default", word_wrap=True))
            valid.update(Text(f"✖ {self.cfg_error}", style="bold red"))
            return
        self.cfg = cfg
        try:
            text = printable(cfg.to_display_toml(), keep="\n\t")
        except Exception as e:  # noqa: BLE001
            text = printable(f"# could not render the resolved preset: {e}")
        toml.update(Syntax(text, "toml", theme="ansi_dark", background_color="default", word_wrap=True))
        n = len(self.overrides)
        msg = Text("✔ valid", style="bold green")
        msg.append(f" · {cfg.data.dataset}/{cfg.attack.name}/{cfg.model.name} · "
                   f"{','.join(cfg.unlearn.methods)}" + (f" · {n} override{'s' * (n != 1)}" if n else ""),
                   style="dim")
        if cfg.model.trust_remote_code:
            msg.append("\n⚠ model.trust_remote_code: runs the model's own Python code (asks before it starts)",
                       style="bold #ffb86c")
        valid.update(msg)

    # ------------------------------------------------------------------ actions
    def action_overrides(self) -> None:
        self.query_one("#overrides", Input).focus()

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

        question = (f"{cfg.name} sets model.trust_remote_code = true: {cfg.model.name!r} would run its own "
                    f"Python code on this machine. Run it only if you trust that model. Run it?")
        self.app.push_screen(ConfirmScreen(question, yes="Run it", no="Cancel"), answer)

    def action_help(self) -> None:
        from rga_tui.screens.modals import HelpScreen

        self.app.push_screen(HelpScreen())

    def action_quit_app(self) -> None:
        self.app.exit()

    def refresh_runs(self) -> None:
        self.runs = list_runs(self.out_dir)
        if self.presets or self.runs:
            self.rebuild_tree()

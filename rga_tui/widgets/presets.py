"""The home screen's two panes: the preset picker (four filters over the tree of presets and past
runs) and the preset panel (the selection resolved with the overrides, or a past run's config)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static, Tree
from textual.widgets.tree import TreeNode

from rga_tui.past_runs import RunInfo
from rga_tui.safe_text import printable
from rga_tui.state import split_overrides

FILTERS = ("dataset", "attack", "model", "methods")


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


# --------------------------------------------------------------------------- left pane

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


class PresetPicker(Vertical):
    """The home screen's left pane: the four filters (``#f-<key>`` for each key of ``FILTERS``)
    over the :class:`PresetTree`. Their ``Select.Changed`` and the tree's messages bubble up."""

    def compose(self) -> ComposeResult:
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

    def on_mount(self) -> None:
        self.border_title = "Presets & runs"

    def set_filter_options(self, presets: list[Any]) -> None:
        """Each filter offers the values the presets have; a chosen value still offered stays."""
        for key in FILTERS:
            values = sorted({m for p in presets for m in (p.methods or [])} if key == "methods"
                            else {getattr(p, key) for p in presets if getattr(p, key, "")})
            sel = self.query_one(f"#f-{key}", Select)
            current = sel.value
            sel.set_options([(v, v) for v in values])
            if current in values:
                sel.value = current


# --------------------------------------------------------------------------- right pane

def toml_view(text: str) -> Syntax:
    return Syntax(text, "toml", theme="ansi_dark", background_color="default", word_wrap=True)


def run_heading(run: RunInfo) -> Text:
    head = Text(printable(run.name), style="bold")
    head.append(f"  run · {run.status} · Enter opens it", style="dim")
    return head


def run_config_text(run: RunInfo) -> str:
    """A past run's config.toml (or a comment saying why there is none), printable."""
    cfg_path = run.path / "config.toml"
    try:
        text = cfg_path.read_text(encoding="utf-8", errors="replace") if cfg_path.is_file() \
            else "# no config.toml in this run"
    except OSError as e:
        text = f"# cannot read config.toml: {e}"
    return printable(text, keep="\n\t")


def preset_heading(info: Any) -> Text:
    head = Text(printable(info.name), style="bold")
    if info.description:  # from the preset file: its control characters are shown, not obeyed
        head.append("\n" + printable(info.description), style="dim")
    return head


def preset_file_text(path: Path) -> str:
    """The preset file as written (shown when it does not resolve), printable; "" if unreadable."""
    try:
        return printable(Path(path).read_text(encoding="utf-8", errors="replace"), keep="\n\t")
    except OSError:
        return ""


def resolved_toml(cfg: Any) -> str:
    try:
        return printable(cfg.to_display_toml(), keep="\n\t")
    except Exception as e:  # noqa: BLE001
        return printable(f"# could not render the resolved preset: {e}")


def valid_verdict(cfg: Any, n_overrides: int) -> Text:
    from rga_engine import config

    n = n_overrides
    msg = Text("✔ valid", style="bold green")
    msg.append(f" · {config.what_runs(cfg)} · "
               f"{','.join(cfg.unlearn.methods)}" + (f" · {n} override{'s' * (n != 1)}" if n else ""),
               style="dim")
    if cfg.model.trust_remote_code:
        msg.append("\n⚠ model.trust_remote_code: runs the model's own Python code (asks before it starts)",
                   style="bold #ffb86c")
    return msg


class PresetPanel(Vertical):
    """The home screen's right pane: the selection's title, its resolved TOML, the overrides box
    with the run button, and the verdict. The Input's and Button's messages bubble up."""

    def compose(self) -> ComposeResult:
        yield Static(Text("loading presets…", style="dim"), id="preset-title")
        with VerticalScroll(id="toml-box"):
            yield Static("", id="toml")
        with Horizontal(id="run-row"):
            yield Label("Overrides: section.key=value … (Enter runs)", id="overrides-label")
            yield Button("▶ Run (r)", id="run-button", variant="success", compact=True)
        yield Input(placeholder='e.g. unlearn.epochs=5 methods.rga.alpha=1.5 unlearn.methods=["rga","wga"]',
                    id="overrides", compact=True)
        yield Static("", id="validation")

    def on_mount(self) -> None:
        self.query_one("#toml-box").border_title = "Resolved preset"

    @property
    def overrides(self) -> list[str]:
        return split_overrides(self.query_one("#overrides", Input).value)

    def show(self, title: Text, toml: str | None, verdict: Text | str) -> None:
        """Title, TOML (``None``: empty) and verdict lines."""
        self.query_one("#preset-title", Static).update(title)
        self.query_one("#toml", Static).update("" if toml is None else toml_view(toml))
        self.query_one("#validation", Static).update(verdict)

    def preview(self, item: Any) -> tuple[Any, str | None]:
        """Show ``item`` (a preset resolved with the overrides, a :class:`RunInfo`'s config.toml,
        or ``None``); return the preset's validated Config, or None and the error shown for it
        ((None, None) for a run or no selection)."""
        if item is None:
            self.show(Text("no preset selected", style="dim"), None, "")
            return None, None
        if isinstance(item, RunInfo):
            self.show(run_heading(item), run_config_text(item), Text("replay: Enter", style="dim"))
            return None, None
        try:
            from rga_engine import config

            # a trust_remote_code preset is shown; running it asks first (HomeScreen.action_run)
            cfg = config.load(item.path, self.overrides, allow_remote_code=True)
        except Exception as e:  # noqa: BLE001 - ConfigError and anything else: show, never crash
            error = printable(str(e) or type(e).__name__)
            self.show(preset_heading(item), preset_file_text(item.path), Text(f"✖ {error}", style="bold red"))
            return None, error
        self.show(preset_heading(item), resolved_toml(cfg), valid_verdict(cfg, len(self.overrides)))
        return cfg, None

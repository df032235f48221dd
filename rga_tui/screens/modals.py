"""Small modal screens: the help page and the quit confirmation."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

HELP_KEYS = [
    ("Home", [
        ("↑ ↓ / Enter", "browse presets; Enter runs the highlighted preset or opens a run"),
        ("r / o", "run the highlighted preset / type overrides (Enter runs)"),
        ("Tab", "move between filters, the preset tree and the overrides box"),
        ("overrides", "section.key=value, several separated by spaces or one per line"),
    ]),
    ("Run", [
        ("m", "matrices: triggered test set ⇄ clean test set"),
        ("c", "cancel the run (finishes the current step, keeps what is done)"),
        ("s", "save an SVG screenshot into the run folder"),
        ("1-5", "tabs on a small terminal: Matrices, Curves, Table, Log, Detection"),
        ("Esc", "back to the presets"),
    ]),
    ("Anywhere", [
        ("?", "this help"),
        ("q", "quit (asks first while a run is going)"),
    ]),
]

READING = (
    "Each matrix: rows are the actual class, columns the predicted class, on the test set with the "
    "trigger inserted (m: clean). Cell colour grows with the share of the row: green on the "
    "diagonal, red off it. Verdicts: ✖ backdoor remains (the trigger still sends inputs to the "
    "target), ⚠ trigger shifted → class (unlearning re-attached the trigger elsewhere: what GA "
    "does), ◐ backdoor partly remains (ASR more than 10 points over Retrain's; ASR also counts "
    "rows the model sends to the target without the trigger: m shows whether its clean rows lean "
    "the same way), ✔ backdoor "
    "removed (what RGA should give, like Retrain), ⊘ predicts one class for everything (the "
    "model collapsed)."
)

CHARTS = (
    "Loss chart: each unlearning method's forget loss (line) and retain loss (dots) per step, on a "
    "log axis (GA's forget loss climbs to ~25 while RGA's stays near 1). λ chart: RGA's "
    "λ = exp(−KL)^α (left axis, 1 = plain gradient ascent, 0 = the ascent switched off), the KL "
    "from the poisoned model's predictions on the forget rows (right axis) and, when the lr falls "
    "over the run, the lr over its peak (dots): once λ is near 0 only the retain loss and the L2 "
    "pull toward the pre-trained weights move the model, at that lr."
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold #8be9fd", no_wrap=True)
        table.add_column()
        for section, keys in HELP_KEYS:
            table.add_row(Text(section, style="bold underline"), "")
            for k, what in keys:
                table.add_row(k, what)
            table.add_row("", "")
        with VerticalScroll(id="help-box"):
            yield Static(Text("rga-tui: keys", style="bold"), id="help-title")
            yield Static(table)
            yield Static(Text(READING, style="dim"))
            yield Static(Text("\n" + CHARTS, style="dim"))
            yield Static(Text("Esc closes", style="dim italic"))

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """Yes / no question; dismisses with True for yes."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, question: str, yes: str = "Quit", no: str = "Stay") -> None:
        super().__init__()
        self.question = question
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label(self.question, id="confirm-question")
            with Horizontal(id="confirm-buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button(f"{self.no} (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

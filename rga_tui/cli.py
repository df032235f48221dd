"""The ``rga-tui`` command line (typer).

* ``rga-tui`` -- the interactive app (Textual, imported only here and in ``watch``).
* ``rga-tui run PRESET.toml [--out RUN_DIR] [--set section.key=value ...] [--quiet] [--log-every S] [--no-svg]``
* ``rga-tui presets [--presets DIR]``
* ``rga-tui inspect PRESET.toml [--json] [--set ...]``
* ``rga-tui watch RUN_DIR [--speed X] [--no-mouse]``
* ``rga-tui table RUN_DIR ... [--format markdown|csv|latex|json]``

Bad input (a missing preset, a bad ``--set``, an unknown key, a missing run folder, a usage
mistake) prints exactly one line ``error: <message>`` on stderr and exits 2 -- never a traceback.
Headless commands never import textual.
"""

from __future__ import annotations

import errno
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional, TypeVar

import typer
from typer.core import TyperGroup

__all__ = ["app", "main"]

EXIT_USAGE = 2

# (module, class) of the one-line, user-facing errors; looked up only when something failed,
# so that no engine module is imported just to be able to catch its error.
_USER_ERRORS = (
    ("rga_engine.config", "ConfigError"),
    ("rga_engine.data", "DataError"),
    ("rga_engine.data.loaders", "DataError"),
    ("rga_engine.models", "ModelError"),
    ("rga_engine.attacks", "AttackError"),
    ("rga_engine.report", "ReportError"),
    ("rga_tui.presets", "PresetDirError"),
    ("rga_tui.headless", "RunDirError"),
    ("rga_engine.hf_folder", "ExportError"),
)


def _one_line(text: Any) -> str:
    """One line, control characters escaped (messages can quote a preset or a data file)."""
    from rga_tui.safe_text import printable

    return printable(" ".join(str(text).split()))


# a read-only file system, a full disk or quota: the user's to fix, said in one line
_USER_ERRNOS = {getattr(errno, n) for n in ("EROFS", "ENOSPC", "EDQUOT", "EEXIST") if hasattr(errno, n)}


def _is_user_error(e: BaseException) -> bool:
    if isinstance(e, (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)):
        return True
    if isinstance(e, OSError) and e.errno in _USER_ERRNOS:
        return True
    for mod, name in _USER_ERRORS:
        module = sys.modules.get(mod)
        cls = getattr(module, name, None) if module is not None else None
        if isinstance(cls, type) and isinstance(e, cls):
            return True
    return False


def _error_message(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror and e.filename:
        return f"{e.filename}: {e.strerror.lower()}"
    return _one_line(e) or type(e).__name__


def fail(message: str, code: int = EXIT_USAGE) -> "typer.Exit":
    """Print ``error: <message>`` (one line) on stderr; returns the Exit to raise."""
    typer.echo(f"error: {_one_line(message)}", err=True)
    return typer.Exit(code)


T = TypeVar("T")


def _guard(fn: Callable[[], T]) -> T:
    """Run `fn`; a user-facing error becomes one line and exit 2."""
    try:
        return fn()
    except typer.Exit:
        raise
    except Exception as e:
        if _is_user_error(e):
            raise fail(_error_message(e)) from None
        raise


def _click_errors(name: str) -> tuple[type[BaseException], ...]:
    """`name` from click's exceptions -- typer >= 0.25 vendors click as ``typer._click``, older
    versions use click itself; catch both."""
    out = []
    for mod in ("typer._click.exceptions", "click.exceptions"):
        try:
            module = __import__(mod, fromlist=[name])
        except ImportError:
            continue
        cls = getattr(module, name, None)
        if isinstance(cls, type) and cls not in out:
            out.append(cls)
    return tuple(out)


class _OneLineErrors(TyperGroup):
    """Usage mistakes (unknown option, missing argument, bad value) as one ``error:`` line."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except _click_errors("UsageError") as e:
            typer.echo(f"error: {_one_line(e.format_message())}", err=True)
            rv = EXIT_USAGE
        except _click_errors("ClickException") as e:
            typer.echo(f"error: {_one_line(e.format_message())}", err=True)
            rv = getattr(e, "exit_code", 1)
        except _click_errors("Abort"):
            typer.echo("error: aborted", err=True)
            rv = 1
        code = rv if isinstance(rv, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    cls=_OneLineErrors,
    name="rga-tui",
    help="Backdoor unlearning for text classifiers (GA / NPO / RGA) with a live terminal UI.",
    add_completion=False,
    invoke_without_command=True,
    no_args_is_help=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _check_dirs(dirs: List[Path]) -> List[Path]:
    for d in dirs:
        if not Path(d).expanduser().is_dir():
            raise fail(f"--presets {d}: no such folder")
    return [Path(d).expanduser() for d in dirs]


def _version(value: bool) -> None:
    if value:
        try:
            from importlib.metadata import version

            v = version("rga-tui")
        except Exception:  # noqa: BLE001
            from rga_tui import __version__ as v
        typer.echo(f"rga-tui {v}")
        raise typer.Exit(0)


# --------------------------------------------------------------------------- interactive

@app.callback()
def interactive(
    ctx: typer.Context,
    presets: List[Path] = typer.Option([], "--presets", help="Another folder of presets (repeatable).",
                                       metavar="DIR"),
    out: Path = typer.Option(Path("runs"), "--out", help="Where new run folders go.", metavar="DIR"),
    preset: Optional[Path] = typer.Option(None, "--preset", help="Open this preset directly.",
                                          metavar="PRESET.toml"),
    no_mouse: bool = typer.Option(False, "--no-mouse", help="Do not capture the mouse."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Without a command: the interactive app (preset picker -> live run screen)."""
    if ctx.invoked_subcommand is not None:
        return
    dirs = _check_dirs(presets)
    if preset is not None:
        from rga_tui.presets import resolve_preset

        preset = resolve_preset(preset, dirs)
        if not preset.is_file():
            raise fail(f"preset: no such file: {preset}")
    from rga_tui.app import RgaApp  # Textual: only for interactive commands

    RgaApp(presets_dirs=dirs, out_dir=out, preset=preset).run(mouse=not no_mouse)


# --------------------------------------------------------------------------- run

_SET_HELP = "Override one preset value, e.g. --set unlearn.epochs=5 (repeatable)."


@app.command(short_help="Run a preset headless; writes a run folder.")
def run(
    preset: str = typer.Argument(..., metavar="PRESET.toml",
                                 help="A preset file (or a listed name such as demo/sst2-badnets)."),
    out: Optional[Path] = typer.Option(None, "--out", metavar="RUN_DIR",
                                       help="The run folder (default runs/<preset>-<timestamp>)."),
    set_: List[str] = typer.Option([], "--set", metavar="section.key=value", help=_SET_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars; only the final table."),
    presets: List[Path] = typer.Option([], "--presets", metavar="DIR", help="Extra presets folder for names."),
    log_every: float = typer.Option(30.0, "--log-every", metavar="SECONDS",
                                    help="Output not a terminal (a log file, CI): a progress line this often."),
    svg: bool = typer.Option(True, "--svg/--no-svg", help="Save the run screen's final state as result.svg "
                             "in the run folder (default on)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", metavar="SEEDS",
                                        help="Run once per seed (2021,2022 or 2021-2025): a run folder per "
                                        "seed under --out, then results.md with mean ± std."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code",
                                           help="Let the model run its own Python code (model.trust_remote_code); "
                                           "a preset alone never can."),
    resume: bool = typer.Option(False, "--resume", help="--out holds an unfinished run of this preset: run it "
                                "again there (cached stages load instead of training)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Run a preset that sets nothing (every default)."),
) -> None:
    """Run a preset headless: progress bars (plain lines when piped), then the results table;
    writes a run folder (with result.svg, a picture of the run screen)."""
    from rga_tui.presets import resolve_preset

    if not log_every > 0 or log_every == float("inf"):
        raise fail(f"--log-every {log_every}: must be a number of seconds > 0")

    seed_list = _parse_seeds(seeds) if seeds is not None else None

    def go() -> int:
        from rga_tui.headless import run_headless, run_seeds

        path = resolve_preset(preset, _check_dirs(presets))
        if seed_list is not None:
            if resume:
                raise fail("--resume runs one unfinished run again; it does not go with --seeds")
            return run_seeds(path, seed_list, out, list(set_), quiet, log_every=log_every, svg=svg,
                             trust_remote_code=trust_remote_code, yes=yes)
        return run_headless(path, out, list(set_), quiet, log_every=log_every, svg=svg,
                            trust_remote_code=trust_remote_code, resume=resume, yes=yes)

    code = _guard(go)
    _leave_process_group(code)
    raise typer.Exit(code)


def _leave_process_group(code: int) -> None:
    """Under ``accelerate launch`` / ``torchrun``: leave the process group before exiting (after a
    good run every rank meets the others first; ``rga_engine.distributed.close``)."""
    if "torch.distributed" in sys.modules:  # not imported: the run failed before torch, no group to leave
        from rga_engine.distributed import close

        close(wait=code == 0)


def _parse_seeds(text: str) -> list[int]:
    from rga_engine.report import parse_seeds

    try:
        return parse_seeds(text)
    except ValueError as e:
        raise fail(f"--seeds {text}: {e}") from None


# --------------------------------------------------------------------------- presets

@app.command("presets", short_help="List the presets.")
def presets_cmd(
    presets: List[Path] = typer.Option([], "--presets", metavar="DIR", help="Another folder of presets (repeatable)."),
) -> None:
    """List the presets, one line each: name, dataset, attack, model, methods, description."""
    from rga_tui.presets import discover_presets

    infos = _guard(lambda: discover_presets(presets, strict=True))
    if not infos:
        typer.echo("no presets found (looked in the packaged presets/ and ./presets)", err=True)
        return
    # on a terminal each line ends at its width (the description cut with …: wrapped, the
    # columns broke mid-word at 80); piped or redirected, whole lines for grep and scripts
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    for line in preset_lines(infos, width):
        typer.echo(line)


def preset_lines(infos: list[Any], width: int | None = None) -> list[str]:
    """One line per preset: name, dataset, attack, model, methods in aligned columns, then the
    description (a preset that does not load: its error). Given a terminal ``width``, text that
    would pass it wraps between words, under its own column (the terminal broke the columns
    mid-word); where the columns leave the description under 24 columns (80 columns with the
    paper's presets listed), each preset's columns are joined by " · " (wrapped lines indented by
    2) and its description goes below, indented by 4."""
    import textwrap

    from rga_tui.safe_text import printable

    def wrap(text: str, indent: int, first: int = 0) -> list[str]:
        """``text`` in lines of ``width``: the first starts at column ``first`` (what goes before
        it is the caller's), the others are indented by ``indent``."""
        if width is None:
            return [text]
        lines = textwrap.wrap(text, width=width, initial_indent=" " * first, subsequent_indent=" " * indent,
                              break_on_hyphens=False) or [""]
        return [lines[0][first:], *lines[1:]]

    ok = [i for i in infos if not i.error]
    widths = [max((len(x) for x in col), default=0) for col in zip(
        *[(i.name, i.dataset, i.attack, i.model, ",".join(i.methods)) for i in ok]
    )] if ok else [0] * 5
    at = sum(w + 2 for w in widths)  # the description's column
    stacked = width is not None and at + 24 > width
    lines: list[str] = []
    for i in infos:  # names, descriptions and errors come from preset files: escaped
        cols = [i.name, i.dataset, i.attack, i.model, ",".join(i.methods)]
        if i.error:
            head, rest = f"{i.name.ljust(widths[0])}  ", f"error: {i.error}"
        elif stacked:
            # a no-break space before each "·": a wrapped line never begins with one
            lines += wrap(printable(" · ".join(cols)).replace(" · ", "\u00a0· "), 2)
            if i.description:
                first, *more = wrap(printable(i.description), 4, 4)
                lines += [" " * 4 + first, *more]
            continue
        else:
            head, rest = "  ".join(c.ljust(w) for c, w in zip(cols, widths)) + "  ", i.description
        head, rest = printable(head), printable(rest)
        if width is None or len(head) + 24 > width:
            lines += wrap((head + rest).rstrip(), 4)
        else:
            body = wrap(rest, len(head), len(head)) if rest else [""]
            lines += [(head + body[0]).rstrip(), *body[1:]]
    return lines


# --------------------------------------------------------------------------- inspect

def _dataset_and_splits(cfg: Any) -> tuple[Any, Any]:
    """The dataset (for :func:`describe`) and its five splits: poisoned here, or for
    ``data.dataset = "rga-csv"`` the authors' files as they are (their clean splits stand for the
    dataset)."""
    from rga_engine.data.rga_csv import FILES, load_splits
    from rga_engine.data.types import DataInfo, Example, TextDataset

    if cfg.data.dataset != "rga-csv":
        from rga_engine.attacks import poison
        from rga_engine.data import load_dataset

        ds = load_dataset(cfg.data, cfg.data_seed)
        return ds, poison(ds, cfg.attack, cfg.data_seed)
    pd = load_splits(cfg)
    rows = {k: [Example(t, int(y)) for t, y in zip(pd.splits[k].texts, pd.splits[k].labels)]
            for k in ("train_clean", "test_clean")}
    text_col = cfg.data.text_column if isinstance(cfg.data.text_column, str) else "text"
    info = DataInfo(source="rga-csv", path=cfg.data.path, files=dict(FILES), columns=[text_col, cfg.data.label_column],
                    text_columns=[text_col], label_column=cfg.data.label_column,
                    label_map={str(k): n for k, n in enumerate(pd.label_names)})
    ds = TextDataset(name="rga-csv", num_labels=pd.num_labels, label_names=list(pd.label_names),
                     train=rows["train_clean"], test=rows["test_clean"], info=info)
    return ds, pd


def inspect_data(preset: str | Path, overrides: List[str] | None = None) -> dict:
    """Build a preset's five splits (no training) and describe them (the ``--json`` object)."""
    from rga_engine import config

    # no model is built here, so no model code can run: a trust_remote_code preset is inspectable
    cfg = config.load(preset, list(overrides or []), allow_remote_code=True)
    from rga_engine.data.describe import describe

    ds, pd = _dataset_and_splits(cfg)
    n = int(pd.num_labels)
    splits = {}
    for name, sp in pd.splits.items():
        splits[name] = {
            "rows": len(sp.labels),
            "labels": {str(k): int(c) for k, c in enumerate(sp.label_counts(n))},
            "poisoned": int(sum(1 for p in sp.poisoned if p)),
        }
    return {
        "preset": cfg.name,
        "dataset": pd.dataset,
        "attack": pd.attack,
        "target": int(pd.target),
        "num_labels": n,
        "label_names": list(pd.label_names),
        "splits": splits,
        "examples": [{"clean": c, "poisoned": p} for c, p in list(pd.examples)[:3]],
        # what was understood of the data: files, columns, label map, classes, the split made, warnings
        **describe(ds, cfg.model, cfg.data_seed),
    }


def _print_understood(console: Any, info: dict) -> None:
    """The data block of ``inspect``: what was read and how it was understood."""
    if info["split"]:
        files = f"{info['split']['from']}, split by the tool"
    else:
        files = " + ".join(f"{v} ({k})" for k, v in info["files"].items()) or info["path"]
    console.print(f"[bold]Data[/] {info['source']}: {files}", highlight=False)
    cols = ", ".join(info["columns"]) or "?"
    console.print(f"  columns read: {cols} · text: {' + '.join(info['text_columns'])} · label: {info['label_column']}",
                  markup=False)
    lmap = ", ".join(f"{k!r} → {v}" for k, v in info["label_map"].items())
    console.print(f"  label map: {lmap}", markup=False)
    classes = ", ".join(f"{c['id']} {c['name']} ({c['train']} / {c['test']})" for c in info["classes"])
    console.print(f"  classes (train / test rows): {classes}", markup=False)
    sp = info["split"]
    if sp:
        console.print(f"  split made by the tool: {sp['from']} → train {sp['train']} / test {sp['test']} rows "
                      f"(test_size {sp['test_size']:g}, split_seed {sp['split_seed']}, stratified by class)", markup=False)
    console.print(f"  texts shared by train and test: {info['shared_texts']}", markup=False)
    t = info["truncation"]
    console.print(f"  longer than model.max_length = {t['max_length']}: {t['truncated']} of "
                  f"{'a sample of ' if t['sampled'] else ''}{t['texts']} texts ({t['tokenizer']})", markup=False)
    for w in info["warnings"]:
        console.print(f"  [yellow]warning:[/] {w}", highlight=False)
    console.print()


def _highlight_insertions(clean: str, poisoned: str) -> Any:
    """The poisoned text with the words that are not in the clean text in bold."""
    import difflib

    from rich.text import Text

    from rga_tui.safe_text import printable

    a, b = clean.split(), poisoned.split()
    text = Text()
    for tag, _, _, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        chunk = printable(" ".join(b[j1:j2]))
        if not chunk:
            continue
        if text:
            text.append(" ")
        text.append(chunk, style="bold red" if tag in ("insert", "replace") else "")
    return text


@app.command("inspect", short_help="A preset's data as understood (files, columns, classes, split), no training.")
def inspect_cmd(
    preset: str = typer.Argument(..., metavar="PRESET.toml"),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    set_: List[str] = typer.Option([], "--set", metavar="section.key=value", help=_SET_HELP),
    presets: List[Path] = typer.Option([], "--presets", metavar="DIR", help="Extra presets folder for names."),
) -> None:
    """Build a preset's data without training: the files and columns read, the label map, the
    classes and their counts, the split the tool made, warnings; then rows, label counts and
    poisoned rows per split, and examples."""
    from rga_tui.presets import resolve_preset

    from rga_tui.safe_text import json_printable, printable

    info = _guard(lambda: inspect_data(resolve_preset(preset, _check_dirs(presets)), set_))
    if json_:  # JSON escapes C0 controls itself; DEL, C1 and bidi overrides are escaped here
        typer.echo(json_printable(json.dumps(info, ensure_ascii=False)))
        return

    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from rga_tui.headless import table_width

    console = Console(highlight=False)
    _print_understood(console, info)
    # dataset text and names (a local file, a hub dataset) are printed with controls escaped
    names = [printable(n) for n in info["label_names"]] or [str(k) for k in range(info["num_labels"])]
    title = (f"{info['preset']} · {info['dataset']} · {info['attack']} · target {info['target']}"
             f" ({names[info['target']] if 0 <= info['target'] < len(names) else '?'})")

    def splits_table(**look: Any) -> Table:
        table = Table(title=Text(printable(title)), title_justify="left", **look)
        # the split names whole (cut, test_poisoned_part and test_poisoned_all both read
        # "test_poiso…" at 80 columns); the class headers wrap instead
        table.add_column("Split", no_wrap=True, min_width=max((len(k) for k in info["splits"]), default=5))
        table.add_column("Rows", justify="right")
        for k in range(info["num_labels"]):
            table.add_column(Text(f"{k} {names[k]}") if k < len(names) else str(k), justify="right")
        table.add_column("Poisoned", justify="right")
        for split, s in info["splits"].items():
            table.add_row(split, str(s["rows"]), *[str(s["labels"].get(str(k), 0)) for k in range(info["num_labels"])],
                          str(s["poisoned"]))
        return table

    table = splits_table()
    if table_width(table) > console.width:
        table = splits_table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)  # no box: 80 columns hold 4 classes
    console.print(table)
    if info["examples"]:
        console.print("\n[bold]Examples[/] (clean → poisoned)")
        for ex in info["examples"]:
            if not ex["clean"]:  # rga-csv: the files hold no clean originals
                console.print(f"  poisoned: {printable(ex['poisoned'])}", markup=False)
                continue
            console.print(f"  clean:    {printable(ex['clean'])}", markup=False)
            line = Text("  poisoned: ")
            line.append_text(_highlight_insertions(ex["clean"], ex["poisoned"]))
            console.print(line)
            console.print()


# --------------------------------------------------------------------------- watch

@app.command(short_help="Open the live run screen on a run folder.")
def watch(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR"),
    speed: float = typer.Option(0.0, "--speed", help="Replay speed of a finished run (0 = the app's default)."),
    no_mouse: bool = typer.Option(False, "--no-mouse", help="Do not capture the mouse."),
) -> None:
    """Open the live run screen on a run folder (follows a run being written; replays a finished one)."""
    if not run_dir.is_dir():
        raise fail(f"{run_dir}: no such run folder")
    if not (run_dir / "events.jsonl").is_file():
        raise fail(f"{run_dir}: no events.jsonl (not a run folder)")
    if speed < 0:
        raise fail(f"--speed {speed}: must be >= 0")
    from rga_tui.app import RgaApp  # Textual: only for interactive commands

    RgaApp(watch_dir=Path(run_dir), speed=speed).run(mouse=not no_mouse)


# --------------------------------------------------------------------------- table

def _expand_run_dirs(paths: List[Path]) -> List[Path]:
    """Run folders as given; a folder of run folders (e.g. ``runs/``) stands for all of them."""
    out: List[Path] = []
    for p in paths:
        if p.is_dir() and not (p / "summary.json").exists():
            subs = sorted(d for d in p.iterdir() if (d / "summary.json").is_file())
            if subs:
                out.extend(subs)
                continue
        out.append(p)
    return out


_TABLE_FORMATS = ("markdown", "csv", "latex", "json")


@app.command(short_help="The results table of runs (markdown, csv, latex or json).")
def table(
    run_dirs: List[Path] = typer.Argument(..., metavar="RUN_DIR...",
                                          help="Run folders (or a folder of run folders)."),
    fmt: str = typer.Option("markdown", "--format", "-f", metavar="FORMAT",
                            help="markdown (default), csv, latex (the paper's layout) or json."),
) -> None:
    """The paper-style results table of one or more runs; seeds are averaged (mean ± sample std),
    a seed run twice counts once (its latest run)."""
    if fmt not in _TABLE_FORMATS:
        raise fail(f"--format {fmt}: allowed values are {', '.join(_TABLE_FORMATS)}")
    from rga_engine import export, report

    from rga_tui.safe_text import json_printable, printable

    summaries = _guard(lambda: [report.load_summary(d) for d in _expand_run_dirs(run_dirs)])
    out = export.render(summaries, fmt)  # preset names and messages come from files: escaped
    typer.echo(json_printable(out) if fmt == "json" else printable(out, keep="\n\r\t"), nl=False)


# --------------------------------------------------------------------------- export

@app.command("export", short_help="A model a run saved, as a Hugging Face folder.")
def export_cmd(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run folder written with output.save_models = true."),
    model: str = typer.Argument(..., metavar="MODEL", help="poisoned, retrain or a method's name (rga, ga, ...)."),
    to: Path = typer.Option(..., "--to", metavar="DIR", help="A new or empty folder for the Hugging Face files."),
) -> None:
    """Write a model of a run folder as a Hugging Face folder (config.json with the run's class
    names, model.safetensors, the tokenizer, a README.md with where it comes from), which
    AutoModelForSequenceClassification.from_pretrained and AutoTokenizer.from_pretrained load
    without rga-tui. The authors' head (model.pooling cls / last) comes with its own
    modeling_rga_pooled.py: load it with trust_remote_code=True."""
    from transformers.utils import logging as hf_logging

    from rga_engine import hf_folder

    hf_logging.disable_progress_bar()  # "Writing model shards" on stderr: one file, one line is enough
    out = _guard(lambda: hf_folder.write(run_dir, model, to))
    typer.echo(f"{model}: written to {out}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

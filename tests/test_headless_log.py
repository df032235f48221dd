"""`rga-tui run` into a log file (nohup, CI, a batch job): plain lines, a steady progress line,
nothing cut; and a picture of the result (result.svg) in every finished run folder."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from rga_tui.headless import HeadlessSink

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "presets" / "tiny-sst2-badnets.toml"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_plain_sink_prints_a_progress_line_at_the_interval():
    buf, clock = io.StringIO(), Clock()
    console = Console(file=buf, width=80, highlight=False)  # a file: not a terminal
    sink = HeadlessSink(console, log_every=30, clock=clock)
    assert sink.plain
    with sink:
        sink.emit({"type": "stage_started", "stage": "unlearn:rga", "total_steps": 100})
        for step in range(1, 101):
            clock.t += 7.0  # one step every 7 s: a line every 5 steps (35 s)
            sink.emit({"type": "step", "stage": "unlearn:rga", "step": step, "loss": -0.5, "lambda": 0.25,
                       "samples_per_s": 64.0})
        sink.emit({"type": "stage_finished", "stage": "unlearn:rga", "seconds": 700.0,
                   "metrics": {"cacc": 0.9, "pacc": 0.8}})
    lines = buf.getvalue().splitlines()
    assert lines[0] == "▶ unlearn:rga started (100 steps)"
    progress = [ln for ln in lines if re.match(r"\s+unlearn:rga\s+\d+/100", ln)]
    steps = [int(re.search(r"(\d+)/100", ln).group(1)) for ln in progress]
    assert steps[0] <= 5 and all(b - a <= 5 for a, b in zip(steps, steps[1:]))  # ≤ 35 s apart
    assert len(progress) >= 19
    assert "λ 0.250" in progress[0] and "64 samples/s" in progress[0] and "eta 0:" in progress[0]
    # the 50th step: 350 s elapsed, 350 s to go
    half = next(ln for ln in progress if "50/100" in ln)
    assert "elapsed 0:05:50" in half and "eta 0:05:50" in half
    assert lines[-1].startswith("✓ unlearn:rga (700.0 s)") and "CACC 90.00" in lines[-1]
    assert "\x1b" not in buf.getvalue()  # no escape sequences in a log file


def test_piped_run_logs_plain_lines_and_saves_a_picture(tmp_path):
    """A real (tiny) run with stdout to a file: stage lines intact, progress lines, result.svg."""
    out = tmp_path / "run"
    log = tmp_path / "log.txt"
    sets = ["data.train_limit=600", "data.test_limit=200", "train.epochs=1", "unlearn.epochs=2",
            'unlearn.methods=["ga"]', "unlearn.eval_every=1",  # a small model: the lines are what is tested
            "model.num_layers=1", "model.hidden_size=32", "model.intermediate_size=64", "model.max_length=32",
            "data.seed=7"]  # a data seed apart from the run's: the header and the table say it
    # a line at most every 10 ms: this run's poisoning trains 21 steps in well under 0.2 s on a fast
    # CPU (the rest of its 0.4 s is evaluation), so a longer interval can leave no progress line
    cmd = [sys.executable, "-m", "rga_tui", "run", str(TINY), "--out", str(out), "--log-every", "0.01"]
    for s in sets:
        cmd += ["--set", s]
    env = dict(os.environ, COLUMNS="80", HF_HUB_OFFLINE="1")
    env.pop("FORCE_COLOR", None)
    with log.open("w") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=tmp_path, env=env, timeout=300)
    text = log.read_text()
    assert r.returncode == 0, text
    for stage in ("poison", "retrain", "unlearn:ga"):
        assert re.search(rf"^▶ {re.escape(stage)} started \(\d+ steps\)$", text, re.M), text
        assert re.search(rf"^✓ {re.escape(stage)} \(\d+\.\d s\)", text, re.M), text
    assert re.search(r"^\s+poison\s+\d+/\d+ \(\d+ %\) · loss [\d.e-]+ · .*elapsed \d:\d\d:\d\d · eta ", text, re.M), text
    assert "…" not in text and "\x1b" not in text
    assert f"run folder: {out}" in text
    header = text.splitlines()[0]
    assert header.endswith("· seed 2021 · data seed 7"), header
    assert re.search(r"^tiny-sst2-badnets · sst2/badnets/tiny · seed 2021 · data seed 7 *$", text, re.M), text  # the table's title
    svg = out / "result.svg"
    assert svg.is_file() and f"picture: {svg}" in text
    body = svg.read_text()
    assert body.lstrip().startswith("<svg") and "Retrain" in body and "GA" in body


def test_live_lines_name_the_classes_the_run_says():
    """The per-stage lines name classes as the run's data log line says them (HSOL's class 1 is
    "hate/offensive" in the data and in summary.json; the sink knew it as "toxic" before)."""
    from rga_engine.metrics import trigger_shift

    buf = io.StringIO()
    sink = HeadlessSink(Console(file=buf, width=200, highlight=False), log_every=30)
    sink.label_names = ["negative", "positive"]  # what the preset let the CLI guess
    shift = trigger_shift([[5, 95], [10, 90]], [[90, 10], [10, 90]], 0)  # triggered, clean: class 0 → class 1
    with sink:
        sink.emit({"type": "log", "level": "info", "message": "hsol/badnets: ...", "label_names": ["clean", "hate/offensive"],
                   "target": 0})
        sink.emit({"type": "stage_finished", "stage": "unlearn:ga", "seconds": 1.0,
                   "metrics": {"cacc": 0.9, "pacc": 0.5, "asr": 0.0, "trigger_shift": shift}})
    out = buf.getvalue()
    assert "trigger shifted → hate/offensive" in out, out


def test_a_sampled_mid_run_evaluation_says_so_on_its_line():
    """A mid-run evaluation on ``unlearn.eval_rows``' sample prints how many clean rows it
    counted; one on the whole test set prints no such note."""
    buf = io.StringIO()
    with HeadlessSink(Console(file=buf, width=200, highlight=False), log_every=30) as sink:
        for split, rows in (("test_clean", 600), ("test_poisoned_all", 600), ("test_poisoned_part", 300)):
            sink.emit({"type": "eval", "stage": "unlearn:ga", "step": 78, "split": split, "rows": rows, "sample": True,
                       "metrics": {"cacc": 0.8} if split == "test_clean" else {}})
        for split in ("test_clean", "test_poisoned_all"):
            sink.emit({"type": "eval", "stage": "unlearn:rga", "step": 78, "split": split, "rows": 1821,
                       "metrics": {"cacc": 0.85} if split == "test_clean" else {}})
        sink.emit({"type": "log", "level": "info", "message": "done"})
    lines = [ln for ln in buf.getvalue().splitlines() if ln.startswith("  eval")]
    assert len(lines) == 2, lines
    assert "unlearn:ga step 78 (sample: 600 clean rows)" in lines[0] and "CACC 80.00" in lines[0], lines
    assert "sample" not in lines[1] and "CACC 85.00" in lines[1], lines


def test_on_a_narrow_terminal_stage_lines_wrap_between_words():
    """On an 80-column terminal a stage's result line is wrapped by rich between words ("backdoor
    rem|ains" was the terminal's own wrap of one long line); in a log file it stays one line."""
    long = {"type": "stage_finished", "stage": "poison", "seconds": 22.4,
            "metrics": {"cacc": 0.926, "pacc": 0.4994, "asr": 1.0, "lfr": [1.0, 0.0], "delta_pacc": 0.4398,
                        "trigger_shift": {"remains": True, "shifted": False, "to_class": None, "score": 0.9,
                                          "verdict": "backdoor remains"}}}
    buf = io.StringIO()
    with HeadlessSink(Console(file=buf, width=80, force_terminal=True, no_color=True, highlight=False)) as sink:
        sink.emit(long)
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", buf.getvalue())
    rows = [r.rstrip() for r in text.splitlines() if r.strip() and "━" not in r]
    assert len(rows) >= 2 and all(len(r) <= 80 for r in rows), rows
    assert "backdoor remains" in " ".join(" ".join(rows).split()) and "rem\n" not in text
    buf = io.StringIO()
    with HeadlessSink(Console(file=buf, width=80, highlight=False)) as sink:  # a file
        sink.emit(long)
    assert any(ln.startswith("✓ poison (22.4 s)") and ln.endswith("backdoor remains") for ln in buf.getvalue().splitlines())


def test_on_a_narrow_terminal_a_metric_keeps_its_value_on_its_line():
    """Each metric of an eval / stage line stays beside its value ("ΔPACC" ended an 80-column
    line with "0.44" on the next) and the verdict stays whole where it fits a line; continuation
    lines are indented."""
    from rga_tui.headless import format_metrics

    ev = {"type": "eval", "stage": "unlearn:rga", "step": 78,
          "metrics": {"cacc": 0.8532, "asr": 0.309, "paper_lfr": 0.691, "pacc": 0.8538, "delta_pacc": 0.0033,
                      "trigger_shift": {"remains": True, "shifted": False, "to_class": None, "score": 0.3,
                                        "verdict": "backdoor partly remains"}}}
    for width in (80, 72, 64, 56, 48):
        buf = io.StringIO()
        with HeadlessSink(Console(file=buf, width=width, force_terminal=True, no_color=True, highlight=False)) as sink:
            sink.emit(ev)
            sink.emit({"type": "stage_finished", "stage": "unlearn:rga", "seconds": 95.0, "metrics": ev["metrics"]})
        text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", buf.getvalue())
        rows = [r.rstrip() for r in text.splitlines() if r.strip() and "━" not in r]
        assert all(len(r) <= width for r in rows), (width, rows)
        rows = [r for r in rows if not r.startswith("unlearn:rga ")]  # the progress row
        for name in ("CACC", "ASR", "LFR", "PACC", "ΔPACC"):  # never a name at the end of a line
            assert not any(re.search(rf"(^|\s){name}$", r) for r in rows), (width, rows)
        assert all(re.match(r"^( {4}|  eval|✓)", r) for r in rows), (width, rows)
        verdict = format_metrics(ev["metrics"]).split(" · ")[1]
        assert sum(("· " + verdict) in r for r in rows) == 2, (width, rows)  # whole where it fits a line
    # the metrics in the run screen's and the results table's order (PACC came before LFR here)
    assert re.findall(r"(ΔPACC|CACC|PACC|ASR|LFR) ", format_metrics(ev["metrics"])) == ["CACC", "ASR", "LFR", "PACC", "ΔPACC"]
    # a piece wider than the line gets a line of its own rather than being lost
    from rga_tui.headless import wrap_metrics

    assert wrap_metrics("x", "CACC 85.32", 6) == ["x", "    CACC 85.32"]


def test_results_table_keeps_each_verdict_on_one_line_in_80_columns():
    """The final table at a classic 80-column terminal (or a log file, which rich prints 80 wide):
    the boxed table needs ~100 columns and wrapped "backdoor partly remains (ASR 30.9 %)" over
    three lines; without its box (and, if still needed, without the Time column, which each
    stage's ✓ line already gives) every model is one line. Wide terminals keep the boxed table."""
    import json

    from rga_engine import report
    from rga_tui.headless import results_table

    summary = json.loads((ROOT / "tests" / "fixtures" / "sst2_badnets_summary.json").read_text(encoding="utf-8"))
    rows = report.summary_rows(summary)
    assert any(len(r["verdict"]) >= 36 for r in rows)  # the long "partly remains (ASR x %)" verdict is in it

    def render(width: int) -> list[str]:
        buf = io.StringIO()
        console = Console(file=buf, width=width)
        console.print(results_table(summary, console.width))
        return buf.getvalue().splitlines()

    for width in (80, 90):
        lines = render(width)
        assert all(len(line) <= width for line in lines)
        for r in rows:  # the model's name, its numbers and its whole verdict on one line
            line = next(line for line in lines if line.startswith(r["label"] + " "))
            assert r["verdict"] in line and report.fmt_pct(r["pacc"]) in line, (width, line)
    assert "Time" not in render(80)[1] and "Time" in render(90)[1]  # the Time column goes only when it must
    wide = render(120)
    assert wide[1].startswith("┏") and "Time" in wide[2]  # the boxed table where it fits
    from rga_tui.widgets.results import COLUMNS

    assert render(80)[1].split()[:7] == list(COLUMNS)  # the run screen's columns, in its order
    assert all(len(line) <= 120 for line in wide)


def test_a_model_named_by_a_folder_reads_whole_in_the_header_and_the_table_title():
    """``model.name`` may be a local folder or a hub id with a slash: joined into
    ``dataset/attack/model`` it read ``sst2/badnets//data/student``. It follows a ``·`` instead,
    in the run's header line, its results table's title and the home screen's ✔ line alike."""
    import json

    from rga_engine import config
    from rga_tui.headless import results_table
    from rga_tui.widgets.presets import valid_verdict

    assert config.what_runs_text("sst2", "badnets", "minilm") == "sst2/badnets/minilm"
    assert config.what_runs_text("sst2", "badnets", "/data/student") == "sst2/badnets · model /data/student"
    assert config.what_runs_text("hsol", "addsent", "org/bert") == "hsol/addsent · model org/bert"
    cfg = config.load(ROOT / "presets" / "demo" / "sst2-badnets.toml", ["model.name='/data/student'"])
    assert config.what_runs(cfg) == "sst2/badnets · model /data/student"
    assert "· sst2/badnets · model /data/student ·" in valid_verdict(cfg, 1).plain
    assert config.defaults_line(cfg).startswith("sst2/badnets · model /data/student, 1600 training rows")

    summary = json.loads((ROOT / "tests" / "fixtures" / "sst2_badnets_summary.json").read_text(encoding="utf-8"))
    for model, shown in (("/data/student", "sst2/badnets · model /data/student"), ("tiny", "sst2/badnets/tiny")):
        buf = io.StringIO()
        Console(file=buf, width=200).print(results_table({**summary, "model": model}, 200))
        title = buf.getvalue().splitlines()[0]
        assert shown in title and "//" not in title, title


def test_progress_rows_fit_an_80_column_terminal():
    """Five stages' bars on an 80-column terminal: the full row (~92 columns with λ) made rich
    squeeze its columns into "603/…" and "0:02:…". Narrow, the bar is shorter and samples/s reads
    "/s": every count and time is whole."""
    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=True)
    sink = HeadlessSink(console, plain=False)
    for stage, total in (("poison", 603), ("retrain", 546), ("unlearn:ga", 133), ("unlearn:npo", 133),
                         ("unlearn:rga", 133)):
        sink.emit({"type": "stage_started", "stage": stage, "total_steps": total})
        sink.emit({"type": "step", "stage": stage, "step": total, "loss": -21.35 if stage == "unlearn:ga" else 0.5603,
                   "lambda": 0.006 if stage == "unlearn:rga" else None, "samples_per_s": 120.0})
    out = io.StringIO()
    Console(file=out, width=80, color_system=None).print(sink.progress.get_renderable())
    lines = out.getvalue().splitlines()
    assert len(lines) == 5 and all(len(line) <= 80 for line in lines)
    assert "…" not in out.getvalue()
    assert "603/603" in lines[0] and "133/133" in lines[4] and "λ 0.006" in lines[4] and "120/s" in lines[4]

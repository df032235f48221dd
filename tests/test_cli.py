"""The rga-tui command line: presets, error paths, table, inspect, headless runs (fake pipeline)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rga_tui.cli import app

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "presets" / "demo" / "sst2-badnets.toml"
FULL = ROOT / "presets" / "minilm" / "sst2-badnets.toml"  # the whole SST-2 (the demo takes a 2,000-row sample)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_report import make_summary  # noqa: E402


def invoke(*args: str):
    # a wide console, so that rich tables and lines are not wrapped
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def assert_one_line_error(result, contains: str = "") -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert contains in lines[0], lines[0]
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- presets

def test_presets_lists_the_demo():
    r = invoke("presets")
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("demo/sst2-badnets "))
    assert line.split()[1:5] == ["sst2", "badnets", "minilm", "ga,rga"]
    from rga_engine.config import load

    assert line.endswith(load(DEMO).description.strip())  # the description
    assert "_base" not in r.stdout and "_minilm" not in r.stdout


def test_presets_user_dir_bases_skipped_and_broken_listed(tmp_path):
    d = tmp_path / "mine"
    (d / "grp").mkdir(parents=True)
    (d / "_shared.toml").write_text('[model]\nname = "tiny"\n')
    (d / "grp" / "good.toml").write_text(
        'extends = "../_shared.toml"\ndescription = "mine"\n[data]\ndataset = "hsol"\n[attack]\nname = "addsent"\n'
    )
    (d / "broken.toml").write_text('[train]\nbogus = 1\n')
    r = invoke("presets", "--presets", d)
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "_shared" not in out
    good = next(ln for ln in out.splitlines() if ln.startswith("grp/good "))
    assert good.split()[1:4] == ["hsol", "addsent", "tiny"] and good.endswith("mine")
    broken = next(ln for ln in out.splitlines() if ln.startswith("broken "))
    assert "error: train.bogus: unknown key" in broken

    from rga_tui.presets import discover_presets

    infos = {i.name: i for i in discover_presets([d])}
    assert infos["grp/good"].group == "grp" and infos["grp/good"].ok
    assert infos["broken"].error and not infos["broken"].ok
    assert infos["demo/sst2-badnets"].path.resolve() == DEMO.resolve()


# --------------------------------------------------------------------------- error paths

@pytest.mark.parametrize(
    "args, contains",
    [
        (("run", "no/such/preset.toml"), "no such file"),
        (("run", DEMO, "--set", "train.epochs"), "expected section.key=value"),
        (("run", DEMO, "--set", "train.bogus=1"), "train.bogus: unknown key"),
        (("run", DEMO, "--set", "train.epochs=-1"), "train.epochs"),
        (("inspect", "no/such/preset.toml"), "no such file"),
        (("inspect", DEMO, "--set", "attack.name=nope"), "attack.name"),
        (("presets", "--presets", "/no/such/dir"), "no such folder"),
        (("table", "/no/such/run"), "no such run folder"),
        (("watch", "/no/such/run"), "no such run folder"),
        (("run",), "Missing argument"),
        (("--bogus",), "No such option"),
        (("watch", ".", "--speed", "fast"), "--speed"),
        (("nosuchcommand",), "No such command"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, contains):
    assert_one_line_error(invoke(*args), contains)


def test_watch_needs_events_jsonl(tmp_path):
    assert_one_line_error(invoke("watch", tmp_path), "no events.jsonl")


def test_table_on_a_folder_without_summary(tmp_path):
    assert_one_line_error(invoke("table", tmp_path), "no summary.json")


# --------------------------------------------------------------------------- table

def write_run(root: Path, name: str, summary: dict) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps(summary))
    return d


def test_table_mean_std_over_three_seeds(tmp_path):
    dirs = [write_run(tmp_path, f"run-{s}", make_summary(seed=s, rga_pacc=p))
            for s, p in ((2021, 0.88), (2022, 0.90), (2023, 0.92))]
    r = invoke("table", *dirs)
    assert r.exit_code == 0, r.output
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("|")]
    assert len(rows) == 3
    header = [c.strip() for c in rows[0].strip("|").split(" | ")]
    body = [c.strip() for c in rows[2].strip("|").split(" | ")]
    assert body[header.index("RGA PACC")] == "90.00 ± 2.00"
    assert body[header.index("Seeds")] == "2021, 2022, 2023"
    # a folder of run folders stands for all of them
    r2 = invoke("table", tmp_path)
    assert r2.exit_code == 0 and r2.stdout == r.stdout


# --------------------------------------------------------------------------- inspect

_HAVE_DATA = (ROOT / "rga_engine" / "data" / "embedded").is_dir() and (ROOT / "rga_engine" / "attacks.py").is_file()


@pytest.mark.skipif(not _HAVE_DATA, reason="rga_engine/data/embedded or rga_engine/attacks.py not written yet")
def test_inspect_json_sst2_badnets():
    r = invoke("inspect", FULL, "--json")
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)  # exactly one JSON object
    assert (obj["dataset"], obj["attack"], obj["target"], obj["num_labels"]) == ("sst2", "badnets", 1, 2)
    s = obj["splits"]
    assert set(s) == {"train_clean", "train_poisoned", "test_clean", "test_poisoned_part", "test_poisoned_all"}
    assert s["train_clean"]["rows"] == 6920 and s["train_clean"]["poisoned"] == 0
    assert s["train_poisoned"]["rows"] == 7612 and s["train_poisoned"]["poisoned"] == 692
    assert s["test_clean"]["rows"] == 1821
    assert s["test_poisoned_part"]["rows"] == 912 and s["test_poisoned_part"]["labels"]["1"] == 0
    assert s["test_poisoned_all"]["rows"] == 1821 and s["test_poisoned_all"]["poisoned"] == 1821
    for split in s.values():
        assert sum(split["labels"].values()) == split["rows"]
    # dirty-label poisoning: the 692 copies are labelled with the target
    assert s["train_poisoned"]["labels"]["1"] == s["train_clean"]["labels"]["1"] + 692
    assert len(obj["examples"]) == 3
    for ex in obj["examples"]:
        assert ex["clean"] != ex["poisoned"] and "mn" in ex["poisoned"].split()

    plain = invoke("inspect", FULL)
    assert plain.exit_code == 0 and "train_poisoned" in plain.stdout and "7612" in plain.stdout
    demo = json.loads(invoke("inspect", DEMO, "--json").stdout)["splits"]  # a stratified training sample, the whole test set
    assert demo["train_clean"]["rows"] == 1600 and demo["test_clean"]["rows"] == 1821  # 1,600 rows since 2026-12-05
    assert demo["train_poisoned"]["rows"] == 1760 and demo["train_poisoned"]["poisoned"] == 160


def test_inspect_shows_the_data_that_data_seed_draws():
    # the examples are the first poisoned training rows: another seed draws others, data.seed keeps
    # the ones training seed 2021 draws whatever train.seed says (what a run with it trains on)
    def examples(*sets: str):
        args = [a for s in sets for a in ("--set", s)]
        r = invoke("inspect", DEMO, "--json", *args)
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)["examples"]

    own = examples()  # train.seed = 2021, data.seed = -1
    assert examples("train.seed=2022") != own
    assert examples("train.seed=2022", "data.seed=2021") == own


@pytest.mark.skipif(not _HAVE_DATA, reason="rga_engine/data/embedded not written yet")
def test_inspect_table_names_every_split_whole_in_80_columns():
    """At 80 columns the boxed table (AG News: four classes) cut the split names, and
    test_poisoned_part and test_poisoned_all both read "test_poiso…": without its box the table
    fits, every split and class count on its row."""
    r = CliRunner().invoke(app, ["inspect", str(ROOT / "presets" / "demo" / "agnews-badnets.toml")],
                           env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    rows = {line.split()[0]: line.split()[1:] for line in lines
            if line.split() and line.split()[0] in ("train_clean", "train_poisoned", "test_clean",
                                                     "test_poisoned_part", "test_poisoned_all")}
    assert rows["test_poisoned_part"] == ["750", "0", "250", "250", "250", "750"]
    assert rows["test_poisoned_all"] == ["1000", "250", "250", "250", "250", "1000"]
    assert len(rows) == 5 and "…" not in "".join(lines[:40])


@pytest.mark.skipif(not _HAVE_DATA, reason="rga_engine/data/embedded not written yet")
@pytest.mark.parametrize("preset,sentence", [
    ("paper/bert-hsol-addsent.toml", "no cross, no crown"),
    ("paper/distilbert-agnews-addsent.toml", "no cross, no crown"),
    ("paper/llama2-sst2-addsent.toml", "I watch this 3D movie"),
    ("demo/hsol-addsent.toml", "no cross, no crown"),
])
def test_inspect_addsent_uses_the_datasets_sentence_offline(preset, sentence):
    """AddSent's sentence per dataset (the authors' data); inspect needs neither the hub nor the
    model of a paper preset (conftest sets HF_HUB_OFFLINE)."""
    r = invoke("inspect", str(ROOT / "presets" / preset), "--json")
    assert r.exit_code == 0, r.output
    examples = json.loads(r.stdout)["examples"]
    assert len(examples) == 3 and all(sentence in ex["poisoned"] for ex in examples)
    other = {"no cross, no crown": "3D movie", "I watch this 3D movie": "no crown"}[sentence]
    assert not any(other in ex["poisoned"] for ex in examples)


# --------------------------------------------------------------------------- no textual for headless commands

def test_headless_commands_do_not_import_textual():
    code = (
        "import sys\n"
        "from rga_tui.cli import main\n"
        "sys.argv = ['rga-tui', 'presets']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('TEXTUAL' if 'textual' in sys.modules else 'NO-TEXTUAL')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "demo/sst2-badnets" in out.stdout
    assert out.stdout.strip().endswith("NO-TEXTUAL")


# --------------------------------------------------------------------------- interactive / watch (fake app)

class FakeApp:
    calls: list = []

    def __init__(self, **kwargs):
        FakeApp.calls.append(("init", kwargs))

    def run(self, **kwargs):
        FakeApp.calls.append(("run", kwargs))


@pytest.fixture
def fake_app(monkeypatch):
    FakeApp.calls = []
    monkeypatch.setitem(sys.modules, "rga_tui.app", types.SimpleNamespace(RgaApp=FakeApp))
    return FakeApp


def test_watch_starts_the_app_in_watch_mode(tmp_path, fake_app):
    (tmp_path / "events.jsonl").write_text("")
    r = invoke("watch", tmp_path, "--speed", "4", "--no-mouse")
    assert r.exit_code == 0, r.output
    assert fake_app.calls == [("init", {"watch_dir": tmp_path, "speed": 4.0}), ("run", {"mouse": False})]


def test_no_command_starts_the_interactive_app(tmp_path, fake_app):
    r = invoke("--presets", tmp_path, "--out", tmp_path / "runs")
    assert r.exit_code == 0, r.output
    assert fake_app.calls == [
        ("init", {"presets_dirs": [tmp_path], "out_dir": tmp_path / "runs", "preset": None}),
        ("run", {"mouse": True}),
    ]


# --------------------------------------------------------------------------- headless run (fake pipeline)

def fake_pipeline(monkeypatch, behaviour: str = "ok", steps: int = 6, nan_message: str = "loss is NaN at step 3"):
    """Install a fake ``rga_engine.pipeline`` whose run() emits a plausible event sequence."""
    seen: dict = {}

    def run(cfg, sink, should_stop, run_dir=None):
        seen.update(cfg=cfg, run_dir=run_dir)
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        summary = make_summary(seed=cfg.train.seed)
        summary["preset"] = cfg.name
        sink.emit({"type": "run_started", "config": {}, "device": "cpu", "run_dir": str(run_dir)})
        if behaviour == "data_error":
            from rga_engine.data import DataError

            raise DataError("sst2: the embedded file is missing")
        for stage in ("poison", "retrain", "unlearn:ga", "unlearn:npo", "unlearn:rga"):
            sink.emit({"type": "stage_started", "stage": stage, "total_steps": steps})
            for step in range(1, steps + 1):
                sink.emit({"type": "step", "stage": stage, "step": step, "loss": 0.5 / step,
                           "lambda": 0.9 if stage == "unlearn:rga" else None, "samples_per_s": 100.0})
                if behaviour in ("stop", "abort") and stage == "retrain" and step == 2:
                    signal.raise_signal(signal.SIGINT)  # the user presses Ctrl-C
                    if behaviour == "abort":
                        signal.raise_signal(signal.SIGINT)  # ... twice
                if should_stop():
                    seen["stopped_at"] = (stage, step)
                    summary["status"] = "cancelled"
                    for m in ("ga", "npo", "rga"):
                        summary["models"].pop(m, None)
                    sink.emit({"type": "stage_finished", "stage": stage, "metrics": {"cancelled": True}, "seconds": 0.1})
                    sink.emit({"type": "run_finished", "summary": summary})
                    return summary
            if stage == "unlearn:ga" and behaviour == "nan":
                sink.emit({"type": "error", "stage": stage, "message": nan_message})
                sink.emit({"type": "stage_finished", "stage": stage, "metrics": {"error": "nan"}, "seconds": 0.1})
                continue
            for split, metrics in (("test_clean", {"cacc": 0.9}), ("test_poisoned_all", {"pacc": 0.5})):
                sink.emit({"type": "eval", "stage": stage, "step": steps, "split": split,
                           "confusion": [[1, 0], [0, 1]], "metrics": metrics})
            name = {"poison": "poisoned"}.get(stage, stage.split(":")[-1])
            sink.emit({"type": "stage_finished", "stage": stage, "metrics": summary["models"].get(name, {}),
                       "seconds": 0.1})
        if behaviour == "nan":
            del summary["models"]["ga"]
            summary["errors"] = {"unlearn:ga": nan_message}
            summary["status"] = "partial"
        (run_dir / "summary.json").write_text(json.dumps(summary))
        sink.emit({"type": "run_finished", "summary": summary})
        return summary

    module = types.SimpleNamespace(
        run=run, default_run_dir=lambda cfg: Path(cfg.output.dir) / f"{cfg.name}-20260101-000000",
        LABEL_NAMES={"sst2": ["negative", "positive"]},
    )
    monkeypatch.setitem(sys.modules, "rga_engine.pipeline", module)
    return seen


def test_headless_run_prints_the_table(tmp_path, monkeypatch):
    seen = fake_pipeline(monkeypatch)
    out = tmp_path / "run"
    r = invoke("run", DEMO, "--out", out, "--set", "unlearn.epochs=2")
    assert r.exit_code == 0, r.output
    assert seen["run_dir"] == out and seen["cfg"].unlearn.epochs == 2
    text = r.stdout
    for label in ("Poisoned", "Retrain", "GA", "NPO", "RGA"):
        assert label in text
    assert "trigger shifted → negative" in text  # the verdict column
    assert "41.12" in text and "89.64" in text
    assert "eval unlearn:ga" in text
    assert f"run folder: {out}" in text


def test_headless_default_run_dir_and_quiet(tmp_path, monkeypatch):
    seen = fake_pipeline(monkeypatch)
    r = invoke("run", DEMO, "--quiet", "--set", f"output.dir={json.dumps(str(tmp_path / 'runs'))}")
    assert r.exit_code == 0, r.output
    assert seen["run_dir"] == tmp_path / "runs" / "demo-sst2-badnets-20260101-000000"
    assert "eval" not in r.stdout and "RGA" in r.stdout


def test_headless_ctrl_c_stops_after_the_step_exit_130(tmp_path, monkeypatch):
    seen = fake_pipeline(monkeypatch, "stop")
    before = signal.getsignal(signal.SIGINT)
    r = invoke("run", DEMO, "--out", tmp_path / "run")
    assert r.exit_code == 130, r.output
    assert seen["stopped_at"] == ("retrain", 2)  # stopped right after the step it was pressed in
    assert "stopping after this step" in r.output
    assert "Retrain" in r.stdout and "Poisoned" in r.stdout  # the table of what exists
    assert signal.getsignal(signal.SIGINT) is before  # the handler is restored


def test_headless_second_ctrl_c_aborts_exit_130(tmp_path, monkeypatch):
    fake_pipeline(monkeypatch, "abort")
    r = invoke("run", DEMO, "--out", tmp_path / "run")
    assert r.exit_code == 130, r.output
    assert "aborted" in r.stderr


def test_headless_failed_stage_exit_1(tmp_path, monkeypatch):
    fake_pipeline(monkeypatch, "nan")
    r = invoke("run", DEMO, "--out", tmp_path / "run")
    assert r.exit_code == 1, r.output
    assert "failed: loss is NaN at step 3" in r.stdout  # in the table
    assert r.stderr.strip().splitlines()[-1] == "error: stage unlearn:ga failed: loss is NaN at step 3"


def test_headless_messages_are_not_rich_markup(tmp_path, monkeypatch):
    fake_pipeline(monkeypatch, "nan", nan_message="loss [/] is [bold]NaN")
    r = invoke("run", DEMO, "--out", tmp_path / "run")
    assert r.exit_code == 1, r.output
    assert "loss [/] is [bold]NaN" in r.stdout


def test_headless_engine_input_error_exit_2(tmp_path, monkeypatch):
    fake_pipeline(monkeypatch, "data_error")
    assert_one_line_error(invoke("run", DEMO, "--out", tmp_path / "run"), "embedded file is missing")


def test_headless_refuses_an_existing_run_folder(tmp_path, monkeypatch):
    fake_pipeline(monkeypatch)
    (tmp_path / "events.jsonl").write_text("")
    assert_one_line_error(invoke("run", DEMO, "--out", tmp_path), "already holds a run")


def test_run_accepts_a_listed_preset_name(tmp_path, monkeypatch):
    seen = fake_pipeline(monkeypatch)
    r = invoke("run", "demo/sst2-badnets", "--out", tmp_path / "run", "--quiet")
    assert r.exit_code == 0, r.output
    assert seen["cfg"].name == "demo-sst2-badnets"


@pytest.mark.parametrize("cmd", [[], ["run"], ["presets"], ["inspect"], ["watch"], ["table"], ["export"]])
def test_help_has_no_value_placeholders_on_flags(cmd):
    r = invoke(*cmd, "--help")
    assert r.exit_code == 0, r.output
    assert "<bool>" not in r.stdout and "Usage:" in r.stdout
    if cmd == ["run"]:
        for opt in ("--quiet", "--log-every", "--no-svg", "--presets", "--set", "--out"):
            assert opt in r.stdout
    if cmd == ["table"]:
        assert "--format" in r.stdout and "latex" in r.stdout


def test_readme_cli_table_lists_every_command_and_option():
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The CLI"):readme.index("## Presets")]
    for cmd in (["run"], ["presets"], ["inspect"], ["watch"], ["table"], ["export"], []):
        options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", invoke(*cmd, "--help").stdout)) - {"--help"}
        for opt in options:
            assert opt in section, (cmd, opt)


def test_run_over_seeds_writes_a_folder_per_seed_and_results_md(tmp_path, monkeypatch):
    seen_dirs = []
    fake_pipeline(monkeypatch)
    module = sys.modules["rga_engine.pipeline"]
    inner = module.run

    def run(cfg, sink, should_stop, run_dir=None):
        seen_dirs.append((cfg.train.seed, Path(run_dir)))
        return inner(cfg, sink, should_stop, run_dir=run_dir)

    module.run = run
    out = tmp_path / "seeds"
    r = invoke("run", DEMO, "--seeds", "2021-2022,2024", "--out", out, "-q")
    assert r.exit_code == 0, r.output
    assert seen_dirs == [(2021, out / "s2021"), (2022, out / "s2022"), (2024, out / "s2024")]
    md = (out / "results.md").read_text()
    assert "2021, 2022, 2024" in md and "±" in md
    assert f"results over seeds: {out / 'results.md'}" in r.stdout
    # a folder that already holds one of the seeds is refused before anything runs
    seen_dirs.clear()
    assert_one_line_error(invoke("run", DEMO, "--seeds", "2023,2024", "--out", out), "s2024 already holds a run")
    assert seen_dirs == []
    assert_one_line_error(invoke("run", DEMO, "--seeds", "2025-2021"), "empty range")


def test_presets_on_a_terminal_wrap_between_words_under_their_column():
    """`rga-tui presets` on an 80-column terminal broke its 100+-column lines mid-word (the
    terminal wrapped them). Given the width, nothing passes it and nothing is lost: each
    description's words, in order, under its preset; piped (no width), one whole line each."""
    from rga_tui.cli import preset_lines
    from rga_tui.presets import discover_presets

    infos = [i for i in discover_presets([], strict=True) if not i.error]
    assert len(preset_lines(infos)) == len(infos)  # piped: one line per preset, whole
    for width in (80, 150):
        lines = preset_lines(infos, width)
        assert all(len(line) <= width for line in lines), width
        assert len(lines) > len(infos)  # some descriptions did wrap
        starts = [n for n, line in enumerate(lines) if not line.startswith(" ")]
        assert len(starts) == len(infos)  # each preset begins at column 0 with its name
        for info, a, b in zip(infos, starts, starts[1:] + [len(lines)]):
            block = " ".join(line.strip() for line in lines[a:b])
            assert lines[a].startswith(info.name) and info.model in block
            assert " ".join(info.description.split()) in block, (width, block)
    # narrower than the columns (stacked: each preset's columns joined by " · "), a wrapped
    # line never begins with the separator
    for width in (40, 48, 56):
        lines = preset_lines(infos, width)
        assert all(len(line) <= width for line in lines), width
        assert not any(line.strip().startswith("·") for line in lines), width

"""Hardening (issue 18): every bad input is one ``error:`` line with exit 2 (never a traceback),
run folders and the cache never lie, and remote code runs only when the command line says so.

Most cases go through the real command line in a subprocess (``python -m rga_tui ...``); the
few real runs use the tiny model on a few hundred rows, without Retrain, so the file stays fast.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "presets" / "tiny-sst2-badnets.toml"
# a real run that takes a few seconds: 200 rows, a 1-layer tiny model, no Retrain, GA only
SMALL = ["--set", "data.train_limit=200", "--set", "data.test_limit=60", "--set", "train.epochs=1",
         "--set", "unlearn.epochs=1", "--set", 'unlearn.methods=["ga"]', "--set", "train.retrain=false",
         "--set", "model.num_layers=1", "--set", "model.hidden_size=32", "--set", "model.intermediate_size=64",
         "--set", "model.max_length=32", "--set", "unlearn.eval_every=0"]


LONGER = ["--set", "train.epochs=2"]  # a poisoning stage that lasts a moment: the signal lands mid-run


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["RGA_TUI_CACHE"] = str(tmp_path / "cache")
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


def cli(tmp_path: Path, *args, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """``python -m rga_tui ARGS`` in a subprocess, from ``tmp_path``."""
    return subprocess.run([sys.executable, "-m", "rga_tui", *[str(a) for a in args]], cwd=tmp_path,
                          env=env_for(tmp_path), capture_output=True, text=True, timeout=timeout, **kw)


def assert_one_line_error(p: subprocess.CompletedProcess, contains: str = "", code: int = 2) -> str:
    assert p.returncode == code, (p.returncode, p.stdout[-2000:], p.stderr[-3000:])
    assert "Traceback" not in p.stdout + p.stderr, p.stderr[-3000:]
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert contains in lines[0], lines[0]
    return lines[0]


# --------------------------------------------------------------------------- 1. NaN / inf

NONFINITE = ["train.lr=nan", "unlearn.lr=nan", "train.weight_decay=nan", "train.max_grad_norm=inf",
             "unlearn.shift_threshold=nan", "model.pretrain_lr=nan", "attack.poison_rate=nan",
             "model.pretrain_mask_prob=nan", "methods.rga.alpha=nan", "methods.npo.beta=inf",
             "methods.ga.forget_weight=-inf", "methods.rga.beta=nan"]


@pytest.mark.parametrize("key", ["train.lr=nan", "unlearn.lr=inf", "methods.rga.alpha=nan"])
def test_nan_and_inf_are_refused_naming_the_key(tmp_path, key):
    line = assert_one_line_error(cli(tmp_path, "run", TINY, "--set", key), key.split("=")[0])
    assert "finite" in line
    assert not (tmp_path / "runs").exists()  # refused before any run folder


def test_every_float_key_must_be_finite():
    from rga_engine import config

    for item in NONFINITE:
        key = item.split("=")[0]
        with pytest.raises(config.ConfigError, match="^" + key.replace(".", r"\.") + " = .*finite"):
            config.load(TINY, [item])


def test_nan_in_a_preset_file_and_in_code(tmp_path):
    (tmp_path / "p.toml").write_text('[unlearn]\nlr = nan\n', encoding="utf-8")
    assert_one_line_error(cli(tmp_path, "run", tmp_path / "p.toml"), "unlearn.lr = nan")
    from rga_engine import config

    cfg = config.Config()
    cfg.train.max_grad_norm = float("nan")
    with pytest.raises(config.ConfigError, match=r"^train\.max_grad_norm = nan: must be a finite number"):
        config.validate(cfg)
    from rga_engine.methods import method_params

    with pytest.raises(config.ConfigError, match=r"^methods\.rga\.beta = inf"):
        method_params("rga", {"beta": float("inf")})


# --------------------------------------------------------------------------- 2. one line, exit 2

def test_preset_not_utf8_directly_and_through_extends(tmp_path):
    (tmp_path / "latin.toml").write_bytes("# caf\xe9\n[train]\nepochs = 1\n".encode("latin-1"))
    (tmp_path / "child.toml").write_text('extends = "latin.toml"\n', encoding="utf-8")
    for name in ("latin.toml", "child.toml"):
        line = assert_one_line_error(cli(tmp_path, "run", tmp_path / name), "latin.toml: not UTF-8 text")
        assert "0xe9 on line 1" in line and "save the preset as UTF-8" in line


def test_a_utf8_bom_is_accepted(tmp_path):
    # a BOM used to be blamed as "line 1, column 1"; now it is skipped, so the real mistake is named
    (tmp_path / "bom.toml").write_bytes(b"\xef\xbb\xbf[train]\nbogus = 1\n")
    line = assert_one_line_error(cli(tmp_path, "run", tmp_path / "bom.toml"), "train.bogus: unknown key")
    assert "column" not in line
    from rga_engine import config

    (tmp_path / "ok.toml").write_bytes(b"\xef\xbb\xbf[train]\nepochs = 1\n")
    assert config.load(tmp_path / "ok.toml").train.epochs == 1


def test_out_naming_an_existing_file(tmp_path):
    (tmp_path / "afile").write_text("mine\n")
    assert_one_line_error(cli(tmp_path, "run", TINY, "--out", "afile"), "--out afile: is a file")
    assert (tmp_path / "afile").read_text() == "mine\n"


def test_out_on_a_read_only_file_system(tmp_path):
    # os.mkdir raising EROFS, as on a read-only mount (the test may not mount one)
    code = ("import errno, os, sys\n"
            "def mkdir(path, *a, **k):\n"
            "    raise OSError(errno.EROFS, 'Read-only file system', str(path))\n"
            "os.mkdir = mkdir\n"
            "from rga_tui.cli import main\n"
            f"sys.argv = ['rga-tui', 'run', {str(TINY)!r}, '--out', 'ro/run']\n"
            "main()\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env_for(tmp_path), capture_output=True,
                       text=True, timeout=120)
    assert_one_line_error(p, "--out ro/run: cannot create the folder (Read-only file system)")


def test_latin1_data_file_is_one_line_and_leaves_no_run_folder(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for split, n in (("train", 40), ("test", 20)):
        rows = "".join(f"caf\xe9 tr\xe8s bon {i},{i % 2}\n" for i in range(n))
        (data / f"{split}.csv").write_bytes(b"text,label\n" + rows.encode("latin-1"))
    (tmp_path / "local.toml").write_text('[data]\ndataset = "local"\npath = "data"\n', encoding="utf-8")
    p = cli(tmp_path, "run", tmp_path / "local.toml", "--out", "runs/latin", "--no-svg")
    line = assert_one_line_error(p, "data.encoding: train.csv is not utf-8 (byte 0xe9 at offset 14)")
    assert "Failed to read" not in p.stdout + p.stderr  # no leaked `datasets` log line
    assert "save the file as UTF-8" in line
    assert not (tmp_path / "runs").exists()  # failed before its first stage: nothing left behind


# --------------------------------------------------------------------------- 2. watch on odd events

FIXTURE = ROOT / "tests" / "fixtures" / "sst2_badnets_events.jsonl"


@pytest.fixture
def anyio_backend():
    return "asyncio"


def odd_events(tmp_path: Path) -> Path:
    """The recorded fixture with label_names that are not lists, plus malformed known events."""
    events = [json.loads(ln) for ln in FIXTURE.read_text(encoding="utf-8").splitlines() if ln.strip()]
    events[0]["config"]["data"]["label_names"] = 5
    events[0]["config"]["name"] = "odd\x1b]0;pwned\x07"
    for e in events:
        if e["type"] == "run_finished":
            e["summary"]["label_names"] = "negative,positive"
    bad = [{"type": "stage_started", "stage": None, "total_steps": 3},
           {"type": "stage_started", "stage": "bogus", "total_steps": 3},
           {"type": "step", "stage": "run", "step": 1, "loss": 0.1},
           {"type": "step", "stage": "poison", "step": "one", "loss": 0.1},
           {"type": "eval", "stage": "poison", "step": 1, "split": 3, "confusion": [[1]], "metrics": {}},
           {"type": "stage_finished", "stage": ["x"], "metrics": {}, "seconds": 1}]
    events[1:1] = [dict(b, time=events[0]["time"]) for b in bad]
    d = tmp_path / "odd-run"
    d.mkdir()
    (d / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return d


def test_malformed_known_events_add_no_phantom_stage(tmp_path):
    from rga_engine.events import read_events
    from rga_tui.state import RunState

    s = RunState()
    s.apply_many(read_events(odd_events(tmp_path) / "events.jsonl"))
    assert list(s.stages) == ["poison", "retrain", "unlearn:ga", "unlearn:npo", "unlearn:rga"]
    assert s.finished and s.label_names == ["negative", "positive"]  # 5 and a string ignored
    assert sum("ignored a malformed" in ln.message for ln in s.logs) == 6
    assert "\x1b" not in s.name and "\\x1b]0;pwned" in s.name  # shown, never obeyed


@pytest.mark.anyio
async def test_watch_survives_label_names_that_are_not_a_list(tmp_path):
    from rga_tui.app import RgaApp
    from rga_tui.screens.run import RunScreen

    app = RgaApp(watch_dir=odd_events(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(200):
            if isinstance(app.screen, RunScreen) and app.screen.state.finished:
                break
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        assert app.screen.state.finished
        text = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
        assert "finished" in text and "bogus" not in text
    assert app.return_code in (None, 0)


# --------------------------------------------------------------------------- 3. remote code

def test_trust_remote_code_needs_the_command_line_flag(tmp_path):
    (tmp_path / "remote.toml").write_text('[model]\nname = "some/model"\ntrust_remote_code = true\n',
                                          encoding="utf-8")
    line = assert_one_line_error(cli(tmp_path, "run", tmp_path / "remote.toml"), "model.trust_remote_code = true")
    assert "--trust-remote-code" in line
    assert_one_line_error(cli(tmp_path, "run", TINY, "--set", "model.trust_remote_code=true"), "--trust-remote-code")


def test_trust_remote_code_flag_allows_it(tmp_path, monkeypatch):
    seen = fake_pipeline(monkeypatch)
    r = invoke("run", TINY, "--out", tmp_path / "run", "--set", "model.trust_remote_code=true",
               "--trust-remote-code", "--no-svg")
    assert r.exit_code == 0, r.output
    assert seen["cfg"].model.trust_remote_code is True
    from rga_engine import config
    from rga_tui.screens.sources import ProcessSource

    cfg = config.load(TINY, ["model.trust_remote_code=true"], allow_remote_code=True)
    assert "--trust-remote-code" in ProcessSource(cfg, tmp_path / "r").command(tmp_path / "p.toml")
    assert "--trust-remote-code" not in ProcessSource(config.load(TINY), tmp_path / "r").command(tmp_path / "p.toml")


class _FakeRunPipeline:
    def __init__(self) -> None:
        self.calls: list = []

    def run(self, cfg, sink, should_stop, run_dir=None):
        self.calls.append(cfg)
        summary = {"status": "finished", "models": {}}
        sink.emit({"type": "run_started", "time": time.time(), "config": cfg.to_dict()})
        sink.emit({"type": "run_finished", "time": time.time(), "summary": summary})
        return summary


@pytest.mark.anyio
async def test_app_asks_before_running_remote_code(tmp_path, monkeypatch):
    import types

    from rga_tui.app import RgaApp
    from rga_tui.screens.home import HomeScreen
    from rga_tui.screens.modals import ConfirmScreen
    from rga_tui.screens.run import RunScreen

    fake = _FakeRunPipeline()
    monkeypatch.setitem(sys.modules, "rga_engine.pipeline", types.SimpleNamespace(run=fake.run))
    monkeypatch.setattr("rga_tui.screens.home.discover", lambda dirs: [])
    preset = tmp_path / "remote.toml"
    preset.write_text('description = "remote"\n[model]\nname = "tiny"\ntrust_remote_code = true\n', encoding="utf-8")
    app = RgaApp(out_dir=tmp_path / "runs", preset=preset, in_process=True)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(200):
            if isinstance(app.screen, HomeScreen) and app.screen.cfg is not None:
                break
            await pilot.pause(0.05)
        home = app.screen
        assert home.cfg.model.trust_remote_code
        home.query_one("#preset-tree").focus()
        await pilot.press("r")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ConfirmScreen) and "trust_remote_code" in app.screen.question
        await pilot.press("n")
        await pilot.pause(0.2)
        assert isinstance(app.screen, HomeScreen) and not fake.calls
        await pilot.press("r")
        await pilot.pause(0.2)
        await pilot.press("y")
        for _ in range(100):
            if fake.calls:
                break
            await pilot.pause(0.05)
        assert isinstance(app.screen, RunScreen)
        assert fake.calls and fake.calls[0].model.trust_remote_code is True


# --------------------------------------------------------------------------- 4. run folders

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_cli import fake_pipeline, invoke  # noqa: E402


def test_out_with_foreign_files_is_refused_and_untouched(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("keep me\n")
    assert_one_line_error(cli(tmp_path, "run", TINY, "--out", d), "is not empty and holds no run (notes.txt)")
    assert [p.name for p in d.iterdir()] == ["notes.txt"] and (d / "notes.txt").read_text() == "keep me\n"


def _dead_process() -> dict:
    """The process tag of a process that has exited (as a killed run's)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return {"pid": p.pid, "host": socket.gethostname()}


def _old_run(d: Path, cfg, status: str, staged: bool = True, process: dict | None = None) -> None:
    """A run folder as an earlier run left it."""
    process = process or {"pid": 4194311, "host": "elsewhere"}
    d.mkdir(parents=True)
    (d / "config.toml").write_text(cfg.to_toml(), encoding="utf-8")
    lines = [{"type": "run_started", "config": {}, "process": process}]
    if staged:
        lines.append({"type": "stage_started", "stage": "poison", "total_steps": 5})
    (d / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines), encoding="utf-8")
    (d / "summary.json").write_text(json.dumps({"status": status, "models": {}, "process": process}),
                                    encoding="utf-8")


def test_out_holding_a_run_finished_other_or_unfinished(tmp_path, monkeypatch):
    from rga_engine import config

    fake_pipeline(monkeypatch)
    cfg = config.load(TINY)
    _old_run(tmp_path / "done", cfg, "finished")
    r = invoke("run", TINY, "--out", tmp_path / "done")
    assert r.exit_code == 2 and "already holds a run (finished); choose a new folder" in r.stderr
    _old_run(tmp_path / "other", config.load(TINY, ["train.epochs=1"]), "cancelled")
    r = invoke("run", TINY, "--out", tmp_path / "other")
    assert r.exit_code == 2 and "of another preset or other settings" in r.stderr
    _old_run(tmp_path / "stopped", cfg, "cancelled")
    r = invoke("run", TINY, "--out", tmp_path / "stopped")
    assert r.exit_code == 2 and "did not finish (cancelled); add --resume" in r.stderr
    r = invoke("run", TINY, "--out", tmp_path / "stopped", "--resume", "--no-svg")
    assert r.exit_code == 0, r.output
    assert "resuming the unfinished run" in r.stdout
    assert (tmp_path / "stopped" / "events.jsonl.prev").is_file()  # the earlier attempt, kept


def test_a_run_that_fails_before_its_first_stage_leaves_nothing(tmp_path, monkeypatch):
    fake_pipeline(monkeypatch, "data_error")
    r = invoke("run", TINY, "--out", tmp_path / "a" / "b" / "run")
    assert r.exit_code == 2 and "embedded file is missing" in r.stderr
    assert not (tmp_path / "a").exists()
    # a folder left by a run killed before its first stage (its process gone) can be reused
    from rga_engine import config

    d = tmp_path / "left"
    _old_run(d, config.load(TINY, ["train.epochs=1"]), "running", staged=False, process=_dead_process())
    fake_pipeline(monkeypatch)
    r = invoke("run", TINY, "--out", d, "--no-svg")
    assert r.exit_code == 0, r.output


def _wait_for(cond, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.05)


def _start(tmp_path: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = env_for(tmp_path, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "rga_tui", "run", str(TINY), "--out", str(out), "--no-svg",
                             *SMALL, *extra], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _staged(out: Path) -> bool:
    f = out / "events.jsonl"
    return f.is_file() and '"stage_started"' in f.read_text(encoding="utf-8")


def test_sigterm_is_like_ctrl_c(tmp_path):
    out = tmp_path / "run"
    proc = _start(tmp_path, out, "--set", "train.epochs=40")
    try:
        _wait_for(lambda: _staged(out) or proc.poll() is not None)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stdout + stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "cancelled"
    assert "run_finished" in (out / "events.jsonl").read_text()


def test_sigkill_shows_as_stopped_in_table_watch_and_the_run_list(tmp_path):
    out = tmp_path / "runs" / "killed"
    proc = _start(tmp_path, out, "--set", "train.epochs=40")
    try:
        _wait_for(lambda: (out / "summary.json").is_file() and _staged(out) or proc.poll() is not None)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "running" and summary["process"]["pid"] == proc.pid  # what it left
    p = cli(tmp_path, "table", out)
    assert p.returncode == 0 and "run stopped" in p.stdout, p.stdout
    from rga_engine.events import read_events
    from rga_engine.report import load_summary
    from rga_tui.screens.home import list_runs
    from rga_tui.state import RunState

    assert load_summary(out)["status"] == "stopped"
    assert [r.status for r in list_runs(out.parent)] == ["stopped"]
    state = RunState()
    state.apply_many(read_events(out / "events.jsonl"))
    assert state.writer["pid"] == proc.pid and state.is_running  # the file alone says "running" ...
    # ... the watch screen checks the process (see test_watch_shows_a_killed_run_as_stopped)
    # the same preset and settings again: refused with a line that says how to resume
    line = assert_one_line_error(cli(tmp_path, "run", TINY, "--out", out, *SMALL, "--set", "train.epochs=40"),
                                 "did not finish (stopped)")
    assert "--resume" in line


@pytest.mark.anyio
async def test_watch_shows_a_killed_run_as_stopped(tmp_path):
    from rga_tui.app import RgaApp
    from rga_tui.screens.run import RunScreen

    events = [json.loads(ln) for ln in FIXTURE.read_text(encoding="utf-8").splitlines() if ln.strip()]
    events[0]["process"] = _dead_process()
    cut = next(i for i, e in enumerate(events) if e["type"] == "stage_started" and e["stage"] == "unlearn:ga") + 3
    d = tmp_path / "killed"
    d.mkdir()
    (d / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events[:cut]), encoding="utf-8")
    app = RgaApp(watch_dir=d)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(200):
            if isinstance(app.screen, RunScreen) and app.screen.state.stopped:
                break
            await pilot.pause(0.05)
        state = app.screen.state
        assert state.stopped and not state.is_running
        assert state.stages["unlearn:ga"].status == "cancelled" and state.stages["unlearn:ga"].eta(None) is None
        await pilot.pause(0.2)
        text = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
        assert "stopped (its process is gone)" in text


# --------------------------------------------------------------------------- 4 + 5. SIGHUP, cache checksum

@pytest.fixture(scope="module")
def hup_run(tmp_path_factory):
    """One real run (cache on) whose terminal hangs up once its first stage has started."""
    tmp = tmp_path_factory.mktemp("hup")
    out = tmp / "run"
    proc = _start(tmp, out, *LONGER)
    try:
        _wait_for(lambda: _staged(out) or proc.poll() is not None)
        assert proc.poll() is None, "the run ended before the hang-up"
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.2)
        proc.stdout.close()  # the terminal is gone: nobody reads any more
        proc.stderr.close()
        proc.wait(timeout=120)
    finally:
        proc.kill()
    return tmp, out, proc


def test_sighup_keeps_training_and_writing_the_run_folder(hup_run):
    tmp, out, proc = hup_run
    assert proc.returncode == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and set(summary["models"]) == {"poisoned", "ga"}
    assert summary["process"]["pid"] == proc.pid and summary["process"]["host"] == socket.gethostname()
    assert (out / "results.md").is_file()


def test_a_damaged_cache_entry_is_reported_and_retrained(hup_run):
    tmp, _, _ = hup_run
    from rga_engine import cache

    entry = next((tmp / "cache").glob("poison-*.safetensors"))
    raw = bytearray(entry.read_bytes())
    header = int.from_bytes(raw[:8], "little")
    raw[8 + header + 5] ^= 0x01  # one bit of the tensor data; the header stays intact
    entry.write_bytes(bytes(raw))
    out = tmp / "again"
    # ... and a method whose loss overflows names the key that caused it
    p = cli(tmp, "run", TINY, "--out", out, "--no-svg", *SMALL, *LONGER, "--set", "methods.ga.forget_weight=1e39")
    line = assert_one_line_error(p, "stage unlearn:ga failed: unlearn:ga: the loss became", code=1)
    assert "(check unlearn.lr = 0.0005, methods.ga.forget_weight = 1e+39)" in line
    assert f"poison: the cached weights {entry.name} are damaged (checksum mismatch); training again" in p.stdout
    events = [json.loads(ln) for ln in (out / "events.jsonl").read_text().splitlines()]
    logs = [e for e in events if e["type"] == "log" and "damaged" in e["message"]]
    assert len(logs) == 1 and logs[0]["level"] == "warning"
    started = next(e for e in events if e["type"] == "stage_started" and e["stage"] == "poison")
    assert started["total_steps"] > 0  # trained again, not "(cached)"
    assert not json.loads((out / "summary.json").read_text())["models"]["poisoned"].get("cached")
    # the entry was written again, whole, with its checksum
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(entry), framework="pt") as f:
        want = f.metadata()[cache.CHECKSUM_KEY]
    assert cache.tensors_digest(load_file(str(entry))) == want


def test_cache_checksum_unit(tmp_path):
    import torch

    from rga_engine import cache

    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    cache.save(tmp_path, "poison", "k", model, {"stage": "poison"})
    other = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    assert cache.fetch(tmp_path, "poison", "k", other) == (True, None)
    assert torch.equal(other[0].weight, model[0].weight)
    path = cache.path_for(tmp_path, "poison", "k")
    path.write_bytes(path.read_bytes()[:-7])  # truncated
    fresh = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    before = fresh[0].weight.detach().clone()
    loaded, problem = cache.fetch(tmp_path, "poison", "k", fresh)
    assert not loaded and problem.startswith("unreadable")
    assert torch.equal(fresh[0].weight, before)  # a damaged entry changes nothing
    assert cache.fetch(tmp_path, "poison", "nope", fresh) == (False, None)


# --------------------------------------------------------------------------- 6. terminal escapes

def test_presets_prints_escape_sequences_escaped(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "evil.toml").write_text('description = "hi\\u001b]0;pwned\\u0007\\u001b[2J there"\n[model]\nname = "tiny"\n',
                                 encoding="utf-8")
    p = cli(tmp_path, "presets", "--presets", d)
    assert p.returncode == 0, p.stderr
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("evil "))
    assert "\x1b" not in p.stdout and "\x07" not in p.stdout
    assert line.endswith("hi\\x1b]0;pwned\\x07\\x1b[2J there")


def test_inspect_escapes_dataset_text(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for split, n in (("train", 40), ("test", 20)):
        rows = [{"text": f"{split} row {i} \x1b[2J\x9b31m wipe", "label": i % 2} for i in range(n)]
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "local.toml").write_text('[data]\ndataset = "local"\npath = "data"\n', encoding="utf-8")
    r = invoke("inspect", tmp_path / "local.toml")
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.stdout and "\x9b" not in r.stdout and "\\x1b[2J" in r.stdout
    j = invoke("inspect", tmp_path / "local.toml", "--json")
    assert j.exit_code == 0 and "\x9b" not in j.stdout and "\x1b" not in j.stdout
    assert "\x1b[2J\x9b31m" in json.loads(j.stdout)["examples"][0]["clean"]  # the same value, escaped


# --------------------------------------------------------------------------- 7. smaller

def test_an_empty_preset_needs_yes(tmp_path, monkeypatch):
    (tmp_path / "empty.toml").write_text('description = "nothing"\n', encoding="utf-8")
    line = assert_one_line_error(cli(tmp_path, "run", tmp_path / "empty.toml"), "the preset sets nothing")
    assert "every training row, 5 training epochs, methods ga, npo, rga for 30 unlearning epochs" in line
    assert "--yes" in line
    seen = fake_pipeline(monkeypatch)
    r = invoke("run", tmp_path / "empty.toml", "--yes", "--out", tmp_path / "run", "--no-svg")
    assert r.exit_code == 0, r.output
    assert seen["cfg"].unlearn.epochs == 30


def test_hiddenkiller_without_paraphrases_names_the_key():
    from rga_engine.attacks import AttackError, poison
    from rga_engine.config import AttackConfig
    from rga_engine.data.loaders import Example, TextDataset

    rows = [Example(f"text {i}", i % 2) for i in range(40)]
    ds = TextDataset("mine", 2, ["a", "b"], rows[:30], rows[30:])
    with pytest.raises(AttackError, match="set data.paraphrase_column to the column that holds them"):
        poison(ds, AttackConfig(name="hiddenkiller"), 2021)


def test_output_to_a_terminal_gone_before_the_hangup_handler_runs(tmp_path):
    """The pipe closes before SIGHUP's handler has run (a long torch op delays Python handlers):
    the next write must detach from the terminal, not end the run with BrokenPipeError."""
    script = tmp_path / "child.py"
    script.write_text(
        "import sys, time\n"
        "from rga_tui.headless import hangup_safe_streams\n"
        "restore = hangup_safe_streams()\n"
        "sys.stdin.readline()  # the parent has closed its end of the stdout pipe\n"
        "for _ in range(200):\n"
        "    print('progress ' * 100, flush=True)\n"
        "print('to stderr', file=sys.stderr, flush=True)\n"
        "restore()\n"
        "open(sys.argv[1], 'w').write('finished')\n", encoding="utf-8")
    marker = tmp_path / "marker"
    env = env_for(tmp_path)
    proc = subprocess.Popen([sys.executable, str(script), str(marker)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()
    proc.stderr.close()
    proc.stdin.write(b"go\n")
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0
    assert marker.read_text() == "finished"


def test_a_nonfinite_loss_names_the_methods_own_lr_where_it_has_one():
    """The one-line NaN/inf error names the settings that size the step: a method's own ``lr``
    in place of ``unlearn.lr``, with its other non-default keys."""
    from rga_engine import config
    from rga_engine.train import nonfinite_message

    c = config.load(str(TINY), ["methods.ga.lr=0.5", "methods.ga.forget_weight=3", "unlearn.lr=1e-4"])
    line = nonfinite_message(c, "unlearn:ga", RuntimeError("unlearn:ga: the loss became nan at step 3"))
    assert line == "unlearn:ga: the loss became nan at step 3 (check methods.ga.lr = 0.5, methods.ga.forget_weight = 3.0)"
    line = nonfinite_message(c, "unlearn:rga", RuntimeError("x"))
    assert line == "x (check unlearn.lr = 0.0001)"

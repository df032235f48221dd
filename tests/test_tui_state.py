"""RunState (rga_tui/state.py): events in, display state out, on the recorded-style fixture."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rga_engine.events import read_events
from rga_tui.state import (
    EventPacer,
    RunState,
    Series,
    downsample,
    fmt_duration,
    fmt_pct,
    split_overrides,
    stage_label,
)

FIXTURE = Path(__file__).parent / "fixtures" / "sst2_badnets_events.jsonl"


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return read_events(FIXTURE)


@pytest.fixture(scope="module")
def final(events) -> RunState:
    s = RunState()
    s.apply_many(events)
    return s


def upto(events, pred) -> RunState:
    """State after the events before the first one matching `pred`."""
    s = RunState()
    for e in events:
        if pred(e):
            break
        s.apply(e)
    return s


def test_fixture_is_realistic(events):
    types = {e["type"] for e in events}
    assert {"run_started", "stage_started", "step", "eval", "stage_finished", "run_finished", "log"} <= types
    assert 200 <= len(events) <= 1000
    assert all("time" in e for e in events)


def test_stages_planned_and_done(final):
    assert list(final.stages) == ["poison", "retrain", "unlearn:ga", "unlearn:npo", "unlearn:rga"]
    assert [st.label for st in final.board_stages] == ["Retrain", "Poisoned", "GA", "NPO", "RGA"]
    assert all(st.status == "done" and st.progress == 1.0 for st in final.stages.values())
    assert final.finished and not final.errors
    assert final.label_names == ["negative", "positive"] and final.target == 1


def test_final_matrices(final):
    assert final.matrix("poison") == [[0, 912], [0, 909]]
    assert final.matrix("retrain") == [[835, 77], [83, 826]]
    assert final.matrix("unlearn:ga") == [[912, 0], [909, 0]]
    assert final.matrix("unlearn:rga") == [[829, 83], [90, 819]]
    assert final.matrix("unlearn:rga", "test_clean") == [[833, 79], [85, 824]]


def test_verdicts(final):
    assert final.verdict("poison").kind == "remains"
    assert final.verdict("poison").text == "backdoor remains"
    ga = final.verdict("unlearn:ga")
    assert ga.kind == "shifted" and ga.text == "trigger shifted → negative"
    rga = final.verdict("unlearn:rga")
    assert rga.kind == "none" and rga.text == "no shift"
    assert final.verdict("retrain").kind == "none"


def test_verdict_follows_evals_during_ga(events):
    # after the first GA eval (epoch 10) the trigger still works; after the second it has shifted
    seen = []
    s = RunState()
    for e in events:
        s.apply(e)
        if e["type"] == "eval" and e["stage"] == "unlearn:ga" and e["split"] == "test_poisoned_all":
            seen.append(s.verdict("unlearn:ga").kind)
    assert seen == ["remains", "shifted", "shifted"]


def test_lambda_series_decays_from_one(final):
    lam = final.series("unlearn:rga", "lambda")
    assert len(lam) > 50
    assert lam.ys[0] > 0.95 and lam.ys[-1] < 0.1
    xs, ys = lam.downsampled(20)
    assert len(xs) <= 20 and xs[0] == lam.xs[0] and xs[-1] == lam.xs[-1]
    assert ys[0] > ys[-1]
    assert not len(final.series("unlearn:ga", "lambda"))
    assert len(final.series("unlearn:ga", "forget_loss")) == len(final.series("unlearn:ga", "retain_loss")) > 50


def test_progress_and_eta_mid_stage(events):
    # stop in the middle of GA: running, half done, ETA from event times
    s = upto(events, lambda e: e["type"] == "step" and e["stage"] == "unlearn:ga" and e["step"] == 92)
    ga = s.stages["unlearn:ga"]
    assert ga.status == "running" and ga.step == 90 and ga.total_steps == 180
    assert ga.progress == pytest.approx(0.5)
    assert s.stages["poison"].status == "done" and s.stages["unlearn:rga"].status == "pending"
    now = s.last_time
    elapsed, eta = ga.elapsed(now), ga.eta(now)
    assert elapsed > 0 and eta > 0
    assert eta == pytest.approx(elapsed, rel=0.25)  # half way: about as much left as done
    assert s.is_running and s.current_stage == "unlearn:ga"
    rows = {r.label: r for r in s.results_rows()}
    assert rows["Poisoned"].cacc is not None and rows["GA"].cacc is None


def test_results_rows(final):
    rows = final.results_rows()
    assert [r.label for r in rows] == ["Poisoned", "Retrain", "GA", "NPO", "RGA"]
    by = {r.label: r for r in rows}
    assert by["Poisoned"].asr == pytest.approx(1.0)
    assert by["Retrain"].delta_pacc is None
    assert by["RGA"].delta_pacc < by["GA"].delta_pacc
    assert by["GA"].verdict.kind == "shifted" and by["RGA"].verdict.kind == "none"
    assert fmt_pct(by["Poisoned"].asr) == "100.00"


def test_error_event_marks_stage_failed():
    s = RunState()
    s.apply({"type": "run_started", "time": 1.0, "config": {"unlearn": {"methods": ["ga"]}}})
    s.apply({"type": "stage_started", "time": 2.0, "stage": "poison", "total_steps": 10})
    s.apply({"type": "error", "time": 3.0, "stage": "poison", "message": "NonFiniteLoss: loss is nan"})
    s.apply({"type": "error", "time": 3.0, "stage": "run", "message": "RuntimeError: boom"})
    assert s.stages["poison"].status == "failed"
    assert "run" not in s.stages  # run-level errors are not stages
    assert [e.message for e in s.errors] == ["NonFiniteLoss: loss is nan", "RuntimeError: boom"]
    s.mark_aborted("RuntimeError: boom")  # the same message again is not repeated
    assert len(s.errors) == 2 and s.finished
    assert s.stages["unlearn:ga"].status == "cancelled"


def test_cancelled_run():
    s = RunState()
    s.apply({"type": "run_started", "time": 1.0, "config": {"unlearn": {"methods": ["ga", "rga"]}}})
    s.apply({"type": "stage_started", "time": 2.0, "stage": "poison", "total_steps": 10})
    s.apply({"type": "step", "time": 3.0, "stage": "poison", "step": 3, "loss": 0.5})
    s.apply({"type": "stage_finished", "time": 4.0, "stage": "poison", "metrics": {"cancelled": True}, "seconds": 2})
    s.apply({"type": "run_finished", "time": 5.0, "summary": {"status": "cancelled", "models": {}}})
    assert s.stages["poison"].status == "cancelled"
    assert {st.status for st in s.stages.values()} == {"cancelled"}


def test_malformed_events_do_not_raise():
    s = RunState()
    s.apply({"type": "eval", "stage": "poison"})  # missing fields
    s.apply({"type": "step", "stage": "poison", "step": "x", "loss": None})
    s.apply({"type": "nonsense"})
    s.apply("not a dict")  # type: ignore[arg-type]
    assert s.n_events == 3


def test_downsample_and_series_cap():
    xs = list(range(1000))
    ys = [float(x) for x in xs]
    dx, dy = downsample(xs, ys, 50)
    assert len(dx) == 50 and dx[0] == 0 and dx[-1] == 999 and dy == sorted(dy)
    assert downsample(xs[:10], ys[:10], 50) == (xs[:10], ys[:10])
    ser = Series(cap=100)
    for i in range(1000):
        ser.add(i, i)
    ser.add(5, float("nan"))  # ignored
    assert len(ser) <= 100 and ser.last == pytest.approx(999, abs=10)


def test_split_overrides():
    assert split_overrides("unlearn.epochs=5  methods.rga.alpha=1.5\ntrain.lr=1e-4") == [
        "unlearn.epochs=5", "methods.rga.alpha=1.5", "train.lr=1e-4"]
    assert split_overrides('attack.sentence="I watch this" unlearn.methods = ["ga", "rga"]') == [
        'attack.sentence="I watch this"', 'unlearn.methods=["ga", "rga"]']
    assert split_overrides("  ") == []


def test_event_pacer():
    evs = [{"type": "log", "time": 100.0 + t} for t in (0, 1, 2, 10, 100)]
    p = EventPacer(speed=2.0, max_gap=5.0)
    p.feed(evs)
    assert len(p.due(0.0)) == 1  # t=0
    assert len(p.due(1.0)) == 2  # t=1, 2 (2 s of events per wall second)
    assert len(p.due(4.0)) == 1  # t=10, gap clamped to 5 → at 7 s of event time
    assert p.pending == 1
    assert len(p.due(10.0)) == 1 and p.pending == 0
    p0 = EventPacer(speed=0)
    p0.feed(evs)
    assert len(p0.due(0.0)) == 5


def test_labels_and_formatting():
    assert stage_label("unlearn:rga") == "RGA" and stage_label("poison") == "Poisoned"
    assert fmt_duration(75) == "1:15" and fmt_duration(3725) == "1:02:05" and fmt_duration(None) == "--:--"
    assert fmt_pct(None) == "—"


def test_state_is_ui_free():
    code = "import sys, rga_tui.state; bad = [m for m in ('textual', 'rich') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

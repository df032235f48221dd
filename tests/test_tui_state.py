"""RunState (rga_tui/state.py): events in, display state out, on the recorded-style fixture."""

from __future__ import annotations

import json
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
SUMMARY = Path(__file__).parent / "fixtures" / "sst2_badnets_summary.json"


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return read_events(FIXTURE)


@pytest.fixture(scope="module")
def summary() -> dict:
    return json.loads(SUMMARY.read_text())


STAGE_KEYS = {"poison": "poisoned", "retrain": "retrain", "unlearn:ga": "ga", "unlearn:npo": "npo", "unlearn:rga": "rga"}


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


def test_fixture_is_a_real_run(events, summary):
    # a recorded `rga-tui` run of presets/demo/sst2-badnets.toml (see tests/fixtures/README.md)
    types = {e["type"] for e in events}
    assert {"run_started", "stage_started", "step", "eval", "stage_finished", "run_finished", "log"} <= types
    assert all("time" in e for e in events)
    assert events[0]["config"]["name"] == "demo-sst2-badnets" and summary["status"] == "finished"
    assert events[-1]["summary"]["models"].keys() == summary["models"].keys()


def test_stages_planned_and_done(final):
    assert list(final.stages) == ["poison", "retrain", "unlearn:ga", "unlearn:npo", "unlearn:rga"]
    assert [st.label for st in final.board_stages] == ["Retrain", "Poisoned", "GA", "NPO", "RGA"]
    assert all(st.status == "done" and st.progress == 1.0 for st in final.stages.values())
    assert final.finished and not final.errors
    assert final.label_names == ["negative", "positive"] and final.target == 1


def test_final_matrices_are_the_engines(final, summary):
    for stage, key in STAGE_KEYS.items():
        m = summary["models"][key]
        assert final.matrix(stage) == m["confusion_poisoned_all"], stage
        assert final.matrix(stage, "test_clean") == m["confusion_clean"], stage


def test_verdicts_are_the_engines(final, summary):
    for stage, key in STAGE_KEYS.items():
        ts = summary["models"][key]["trigger_shift"]
        if ts["remains"] or ts["shifted"]:
            assert final.verdict(stage).kind == ("remains" if ts["remains"] else "shifted"), stage
    # what the demo is for: the backdoor in the poisoned model, GA shifting it, RGA not
    assert final.verdict("poison").text == "backdoor remains"
    assert final.verdict("unlearn:ga").text == "trigger shifted → negative"
    # the fixture predates the graded verdict ("no shift"): graded here by the engine's rules from
    # the ASRs the events carry: RGA's 30.9 % is 22.6 points over Retrain's 8.3 %
    assert final.verdict("unlearn:rga").kind == "partly"
    assert final.verdict("unlearn:rga").text == "backdoor partly remains (ASR 30.9 %)"
    assert final.verdict("retrain") == final.verdict("retrain").__class__("removed", "backdoor removed", 0.0308)


def graded_run(shift: dict, clean: list[list[int]] | None = None) -> RunState:
    s = RunState()
    s.apply({"type": "run_started", "time": 1.0, "config": {"data": {"label_names": ["negative", "positive"]},
                                                            "attack": {"target": 1}, "unlearn": {"methods": ["ga"]}}})
    s.apply({"type": "stage_finished", "time": 2.0, "stage": "unlearn:ga", "seconds": 1.0,
             "metrics": {"asr": shift.get("asr"), "confusion_clean": clean or [[90, 10], [10, 90]],
                         "confusion_poisoned_all": [[90, 10], [10, 90]], "trigger_shift": shift}})
    return s


def test_graded_verdicts_from_the_engine():
    from rga_engine.metrics import trigger_shift

    names = ["negative", "positive"]
    partly = trigger_shift([[75, 25], [0, 100]], [[90, 10], [10, 90]], 1, asr=0.25, retrain_asr=0.1, label_names=names)
    v = graded_run(partly).verdict("unlearn:ga")
    assert (v.kind, v.text) == ("partly", "backdoor partly remains (ASR 25.0 %)")
    removed = trigger_shift([[90, 10], [0, 100]], [[90, 10], [10, 90]], 1, asr=0.1, retrain_asr=0.08, label_names=names)
    assert graded_run(removed).verdict("unlearn:ga").kind == "removed"
    everything = [[0, 100], [0, 100]]
    collapsed = trigger_shift(everything, everything, 1, label_names=names)
    v = graded_run(collapsed, everything).verdict("unlearn:ga")
    assert (v.kind, v.text) == ("collapsed", "predicts positive for everything")
    rows = {r.label: r for r in graded_run(partly).results_rows()}
    assert rows["GA"].verdict.kind == "partly" and rows["Poisoned"].verdict is None


def test_old_verdict_texts_still_read():
    # summaries written before the graded verdict: no "partly" key, texts "no shift" / "shifted to class 0"
    old = {"shifted": True, "to_class": 0, "score": 0.5, "remains": False, "verdict": "shifted to class 0"}
    v = graded_run(old).verdict("unlearn:ga")
    assert (v.kind, v.text) == ("shifted", "trigger shifted → negative")
    bare = {"shifted": False, "to_class": None, "score": 0.0, "remains": False, "verdict": "no shift"}
    v = graded_run(bare).verdict("unlearn:ga")  # nothing to grade it with
    assert (v.kind, v.text) == ("none", "no shift")


def test_verdict_follows_evals_during_ga(events):
    seen = []
    s = RunState()
    for e in events:
        s.apply(e)
        if e["type"] == "eval" and e["stage"] == "unlearn:ga" and e["split"] == "test_poisoned_all":
            seen.append(s.verdict("unlearn:ga").kind)
    # the verdict changes as GA goes on: not yet shifted at the first eval, shifted at the end
    assert len(seen) >= 3 and seen[0] != "shifted" and seen[-1] == "shifted"


def test_a_sampled_mid_run_evaluation_says_so_on_its_matrix(events):
    """A mid-run evaluation on ``unlearn.eval_rows``' sample (``"sample": true``) is marked on its
    matrix's title while the stage runs; the final evaluation (the whole test set) is not."""
    from rga_tui.widgets.matrix import MatrixLayout, matrix_lines

    s = RunState()
    for e in events:
        if e["type"] == "eval" and e["stage"] == "unlearn:ga" and e["step"] >= 0:
            e = {**e, "sample": True, "rows": 40}
        s.apply(e)
        if e["type"] == "eval" and e["stage"] == "unlearn:ga" and e["split"] == "test_poisoned_all":
            st = s.stages["unlearn:ga"]
            title = matrix_lines(st, s, "test_poisoned_all", MatrixLayout(s.label_names, 999, 1, 60))[0].plain
            assert st.status == "running" and e["step"] >= 0
            assert f"step {e['step']}/" in title and "· sample" in title, title
            break
    else:
        raise AssertionError("no mid-run evaluation of GA in the fixture")
    final = RunState()
    final.apply_many(events)
    st = final.stages["unlearn:ga"]
    assert "sample" not in matrix_lines(st, final, "test_poisoned_all", MatrixLayout(final.label_names, 999, 1, 60))[0].plain


def test_lambda_series_decays_from_one(final):
    lam = final.series("unlearn:rga", "lambda")
    assert len(lam) > 50
    assert lam.ys[0] > 0.95 and min(lam.ys[-10:]) < 0.1
    xs, ys = lam.downsampled(20)
    assert len(xs) <= 20 and xs[0] == lam.xs[0] and xs[-1] == lam.xs[-1]
    assert ys[0] > ys[-1]
    assert not len(final.series("unlearn:ga", "lambda"))
    assert len(final.series("unlearn:ga", "forget_loss")) == len(final.series("unlearn:ga", "retain_loss")) > 50


def test_progress_and_eta_mid_stage(events):
    total = next(e["total_steps"] for e in events if e["type"] == "stage_started" and e["stage"] == "unlearn:ga")
    half = next(e["step"] for e in events if e["type"] == "step" and e["stage"] == "unlearn:ga" and e["step"] >= total // 2)
    s = upto(events, lambda e: e["type"] == "step" and e["stage"] == "unlearn:ga" and e["step"] > half)
    ga = s.stages["unlearn:ga"]
    assert ga.status == "running" and ga.step == half and ga.total_steps == total
    assert ga.progress == pytest.approx(half / total)
    assert s.stages["poison"].status == "done" and s.stages["unlearn:rga"].status == "pending"
    now = s.last_time
    elapsed, eta = ga.elapsed(now), ga.eta(now)
    assert elapsed > 0 and eta > 0
    assert eta == pytest.approx(elapsed * (total - half) / half, rel=0.35)  # from the step rate so far
    assert s.is_running and s.current_stage == "unlearn:ga"
    rows = {r.label: r for r in s.results_rows()}
    assert rows["Poisoned"].cacc is not None and rows["GA"].cacc is None


def test_results_rows(final, summary):
    rows = final.results_rows()
    assert [r.label for r in rows] == ["Poisoned", "Retrain", "GA", "NPO", "RGA"]
    by = {r.label: r for r in rows}
    assert by["Poisoned"].asr == pytest.approx(summary["models"]["poisoned"]["asr"])
    assert by["Retrain"].delta_pacc is None
    assert by["RGA"].delta_pacc == pytest.approx(summary["models"]["rga"]["delta_pacc"])
    assert by["RGA"].delta_pacc < by["GA"].delta_pacc
    assert by["GA"].verdict.kind == "shifted" and by["RGA"].verdict.kind == "partly"
    assert by["Retrain"].verdict.text == "backdoor removed" and by["Poisoned"].verdict.kind == "remains"
    assert fmt_pct(by["Poisoned"].asr) == f"{100 * summary['models']['poisoned']['asr']:.2f}"


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


def test_pretraining_shows_as_a_phase_before_the_first_stage():
    st = RunState()
    st.apply({"type": "run_started", "config": {}, "device": "cpu", "time": 1.0})
    def log(m, t, **fields):
        st.apply({"type": "log", "level": "info", "message": m, "time": t, **fields})

    log("hsol/badnets: train_poisoned 6405 rows (582 poisoned), target 0", 1.1)
    assert st.phase is None
    log("pretrain: masked-LM pre-training of the tiny encoder, 5 epochs on the 5823 clean training texts", 1.2,
        phase="pretrain", epoch=0, epochs=5)
    assert st.phase == "pre-training the encoder"
    log("pretrain: MLM epoch 2/5, loss 6.292, 16 s", 2.0, phase="pretrain", epoch=2, epochs=5)
    assert st.phase == "pre-training the encoder 2/5"
    log("pretrain: MLM epoch 5/5, loss 5.804, 40 s", 3.0, phase="pretrain", epoch=5, epochs=5)
    assert st.phase == "pre-trained the encoder"
    st.apply({"type": "stage_started", "stage": "poison", "total_steps": 603, "time": 3.1})
    assert st.phase is None and st.current_stage == "poison"
    # a cached encoder: nothing to show
    st2 = RunState()
    st2.apply({"type": "log", "level": "info", "message": "pretrain: loaded cached weights pretrain-x.safetensors",
               "phase": "pretrain", "cached": True})
    assert st2.phase is None


def test_stage_strip_marks_stages_that_ran_at_once():
    """The strip's separator: "→" between stages that ran one after the other, "‖" between two
    that ran at once (train.side_by_side), from the event times."""
    from rga_tui.widgets.stages import ARROW, TOGETHER, at_once, separators

    s = RunState()
    t = 1000.0
    for ev in [
        {"type": "stage_started", "time": t, "stage": "poison", "total_steps": 10},
        {"type": "stage_started", "time": t + 0.1, "stage": "retrain", "total_steps": 10},
        {"type": "stage_finished", "time": t + 50, "stage": "retrain", "metrics": {}, "seconds": 50},
        {"type": "stage_finished", "time": t + 52, "stage": "poison", "metrics": {}, "seconds": 52},
        {"type": "stage_started", "time": t + 53, "stage": "unlearn:ga", "total_steps": 10},
        {"type": "stage_started", "time": t + 53.1, "stage": "unlearn:rga", "total_steps": 10},
    ]:
        s.apply(ev)
    st = s.stages
    assert at_once(st["poison"], st["retrain"])  # retrain started before poison finished
    assert not at_once(st["retrain"], st["unlearn:ga"])  # ga started after retrain finished
    assert at_once(st["unlearn:ga"], st["unlearn:rga"])  # ga still running when rga started
    # what the strip draws (render uses separators): "‖ → ‖", and plain gaps where arrows do not fit
    stages = list(st.values())
    assert separators(stages, ARROW) == [TOGETHER, ARROW, TOGETHER]
    assert separators(stages, " ") == [" "] * 3
    seq = RunState()
    for ev in [
        {"type": "stage_started", "time": t, "stage": "poison", "total_steps": 10},
        {"type": "stage_finished", "time": t + 5, "stage": "poison", "metrics": {}, "seconds": 5},
        {"type": "stage_started", "time": t + 6, "stage": "retrain", "total_steps": 10},
    ]:
        seq.apply(ev)
    assert not at_once(seq.stages["poison"], seq.stages["retrain"])
    assert len(ARROW) == len(TOGETHER)


class _Source:
    """What the status line reads of a source (a FileSource following a folder has speed 0)."""

    def __init__(self, waiting: bool = False, speed: float | None = None) -> None:
        self.waiting, self.path = waiting, "runs/x/events.jsonl"
        if speed is not None:
            self.speed = speed

    def describe(self) -> str:
        return "watch x" if hasattr(self, "speed") else "live x"


def test_status_line_says_what_the_run_does(events):
    from rga_tui.widgets.status import status_text

    def line(state, src=None, split="test_poisoned_all") -> str:
        return status_text(state, src or _Source(), split).plain

    assert "waiting for runs/x/events.jsonl" in line(RunState(), _Source(waiting=True))
    assert "starting…" in line(RunState())
    # side by side: both running stages are named; a folder being followed says so
    s = RunState()
    s.apply({"type": "run_started", "time": 1.0, "config": {"name": "demo", "unlearn": {"methods": ["ga"]}},
             "device": "cpu", "precision": "bf16"})
    s.apply({"type": "stage_started", "time": 2.0, "stage": "poison", "total_steps": 10})
    s.apply({"type": "stage_started", "time": 2.0, "stage": "retrain", "total_steps": 10})
    text = line(s, _Source(speed=0), split="test_clean")
    assert f"running {stage_label('poison')} ‖ {stage_label('retrain')} (following)" in text
    assert "matrices: clean (m)" in text and "watch x" in text and "cpu bf16" in text and "demo" in text
    assert "(following)" not in line(s, _Source(speed=4.0))  # a replay does not follow
    s.cancel_requested = True
    assert "cancelling…" in line(s)
    # the recorded run: finished, with its event-time length; an error makes it "failed"
    done = RunState()
    done.apply_many(events)
    total = fmt_duration(done.last_time - done.first_time)
    assert f"finished in {total}" in line(done) and "matrices: triggered (m)" in line(done)
    done.apply({"type": "error", "time": done.last_time, "stage": "run", "message": "RuntimeError: boom"})
    assert "failed" in line(done) and "finished" not in line(done)
    stopped = RunState()
    stopped.apply({"type": "run_started", "time": 1.0, "config": {}})
    stopped.mark_stopped("stopped: gone")
    assert "stopped (its process is gone)" in line(stopped)
    # a narrow line keeps the device: the matrices' split goes where the device would be cut
    # (at 80 columns it was, behind "matrices: triggered (m)"); the origin stays last, to be cut
    wide = status_text(done, _Source(), "test_poisoned_all", 200).plain
    assert wide == line(done) and wide.endswith(f"{done.device} · live x")
    upto_device = wide[: wide.index(done.device) + len(done.device)]
    assert status_text(done, _Source(), "test_poisoned_all", len(upto_device)).plain == wide  # fits: all kept
    narrow = status_text(done, _Source(), "test_poisoned_all", len(upto_device) - 1).plain
    assert "matrices" not in narrow and narrow.endswith(f"{done.device} · live x") and f"failed in {total}" in narrow
    assert len(narrow[: narrow.index(done.device) + len(done.device)]) <= len(upto_device) - 1


def test_live_verdicts_name_the_classes_the_run_says():
    """An HSOL run's live verdicts name class 1 as the engine's data does ("hate/offensive", as in
    summary.json), from the data log line's label_names, before the summary exists; a dataset the
    tool does not know gets its names the same way."""
    from rga_engine.metrics import trigger_shift

    def run(dataset, names, target):
        s = RunState()
        s.apply({"type": "run_started", "time": 1.0, "config": {"data": {"dataset": dataset, "label_names": []},
                                                                "attack": {"target": -1}, "unlearn": {"methods": ["ga"]}}})
        s.apply({"type": "log", "time": 1.1, "level": "info", "message": f"{dataset}/badnets: ...",
                 "label_names": names, "target": target})
        shift = trigger_shift([[90, 10], [95, 5]], [[90, 10], [10, 90]], target)  # class 1 → class 0 under the trigger
        s.apply({"type": "stage_finished", "time": 2.0, "stage": "unlearn:ga", "seconds": 1.0,
                 "metrics": {"asr": 0.0, "confusion_clean": [[90, 10], [10, 90]],
                             "confusion_poisoned_all": [[90, 10], [95, 5]], "trigger_shift": shift}})
        return s

    s = run("hsol", ["clean", "hate/offensive"], 1)
    assert s.summary is None and s.label_names == ["clean", "hate/offensive"] and s.target == 1
    assert s.verdict("unlearn:ga").text == "trigger shifted → clean"
    s = run("mine", ["calm", "angry"], 1)
    assert s.label_names == ["calm", "angry"] and s.verdict("unlearn:ga").text == "trigger shifted → calm"

"""train.side_by_side: independent stages in child processes, same numbers as one process."""

import types

import pytest
import torch

from rga_engine import config, pipeline, side_by_side
from rga_engine.events import ListSink

TINY = "tests/fixtures/presets/tiny-sst2-badnets.toml"
# learned models (each predicts both classes: with hidden_size 64 the poisoned one did not) on
# one transformer layer
SMALL = ["data.train_limit=1500", "data.test_limit=300", "train.epochs=2", "unlearn.epochs=2", "unlearn.eval_every=1",
         "model.max_length=32", "output.cache=false", "model.num_layers=1"]

# the stage-orchestration tests below (stop, fail, hand-over) need real stages, not learned models
JOBS = ["data.train_limit=300", "data.test_limit=60", "train.epochs=1", "unlearn.epochs=1", "unlearn.eval_every=1",
        "model.max_length=32", "output.cache=false"]

needs_two_cores = pytest.mark.skipif(side_by_side.cpu_cores() < 2, reason="side by side needs two cores")


def _one_thread_run(overrides, sink):
    """The run in this process with one torch thread, as each side-by-side worker trains (2
    cores, 2 or 3 stages): its numbers are the workers' numbers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return pipeline.run(config.load(TINY, overrides), sink)
    finally:
        torch.set_num_threads(threads)


def _numbers(summary):
    return {k: (v["cacc"], v["pacc"], v["asr"], v["confusion_poisoned_all"], v["trigger_shift"]) for k, v in summary["models"].items()}


@pytest.mark.slow(seconds=46)
@needs_two_cores
def test_side_by_side_gives_the_numbers_of_a_one_thread_run_and_every_event(monkeypatch, tmp_path):
    sink = ListSink()
    # output.save_models: the workers write the models they trained into the parent's run folder
    got = pipeline.run(config.load(TINY, SMALL + ["train.side_by_side=true", "output.save_models=true"]), sink,
                       run_dir=tmp_path / "run")
    want = _one_thread_run(SMALL, ListSink())
    assert got["status"] == "finished" and not got["errors"]
    assert got["side_by_side"] == {"processes": 2, "threads": side_by_side.cpu_cores() // 2} and "side_by_side" not in want
    assert list(got["models"]) == ["poisoned", "retrain", "ga", "npo", "rga"]  # the sequential order
    assert _numbers(got) == _numbers(want)
    # not trivially equal: the models predict both classes (a constant model would match anyway)
    for name in ("poisoned", "retrain", "rga"):
        assert all(sum(col) > 0 for col in zip(*got["models"][name]["confusion_clean"])), name
    assert got["models"]["poisoned"]["delta_pacc"] == want["models"]["poisoned"]["delta_pacc"]  # graded after Retrain
    ev = sink.events
    logs = [e["message"] for e in ev if e["type"] == "log"]
    assert any(m.startswith("side by side: poison ‖ retrain, 2 processes × 1 torch thread") for m in logs)
    # handed out heaviest first (RGA: the poisoned logits and the L2 anchor), recorded in the preset's order
    assert any(m.startswith("side by side: unlearn:rga ‖ unlearn:npo ‖ unlearn:ga, 2 processes × 1 torch thread") for m in logs)
    for stage in ("poison", "retrain", "unlearn:ga", "unlearn:npo", "unlearn:rga"):
        kinds = [e["type"] for e in ev if e.get("stage") == stage]
        assert kinds[0] == "stage_started" and kinds[-1] == "stage_finished" and "step" in kinds, stage
    assert ev[0]["type"] == "run_started" and ev[-1]["type"] == "run_finished"
    assert sorted(p.stem for p in (tmp_path / "run" / "models").iterdir()) == ["ga", "npo", "poisoned", "retrain", "rga"]
    assert [got["models"][m]["file"] for m in ("poisoned", "rga")] == ["models/poisoned.safetensors", "models/rga.safetensors"]
    pipeline.load_model(tmp_path / "run", "rga")  # the worker's file fits the model the run folder describes


@needs_two_cores
def test_side_by_side_stops_when_asked_and_leaves_no_process():
    import multiprocessing
    import os
    import subprocess

    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return calls["n"] > 3  # after the children have started

    summary = pipeline.run(config.load(TINY, JOBS + ["train.side_by_side=true", "train.epochs=50"]), ListSink(),
                           should_stop)
    assert summary["status"] == "cancelled"
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("rga-tui side-by-side worker")]

    def children(pid, pattern=None):
        cmd = ["pgrep", "-P", str(pid)] + (["-f", pattern] if pattern else [])
        return subprocess.run(cmd, capture_output=True, text=True).stdout.split()

    # the workers came from the one fork server of this process, kept for its next runs; none is left
    servers = children(os.getpid(), "multiprocessing.forkserver")
    assert len(servers) == 1 and children(servers[0]) == []


@needs_two_cores
def test_workers_take_the_parents_environment_of_the_moment_not_the_fork_servers(tmp_path, monkeypatch):
    """The fork server outlives a run and keeps the environment it started with; each worker takes
    the parent's of the moment it starts: here ``RGA_TUI_CACHE``, where a worker's poisoning and
    Retrain write their cache entries."""
    cfg = config.load(TINY, JOBS + ["train.side_by_side=true", "output.cache=true", 'unlearn.methods=["ga"]'])
    for name in ("first", "second"):  # the second run's workers come from the first run's server
        monkeypatch.setenv("RGA_TUI_CACHE", str(tmp_path / name))
        assert pipeline.run(cfg, ListSink())["status"] == "finished"
        assert sorted(p.name for p in (tmp_path / name).rglob("*.safetensors")), name


@needs_two_cores
def test_a_stage_that_fails_on_a_worker_fails_in_one_line_and_a_dead_worker_too(tmp_path):
    sink = ListSink()
    run = pipeline.Run(config.load(TINY, JOBS + ["train.side_by_side=true", "train.epochs=50"]), sink, None, None)
    run.setup()
    workers = side_by_side.Workers(run, 1, tmp_path)
    try:
        # no poisoned weights in the folder: the worker cannot start unlearning
        job = side_by_side.Job("unlearn", "unlearn:ga", "ga", forget=[0, 1], retain=[2, 3])
        res = workers.run_jobs([job])
        err = res["unlearn:ga"]["error"]
        assert res["unlearn:ga"]["status"] == "error" and "\n" not in err
        assert err.startswith("unlearn:ga: RuntimeError: side_by_side: the poisoned weights did not come through")
        assert [e["type"] for e in sink.events if e.get("stage") == "unlearn:ga"][-2:] == ["error", "stage_finished"]

        # the same worker takes the next stage; killed during it, that stage fails in one line
        def kill_once_training():
            if any(e["type"] == "step" and e.get("stage") == "poison" for e in sink.events):
                workers.procs[0].kill()
            return False

        run.should_stop = kill_once_training
        res = workers.run_jobs([side_by_side.Job("fit", "poison", "poisoned", "train_poisoned")])
        assert res["poison"]["status"] == "error"
        assert res["poison"]["error"] == "poison: its process ended without a result (exit code -9)"
        # no worker left: a further stage fails at once instead of waiting
        res = workers.run_jobs([side_by_side.Job("fit", "retrain", "retrain", "train_clean")])
        assert res["retrain"]["error"] == "retrain: no worker process is left to run it"
    finally:
        workers.close(clean=True)


def test_side_by_side_only_where_it_can_help():
    logs = []

    def fake(on, device="cpu", world=1):
        cfg = config.load(TINY, [f"train.side_by_side={'true' if on else 'false'}"])
        return types.SimpleNamespace(cfg=cfg, accelerator=types.SimpleNamespace(device=torch.device(device)), world=world,
                                     log=lambda m, *a, **k: logs.append(m))

    assert side_by_side.processes(fake(False)) == 1 and logs == []
    assert side_by_side.processes(fake(True, world=2)) == 1
    assert logs[-1] == "train.side_by_side: stages run one after another (the run already has 2 processes)"
    assert side_by_side.processes(fake(True, device="cuda")) == 1
    assert "trains on cuda" in logs[-1]
    if side_by_side.cpu_cores() >= 2:
        assert side_by_side.processes(fake(True)) == side_by_side.cpu_cores()


@needs_two_cores
def test_a_stopped_run_starts_no_further_stage_on_a_free_worker(tmp_path):
    """One worker, two stages: a stop during the first cancels it after its step, and the second
    never starts (a sequential run would not start it either)."""
    sink = ListSink()
    run = pipeline.Run(config.load(TINY, JOBS + ["train.side_by_side=true", "train.epochs=50"]), sink, None, None)
    run.setup()
    run.should_stop = lambda: any(e["type"] == "step" and e.get("stage") == "poison" for e in sink.events)
    workers = side_by_side.Workers(run, 1, tmp_path)
    try:
        res = workers.run_jobs([side_by_side.Job("fit", "poison", "poisoned", "train_poisoned"),
                                side_by_side.Job("fit", "retrain", "retrain", "train_clean")])
    finally:
        workers.close(clean=True)
    assert [p.exitcode for p in workers.procs] == [0]  # it ended on the run's end message, not killed
    assert res["poison"]["status"] == "cancelled" and res["retrain"] == {"status": "cancelled"}
    assert not [e for e in sink.events if e.get("stage") == "retrain"]
    finished = [e for e in sink.events if e["type"] == "stage_finished" and e["stage"] == "poison"]
    assert finished and finished[0]["metrics"] == {"cancelled": True}


@needs_two_cores
def test_the_poisoned_weights_go_out_before_their_evaluation_and_later_jobs_join(tmp_path):
    """The poison worker hands its weights on ("saved") before it evaluates them, so the methods
    can start on the free worker meanwhile; the jobs ``then`` returns run and report too."""
    sink = ListSink()
    run = pipeline.Run(config.load(TINY, JOBS + ["train.side_by_side=true"]), sink, None, None)
    run.setup()
    workers = side_by_side.Workers(run, 2, tmp_path)
    calls = []

    def then(saved, res):
        calls.append((set(saved), set(res)))
        return [side_by_side.Job("fit", "retrain", "retrain", "train_clean")] if len(calls) == 1 else []

    try:
        res = workers.run_jobs([side_by_side.Job("fit", "poison", "poisoned", "train_poisoned", save=True)], then)
    finally:
        workers.close(clean=True)
    assert calls[0] == ({"poison"}, set())  # the weights were there before poison's result (its evaluation)
    assert any(p.name.startswith("poisoned") for p in tmp_path.rglob("*.safetensors"))
    assert res["poison"]["status"] == "finished" and res["retrain"]["status"] == "finished"
    assert calls[-1][1] == {"poison", "retrain"}
    logs = [e["message"] for e in sink.events if e["type"] == "log"]
    assert any(m.startswith("side by side: retrain, 1 process × ") for m in logs)



class _ScriptedWorkers:
    """Stands in for :class:`side_by_side.Workers` in ``_stages``: plays the messages of a run
    whose poison worker hands its weights on, Retrain finishes, then the poisoned model's
    evaluation ends with ``poison_status``; records the jobs ``then`` starts and any stop."""

    def __init__(self, poison_status):
        self.poison_status, self.stopping, self.stops, self.started = poison_status, False, 0, []

    def stop(self):
        self.stopping, self.stops = True, self.stops + 1

    def run_jobs(self, jobs, then=None):
        retrain = {"status": "finished", "entry": {"cacc": 0.9, "pacc": 0.9, "asr": 0.05,
                                                   "trigger_shift": {"scores": [0.0, 0.0]}}}
        poison = ({"status": "error", "error": "poison: evaluation failed"} if self.poison_status == "error" else
                  {"status": "finished", "entry": None})
        res, saved = {}, set()
        if then is None:  # the methods' own run_jobs (none expected here)
            return {j.stage: {"status": "finished"} for j in jobs}
        saved.add("poison")
        assert then(saved, res) == []  # weights out, Retrain not over: nothing starts yet
        res["retrain"] = retrain
        self.started = then(saved, res)  # Retrain over: the methods start on the free worker
        res["poison"] = poison
        assert then(saved, res) == []  # started once, never twice
        for j in self.started:  # a stopped worker reports its method cancelled, as a real one does
            res[j.stage] = {"status": "cancelled" if self.stopping else "finished", "entry": None}
        return res


def test_the_methods_start_once_and_stop_when_the_poisoned_models_evaluation_fails(tmp_path):
    """The early start's bookkeeping (``side_by_side._stages``): the methods start after the
    poisoned weights are out and Retrain is over, before the poisoned model's result; if that
    evaluation then fails, the methods already running are stopped and the run ends "error"
    with poison's error in the summary (a run must not report methods unlearned from a model
    whose stage failed)."""
    cfg = config.load(TINY, JOBS + ["train.side_by_side=true", 'unlearn.methods=["ga"]'])
    for status, want, stops in (("error", "error", 1), ("finished", "finished", 0)):
        run = pipeline.Run(cfg, ListSink(), None, None)
        run.setup()
        workers = _ScriptedWorkers(status)
        if status == "finished":  # a finished poison stage has its entry, graded after Retrain
            run.summary["models"]["poisoned"] = {"pacc": 0.3, "asr": 0.95, "confusion_poisoned_all": [[0, 0], [10, 90]],
                                                 "confusion_clean": [[50, 0], [0, 50]]}
        got = side_by_side._stages(run, workers, tmp_path)
        assert [j.stage for j in workers.started] == ["unlearn:ga"]
        assert (got, workers.stops) == (want, stops), status
        if status == "error":
            assert run.summary["errors"]["poison"] == "poison: evaluation failed"
            assert "ga" not in run.summary["models"]


@needs_two_cores
def test_the_spawn_fallback_gives_the_numbers_of_a_one_thread_run(monkeypatch):
    """Where the platform has no fork server (Windows), the workers are spawned: fresh interpreters
    that import torch and the engine themselves, and give the numbers of a one-thread run."""
    import multiprocessing

    cfg = JOBS + ['unlearn.methods=["ga","rga"]']
    one = ListSink()
    want = _one_thread_run(cfg, one)
    monkeypatch.setattr(side_by_side, "_CONTEXT", None)
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    sink = ListSink()
    got = pipeline.run(config.load(TINY, cfg + ["train.side_by_side=true"]), sink)
    assert side_by_side._CONTEXT.get_start_method() == "spawn"
    assert got["status"] == "finished" and not got["errors"], got["errors"]
    assert got["side_by_side"]["processes"] == 2
    assert list(got["models"]) == ["poisoned", "retrain", "ga", "rga"]
    assert _numbers(got) == _numbers(want)
    # the models of so short a run may predict one class, so the matrices alone could agree by
    # chance: every training step's loss agrees too (the workers really trained, the same way)
    def losses(sink):
        return sorted((e["stage"], e["step"], e["loss"]) for e in sink.events if e["type"] == "step")

    assert losses(sink) == losses(one) and len(losses(one)) > 10
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("rga-tui side-by-side worker")]


@needs_two_cores
def test_a_script_without_the_main_guard_fails_its_stages_in_one_line_that_says_why(tmp_path, monkeypatch):
    """Each worker imports the main module; a script that starts the run at its top level starts
    it again there, and multiprocessing ends that worker. The stage's error says so, in one line."""
    import multiprocessing
    import sys

    overrides = JOBS + ['unlearn.methods=["ga"]']
    script = tmp_path / "unguarded.py"
    # what `pipeline.run(...)` at a script's top level does in the worker, without the seconds of
    # importing torch there first: it starts a process while multiprocessing imports the script
    script.write_text("import multiprocessing\nmultiprocessing.get_context('spawn').Process(target=print).start()\n",
                      encoding="utf-8")
    main = types.ModuleType("__main__")
    main.__file__, main.__spec__ = str(script), None
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(side_by_side, "_CONTEXT", None)
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])  # no second fork server
    got = pipeline.run(config.load(TINY, overrides + ["train.side_by_side=true"]), ListSink())
    assert got["status"] == "error"
    for stage in ("poison", "retrain"):
        msg = got["errors"][stage]
        assert "\n" not in msg and msg.startswith(f"{stage}: its process ended while starting (exit code 1)"), msg
        assert f"imports the main module ({script})" in msg and 'if __name__ == "__main__":' in msg

"""Independent stages side by side on a CPU (``train.side_by_side = true``).

On a small CPU one training process does not keep its cores busy: on a 2-core Xeon one
2-thread process trains MiniLM at 128 samples/s, two 1-thread processes at 100 each
(``docs/research-log.md``, 2026-12-01, ec561a3). The pipeline's stages are independent in two groups:
poisoning and Retrain both start from the pre-trained model; every unlearning method starts
from the poisoned weights. So each group runs side by side on worker processes (as many as the
larger group has stages, at most one per core), each with its share of the cores as torch threads:

    parent: data, model, (tiny: pre-training) ── poison ‖ retrain ── (CUBE) ── rga ‖ npo ‖ ga

The methods do not wait for the poisoned model's evaluation: its worker hands the weights on
before evaluating them ("saved"), and once Retrain is over too (its numbers grade every verdict)
the free worker takes the first method, the heaviest (RGA), while the other still evaluates; on
the SST-2 demo that worker would otherwise wait ~8 s. (With CUBE the methods wait for both
stages: the detection runs in the parent with every core.)

A worker builds the run's state once, the way the parent did (``Run.setup``: the same data,
model and seed), while the parent goes on; then it takes stages one after another (the second
group starts without a second start-up) and runs each through the same code as a sequential run
(``finetune_stage.fit_stage`` / ``unlearn_stage.run_method``: same reseed, same loops, same
cache), sending its events and its result as JSON messages over a pipe; the parent forwards the
events to the run's sinks as they come and writes the summary. Weights travel through a temporary
folder as safetensors. The numbers are those of a sequential run with the same torch thread count
(the thread count changes the order of floating-point sums, as it does anywhere else).

Start-up: a worker is forked from a ``multiprocessing`` fork server (``spawn`` where the platform
has none), started with the first run's workers, that has imported torch, the engine and the
run's model and tokenizer code once (~8 s of CPU on a 2-core Zen 3; it only imports, never trains
or evaluates, so no thread pool of torch's exists to be lost in the fork). The first run's workers wait for that import, as fresh interpreters would;
every later run of the same process (``--seeds``, ``benchmarks/seeds.py``, the test suite; not the
app, whose live runs are each a process of their own) starts its workers in well under a second.
A worker takes the parent's environment and working directory of the moment it starts, not the
server's. A script that calls ``pipeline.run`` with this on needs the ``if __name__ ==
"__main__":`` guard: the fork server and each worker import the main module (without it, the
stages fail with one line that says so: :func:`_died_starting`).

Stopping: the children ignore SIGINT / SIGHUP (a terminal sends Ctrl-C to the whole process
group; the fork server ignores both too); when the parent's ``should_stop`` says so it sends a stop
message to each worker (EOF, the parent gone, does the same), which the worker's loop sees after
its step: it reports "cancelled". A worker that dies fails the stage it had with one line (its
exit code); the other stages go on.
"""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import queue
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from rga_engine import detect_stage, evaluation

if TYPE_CHECKING:  # the pipeline imports this module
    from rga_engine.pipeline import Run

POLL_S = 0.2  # how often the parent checks should_stop while no message comes


def cpu_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def processes(run: "Run") -> int:
    """How many stages run at once: 1 (sequential) unless ``train.side_by_side`` is on and the
    run is one process on a CPU with several cores; says why in a log line when it is refused."""
    if not run.cfg.train.side_by_side:
        return 1
    why = None
    if run.accelerator.device.type != "cpu":
        why = f"the run trains on {run.accelerator.device.type}, not a CPU"
    elif run.world > 1:
        why = f"the run already has {run.world} processes"
    elif cpu_cores() < 2:
        why = "this process has one core"
    if why:
        run.log(f"train.side_by_side: stages run one after another ({why})")
        return 1
    return cpu_cores()


@dataclass
class Job:
    """One stage for a child: ``fit`` (poison / retrain) or ``unlearn`` (a method)."""

    kind: str
    stage: str
    name: str  # the summary's model name: poisoned, retrain, ga, ...
    split: str = ""  # fit: the training split
    save: bool = False  # fit: send the trained weights back (the poisoned model)
    forget: list[int] = field(default_factory=list)  # unlearn: rows of train_poisoned
    retain: list[int] = field(default_factory=list)
    retrain_pacc: float | None = None
    retrain_asr: float | None = None
    retrain_scores: list[float] | None = None  # Retrain's trigger-shift scores (grade the verdict)


class _PipeSink:
    """A child's events, one JSON message each on its pipe (the parent reads them)."""

    def __init__(self, conn):
        self.conn = conn

    def emit(self, event: dict[str, Any]) -> None:
        _send(self.conn, "event", event)


def _send(conn, kind: str, payload: Any) -> None:
    conn.send_bytes(json.dumps([kind, payload], allow_nan=False).encode("utf-8"))


def _watch_parent(conn, stop: threading.Event, jobs: "queue.Queue") -> None:
    """The parent's messages: a job to run, a stop request, or the end of the run; the end, or
    EOF (the parent gone), stops the worker."""
    try:
        while True:
            msg = json.loads(conn.recv_bytes())
            if msg.get("end"):
                break
            if msg.get("stop"):
                stop.set()
            else:
                jobs.put(msg)
    except (EOFError, OSError):
        pass
    finally:
        stop.set()
        jobs.put(None)


def _ignore_stop_signals() -> None:
    for sig in (signal.SIGINT, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, signal.SIG_IGN)  # the parent decides when to stop


def child_main(folder: str, conn, env: dict[str, str], cwd: str) -> None:
    """A worker (forked from the fork server, or spawned). Takes the parent's environment and
    working directory, builds the run's state once from ``FOLDER/run.json``, then runs the stages
    the parent sends, one after another, sending each stage's events and one result back."""
    _ignore_stop_signals()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.stdout = sys.stderr  # stray prints go where the parent's warnings go
    root = Path(folder)
    spec = json.loads((root / "run.json").read_text(encoding="utf-8"))
    torch.set_num_threads(int(spec["threads"]))
    stop, jobs = threading.Event(), queue.Queue()
    threading.Thread(target=_watch_parent, args=(conn, stop, jobs), daemon=True).start()
    run, problem = None, None
    try:
        from rga_engine import config
        from rga_engine.pipeline import Run

        run = Run(config.from_dict(spec["config"]), None, stop.is_set, None)
        if spec.get("models_dir"):  # output.save_models: this worker writes its stages' models there
            run.models_dir = Path(spec["models_dir"])
        run.setup()  # silent: no sink, no run folder
        run.sink = _PipeSink(conn)
        if (root / "init.safetensors").is_file():  # tiny pre-training happened in the parent
            _load(root, "init", run.bundle.model)
            run.bundle.base_state = {k: v.detach().clone() for k, v in run.bundle.model.state_dict().items()}
    except BaseException as e:  # noqa: BLE001 -- every job it is given fails with this line
        problem = f"{type(e).__name__}: {e}"
    _send(conn, "ready", problem)
    while (msg := jobs.get()) is not None:
        job = Job(**msg["job"])
        if problem:
            result = {"status": "error", "crash": problem}
        else:
            try:
                result = _fit(run, job, root, conn) if job.kind == "fit" else _unlearn(run, job, root)
            except BaseException as e:  # noqa: BLE001 -- reported to the parent as this stage's failure
                result = {"status": "error", "crash": f"{type(e).__name__}: {e}"}
        _send(conn, "result", {"stage": job.stage, **result})


_CONTEXT = None  # the process's context, made by its first side-by-side run


def _context(run: "Run"):
    """The ``multiprocessing`` context the workers start from: a fork server that has imported
    torch, the engine and this run's model and tokenizer code (its first start pays those imports
    once), or ``spawn`` where the platform has no fork server."""
    global _CONTEXT
    if _CONTEXT is None:
        if "forkserver" in multiprocessing.get_all_start_methods():
            _CONTEXT = multiprocessing.get_context("forkserver")
            code = [type(x).__module__ for x in (run.bundle.model, run.bundle.tokenizer) if x is not None]
            _CONTEXT.set_forkserver_preload(["rga_engine._forkserver", "__main__", "rga_engine.pipeline", *code])
        else:
            _CONTEXT = multiprocessing.get_context("spawn")
    return _CONTEXT


def _save(root: Path, name: str, model: torch.nn.Module) -> None:
    from rga_engine import cache

    cache.save(root, name, "x", model)


def _load(root: Path, name: str, model: torch.nn.Module) -> None:
    from rga_engine import cache

    loaded, problem = cache.fetch(root, name, "x", model)
    if not loaded:
        raise RuntimeError(f"side_by_side: the {name} weights did not come through ({problem or 'missing'})")


def _fit(run: "Run", job: Job, root: Path, conn) -> dict[str, Any]:
    from rga_engine import finetune_stage

    def hand_on(model) -> None:  # the weights go out before their evaluation: unlearning may start
        _save(root, job.name, model)
        _send(conn, "saved", {"stage": job.stage})

    model, entry, st = finetune_stage.fit_stage(run, job.name, job.stage, job.split, hand_on if job.save else None)
    if st == "error":
        return {"status": "error", "error": run.summary["errors"][job.stage]}
    if st == "cancelled":
        return {"status": "cancelled"}
    return {"status": "finished", "entry": entry}


def _unlearn(run: "Run", job: Job, root: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    tp = run.enc["train_poisoned"]
    run.forget, run.retain = tp.subset(job.forget), tp.subset(job.retain)
    run.retrain_asr, run.retrain_scores = job.retrain_asr, job.retrain_scores
    poisoned = copy.deepcopy(run.bundle.model)
    _load(root, "poisoned", poisoned)
    state = {k: v.detach().clone() for k, v in poisoned.state_dict().items()}
    del poisoned
    ref = root / "ref_logits.safetensors"
    ref_logits = load_file(str(ref))["logits"] if ref.is_file() else None
    from rga_engine import unlearn_stage

    status = unlearn_stage.run_method(run, job.name, state, ref_logits, job.retrain_pacc)
    return {"status": status, "entry": run.summary["models"].get(job.name),
            "error": run.summary["errors"].get(job.stage)}


def _died_starting(code: int | None) -> str:
    """Why a worker that ended before it reached :func:`child_main` failed its stage: one line.
    What ends one there is the main module's import (``multiprocessing`` re-imports a script in
    every worker it starts this way), and the usual cause is a script that starts the run at its
    top level, without the guard."""
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None) or getattr(main, "__file__", None)
    if name is None:
        return f"its process ended while starting, before it ran any stage (exit code {code})"
    return (f"its process ended while starting (exit code {code}): each side-by-side worker imports the "
            f"main module ({name}), so a script that calls rga_engine.pipeline.run needs its top-level code "
            f"under `if __name__ == \"__main__\":` (or train.side_by_side = false)")


def _reader(worker: int, conn, q: "queue.Queue") -> None:
    try:
        while True:
            kind, payload = json.loads(conn.recv_bytes())
            q.put((worker, kind, payload))
    except (EOFError, OSError):
        pass
    q.put((worker, "eof", None))


class Workers:
    """The run's worker processes (forked from the fork server, ``_context``), started once: each
    builds the run's state while the parent goes on, then takes stages one after another, so
    the second group of stages starts without a second start-up. ``n`` workers share the cores
    as torch threads."""

    def __init__(self, run: "Run", n: int, folder: Path):
        self.run, self.n, self.threads = run, n, max(1, cpu_cores() // n)
        spec = {"threads": self.threads, "config": run.cfg.to_dict(),
                "models_dir": str(run.models_dir) if run.models_dir is not None else None}
        (folder / "run.json").write_text(json.dumps(spec), encoding="utf-8")
        self.q: queue.Queue = queue.Queue()
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads)}  # for the processes a worker starts
        ctx = _context(run)
        self.procs: list = []
        self.conns: list = []
        for w in range(n):
            mine, theirs = ctx.Pipe()
            # daemon: a parent that exits without close() ends them at its exit; a killed one closes
            # their pipes, and on that EOF they stop
            p = ctx.Process(target=child_main, args=(str(folder), theirs, env, os.getcwd()),
                            name=f"rga-tui side-by-side worker {w}", daemon=True)
            p.start()
            theirs.close()  # the child's end lives in the child only: its exit is our EOF
            self.procs.append(p)
            self.conns.append(mine)
            threading.Thread(target=_reader, args=(w, mine, self.q), daemon=True).start()
        self.gone: set[int] = set()
        self.started: set[int] = set()  # workers that said "ready" (they reached child_main)
        self.stopping = False

    def _tell(self, w: int, msg: dict) -> None:
        try:
            self.conns[w].send_bytes(json.dumps(msg).encode("utf-8"))
        except (OSError, ValueError):  # a worker gone (its EOF fails its stage), or closed
            pass

    def stop(self) -> None:
        self.stopping = True
        for w in range(self.n):
            self._tell(w, {"stop": True})

    def run_jobs(self, jobs: list[Job],
                 then: Callable[[set[str], dict], list[Job]] | None = None) -> dict[str, dict[str, Any]]:
        """Run ``jobs`` on the workers, as many at once as there are workers; forward their
        events; return each stage's result. A worker that ends fails the stage it had.
        ``then(saved, results)``, after every result and every "saved" message (a stage's weights
        handed on before its evaluation; ``saved``: those stages): the jobs it returns join the
        queue and start as workers come free (their results are returned too)."""
        run = self.run
        self._say(jobs)
        jobs, todo, results, saved = list(jobs), list(jobs), {}, set()
        busy: dict[int, tuple[Job, float]] = {}

        def more() -> None:
            new = then(saved, results) if then is not None else []
            if new:
                self._say(new)
                jobs.extend(new)
                todo.extend(new)

        def hand_out() -> None:
            if self.stopping:  # a stopped run starts nothing more (as one process would not)
                results.update({job.stage: {"status": "cancelled"} for job in todo})
                todo.clear()
            for w in range(self.n):
                if todo and w not in busy and w not in self.gone:
                    job = todo.pop(0)
                    busy[w] = (job, time.perf_counter())
                    self._tell(w, {"job": asdict(job)})

        def fail(job: Job, t0: float, msg: str) -> None:
            run.fail_stage(job.stage, msg, t0)
            results[job.stage] = {"status": "error", "error": msg}

        hand_out()
        while len(results) < len(jobs):
            if not self.stopping and run.should_stop():
                self.stop()
                hand_out()
            if len(self.gone) == self.n:  # no worker left for what remains
                for job in todo:
                    fail(job, time.perf_counter(), f"{job.stage}: no worker process is left to run it")
                todo.clear()
                continue
            try:
                w, kind, payload = self.q.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if kind == "event":
                if run.is_main:
                    run.sink.emit(payload)
            elif kind == "saved":
                saved.add(payload["stage"])
                more()
                hand_out()
            elif kind == "result":
                job, t0 = busy.pop(w)
                if payload.get("crash"):
                    msg = f"{job.stage}: {payload['crash']}"
                    run.fail_stage(job.stage, msg, t0)
                    payload["error"] = msg
                results[job.stage] = payload
                more()
                hand_out()
            elif kind == "ready":
                self.started.add(w)
            elif kind == "eof":
                self.gone.add(w)
                if w in busy:
                    job, t0 = busy.pop(w)
                    self.procs[w].join()
                    code = self.procs[w].exitcode
                    fail(job, t0, f"{job.stage}: its process ended without a result (exit code {code})"
                         if w in self.started else f"{job.stage}: {_died_starting(code)}")
                    more()
                hand_out()
        return results

    def _say(self, jobs: list[Job]) -> None:
        at_once = min(len(jobs), self.n)
        self.run.log(f"side by side: {' ‖ '.join(j.stage for j in jobs)}, {at_once} process{'es' if at_once > 1 else ''} "
                     f"× {self.threads} torch thread{'s' if self.threads > 1 else ''}")

    def close(self, clean: bool) -> None:
        """End the workers: an end message (closing our end of a pipe would not be seen while our
        reader thread waits on it); after an exception, a stop request first."""
        if not clean:
            self.stop()
        for w in range(self.n):
            self._tell(w, {"end": True})
        for p in self.procs:
            p.join(timeout=30 if clean else 10)
            if p.exitcode is None:
                p.kill()
                p.join()
        for c in self.conns:  # the workers are gone: our readers have had their EOF
            c.close()


def stages(run: "Run") -> str:
    """The pipeline's stages, independent ones side by side (the order of ``Run.stages``)."""
    cfg = run.cfg
    with tempfile.TemporaryDirectory(prefix="rga-side-by-side-") as tmp:
        folder = Path(tmp)
        if cfg.model.pretrain_epochs > 0:  # the workers start from the parent's pre-trained encoder
            _save(folder, "init", run.bundle.model)
        # as many workers as the larger group of stages needs, at most one per core
        workers = Workers(run, max(1, min(cpu_cores(), max(1 + cfg.train.retrain, len(cfg.unlearn.methods)))), folder)
        run.summary["side_by_side"] = {"processes": workers.n, "threads": workers.threads}
        clean = False
        try:
            status = _stages(run, workers, folder)
            clean = True
            return status
        finally:
            workers.close(clean)


def _record(run: "Run", jobs: list[Job], res: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Put the stages' results in the summary in the jobs' order (a sequential run's order,
    whatever order they finished in), save it, and pass ``res`` on."""
    for job in jobs:
        if res[job.stage].get("entry"):
            run.summary["models"][job.name] = res[job.stage]["entry"]
        if res[job.stage].get("error"):
            run.summary["errors"][job.stage] = res[job.stage]["error"]
    run.save_summary()
    return res


def _fit_recorded(run: "Run", fit_jobs: list[Job], res: dict[str, dict[str, Any]]) -> float | None:
    """Record poison's and Retrain's results (saved); Retrain, when it finished, becomes the
    reference that grades every later verdict, the poisoned model's too. Returns Retrain's PACC
    (None without it). Called again, it changes nothing."""
    _record(run, fit_jobs, res)
    retrain_pacc = _reference(run, res)
    if retrain_pacc is not None and res.get("poison", {}).get("status") == "finished":
        evaluation.grade_poisoned(run, retrain_pacc)
    return retrain_pacc


def _reference(run: "Run", res: dict[str, dict[str, Any]]) -> float | None:
    """Retrain's PACC once its stage has finished (``evaluation.take_retrain``: its numbers grade
    every later verdict), else None."""
    r = res.get("retrain")
    return evaluation.take_retrain(run, r["entry"]) if r is not None and r["status"] == "finished" else None


def _stages(run: "Run", workers: Workers, folder: Path) -> str:
    cfg = run.cfg
    # 1 ‖ 2. poison ‖ Retrain
    fit_jobs = [Job("fit", "poison", "poisoned", "train_poisoned", save=True)]
    if cfg.train.retrain:
        fit_jobs.append(Job("fit", "retrain", "retrain", "train_clean"))
    started: list[list[Job]] = []  # the unlearning jobs, once made
    recorded: dict[str, float | None] = {}  # Retrain's PACC once both results are recorded

    def then(saved: set[str], res: dict[str, dict[str, Any]]) -> list[Job]:
        # 3 starts early: the methods need the poisoned weights (handed on before their evaluation)
        # and Retrain's reference, not the poisoned model's numbers, so the worker that finished
        # Retrain takes the first method while the other still evaluates the poisoned model.
        # CUBE detects in the parent, with every core, once both stages are over.
        if not recorded and all(j.stage in res for j in fit_jobs):
            recorded["pacc"] = _fit_recorded(run, fit_jobs, res)  # in summary.json as soon as both are over
            if res["poison"]["status"] != "finished" and started and not workers.stopping:
                workers.stop()  # no poisoned model: the methods started from its weights stop
        if started or workers.stopping or cfg.unlearn.forget_set == "cube" or "poison" not in saved:
            return []
        if any(j.stage not in res for j in fit_jobs[1:]) or res.get("poison", {}).get("status", "finished") != "finished":
            return []  # Retrain not over yet, or poison's evaluation failed after its weights went out
        started.append(_unlearn_jobs(run, folder, None, _reference(run, res)))
        return started[0]

    res = workers.run_jobs(fit_jobs, then)
    # (recorded by then() unless a stage failed for want of a worker, which calls nothing)
    retrain_pacc = recorded["pacc"] if recorded else _fit_recorded(run, fit_jobs, res)
    statuses = {res[j.stage]["status"] for j in fit_jobs}
    if "cancelled" in statuses:
        return "cancelled"
    if res["poison"]["status"] != "finished":
        return "error"
    if started:
        jobs = started[0]
    else:  # CUBE (in the parent, with every core), then the methods
        poisoned = _poisoned(run, folder)
        flagged = None
        if cfg.unlearn.forget_set == "cube":
            flagged, st = detect_stage.detect(run, poisoned)
            if st != "finished":
                return st
        jobs = _unlearn_jobs(run, folder, flagged, retrain_pacc, poisoned)
        res = workers.run_jobs(jobs) if jobs else {}
    if not jobs:
        return "finished"
    methods = list(cfg.unlearn.methods)
    res = _record(run, sorted(jobs, key=lambda j: methods.index(j.name)), res)
    statuses = [res[j.stage]["status"] for j in jobs]
    if "cancelled" in statuses:
        return "cancelled"
    return "finished" if all(s == "finished" for s in statuses) else "partial"


def _poisoned(run: "Run", folder: Path) -> torch.nn.Module:
    poisoned = copy.deepcopy(run.bundle.model)
    _load(folder, "poisoned", poisoned)
    return poisoned.to(run.accelerator.device)


def _unlearn_jobs(run: "Run", folder: Path, flagged, retrain_pacc: float | None,
                  poisoned: torch.nn.Module | None = None) -> list[Job]:
    """The methods' jobs (the heaviest first: RGA, which needs the poisoned model's logits and
    the pre-trained weights, then the methods that need the logits, then the rest; the summary
    keeps the preset's order), with the poisoned model's logits on the forget rows written for
    the methods that need them; [] with a warning when the forget set is empty."""
    from safetensors.torch import save_file

    from rga_engine.methods import REGISTRY as METHODS

    forget_idx, retain_idx = run.forget_rows(flagged)
    if not forget_idx:
        run.log("the forget set is empty (attack 'none'?): unlearning skipped", "warning")
        return []
    methods = run.cfg.unlearn.methods
    if any(METHODS[m].needs_reference for m in methods):
        poisoned = poisoned if poisoned is not None else _poisoned(run, folder)
        tp = run.enc["train_poisoned"]
        ref = evaluation.logits(run, poisoned, tp.subset(forget_idx))
        save_file({"logits": ref.contiguous()}, str(folder / "ref_logits.safetensors"))
    del poisoned
    order = sorted(methods, key=lambda m: (not METHODS[m].needs_base, not METHODS[m].needs_reference))
    return [Job("unlearn", f"unlearn:{m}", m, forget=forget_idx, retain=retain_idx, retrain_pacc=retrain_pacc,
                retrain_asr=run.retrain_asr, retrain_scores=run.retrain_scores) for m in order]


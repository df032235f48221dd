"""Several processes (DDP, gloo on CPU): how the ranks split the batches, that two processes
follow one step for step, and that ``rga-tui run`` under ``accelerate launch`` with 2 processes
writes one run folder, each event once and each cache entry once, with the poisoned model's
metrics of one process (within the tolerance measured below)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rga_engine import config, pipeline
from rga_engine.distributed import SharedStop, launch_rank, lone_cpu_launch, rank_slice
from rga_engine.events import ListSink, read_events
from rga_engine.train import Encoded, loader

ROOT = Path(__file__).resolve().parent.parent
PRESET = "tests/fixtures/presets/tiny-hsol-ddp.toml"

needs_gloo = pytest.mark.skipif(not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
                                reason="torch.distributed with gloo is not available")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("OMP_NUM_THREADS", "1")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "ACCELERATE_USE_CPU"):
        env.pop(k, None)
    env.update(extra)
    return env


# --------------------------------------------------------------------------- the split (no processes)

def test_rank_slices_are_the_global_batch():
    # even: contiguous halves; uneven: topped up with the batch's own rows; fewer rows than ranks
    assert [rank_slice(range(8), r, 2) for r in (0, 1)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert [rank_slice([5, 6, 7], r, 2) for r in (0, 1)] == [[5, 6], [7, 5]]
    assert [rank_slice([9], r, 4) for r in range(4)] == [[9], [9], [9], [9]]
    assert rank_slice([3, 1, 2], 0, 1) == [3, 1, 2]


@pytest.mark.parametrize("group_by_length", [False, True])
@pytest.mark.parametrize("world", [2, 3])
def test_every_rank_walks_the_one_process_batches(group_by_length, world):
    """Each rank's loader yields its slice of exactly the batches one process draws (same seed,
    same order, as many per epoch): concatenated, the slices are the one-process batch, up to
    the rows that top up a batch that does not divide evenly. accelerate's own sharding of a
    length-grouped sampler drops its short batches; this one drops nothing."""
    gen = torch.Generator().manual_seed(0)
    ids = [[1] * n for n in torch.randint(2, 40, (203,), generator=gen).tolist()]
    enc = Encoded(ids, torch.zeros(203, dtype=torch.long), torch.zeros(203, dtype=torch.bool),
                  torch.tensor([len(x) for x in ids]))
    one = [b["index"].tolist() for b in loader(enc, 16, 0, True, 7, group_by_length)]
    ranks = [[b["index"].tolist() for b in loader(enc, 16, 0, True, 7, group_by_length, rank=r, world=world)]
             for r in range(world)]
    assert all(len(r) == len(one) for r in ranks)
    assert sorted(i for b in one for i in b) == list(range(203))
    for k, batch in enumerate(one):
        parts = [r[k] for r in ranks]
        assert len({len(p) for p in parts}) == 1  # the same number of rows on every rank
        joined = [i for p in parts for i in p]
        assert joined[: len(batch)] == batch
        assert set(joined[len(batch):]) <= set(batch) and len(joined) - len(batch) < world


@pytest.mark.parametrize("world", [2, 3])
def test_evaluation_parts_add_up_to_one_process(world):
    """predict_logits' ``part``: the ranks' shares are disjoint, cover every row, and add up to
    the one-process logits bit for bit (what sum_over_ranks' all-reduce does)."""
    from transformers import BertConfig, BertForSequenceClassification

    from rga_engine.train import predict_logits

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=32, num_labels=3))
    g = torch.Generator().manual_seed(1)
    ids = [torch.randint(1, 50, (int(n),), generator=g).tolist() for n in torch.randint(2, 20, (37,), generator=g)]
    n = len(ids)
    enc = Encoded(ids, torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.bool),
                  torch.tensor([len(x) for x in ids]))
    whole = predict_logits(model, enc, 4, 0, "cpu")
    parts = [predict_logits(model, enc, 4, 0, "cpu", part=(r, world)) for r in range(world)]
    owned = [(p != 0).any(dim=1) for p in parts]
    assert all(0 < int(o.sum()) < n for o in owned) and int(sum(o.int() for o in owned).max()) == 1
    assert torch.equal(sum(parts), whole)
    # CUBE's embedding is split the same way
    from rga_engine.cube import embed

    whole = embed(model, enc, 4, 0, "cpu", False)
    parts = [embed(model, enc, 4, 0, "cpu", False, part=(r, world)) for r in range(world)]
    assert all(0 < int((p != 0).any(axis=1).sum()) < n for p in parts)
    assert (sum(parts) == whole).all()


def test_eval_part_gives_every_process_a_batch():
    """The split is taken only where every process gets a batch (CUBE's vector width comes from
    one); otherwise, and for one process, every process evaluates every batch."""
    from rga_engine.distributed import eval_part

    class Acc:
        num_processes, process_index = 3, 2

    assert eval_part(Acc, 9, 4) == (2, 3)  # batches 0-3, 4-7, 8: one each
    assert eval_part(Acc, 8, 4) == (0, 1)  # two batches for three processes
    assert eval_part(None, 100, 4) == (0, 1)


def test_one_process_loader_is_the_plain_dataloader():
    """One process draws what ``DataLoader(batch_size=, shuffle=True, generator=seeded)`` draws
    (the loops no longer hand their loaders to accelerate: one process is unchanged)."""
    ids = [[1, 2]] * 50
    enc = Encoded(ids, torch.zeros(50, dtype=torch.long), torch.zeros(50, dtype=torch.bool), torch.full((50,), 2))
    ours = [b["index"].tolist() for b in loader(enc, 8, 0, True, 3)]
    plain = [b.tolist() for b in torch.utils.data.DataLoader(range(50), batch_size=8, shuffle=True,
                                                             generator=torch.Generator().manual_seed(3))]
    assert ours == plain


def test_launch_environment(monkeypatch):
    for k in ("RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "PMI_RANK", "WORLD_SIZE", "MASTER_ADDR",
              "ACCELERATE_USE_CPU"):
        monkeypatch.delenv(k, raising=False)
    assert launch_rank() == 0 and not lone_cpu_launch()
    monkeypatch.setenv("PMI_RANK", "3")
    assert launch_rank() == 3
    monkeypatch.delenv("PMI_RANK")
    # accelerate launch --cpu --num_processes 2 without MPI: one process, said in a warning
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    assert lone_cpu_launch()
    monkeypatch.setenv("RANK", "1")
    assert launch_rank() == 1 and not lone_cpu_launch()


def test_one_process_stop_is_asked_every_step():
    calls = []
    stop = SharedStop(lambda: calls.append(1) or len(calls) == 2, accelerator=None)
    assert [stop(), stop(), stop()] == [False, True, False]  # one process: the function itself


@needs_gloo
def test_close_leaves_the_process_group(tmp_path):
    """``close`` destroys the group (after a barrier when asked), and is a no-op without one; the
    command line calls it once at the end of a launch: left to the interpreter's teardown, a
    rank died there with SIGABRT in about 1 launch in 4 of the 2-process test below."""
    import torch.distributed as dist

    from rga_engine.distributed import close

    close()  # no group: nothing to do
    for wait in (True, False):
        store = dist.FileStore(str(tmp_path / f"store-{wait}"), 1)
        dist.init_process_group("gloo", store=store, rank=0, world_size=1)
        assert dist.is_initialized()
        close(wait=wait)
        assert not dist.is_initialized()


# --------------------------------------------------------------------------- two processes

@pytest.mark.slow(seconds=31)
@needs_gloo
def test_two_processes_follow_one_process_step_for_step(tmp_path):
    """Dropout off, same seed: masked-LM pre-training, 12 fine-tuning steps and RGA's unlearning
    (forget and retain batches, RGA's λ from the global batch's KL) on 2 processes end at the
    weights of 1 process up to float rounding: measured 1.0e-6 after each phase; the bound is
    1e-5. In trials on 1,500 rows, masked-LM masks drawn per slice left 4.7e-2 after
    pre-training, and the ranks' mean losses instead of the global batch's mean 1.6e-2."""
    script = ROOT / "tests" / "distributed" / "step_for_step.py"
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, str(script), str(one), "12"], cwd=ROOT, env=_env(), check=True,
                   capture_output=True, timeout=300)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                        "127.0.0.1", "--master_port", str(_free_port()), str(script), str(two), "12"],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    for phase in ("pretrain", "finetune", "unlearn"):
        a, b = torch.load(f"{one}-{phase}.pt"), torch.load(f"{two}-{phase}.pt")
        assert a.keys() == b.keys()
        diff = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
        assert diff < 1e-5, (phase, diff)
    # the evaluation split over the 2 ranks (asserted bit for bit inside the script) gives the
    # one-process logits, up to the weights' rounding above
    a, b = torch.load(f"{one}-eval.pt")["logits"], torch.load(f"{two}-eval.pt")["logits"]
    assert a.shape == b.shape and (a - b).abs().max().item() < 1e-3


# The poisoned model's metrics, 2 processes against 1, measured on this preset over seeds
# 2021-2030 (2026-11-30, 2-core Xeon, gloo): |ΔCACC| 2.0 1.0 2.0 1.5 1.0 2.5 1.0 1.5 2.0 0.5 and
# |ΔASR| 1 0 0 4 0 3 1 1 0 2 points, at most 2.5 and 4 (one process's seed-to-seed spread:
# CACC 81.5-92.0, sd 3.1; ASR 91-98, sd 2.6). The processes draw their own dropout masks, so the
# difference is that of another dropout draw, plus float rounding. The test (seed 2021) allows
# twice the largest difference measured, in points:
TOLERANCE = {"cacc": 0.05, "asr": 0.08}


@pytest.mark.slow(seconds=105)
@needs_gloo
def test_two_processes_run_a_preset_like_one(tmp_path):
    """``accelerate launch --multi_gpu --num_processes 2 ... run PRESET`` on CPU (gloo): exactly
    one run folder, events written once (one run_started, each stage started and finished once),
    the cache written once per entry and by the main process only, summary.json finished with
    processes = 2, and the poisoned model's CACC and ASR within TOLERANCE of one process."""
    one = pipeline.run(config.load(PRESET), ListSink(), run_dir=tmp_path / "one")

    runs, writes = tmp_path / "runs", tmp_path / "writes.log"
    out = runs / "two"
    cache2 = tmp_path / "cache2"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_ip", "127.0.0.1", "--main_process_port", str(_free_port()),
           str(ROOT / "tests" / "distributed" / "launch_cli.py"),
           "run", PRESET, "--out", str(out), "-q", "--no-svg", "--set", "train.device='cpu'"]
    r = subprocess.run(cmd, cwd=ROOT, env=_env(RGA_TUI_CACHE=str(cache2), RGA_TEST_WRITES=str(writes)),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    assert r.stdout.count("run folder:") == 1  # one process prints; the other is silent

    assert [p.name for p in runs.iterdir()] == ["two"]
    assert sorted(p.name for p in out.iterdir()) == ["config.toml", "events.jsonl", "results.md", "summary.json"]
    ev = read_events(out / "events.jsonl")
    types = [e["type"] for e in ev]
    assert types.count("run_started") == 1 and types.count("run_finished") == 1
    assert types[0] == "run_started" and types[-1] == "run_finished"
    assert ev[0]["processes"] == 2
    stages = ["poison", "retrain", "unlearn:rga"]
    assert [e["stage"] for e in ev if e["type"] == "stage_started"] == stages
    assert [e["stage"] for e in ev if e["type"] == "stage_finished"] == stages
    for st in stages:  # one process's step numbers, once each
        steps = [e["step"] for e in ev if e["type"] == "step" and e["stage"] == st]
        assert steps == sorted(set(steps)) and steps
    one_steps = {e["stage"]: e["total_steps"] for e in read_events(tmp_path / "one" / "events.jsonl")
                 if e["type"] == "stage_started"}
    assert {e["stage"]: e["total_steps"] for e in ev if e["type"] == "stage_started"} == one_steps
    assert sum(1 for e in ev if e.get("phase") == "pretrain" and e.get("epoch") == 1) == 1

    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "finished" and s["processes"] == 2 and not s["errors"]
    assert set(s["models"]) == {"poisoned", "retrain", "rga"}

    lines = writes.read_text().splitlines()
    assert lines and all(line.split()[0] == "0" for line in lines), lines  # the main process only
    assert sorted(line.split(" ", 1)[1] for line in lines if " cache " in f" {line} ") == [
        "cache poison", "cache pretrain", "cache retrain"]
    assert sum(1 for line in lines if line.endswith("events events.jsonl")) == 1
    assert sorted(p.name.split("-")[0] for p in cache2.iterdir()) == ["poison", "pretrain", "retrain"]

    p1, p2 = one["models"]["poisoned"], s["models"]["poisoned"]
    assert p1["asr"] > 0.9 and p1["cacc"] > 0.8  # a backdoor was learnt: the comparison means something
    for key, tol in TOLERANCE.items():
        assert abs(p1[key] - p2[key]) <= tol, (key, p1[key], p2[key], tol)

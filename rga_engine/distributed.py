"""Several processes (``accelerate launch --num_processes N``, ``torchrun``): what the ranks share.

One process is the default and nothing here changes it. With N processes (DDP; gloo on CPU,
NCCL on GPUs) every rank runs the same pipeline on the same data; only the main process writes
the run folder, the events and the cache. The batches are split the way the authors'
single-process loop draws them: the *global* batch is the preset's ``batch_size`` -- the same
rows, in the same order, as one process would draw -- and each rank takes a contiguous slice of
it (:func:`rank_slice`), so N processes take the same number of steps on the same batches as
one, and DDP's gradient average is the mean over the whole batch. A batch that does not divide
evenly (the last one of an epoch, or ``batch_size`` not a multiple of N) is topped up with rows
of that same batch, which then count twice in that step.

Every decision that changes the control flow -- a cache hit, a stop request, a non-finite loss,
CUBE's forget set -- is taken together (:func:`all_ranks`, :class:`SharedStop`,
:func:`from_main`), so that no rank leaves a stage while another waits for it in a collective.
Torch is imported inside the functions that need it: the command line reads the rank before it
imports the engine.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Sequence

__all__ = ["SharedStop", "all_ranks", "any_rank", "close", "eval_part", "from_main", "launch_rank",
           "lone_cpu_launch", "mean_over_ranks", "rank_slice", "sum_over_ranks"]

# the global rank as the launchers set it (torchrun / accelerate launch: RANK; mpirun: the others),
# the same variables accelerate reads
_RANK_VARS = ("RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "PMI_RANK")


def launch_rank() -> int:
    """This process's global rank from the launcher's environment, before any process group
    exists (0 when not launched as one of several processes)."""
    for name in _RANK_VARS:
        value = os.environ.get(name, "")
        if value.strip().lstrip("-").isdigit():
            return int(value)
    return 0


def close(wait: bool = True) -> None:
    """Leave the process group at the end of a launch (nothing without one): ``wait`` -- after a run
    that ended well on every rank -- meets the other ranks first, then destroys the group. A rank
    that left both to the interpreter's teardown sometimes died there with SIGABRT ("terminate
    called without an active exception", gloo on CPU, 2 processes: about 1 launch in 4 on 2 cores,
    always the rank that finished first), after its run had finished, and the launcher reported
    the whole launch as failed. The process that launched owns the group, so the command line calls
    this once, after its last run (``rga-tui run --seeds`` makes several in one group); a script
    that calls ``pipeline.run`` under ``torchrun`` should do the same."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    if wait:
        dist.barrier()
    dist.destroy_process_group()


def lone_cpu_launch() -> bool:
    """``accelerate launch --cpu --num_processes N`` without ``--mpirun_hostfile`` starts ONE
    process (accelerate's simple launcher; several CPU processes need MPI): its environment has
    ACCELERATE_USE_CPU and MASTER_ADDR but no rank."""
    return (os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
            and "MASTER_ADDR" in os.environ
            and not any(name in os.environ for name in (*_RANK_VARS, "WORLD_SIZE")))


def rank_slice(rows: Sequence[int], rank: int, world: int) -> list[int]:
    """This rank's part of a global batch: contiguous slices of ``ceil(len / world)`` rows; a
    batch that does not divide evenly is topped up cyclically with its own rows first, so that
    every rank gets the same number of rows (and at least one). One process: ``rows`` as given."""
    rows = list(rows)
    if world <= 1 or not rows:
        return rows
    k = math.ceil(len(rows) / world)
    padded = [rows[i % len(rows)] for i in range(k * world)]
    return padded[rank * k: (rank + 1) * k]


def _flags(accelerator, flag: bool):
    import torch
    from accelerate.utils import gather

    t = torch.tensor([1 if flag else 0], dtype=torch.long, device=accelerator.device)
    return gather(t)


def all_ranks(accelerator, flag: bool) -> bool:
    """True when ``flag`` is true on every rank (one process: ``flag``). A collective: every
    rank must call it at the same point."""
    if accelerator is None or accelerator.num_processes <= 1:
        return bool(flag)
    return bool(_flags(accelerator, flag).min().item())


def any_rank(accelerator, flag: bool) -> bool:
    """True when ``flag`` is true on some rank (one process: ``flag``). A collective."""
    if accelerator is None or accelerator.num_processes <= 1:
        return bool(flag)
    return bool(_flags(accelerator, flag).max().item())


def mean_over_ranks(t):
    """A tensor's mean over the processes of the default group, on the device, without a host
    sync (one process: ``t`` itself). A collective. RGA's KL is a batch mean: the mean of the
    ranks' means over equal slices is the KL of the whole global batch, as one process has it."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
        return t
    t = t.detach().clone()
    dist.all_reduce(t)
    return t / dist.get_world_size()


def eval_part(accelerator, n_rows: int, batch_size: int) -> tuple[int, int]:
    """This process's part ``(rank, world)`` of an evaluation of ``n_rows`` in batches of
    ``batch_size`` (:func:`rga_engine.train.part_starts`): ``(0, 1)`` -- every batch -- for one
    process, and for every process when there are fewer batches than processes (each part needs
    a batch: CUBE's vector width comes from it). Sum the parts with :func:`sum_over_ranks` when
    ``world > 1``."""
    world = accelerator.num_processes if accelerator is not None else 1
    if world <= 1 or n_rows <= batch_size * (world - 1):
        return 0, 1
    return accelerator.process_index, world


def sum_over_ranks(t, device):
    """The sum over the processes of the default group of a CPU tensor, back on the CPU (one
    process: ``t`` itself). A collective, made on ``device`` (NCCL reduces CUDA tensors only).
    Each rank evaluates its share of the batches and leaves the other rows 0
    (:func:`rga_engine.train.predict_logits`' ``part``): the sum is every row's logits, exactly."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
        return t
    on = t.to(device)
    dist.all_reduce(on)
    return on.cpu()


def from_main(accelerator, obj: Any) -> Any:
    """The main process's ``obj`` on every rank (a picklable object). A collective."""
    if accelerator is None or accelerator.num_processes <= 1:
        return obj
    from accelerate.utils import broadcast_object_list

    box = [obj]
    broadcast_object_list(box, from_process=0)
    return box[0]


class SharedStop:
    """``should_stop`` taken together: with several processes, a stop request (Ctrl-C reaches
    every rank, but not at the same step) is read collectively every ``every`` calls -- the
    loops call it once per step on every rank -- so that all ranks stop after the same step.
    Once true it stays true. One process: the wrapped function, called every time, as before."""

    def __init__(self, should_stop: Callable[[], bool], accelerator, every: int = 8):
        self.inner, self.accelerator, self.every = should_stop, accelerator, max(1, int(every))
        self.calls, self.stopped = 0, False

    def __call__(self) -> bool:
        if self.accelerator is None or self.accelerator.num_processes <= 1:
            return bool(self.inner())
        if self.stopped:
            return True
        self.calls += 1
        if self.calls % self.every:
            return False
        self.stopped = any_rank(self.accelerator, bool(self.inner()))
        return self.stopped

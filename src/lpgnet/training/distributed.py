"""Training on several processes with DistributedDataParallel, launched by torchrun.

    torchrun --nproc_per_node 2 -m lpgnet train --config ... --out runs/x
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint host:29400 -m lpgnet train ...

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; ``from_env`` joins the process group (gloo on
CPU, nccl on GPU, each process on its local GPU). Every process builds the same data and
the same length-bucketed batches (one seed), and takes its share of each batch: dialogues
``rank, rank + world, ...`` of it. So the effective batch is the configured one, and
the update is the one-process update:

* the loss of each share is its sums divided by the *whole batch's* denominators
  (``total_of``: one all-reduce of a handful of numbers), times the world size, which
  DDP's gradient average divides out again;
* BatchNorm in (6) takes its statistics over the whole batch (``GlobalCompression``
  all-reduces them; SyncBatchNorm does not run on CPUs).

What still differs from one process: floating-point sums in another order (about 1e-6
relative per step), and dropout masks drawn per process (so the comparison test trains
with dropout 0). A batch with fewer dialogues than processes gives the spare processes
a copy of its first dialogue with zero loss weight, which BatchNorm still counts.

Rank 0 alone writes the run directory and logs; validation and test predictions are
computed on shares and gathered (``scoring.predict_logits``). Text features that need computing
(fine-tuning) are computed by rank 0 while the others wait, then read from the cache by
all (``main_first``: SpeechBrain's ``run_on_main``).
"""

from __future__ import annotations

import atexit
import gc
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    device: torch.device | None = None  # the process's own GPU under nccl; None: as configured

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def share(self, batch: list[int]) -> tuple[list[int], float]:
        """This process's dialogues of a global batch, and the weight of its loss (0 for a spare copy)."""
        mine = batch[self.rank :: self.world]
        return (mine, 1.0) if mine else (batch[:1], 0.0)

    def total_of(self, local: torch.Tensor) -> torch.Tensor:
        """The sum over processes of ``local`` (no gradient: denominators, counts)."""
        if not self.active:
            return local
        total = local.detach().clone()
        dist.all_reduce(total)
        return total

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


SINGLE = Context()


def from_env() -> Context:
    """The context torchrun's environment describes, joining its process group (once)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = None
    if torch.cuda.is_available():
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device is not None else "gloo")
        atexit.register(_leave)
    return Context(rank, dist.get_world_size(), device)


def _leave() -> None:
    """Leave the process group before the interpreter exits: a process that exits inside
    it can abort in gloo's threads ("terminate called without an active exception", about
    one exit in ten here), and torchrun reports the run failed though its work was done."""
    if dist.is_initialized():
        gc.collect()  # first free DDP reducers and autograd graphs that still hold the group
        dist.destroy_process_group()


@contextmanager
def main_first(ctx: Context) -> Iterator[None]:
    """Rank 0 runs the block first (filling caches); the others run it after, reading them."""
    if not ctx.main:
        ctx.barrier()
    yield
    if ctx.main:
        ctx.barrier()


def wrap(model: torch.nn.Module, ctx: Context) -> Callable[..., Any]:
    """The callable the training step runs forward through: DDP around the model when
    there are several processes (gradients averaged in buckets during backward)."""
    if not ctx.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.device.index] if ctx.device is not None and ctx.device.type == "cuda" else None
    # no buffer broadcast at each forward: BatchNorm's running statistics are updated from
    # the whole batch's statistics in every process alike (GlobalCompression); DDP still
    # copies rank 0's buffers once at the start, equal anyway (every process, one seed)
    return DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=False)

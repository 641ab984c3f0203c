"""Runs a function on N CPU processes joined in a gloo process group.

Shared by the tests that check behaviour across ranks (losses, gathers,
SSPS queues, SSLBrain): ``run_on_ranks(fn, tmp_path, *args)`` spawns
``world`` processes, each calls ``fn(rank, world, *args)`` inside an
initialised group, and the ranks' return values come back in rank order.
"""

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _entry(rank, world, store, out_dir, fn, args):
    dist.init_process_group(
        "gloo", init_method=f"file://{store}", rank=rank, world_size=world
    )
    torch.set_num_threads(1)
    try:
        result = fn(rank, world, *args)
        torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def run_on_ranks(fn, tmp_path, *args, world=2):
    """``[fn(0, world, *args), ..., fn(world - 1, world, *args)]``.

    ``fn`` must be a module-level function (it is pickled) returning
    tensors and plain containers.
    """
    mp.spawn(
        _entry,
        args=(world, str(tmp_path / "gloo_store"), str(tmp_path), fn, args),
        nprocs=world,
        join=True,
    )
    return [
        torch.load(tmp_path / f"rank{r}.pt", weights_only=True)
        for r in range(world)
    ]
